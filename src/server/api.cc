#include "server/api.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "core/access.h"
#include "core/ops.h"
#include "exec/local_executor.h"
#include "report/program_report.h"
#include "report/usage_app.h"
#include "server/api_internal.h"

namespace atrium::server {
namespace {

using namespace api_internal;  // NOLINT: the reads' shared helpers

using core::Actor;
using core::Role;
using nlohmann::json;

// ---- views -------------------------------------------------------------------------

json CallView(const program::ProgramState& program, const program::CallDefinition& call) {
  return {{"id", call.id},
          {"track", call.track},
          {"state", program::ToString(program.call_state(call.id))},
          {"opens_us", call.opens_us},
          {"closes_us", call.closes_us},
          {"review_deadline_us", call.review_deadline_us}};
}

json TrackView(const program::ProgramState& program, const program::Track& track) {
  return {{"id", track.id},
          {"name", track.name},
          {"kind", track.kind == program::TrackKind::kEducation ? "education" : "research"},
          {"budget", track.budget.ToString()},
          {"available", program.AccountAvailable(program.TrackPoolAccount(track.id)).ToString()},
          {"award_cap", track.award_cap.ToString()},
          {"institution_cap", track.institution_cap.ToString()}};
}

json ProgramView(const program::ProgramState& program) {
  const program::ProgramDefinition& def = program.definition();
  json tracks = json::array();
  for (const program::Track& track : def.tracks) tracks.push_back(TrackView(program, track));
  json calls = json::array();
  for (const program::CallDefinition& call : def.calls) calls.push_back(CallView(program, call));
  json rubric = json::array();
  for (const program::Criterion& criterion : def.rubric) {
    rubric.push_back({{"name", criterion.name},
                      {"weight", criterion.weight},
                      {"min", criterion.score_min},
                      {"max", criterion.score_max}});
  }
  json floors = json::array();
  for (const program::FairnessFloor& floor : def.fairness_floors) {
    floors.push_back({{"name", floor.name},
                      {"share_bp", floor.share_bp},
                      {"topics", floor.topics},
                      {"institution_types", floor.institution_types},
                      {"tracks", floor.tracks}});
  }
  return {{"id", def.id},
          {"name", def.name},
          {"currency", def.currency},
          {"total_budget", def.total_budget.ToString()},
          {"award_policy", def.award_policy},
          {"topics", def.topics},
          {"rubric", std::move(rubric)},
          {"fairness_floors", std::move(floors)},
          {"tracks", std::move(tracks)},
          {"calls", std::move(calls)},
          {"grants", program.grants().size()},
          {"log_entries", program.log().size()},
          {"log_head", program.log().head()}};
}

json ProposalView(const program::Proposal& proposal) {
  const program::ProposalInput& in = proposal.input;
  return {{"id", in.id},
          {"call", in.call},
          {"pi", in.pi},
          {"co_investigators", in.co_investigators},
          {"institution", proposal.institution},
          {"title", in.title},
          {"abstract", in.abstract},
          {"topics", in.topics},
          {"requested", proposal.requested.ToString()},
          {"duration_months", in.duration_months},
          {"open_source_plan", in.open_source_plan},
          {"status", program::ToString(proposal.status)},
          {"submitted_us", proposal.submitted_us}};
}

json GrantView(const program::ProgramState& program, const program::Grant& grant) {
  json tranches = json::array();
  for (const program::Tranche& tranche : grant.tranches) {
    tranches.push_back({{"amount", tranche.amount.ToString()},
                        {"condition", tranche.condition},
                        {"released", tranche.released}});
  }
  json students = json::object();
  for (const auto& [student, account] : grant.students) {
    students[student] = program.AccountBalance(account).ToString();
  }
  return {{"id", grant.id},
          {"proposal", grant.proposal},
          {"call", grant.call},
          {"track", grant.track},
          {"pi", grant.pi},
          {"institution", grant.institution},
          {"members", grant.members},
          {"awarded", grant.awarded.ToString()},
          {"spent", grant.spent.ToString()},
          {"returned", grant.returned.ToString()},
          {"balance", program.AccountBalance(grant.account).ToString()},
          {"start_us", grant.start_us},
          {"end_us", grant.end_us},
          {"status", program::ToString(grant.status)},
          {"tranches", std::move(tranches)},
          {"students", std::move(students)}};
}

json ObligationView(const program::Obligation& obligation) {
  return {{"id", obligation.id},
          {"grant", obligation.grant},
          {"kind", program::ToString(obligation.kind)},
          {"sequence", obligation.sequence},
          {"due_us", obligation.due_us},
          {"state", program::ToString(obligation.state)},
          {"reference", obligation.reference},
          {"license", obligation.license},
          {"was_overdue", obligation.was_overdue}};
}

json JobView(const core::AppState& app, const core::JobRecord& record) {
  const sched::Job& job = app.scheduler()->job(record.sched_id);
  json placement = json::array();
  for (const sched::Alloc& alloc : job.placement) {
    placement.push_back(app.cluster()->nodes()[alloc.node].name);
  }
  core::JobTexts texts = record.UnpackTexts();
  return {{"id", record.id()},
          {"program", record.program},
          {"grant", record.grant},
          {"owner", record.owner},
          {"name", std::move(texts.name)},
          {"argv", std::move(texts.argv)},
          {"chips", job.shape.chips},
          {"class", cluster::ToString(job.job_class)},
          {"walltime_s", job.walltime_s},
          {"state", app.JobStateText(record)},
          {"reason",
           job.state == sched::JobState::kPending ? json(app.WaitReason(record)) : json(nullptr)},
          {"submitted_us", record.submitted_us},
          {"started_s", job.first_start_s},
          {"ended_s", job.end_s},
          {"ran_s", job.ran_s},
          {"charged", job.charged.ToString()},
          {"nodes", std::move(placement)},
          {"run",
           {{"number", job.runs},
            {"started_us", record.run_started_us},
            {"ended_us", record.run_ended_us},
            {"exit_code", record.exit_code},
            {"signal", record.term_signal}}}};
}

// ---- reads -------------------------------------------------------------------------

Result<json> ListPrograms(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  return ListMap(
      request.app.programs(), page, [](const auto&) { return true; },
      [](const program::ProgramState& program) { return ProgramView(program); });
}

Result<json> ShowProgram(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  return ProgramView(*program);
}

Result<json> ListTracks(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  json items = json::array();
  for (const program::Track& track : program->definition().tracks) {
    items.push_back(TrackView(*program, track));
  }
  return json{{"items", std::move(items)}, {"next", nullptr}};
}

Result<json> ListCalls(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  const std::string state = QueryValue(request, "state");
  json items = json::array();
  for (const program::CallDefinition& call : program->definition().calls) {
    if (!state.empty() && program::ToString(program->call_state(call.id)) != state) continue;
    items.push_back(CallView(*program, call));
  }
  return json{{"items", std::move(items)}, {"next", nullptr}};
}

Result<json> ShowCall(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  const program::CallDefinition* call = program->FindCall(request.params.at("call"));
  if (call == nullptr) return Error{ErrorCode::kNotFound, "no such call", "call"};
  return CallView(*program, *call);
}

Result<json> ListProposals(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const std::string call = QueryValue(request, "call");
  const std::string status = QueryValue(request, "status");
  return ListMap(
      program->proposals(), page,
      [&](const program::Proposal& proposal) {
        return core::CanSeeProposal(*program, request.actor, proposal) &&
               (call.empty() || proposal.input.call == call) &&
               (status.empty() || program::ToString(proposal.status) == status);
      },
      ProposalView);
}

Result<json> ShowProposal(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  const std::string& id = request.params.at("proposal");
  const auto found = program->proposals().find(id);
  if (found == program->proposals().end() ||
      !core::CanSeeProposal(*program, request.actor, found->second)) {
    return Error{ErrorCode::kNotFound, "no proposal " + id, "proposal"};
  }
  return ProposalView(found->second);
}

Result<json> ListReviews(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const std::string proposal = QueryValue(request, "proposal");
  return ListVector(
      program->reviews(), page,
      [&](const program::Review& review) {
        return (core::IsStaff(request.actor) || review.reviewer == request.actor.person) &&
               (proposal.empty() || review.proposal == proposal);
      },
      [](const program::Review& review) {
        return json{{"reviewer", review.reviewer},
                    {"proposal", review.proposal},
                    {"scores", review.scores},
                    {"comment", review.comment},
                    {"submitted_us", review.submitted_us}};
      });
}

Result<json> ListConflicts(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  return ListVector(
      program->conflicts(), page,
      [&](const program::Conflict& conflict) {
        return core::IsStaff(request.actor) || conflict.reviewer == request.actor.person;
      },
      [](const program::Conflict& conflict) {
        return json{{"reviewer", conflict.reviewer},
                    {"proposal", conflict.proposal},
                    {"reason", program::ToString(conflict.reason)},
                    {"note", conflict.note}};
      });
}

Result<json> ShowDecision(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  const std::string& call = request.params.at("call");
  const auto found = program->decisions().find(call);
  if (found == program->decisions().end()) {
    return Error{ErrorCode::kNotFound, "no decision for call " + call, "call"};
  }
  const program::Decision& decision = found->second;
  json outcomes = json::array();
  for (const program::ProposalOutcome& outcome : decision.outcomes) {
    outcomes.push_back({{"proposal", outcome.proposal},
                        {"rank", outcome.rank},
                        {"merit", outcome.merit},
                        {"requested", outcome.requested.ToString()},
                        {"awarded", outcome.awarded.ToString()},
                        {"rationale", program::ToString(outcome.rationale)},
                        {"explanation", outcome.explanation}});
    if (!outcome.overrides.empty()) {  // governance: what the optimiser alone awarded
      outcomes.back()["base_awarded"] = outcome.base_awarded.ToString();
      outcomes.back()["overrides"] = outcome.overrides;
    }
  }
  return json{{"call", decision.call},
              {"policy", decision.policy},
              {"optimal", decision.optimal},
              {"gap", decision.gap},
              {"total_awarded", decision.total_awarded.ToString()},
              {"committed", decision.committed},
              {"outcomes", std::move(outcomes)}};
}

// ---- governance (docs/governance.md) ------------------------------------------------

// Whether the caller may see a call's overrides before its decision is committed: the
// sponsor who makes them and the staff who run the call. Everyone once it is committed.
bool SeesSealedGovernance(const Actor& actor) {
  return core::IsStaff(actor) || actor.role == Role::kSponsor;
}

// GET .../calls/{call}/decision/overrides: the call's overrides. Public once the decision
// is committed (what its override_committed entries publish); before, sealed like the
// draft (sponsor, officer, admin only).
Result<json> ListOverrides(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const std::string& call = request.params.at("call");
  if (program->FindCall(call) == nullptr) {
    return Error{ErrorCode::kNotFound, "no call " + call, "call"};
  }
  const auto decision = program->decisions().find(call);
  const bool committed = decision != program->decisions().end() && decision->second.committed;
  if (!committed && !SeesSealedGovernance(request.actor)) {
    return Error{ErrorCode::kForbidden,
                 "a call's overrides are sealed until its decision is committed", "call"};
  }
  static const std::vector<program::SponsorOverride> kNone;
  const auto found = program->overrides().find(call);
  const std::vector<program::SponsorOverride>& made =
      found == program->overrides().end() ? kNone : found->second;
  ATRIUM_ASSIGN_OR_RETURN(
      json listed,
      ListVector(
          made, page, [](const program::SponsorOverride&) { return true; },
          [&](const program::SponsorOverride& entry) {
            json displaced = json::array();
            if (decision != program->decisions().end()) {
              for (const program::ProposalOutcome& outcome : decision->second.outcomes) {
                if (outcome.rationale == program::Rationale::kDisplacedByOverride &&
                    std::find(outcome.overrides.begin(), outcome.overrides.end(), entry.id) !=
                        outcome.overrides.end()) {
                  displaced.push_back({{"proposal", outcome.proposal},
                                       {"before", outcome.base_awarded.ToString()},
                                       {"after", outcome.awarded.ToString()}});
                }
              }
            }
            return json{{"id", entry.id},
                        {"call", entry.call},
                        {"proposal", entry.proposal},
                        {"kind", program::ToString(entry.kind)},
                        {"reason", entry.reason},
                        {"text", entry.text},
                        {"sponsor", entry.sponsor},
                        {"moved", entry.moved.ToString()},
                        {"made_us", entry.at_us},
                        {"displaced", std::move(displaced)}};
          }));
  listed["committed"] = committed;
  return listed;
}

// An appeal as the caller may see it. Everyone: what the log publishes (ground, state,
// the officer's reason, the grant, the count of reviewers). The staff and the proposal's
// own team also see the applicant's text, who filed it and the reviewers' names.
json AppealView(const program::ProgramState& program, const Actor& actor,
                const program::Appeal& appeal) {
  json view = {{"id", appeal.id},
               {"proposal", appeal.proposal},
               {"call", appeal.call},
               {"ground", appeal.ground},
               {"state", program::ToString(appeal.state)},
               {"reason", appeal.reason},
               {"grant", appeal.grant},
               {"reviewers_assigned", appeal.reviewers.size()},
               {"filed_us", appeal.filed_us},
               {"decided_us", appeal.decided_us}};
  if (!appeal.grant.empty()) {
    const auto grant = program.grants().find(appeal.grant);
    if (grant != program.grants().end()) view["funded"] = grant->second.awarded.ToString();
  }
  const auto proposal = program.proposals().find(appeal.proposal);
  const bool own = proposal != program.proposals().end() && !actor.person.empty() &&
                   (actor.role == Role::kResearcher || actor.role == Role::kStudent) &&
                   core::CanSeeProposal(program, actor, proposal->second);
  if (core::IsStaff(actor) || own) {
    view["text"] = appeal.text;
    view["filed_by"] = appeal.filed_by;
    if (core::IsStaff(actor)) view["reviewers"] = appeal.reviewers;
  }
  return view;
}

// GET .../calls/{call}/appeals: the appeals of a call's committed decision (appeals exist
// only after the commit, so they are public), filter ?state=filed|upheld|rejected.
Result<json> ListAppeals(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const std::string& call = request.params.at("call");
  if (program->FindCall(call) == nullptr) {
    return Error{ErrorCode::kNotFound, "no call " + call, "call"};
  }
  const std::string state = QueryValue(request, "state");
  if (!state.empty() && state != "filed" && state != "upheld" && state != "rejected") {
    return Error{ErrorCode::kInvalidArgument, "state must be filed, upheld or rejected", "state"};
  }
  return ListMap(
      program->appeals(), page,
      [&](const program::Appeal& appeal) {
        return appeal.call == call && (state.empty() || program::ToString(appeal.state) == state);
      },
      [&](const program::Appeal& appeal) { return AppealView(*program, request.actor, appeal); });
}

Result<json> ShowAppeal(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  const std::string& id = request.params.at("appeal");
  const auto found = program->appeals().find(id);
  if (found == program->appeals().end()) {
    return Error{ErrorCode::kNotFound, "no appeal " + id, "appeal"};
  }
  return AppealView(*program, request.actor, found->second);
}

// A percent with at most two decimals ("25", "12.5", "0.25") as basis points, exactly.
std::optional<int64_t> PercentToBp(std::string_view text) {
  const size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 3 || fraction.size() > 2 ||
      (dot != std::string_view::npos && fraction.empty())) {
    return std::nullopt;
  }
  int64_t bp = 0;
  for (const char c : whole) {
    if (c < '0' || c > '9') return std::nullopt;
    bp = bp * 10 + (c - '0');
  }
  bp *= 100;
  int64_t scale = 10;
  for (const char c : fraction) {
    if (c < '0' || c > '9') return std::nullopt;
    bp += (c - '0') * scale;
    scale /= 10;
  }
  return bp;
}

// GET .../whatif?budget=<credits>&floor=<name>:<percent>[,<name>:<percent>]&policy=
// The draft the call would get with another budget, floors or policy; nothing is stored.
Result<json> WhatIfDecision(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  const std::string& call = request.params.at("call");
  program::WhatIfInput input;
  for (const auto& [key, value] : request.query) {
    if (key == "budget") {
      const Result<Credits> budget = Credits::Parse(value);
      if (!budget.ok() || input.budget.has_value()) {
        return Error{ErrorCode::kInvalidArgument,
                     "budget must be credits, once, e.g. 250000 or 1234.5 (" + value + ")",
                     "budget"};
      }
      input.budget = *budget;
    } else if (key == "floor") {
      size_t start = 0;
      while (start <= value.size()) {
        size_t end = value.find(',', start);
        if (end == std::string::npos) end = value.size();
        const std::string item = value.substr(start, end - start);
        const size_t colon = item.rfind(':');
        const std::optional<int64_t> bp =
            colon == std::string::npos ? std::nullopt
                                       : PercentToBp(std::string_view(item).substr(colon + 1));
        if (colon == 0 || !bp.has_value() || *bp > 10'000 ||
            !input.floor_bp.emplace(item.substr(0, colon), *bp).second) {
          return Error{ErrorCode::kInvalidArgument,
                       "floor must be <name>:<percent 0 to 100>, comma separated, each floor "
                       "once (" +
                           item + ")",
                       "floor"};
        }
        start = end + 1;
      }
    } else if (key == "policy") {
      if ((value != "mip" && value != "greedy") || !input.policy.empty()) {
        return Error{ErrorCode::kInvalidArgument, "policy must be mip or greedy, once", "policy"};
      }
      input.policy = value;
    } else {
      return Error{ErrorCode::kInvalidArgument,
                   "unknown query parameter " + key + " (budget, floor, policy)", key};
    }
  }
  ATRIUM_ASSIGN_OR_RETURN(const program::WhatIfResult result, program->WhatIf(call, input));
  const program::Decision& draft = result.draft;
  json outcomes = json::array();
  int64_t funded = 0;
  for (const program::ProposalOutcome& outcome : draft.outcomes) {
    funded += outcome.awarded.is_zero() ? 0 : 1;
    outcomes.push_back({{"proposal", outcome.proposal},
                        {"rank", outcome.rank},
                        {"merit", outcome.merit},
                        {"requested", outcome.requested.ToString()},
                        {"awarded", outcome.awarded.ToString()},
                        {"rationale", program::ToString(outcome.rationale)},
                        {"explanation", outcome.explanation}});
  }
  json floors = json::array();
  for (const program::FloorOutcome& floor : draft.floors) {
    floors.push_back({{"name", floor.name},
                      {"share_bp_required", floor.share_bp_required},
                      {"share_bp_enforced", floor.share_bp_enforced},
                      {"share_bp_achieved", floor.share_bp_achieved},
                      {"met", floor.met}});
  }
  return json{{"call", draft.call},
              {"what_if", true},
              {"policy", draft.policy},
              {"optimal", draft.optimal},
              {"gap", draft.gap},
              {"budget", result.budget.ToString()},
              {"total_awarded", draft.total_awarded.ToString()},
              {"funded", funded},
              {"outcomes", std::move(outcomes)},
              {"floors", std::move(floors)}};
}

Result<json> ListGrants(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const std::string status = QueryValue(request, "status");
  const std::string call = QueryValue(request, "call");
  return ListMap(
      program->grants(), page,
      [&](const program::Grant& grant) {
        return core::CanSeeGrant(request.actor, grant) &&
               (status.empty() || program::ToString(grant.status) == status) &&
               (call.empty() || grant.call == call);
      },
      [&](const program::Grant& grant) { return GrantView(*program, grant); });
}

Result<json> ShowGrant(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, GrantOf(request, *program));
  return GrantView(*program, *grant);
}

Result<json> GrantBalance(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, GrantOf(request, *program));
  return json{{"grant", grant->id},
              {"balance", program->AccountBalance(grant->account).ToString()},
              {"available", program->AccountAvailable(grant->account).ToString()},
              {"awarded", grant->awarded.ToString()},
              {"spent", grant->spent.ToString()},
              {"status", program::ToString(grant->status)}};
}

Result<json> ListObligations(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const std::string grant = QueryValue(request, "grant");
  const std::string state = QueryValue(request, "state");
  return ListMap(
      program->obligations(), page,
      [&](const program::Obligation& obligation) {
        const auto owner = program->grants().find(obligation.grant);
        return owner != program->grants().end() &&
               core::CanSeeGrant(request.actor, owner->second) &&
               (grant.empty() || obligation.grant == grant) &&
               (state.empty() || program::ToString(obligation.state) == state);
      },
      ObligationView);
}

Result<json> ListAccounts(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  json items = json::array();
  program->ForEachAccount([&](const ledger::Account& account) {
    items.push_back({{"id", FormatId128(account.id)},
                     {"kind", ledger::ToString(account.kind)},
                     {"balance", account.balance().ToString()},
                     {"available", account.available().ToString()},
                     {"frozen", (account.flags & ledger::kFrozen) != 0},
                     {"closed", (account.flags & ledger::kClosed) != 0}});
  });
  return json{{"items", std::move(items)}, {"next", nullptr}};
}

Result<json> ProgramReport(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  return report::ProgramReportJson(*program);
}

Result<json> PublicLog(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  ATRIUM_ASSIGN_OR_RETURN(json list,
                          ListVector(
                              program->log().entries(), page, [](const auto&) { return true; },
                              [](const program::LogEntry& entry) {
                                return json{{"seq", entry.seq},   {"at_us", entry.at_us},
                                            {"type", entry.type}, {"data", entry.data},
                                            {"prev", entry.prev}, {"hash", entry.hash}};
                              }));
  list["head"] = program->log().head();
  return list;
}

using JobIds = core::JobIdList;

// A page of the jobs whose ids are in any of `sources` (index sets, each in job order),
// merged in job order, after the cursor: the same page ListMap gives over every job, but
// it looks only at the indexed ids.
template <class Keep, class View>
json ListJobIds(const core::AppState& app, const std::vector<const JobIds*>& sources,
                const Page& page, Keep keep, View view) {
  std::vector<std::pair<JobIds::const_iterator, JobIds::const_iterator>> heads;
  for (const JobIds* ids : sources) {
    if (ids == nullptr) continue;
    heads.emplace_back(page.after.empty() ? ids->begin() : ids->upper_bound(page.after),
                       ids->end());
  }
  const core::ShortLexLess less;
  json items = json::array();
  std::string last;
  bool more = false;
  for (;;) {
    const std::string* smallest = nullptr;
    for (const auto& [at, end] : heads) {
      if (at != end && (smallest == nullptr || less(*at, *smallest))) smallest = &*at;
    }
    if (smallest == nullptr) break;
    const std::string id = *smallest;
    for (auto& [at, end] : heads) {
      if (at != end && *at == id) ++at;
    }
    const core::JobRecord* found = app.jobs().Find(id);
    if (found == nullptr || !keep(*found)) continue;
    if (items.size() == page.limit) {
      more = true;
      break;
    }
    items.push_back(view(*found));
    last = id;
  }
  return {{"items", std::move(items)}, {"next", more ? json(last) : json(nullptr)}};
}

// Filtered lists look at an index, not at every job, where one narrows them: a program's
// grant (?program= and ?grant=), a researcher's or student's view (their own jobs and
// those of the grants they belong to), and ?state=pending or running (the scheduler's
// active jobs). The filter below still decides.
Result<json> ListJobs(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const std::string state = QueryValue(request, "state");
  const std::string grant = QueryValue(request, "grant");
  const std::string program = QueryValue(request, "program");
  const core::AppState& app = request.app;
  const auto keep = [&](const core::JobRecord& job) {
    return core::CanSeeJob(app, request.actor, job) && (grant.empty() || job.grant == grant) &&
           (program.empty() || job.program == program) &&
           (state.empty() || app.JobStateText(job) == state);
  };
  const auto view = [&](const core::JobRecord& job) { return JobView(app, job); };
  if (!program.empty() && !grant.empty()) {
    return ListJobIds(app, {app.JobsOfGrant(program, grant)}, page, keep, view);
  }
  const Role role = request.actor.role;
  if (role == Role::kResearcher || role == Role::kStudent) {
    const std::string& person = request.actor.person;
    if (person.empty()) return json{{"items", json::array()}, {"next", nullptr}};
    std::vector<const JobIds*> sources = {app.JobsOfOwner(person)};
    for (const auto& [program_id, state_of_program] : app.programs()) {
      if (!program.empty() && program_id != program) continue;
      for (const auto& [grant_id, each] : state_of_program.grants()) {
        if ((grant.empty() || grant_id == grant) && core::BelongsToGrant(each, person)) {
          sources.push_back(app.JobsOfGrant(program_id, grant_id));
        }
      }
    }
    return ListJobIds(app, sources, page, keep, view);
  }
  // Pending and running jobs are few beside years of finished ones: list them from the
  // scheduler's queue and running sets.
  if (state == "pending" || state == "running") {
    const JobIds active =
        app.ActiveJobs(state == "pending" ? sched::JobState::kPending : sched::JobState::kRunning);
    return ListJobIds(app, {&active}, page, keep, view);
  }
  // Every job, in submission order from the cursor.
  json items = json::array();
  bool more = false;
  std::string last;
  for (auto it = page.after.empty() ? app.jobs().begin() : app.jobs().upper_bound(page.after);
       it != app.jobs().end(); ++it) {
    if (!keep(*it)) continue;
    if (items.size() == page.limit) {
      more = true;
      break;
    }
    items.push_back(view(*it));
    last = it->id();
  }
  return json{{"items", std::move(items)}, {"next", more ? json(last) : json(nullptr)}};
}

Result<json> ShowJob(const ReadRequest& request) {
  const std::string& id = request.params.at("job");
  const core::JobRecord* found = request.app.jobs().Find(id);
  if (found == nullptr || !core::CanSeeJob(request.app, request.actor, *found)) {
    return Error{ErrorCode::kNotFound, "no job " + id, "job"};
  }
  return JobView(request.app, *found);
}

// GET /v1/jobs/{job}/logs?stream=stdout|stderr&offset=&length=: a byte range of the
// job's output as the local executor captured it (DATA/jobs/<job>/). `data` is the text
// (invalid UTF-8 replaced); `next_offset` is where the following read starts; `ended`
// says no more output will come (the job is neither pending nor running).
Result<json> JobLogs(const ReadRequest& request) {
  const std::string& id = request.params.at("job");
  const core::JobRecord* found = request.app.jobs().Find(id);
  if (found == nullptr || !core::CanSeeJob(request.app, request.actor, *found)) {
    return Error{ErrorCode::kNotFound, "no job " + id, "job"};
  }
  std::string stream = QueryValue(request, "stream");
  if (stream.empty()) stream = "stdout";
  if (stream != "stdout" && stream != "stderr") {
    return Error{ErrorCode::kInvalidArgument, "stream is stdout or stderr", "stream"};
  }
  auto number = [&](const char* key, int64_t fallback, int64_t min,
                    int64_t max) -> Result<int64_t> {
    const std::string text = QueryValue(request, key);
    if (text.empty()) return fallback;
    int64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < min || value > max) {
      return Error{ErrorCode::kInvalidArgument,
                   fmt::format("{} must be an integer from {} to {}", key, min, max), key};
    }
    return value;
  };
  constexpr int64_t kLengthMax = 1 << 20;
  ATRIUM_ASSIGN_OR_RETURN(const int64_t offset,
                          number("offset", 0, 0, std::numeric_limits<int64_t>::max() / 2));
  ATRIUM_ASSIGN_OR_RETURN(const int64_t length,
                          number("length", int64_t{64} * 1024, 1, kLengthMax));
  const std::string jobs_dir = (std::filesystem::path(request.data_dir) / "jobs").string();
  ATRIUM_ASSIGN_OR_RETURN(exec::LogChunk chunk,
                          exec::ReadJobLog(jobs_dir, id, stream, offset, length));
  const sched::JobState state = request.app.scheduler()->job(found->sched_id).state;
  const auto read = static_cast<int64_t>(chunk.data.size());
  // Output is bytes; the JSON string carries it with invalid UTF-8 replaced (U+FFFD).
  const std::string text =
      json(std::move(chunk.data)).dump(-1, ' ', false, json::error_handler_t::replace);
  return json{{"job", id},
              {"stream", stream},
              {"offset", offset},
              {"length", read},
              {"next_offset", offset + read},
              {"size", chunk.size},
              {"ended", state != sched::JobState::kPending && state != sched::JobState::kRunning},
              {"data", json::parse(text)}};
}

Result<json> ListNodes(const ReadRequest& request) {
  const cluster::Cluster* cluster = request.app.cluster();
  if (cluster == nullptr) return json{{"items", json::array()}, {"next", nullptr}};
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const std::string state = QueryValue(request, "state");
  std::vector<uint32_t> nodes(cluster->nodes().size());
  for (uint32_t i = 0; i < nodes.size(); ++i) nodes[i] = i;
  return ListVector(
      nodes, page,
      [&](uint32_t node) {
        return state.empty() || cluster::ToString(request.app.node_states()[node]) == state;
      },
      [&](uint32_t node) {
        const cluster::Pool& pool = cluster->pools()[cluster->nodes()[node].pool];
        return json{{"name", cluster->nodes()[node].name},
                    {"pool", pool.name},
                    {"accelerator", cluster->accelerators()[pool.accelerator].name},
                    {"chips", pool.chips_per_node},
                    {"group", cluster->nodes()[node].group},
                    {"block", cluster->nodes()[node].block},
                    {"state", cluster::ToString(request.app.node_states()[node])}};
      });
}

Result<json> ListPartitions(const ReadRequest& request) {
  json items = json::array();
  const cluster::Cluster* cluster = request.app.cluster();
  if (cluster != nullptr) {
    for (const cluster::Partition& partition : cluster->partitions()) {
      json classes = json::array();
      for (const cluster::JobClass job_class : partition.classes) {
        classes.push_back(cluster::ToString(job_class));
      }
      items.push_back({{"name", partition.name},
                       {"classes", std::move(classes)},
                       {"chips_per_job_max", partition.chips_per_job_max},
                       {"walltime_max_s", partition.walltime_max_s}});
    }
  }
  json summary = {{"items", std::move(items)}, {"next", nullptr}};
  if (const sched::Scheduler* scheduler = request.app.scheduler()) {
    summary["chips_busy"] = scheduler->busy_chips();
    summary["chips_up"] = scheduler->up_chips();
    summary["jobs_waiting"] = scheduler->waiting_count();
  }
  return summary;
}

Result<json> UsageReport(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(
      const report::UsageQuery query,
      report::ParseUsageQuery(request.query, request.app.last_now_us() / 1'000'000));
  return report::AppUsage::Shared().Report(request.app, query);
}

Result<json> ListTokens(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  return ListMap(
      request.app.tokens(), page,
      [&](const core::TokenRecord& token) {
        return request.actor.role == Role::kAdmin || token.id == request.actor.token ||
               (!request.actor.person.empty() && token.person == request.actor.person &&
                token.role == request.actor.role);
      },
      [](const core::TokenRecord& token) {
        return json{{"id", token.id},
                    {"role", core::ToString(token.role)},
                    {"person", token.person},
                    {"label", token.label},
                    {"created_us", token.created_us},
                    {"revoked", token.revoked}};
      });
}

Result<json> WhoAmI(const ReadRequest& request) {
  return json{{"role", core::ToString(request.actor.role)},
              {"person", request.actor.person},
              {"token", request.actor.token}};
}

// The reads, by hand; the changes come from the op table (core/ops.h).
std::vector<Route> ReadRoutes() {
  return {
      {"GET", "/v1/me", "whoami", kSignedIn, {}, {}, 200, WhoAmI, "The caller's role and person"},
      {"GET",
       "/v1/tokens",
       "token_list",
       kSignedIn,
       {},
       {},
       200,
       ListTokens,
       "Tokens: all for an admin, one's own otherwise"},
      {"GET", "/v1/programs", "program_list", kAll, {}, {}, 200, ListPrograms, "Programs"},
      {"GET",
       "/v1/programs/{program}",
       "program_show",
       kAll,
       {},
       {},
       200,
       ShowProgram,
       "A program: tracks, calls, budget"},
      {"GET",
       "/v1/programs/{program}/tracks",
       "track_list",
       kAll,
       {},
       {},
       200,
       ListTracks,
       "A program's tracks and what is left in each"},
      {"GET",
       "/v1/programs/{program}/calls",
       "call_list",
       kAll,
       {},
       {},
       200,
       ListCalls,
       "Calls, filter ?state="},
      {"GET",
       "/v1/programs/{program}/calls/{call}",
       "call_show",
       kAll,
       {},
       {},
       200,
       ShowCall,
       "A call"},
      {"GET",
       "/v1/programs/{program}/calls/{call}/decision",
       "decision_show",
       kStaff | RoleBit(Role::kSponsor),
       {},
       {},
       200,
       ShowDecision,
       "The call's draft or committed decision"},
      {"GET",
       "/v1/programs/{program}/calls/{call}/decision/overrides",
       "override_list",
       kAll,
       {},
       {},
       200,
       ListOverrides,
       "The sponsor's overrides of a call: public once its decision is committed, before "
       "that the sponsor's and the staff's only"},
      {"GET",
       "/v1/programs/{program}/calls/{call}/appeals",
       "appeal_list",
       kAll,
       {},
       {},
       200,
       ListAppeals,
       "Appeals of a call's committed decision, filter ?state=filed|upheld|rejected (the "
       "applicant's text and the reviewers: staff and the proposal's team)"},
      {"GET",
       "/v1/programs/{program}/appeals/{appeal}",
       "appeal_show",
       kAll,
       {},
       {},
       200,
       ShowAppeal,
       "An appeal"},
      {"GET",
       "/v1/programs/{program}/calls/{call}/whatif",
       "decision_whatif",
       kStaff,
       {},
       {},
       200,
       WhatIfDecision,
       "What-if: the draft with another ?budget= (credits), ?floor=<name>:<percent>[,...] or "
       "?policy=; nothing is stored or journaled"},
      {"GET",
       "/v1/programs/{program}/proposals",
       "proposal_list",
       kStaff | kReviewers | kResearchers,
       {},
       {},
       200,
       ListProposals,
       "Proposals one may see, filter ?call= ?status="},
      {"GET",
       "/v1/programs/{program}/proposals/{proposal}",
       "proposal_show",
       kStaff | kReviewers | kResearchers,
       {},
       {},
       200,
       ShowProposal,
       "A proposal"},
      {"GET",
       "/v1/programs/{program}/conflicts",
       "conflict_list",
       kStaff | kReviewers,
       {},
       {},
       200,
       ListConflicts,
       "Conflicts of interest (a reviewer sees their own)"},
      {"GET",
       "/v1/programs/{program}/reviews",
       "review_list",
       kStaff | kReviewers,
       {},
       {},
       200,
       ListReviews,
       "Reviews (a reviewer sees their own)"},
      {"GET",
       "/v1/programs/{program}/grants",
       "grant_list",
       kStaff | kResearchers | kStudents,
       {},
       {},
       200,
       ListGrants,
       "Grants one may see, filter ?status= ?call="},
      {"GET",
       "/v1/programs/{program}/grants/{grant}",
       "grant_show",
       kStaff | kResearchers | kStudents,
       {},
       {},
       200,
       ShowGrant,
       "A grant"},
      {"GET",
       "/v1/programs/{program}/grants/{grant}/balance",
       "grant_balance",
       kStaff | kResearchers | kStudents,
       {},
       {},
       200,
       GrantBalance,
       "A grant's balance"},
      {"GET",
       "/v1/programs/{program}/obligations",
       "obligation_list",
       kStaff | kResearchers | kStudents,
       {},
       {},
       200,
       ListObligations,
       "Obligations, filter ?grant= ?state="},
      {"GET",
       "/v1/programs/{program}/accounts",
       "account_list",
       kStaff,
       {},
       {},
       200,
       ListAccounts,
       "The program's ledger accounts and balances"},
      {"GET",
       "/v1/programs/{program}/report",
       "report_show",
       kAll,
       {},
       {},
       200,
       ProgramReport,
       "The transparency report"},
      {"GET",
       "/v1/programs/{program}/log",
       "log_list",
       kAll,
       {},
       {},
       200,
       PublicLog,
       "The public, hash-chained decision log"},

      {"GET",
       "/v1/jobs",
       "job_list",
       kStaff | kResearchers | kStudents | RoleBit(Role::kOperator),
       {},
       {},
       200,
       ListJobs,
       "Jobs one may see, filter ?state= ?grant= ?program="},
      {"GET",
       "/v1/jobs/{job}",
       "job_show",
       kStaff | kResearchers | kStudents | RoleBit(Role::kOperator),
       {},
       {},
       200,
       ShowJob,
       "A job"},
      {"GET",
       "/v1/jobs/{job}/logs",
       "job_logs",
       kStaff | kResearchers | kStudents | RoleBit(Role::kOperator),
       {},
       {},
       200,
       JobLogs,
       "A job's output: ?stream=stdout|stderr &offset= &length= (bytes, at most 1 MiB)"},
      {"GET",
       "/v1/cluster/nodes",
       "node_list",
       kSignedIn,
       {},
       {},
       200,
       ListNodes,
       "Nodes and their states, filter ?state="},
      {"GET",
       "/v1/cluster/partitions",
       "partition_list",
       kSignedIn,
       {},
       {},
       200,
       ListPartitions,
       "Partitions, and chips busy"},
      {"GET",
       "/v1/usage",
       "usage_report",
       kStaff | RoleBit(Role::kOperator),
       {},
       {},
       200,
       UsageReport,
       "Usage per step: chip-hours, credits, jobs, waits, utilisation; ?from= &to= &step= "
       "&group_by=grant|institution|field|accelerator|partition"},
  };
}

}  // namespace

const std::vector<Route>& Routes() {
  static const std::vector<Route> routes = [] {
    std::vector<Route> all = ReadRoutes();
    for (auto* more : {ReservationReadRoutes, TrainingReadRoutes, DatasetReadRoutes}) {
      std::vector<Route> part = more();
      all.insert(all.end(), part.begin(), part.end());
    }
    for (const core::OpSpec& spec : core::Ops()) {
      if (spec.route.method.empty()) continue;
      all.push_back(Route{.method = spec.route.method,
                          .path = spec.route.path,
                          .name = spec.name,
                          .roles = spec.roles,
                          .op = spec.name,
                          .body_field = spec.route.body_field,
                          .success_status = spec.route.success_status,
                          .read = nullptr,
                          .summary = spec.summary});
    }
    // Grouped by resource: a path's reads and changes side by side.
    std::stable_sort(all.begin(), all.end(),
                     [](const Route& a, const Route& b) { return a.path < b.path; });
    return all;
  }();
  return routes;
}

std::string RoutesMarkdown() {
  // One column per role, in the Role enum's order (the header follows it too).
  std::string out = "| method | path | operation |";
  std::string rule = "|---|---|---|";
  for (int role = 0; role < core::kRoleCount; ++role) {
    out += fmt::format(" {} |", core::ToString(static_cast<Role>(role)));
    rule += "---|";
  }
  out += "\n" + rule + "\n";
  for (const Route& route : Routes()) {
    out += fmt::format("| {} | `{}` | {} |", route.method, route.path, route.name);
    for (int role = 0; role < core::kRoleCount; ++role) {
      out += (route.roles & RoleBit(static_cast<Role>(role))) != 0 ? " yes |" : " - |";
    }
    out += "\n";
  }
  return out;
}

}  // namespace atrium::server
