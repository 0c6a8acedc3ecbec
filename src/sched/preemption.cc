// Preemption: preemptible, then education jobs yield to a research job that has waited
// past the threshold. Only the jobs whose chips the starving job's placement needs are
// asked to yield; each gets the grace period to checkpoint, then its run ends as
// `preempted` and it is requeued (charged only for what it ran).
#include <algorithm>

#include "base/assert.h"
#include "sched/scheduler.h"

namespace atrium::sched {

void Scheduler::TryPreempt(JobId id, int64_t now_s, PassResult* result) {
  Job& job = jobs_[id];
  if (job.preempt_retry_s > now_s) return;
  const uint32_t pool_index = job.shape.pool;
  PoolState& pool = pools_[pool_index];
  if (job.reservation >= 0 && pool.reservations[static_cast<size_t>(job.reservation)].start_s <=
                                  now_s + config_.preempt_grace_s) {
    return;  // its chips come free soon enough without taking anyone's
  }
  const size_t reservations_cap = 2 * static_cast<size_t>(std::max(1, policy_.reservations_max));
  if (job.reservation < 0 && pool.reservations.size() >= reservations_cap) return;
  job.preempt_retry_s = now_s + config_.preempt_grace_s;
  ++pool.preempt_attempts;
  DropReservationOf(job);
  // Its reserved nodes and the free ones together may already hold it: take no one's.
  if (pool.main->CanFit(job.shape)) {
    if (!TryStart(id, now_s, result)) CreateReservation(id, now_s);
    return;
  }

  struct Candidate {
    cluster::JobClass job_class;
    int64_t run_start_s;
    JobId id;
  };
  std::vector<Candidate> candidates;
  for (const auto& [end_s, other] : pool.running_by_end) {
    const Job& running = jobs_[other];
    if (running.job_class == cluster::JobClass::kResearch || running.preempt_at_s >= 0) continue;
    candidates.push_back({running.job_class, running.run_start_s, other});
  }
  // Preemptible before education; the most recently started first (least work lost).
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.job_class != b.job_class) return a.job_class == cluster::JobClass::kPreemptible;
    if (a.run_start_s != b.run_start_s) return a.run_start_s > b.run_start_s;
    return a.id < b.id;
  });
  LoadScratch(pool_index);
  const NodeIndex& main = *pool.main;
  const uint64_t full = FullMask(cluster_->pools()[pool_index].chips_per_node);
  uint32_t free_whole = main.free_whole_nodes();
  size_t released = 0;
  bool fits = false;
  uint32_t fit_node = 0;
  while (!fits && released < candidates.size()) {
    fits = ReleaseOnScratch(job.shape, candidates[released].id, main, full, &free_whole, &fit_node);
    ++released;
  }
  if (!fits) {
    CreateReservation(id, now_s);
    return;
  }
  std::vector<Alloc> target;
  if (!FindOnScratch(job.shape, fit_node, &target)) return;
  for (size_t idx = 0; idx < released; ++idx) {
    Job& victim = jobs_[candidates[idx].id];
    bool needed = false;
    for (const Alloc& alloc : victim.placement) {
      for (const Alloc& wanted : target) {
        needed = needed || (alloc.node == wanted.node && (alloc.mask & wanted.mask) != 0);
      }
    }
    if (!needed) continue;
    pool.running_by_end.erase({victim.expected_end_s(), candidates[idx].id});
    victim.preempt_at_s = now_s + config_.preempt_grace_s;
    pool.running_by_end.emplace(victim.expected_end_s(), candidates[idx].id);
    result->preempted.push_back({candidates[idx].id, victim.expected_end_s()});
  }
  CreateReservation(id, now_s);
}

}  // namespace atrium::sched
