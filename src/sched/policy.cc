#include "sched/policy.h"

#include <fmt/format.h>

namespace atrium::sched {

std::vector<std::string> PolicyNames() {
  return {"fifo", "backfill", "fairshare", "fairshare+preempt", "conservative"};
}

Result<Policy> MakePolicy(std::string_view name) {
  Policy policy{.name = std::string(name)};
  if (name == "fifo") {
    policy.priority = std::make_unique<FifoPriority>();
    policy.backfill = false;
    policy.reservations_max = 0;
  } else if (name == "backfill") {
    policy.priority = std::make_unique<FifoPriority>();
  } else if (name == "conservative") {
    policy.priority = std::make_unique<FifoPriority>();
    policy.reservations_max = kConservativeReservations;
    policy.firm_reservations = true;
  } else if (name == "fairshare") {
    policy.priority = std::make_unique<FairSharePriority>();
  } else if (name == "fairshare+preempt") {
    policy.priority = std::make_unique<FairSharePriority>();
    policy.preemption = true;
  } else {
    return MakeError(
        ErrorCode::kUnknownPolicy,
        fmt::format("unknown policy '{}'; known: {}", name, fmt::join(PolicyNames(), ", ")),
        "policy");
  }
  return policy;
}

}  // namespace atrium::sched
