#include "program/model.h"

namespace atrium::program {

std::string_view ToString(TrackKind kind) {
  switch (kind) {
    case TrackKind::kResearch:
      return "research";
    case TrackKind::kEducation:
      return "education";
  }
  return "unknown";
}

std::string_view ToString(CallState state) {
  switch (state) {
    case CallState::kScheduled:
      return "scheduled";
    case CallState::kOpen:
      return "open";
    case CallState::kClosed:
      return "closed";
    case CallState::kDecided:
      return "decided";
  }
  return "unknown";
}

std::string_view ToString(ProposalStatus status) {
  switch (status) {
    case ProposalStatus::kSubmitted:
      return "submitted";
    case ProposalStatus::kWithdrawn:
      return "withdrawn";
    case ProposalStatus::kInReview:
      return "in_review";
    case ProposalStatus::kAwarded:
      return "awarded";
    case ProposalStatus::kDeclined:
      return "declined";
  }
  return "unknown";
}

std::string_view ToString(ConflictReason reason) {
  switch (reason) {
    case ConflictReason::kSameInstitution:
      return "same_institution";
    case ConflictReason::kCoInvestigator:
      return "co_investigator";
    case ConflictReason::kCollaborator:
      return "collaborator";
    case ConflictReason::kDeclared:
      return "declared";
  }
  return "unknown";
}

std::string_view ToString(Rationale rationale) {
  switch (rationale) {
    case Rationale::kFunded:
      return "funded";
    case Rationale::kCutBudget:
      return "cut_budget";
    case Rationale::kCutInstitutionCap:
      return "cut_institution_cap";
    case Rationale::kCutFloor:
      return "cut_floor";
    case Rationale::kDeclinedBelowLine:
      return "declined_below_line";
    case Rationale::kDeclinedBudget:
      return "declined_budget";
    case Rationale::kDeclinedInstitutionCap:
      return "declined_institution_cap";
    case Rationale::kDeclinedFloor:
      return "declined_floor";
    case Rationale::kDeclinedIneligible:
      return "declined_ineligible";
    case Rationale::kDeclinedNoReviews:
      return "declined_no_reviews";
    case Rationale::kDeclinedWithdrawn:
      return "declined_withdrawn";
    case Rationale::kVetoedByOverride:
      return "vetoed_by_override";
    case Rationale::kAddedByOverride:
      return "added_by_override";
    case Rationale::kDisplacedByOverride:
      return "displaced_by_override";
  }
  return "unknown";
}

std::string_view ToString(OverrideKind kind) {
  return kind == OverrideKind::kVeto ? "veto" : "add";
}

std::string_view ToString(AppealState state) {
  switch (state) {
    case AppealState::kFiled:
      return "filed";
    case AppealState::kUpheld:
      return "upheld";
    case AppealState::kRejected:
      return "rejected";
  }
  return "unknown";
}

std::string_view ToString(GrantStatus status) {
  switch (status) {
    case GrantStatus::kActive:
      return "active";
    case GrantStatus::kFrozen:
      return "frozen";
    case GrantStatus::kExpired:
      return "expired";
    case GrantStatus::kClosed:
      return "closed";
  }
  return "unknown";
}

std::string_view ToString(ObligationKind kind) {
  switch (kind) {
    case ObligationKind::kProgressReport:
      return "progress_report";
    case ObligationKind::kFinalReport:
      return "final_report";
    case ObligationKind::kPaper:
      return "paper";
    case ObligationKind::kRepository:
      return "repository";
  }
  return "unknown";
}

std::string_view ToString(ObligationState state) {
  switch (state) {
    case ObligationState::kDue:
      return "due";
    case ObligationState::kSubmitted:
      return "submitted";
    case ObligationState::kAccepted:
      return "accepted";
    case ObligationState::kOverdue:
      return "overdue";
  }
  return "unknown";
}

}  // namespace atrium::program
