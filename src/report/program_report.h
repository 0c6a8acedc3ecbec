// The program transparency report: where the credits went and whether the program kept
// its promises. Built from a ProgramState (read only); rendered as JSON (stable keys,
// money as decimal strings) or as one self-contained HTML page.
//
// It reports: the budget (total, committed, released to grants, spent, returned);
// awards by track, institution type, country and topic (a proposal with several topics
// counts in each); the Gini coefficient of awarded credits across the institutions that
// applied (0 = equal, 1 = all to one); each committed decision's fairness floors and
// whether they were met; obligations by state, with the overdue and late counts; and
// the public log's length and head hash.
//
//   nlohmann::json json = report::ProgramReportJson(state);
//   std::string html = report::ProgramReportHtml(state);
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "program/program_state.h"

namespace atrium::report {

nlohmann::json ProgramReportJson(const program::ProgramState& state);
std::string ProgramReportHtml(const program::ProgramState& state);
// Gini coefficient of non-negative values; 0 for an empty or all-zero list.
double Gini(std::vector<double> values);

}  // namespace atrium::report
