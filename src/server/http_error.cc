#include "server/http_error.h"

namespace atrium::server {

int HttpStatusOf(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return 200;
    case ErrorCode::kParseError:
    case ErrorCode::kInvalidPath:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kForbidden:
      return 403;
    case ErrorCode::kNotFound:
    case ErrorCode::kAccountNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kExists:
    case ErrorCode::kExistsWithDifferentFields:
    case ErrorCode::kInvalidState:
    case ErrorCode::kCallNotOpen:
    case ErrorCode::kCallClosed:
    case ErrorCode::kDeadlinePassed:
    case ErrorCode::kGrantNotActive:
    case ErrorCode::kOverBudget:
    case ErrorCode::kCapExceeded:
    case ErrorCode::kInsufficientCredits:
    case ErrorCode::kStudentLimit:
    case ErrorCode::kNoCapacity:
    case ErrorCode::kReservationLimit:
    case ErrorCode::kNotEnrolled:
    case ErrorCode::kPrerequisiteMissing:
    case ErrorCode::kDatasetAccessDenied:
    case ErrorCode::kAgreementRequired:
    case ErrorCode::kAccountFrozen:
    case ErrorCode::kAccountClosed:
    case ErrorCode::kConflictOfInterest:
    case ErrorCode::kNotAssigned:
    case ErrorCode::kIdempotencyKeyReused:
    case ErrorCode::kLocked:
      return 409;
    case ErrorCode::kTooLarge:
      return 413;
    case ErrorCode::kRateLimited:
      return 429;
    case ErrorCode::kInternal:
    case ErrorCode::kIoError:
    case ErrorCode::kCorruption:
    case ErrorCode::kInvariantViolated:
    case ErrorCode::kChainBroken:
      return 500;
    case ErrorCode::kUnavailable:
    case ErrorCode::kJournalPoisoned:
      return 503;
    default:
      return 422;  // the request was understood and is invalid
  }
}

nlohmann::json ErrorBody(const Error& error) {
  nlohmann::json body = {{"code", ToString(error.code)}, {"message", error.message}};
  if (HttpStatusOf(error.code) == 500) body["message"] = "internal error; see the service log";
  if (!error.field.empty()) body["field"] = error.field;
  return {{"error", std::move(body)}};
}

}  // namespace atrium::server
