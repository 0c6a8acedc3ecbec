// Preemption: preemptible, then education jobs yield to a research job that has waited
// past the threshold. Only the jobs whose chips the starving job's placement needs are
// asked to yield; each gets the grace period to checkpoint, then its run ends as
// `preempted` and it is requeued (charged only for what it ran).
#include <algorithm>

#include "base/assert.h"
#include "sched/scheduler.h"

namespace atrium::sched {

void Scheduler::PreemptPhase(int64_t now_s, PassResult* result) {
  // Oldest research jobs first: those past the threshold that do not fit the free chips.
  size_t scanned = 0;
  for (auto it = research_by_age_.begin();
       it != research_by_age_.end() && scanned < config_.preempt_scan_max; ++it, ++scanned) {
    const JobId id = it->second;
    Job& job = jobs_[id];
    const int64_t starving_at = job.submit_s + config_.preempt_wait_s;
    if (starving_at > now_s) {
      if (result->wake_at_s < 0 || starving_at < result->wake_at_s) result->wake_at_s = starving_at;
      break;
    }
    PoolState& pool = pools_[job.shape.pool];
    if (pool.main->CanFit(job.shape) || job.reservation >= 0) continue;
    if (Available(job.grant) < HoldOf(job)) continue;
    if (job.preempt_retry_s > now_s) {
      // Its preemption is under way: keep the chips it freed for it. (After an attempt
      // that asked nobody, it waits like any job until it may try again.)
      if (job.preempt_under_way) CreateReservation(id, now_s);
      continue;
    }
    if (pool.preempt_attempts >= config_.preempt_attempts_per_pass) continue;
    TryPreempt(id, now_s, result);
  }
}

void Scheduler::TryPreempt(JobId id, int64_t now_s, PassResult* result) {
  Job& job = jobs_[id];
  const uint32_t pool_index = job.shape.pool;
  PoolState& pool = pools_[pool_index];
  job.preempt_retry_s = now_s + config_.preempt_grace_s;
  job.preempt_under_way = false;
  ++pool.preempt_attempts;

  LoadScratch(pool_index, &preempt_masks_);
  const NodeIndex& main = *pool.main;
  const uint64_t full = FullMask(cluster_->pools()[pool_index].chips_per_node);
  uint32_t free_whole = main.free_whole_nodes();
  // The candidates, in the order they are asked, up to the one whose release makes it fit.
  std::vector<JobId> released;
  bool fits = false;
  uint32_t fit_node = 0;
  const size_t candidates_max =
      config_.preempt_candidates_max > 0 ? config_.preempt_candidates_max : SIZE_MAX;
  for (auto it = pool.preemptible.begin();
       !fits && it != pool.preemptible.end() && released.size() < candidates_max; ++it) {
    const JobId other = std::get<2>(*it);
    fits = ReleaseOnScratch(job.shape, other, main, full, &free_whole, &fit_node);
    released.push_back(other);
  }
  if (!fits) {
    CreateReservation(id, now_s);
    return;
  }
  std::vector<Alloc> target;
  if (!FindOnScratch(job.shape, fit_node, &target)) return;
  for (const JobId victim_id : released) {
    Job& victim = jobs_[victim_id];
    bool needed = false;
    for (const Alloc& alloc : victim.placement) {
      for (const Alloc& wanted : target) {
        needed = needed || (alloc.node == wanted.node && (alloc.mask & wanted.mask) != 0);
      }
    }
    if (!needed) continue;
    pool.running_by_end.erase({victim.expected_end_s(), victim_id});
    pool.preemptible.erase(PreemptKeyOf(victim, victim_id));
    walker_.loaded = false;
    MarkUnitsStale(victim.placement);
    victim.preempt_at_s = now_s + config_.preempt_grace_s;
    pool.running_by_end.emplace(victim.expected_end_s(), victim_id);
    result->preempted.push_back({victim_id, victim.expected_end_s()});
    job.preempt_under_way = true;
  }
  CreateReservation(id, now_s);
}

}  // namespace atrium::sched
