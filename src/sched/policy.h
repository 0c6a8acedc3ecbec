// Policy: the scheduling policy by name. `fifo` (strict order, no backfill), `backfill`
// (first come first served with reservations and backfill), `fairshare` (fair-share
// priority with backfill) and `fairshare+preempt` (the same, and preemptible and
// education jobs yield to research jobs that have waited too long). The default is
// fairshare.
//
//   Result<Policy> policy = MakePolicy("fairshare+preempt");
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "sched/priority.h"

namespace atrium::sched {

inline constexpr std::string_view kDefaultPolicy = "fairshare";

struct Policy {
  std::string name;
  std::unique_ptr<PriorityPolicy> priority;
  // Without backfill the first blocked job of a pool blocks every later job of that pool.
  bool backfill = true;
  // How many of the highest-priority blocked jobs of a pool hold a reservation.
  int reservations_max = 4;
  bool preemption = false;
};

Result<Policy> MakePolicy(std::string_view name);
// The names MakePolicy accepts, in the order of the --compare example.
std::vector<std::string> PolicyNames();

}  // namespace atrium::sched
