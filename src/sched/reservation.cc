// Reservations: the nodes and start time promised to a blocked job, and how they are kept.
#include <algorithm>

#include "base/assert.h"
#include "sched/scheduler.h"

namespace atrium::sched {

void Scheduler::LoadScratch(uint32_t pool) {
  const cluster::Pool& p = cluster_->pools()[pool];
  const NodeIndex& main = *pools_[pool].main;
  for (uint32_t node = p.first_node; node < p.first_node + p.node_count; ++node) {
    scratch_masks_[node] = main.Contains(node) ? masks_[node] : 0;
  }
}

bool Scheduler::ReleaseOnScratch(const cluster::JobShape& shape, JobId other, const NodeIndex& main,
                                 uint64_t full_mask, uint32_t* free_whole, uint32_t* fit_node) {
  bool fits = false;
  for (const Alloc& alloc : jobs_[other].placement) {
    if (!main.Contains(alloc.node)) continue;
    uint64_t& mask = scratch_masks_[alloc.node];
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
    out->push_back({fit_node, main.ChooseChips(scratch_masks_[fit_node], shape.sub_node_chips)});
    return true;
  }
  // Only wholly free nodes matter to a whole-node job: index just those.
  const cluster::Pool& p = cluster_->pools()[shape.pool];
  const uint64_t full = FullMask(p.chips_per_node);
  NodeIndex future(*cluster_, shape.pool, &scratch_masks_);
  for (uint32_t node = p.first_node; node < p.first_node + p.node_count; ++node) {
    if (scratch_masks_[node] == full && main.Contains(node)) future.Insert(node);
  }
  return future.Find(shape, out);
}

std::optional<int64_t> Scheduler::ReservationStart(const Reservation& reservation,
                                                   int64_t now_s) const {
  const Job& job = jobs_[reservation.job];
  const NodeIndex& index = *reservation.index;
  for (const uint32_t node : reservation.nodes) {
    if (!index.Contains(node)) return std::nullopt;
  }
  int64_t start_s = now_s;
  if (job.shape.whole_nodes > 0) {
    for (const uint32_t node : reservation.nodes) {
      for (const JobId other : node_jobs_[node]) {
        start_s = std::max(start_s, jobs_[other].expected_end_s());
      }
    }
    return start_s;
  }
  // One node: free its jobs' chips in the order they end until the block fits.
  const uint32_t node = reservation.nodes.front();
  uint64_t mask = masks_[node];
  if (index.LargestBlockOf(mask) >= job.shape.sub_node_chips) return start_s;
  std::vector<std::pair<int64_t, JobId>> ending;
  for (const JobId other : node_jobs_[node])
    ending.emplace_back(jobs_[other].expected_end_s(), other);
  std::sort(ending.begin(), ending.end());
  for (const auto& [end_s, other] : ending) {
    for (const Alloc& alloc : jobs_[other].placement) {
      if (alloc.node == node) mask |= alloc.mask;
    }
    if (index.LargestBlockOf(mask) >= job.shape.sub_node_chips) return std::max(start_s, end_s);
  }
  return std::nullopt;
}

void Scheduler::RevalidateReservations(uint32_t pool, int64_t now_s) {
  auto& reservations = pools_[pool].reservations;
  size_t slot = 0;
  while (slot < reservations.size()) {
    Reservation& reservation = reservations[slot];
    const auto start_s = jobs_[reservation.job].state == JobState::kPending
                             ? ReservationStart(reservation, now_s)
                             : std::nullopt;
    if (!start_s) {
      DropReservation(pool, slot);
      continue;
    }
    // Nothing placed on reserved nodes outlives the reservation's start, so it can only
    // come earlier (jobs ending before their walltime) or stay.
    ATRIUM_ASSERT(*start_s <= std::max(reservation.start_s, now_s), "a reservation slipped");
    reservation.start_s = *start_s;
    ++slot;
  }
}

bool Scheduler::CreateReservation(JobId id, int64_t now_s) {
  Job& job = jobs_[id];
  const uint32_t pool_index = job.shape.pool;
  PoolState& pool = pools_[pool_index];
  NodeIndex& main = *pool.main;
  LoadScratch(pool_index);
  const uint64_t full = FullMask(cluster_->pools()[pool_index].chips_per_node);
  uint32_t free_whole = main.free_whole_nodes();
  int64_t shadow_s = -1;
  uint32_t fit_node = 0;
  for (const auto& [end_s, other] : pool.running_by_end) {
    if (ReleaseOnScratch(job.shape, other, main, full, &free_whole, &fit_node)) {
      shadow_s = std::max(end_s, now_s);
      break;
    }
  }
  if (shadow_s < 0) return false;  // not even when everything running has ended
  std::vector<Alloc> allocs;
  const bool found = FindOnScratch(job.shape, fit_node, &allocs);
  ATRIUM_ASSERT(found, "the shadow state fits by count but Find disagrees");
  if (!found) return false;
  Reservation reservation{.job = id, .start_s = shadow_s};
  reservation.index = std::make_unique<NodeIndex>(*cluster_, pool_index, &masks_);
  for (const Alloc& alloc : allocs) {
    main.Erase(alloc.node);
    reservation.index->Insert(alloc.node);
    holder_[alloc.node] = reservation.index.get();
    reservation.nodes.push_back(alloc.node);
  }
  job.reservation = static_cast<int32_t>(pool.reservations.size());
  pool.reservations.push_back(std::move(reservation));
  reservation_log_.push_back({.job = id, .made_at_s = now_s, .start_s = shadow_s});
  return true;
}

void Scheduler::DropReservation(uint32_t pool_index, size_t slot) {
  PoolState& pool = pools_[pool_index];
  Reservation& reservation = pool.reservations[slot];
  for (const uint32_t node : reservation.nodes) {
    if (!reservation.index->Contains(node)) continue;  // left service meanwhile
    reservation.index->Erase(node);
    pool.main->Insert(node);
    holder_[node] = pool.main.get();
  }
  jobs_[reservation.job].reservation = -1;
  pool.reservations.erase(pool.reservations.begin() + static_cast<std::ptrdiff_t>(slot));
  for (size_t later = slot; later < pool.reservations.size(); ++later) {
    jobs_[pool.reservations[later].job].reservation = static_cast<int32_t>(later);
  }
}

void Scheduler::DropReservationOf(Job& job) {
  if (job.reservation >= 0) DropReservation(job.shape.pool, static_cast<size_t>(job.reservation));
}

}  // namespace atrium::sched
