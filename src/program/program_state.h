// ProgramState: the grant program's pure state machine. One instance owns one program:
// its definition, the people and institutions it knows, its calls, proposals,
// conflicts, assignments, reviews, decisions, grants and obligations, the ledger
// accounts that carry its credits, and its public decision log.
//
// Every command takes its logical time (`now_us`) as an argument; nothing reads a clock,
// a file or a socket, and the same commands in the same order give the same state and
// the same log. A refused command returns an Error with a code and changes nothing.
//
// The ledger is not its own: in the service it is the core's one ledger of record, shared
// with every other program and the scheduler, and the program's accounts and transfers
// live in its own id space there (ProgramNamespace: the high 64 bits name the program, the
// low 64 bits are the program's local numbers below). A program created without a ledger
// (offline tools, tests) gets a private one.
//
// Credits, all through the ledger (sum of balances always zero):
//   sponsor --(create)--> program pool --(create)--> track pools
//   track pool --(commit: one linked batch)--> grant accounts; later tranches are holds
//   on the track pool, posted when their condition is met
//   grant --(usage: a job's hold, posted for what ran)--> cluster revenue
//   grant --(expiry/close: balancing)--> program pool
//   A sanction freezes the grant account; accepting the overdue obligation thaws it.
//   Holds of running jobs (docs/program.md, "Holds"): a frozen grant admits no new job but
//   its running jobs' holds settle; a grant with open holds is not closed or expired (the
//   service stops its jobs first); a student allocation takes only available credits.
//
//   ATRIUM_ASSIGN_OR_RETURN(ProgramState state, ProgramState::Create(definition, t0_us));
//   ATRIUM_TRY(state.AddInstitution({...}, t0_us));
//   ATRIUM_TRY(state.OpenCall("2026-partners", opens_us));
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/credits.h"
#include "base/error.h"
#include "ledger/ledger.h"
#include "program/assignment.h"
#include "program/award_policy.h"
#include "program/datasets.h"
#include "program/decision_log.h"
#include "program/model.h"
#include "program/training.h"

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
  kCodeFunding = 1,      // sponsor -> program pool -> track pools
  kCodeAward = 2,        // track pool -> grant (and tranche holds)
  kCodeUsage = 3,        // grant -> cluster revenue
  kCodeReturn = 4,       // grant -> program pool at expiry or close
  kCodeStudent = 5,      // course -> student sub-allocation
  kCodeStorage = 6,      // grant -> cluster revenue: datasets' storage (docs/datasets.md)
  kCodeTraining = 7,     // track pool <-> a lab enrolment's credits (docs/training.md)
  kCodeReservation = 8,  // grant -> cluster revenue: capacity reservations
};

// The id space of a program in a shared ledger: the high 64 bits of every account and
// transfer id are kNamespaceBit | ordinal (ordinal >= 1; 0 is the cluster's). Ids whose top
// bit is clear belong to raw `atrium ledger` use and are never touched by a program.
inline constexpr uint64_t kNamespaceBit = uint64_t{1} << 63;
inline constexpr Id128 NamespacedId(uint64_t ordinal, uint64_t local) {
  return local == 0 ? kIdNone : (Id128{kNamespaceBit | ordinal} << 64) | local;
}
// Whether `id` lies in a reserved (program or cluster) id space. kIdMax is not a real id.
inline constexpr bool IsReservedId(Id128 id) {
  return id != kIdMax && (static_cast<uint64_t>(id >> 64) & kNamespaceBit) != 0;
}

// Fixed ledger account ids of a program (local numbers in its id space).
inline constexpr uint64_t kSponsorAccount = 1;
inline constexpr uint64_t kProgramPoolAccount = 2;
inline constexpr uint64_t kClusterRevenueAccount = 3;
inline constexpr uint64_t kAppealsReserveAccount = 4;   // only when the program keeps one
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
  // The same in a shared ledger (which must outlive the state), in id space `ordinal`
  // (>= 1, unique per ledger).
  static Result<ProgramState> Create(ProgramDefinition definition, int64_t now_us,
                                     std::string seal_secret, ledger::Ledger* ledger,
                                     uint64_t ordinal);

  ProgramState(ProgramState&&) = default;
  // Recomputes the derived indexes (assignments by reviewer) from the state.
  void RebuildIndexes();
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
  // The problems DraftDecision would solve for the call, in the order it solves them: the
  // call's problem, then (when the sponsor has overridden the draft) the problem with the
  // overrides. Solved elsewhere onto a SolverTape, they are the answers a draft command
  // carries (the service solves a draft off its apply thread: docs/journal.md). Refused
  // like DraftDecision for an unknown or not-closed call. Changes nothing.
  Result<std::vector<AwardProblem>> DraftProblems(const std::string& call_id) const;
  // The problems OverrideDecision would solve for a sponsor's override of the proposal
  // (the call's, then with the overrides made so far and this one), for the same use.
  // Refused like OverrideDecision for an unknown call or proposal, or a call with no
  // uncommitted draft; the override's other checks are left to it. Changes nothing.
  Result<std::vector<AwardProblem>> OverrideProblems(const std::string& call_id,
                                                     const std::string& proposal_id,
                                                     OverrideKind kind) const;

  // Governance (docs/governance.md).
  // A sponsor's veto of a proposal the draft funds or addition of one it declines, with
  // one of the program's published reason codes and a public text. Refused with
  // kOverrideNotAllowed (the program allows none, or not this reason), kOverrideLimit
  // (count or budget share per call), kInvalidState (no open draft, or the proposal
  // is not funded / declined as the kind needs, or already overridden), kOverBudget /
  // kCapExceeded (the additions do not fit). Accepted: the draft is re-solved with the
  // vetoed proposals excluded and the added ones fixed in, caps and floors kept.
  Result<SponsorOverride> OverrideDecision(const std::string& call_id,
                                           const std::string& proposal_id, OverrideKind kind,
                                           std::string reason, std::string text,
                                           std::string sponsor, int64_t now_us,
                                           SolverTape* tape = nullptr);
  // A declined applicant's appeal, within the program's window after the commit, on a
  // published ground; assigned to reviewers who did not review the proposal and have no
  // conflict with it. kAppealNotAllowed (no appeals, not declined, ground not published,
  // already appealed), kAppealWindowClosed.
  Result<Appeal> FileAppeal(const std::string& proposal_id, std::string ground, std::string text,
                            std::string filed_by, int64_t now_us);
  // The officer's decision on an appeal, with a reason. An upheld appeal is funded from
  // the appeals reserve (kInsufficientCredits if the reserve cannot pay the request; a
  // program without a reserve records it upheld, unfunded).
  Result<Appeal> DecideAppeal(const std::string& appeal_id, bool upheld, std::string reason,
                              int64_t now_us);
  // Whether the proposal's institution, PI or a co-investigator has a declared tie to
  // the sponsor; the tie's kind ("" if none).
  std::string SponsorTieOf(const Proposal& proposal) const;

  // Grants.
  Status AddGrantMember(const std::string& grant_id, const std::string& person, int64_t now_us);
  // Charges use to a grant as one transfer (offline tools; the service's jobs are charged
  // by their holds instead, see NoteJobCharge).
  Status RecordUsage(const std::string& grant_id, Credits amount, int64_t now_us);
  // Records that the scheduler posted `amount` of a job's hold on the grant's (or one of
  // its students') account: the grant's `spent` follows the ledger. No transfer.
  Status NoteJobCharge(const std::string& grant_id, Credits amount);
  // Education grants: the instructor gives a student part of the course's credits.
  Status AllocateToStudent(const std::string& grant_id, const std::string& student, Credits amount,
                           int64_t now_us);
  // Returns a grant's unspent credits to the program pool and closes it. Refused
  // (kInvalidState) while a job holds credits on the grant or its students' accounts: the
  // service stops the grant's jobs first.
  Status CloseGrant(const std::string& grant_id, int64_t now_us);

  // Training (training.h, docs/training.md). Items: a course, or a lab with a job template
  // and credits per enrolment from a track's pool; prerequisites must already be in the
  // catalog. kAlreadyExists, kNotFound (a prerequisite, instructor or track), kInvalidArgument.
  Status AddTrainingItem(TrainingItem item, int64_t now_us);
  // Enrols `person` through `grant_id` (its PI, a member or a course student; kForbidden
  // otherwise): kPrerequisiteMissing, kAlreadyExists (enrolled or completed),
  // kInsufficientCredits (the track's pool cannot pay the lab's credits), kGrantNotActive.
  Result<Enrolment> Enrol(const std::string& item_id, const std::string& person,
                          const std::string& grant_id, int64_t now_us);
  // Completion (by a lab's successful job or an instructor): logs the certificate and
  // returns the lab's unspent credits to its track (at a later tick if a job still holds
  // some). Withdrawal returns them too, without a certificate. kInvalidState unless enrolled.
  Result<Enrolment> CompleteEnrolment(const std::string& enrolment_id, std::string completed_by,
                                      int64_t now_us);
  Result<Enrolment> WithdrawEnrolment(const std::string& enrolment_id, int64_t now_us);
  // Records that the scheduler posted `amount` of a lab job's hold on the enrolment's
  // account (no transfer; like NoteJobCharge).
  Status NoteTrainingCharge(const std::string& enrolment_id, Credits amount);
  // The person's latest enrolment in the item (any state), or null.
  const Enrolment* FindEnrolment(const std::string& person, const std::string& item) const;
  // Credits held by open holds (running lab jobs) on the enrolment's account.
  Credits EnrolmentHeld(const Enrolment& enrolment) const;
  // The opaque holder id of a person's certificates (an HMAC under the seal secret).
  std::string CertificateHolder(const std::string& person) const;
  const TrainingBook& training() const { return training_; }

  // Obligations: submit evidence (validated by kind), then accept or reject it.
  Status SubmitObligation(const std::string& obligation_id, std::string reference,
                          std::string license, int64_t now_us);
  Status ReviewObligation(const std::string& obligation_id, bool accept, int64_t now_us);

  // Time passes: storage periods due are charged (datasets.h), obligations past due become
  // overdue (and sanction their grant), and grants past their end expire, returning unspent
  // credits (after a last storage charge). Returns events applied.
  // A grant past its end whose accounts still hold a job's credits waits for the next tick.
  int64_t Tick(int64_t now_us);
  // The grants a Tick at now_us would expire (active or frozen, past their end).
  std::vector<std::string> GrantsEndingBy(int64_t now_us) const;

  // Datasets and storage (datasets.h, defined in datasets.cc; docs/datasets.md). Who may
  // do each is the core's check (src/core/ops_datasets.cc); these check the state.
  Status AddDataset(Dataset dataset, int64_t now_us);
  Status UpdateDataset(const std::string& dataset, DatasetChanges changes, int64_t now_us);
  // A new request "DR-<n>" for a grant to use a dataset on approval or restricted.
  Result<std::string> RequestDatasetAccess(const std::string& dataset, const std::string& grant,
                                           std::string requested_by, std::string reason,
                                           int64_t now_us);
  Status DecideDatasetAccess(const std::string& request, bool approve, std::string decided_by,
                             std::string reason, int64_t now_us);
  Status AcceptDatasetAgreement(const std::string& dataset, const std::string& grant,
                                const std::string& agreement_version, int64_t now_us);
  Status RevokeDatasetAccess(const std::string& dataset, const std::string& grant,
                             std::string reason, int64_t now_us);
  // Whether the grant may use the dataset now: kNotFound (no such dataset),
  // kDatasetAccessDenied, kAgreementRequired; field "datasets".
  Status CheckDatasetUse(const std::string& grant, const std::string& dataset) const;
  // Counts a job's use of datasets CheckDatasetUse allowed (for the report).
  void NoteDatasetUse(const std::string& grant, const std::vector<std::string>& datasets);
  Status SetStoragePolicy(StoragePolicy policy, int64_t now_us);
  Status SetGrantStorage(const std::string& grant, int64_t gib, int64_t now_us);
  const DatasetBook& dataset_book() const { return datasets_; }

  // Reading.
  const ProgramDefinition& definition() const { return definition_; }
  const std::map<std::string, Institution>& institutions() const { return institutions_; }
  const std::map<std::string, Person>& people() const { return people_; }
  const std::map<std::string, Proposal>& proposals() const { return proposals_; }
  const std::vector<Conflict>& conflicts() const { return conflicts_; }
  const std::vector<Assignment>& assignments() const { return assignments_; }
  // The proposals a reviewer is assigned to (an index of assignments()); null if none.
  const std::set<std::string>* AssignedTo(const std::string& reviewer) const {
    const auto found = assigned_by_reviewer_.find(reviewer);
    return found == assigned_by_reviewer_.end() ? nullptr : &found->second;
  }
  const std::vector<Review>& reviews() const { return reviews_; }
  const std::map<std::string, Decision>& decisions() const { return decisions_; }
  const std::map<std::string, Grant>& grants() const { return grants_; }
  const std::map<std::string, Obligation>& obligations() const { return obligations_; }
  // The sponsor's overrides, by call, in the order made.
  const std::map<std::string, std::vector<SponsorOverride>>& overrides() const {
    return overrides_;
  }
  const std::map<std::string, Appeal>& appeals() const { return appeals_; }
  // The ledger the program's accounts live in (shared in the service: use the program's
  // ids, AccountId/TransferId, or ForEachAccount for its own accounts only).
  const ledger::Ledger& ledger() const { return *ledger_; }
  uint64_t ordinal() const { return ordinal_; }
  Id128 AccountId(uint64_t local) const { return NamespacedId(ordinal_, local); }
  Id128 TransferId(uint64_t local) const { return NamespacedId(ordinal_, local); }
  // Whether a ledger id lies in this program's id space.
  bool Owns(Id128 id) const {
    return id != kIdNone && static_cast<uint64_t>(id >> 64) == (kNamespaceBit | ordinal_);
  }
  // The program's own accounts, in creation order.
  void ForEachAccount(const std::function<void(const ledger::Account&)>& visit) const;
  // Credits held by open holds (running jobs) on the grant's account and its students'.
  Credits GrantHeld(const Grant& grant) const;
  const DecisionLog& log() const { return log_; }
  CallState call_state(const std::string& call_id) const;
  const Track* FindTrack(const std::string& track_id) const;
  const CallDefinition* FindCall(const std::string& call_id) const;
  // Credits awarded to an institution across the whole program (committed decisions).
  Credits InstitutionAwarded(const std::string& institution) const;
  uint64_t TrackPoolAccount(const std::string& track_id) const;
  Credits AccountBalance(uint64_t account) const;
  Credits AccountAvailable(uint64_t account) const;

  // Snapshots (program_codec.cc): the whole state as deterministic bytes; DecodeState
  // refuses malformed bytes with kCorruption. A program in a shared ledger (the service's
  // ledger of record) does not encode that ledger: DecodeState points the program at
  // `ledger` (which must outlive it); a program that owns its ledger carries it.
  void EncodeState(std::string* out) const;
  static Result<ProgramState> DecodeState(std::string_view bytes, ledger::Ledger* ledger = nullptr);

 private:
  ProgramState() = default;

  Result<Credits> RequestInCredits(const ProposalInput& input) const;
  Status CheckEligibility(const ProposalInput& input, const Track& track, const Person& pi) const;
  std::vector<ProposalProfile> ProposalProfiles(const std::string& call_id) const;
  std::vector<ReviewerProfile> ReviewerProfiles() const;
  Result<std::vector<AwardProblem>> ProblemsWith(
      const std::string& call_id, const std::vector<SponsorOverride>& overrides) const;
  Result<AwardProblem> BuildProblem(const std::string& call_id,
                                    std::vector<std::string>* candidate_ids,
                                    std::map<std::string, double>* merit,
                                    const WhatIfInput* what_if = nullptr,
                                    const std::vector<SponsorOverride>* overrides = nullptr) const;
  // Builds and solves the call's problem (with `what_if`'s changes if given): the draft
  // it would make, without storing or logging it.
  Result<Decision> SolveDecision(const std::string& call_id, const std::string& policy_name,
                                 const AwardOptions& options, const WhatIfInput* what_if,
                                 int64_t now_us, Credits* budget,
                                 const std::vector<SponsorOverride>* overrides = nullptr) const;
  // The draft with the call's overrides (and `extra`) applied: solved twice, without
  // and with them, and every outcome an override moved explained.
  Result<Decision> SolveWithOverrides(const std::string& call_id, const std::string& policy_name,
                                      const AwardOptions& options,
                                      const std::vector<SponsorOverride>& overrides,
                                      int64_t now_us) const;
  void ExplainOutcomes(const AwardProblem& problem, const AwardSolution& solution,
                       const std::vector<std::string>& candidate_ids,
                       const std::map<std::string, double>& merit, Decision* decision) const;
  Status TransferOrError(std::vector<ledger::TransferSpec> transfers, int64_t now_us);
  Status SetFrozen(Grant& grant, bool frozen, int64_t now_us);
  void ReleaseTranches(Grant& grant, const std::string& condition, int64_t now_us);
  Status ReturnUnspent(Grant& grant, GrantStatus final_status, int64_t now_us);
  bool HasOverdue(const std::string& grant_id) const;
  void LogObligation(const Obligation& obligation, int64_t now_us);
  // The obligations of a new grant, per the program's rules, logged.
  void AddObligations(const Grant& grant, int64_t now_us);
  // override_committed entries for the committed decision's overrides.
  void LogOverrides(const Decision& decision, int64_t now_us);
  Status CreateAccountsOrError(std::vector<ledger::AccountSpec> accounts, int64_t now_us);
  uint64_t NextAccountId() { return next_account_++; }
  uint64_t NextTransferId() { return next_transfer_++; }
  const Institution* InstitutionOf(const std::string& person) const;
  // Storage (datasets.cc): accrual at a constant level up to `until_us`, a charge of what is
  // accrued, the 30-day boundaries due by now_us (Tick), the final charge at a grant's end.
  Status AccrueStorage(GrantStorage& storage, int64_t until_us) const;
  Status ChargeStorage(Grant& grant, GrantStorage& storage, int64_t now_us);
  int64_t SettleGrantStorage(Grant& grant, GrantStorage& storage, int64_t now_us);
  int64_t SettleStorage(int64_t now_us);
  void EndStorage(Grant& grant, int64_t now_us);

  // A proposal or review in the public log while its call is under review: a commitment
  // to `content` under a salt keyed by the program's seal secret, revealed at commit.
  // (bugprone-exception-escape: nlohmann::json's noexcept destructor flattens nested values
  // into a std::vector, which clang-tidy sees may throw; nothing of ours throws.)
  struct Seal {       // NOLINT(bugprone-exception-escape)
    std::string ref;  // opaque and stable: HMAC of the secret and what is sealed
    std::string call;
    int64_t version = 0;       // one per commitment (edits and revisions commit again)
    int64_t committed_in = 0;  // seq of the latest commitment entry
    nlohmann::json content;
  };
  std::string SealRef(const std::string& what) const;
  // HMAC-SHA-256 (hex) of `message` under the seal secret.
  std::string SecretHex(const std::string& message) const;
  bool MayLearnUnder(const std::string& person, const Grant& grant) const;
  void ReturnTrainingCredits(Enrolment& enrolment, int64_t now_us);
  // Tick's part for training: returns the credits of ended enrolments whose jobs settled.
  int64_t TickTraining(int64_t now_us);
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
  // Derived from assignments_ (a snapshot need not carry it: RebuildIndexes).
  std::map<std::string, std::set<std::string>> assigned_by_reviewer_;
  std::vector<Review> reviews_;
  std::map<std::string, Decision> decisions_;
  std::map<std::string, Grant> grants_;
  std::map<std::string, Obligation> obligations_;
  std::map<std::string, Credits> institution_awarded_;
  std::map<std::string, std::vector<SponsorOverride>> overrides_;  // by call
  std::map<std::string, Appeal> appeals_;                          // by appeal id
  TrainingBook training_;
  DatasetBook datasets_;
  // The ledger of record (not owned) or, for a program created without one, owned_ledger_.
  std::unique_ptr<ledger::Ledger> owned_ledger_;
  ledger::Ledger* ledger_ = nullptr;
  uint64_t ordinal_ = 1;
  DecisionLog log_;
  std::string seal_secret_;
  std::map<std::string, Seal> proposal_seals_;                        // by proposal id
  std::map<std::pair<std::string, std::string>, Seal> review_seals_;  // (reviewer, proposal)
  uint64_t next_account_ = kFirstDynamicAccount;
  uint64_t next_transfer_ = 1;
};

}  // namespace atrium::program
