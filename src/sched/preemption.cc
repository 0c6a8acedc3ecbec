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
      // Its preemption is under way: keep the chips it freed for it.
      CreateReservation(id, now_s);
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
  ++pool.preempt_attempts;

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
  LoadScratch(pool_index, &preempt_masks_);
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
    walker_.loaded = false;
    victim.preempt_at_s = now_s + config_.preempt_grace_s;
    pool.running_by_end.emplace(victim.expected_end_s(), candidates[idx].id);
    result->preempted.push_back({candidates[idx].id, victim.expected_end_s()});
  }
  CreateReservation(id, now_s);
}

}  // namespace atrium::sched
