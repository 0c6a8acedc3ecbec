// The grant program's data model: programs, tracks, calls, people, institutions,
// proposals, reviews, decisions, grants, tranches and obligations. Plain value types;
// ProgramState (program_state.h) owns them and enforces the rules.
//
// Identifiers are short human-readable strings chosen by the program officer
// ("bot-2026", "research", "P-0042"); people carry ORCID-style ids. Money is Credits
// (exact micro-credits); times are logical microseconds since the epoch (`_us`).
// Percentages are integer basis points (`_bp`, 10000 = 100%) so no float touches money.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/credits.h"
#include "base/error.h"

namespace atrium::program {

inline constexpr int64_t kMicrosPerSecond = 1'000'000;
inline constexpr int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;
// A "month" for due dates: 30 days, so due dates are exact and calendar-free.
inline constexpr int64_t kMicrosPerMonth = 30 * kMicrosPerDay;
inline constexpr int64_t kBasisPointsFull = 10'000;

// One criterion of the review rubric. Scores are integers in [score_min, score_max].
struct Criterion {
  std::string name;
  int64_t weight = 1;  // relative weight, > 0
  int64_t score_min = 1;
  int64_t score_max = 5;
};

// A fairness floor: at least share_bp of the credits of a decision must go to the
// proposals it selects: those tagged with one of `topics`, or from institutions of one
// of `institution_types`. It applies to the decisions of `tracks` (empty: every track).
struct FairnessFloor {
  std::string name;
  std::vector<std::string> topics;
  std::vector<std::string> institution_types;
  int64_t share_bp = 0;
  std::vector<std::string> tracks;
};

// A tranche of every grant of a track: share_bp of the award, released when `condition`
// holds: "start" (at commit) or "progress_report:N" (the N-th progress report accepted).
struct TrancheRule {
  int64_t share_bp = kBasisPointsFull;
  std::string condition = "start";
};

// Obligations a program attaches to each grant, with due dates in months after start.
struct ObligationRules {
  std::vector<int64_t> progress_report_months;
  bool final_report = true;
  bool paper = true;
  bool repository = true;
  // Months after the grant's end for the final report, the paper and the repository.
  int64_t final_grace_months = 3;
  // Freeze the grant's remaining credits while an obligation is overdue.
  bool freeze_when_overdue = true;
};

enum class TrackKind : uint8_t { kResearch, kEducation };
std::string_view ToString(TrackKind kind);

struct EligibilityRules {
  std::vector<std::string> pi_roles;           // empty: any role
  std::vector<std::string> institution_types;  // empty: any type
  bool one_proposal_per_pi = true;
};

struct Track {
  std::string id;
  std::string name;
  TrackKind kind = TrackKind::kResearch;
  Credits budget;
  Credits award_cap;        // per award; zero means no cap beyond the budget
  Credits institution_cap;  // per institution across the whole program; zero: none
  EligibilityRules eligibility;
  // Partial awards: an award may be cut to partial_floor_bp of its request, in steps of
  // partial_step_bp. Zero floor = all or nothing.
  int64_t partial_floor_bp = 0;
  int64_t partial_step_bp = 2'500;
  std::vector<TrancheRule> tranches;  // empty: all at start
};

struct CallDefinition {
  std::string id;
  std::string track;
  int64_t opens_us = 0;
  int64_t closes_us = 0;
  int64_t review_deadline_us = 0;
  int64_t decision_us = 0;
  int64_t reviewers_per_proposal = 3;
};

// Governance (docs/governance.md): what the sponsor may overrule after expert review,
// how applicants appeal, and the sponsor's own declared ties.
//
// Override reason codes a program may publish. `strategic` is allowed only when the
// program says so (allow_strategic).
inline constexpr std::string_view kOverrideReasons[] = {
    "eligibility", "export_control", "conflict_of_interest", "duplicate_funding", "strategic"};
inline constexpr std::string_view kAppealGrounds[] = {"procedural_error", "conflict_not_detected",
                                                      "factual_error"};
inline constexpr std::string_view kSponsorTieKinds[] = {"employment", "funding", "equity"};

struct OverrideRules {
  int64_t max_per_call = 0;                  // 0: the program allows no overrides
  int64_t max_budget_bp = kBasisPointsFull;  // share of the call's budget overrides may move
  std::vector<std::string> reasons;          // the codes the program publishes
  bool allow_strategic = false;              // `strategic` may be listed only when true
  bool allowed() const { return max_per_call > 0; }
};

struct AppealRules {
  int64_t window_days = 0;           // days after the decision's commit; 0: no appeals
  std::vector<std::string> grounds;  // the grounds the program publishes
  int64_t reviewers = 2;             // reviewers assigned to each appeal
  Credits reserve;                   // set aside from the program pool at creation
  bool allowed() const { return window_days > 0; }
};

// A tie of the sponsor to an institution or a person (employment, funding, equity).
struct SponsorTie {
  std::string institution;  // one of the two
  std::string person;
  std::string kind;
};

struct GovernanceRules {
  OverrideRules overrides;
  AppealRules appeals;
  std::vector<SponsorTie> sponsor_ties;
};

// Capacity reservations (docs/reservations.md): the program's limits on what its grants
// book. Without the [reservations] table its grants book nothing. Zero = no limit.
struct ReservationRules {
  bool enabled = false;
  int64_t max_chips = 0;       // chips of one booking (whole nodes counted)
  int64_t max_hours = 0;       // length of one window
  int64_t max_ahead_days = 0;  // how far ahead a window may start
  // Of a pool's chips, the share one grant may hold booked in any overlapping window.
  int64_t max_share_bp = 10'000;
  int64_t cancel_fee_bp = 0;  // of the price, kept when cancelled before the start
};

struct ProgramDefinition {
  std::string id;
  std::string name;
  std::string currency = "USD";
  Credits total_budget;
  std::map<std::string, Credits> price_per_chip_hour;  // accelerator type -> price
  std::vector<Criterion> rubric;
  std::vector<std::string> topics;
  std::vector<FairnessFloor> fairness_floors;
  std::vector<Track> tracks;
  std::vector<CallDefinition> calls;
  ObligationRules obligations;
  std::string award_policy = "mip";  // "mip" or "greedy" (award_policy.h)
  GovernanceRules governance;
  ReservationRules reservations;
};

struct Institution {
  std::string id;
  std::string name;
  std::string type;     // r1, r2, minority_serving, nonprofit_lab, company, ...
  std::string country;  // ISO 3166 alpha-2
};

struct Person {
  std::string id;  // ORCID-style: 0000-0002-1825-0097
  std::string name;
  std::string institution;
  std::string role;  // faculty, postdoc, student, staff
  std::vector<std::string> expertise;
  std::vector<std::string> collaborators;  // person ids
  bool reviewer = false;
};

enum class CallState : uint8_t { kScheduled, kOpen, kClosed, kDecided };
std::string_view ToString(CallState state);

enum class ProposalStatus : uint8_t { kSubmitted, kWithdrawn, kInReview, kAwarded, kDeclined };
std::string_view ToString(ProposalStatus status);

// A request for chip-hours of one accelerator type, converted at the price list.
struct ChipHours {
  std::string accelerator;
  int64_t chip_hours = 0;
};

struct ProposalInput {
  std::string id;
  std::string call;
  std::string pi;
  std::vector<std::string> co_investigators;
  std::string title;
  std::string abstract;
  std::vector<std::string> topics;
  Credits requested;                  // either credits ...
  std::vector<ChipHours> chip_hours;  // ... or chip-hours (added to `requested`)
  int64_t duration_months = 12;
  std::string open_source_plan;
};

struct Proposal {
  ProposalInput input;
  std::string institution;  // the PI's, at submission
  Credits requested;        // total, in credits
  ProposalStatus status = ProposalStatus::kSubmitted;
  int64_t submitted_us = 0;
};

enum class ConflictReason : uint8_t {
  kSameInstitution,
  kCoInvestigator,
  kCollaborator,
  kDeclared,
};
std::string_view ToString(ConflictReason reason);

struct Conflict {
  std::string reviewer;
  std::string proposal;
  ConflictReason reason = ConflictReason::kDeclared;
  std::string note;
};

struct Assignment {
  std::string reviewer;
  std::string proposal;
  std::string explanation;  // why this reviewer: expertise overlap and load
};

struct Review {
  std::string reviewer;
  std::string proposal;
  std::vector<int64_t> scores;  // one per rubric criterion
  std::string comment;
  int64_t submitted_us = 0;
  // Filled when a decision is drafted: the weighted raw score and the score after
  // per-reviewer normalization, both on the rubric's 0..100 scale.
  double raw = 0;
  double normalized = 0;
};

// Why a proposal was funded, cut or declined. The strings are stable (log, report).
enum class Rationale : uint8_t {
  kFunded,
  kCutBudget,
  kCutInstitutionCap,
  kCutFloor,
  kDeclinedBelowLine,
  kDeclinedBudget,
  kDeclinedInstitutionCap,
  kDeclinedFloor,
  kDeclinedIneligible,
  kDeclinedNoReviews,
  kDeclinedWithdrawn,
  // Governance: the sponsor vetoed it, added it, or an override moved it.
  kVetoedByOverride,
  kAddedByOverride,
  kDisplacedByOverride,
};
std::string_view ToString(Rationale rationale);

struct ProposalOutcome {
  std::string proposal;
  int64_t rank = 0;  // 1 = best merit among reviewed proposals; 0 = unranked
  double merit = 0;  // mean normalized score, 0..100
  Credits requested;
  Credits awarded;
  Rationale rationale = Rationale::kDeclinedBelowLine;
  std::string explanation;
  // With sponsor overrides: what the optimiser alone awarded, and the overrides that
  // changed this outcome (its own veto or addition, or all of the call's for a
  // displaced proposal).
  Credits base_awarded;
  std::vector<std::string> overrides;
};

enum class OverrideKind : uint8_t { kVeto, kAdd };
std::string_view ToString(OverrideKind kind);

// A sponsor's veto of a funded proposal or addition of a declined one, on a draft.
struct SponsorOverride {
  std::string id;  // "<call>:override-N"
  std::string call;
  std::string proposal;
  OverrideKind kind = OverrideKind::kVeto;
  std::string reason;   // one of the program's published codes
  std::string text;     // public
  std::string sponsor;  // the person who made it
  Credits moved;        // veto: the award it removed; addition: the request it funds
  int64_t at_us = 0;
};

enum class AppealState : uint8_t { kFiled, kUpheld, kRejected };
std::string_view ToString(AppealState state);

// A declined applicant's appeal of a committed decision.
struct Appeal {
  std::string id;  // "A-<proposal>"
  std::string proposal;
  std::string call;
  std::string ground;  // one of the program's published grounds
  std::string text;
  std::string filed_by;
  std::vector<std::string> reviewers;  // assigned: did not review it, no conflict with it
  AppealState state = AppealState::kFiled;
  std::string reason;  // the officer's, when decided
  std::string grant;   // an upheld appeal's grant, funded from the appeals reserve
  int64_t filed_us = 0;
  int64_t decided_us = 0;
};

// A floor the eligible proposals cannot reach (their requests, within their
// institutions' caps, are less than share x budget) is enforced at the share they can
// reach, so that it never forces the whole decision to zero; `met` still compares the
// achieved share with the required one.
struct FloorOutcome {
  std::string name;
  int64_t share_bp_required = 0;
  int64_t share_bp_enforced = 0;
  int64_t share_bp_achieved = 0;
  bool met = false;
};

struct Decision {
  std::string call;
  std::string policy;  // the policy that produced the chosen awards
  bool optimal = false;
  double objective = 0;
  double bound = 0;  // best known upper bound on the objective
  double gap = 0;    // (bound - objective) / bound, 0 when optimal
  Credits total_awarded;
  std::vector<ProposalOutcome> outcomes;  // in rank order, then unranked by id
  std::vector<FloorOutcome> floors;
  bool committed = false;
  int64_t drafted_us = 0;
  int64_t committed_us = 0;
};

enum class GrantStatus : uint8_t { kActive, kFrozen, kExpired, kClosed };
std::string_view ToString(GrantStatus status);

struct Tranche {
  Credits amount;
  std::string condition;
  bool released = false;
  uint64_t hold_transfer = 0;  // the ledger hold that reserves it (0 once released at start)
};

enum class ObligationKind : uint8_t { kProgressReport, kFinalReport, kPaper, kRepository };
std::string_view ToString(ObligationKind kind);

enum class ObligationState : uint8_t { kDue, kSubmitted, kAccepted, kOverdue };
std::string_view ToString(ObligationState state);

struct Obligation {
  std::string id;  // "<grant>/paper", "<grant>/progress-1"
  std::string grant;
  ObligationKind kind = ObligationKind::kPaper;
  int64_t sequence = 0;  // progress report number (1-based); 0 otherwise
  int64_t due_us = 0;
  ObligationState state = ObligationState::kDue;
  // Evidence: a DOI or arXiv id for a paper; a repository URL and an OSI license id.
  std::string reference;
  std::string license;
  bool was_overdue = false;  // submitted or accepted after its due date
};

struct Grant {
  std::string id;  // "G-<proposal>"
  std::string proposal;
  std::string call;
  std::string track;
  std::string pi;
  std::string institution;
  std::vector<std::string> members;
  Credits awarded;
  Credits spent;
  Credits returned;
  int64_t start_us = 0;
  int64_t end_us = 0;
  GrantStatus status = GrantStatus::kActive;
  uint64_t account = 0;
  std::vector<Tranche> tranches;
  std::map<std::string, uint64_t> students;  // education: student id -> ledger account
};

}  // namespace atrium::program
