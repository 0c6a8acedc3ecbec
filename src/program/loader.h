// Program definitions, people and proposals from TOML text (see docs/program.md for
// the formats). Pure parsing: the caller reads the file; these functions only turn
// text into model values, reporting kParseError with the offending field.
//
//   ATRIUM_ASSIGN_OR_RETURN(ProgramDefinition def, ParseProgramToml(text));
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "program/model.h"

namespace atrium::program {

// A call's dates are absolute (2026-01-15, 2026-01-15T09:00:00Z) or relative to the load:
// "+0d", "+30d", "-2h", "+90m", "+45s" (a sign, a whole number, d/h/m/s), resolved against
// load_us, the logical time of the command that loads the program (program_create's
// now_us), so an example file is usable on the day it is loaded and replays the same.
// Without a load time a relative date is refused (kParseError naming the field).
Result<ProgramDefinition> ParseProgramToml(std::string_view text,
                                           std::optional<int64_t> load_us = std::nullopt);

struct PeopleFile {
  std::vector<Institution> institutions;
  std::vector<Person> people;
};
// [[institution]] and [[person]] tables.
Result<PeopleFile> ParsePeopleToml(std::string_view text);

// [[proposal]] tables (or one top-level proposal).
Result<std::vector<ProposalInput>> ParseProposalsToml(std::string_view text);
// A proposal as the proposal_submit op takes it (its `proposal` object): what `atrium
// program` and the tests submit from a proposals file. `requested` and `chip_hours` are
// left out when zero or empty.
nlohmann::json ProposalSubmitJson(const ProposalInput& input);

// "2026-01-15" (midnight UTC) or "2026-01-15T09:30:00Z" -> microseconds since the epoch.
Result<int64_t> ParseTimeUs(std::string_view text);
// "+30d", "-2h", "+90m", "+45s" -> the offset in microseconds; nullopt if the text is not
// a relative time (or its magnitude exceeds 100 years).
std::optional<int64_t> ParseRelativeUs(std::string_view text);
// 2026-01-15T09:30:00Z
std::string FormatTimeUs(int64_t time_us);
// Days since 1970-01-01 of a proleptic Gregorian date.
int64_t DaysFromCivil(int64_t year, int64_t month, int64_t day);

}  // namespace atrium::program
