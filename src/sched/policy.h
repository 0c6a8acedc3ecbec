// Policy: the scheduling policy by name. `fifo` (strict order, no backfill), `backfill`
// (first come first served with EASY backfilling: one reservation per pool),
// `conservative` (first come first served, a reservation for each of the first
// kConservativeReservations blocked jobs of a pool), `fairshare` (fair-share priority
// with EASY backfilling) and `fairshare+preempt` (the same, and preemptible and education
// jobs yield to research jobs that have waited too long). The default is backfill (EASY):
// the bar is EASY's waits at EASY's utilisation, which fair share does not meet
// (it trades utilisation for small jobs' waits). docs/simulate.md says what each trades.
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

inline constexpr std::string_view kDefaultPolicy = "backfill";
inline constexpr int kConservativeReservations = 32;
inline constexpr int kReservationsMax = 1024;  // the bound of the --reservations setting

struct Policy {
  std::string name;
  std::unique_ptr<PriorityPolicy> priority;
  // Without backfill the first blocked job of a pool blocks every later job of that pool.
  bool backfill = true;
  // How many of the highest-priority blocked jobs of a pool hold a reservation at each
  // pass. 1 is EASY: the first blocked job never waits for a later one, and every other
  // job may use what that reservation leaves. More protect more large jobs from being
  // overtaken, at the cost of small jobs' waits (the holes they could fill shrink).
  int reservations_max = 1;
  // Firm promises (conservative): at each pass the jobs that held a reservation keep their
  // place in the pool's order of reservations, ahead of any job reserved for the first
  // time, so a promised start only moves earlier (unless a node fails). Without it the
  // reservations are made again in priority order, and a job reserved later in that order
  // may slip behind one that had none.
  bool firm_reservations = false;
  bool preemption = false;
};

Result<Policy> MakePolicy(std::string_view name);
// The names MakePolicy accepts, in the order of the --compare example.
std::vector<std::string> PolicyNames();

}  // namespace atrium::sched
