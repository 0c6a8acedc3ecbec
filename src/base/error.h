// Error codes, Error, Status and Result<T>: how every Atrium module reports an expected
// failure. The code is machine-readable and its string is part of the API contract (the
// CLI prints it, the HTTP API returns it): extend the list, never rename an entry.
//
//   Result<Credits> r = Credits::Parse("12.5");
//   if (!r.ok()) return r.error();
//   Credits c = *r;
//
// Inside a function that returns Status or Result<U>, ATRIUM_TRY(expr) returns the error
// of a failed Status or Result, and ATRIUM_ASSIGN_OR_RETURN(lhs, expr) unwraps a Result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/assert.h"

namespace atrium {

// X(enumerator, "stable string").
#define ATRIUM_ERROR_CODES(X)                                   \
  /* generic */                                                 \
  X(kOk, "ok")                                                  \
  X(kInvalidArgument, "invalid_argument")                       \
  X(kParseError, "parse_error")                                 \
  X(kNotFound, "not_found")                                     \
  X(kAlreadyExists, "already_exists")                           \
  X(kOverflow, "overflow")                                      \
  X(kOutOfRange, "out_of_range")                                \
  X(kIoError, "io_error")                                       \
  X(kCorruption, "corruption")                                  \
  X(kUnavailable, "unavailable")                                \
  X(kInternal, "internal")                                      \
  X(kLimitExceeded, "limit_exceeded")                           \
  /* ledger: refusals of an account or transfer event */        \
  X(kExists, "exists")                                          \
  X(kExistsWithDifferentFields, "exists_with_different_fields") \
  X(kInsufficientCredits, "insufficient_credits")               \
  X(kAccountNotFound, "account_not_found")                      \
  X(kAccountFrozen, "account_frozen")                           \
  X(kAccountClosed, "account_closed")                           \
  X(kAccountHasPending, "account_has_pending")                  \
  X(kSameAccount, "same_account")                               \
  X(kZeroAmount, "zero_amount")                                 \
  X(kNegativeAmount, "negative_amount")                         \
  X(kPendingNotFound, "pending_not_found")                      \
  X(kPendingAlreadyPosted, "pending_already_posted")            \
  X(kPendingAlreadyVoided, "pending_already_voided")            \
  X(kPendingExpired, "pending_expired")                         \
  X(kPostExceedsPending, "post_exceeds_pending")                \
  X(kNotPending, "not_pending")                                 \
  X(kLinkedEventFailed, "linked_event_failed")                  \
  X(kLinkedEventChainOpen, "linked_event_chain_open")           \
  X(kInvalidFlags, "invalid_flags")                             \
  X(kInvalidId, "invalid_id")                                   \
  X(kDebitsExceedCredits, "debits_exceed_credits")              \
  X(kCreditsExceedDebits, "credits_exceed_debits")              \
  X(kTimeoutWithoutPending, "timeout_without_pending")          \
  X(kInvalidKind, "invalid_kind")                               \
  X(kPendingAccountMismatch, "pending_account_mismatch")        \
  X(kTimestampOverflow, "timestamp_overflow")                   \
  /* journal */                                                 \
  X(kJournalPoisoned, "journal_poisoned")                       \
  X(kChainBroken, "chain_broken")                               \
  X(kInvariantViolated, "invariant_violated")                   \
  /* cluster and scheduler */                                   \
  X(kConfigInvalid, "config_invalid")                           \
  X(kUnknownAccelerator, "unknown_accelerator")                 \
  X(kInvalidAllocationSize, "invalid_allocation_size")          \
  X(kJobTooLarge, "job_too_large")                              \
  X(kUnknownGrant, "unknown_grant")                             \
  X(kUnknownPolicy, "unknown_policy")                           \
  X(kPartitionLimit, "partition_limit")                         \
  X(kTraceInvalid, "trace_invalid")                             \
  /* program: calls, proposals, reviews, decisions, grants */   \
  X(kCallNotOpen, "call_not_open")                              \
  X(kCallClosed, "call_closed")                                 \
  X(kIneligible, "ineligible")                                  \
  X(kConflictOfInterest, "conflict_of_interest")                \
  X(kNotAssigned, "not_assigned")                               \
  X(kScoreOutOfRange, "score_out_of_range")                     \
  X(kDeadlinePassed, "deadline_passed")                         \
  X(kOverBudget, "over_budget")                                 \
  X(kCapExceeded, "cap_exceeded")                               \
  X(kInvalidState, "invalid_state")                             \
  X(kUnassignable, "unassignable")                              \
  X(kInvalidPersonId, "invalid_person_id")                      \
  X(kInvalidPaperId, "invalid_paper_id")                        \
  X(kInvalidRepository, "invalid_repository")                   \
  X(kInvalidLicense, "invalid_license")                         \
  X(kGrantNotActive, "grant_not_active")                        \
  X(kSolverFailed, "solver_failed")                             \
  /* governance (docs/governance.md) */                         \
  X(kOverrideNotAllowed, "override_not_allowed")                \
  X(kOverrideLimit, "override_limit")                           \
  X(kAppealNotAllowed, "appeal_not_allowed")                    \
  X(kAppealWindowClosed, "appeal_window_closed")                \
  /* The service (src/server). */                               \
  X(kUnauthenticated, "unauthenticated")                        \
  X(kForbidden, "forbidden")                                    \
  X(kUnknownField, "unknown_field")                             \
  X(kTooLarge, "too_large")                                     \
  X(kTooLong, "too_long")                                       \
  X(kIdempotencyKeyReused, "idempotency_key_reused")            \
  X(kRateLimited, "rate_limited")                               \
  X(kLocked, "locked")                                          \
  X(kInvalidPath, "invalid_path")                               \
  X(kStudentLimit, "student_limit")                             \
  /* capacity reservations (docs/reservations.md) */            \
  X(kNoCapacity, "no_capacity")                                 \
  X(kReservationLimit, "reservation_limit")                     \
  /* training (docs/training.md) */                             \
  X(kNotEnrolled, "not_enrolled")                               \
  X(kPrerequisiteMissing, "prerequisite_missing")               \
  /* datasets (docs/datasets.md) */                             \
  X(kDatasetAccessDenied, "dataset_access_denied")              \
  X(kAgreementRequired, "agreement_required")

enum class ErrorCode : uint16_t {
#define ATRIUM_ERROR_ENUM(name, text) name,
  ATRIUM_ERROR_CODES(ATRIUM_ERROR_ENUM)
#undef ATRIUM_ERROR_ENUM
};

// How many codes there are (they number 0 .. kErrorCodeCount - 1).
#define ATRIUM_ERROR_COUNT(name, text) +1  // NOLINT(bugprone-macro-parentheses): a +1 chain
inline constexpr size_t kErrorCodeCount = 0 ATRIUM_ERROR_CODES(ATRIUM_ERROR_COUNT);
#undef ATRIUM_ERROR_COUNT

// The stable string of a code ("insufficient_credits").
std::string_view ToString(ErrorCode code);
// Sets *code to the code whose stable string is text; false if there is none.
bool ErrorCodeFromString(std::string_view text, ErrorCode* code);

// An expected failure: a code, a sentence for people and, where it applies, the input
// field at fault.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::string field;

  std::string ToString() const;  // "code: message (field)"
};

inline Error MakeError(ErrorCode code, std::string message, std::string field = {}) {
  return Error{code, std::move(message), std::move(field)};
}

// Success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const { return ok_; }
  const Error& error() const {
    ATRIUM_ASSERT(!ok_, "error() of an ok Status");
    return error_;
  }
  ErrorCode code() const { return ok_ ? ErrorCode::kOk : error_.code; }

 private:
  Error error_;
  bool ok_ = true;
};

inline Status OkStatus() { return Status(); }

// A value or an Error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : state_(std::move(error)) {}  // NOLINT: implicit by design
  Result(Status status) : state_(status.error()) {}  // NOLINT: only from a failed Status

  bool ok() const { return state_.index() == 0; }
  const Error& error() const {
    ATRIUM_ASSERT(!ok(), "error() of an ok Result");
    return std::get<1>(state_);
  }
  ErrorCode code() const { return ok() ? ErrorCode::kOk : error().code; }
  Status status() const { return ok() ? Status() : Status(error()); }

  T& value() & {
    ATRIUM_ASSERT(ok(), "value() of a failed Result");
    return std::get<0>(state_);
  }
  const T& value() const& {
    ATRIUM_ASSERT(ok(), "value() of a failed Result");
    return std::get<0>(state_);
  }
  T&& value() && {
    ATRIUM_ASSERT(ok(), "value() of a failed Result");
    return std::get<0>(std::move(state_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Error> state_;
};

namespace internal {
inline Status ToStatus(const Status& s) { return s; }
template <typename T>
Status ToStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace internal

}  // namespace atrium

#define ATRIUM_CONCAT_INNER(a, b) a##b
#define ATRIUM_CONCAT(a, b) ATRIUM_CONCAT_INNER(a, b)

#define ATRIUM_TRY(expr)                                           \
  do {                                                             \
    auto atrium_try_status = ::atrium::internal::ToStatus(expr);   \
    if (!atrium_try_status.ok()) return atrium_try_status.error(); \
  } while (false)

#define ATRIUM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)                                 \
  auto tmp = (expr);                 /* NOLINT(bugprone-macro-parentheses): names */ \
  if (!tmp.ok()) return tmp.error(); /* NOLINT(bugprone-macro-parentheses) */        \
  lhs = std::move(tmp).value()       /* NOLINT(bugprone-macro-parentheses): a declaration */

#define ATRIUM_ASSIGN_OR_RETURN(lhs, expr) \
  ATRIUM_ASSIGN_OR_RETURN_IMPL(ATRIUM_CONCAT(atrium_result_, __LINE__), lhs, expr)
