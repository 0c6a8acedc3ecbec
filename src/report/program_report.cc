#include "report/program_report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace atrium::report {
namespace {

using nlohmann::json;
using program::ProgramState;

std::string Money(Credits amount) { return amount.ToString(); }
Credits Add(Credits a, Credits b) { return Credits::FromMicro(a.micro() + b.micro()); }
double Round4(double value) { return std::round(value * 10'000.0) / 10'000.0; }

struct Bucket {
  Credits credits;
  int64_t grants = 0;
};

json Buckets(const std::map<std::string, Bucket>& buckets) {
  json out = json::array();
  for (const auto& [key, bucket] : buckets) {
    out.push_back({{"key", key}, {"credits", Money(bucket.credits)}, {"grants", bucket.grants}});
  }
  return out;
}

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Text(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

// A table of rows (arrays of objects) with the given columns; `bar` names a money
// column drawn as a bar relative to its largest value.
std::string HtmlTable(const json& rows, const std::vector<std::string>& columns,
                      const std::string& bar = {}) {
  double largest = 0;
  if (!bar.empty()) {
    for (const json& row : rows)
      largest = std::max(largest, std::stod(row.at(bar).get<std::string>()));
  }
  std::string out = "<table><tr>";
  for (const std::string& column : columns) out += "<th>" + Escape(column) + "</th>";
  out += "</tr>\n";
  for (const json& row : rows) {
    out += "<tr>";
    for (const std::string& column : columns) {
      out += "<td>" + Escape(row.contains(column) ? Text(row.at(column)) : "") + "</td>";
    }
    if (!bar.empty() && largest > 0) {
      const double width = 200.0 * std::stod(row.at(bar).get<std::string>()) / largest;
      out += "<td><div class=bar style=\"width:" + std::to_string(static_cast<int>(width)) +
             "px\"></div></td>";
    }
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

json LogSummary(const program::DecisionLog& log) {
  // The page checks the log as `atrium audit verify` does: the chain and every reveal
  // against its commitment. Sealed: proposals and reviews of calls still under review.
  const program::LogVerification verification = program::VerifyLog(log.Export());
  int64_t sealed = 0;
  int64_t revealed = 0;
  for (const program::LogEntry& entry : log.entries()) {
    if (entry.data.is_object() && entry.data.contains("commitment")) ++sealed;
    if (entry.type == "proposal_revealed" || entry.type == "review_revealed") ++revealed;
  }
  return {{"entries", static_cast<int64_t>(log.size())},
          {"head", log.head()},
          {"verified", verification.ok},
          {"commitments", sealed},
          {"revealed", revealed}};
}

}  // namespace

double Gini(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  double total = 0;
  double weighted = 0;
  for (size_t idx = 0; idx < values.size(); ++idx) {
    total += values[idx];
    weighted += static_cast<double>(idx + 1) * values[idx];
  }
  if (total <= 0) return 0;
  const auto count = static_cast<double>(values.size());
  return (2.0 * weighted) / (count * total) - (count + 1.0) / count;
}

json ProgramReportJson(const ProgramState& state) {
  const program::ProgramDefinition& def = state.definition();
  Credits committed, released, spent, returned;
  std::map<std::string, Bucket> by_track, by_type, by_country, by_topic;
  std::map<std::string, double> per_institution;
  for (const auto& [id, proposal] : state.proposals()) per_institution[proposal.institution] += 0;
  for (const auto& [id, grant] : state.grants()) {
    committed = Add(committed, grant.awarded);
    for (const program::Tranche& tranche : grant.tranches) {
      if (tranche.released) released = Add(released, tranche.amount);
    }
    spent = Add(spent, grant.spent);
    returned = Add(returned, grant.returned);
    const program::Institution& institution = state.institutions().at(grant.institution);
    for (Bucket* bucket :
         {&by_track[grant.track], &by_type[institution.type], &by_country[institution.country]}) {
      bucket->credits = Add(bucket->credits, grant.awarded);
      ++bucket->grants;
    }
    for (const std::string& topic : state.proposals().at(grant.proposal).input.topics) {
      by_topic[topic].credits = Add(by_topic[topic].credits, grant.awarded);
      ++by_topic[topic].grants;
    }
    per_institution[grant.institution] += static_cast<double>(grant.awarded.micro()) / 1e6;
  }
  std::vector<double> institution_credits;
  for (const auto& [institution, credits] : per_institution) institution_credits.push_back(credits);

  json tracks = json::array();
  for (const program::Track& track : def.tracks) {
    int64_t proposals = 0;
    for (const auto& [id, proposal] : state.proposals()) {
      const program::CallDefinition* call = state.FindCall(proposal.input.call);
      if (call != nullptr && call->track == track.id) ++proposals;
    }
    const Bucket& bucket = by_track[track.id];
    tracks.push_back(
        {{"track", track.id},
         {"kind", program::ToString(track.kind)},
         {"budget", Money(track.budget)},
         {"committed", Money(bucket.credits)},
         {"grants", bucket.grants},
         {"proposals", proposals},
         {"pool_available", Money(state.AccountAvailable(state.TrackPoolAccount(track.id)))}});
  }
  json decisions = json::array();
  json floors = json::array();
  for (const auto& [call, decision] : state.decisions()) {
    int64_t funded = 0;
    for (const program::ProposalOutcome& outcome : decision.outcomes) {
      funded += outcome.awarded.is_zero() ? 0 : 1;
    }
    decisions.push_back({{"call", call},
                         {"committed", decision.committed},
                         {"policy", decision.policy},
                         {"optimal", decision.optimal},
                         {"gap", Round4(decision.gap)},
                         {"total_awarded", Money(decision.total_awarded)},
                         {"funded", funded},
                         {"candidates", static_cast<int64_t>(decision.outcomes.size())}});
    if (!decision.committed) continue;
    for (const program::FloorOutcome& floor : decision.floors) {
      floors.push_back({{"call", call},
                        {"floor", floor.name},
                        {"required_percent", static_cast<double>(floor.share_bp_required) / 100.0},
                        {"enforced_percent", static_cast<double>(floor.share_bp_enforced) / 100.0},
                        {"achieved_percent", static_cast<double>(floor.share_bp_achieved) / 100.0},
                        {"met", floor.met}});
    }
  }
  std::map<std::string, int64_t> obligation_states;
  int64_t late = 0;
  for (const auto& [id, obligation] : state.obligations()) {
    ++obligation_states[std::string(program::ToString(obligation.state))];
    late += obligation.was_overdue ? 1 : 0;
  }
  int64_t frozen = 0;
  for (const auto& [id, grant] : state.grants()) {
    frozen += grant.status == program::GrantStatus::kFrozen ? 1 : 0;
  }
  return {
      {"program", {{"id", def.id}, {"name", def.name}, {"currency", def.currency}}},
      {"budget",
       {{"total", Money(def.total_budget)},
        {"committed", Money(committed)},
        {"released", Money(released)},
        {"spent", Money(spent)},
        {"returned", Money(returned)},
        {"program_pool", Money(state.AccountBalance(program::kProgramPoolAccount))}}},
      {"tracks", tracks},
      {"awards_by_institution_type", Buckets(by_type)},
      {"awards_by_country", Buckets(by_country)},
      {"awards_by_topic", Buckets(by_topic)},
      {"gini_institutions", Round4(Gini(institution_credits))},
      {"institutions_applied", static_cast<int64_t>(institution_credits.size())},
      {"decisions", decisions},
      {"fairness_floors", floors},
      {"obligations",
       {{"total", static_cast<int64_t>(state.obligations().size())},
        {"due", obligation_states["due"]},
        {"submitted", obligation_states["submitted"]},
        {"accepted", obligation_states["accepted"]},
        {"overdue", obligation_states["overdue"]},
        {"late", late},
        {"grants_frozen", frozen}}},
      {"grants", static_cast<int64_t>(state.grants().size())},
      {"proposals", static_cast<int64_t>(state.proposals().size())},
      {"log", LogSummary(state.log())},
  };
}

std::string ProgramReportHtml(const ProgramState& state) {
  const json report = ProgramReportJson(state);
  const json& budget = report.at("budget");
  std::string out =
      "<!doctype html>\n<html><head><meta charset=utf-8><title>" +
      Escape(report["program"]["name"].get<std::string>()) +
      " — transparency report</title>\n<style>body{font:14px sans-serif;max-width:60em;margin:2em "
      "auto}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border-bottom:1px solid "
      "#ddd;padding:3px 8px;text-align:left}.bar{background:#4a7;height:10px}.no{color:#b00}"
      "</style></head><body>\n";
  out += "<h1>" + Escape(report["program"]["name"].get<std::string>()) + "</h1>\n";
  out += "<h2>Budget (" + Escape(report["program"]["currency"].get<std::string>()) + ")</h2>\n";
  json budget_rows = json::array();
  for (const char* key : {"total", "committed", "released", "spent", "returned", "program_pool"}) {
    budget_rows.push_back({{"item", key}, {"credits", budget.at(key)}});
  }
  out += HtmlTable(budget_rows, {"item", "credits"});
  out += "<h2>Tracks</h2>\n" +
         HtmlTable(report["tracks"],
                   {"track", "kind", "budget", "committed", "grants", "proposals"}, "committed");
  out += "<h2>Awards by institution type</h2>\n" +
         HtmlTable(report["awards_by_institution_type"], {"key", "credits", "grants"}, "credits");
  out += "<h2>Awards by country</h2>\n" +
         HtmlTable(report["awards_by_country"], {"key", "credits", "grants"}, "credits");
  out += "<h2>Awards by topic</h2>\n<p>A proposal with several topics counts in each.</p>\n" +
         HtmlTable(report["awards_by_topic"], {"key", "credits", "grants"}, "credits");
  out += "<p>Gini coefficient of credits across the " +
         std::to_string(report["institutions_applied"].get<int64_t>()) +
         " institutions that applied: <b>" + report["gini_institutions"].dump() + "</b></p>\n";
  out += "<h2>Decisions</h2>\n" +
         HtmlTable(report["decisions"], {"call", "committed", "policy", "optimal", "gap",
                                         "total_awarded", "funded", "candidates"});
  out += "<h2>Fairness floors</h2>\n" +
         HtmlTable(report["fairness_floors"], {"call", "floor", "required_percent",
                                               "enforced_percent", "achieved_percent", "met"});
  json obligation_rows = json::array();
  for (const auto& [key, value] : report["obligations"].items()) {
    obligation_rows.push_back({{"obligations", key}, {"count", value}});
  }
  out += "<h2>Obligations</h2>\n" + HtmlTable(obligation_rows, {"obligations", "count"});
  out += "<h2>Public decision log</h2>\n<p>" +
         std::to_string(report["log"]["entries"].get<int64_t>()) + " entries; head hash <code>" +
         report["log"]["head"].get<std::string>() + "</code>; " +
         (report["log"]["verified"].get<bool>() ? "chain and reveals verified"
                                                : "<strong>does not verify</strong>") +
         "; " + std::to_string(report["log"]["commitments"].get<int64_t>()) +
         " sealed commitments, " + std::to_string(report["log"]["revealed"].get<int64_t>()) +
         " revealed at their decisions. Verify an export with <code>atrium audit verify "
         "FILE</code>.</p>\n";
  return out + "</body></html>\n";
}

}  // namespace atrium::report
