// Summary metrics of a simulated run (summary.json; docs/simulate.md defines each):
// counts, utilisation, waits, job completion times, bounded slowdown, Jain's fairness
// index across grants, and the credits charged (exact, in micro-credits).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "sched/scheduler.h"

namespace atrium::sim {

// Runs shorter than this count as this long in the bounded slowdown (the usual 10 s).
inline constexpr int64_t kSlowdownBoundS = 10;

struct Summary {
  std::string policy;
  int64_t jobs = 0;
  int64_t completed = 0;
  int64_t killed_at_walltime = 0;
  int64_t rejected = 0;
  int64_t unfinished = 0;  // never ran to an end (counted in rejected in jobs.csv)
  int64_t preemptions = 0;
  double utilization = 0;           // over the submission window (Simulator)
  double utilization_makespan = 0;  // over first submission .. last end
  double wait_mean_s = 0;
  double wait_p50_s = 0;
  double wait_p99_s = 0;
  double jct_mean_s = 0;
  double bounded_slowdown_mean = 0;
  double jain_index_grants = 0;
  int64_t credits_charged_micro = 0;
  int64_t makespan_s = 0;
  int64_t passes = 0;
  // Chip-seconds the oldest fitting waiting job was left waiting (Simulator), and that
  // over the chip-seconds of the makespan.
  double idle_fit_chip_s = 0;
  double idle_fit_fraction = 0;
  int64_t oldest_fit_skipped_passes = 0;
  // Jobs that started while an older fitting job of their class waited, by the reason.
  int64_t started_ahead_priority = 0;
  int64_t started_ahead_reservation = 0;
  int64_t started_ahead_credits = 0;
  // Pass work (sched::PassStats).
  int64_t jobs_examined = 0;
  int64_t backfill_refused = 0;
  int64_t pass_bound_hits = 0;
  int64_t reservations_made = 0;
  double sim_wall_s = 0;
  double peak_rss_mb = 0;
  // Capacity reservations (Simulator): made, refused by code, chip-hours booked, used by
  // their owners inside the windows and lent to others before them (in summary.json
  // only when the run had any).
  struct CapacityReservations {
    bool any = false;
    int64_t made = 0;
    int64_t maintenance = 0;
    int64_t cancelled = 0;
    std::map<std::string, int64_t> refused;
    double chip_hours_booked = 0;
    double chip_hours_used_by_owners = 0;
    double chip_hours_lent_before_windows = 0;
    int64_t charged_micro = 0;
  } capacity_reservations;

  nlohmann::json ToJson() const;
};

Summary Summarize(const sched::Scheduler& scheduler);
class Simulator;
// The above, with the simulator's window utilisation and pass count.
Summary Summarize(const Simulator& simulator);
// The process's peak resident set (VmHWM), in MiB; 0 where /proc is unavailable.
double PeakRssMb();

}  // namespace atrium::sim
