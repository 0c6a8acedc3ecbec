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

// Governance in the open (docs/governance.md): overrides of committed decisions, appeals,
// and how proposals tied to the sponsor fared against the others.
json GovernanceJson(const ProgramState& state) {
  const program::GovernanceRules& rules = state.definition().governance;
  json overrides = {{"allowed", rules.overrides.allowed()}};
  if (!rules.overrides.allowed()) {
    overrides["statement"] = "This program allows no sponsor overrides.";
  } else {
    overrides["max_per_call"] = rules.overrides.max_per_call;
    overrides["max_budget_percent"] = static_cast<double>(rules.overrides.max_budget_bp) / 100.0;
    overrides["reasons"] = rules.overrides.reasons;
  }
  json per_call = json::array();
  for (const auto& [call, made] : state.overrides()) {
    const auto decision = state.decisions().find(call);
    // A draft's overrides are sealed like the draft: published with the commit.
    if (decision == state.decisions().end() || !decision->second.committed || made.empty()) {
      continue;
    }
    std::map<std::string, int64_t> by_reason;
    int64_t vetoes = 0;
    int64_t additions = 0;
    Credits moved;
    for (const program::SponsorOverride& entry : made) {
      (entry.kind == program::OverrideKind::kVeto ? vetoes : additions) += 1;
      by_reason[std::string(program::ToString(entry.kind)) + ":" + entry.reason] += 1;
      moved = Add(moved, entry.moved);
    }
    json displaced = json::array();
    for (const program::ProposalOutcome& outcome : decision->second.outcomes) {
      if (outcome.rationale != program::Rationale::kDisplacedByOverride) continue;
      displaced.push_back({{"proposal", outcome.proposal},
                           {"before", Money(outcome.base_awarded)},
                           {"after", Money(outcome.awarded)},
                           {"overrides", outcome.overrides}});
    }
    // Each override as its override_committed entry publishes it.
    json items = json::array();
    for (const program::SponsorOverride& entry : made) {
      items.push_back({{"override", entry.id},
                       {"proposal", entry.proposal},
                       {"kind", program::ToString(entry.kind)},
                       {"reason", entry.reason},
                       {"text", entry.text},
                       {"moved", Money(entry.moved)}});
    }
    json reasons = json::array();
    for (const auto& [key, count] : by_reason) {
      const size_t colon = key.find(':');
      reasons.push_back(
          {{"kind", key.substr(0, colon)}, {"reason", key.substr(colon + 1)}, {"count", count}});
    }
    per_call.push_back({{"call", call},
                        {"vetoes", vetoes},
                        {"additions", additions},
                        {"by_reason", reasons},
                        {"budget_moved", Money(moved)},
                        {"items", items},
                        {"displaced", displaced}});
  }
  overrides["calls"] = per_call;

  json appeals = {{"allowed", rules.appeals.allowed()}};
  if (!rules.appeals.allowed()) {
    appeals["statement"] = "This program takes no appeals.";
  } else {
    appeals["window_days"] = rules.appeals.window_days;
    appeals["grounds_published"] = rules.appeals.grounds;
  }
  // Counts by ground, for the program ("") and for each call.
  using Counts = std::map<std::string, int64_t>;
  std::map<std::string, std::map<std::string, Counts>> by_ground;  // call -> ground -> counts
  std::map<std::string, Counts> totals;                            // call -> counts
  Credits funded;
  for (const auto& [id, appeal] : state.appeals()) {
    const std::string outcome(program::ToString(appeal.state));
    for (const std::string& scope : {std::string(), appeal.call}) {
      by_ground[scope][appeal.ground]["filed"] += 1;
      by_ground[scope][appeal.ground][outcome] += 1;
      totals[scope]["filed"] += 1;
      totals[scope][outcome] += 1;
    }
    if (!appeal.grant.empty()) funded = Add(funded, state.grants().at(appeal.grant).awarded);
  }
  const auto counted = [&](const std::string& scope, json* out) {
    json grounds = json::array();
    for (auto& [ground, counts] : by_ground[scope]) {
      grounds.push_back({{"ground", ground},
                         {"filed", counts["filed"]},
                         {"upheld", counts["upheld"]},
                         {"rejected", counts["rejected"]},
                         {"pending", counts["filed"] - counts["upheld"] - counts["rejected"]}});
    }
    Counts& total = totals[scope];
    (*out)["filed"] = total["filed"];
    (*out)["upheld"] = total["upheld"];
    (*out)["rejected"] = total["rejected"];
    (*out)["pending"] = total["filed"] - total["upheld"] - total["rejected"];
    (*out)["by_ground"] = grounds;
  };
  counted("", &appeals);
  json appeal_calls = json::array();
  for (const auto& [call, counts] : totals) {
    if (call.empty()) continue;
    json entry = {{"call", call}};
    counted(call, &entry);
    appeal_calls.push_back(std::move(entry));
  }
  appeals["calls"] = std::move(appeal_calls);
  appeals["reserve"] = {
      {"total", Money(rules.appeals.reserve)},
      {"funded", Money(funded)},
      {"left", Money(rules.appeals.reserve.is_zero()
                         ? Credits::Zero()
                         : state.AccountBalance(program::kAppealsReserveAccount))}};

  // Sponsor ties: award rate and mean score of decided proposals, tied or not.
  struct Side {
    int64_t decided = 0;
    int64_t awarded = 0;
    int64_t ranked = 0;
    double score_sum = 0;
  };
  Side tied, others;
  std::vector<std::pair<std::string, std::pair<Side, Side>>> by_call;  // committed calls
  for (const auto& [call, decision] : state.decisions()) {
    if (!decision.committed) continue;
    by_call.push_back({call, {}});
    for (const program::ProposalOutcome& outcome : decision.outcomes) {
      const program::Proposal& proposal = state.proposals().at(outcome.proposal);
      if (proposal.status == program::ProposalStatus::kWithdrawn) continue;
      const bool is_tied = !state.SponsorTieOf(proposal).empty();
      for (Side* side : {is_tied ? &tied : &others,
                         is_tied ? &by_call.back().second.first : &by_call.back().second.second}) {
        side->decided += 1;
        side->awarded += proposal.status == program::ProposalStatus::kAwarded ? 1 : 0;
        if (outcome.rank > 0) {
          side->ranked += 1;
          side->score_sum += outcome.merit;
        }
      }
    }
  }
  const auto side_json = [](const Side& side) {
    return json{
        {"decided", side.decided},
        {"awarded", side.awarded},
        {"award_rate", side.decided == 0 ? 0.0
                                         : Round4(static_cast<double>(side.awarded) /
                                                  static_cast<double>(side.decided))},
        {"mean_score",
         side.ranked == 0 ? 0.0 : Round4(side.score_sum / static_cast<double>(side.ranked))}};
  };
  json ties = json::array();
  for (const program::SponsorTie& tie : rules.sponsor_ties) {
    ties.push_back({{"institution", tie.institution}, {"person", tie.person}, {"kind", tie.kind}});
  }
  json tie_calls = json::array();
  for (const auto& [call, sides] : by_call) {
    tie_calls.push_back(
        {{"call", call}, {"tied", side_json(sides.first)}, {"others", side_json(sides.second)}});
  }
  return {{"overrides", overrides},
          {"appeals", appeals},
          {"sponsor_ties",
           {{"declared", ties},
            {"tied", side_json(tied)},
            {"others", side_json(others)},
            {"calls", tie_calls}}}};
}

// Training reach (docs/training.md): per item and per institution type of the learners,
// how many enrolled and completed, and the lab credits spent.
json TrainingJson(const ProgramState& state) {
  struct Reach {
    int64_t enrolled = 0;  // every enrolment that was made (withdrawn ones included)
    int64_t completed = 0;
    int64_t withdrawn = 0;
    Credits spent;
  };
  std::map<std::string, Reach> by_item;
  std::map<std::string, Reach> by_type;
  Reach total;
  std::set<std::string> learners;
  for (const auto& [id, enrolment] : state.training().enrolments) {
    const auto person = state.people().find(enrolment.person);
    const auto institution = person == state.people().end()
                                 ? state.institutions().end()
                                 : state.institutions().find(person->second.institution);
    const std::string type =
        institution == state.institutions().end() ? "unknown" : institution->second.type;
    learners.insert(enrolment.person);
    for (Reach* reach : {&by_item[enrolment.item], &by_type[type], &total}) {
      ++reach->enrolled;
      if (enrolment.state == program::EnrolmentState::kCompleted) ++reach->completed;
      if (enrolment.state == program::EnrolmentState::kWithdrawn) ++reach->withdrawn;
      reach->spent = Add(reach->spent, enrolment.spent);
    }
  }
  const auto row = [](const Reach& reach) {
    return json{{"enrolled", reach.enrolled},
                {"completed", reach.completed},
                {"withdrawn", reach.withdrawn},
                {"credits_spent", Money(reach.spent)}};
  };
  json items = json::array();
  for (const auto& [id, item] : state.training().items) {
    json entry = row(by_item[id]);
    entry["item"] = id;
    entry["kind"] = program::ToString(item.kind);
    entry["title"] = item.title;
    entry["level"] = program::ToString(item.level);
    items.push_back(std::move(entry));
  }
  json types = json::array();
  for (const auto& [type, reach] : by_type) {
    json entry = row(reach);
    entry["institution_type"] = type;
    types.push_back(std::move(entry));
  }
  json out = row(total);
  out["items"] = std::move(items);
  out["by_institution_type"] = std::move(types);
  out["learners"] = static_cast<int64_t>(learners.size());
  return out;
}

// The dataset catalog as the public sees it (docs/datasets.md): per dataset, how many
// grants may use it now (every grant for open data), how many grants and jobs used it;
// and the storage charged to grants in all.
json DatasetsJson(const ProgramState& state) {
  const program::DatasetBook& book = state.dataset_book();
  json items = json::array();
  for (const auto& [id, dataset] : book.datasets) {
    int64_t with_access = 0;
    for (const auto& [grant_id, grant] : state.grants()) {
      const bool live = grant.status == program::GrantStatus::kActive ||
                        grant.status == program::GrantStatus::kFrozen;
      with_access += live && state.CheckDatasetUse(grant_id, id).ok() ? 1 : 0;
    }
    const auto use = book.uses.find(id);
    items.push_back({{"dataset", id},
                     {"name", dataset.name},
                     {"policy", program::ToString(dataset.policy)},
                     {"license", dataset.license},
                     {"size_bytes", dataset.size_bytes},
                     {"grants_with_access", with_access},
                     {"grants_used", use == book.uses.end() ? 0 : use->second.jobs_by_grant.size()},
                     {"jobs", use == book.uses.end() ? 0 : use->second.jobs}});
  }
  Credits storage_charged;
  for (const auto& [grant, storage] : book.storage) {
    storage_charged = Add(storage_charged, storage.charged);
  }
  return {{"items", items},
          {"storage_charged", Money(storage_charged)},
          {"storage_price_per_gib_month", Money(book.storage_policy.price_per_gib_month)}};
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
  institution_credits.reserve(per_institution.size());
  for (const auto& [institution, credits] : per_institution) institution_credits.push_back(credits);

  // Grants paid from the appeals reserve count in their track's `committed` (they are
  // the track's grants) and are named apart, since the track's pool did not pay them.
  std::map<std::string, Credits> from_reserve;  // by track
  for (const auto& [id, appeal] : state.appeals()) {
    if (appeal.grant.empty()) continue;
    const program::Grant& grant = state.grants().at(appeal.grant);
    from_reserve[grant.track] = Add(from_reserve[grant.track], grant.awarded);
  }
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
         {"from_appeals_reserve", Money(from_reserve[track.id])},
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
      {"governance", GovernanceJson(state)},
      {"training", TrainingJson(state)},
      {"datasets", DatasetsJson(state)},
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
  const json& training = report["training"];
  out += "<h2>Training reach</h2>\n<p>" + training["learners"].dump() + " learners, " +
         training["enrolled"].dump() + " enrolments, " + training["completed"].dump() +
         " completed.</p>\n" +
         HtmlTable(training["items"],
                   {"item", "kind", "title", "level", "enrolled", "completed", "credits_spent"}) +
         HtmlTable(training["by_institution_type"],
                   {"institution_type", "enrolled", "completed", "withdrawn"});
  out += "<h2>Datasets</h2>\n<p>Storage charged to grants: " +
         Escape(report["datasets"]["storage_charged"].get<std::string>()) + " credits.</p>\n" +
         HtmlTable(report["datasets"]["items"], {"dataset", "name", "policy", "license",
                                                 "grants_with_access", "grants_used", "jobs"});
  const json& governance = report["governance"];
  out += "<h2>Sponsor overrides</h2>\n";
  if (!governance["overrides"]["allowed"].get<bool>()) {
    out += "<p>" + Escape(governance["overrides"]["statement"].get<std::string>()) + "</p>\n";
  } else {
    json rows = json::array();
    for (const json& call : governance["overrides"]["calls"]) {
      std::string displaced;
      for (const json& item : call["displaced"]) {
        displaced += (displaced.empty() ? "" : ", ") + item["proposal"].get<std::string>() + " (" +
                     item["before"].get<std::string>() + " → " + item["after"].get<std::string>() +
                     ")";
      }
      std::string reasons;
      for (const json& item : call["by_reason"]) {
        reasons += (reasons.empty() ? "" : ", ") + item["kind"].get<std::string>() + " " +
                   item["reason"].get<std::string>() + " × " + item["count"].dump();
      }
      rows.push_back({{"call", call["call"]},
                      {"vetoes", call["vetoes"]},
                      {"additions", call["additions"]},
                      {"reasons", reasons},
                      {"budget_moved", call["budget_moved"]},
                      {"displaced", displaced}});
    }
    out += "<p>At most " + governance["overrides"]["max_per_call"].dump() +
           " per call, moving at most " + governance["overrides"]["max_budget_percent"].dump() +
           "% of its budget.</p>\n" +
           HtmlTable(rows, {"call", "vetoes", "additions", "reasons", "budget_moved", "displaced"});
  }
  out += "<h2>Appeals</h2>\n";
  if (!governance["appeals"]["allowed"].get<bool>()) {
    out += "<p>" + Escape(governance["appeals"]["statement"].get<std::string>()) + "</p>\n";
  } else {
    out += "<p>" + governance["appeals"]["filed"].dump() + " filed, " +
           governance["appeals"]["upheld"].dump() + " upheld, " +
           governance["appeals"]["rejected"].dump() + " rejected; reserve " +
           governance["appeals"]["reserve"]["total"].get<std::string>() + ", funded " +
           governance["appeals"]["reserve"]["funded"].get<std::string>() + ".</p>\n" +
           HtmlTable(governance["appeals"]["by_ground"],
                     {"ground", "filed", "upheld", "rejected", "pending"});
  }
  if (!governance["sponsor_ties"]["declared"].empty()) {
    json rows = json::array();
    for (const char* side : {"tied", "others"}) {
      json row = governance["sponsor_ties"][side];
      row["proposals"] = side;
      rows.push_back(row);
    }
    out += "<h2>Proposals tied to the sponsor</h2>\n" +
           HtmlTable(rows, {"proposals", "decided", "awarded", "award_rate", "mean_score"});
  }
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
