// Governance in the open (docs/governance.md): the sponsor's overrides of a draft
// decision, applicants' appeals of a committed one, and the sponsor's declared ties.
// Part of ProgramState; deterministic like the rest of it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "program/program_state.h"

namespace atrium::program {
namespace {

using nlohmann::json;

template <typename T>
bool Contains(const std::vector<T>& values, const T& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

std::string Money(Credits amount) { return amount.ToString(); }

std::string RankText(const ProposalOutcome& outcome) {
  char score[32];
  std::snprintf(score, sizeof(score), "%.2f", outcome.merit);
  return "rank " + std::to_string(outcome.rank) + ", score " + score;
}

std::string JoinIds(const std::vector<std::string>& ids) {
  std::string out;
  for (const std::string& id : ids) out += (out.empty() ? "" : ", ") + id;
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Overrides.

Result<Decision> ProgramState::SolveWithOverrides(const std::string& call_id,
                                                  const std::string& policy_name,
                                                  const AwardOptions& options,
                                                  const std::vector<SponsorOverride>& overrides,
                                                  int64_t now_us) const {
  ATRIUM_ASSIGN_OR_RETURN(const Decision base, SolveDecision(call_id, policy_name, options, nullptr,
                                                             now_us, nullptr, nullptr));
  ATRIUM_ASSIGN_OR_RETURN(Decision decision, SolveDecision(call_id, policy_name, options, nullptr,
                                                           now_us, nullptr, &overrides));
  std::map<std::string, const ProposalOutcome*> before;
  for (const ProposalOutcome& outcome : base.outcomes) before[outcome.proposal] = &outcome;
  std::vector<std::string> all_ids;
  all_ids.reserve(overrides.size());
  for (const SponsorOverride& entry : overrides) all_ids.push_back(entry.id);
  for (ProposalOutcome& outcome : decision.outcomes) {
    const auto old = before.find(outcome.proposal);
    const ProposalOutcome* base_outcome = old == before.end() ? nullptr : old->second;
    outcome.base_awarded = base_outcome == nullptr ? Credits::Zero() : base_outcome->awarded;
    const auto own = std::find_if(
        overrides.begin(), overrides.end(),
        [&](const SponsorOverride& entry) { return entry.proposal == outcome.proposal; });
    if (own != overrides.end()) {
      outcome.overrides = {own->id};
      const std::string by = " by the sponsor (" + own->id + ", reason " + own->reason + "): ";
      if (own->kind == OverrideKind::kVeto) {
        outcome.rationale = Rationale::kVetoedByOverride;
        outcome.explanation = "vetoed" + by + RankText(outcome) + "; the optimiser awarded " +
                              Money(outcome.base_awarded) + " credits";
      } else {
        outcome.rationale = Rationale::kAddedByOverride;
        outcome.explanation = "added" + by + RankText(outcome) + "; funded in full, " +
                              Money(outcome.awarded) + " credits; the optimiser declined it";
      }
    } else if (outcome.awarded != outcome.base_awarded) {
      const std::string was = base_outcome == nullptr
                                  ? std::string("unranked")
                                  : std::string(ToString(base_outcome->rationale));
      outcome.overrides = all_ids;
      outcome.rationale = Rationale::kDisplacedByOverride;
      outcome.explanation = "displaced by override " + JoinIds(all_ids) + ": " + RankText(outcome) +
                            "; the optimiser alone awarded " + Money(outcome.base_awarded) + " (" +
                            was + "), now " + Money(outcome.awarded);
    }
  }
  return decision;
}

Result<SponsorOverride> ProgramState::OverrideDecision(const std::string& call_id,
                                                       const std::string& proposal_id,
                                                       OverrideKind kind, std::string reason,
                                                       std::string text, std::string sponsor,
                                                       int64_t now_us, SolverTape* tape) {
  const CallDefinition* call = FindCall(call_id);
  if (call == nullptr) return MakeError(ErrorCode::kNotFound, "unknown call", "call");
  const OverrideRules& rules = definition_.governance.overrides;
  if (!rules.allowed()) {
    return MakeError(ErrorCode::kOverrideNotAllowed, "this program allows no sponsor overrides",
                     "call");
  }
  if (!Contains(rules.reasons, reason)) {
    return MakeError(
        ErrorCode::kOverrideNotAllowed,
        "reason '" + reason + "' is not one the program publishes (" + JoinIds(rules.reasons) + ")",
        "reason");
  }
  if (text.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "an override needs a public text", "text");
  }
  if (text.size() > kTextBytesMax) {
    return MakeError(ErrorCode::kLimitExceeded, "text longer than 64 KiB", "text");
  }
  const auto draft = decisions_.find(call_id);
  if (draft == decisions_.end() || draft->second.committed ||
      call_state(call_id) != CallState::kClosed) {
    return MakeError(ErrorCode::kInvalidState,
                     "overrides apply to a drafted decision before it is committed", "call");
  }
  const auto proposal = proposals_.find(proposal_id);
  if (proposal == proposals_.end() || proposal->second.input.call != call_id) {
    return MakeError(ErrorCode::kNotFound, "no proposal " + proposal_id + " in the call",
                     "proposal");
  }
  const std::vector<SponsorOverride> none;
  const auto existing = overrides_.find(call_id);
  const std::vector<SponsorOverride>& made = existing == overrides_.end() ? none : existing->second;
  if (std::any_of(made.begin(), made.end(),
                  [&](const SponsorOverride& entry) { return entry.proposal == proposal_id; })) {
    return MakeError(ErrorCode::kInvalidState, "the proposal is already overridden", "proposal");
  }
  const auto outcome =
      std::find_if(draft->second.outcomes.begin(), draft->second.outcomes.end(),
                   [&](const ProposalOutcome& entry) { return entry.proposal == proposal_id; });
  if (outcome == draft->second.outcomes.end()) {
    return MakeError(ErrorCode::kInvalidState, "the draft does not consider the proposal",
                     "proposal");
  }
  SponsorOverride entry{.id = call_id + ":override-" + std::to_string(made.size() + 1),
                        .call = call_id,
                        .proposal = proposal_id,
                        .kind = kind,
                        .reason = std::move(reason),
                        .text = std::move(text),
                        .sponsor = std::move(sponsor),
                        .at_us = now_us};
  if (kind == OverrideKind::kVeto) {
    if (outcome->awarded.is_zero()) {
      return MakeError(ErrorCode::kInvalidState, "only a proposal the draft funds can be vetoed",
                       "proposal");
    }
    entry.moved = outcome->awarded;
  } else {
    if (!outcome->awarded.is_zero()) {
      return MakeError(ErrorCode::kInvalidState, "only a proposal the draft declines can be added",
                       "proposal");
    }
    if (outcome->rank == 0 || proposal->second.status != ProposalStatus::kInReview) {
      return MakeError(ErrorCode::kInvalidState, "only a reviewed proposal can be added",
                       "proposal");
    }
    entry.moved = proposal->second.requested;
  }
  if (static_cast<int64_t>(made.size()) + 1 > rules.max_per_call) {
    return MakeError(
        ErrorCode::kOverrideLimit,
        "the program allows " + std::to_string(rules.max_per_call) + " override(s) per call",
        "call");
  }
  const Track& track = *FindTrack(call->track);
  const Credits budget = AccountAvailable(TrackPoolAccount(track.id));
  __int128 moved = entry.moved.micro();
  __int128 added = 0;
  std::map<std::string, __int128> added_by_institution;
  std::vector<SponsorOverride> next = made;
  next.push_back(entry);
  for (const SponsorOverride& item : next) {
    if (&item != &next.back()) moved += item.moved.micro();
    if (item.kind == OverrideKind::kAdd) {
      added += item.moved.micro();
      added_by_institution[proposals_.at(item.proposal).institution] += item.moved.micro();
    }
  }
  if (moved * kBasisPointsFull > static_cast<__int128>(rules.max_budget_bp) * budget.micro()) {
    return MakeError(ErrorCode::kOverrideLimit,
                     "overrides may move at most " + std::to_string(rules.max_budget_bp / 100) +
                         "% of the call's budget (" + Money(budget) + ")",
                     "proposal");
  }
  if (added > budget.micro()) {
    return MakeError(ErrorCode::kOverBudget, "the additions exceed the call's budget", "proposal");
  }
  if (!track.institution_cap.is_zero()) {
    for (const auto& [institution, amount] : added_by_institution) {
      if (amount + InstitutionAwarded(institution).micro() > track.institution_cap.micro()) {
        return MakeError(ErrorCode::kCapExceeded, "the additions exceed the cap of " + institution,
                         "proposal");
      }
    }
  }
  ATRIUM_ASSIGN_OR_RETURN(Decision decision, SolveWithOverrides(call_id, draft->second.policy,
                                                                {.tape = tape}, next, now_us));

  // Accepted. While the call is under review the log says only that an override was
  // made; its proposal, text and effects are published when the decision is committed.
  overrides_[call_id] = std::move(next);
  draft->second = std::move(decision);
  log_.Append(now_us, "override_recorded",
              {{"call", call_id},
               {"override", entry.id},
               {"kind", ToString(kind)},
               {"reason", entry.reason}});
  return entry;
}

// The public record of a committed decision's overrides (CommitDecision calls it).
void ProgramState::LogOverrides(const Decision& decision, int64_t now_us) {
  const auto found = overrides_.find(decision.call);
  if (found == overrides_.end()) return;
  for (const SponsorOverride& entry : found->second) {
    json displaced = json::array();
    for (const ProposalOutcome& outcome : decision.outcomes) {
      if (outcome.rationale == Rationale::kDisplacedByOverride) {
        displaced.push_back({{"proposal", outcome.proposal},
                             {"before", Money(outcome.base_awarded)},
                             {"after", Money(outcome.awarded)}});
      }
    }
    log_.Append(now_us, "override_committed",
                {{"call", entry.call},
                 {"override", entry.id},
                 {"proposal", entry.proposal},
                 {"kind", ToString(entry.kind)},
                 {"reason", entry.reason},
                 {"text", entry.text},
                 {"sponsor", entry.sponsor},
                 {"moved", Money(entry.moved)},
                 {"made_us", entry.at_us},
                 {"displaced", displaced}});
  }
}

// ---------------------------------------------------------------------------------------
// Appeals.

Result<Appeal> ProgramState::FileAppeal(const std::string& proposal_id, std::string ground,
                                        std::string text, std::string filed_by, int64_t now_us) {
  const AppealRules& rules = definition_.governance.appeals;
  const auto proposal = proposals_.find(proposal_id);
  if (proposal == proposals_.end()) {
    return MakeError(ErrorCode::kNotFound, "no proposal " + proposal_id, "proposal");
  }
  if (!rules.allowed()) {
    return MakeError(ErrorCode::kAppealNotAllowed, "this program takes no appeals", "proposal");
  }
  if (!Contains(rules.grounds, ground)) {
    return MakeError(
        ErrorCode::kAppealNotAllowed,
        "ground '" + ground + "' is not one the program publishes (" + JoinIds(rules.grounds) + ")",
        "ground");
  }
  if (text.size() > kTextBytesMax) {
    return MakeError(ErrorCode::kLimitExceeded, "text longer than 64 KiB", "text");
  }
  const std::string& call_id = proposal->second.input.call;
  const auto decision = decisions_.find(call_id);
  if (decision == decisions_.end() || !decision->second.committed ||
      proposal->second.status != ProposalStatus::kDeclined) {
    return MakeError(ErrorCode::kAppealNotAllowed,
                     "only a proposal declined by a committed decision can be appealed",
                     "proposal");
  }
  const std::string id = "A-" + proposal_id;
  if (appeals_.contains(id)) {
    return MakeError(ErrorCode::kAppealNotAllowed, "the proposal has been appealed already",
                     "proposal");
  }
  const int64_t closes_us = decision->second.committed_us + rules.window_days * kMicrosPerDay;
  if (now_us > closes_us) {
    return MakeError(
        ErrorCode::kAppealWindowClosed,
        "appeals close " + std::to_string(rules.window_days) + " days after the decision",
        "proposal");
  }

  // Reviewers: never one who was assigned to or reviewed the proposal, never one with a
  // conflict with it (the same rules as assignment, declared conflicts included).
  const Proposal& filed = proposal->second;
  ProposalProfile profile{.id = proposal_id, .topics = filed.input.topics};
  profile.people.push_back(filed.input.pi);
  for (const std::string& member : filed.input.co_investigators) profile.people.push_back(member);
  for (const std::string& member : profile.people) {
    const Person& person = people_.at(member);
    if (!Contains(profile.institutions, person.institution)) {
      profile.institutions.push_back(person.institution);
    }
    for (const std::string& other : person.collaborators) profile.collaborators.push_back(other);
  }
  std::vector<Conflict> declared;
  for (const Conflict& conflict : declared_conflicts_) {
    if (conflict.proposal == proposal_id) declared.push_back(conflict);
  }
  const std::vector<ReviewerProfile> reviewers = ReviewerProfiles();
  std::set<std::string> excluded;
  for (const Conflict& conflict : FindConflicts(reviewers, {profile}, declared)) {
    excluded.insert(conflict.reviewer);
  }
  for (const Conflict& conflict : conflicts_) {
    if (conflict.proposal == proposal_id) excluded.insert(conflict.reviewer);
  }
  for (const Assignment& assignment : assignments_) {
    if (assignment.proposal == proposal_id) excluded.insert(assignment.reviewer);
  }
  for (const Review& review : reviews_) {
    if (review.proposal == proposal_id) excluded.insert(review.reviewer);
  }
  struct Pick {
    int64_t shared;
    uint64_t hash;
    std::string id;
  };
  std::vector<Pick> picks;
  for (const ReviewerProfile& reviewer : reviewers) {
    if (excluded.contains(reviewer.id)) continue;
    int64_t shared = 0;
    for (const std::string& topic : filed.input.topics)
      shared += Contains(reviewer.expertise, topic);
    picks.push_back({shared, StableHash(id + "\n" + reviewer.id), reviewer.id});
  }
  if (picks.empty()) {
    return MakeError(ErrorCode::kUnassignable,
                     "no reviewer is free of a conflict with the proposal and new to it",
                     "proposal");
  }
  std::sort(picks.begin(), picks.end(), [](const Pick& a, const Pick& b) {
    if (a.shared != b.shared) return a.shared > b.shared;
    if (a.hash != b.hash) return a.hash < b.hash;
    return a.id < b.id;
  });
  Appeal appeal{.id = id,
                .proposal = proposal_id,
                .call = call_id,
                .ground = std::move(ground),
                .text = std::move(text),
                .filed_by = std::move(filed_by),
                .filed_us = now_us};
  for (size_t idx = 0; idx < picks.size() && static_cast<int64_t>(idx) < rules.reviewers; ++idx) {
    appeal.reviewers.push_back(picks[idx].id);
  }
  std::sort(appeal.reviewers.begin(), appeal.reviewers.end());
  log_.Append(now_us, "appeal_filed",
              {{"appeal", appeal.id},
               {"proposal", proposal_id},
               {"call", call_id},
               {"ground", appeal.ground},
               {"reviewers", static_cast<int64_t>(appeal.reviewers.size())}});
  appeals_[id] = appeal;
  return appeal;
}

Result<Appeal> ProgramState::DecideAppeal(const std::string& appeal_id, bool upheld,
                                          std::string reason, int64_t now_us) {
  const auto found = appeals_.find(appeal_id);
  if (found == appeals_.end()) {
    return MakeError(ErrorCode::kNotFound, "no appeal " + appeal_id, "appeal");
  }
  if (found->second.state != AppealState::kFiled) {
    return MakeError(ErrorCode::kInvalidState, "the appeal is decided already", "appeal");
  }
  if (reason.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "a decision on an appeal needs a reason",
                     "reason");
  }
  if (reason.size() > kTextBytesMax) {
    return MakeError(ErrorCode::kLimitExceeded, "text longer than 64 KiB", "reason");
  }
  Appeal& appeal = found->second;
  Proposal& proposal = proposals_.at(appeal.proposal);
  std::string grant_id;
  if (upheld && !definition_.governance.appeals.reserve.is_zero()) {
    // Funded from the appeals reserve, in full, at once.
    if (AccountAvailable(kAppealsReserveAccount) < proposal.requested) {
      return MakeError(ErrorCode::kInsufficientCredits,
                       "the appeals reserve has " +
                           Money(AccountAvailable(kAppealsReserveAccount)) +
                           ", the proposal asks " + Money(proposal.requested),
                       "appeal");
    }
    const Track& track = *FindTrack(FindCall(appeal.call)->track);
    Grant grant{.id = "G-" + appeal.proposal,
                .proposal = appeal.proposal,
                .call = appeal.call,
                .track = track.id,
                .pi = proposal.input.pi,
                .institution = proposal.institution,
                .awarded = proposal.requested,
                .start_us = now_us,
                .end_us = now_us + proposal.input.duration_months * kMicrosPerMonth,
                .account = next_account_};
    grant.members.push_back(proposal.input.pi);
    for (const std::string& member : proposal.input.co_investigators)
      grant.members.push_back(member);
    const ledger::AccountKind kind = track.kind == TrackKind::kEducation
                                         ? ledger::AccountKind::kCourse
                                         : ledger::AccountKind::kGrant;
    ATRIUM_TRY(CreateAccountsOrError(
        {{.id = grant.account, .kind = kind, .flags = ledger::kDebitsMustNotExceedCredits}},
        now_us));
    next_account_++;
    const uint64_t transfer = next_transfer_;
    ATRIUM_TRY(TransferOrError({{.id = transfer,
                                 .debit_account_id = kAppealsReserveAccount,
                                 .credit_account_id = grant.account,
                                 .amount = proposal.requested,
                                 .code = kCodeAward}},
                               now_us));
    next_transfer_++;
    grant.tranches.push_back({proposal.requested, "start", true, 0});
    grant_id = grant.id;
    institution_awarded_[grant.institution] =
        Credits::FromMicro(InstitutionAwarded(grant.institution).micro() + grant.awarded.micro());
    proposal.status = ProposalStatus::kAwarded;
    appeal.grant = grant_id;
    log_.Append(
        now_us, "grant_created",
        {{"grant", grant.id},
         {"proposal", grant.proposal},
         {"institution", grant.institution},
         {"track", grant.track},
         {"amount", Money(grant.awarded)},
         {"start_us", grant.start_us},
         {"end_us", grant.end_us},
         {"from", "appeals_reserve"},
         {"tranches",
          json::array(
              {{{"amount", Money(grant.awarded)}, {"condition", "start"}, {"released", true}}})}});
    AddObligations(grant, now_us);
    grants_[grant.id] = std::move(grant);
  }
  appeal.state = upheld ? AppealState::kUpheld : AppealState::kRejected;
  appeal.reason = std::move(reason);
  appeal.decided_us = now_us;
  json entry = {
      {"appeal", appeal.id},     {"proposal", appeal.proposal},       {"call", appeal.call},
      {"ground", appeal.ground}, {"outcome", ToString(appeal.state)}, {"reason", appeal.reason}};
  if (!grant_id.empty()) {
    entry["grant"] = grant_id;
    entry["funded"] = Money(proposal.requested);
  }
  log_.Append(now_us, "appeal_decided", entry);
  return appeal;
}

// ---------------------------------------------------------------------------------------
// The sponsor's ties.

std::string ProgramState::SponsorTieOf(const Proposal& proposal) const {
  for (const SponsorTie& tie : definition_.governance.sponsor_ties) {
    if (!tie.institution.empty() && tie.institution == proposal.institution) return tie.kind;
    if (!tie.person.empty() && (tie.person == proposal.input.pi ||
                                Contains(proposal.input.co_investigators, tie.person))) {
      return tie.kind;
    }
    if (!tie.institution.empty()) {
      for (const std::string& member : proposal.input.co_investigators) {
        const auto person = people_.find(member);
        if (person != people_.end() && person->second.institution == tie.institution) {
          return tie.kind;
        }
      }
    }
  }
  return {};
}

}  // namespace atrium::program
