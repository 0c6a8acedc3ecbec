#include "sim/metrics.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "sim/simulator.h"

namespace atrium::sim {
namespace {

double Percentile(std::vector<int64_t>& values, double fraction) {
  if (values.empty()) return 0;
  const auto rank = static_cast<size_t>(std::ceil(fraction * static_cast<double>(values.size())));
  const size_t index = rank == 0 ? 0 : std::min(values.size() - 1, rank - 1);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return static_cast<double>(values[index]);
}

}  // namespace

Summary Summarize(const sched::Scheduler& scheduler) {
  Summary summary;
  summary.policy = scheduler.policy().name;
  std::vector<int64_t> waits;
  double jct_total = 0;
  double slowdown_total = 0;
  int64_t finished = 0;
  double chip_seconds = 0;
  int64_t first_submit = INT64_MAX;
  int64_t last_end = INT64_MIN;
  std::vector<double> grant_slowdown(scheduler.grants().size(), 0);
  std::vector<int64_t> grant_jobs(scheduler.grants().size(), 0);
  int64_t charged = 0;
  for (sched::JobId id = 0; id < scheduler.job_count(); ++id) {
    const sched::Job& job = scheduler.job(id);
    ++summary.jobs;
    first_submit = std::min(first_submit, job.submit_s);
    charged += job.charged.micro();
    summary.preemptions += job.runs > 0 ? job.runs - 1 : 0;
    if (job.first_start_s >= 0) waits.push_back(job.first_start_s - job.submit_s);
    switch (job.ahead) {
      case sched::StartedAhead::kNo:
        break;
      case sched::StartedAhead::kPriority:
        ++summary.started_ahead_priority;
        break;
      case sched::StartedAhead::kReservation:
        ++summary.started_ahead_reservation;
        break;
      case sched::StartedAhead::kCredits:
        ++summary.started_ahead_credits;
        break;
    }
    chip_seconds += static_cast<double>(job.shape.chips) * static_cast<double>(job.ran_s);
    switch (job.state) {
      case sched::JobState::kRejected:
        ++summary.rejected;
        continue;
      case sched::JobState::kPending:
      case sched::JobState::kRunning:
        ++summary.unfinished;
        continue;
      case sched::JobState::kCompleted:
        ++summary.completed;
        break;
      case sched::JobState::kKilledAtWalltime:
        ++summary.killed_at_walltime;
        break;
      case sched::JobState::kCancelled:  // the simulator never cancels
        ++summary.completed;
        break;
    }
    const int64_t jct = job.end_s - job.submit_s;
    last_end = std::max(last_end, job.end_s);
    const double slowdown = std::max(
        1.0, static_cast<double>(jct) / static_cast<double>(std::max(job.ran_s, kSlowdownBoundS)));
    jct_total += static_cast<double>(jct);
    slowdown_total += slowdown;
    ++finished;
    grant_slowdown[job.grant] += slowdown;
    ++grant_jobs[job.grant];
  }
  summary.credits_charged_micro = charged;
  const sched::PassStats& stats = scheduler.stats();
  summary.jobs_examined = stats.jobs_examined;
  summary.backfill_refused = stats.backfill_refused;
  summary.pass_bound_hits = stats.bound_hits;
  summary.reservations_made = stats.reservations;
  if (finished > 0) {
    summary.jct_mean_s = jct_total / static_cast<double>(finished);
    summary.bounded_slowdown_mean = slowdown_total / static_cast<double>(finished);
  }
  if (!waits.empty()) {
    double wait_total = 0;
    for (const int64_t wait : waits) wait_total += static_cast<double>(wait);
    summary.wait_mean_s = wait_total / static_cast<double>(waits.size());
    summary.wait_p50_s = Percentile(waits, 0.50);
    summary.wait_p99_s = Percentile(waits, 0.99);
  }
  if (last_end > first_submit) {
    summary.makespan_s = last_end - first_submit;
    summary.utilization_makespan = chip_seconds / (static_cast<double>(scheduler.up_chips()) *
                                                   static_cast<double>(summary.makespan_s));
  }
  // Jain's index over grants of each grant's service rate, 1 / mean bounded slowdown:
  // 1 when every grant's jobs are slowed alike, towards 1/n when one grant gets it all.
  double sum = 0;
  double sum_squares = 0;
  int64_t active = 0;
  for (size_t grant = 0; grant < grant_jobs.size(); ++grant) {
    if (grant_jobs[grant] == 0) continue;
    const double rate = static_cast<double>(grant_jobs[grant]) / grant_slowdown[grant];
    sum += rate;
    sum_squares += rate * rate;
    ++active;
  }
  if (active > 0 && sum_squares > 0) {
    summary.jain_index_grants = sum * sum / (static_cast<double>(active) * sum_squares);
  }
  return summary;
}

Summary Summarize(const Simulator& simulator) {
  Summary summary = Summarize(simulator.scheduler());
  summary.utilization = simulator.window_utilization();
  summary.passes = simulator.passes();
  summary.idle_fit_chip_s = simulator.idle_fit_chip_s();
  if (summary.makespan_s > 0) {
    summary.idle_fit_fraction =
        summary.idle_fit_chip_s / (static_cast<double>(simulator.scheduler().up_chips()) *
                                   static_cast<double>(summary.makespan_s));
  }
  summary.oldest_fit_skipped_passes = simulator.oldest_fit_skipped_passes();
  const sched::Scheduler& sched = simulator.scheduler();
  if (!sched.bookings().empty() || !simulator.booking_refusals().empty()) {
    Summary::CapacityReservations& use = summary.capacity_reservations;
    use.any = true;
    use.refused = simulator.booking_refusals();
    double booked_chip_s = 0;
    for (const sched::CapacityBooking& booking : sched.bookings()) {
      ++use.made;
      if (booking.grant < 0) ++use.maintenance;
      if (booking.state == sched::BookingState::kCancelled) {
        ++use.cancelled;
        continue;
      }
      const int chips_per_node = sched.cluster().pools()[booking.pool].chips_per_node;
      const int64_t end_s = booking.closed_at_s >= 0 ? booking.closed_at_s : booking.end_s;
      booked_chip_s += static_cast<double>(booking.chips(chips_per_node)) *
                       static_cast<double>(std::max<int64_t>(0, end_s - booking.start_s));
      use.chip_hours_used_by_owners += static_cast<double>(booking.used_chip_s) / 3600;
      use.chip_hours_lent_before_windows += static_cast<double>(booking.lent_chip_s) / 3600;
      use.charged_micro += booking.charged.micro();
    }
    use.chip_hours_booked = booked_chip_s / 3600;
  }
  return summary;
}

nlohmann::json Summary::ToJson() const {
  nlohmann::json out{
      {"policy", policy},
      {"jobs", jobs},
      {"completed", completed},
      {"killed_at_walltime", killed_at_walltime},
      {"rejected", rejected},
      {"unfinished", unfinished},
      {"preemptions", preemptions},
      {"utilization", utilization},
      {"utilization_makespan", utilization_makespan},
      {"wait_mean_s", wait_mean_s},
      {"wait_p50_s", wait_p50_s},
      {"wait_p99_s", wait_p99_s},
      {"jct_mean_s", jct_mean_s},
      {"bounded_slowdown_mean", bounded_slowdown_mean},
      {"jain_index_grants", jain_index_grants},
      {"credits_charged", static_cast<double>(credits_charged_micro) / 1e6},
      {"credits_charged_micro", credits_charged_micro},
      {"makespan_s", makespan_s},
      {"passes", passes},
      {"idle_fit_chip_s", idle_fit_chip_s},
      {"idle_fit_fraction", idle_fit_fraction},
      {"oldest_fit_skipped_passes", oldest_fit_skipped_passes},
      {"started_ahead_priority", started_ahead_priority},
      {"started_ahead_reservation", started_ahead_reservation},
      {"started_ahead_credits", started_ahead_credits},
      {"jobs_examined", jobs_examined},
      {"backfill_refused", backfill_refused},
      {"pass_bound_hits", pass_bound_hits},
      {"reservations_made", reservations_made},
      {"sim_wall_s", sim_wall_s},
      {"peak_rss_mb", peak_rss_mb},
  };
  if (capacity_reservations.any) {
    const CapacityReservations& use = capacity_reservations;
    out["capacity_reservations"] = {
        {"made", use.made},
        {"maintenance", use.maintenance},
        {"cancelled", use.cancelled},
        {"refused", use.refused},
        {"chip_hours_booked", use.chip_hours_booked},
        {"chip_hours_used_by_owners", use.chip_hours_used_by_owners},
        {"chip_hours_lent_before_windows", use.chip_hours_lent_before_windows},
        {"owner_use_fraction",
         use.chip_hours_booked > 0 ? use.chip_hours_used_by_owners / use.chip_hours_booked : 0.0},
        {"credits_charged", static_cast<double>(use.charged_micro) / 1e6}};
  }
  return out;
}

double PeakRssMb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return static_cast<double>(std::stoll(line.substr(6))) / 1024.0;  // kB -> MiB
    }
  }
  return 0;
}

}  // namespace atrium::sim
