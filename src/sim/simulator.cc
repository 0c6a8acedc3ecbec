#include "sim/simulator.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <queue>

#include "absl/container/flat_hash_map.h"

namespace atrium::sim {
namespace {

// Event kinds in the order they apply at one time: ends free chips before submissions
// and passes look at them.
enum class EventKind : uint8_t { kComplete = 0, kWalltime = 1, kPreempt = 2, kPass = 3 };
// Bookings are made after the ends and before the submissions of their time.

struct Event {
  int64_t time_s;
  EventKind kind;
  sched::JobId job;
  uint32_t run;
  bool operator>(const Event& other) const {
    if (time_s != other.time_s) return time_s > other.time_s;
    if (kind != other.kind) return kind > other.kind;
    return job > other.job;
  }
};

}  // namespace

Simulator::Simulator(const cluster::Cluster& cluster, SimOptions options)
    : cluster_(&cluster), options_(std::move(options)) {}

const Simulator::Asked* Simulator::AskedOf(sched::JobId job) const {
  const auto found =
      std::lower_bound(asked_.begin(), asked_.end(), job,
                       [](const auto& entry, sched::JobId id) { return entry.first < id; });
  return found != asked_.end() && found->first == job ? &found->second : nullptr;
}

Status Simulator::OpenGrants(const Workload& workload, const std::vector<GrantSpec>* grants) {
  if (grants != nullptr) {
    for (const GrantSpec& grant : *grants) {
      // Entitlement follows the awarded credits (in whole credits, to keep it a ratio).
      const double entitlement = static_cast<double>(grant.credits.micro()) / 1e6;
      auto added =
          scheduler_->AddGrant(grant.name, grant.credits, entitlement, grant.default_class, 0);
      if (!added.ok()) return added.error();
    }
    return OkStatus();
  }
  // Enough credits: twice every job's worst case, so no job waits on money.
  std::vector<std::string> order;
  absl::flat_hash_map<std::string, Credits> need;
  for (const sched::JobSpec& job : workload.jobs) {
    auto [entry, inserted] = need.try_emplace(job.grant, Credits::Zero());
    if (inserted) order.push_back(job.grant);
    const auto shape = cluster_->Shape(job.accelerator, job.chips);
    if (!shape.ok() || job.walltime_s < 1) continue;
    const Credits price =
        cluster_->accelerators()[cluster_->pools()[shape->pool].accelerator].price_per_chip_hour;
    const auto cost = UsageCost(job.chips, job.walltime_s, price);
    if (!cost.ok()) continue;
    const auto doubled = cost->CheckedAdd(*cost);
    const auto total = doubled.ok() ? entry->second.CheckedAdd(*doubled) : doubled;
    if (total.ok()) entry->second = *total;
  }
  // And the bookings' prices (a booking refused for credits would not show its cost).
  for (const BookingSpec& booking : options_.bookings) {
    const auto found = need.find(booking.request.grant);
    if (found == need.end()) continue;
    const auto shape = cluster_->Shape(booking.request.accelerator, 1);
    if (!shape.ok()) continue;
    const cluster::Pool& pool = cluster_->pools()[shape->pool];
    const int64_t nodes =
        booking.request.nodes > 0
            ? booking.request.nodes
            : (booking.request.chips + pool.chips_per_node - 1) / pool.chips_per_node;
    const auto cost =
        UsageCost(nodes * pool.chips_per_node, booking.request.end_s - booking.request.start_s,
                  cluster_->accelerators()[pool.accelerator].price_per_chip_hour);
    if (!cost.ok() || booking.request.end_s <= booking.request.start_s) continue;
    const auto total = found->second.CheckedAdd(*cost);
    if (total.ok()) found->second = *total;
  }
  for (const std::string& name : order) {
    const Credits credits = *need[name].CheckedAdd(Credits::FromWhole(1));
    auto added = scheduler_->AddGrant(name, credits, 1.0, cluster::JobClass::kResearch, 0);
    if (!added.ok()) return added.error();
  }
  return OkStatus();
}

Status Simulator::Run(Workload workload, const std::vector<GrantSpec>* grants,
                      RunObserver* observer) {
  ATRIUM_ASSIGN_OR_RETURN(sched::Policy policy, sched::MakePolicy(options_.policy));
  if (options_.reservations >= 0 && policy.backfill) {
    if (options_.reservations < 1 || options_.reservations > sched::kReservationsMax) {
      return MakeError(ErrorCode::kInvalidArgument,
                       fmt::format("reservations must be from 1 to {}", sched::kReservationsMax),
                       "reservations");
    }
    policy.reservations_max = options_.reservations;
  }
  scheduler_ =
      std::make_unique<sched::Scheduler>(*cluster_, ledger_, std::move(policy), options_.scheduler);
  ATRIUM_TRY(OpenGrants(workload, grants));
  auto& jobs = workload.jobs;
  std::stable_sort(jobs.begin(), jobs.end(), [](const auto& left, const auto& right) {
    return left.submit_s < right.submit_s;
  });
  sched::Scheduler& sched = *scheduler_;
  if (!jobs.empty()) {
    window_start_s_ = jobs.front().submit_s;
    window_end_s_ = jobs.back().submit_s;
  }
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events;
  size_t next_submit = 0;
  std::vector<BookingSpec> bookings = options_.bookings;
  std::stable_sort(bookings.begin(), bookings.end(), [](const auto& left, const auto& right) {
    return left.booked_at_s < right.booked_at_s;
  });
  size_t next_booking = 0;
  int64_t last_pass_s = INT64_MIN;
  int64_t pass_queued_s = -1;
  bool dirty = false;
  size_t done = 0;
  const size_t total = jobs.size();
  uint64_t steps = 0;

  auto finish = [&](sched::JobId id, int64_t now_s, sched::RunEnd how) {
    const sched::Job& job = sched.job(id);
    const RunRecord record{id, job.runs, job.run_start_s, now_s, how};
    const int64_t overlap_s =
        std::min(now_s, window_end_s_) - std::max(job.run_start_s, window_start_s_);
    if (overlap_s > 0)
      window_chip_s_ += static_cast<double>(job.shape.chips) * static_cast<double>(overlap_s);
    sched.Finish(id, now_s, how);
    if (observer != nullptr) observer->OnRun(sched, record);
    if (how != sched::RunEnd::kPreempted) ++done;
    dirty = true;
  };
  int64_t idle_fit_chips = 0;
  auto run_pass = [&](int64_t now_s) {
    if (last_pass_s != INT64_MIN) {
      idle_fit_chip_s_ +=
          static_cast<double>(idle_fit_chips) * static_cast<double>(now_s - last_pass_s);
    }
    const sched::PassResult result = sched.Pass(now_s);
    idle_fit_chips = result.idle_fit_chips;
    if (result.oldest_fit_skipped > 0) ++oldest_fit_skipped_passes_;
    ++passes_;
    last_pass_s = now_s;
    dirty = false;
    for (const sched::JobId id : result.started) {
      const sched::Job& job = sched.job(id);
      const int64_t remaining_s = std::max<int64_t>(0, job.duration_s - job.ran_s);
      const bool completes = remaining_s <= job.run_limit_s;
      events.push({now_s + (completes ? remaining_s : job.run_limit_s),
                   completes ? EventKind::kComplete : EventKind::kWalltime, id, job.runs});
    }
    for (const sched::PreemptNotice& notice : result.preempted) {
      events.push({notice.at_s, EventKind::kPreempt, notice.job, sched.job(notice.job).runs});
    }
    if (result.wake_at_s > now_s) events.push({result.wake_at_s, EventKind::kPass, 0, 0});
  };

  while (true) {
    int64_t now_s = INT64_MAX;
    if (!events.empty()) now_s = events.top().time_s;
    if (next_submit < jobs.size()) now_s = std::min(now_s, jobs[next_submit].submit_s);
    if (next_booking < bookings.size()) {
      now_s = std::min(now_s, bookings[next_booking].booked_at_s);
    }
    if (now_s == INT64_MAX) break;
    bool pass_due = false;
    while (!events.empty() && events.top().time_s == now_s) {
      const Event event = events.top();
      events.pop();
      if (event.kind == EventKind::kPass) {
        pass_due = true;
        if (pass_queued_s == now_s) pass_queued_s = -1;
        continue;
      }
      const sched::Job& job = sched.job(event.job);
      if (job.state != sched::JobState::kRunning || job.runs != event.run) continue;  // stale
      if (event.kind == EventKind::kPreempt) {
        if (job.preempt_at_s != now_s) continue;
        finish(event.job, now_s, sched::RunEnd::kPreempted);
      } else {
        finish(event.job, now_s,
               event.kind == EventKind::kComplete ? sched::RunEnd::kCompleted
                                                  : sched::RunEnd::kWalltime);
      }
    }
    while (next_booking < bookings.size() && bookings[next_booking].booked_at_s <= now_s) {
      const BookingSpec& spec = bookings[next_booking++];
      auto booked = sched.Book("R" + std::to_string(next_booking), spec.request, now_s);
      if (!booked.ok()) {
        ++booking_refusals_[std::string(ToString(booked.error().code))];
        continue;
      }
      // Passes at the window's start and end: the nodes change hands then.
      const sched::CapacityBooking& made = sched.bookings()[*booked];
      for (const int64_t at_s : {made.start_s, made.end_s}) {
        if (at_s > now_s) events.push({at_s, EventKind::kPass, 0, 0});
      }
      dirty = true;
    }
    while (next_submit < jobs.size() && jobs[next_submit].submit_s == now_s) {
      sched::JobSpec& spec = jobs[next_submit++];
      Asked asked{spec.grant, spec.accelerator, spec.chips};
      const sched::JobId id = sched.Submit(std::move(spec), now_s);
      if (sched.job(id).state == sched::JobState::kRejected) {
        asked_.emplace_back(id, std::move(asked));
        ++done;
      } else {
        dirty = true;
      }
    }
    if (dirty || pass_due) {
      if (pass_due || options_.pass_interval_s <= 0 ||
          now_s >= last_pass_s + options_.pass_interval_s) {
        run_pass(now_s);
      } else if (pass_queued_s < 0) {
        pass_queued_s = last_pass_s + options_.pass_interval_s;
        events.push({pass_queued_s, EventKind::kPass, 0, 0});
      }
    }
    if (options_.progress && (++steps & 0xFFFF) == 0 && total > 0) {
      options_.progress(static_cast<double>(done) / static_cast<double>(total));
    }
  }
  if (options_.progress) options_.progress(1.0);
  return OkStatus();
}

double Simulator::window_utilization() const {
  if (window_end_s_ <= window_start_s_ || scheduler_ == nullptr) return 0;
  return window_chip_s_ / (static_cast<double>(scheduler_->up_chips()) *
                           static_cast<double>(window_end_s_ - window_start_s_));
}

}  // namespace atrium::sim
