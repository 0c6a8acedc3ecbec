// Reservations: a start time and a count of capacity units promised to a blocked job,
// recomputed at every pass from the running jobs' walltimes (the walker), and the
// projection and search that preemption uses.
#include <algorithm>

#include "base/assert.h"
#include "sched/scheduler.h"

namespace atrium::sched {

void Scheduler::LoadScratch(uint32_t pool, std::vector<uint64_t>* scratch) const {
  const cluster::Pool& p = cluster_->pools()[pool];
  for (uint32_t node = p.first_node; node < p.first_node + p.node_count; ++node) {
    (*scratch)[node] = holder_[node] != nullptr ? masks_[node] : 0;
  }
}

void Scheduler::LoadWalker(uint32_t pool, int64_t now_s) {
  const PoolState& state = pools_[pool];
  walker_pool_ = pool;
  walker_.loaded = true;
  walker_.time_s = now_s;
  walker_.next = state.running_by_end.begin();
  walker_.largest_count = state.main->largest_counts();
  LoadScratch(pool, &scratch_masks_);
  // Runs past their walltime not yet finished by the caller count as ended.
  while (walker_.next != state.running_by_end.end() && walker_.next->first <= now_s) {
    WalkerRelease(pool, walker_.next->second);
    ++walker_.next;
  }
}

void Scheduler::WalkerRelease(uint32_t pool, JobId other) {
  const NodeIndex& main = *pools_[pool].main;
  for (const Alloc& alloc : jobs_[other].placement) {
    if (holder_[alloc.node] == nullptr) continue;  // not up: not counted
    uint64_t& mask = scratch_masks_[alloc.node];
    --walker_.largest_count[static_cast<size_t>(main.LargestBlockOf(mask))];
    mask |= alloc.mask;
    ++walker_.largest_count[static_cast<size_t>(main.LargestBlockOf(mask))];
  }
}

void Scheduler::WalkerTake(uint32_t pool, const std::vector<Alloc>& allocs, int64_t end_s) {
  // A run ending by the walker's time leaves its chips free there; the set's iterator
  // will not meet it. A later one holds them until the walker passes its end.
  if (end_s <= walker_.time_s) return;
  const NodeIndex& main = *pools_[pool].main;
  for (const Alloc& alloc : allocs) {
    uint64_t& mask = scratch_masks_[alloc.node];
    --walker_.largest_count[static_cast<size_t>(main.LargestBlockOf(mask))];
    mask &= ~alloc.mask;
    ++walker_.largest_count[static_cast<size_t>(main.LargestBlockOf(mask))];
  }
}

int64_t Scheduler::WalkerUnits(uint32_t pool, const cluster::JobShape& shape) const {
  const int chips = cluster_->pools()[pool].chips_per_node;
  if (shape.whole_nodes > 0) return walker_.largest_count[static_cast<size_t>(chips)];
  int64_t units = 0;
  for (int largest = shape.sub_node_chips; largest <= chips; ++largest) {
    units += walker_.largest_count[static_cast<size_t>(largest)];
  }
  return units;
}

bool Scheduler::UnitAt(uint32_t node, const cluster::JobShape& shape, int64_t t_s) const {
  uint64_t mask = masks_[node];
  for (const JobId other : node_jobs_[node]) {
    if (jobs_[other].expected_end_s() > t_s) continue;
    for (const Alloc& alloc : jobs_[other].placement) {
      if (alloc.node == node) mask |= alloc.mask;
    }
  }
  const NodeIndex& main = *pools_[shape.pool].main;
  if (shape.whole_nodes > 0) return mask == FullMask(cluster_->pools()[shape.pool].chips_per_node);
  return main.LargestBlockOf(mask) >= shape.sub_node_chips;
}

bool Scheduler::CreateReservation(JobId id, int64_t now_s) {
  Job& job = jobs_[id];
  const uint32_t pool_index = job.shape.pool;
  PoolState& pool = pools_[pool_index];
  if (!walker_.loaded || walker_pool_ != pool_index) LoadWalker(pool_index, now_s);
  // The units the reservations made before it need are taken as gone for good: later
  // reservations stack behind earlier ones and never share their units.
  int64_t claimed = 0;
  for (const Reservation& reservation : pool.reservations) {
    if (!reservation.active) continue;
    claimed += reservation.shape.whole_nodes > 0 ? reservation.shape.whole_nodes : 1;
  }
  const int64_t need = job.shape.whole_nodes > 0 ? job.shape.whole_nodes : 1;
  const int64_t target = need + claimed;
  int64_t units = WalkerUnits(pool_index, job.shape);
  while (units < target && walker_.next != pool.running_by_end.end()) {
    const int64_t t_s = walker_.next->first;
    while (walker_.next != pool.running_by_end.end() && walker_.next->first == t_s) {
      WalkerRelease(pool_index, walker_.next->second);
      ++walker_.next;
    }
    walker_.time_s = t_s;
    units = WalkerUnits(pool_index, job.shape);
  }
  if (units < target) return false;  // not even when everything running has ended
  const int64_t start_s = std::max(now_s, walker_.time_s);
  // Units enough now, yet refused: the job cuts into an earlier reservation's slack. A
  // promise to start now would be false; the next pass looks again.
  if (start_s <= now_s) return false;
  job.reservation = static_cast<int32_t>(pool.reservations.size());
  pool.reservations.push_back(
      {.job = id, .start_s = start_s, .shape = job.shape, .slack = units - target});
  ++stats_.reservations;
  reserved_now_.push_back(id);
  if (!std::binary_search(reserved_before_.begin(), reserved_before_.end(), id)) {
    reservation_log_.push_back({.job = id, .made_at_s = now_s, .start_s = start_s});
  }
  return true;
}

bool Scheduler::ReleaseOnScratch(const cluster::JobShape& shape, JobId other, const NodeIndex& main,
                                 uint64_t full_mask, uint32_t* free_whole, uint32_t* fit_node) {
  bool fits = false;
  for (const Alloc& alloc : jobs_[other].placement) {
    if (!main.Contains(alloc.node)) continue;
    uint64_t& mask = preempt_masks_[alloc.node];
    const bool was_full = mask == full_mask;
    mask |= alloc.mask;
    if (shape.whole_nodes > 0) {
      if (!was_full && mask == full_mask) ++*free_whole;
      fits = fits || *free_whole >= shape.whole_nodes;
    } else if (!fits && main.LargestBlockOf(mask) >= shape.sub_node_chips) {
      fits = true;
      *fit_node = alloc.node;
    }
  }
  return fits;
}

bool Scheduler::FindOnScratch(const cluster::JobShape& shape, uint32_t fit_node,
                              std::vector<Alloc>* out) const {
  out->clear();
  const NodeIndex& main = *pools_[shape.pool].main;
  if (shape.sub_node_chips > 0) {
    // The node whose release made the block fit is the placement.
    out->push_back({fit_node, main.ChooseChips(preempt_masks_[fit_node], shape.sub_node_chips)});
    return true;
  }
  // Only wholly free nodes matter to a whole-node job: index just those.
  const cluster::Pool& p = cluster_->pools()[shape.pool];
  const uint64_t full = FullMask(p.chips_per_node);
  NodeIndex future(*cluster_, shape.pool, &preempt_masks_);
  for (uint32_t node = p.first_node; node < p.first_node + p.node_count; ++node) {
    if (preempt_masks_[node] == full && main.Contains(node)) future.Insert(node);
  }
  return future.Find(shape, out);
}

}  // namespace atrium::sched
