// ProgramState: the grant program's pure state machine. One instance owns one program:
// its definition, the people and institutions it knows, its calls, proposals,
// conflicts, assignments, reviews, decisions, grants and obligations, the ledger
// accounts that carry its credits, and its public decision log.
//
// Every command takes its logical time (`now_us`) as an argument; nothing reads a clock,
// a file or a socket, and the same commands in the same order give the same state and
// the same log. A refused command returns an Error with a code and changes nothing.
//
// Credits, all through the ledger (sum of balances always zero):
//   sponsor --(create)--> program pool --(create)--> track pools
//   track pool --(commit: one linked batch)--> grant accounts; later tranches are holds
//   on the track pool, posted when their condition is met
//   grant --(usage)--> cluster revenue;  grant --(expiry/close: balancing)--> program pool
//   A sanction freezes the grant account; accepting the overdue obligation thaws it.
//
//   ATRIUM_ASSIGN_OR_RETURN(ProgramState state, ProgramState::Create(definition, t0_us));
//   ATRIUM_TRY(state.AddInstitution({...}, t0_us));
//   ATRIUM_TRY(state.OpenCall("2026-partners", opens_us));
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/credits.h"
#include "base/error.h"
#include "ledger/ledger.h"
#include "program/assignment.h"
#include "program/award_policy.h"
#include "program/decision_log.h"
#include "program/model.h"

namespace atrium::program {

// A what-if on a closed call's draft: the same problem as DraftDecision with the track
// budget and/or named fairness floors changed, solved and shown, never stored or logged.
struct WhatIfInput {
  std::optional<Credits> budget;            // replaces the track pool's available credits
  std::map<std::string, int64_t> floor_bp;  // floor name -> required share (0..10000 bp)
  std::string policy;                       // empty: the program's award_policy
  AwardOptions options;
};

struct WhatIfResult {
  Credits budget;  // the budget the what-if solved with
  Decision draft;  // outcomes, total, optimal and floors as a draft would have them
};

// Ledger transfer codes used by the program (TransferSpec::code).
enum TransferCode : uint16_t {
  kCodeFunding = 1,  // sponsor -> program pool -> track pools
  kCodeAward = 2,    // track pool -> grant (and tranche holds)
  kCodeUsage = 3,    // grant -> cluster revenue
  kCodeReturn = 4,   // grant -> program pool at expiry or close
  kCodeStudent = 5,  // course -> student sub-allocation
};

// Fixed ledger account ids of a program.
inline constexpr uint64_t kSponsorAccount = 1;
inline constexpr uint64_t kProgramPoolAccount = 2;
inline constexpr uint64_t kClusterRevenueAccount = 3;
inline constexpr uint64_t kTrackPoolAccountBase = 100;  // + track index
inline constexpr uint64_t kFirstDynamicAccount = 1'000;

class ProgramState {
 public:
  // Bounds that keep every loop over input finite.
  static constexpr size_t kProposalsMax = 100'000;
  static constexpr size_t kPeopleMax = 200'000;
  static constexpr size_t kTextBytesMax = size_t{64} * 1024;

  // Validates the definition, funds the program pool from the sponsor and each track
  // pool from the program pool, and logs program_created. `seal_secret` (bytes, at least
  // 16, drawn by the shell from the system's random source) keys the salts of the sealed
  // proposals and reviews in the public log; without one the salts derive from the
  // program's definition, which anyone holding it could recompute (tests, demos).
  static Result<ProgramState> Create(ProgramDefinition definition, int64_t now_us,
                                     std::string seal_secret = {});

  ProgramState(ProgramState&&) = default;
  ProgramState& operator=(ProgramState&&) = default;

  // People and institutions.
  Status AddInstitution(Institution institution, int64_t now_us);
  Status AddPerson(Person person, int64_t now_us);

  // Calls: scheduled -> open -> closed -> decided. Opening and closing check the
  // call's window.
  Status OpenCall(const std::string& call_id, int64_t now_us);
  Status CloseCall(const std::string& call_id, int64_t now_us);

  // Proposals: submitted while the call is open; resubmitting an id edits it, allowed
  // only while the call is open. Checks eligibility, caps and the one-per-PI rule.
  Status SubmitProposal(ProposalInput input, int64_t now_us);
  Status WithdrawProposal(const std::string& proposal_id, int64_t now_us);

  // Review: conflicts declared by hand; automatic conflicts and assignment once the
  // call is closed; reviews from assigned, non-conflicted reviewers before the deadline.
  Status DeclareConflict(const std::string& reviewer, const std::string& proposal_id,
                         std::string note, int64_t now_us);
  Result<AssignmentStats> AssignReviewers(const std::string& call_id, int64_t now_us);
  Status SubmitReview(const std::string& reviewer, const std::string& proposal_id,
                      std::vector<int64_t> scores, std::string comment, int64_t now_us);

  // The decision: a draft (replaced by a later draft) until committed. `policy` empty
  // means the program's award_policy. Commit re-checks every budget and cap against the
  // ledger as it stands and is refused whole (kOverBudget, kCapExceeded) if any fails.
  Result<Decision> DraftDecision(const std::string& call_id, int64_t now_us,
                                 const std::string& policy = {}, const AwardOptions& options = {});
  Status CommitDecision(const std::string& call_id, int64_t now_us);
  // The draft DraftDecision would make with `in`'s budget, floors and policy. Changes
  // nothing and logs nothing. Refused like DraftDecision for a call not closed;
  // kInvalidArgument for a negative budget ("budget"), an unknown floor or one that does
  // not apply to the call's track, or a share outside 0..10000 bp ("floor").
  Result<WhatIfResult> WhatIf(const std::string& call_id, const WhatIfInput& in) const;

  // Grants.
  Status AddGrantMember(const std::string& grant_id, const std::string& person, int64_t now_us);
  // Charges actual use to a grant (the cluster's settlement, here as one transfer).
  Status RecordUsage(const std::string& grant_id, Credits amount, int64_t now_us);
  // Education grants: the instructor gives a student part of the course's credits.
  Status AllocateToStudent(const std::string& grant_id, const std::string& student, Credits amount,
                           int64_t now_us);
  // Returns a grant's unspent credits to the program pool and closes it.
  Status CloseGrant(const std::string& grant_id, int64_t now_us);

  // Obligations: submit evidence (validated by kind), then accept or reject it.
  Status SubmitObligation(const std::string& obligation_id, std::string reference,
                          std::string license, int64_t now_us);
  Status ReviewObligation(const std::string& obligation_id, bool accept, int64_t now_us);

  // Time passes: obligations past due become overdue (and sanction their grant), and
  // grants past their end expire, returning unspent credits. Returns events applied.
  int64_t Tick(int64_t now_us);

  // Reading.
  const ProgramDefinition& definition() const { return definition_; }
  const std::map<std::string, Institution>& institutions() const { return institutions_; }
  const std::map<std::string, Person>& people() const { return people_; }
  const std::map<std::string, Proposal>& proposals() const { return proposals_; }
  const std::vector<Conflict>& conflicts() const { return conflicts_; }
  const std::vector<Assignment>& assignments() const { return assignments_; }
  const std::vector<Review>& reviews() const { return reviews_; }
  const std::map<std::string, Decision>& decisions() const { return decisions_; }
  const std::map<std::string, Grant>& grants() const { return grants_; }
  const std::map<std::string, Obligation>& obligations() const { return obligations_; }
  const ledger::Ledger& ledger() const { return ledger_; }
  const DecisionLog& log() const { return log_; }
  CallState call_state(const std::string& call_id) const;
  const Track* FindTrack(const std::string& track_id) const;
  const CallDefinition* FindCall(const std::string& call_id) const;
  // Credits awarded to an institution across the whole program (committed decisions).
  Credits InstitutionAwarded(const std::string& institution) const;
  uint64_t TrackPoolAccount(const std::string& track_id) const;
  Credits AccountBalance(uint64_t account) const;
  Credits AccountAvailable(uint64_t account) const;

 private:
  ProgramState() = default;

  Result<Credits> RequestInCredits(const ProposalInput& input) const;
  Status CheckEligibility(const ProposalInput& input, const Track& track, const Person& pi) const;
  std::vector<ProposalProfile> ProposalProfiles(const std::string& call_id) const;
  std::vector<ReviewerProfile> ReviewerProfiles() const;
  Result<AwardProblem> BuildProblem(const std::string& call_id,
                                    std::vector<std::string>* candidate_ids,
                                    std::map<std::string, double>* merit,
                                    const WhatIfInput* what_if = nullptr) const;
  // Builds and solves the call's problem (with `what_if`'s changes if given): the draft
  // it would make, without storing or logging it.
  Result<Decision> SolveDecision(const std::string& call_id, const std::string& policy_name,
                                 const AwardOptions& options, const WhatIfInput* what_if,
                                 int64_t now_us, Credits* budget) const;
  void ExplainOutcomes(const AwardProblem& problem, const AwardSolution& solution,
                       const std::vector<std::string>& candidate_ids,
                       const std::map<std::string, double>& merit, Decision* decision) const;
  Status TransferOrError(std::vector<ledger::TransferSpec> transfers, int64_t now_us);
  Status SetFrozen(Grant& grant, bool frozen, int64_t now_us);
  void ReleaseTranches(Grant& grant, const std::string& condition, int64_t now_us);
  Status ReturnUnspent(Grant& grant, GrantStatus final_status, int64_t now_us);
  bool HasOverdue(const std::string& grant_id) const;
  void LogObligation(const Obligation& obligation, int64_t now_us);
  uint64_t NextAccountId() { return next_account_++; }
  uint64_t NextTransferId() { return next_transfer_++; }
  const Institution* InstitutionOf(const std::string& person) const;

  // A proposal or review in the public log while its call is under review: a commitment
  // to `content` under a salt keyed by the program's seal secret, revealed at commit.
  struct Seal {
    std::string ref;  // opaque and stable: HMAC of the secret and what is sealed
    std::string call;
    int64_t version = 0;       // one per commitment (edits and revisions commit again)
    int64_t committed_in = 0;  // seq of the latest commitment entry
    nlohmann::json content;
  };
  std::string SealRef(const std::string& what) const;
  std::string SealSalt(const Seal& seal) const;
  // Commits `content` again under the seal and returns the entry's public data.
  nlohmann::json CommitSeal(Seal& seal, nlohmann::json content) const;
  void RevealSeals(const std::string& call_id, int64_t now_us);

  ProgramDefinition definition_;
  std::map<std::string, Institution> institutions_;
  std::map<std::string, Person> people_;
  std::map<std::string, CallState> call_states_;
  std::map<std::string, Proposal> proposals_;
  std::vector<Conflict> declared_conflicts_;
  std::vector<Conflict> conflicts_;
  std::vector<Assignment> assignments_;
  std::vector<Review> reviews_;
  std::map<std::string, Decision> decisions_;
  std::map<std::string, Grant> grants_;
  std::map<std::string, Obligation> obligations_;
  std::map<std::string, Credits> institution_awarded_;
  ledger::Ledger ledger_;
  DecisionLog log_;
  std::string seal_secret_;
  std::map<std::string, Seal> proposal_seals_;                        // by proposal id
  std::map<std::pair<std::string, std::string>, Seal> review_seals_;  // (reviewer, proposal)
  uint64_t next_account_ = kFirstDynamicAccount;
  uint64_t next_transfer_ = 1;
};

}  // namespace atrium::program
