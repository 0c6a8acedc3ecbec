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
    // Booked nodes (capacity reservations) are not the pool's to preempt on.
    (*scratch)[node] = holder_[node] == pools_[pool].main.get() ? masks_[node] : 0;
  }
}

void Scheduler::MarkNodeStale(uint32_t node) {
  const uint32_t pool_index = cluster_->nodes()[node].pool;
  PoolState& pool = pools_[pool_index];
  const uint32_t local = node - cluster_->pools()[pool_index].first_node;
  if (pool.unit_stale[local] == 0) {
    pool.unit_stale[local] = 1;
    pool.stale_nodes.push_back(node);
  }
}

void Scheduler::MarkUnitsStale(absl::Span<const Alloc> allocs) {
  for (const Alloc& alloc : allocs) MarkNodeStale(alloc.node);
}

void Scheduler::ComputeUnitTimes(uint32_t node, int64_t* out) const {
  const uint32_t pool_index = cluster_->nodes()[node].pool;
  const int chips = cluster_->pools()[pool_index].chips_per_node;
  const NodeIndex& main = *pools_[pool_index].main;
  // The node's runs in the order they end (a node holds at most chips_per_node of them).
  std::pair<int64_t, uint64_t> ends[64];
  size_t count = 0;
  for (const JobId other : node_jobs_[node]) {
    const Job& job = jobs_[other];
    for (const Alloc& alloc : job.placement) {
      if (alloc.node != node) continue;
      ATRIUM_ASSERT(count < std::size(ends), "more runs on a node than chips");
      ends[count++] = {job.expected_end_s(), alloc.mask};
    }
  }
  std::sort(ends, ends + count);
  uint64_t mask = masks_[node];
  int largest = main.LargestBlockOf(mask);
  for (int block = 0; block <= chips; ++block)
    out[block] = block <= largest ? INT64_MIN : INT64_MAX;
  for (size_t idx = 0; idx < count && largest < chips; ++idx) {
    mask |= ends[idx].second;
    const int now_largest = main.LargestBlockOf(mask);
    for (int block = largest + 1; block <= now_largest; ++block) out[block] = ends[idx].first;
    largest = std::max(largest, now_largest);
  }
}

void Scheduler::RefreshUnitTimes(uint32_t pool_index) {
  PoolState& pool = pools_[pool_index];
  const cluster::Pool& p = cluster_->pools()[pool_index];
  const auto stride = static_cast<size_t>(p.chips_per_node) + 1;
  for (const uint32_t node : pool.stale_nodes) {
    const uint32_t local = node - p.first_node;
    int64_t* row = &pool.unit_free_at[local * stride];
    for (auto& [block, sorted] : pool.unit_sorted) {
      if (pool.unit_counted[local] != 0) {
        sorted.erase(std::lower_bound(sorted.begin(), sorted.end(), row[block]));
      }
    }
    ComputeUnitTimes(node, row);
    pool.unit_stale[local] = 0;
    // Only nodes of the main index count: a booked node never serves a backfill
    // reservation (capacity_reservation.h).
    pool.unit_counted[local] = holder_[node] == pool.main.get() ? 1 : 0;
    for (auto& [block, sorted] : pool.unit_sorted) {
      if (pool.unit_counted[local] != 0) {
        sorted.insert(std::upper_bound(sorted.begin(), sorted.end(), row[block]), row[block]);
      }
    }
  }
  pool.stale_nodes.clear();
}

const std::vector<int64_t>& Scheduler::SortedUnitTimes(uint32_t pool_index, size_t block) {
  RefreshUnitTimes(pool_index);
  PoolState& pool = pools_[pool_index];
  for (const auto& [known, sorted] : pool.unit_sorted) {
    if (known == block) return sorted;
  }
  const cluster::Pool& p = cluster_->pools()[pool_index];
  const auto stride = static_cast<size_t>(p.chips_per_node) + 1;
  std::vector<int64_t> sorted;
  for (uint32_t local = 0; local < p.node_count; ++local) {
    if (pool.unit_counted[local] != 0) sorted.push_back(pool.unit_free_at[local * stride + block]);
  }
  std::sort(sorted.begin(), sorted.end());
  pool.unit_sorted.emplace_back(block, std::move(sorted));
  return pool.unit_sorted.back().second;
}

void Scheduler::RebuildCaches() {
  for (uint32_t pool_index = 0; pool_index < pools_.size(); ++pool_index) {
    PoolState& pool = pools_[pool_index];
    const cluster::Pool& p = cluster_->pools()[pool_index];
    pool.unit_free_at.assign(
        static_cast<size_t>(p.node_count) * (static_cast<size_t>(p.chips_per_node) + 1), 0);
    pool.unit_stale.assign(p.node_count, 1);
    pool.unit_counted.assign(p.node_count, 0);
    pool.unit_sorted.clear();
    pool.stale_nodes.clear();
    for (uint32_t node = p.first_node; node < p.first_node + p.node_count; ++node) {
      pool.stale_nodes.push_back(node);
    }
  }
}

bool Scheduler::CachesConsistent() {
  std::vector<int64_t> fresh;
  for (uint32_t pool_index = 0; pool_index < pools_.size(); ++pool_index) {
    RefreshUnitTimes(pool_index);
    const cluster::Pool& p = cluster_->pools()[pool_index];
    const auto stride = static_cast<size_t>(p.chips_per_node) + 1;
    fresh.resize(stride);
    for (uint32_t node = p.first_node; node < p.first_node + p.node_count; ++node) {
      ComputeUnitTimes(node, fresh.data());
      const int64_t* cached = &pools_[pool_index].unit_free_at[(node - p.first_node) * stride];
      if (!std::equal(fresh.begin(), fresh.end(), cached)) return false;
    }
    for (const auto& [block, sorted] : pools_[pool_index].unit_sorted) {
      std::vector<int64_t> expect;
      for (uint32_t node = p.first_node; node < p.first_node + p.node_count; ++node) {
        ComputeUnitTimes(node, fresh.data());
        if (holder_[node] == pools_[pool_index].main.get()) expect.push_back(fresh[block]);
      }
      std::sort(expect.begin(), expect.end());
      if (expect != sorted) return false;
    }
  }
  return true;
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
  if (!walker_.loaded || walker_pool_ != pool_index) {
    walker_.loaded = true;
    walker_pool_ = pool_index;
    walker_.time_s = now_s;
  }
  // The units the reservations made before it need are taken as gone for good: later
  // reservations stack behind earlier ones and never share their units.
  int64_t claimed = 0;
  for (const Reservation& reservation : pool.reservations) {
    if (!reservation.active) continue;
    claimed += reservation.shape.whole_nodes > 0 ? reservation.shape.whole_nodes : 1;
  }
  const int64_t need = job.shape.whole_nodes > 0 ? job.shape.whole_nodes : 1;
  const int64_t target = need + claimed;
  // The earliest time at which `target` up nodes count as units of the shape: the
  // target-th smallest of their unit times (each node's is when its runs have released a
  // block of the size), and no earlier than the reservations before it in this pass.
  const cluster::Pool& p = cluster_->pools()[pool_index];
  const auto block =
      static_cast<size_t>(job.shape.whole_nodes > 0 ? p.chips_per_node : job.shape.sub_node_chips);
  const std::vector<int64_t>& times = SortedUnitTimes(pool_index, block);
  const auto never = std::lower_bound(times.begin(), times.end(), INT64_MAX);
  if (never - times.begin() < target) {
    // Not even when everything running has ended.
    if (!pool.running_by_end.empty()) {
      walker_.time_s = std::max(walker_.time_s, pool.running_by_end.rbegin()->first);
    }
    return false;
  }
  walker_.time_s = std::max(walker_.time_s, times[static_cast<size_t>(target - 1)]);
  const int64_t start_s = walker_.time_s;
  // Units enough now, yet refused: the job cuts into an earlier reservation's slack. A
  // promise to start now would be false; the next pass looks again.
  if (start_s <= now_s) return false;
  const auto units = std::upper_bound(times.begin(), times.end(), start_s) - times.begin();
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
