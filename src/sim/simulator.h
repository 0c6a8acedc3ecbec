// Simulator: replays a workload on a cluster through the very same Scheduler and Ledger
// that run production, with a virtual clock. Event-driven: the clock jumps from event to
// event (a submission, a run's end, a preemption taking effect, a requested pass); at each
// time the ends are applied first, then the submissions, then a scheduling pass if
// anything changed, at most one pass per `pass_interval_s` of virtual time (like a
// production scheduler's cycle; 0 = a pass at every event time).
//
// Each finished run is reported to a RunObserver (runs.csv is written from it, streaming);
// jobs.csv and the summary are built from the scheduler's job table at the end.
//
//   Simulator sim(cluster, {.policy = "backfill"});
//   ATRIUM_TRY(sim.Run(std::move(workload), nullptr, &observer));
//   Summary summary = Summarize(sim.scheduler());
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "cluster/cluster.h"
#include "ledger/ledger.h"
#include "sched/scheduler.h"
#include "sim/bookings.h"
#include "sim/workload.h"

namespace atrium::sim {

struct SimOptions {
  std::string policy = std::string(sched::kDefaultPolicy);
  // A pass at most every 10 s of virtual time: waits are measured to within 10 s, and a
  // million-job run needs far fewer passes than events.
  int64_t pass_interval_s = 10;
  sched::SchedulerConfig scheduler;
  // Reservations per pool for the backfilling policies; -1 = the policy's own (1 for
  // backfill and fairshare: EASY).
  int reservations = -1;
  // Capacity reservations made during the run, each at its booked_at_s (sim/bookings.h).
  std::vector<BookingSpec> bookings;
  // Called now and then with the fraction of jobs done (for a progress bar).
  std::function<void(double)> progress;
};

// One finished run of a job.
struct RunRecord {
  sched::JobId job = 0;
  uint32_t run = 0;  // 1-based
  int64_t start_s = 0;
  int64_t end_s = 0;
  sched::RunEnd ended_by = sched::RunEnd::kCompleted;
};

class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void OnRun(const sched::Scheduler& scheduler, const RunRecord& run) = 0;
};

class Simulator {
 public:
  Simulator(const cluster::Cluster& cluster, SimOptions options);

  // Opens the grants (nullptr: every grant of the workload, with an equal entitlement and
  // credits enough for all its jobs), then replays the workload to its end.
  Status Run(Workload workload, const std::vector<GrantSpec>* grants, RunObserver* observer);

  const sched::Scheduler& scheduler() const { return *scheduler_; }
  const ledger::Ledger& ledger() const { return ledger_; }
  int64_t passes() const { return passes_; }
  // Chip-seconds during which the oldest waiting job fitting the free chips (its chips)
  // was not started, from pass to pass (PassResult::idle_fit_chips).
  double idle_fit_chip_s() const { return idle_fit_chip_s_; }
  // Passes in which a job started while an older one of its pool and shape class, that
  // fitted the free chips, kept waiting.
  int64_t oldest_fit_skipped_passes() const { return oldest_fit_skipped_passes_; }
  // Chip utilisation over the submission window [first submission, last submission]:
  // the steady state, without the drain after the last arrival. 0 for an empty window.
  double window_utilization() const;
  // The raw grant, accelerator and chips of jobs the scheduler rejected (jobs.csv shows
  // what was asked for).
  struct Asked {
    std::string grant;
    std::string accelerator;
    int64_t chips = 0;
  };
  const Asked* AskedOf(sched::JobId job) const;
  // Bookings the scheduler refused, by error code.
  const std::map<std::string, int64_t>& booking_refusals() const { return booking_refusals_; }

 private:
  Status OpenGrants(const Workload& workload, const std::vector<GrantSpec>* grants);

  const cluster::Cluster* cluster_;
  SimOptions options_;
  ledger::Ledger ledger_;
  std::unique_ptr<sched::Scheduler> scheduler_;
  std::vector<std::pair<sched::JobId, Asked>> asked_;  // sorted by job
  int64_t passes_ = 0;
  std::map<std::string, int64_t> booking_refusals_;
  double idle_fit_chip_s_ = 0;
  int64_t oldest_fit_skipped_passes_ = 0;
  int64_t window_start_s_ = 0;
  int64_t window_end_s_ = 0;
  double window_chip_s_ = 0;
};

}  // namespace atrium::sim
