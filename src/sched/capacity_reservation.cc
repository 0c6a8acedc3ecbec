// Capacity reservations (bookings): choosing the nodes, the booking's hold and its post,
// the windows' starts and ends, and the two phases of a pass that place jobs on booked
// nodes (capacity_reservation.h says the rules).
//
// Every up node sits in exactly one node index: the pool's main index, or the index of
// its earliest live booking (HomeOf). The main pass and backfill's reservations see only
// the main index, so nothing they do can touch a booked node; the booked nodes are filled
// only by OwnerPhase (the owner's jobs inside the window, ending by its end) and
// DrainPhase (anyone's jobs before the window, ending by its start).
#include <algorithm>

#include <fmt/format.h>

#include "base/assert.h"
#include "sched/scheduler.h"

namespace atrium::sched {

namespace {
constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kBasisPoints = 10'000;
}  // namespace

std::string_view ToString(BookingState state) {
  switch (state) {
    case BookingState::kBooked:
      return "booked";
    case BookingState::kActive:
      return "active";
    case BookingState::kEnded:
      return "ended";
    case BookingState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

NodeIndex* Scheduler::HomeOf(uint32_t node) const {
  const std::vector<uint32_t>& live = node_bookings_[node];
  if (!live.empty()) return booking_index_[live.front()].get();
  return pools_[cluster_->nodes()[node].pool].main.get();
}

void Scheduler::RehomeNode(uint32_t node) {
  const uint32_t pool = cluster_->nodes()[node].pool;
  pools_[pool].changed = true;
  MarkNodeStale(node);  // it leaves or joins the main index's units
  if (node_state_[node] != cluster::NodeState::kUp) return;
  NodeIndex* home = HomeOf(node);
  if (holder_[node] == home) return;
  if (holder_[node] != nullptr) holder_[node]->Erase(node);
  home->Insert(node);
  holder_[node] = home;
}

void Scheduler::RemoveBookingFromNodes(uint32_t booking) {
  for (const uint32_t node : bookings_[booking].nodes) {
    auto& live = node_bookings_[node];
    live.erase(std::find(live.begin(), live.end(), booking));
    RehomeNode(node);
  }
  booking_index_[booking].reset();
  walker_.loaded = false;
}

int32_t Scheduler::BookingAt(uint32_t node, int64_t t_s) const {
  for (const uint32_t booking : node_bookings_[node]) {
    const CapacityBooking& b = bookings_[booking];
    if (b.start_s <= t_s && t_s < b.end_s) return static_cast<int32_t>(booking);
  }
  return -1;
}

bool Scheduler::WaitsForBookedNodes(JobId id) const {
  const Job& job = jobs_[id];
  if (job.state != JobState::kPending || !FitsUpNodes(id)) return false;
  const cluster::Pool& pool = cluster_->pools()[job.shape.pool];
  const NodeIndex* main = pools_[job.shape.pool].main.get();
  int64_t outside = 0;
  for (uint32_t node = pool.first_node; node < pool.first_node + pool.node_count; ++node) {
    if (holder_[node] == main) ++outside;
  }
  const int64_t needed = job.shape.whole_nodes > 0 ? job.shape.whole_nodes : 1;
  return outside < needed;
}

int64_t Scheduler::NextBookingEventS() const {
  return booking_events_.empty() ? -1 : booking_events_.begin()->first;
}

std::vector<BookingCharge> Scheduler::TakeBookingCharges() {
  std::vector<BookingCharge> out;
  out.swap(booking_charges_);
  return out;
}

std::vector<PreemptNotice> Scheduler::TakeYieldNotices() {
  std::vector<PreemptNotice> out;
  out.swap(yield_notices_);
  return out;
}

void Scheduler::AdvanceBookings(int64_t now_s) {
  while (!booking_events_.empty() && booking_events_.begin()->first <= now_s) {
    const uint32_t index = booking_events_.begin()->second;
    booking_events_.erase(booking_events_.begin());
    CapacityBooking& booking = bookings_[index];
    pools_[booking.pool].changed = true;
    if (booking.state == BookingState::kBooked) {
      // The window starts: the hold becomes the charge; the nodes become the owner's.
      booking.state = BookingState::kActive;
      if (booking.hold_id != kIdNone) {
        const ledger::TransferSpec post{.id = NextTransferId(),
                                        .amount = booking.price,
                                        .pending_id = booking.hold_id,
                                        .code = config_.booking_code,
                                        .flags = ledger::kPostPending,
                                        .user_data = index};
        const auto failures =
            ledger_->CreateTransfers({&post, 1}, booking.start_s * kMicrosPerSecond);
        ATRIUM_CHECK(failures.empty(), "posting a booking's hold failed");
        booking.charged = booking.price;
        booking.hold_id = kIdNone;
        booking_charges_.push_back({index, booking.price});
        available_pass_[static_cast<size_t>(booking.grant)] = UINT64_MAX;
      }
      booking_events_.emplace(booking.end_s, index);
      walker_.loaded = false;
    } else if (booking.state == BookingState::kActive) {
      booking.state = BookingState::kEnded;
      booking.closed_at_s = booking.end_s;
      RemoveBookingFromNodes(index);
    }
  }
}

Result<uint32_t> Scheduler::Book(std::string id, const BookingRequest& request, int64_t now_s,
                                 bool check_only) {
  // Nothing changes before every check has passed (windows due are advanced only then:
  // a window that ended but was not advanced yet overlaps no window starting now).
  size_t live = 0;
  for (const auto& index : booking_index_) live += index != nullptr ? size_t{1} : size_t{0};
  if (live >= config_.bookings_live_max) {
    return MakeError(ErrorCode::kLimitExceeded,
                     fmt::format("{} bookings are live, the most the scheduler keeps", live));
  }
  int32_t grant = -1;
  const bool owned = !request.grant.empty();
  if (owned) {
    const auto found = FindGrant(request.grant);
    if (!found && check_only) {
      // Not registered yet: the caller checks the credits; the nodes are checked here.
    } else if (!found) {
      return MakeError(ErrorCode::kUnknownGrant,
                       fmt::format("grant '{}' is not known", request.grant), "grant");
    } else {
      grant = static_cast<int32_t>(*found);
    }
  }
  if (request.start_s < now_s) {
    return MakeError(ErrorCode::kInvalidArgument, "the window must not start in the past",
                     "start_s");
  }
  if (request.end_s <= request.start_s) {
    return MakeError(ErrorCode::kInvalidArgument, "the window must end after it starts", "end_s");
  }
  // The pool: the explicit nodes' (maintenance), else the accelerator's.
  uint32_t pool_index = 0;
  if (request.force && owned) {
    return MakeError(ErrorCode::kInvalidArgument, "only maintenance is forced", "force");
  }
  if (!request.node_list.empty()) {
    if (owned) {
      return MakeError(ErrorCode::kInvalidArgument, "only maintenance names its nodes", "nodes");
    }
    for (const uint32_t node : request.node_list) {
      if (node >= cluster_->nodes().size()) {
        return MakeError(ErrorCode::kNotFound, fmt::format("no node {}", node), "nodes");
      }
    }
    pool_index = cluster_->nodes()[request.node_list.front()].pool;
  } else {
    ATRIUM_ASSIGN_OR_RETURN(const cluster::JobShape shape, cluster_->Shape(request.accelerator, 1));
    pool_index = shape.pool;
  }
  const cluster::Pool& pool = cluster_->pools()[pool_index];
  int64_t node_count = static_cast<int64_t>(request.node_list.size());
  if (node_count == 0) {
    if ((request.chips > 0) == (request.nodes > 0)) {
      return MakeError(ErrorCode::kInvalidArgument, "give chips or nodes (one of them, > 0)",
                       "chips");
    }
    node_count = request.nodes > 0
                     ? request.nodes
                     : (request.chips + pool.chips_per_node - 1) / pool.chips_per_node;
  }
  if (node_count > pool.node_count) {
    return MakeError(ErrorCode::kNoCapacity,
                     fmt::format("{} nodes exceed the {} nodes of pool {}", node_count,
                                 pool.node_count, pool.name),
                     request.nodes > 0 ? "nodes" : "chips");
  }
  if (request.one_group && node_count > pool.nodes_per_group) {
    return MakeError(
        ErrorCode::kNoCapacity,
        fmt::format("{} nodes exceed a topology group of {}", node_count, pool.nodes_per_group),
        "one_group");
  }
  const Credits price_per_chip_hour =
      cluster_->accelerators()[pool.accelerator].price_per_chip_hour;
  Credits price;
  if (grant >= 0) {
    ATRIUM_ASSIGN_OR_RETURN(price, UsageCost(node_count * pool.chips_per_node,
                                             request.end_s - request.start_s, price_per_chip_hour));
    available_pass_[static_cast<size_t>(grant)] = UINT64_MAX;  // read the ledger now
    if (Available(static_cast<uint32_t>(grant)) < price) {
      return MakeError(
          ErrorCode::kInsufficientCredits,
          fmt::format("the booking costs {}; the grant has {} available", price.ToString(),
                      Available(static_cast<uint32_t>(grant)).ToString()),
          "grant");
    }
  }

  // Which nodes may be taken: none that a live booking holds in an overlapping window;
  // none whose runs pass the start (unless forced: they are asked to yield then).
  const auto eligible = [&](uint32_t node, bool force) {
    for (const uint32_t other : node_bookings_[node]) {
      const CapacityBooking& b = bookings_[other];
      if (b.start_s < request.end_s && request.start_s < b.end_s) return false;
    }
    if (owned && node_state_[node] != cluster::NodeState::kUp) return false;
    if (force) return true;
    for (const JobId other : node_jobs_[node]) {
      if (jobs_[other].expected_end_s() > request.start_s) return false;
    }
    return true;
  };
  std::vector<uint32_t> chosen;
  if (!request.node_list.empty()) {
    chosen = request.node_list;
    std::sort(chosen.begin(), chosen.end());
    if (std::adjacent_find(chosen.begin(), chosen.end()) != chosen.end()) {
      return MakeError(ErrorCode::kInvalidArgument, "a node is named twice", "nodes");
    }
    for (const uint32_t node : chosen) {
      if (cluster_->nodes()[node].pool != pool_index) {
        return MakeError(ErrorCode::kInvalidArgument, "the nodes must be of one pool", "nodes");
      }
      if (!eligible(node, request.force)) {
        return MakeError(ErrorCode::kNoCapacity,
                         fmt::format("node {} is booked in the window or runs past its start "
                                     "(force asks its runs to yield)",
                                     cluster_->nodes()[node].name),
                         "nodes");
      }
    }
  } else {
    // Eligible nodes per group of the pool; a window that fits one group takes the group
    // with the fewest eligible nodes that holds it (best fit, as gangs are placed); else
    // the fullest groups first, so the booking spans as few groups as it can.
    std::vector<std::vector<uint32_t>> by_group(pool.group_count);
    for (uint32_t node = pool.first_node; node < pool.first_node + pool.node_count; ++node) {
      if (eligible(node, false))
        by_group[cluster_->nodes()[node].group - pool.first_group].push_back(node);
    }
    std::vector<uint32_t> order(pool.group_count);
    for (uint32_t group = 0; group < pool.group_count; ++group) order[group] = group;
    int64_t best = -1;
    for (const uint32_t group : order) {
      const auto size = static_cast<int64_t>(by_group[group].size());
      if (size >= node_count &&
          (best < 0 || size < static_cast<int64_t>(by_group[static_cast<size_t>(best)].size()))) {
        best = group;
      }
    }
    if (best >= 0) {
      const auto& nodes = by_group[static_cast<size_t>(best)];
      chosen.assign(nodes.begin(), nodes.begin() + node_count);
    } else if (!request.one_group) {
      std::stable_sort(order.begin(), order.end(), [&](uint32_t left, uint32_t right) {
        return by_group[left].size() > by_group[right].size();
      });
      for (const uint32_t group : order) {
        for (const uint32_t node : by_group[group]) {
          if (static_cast<int64_t>(chosen.size()) < node_count) chosen.push_back(node);
        }
      }
    }
    if (static_cast<int64_t>(chosen.size()) < node_count) {
      return MakeError(ErrorCode::kNoCapacity,
                       fmt::format("fewer than {} nodes of pool {} are free of bookings and "
                                   "runs for the window{}",
                                   node_count, pool.name, request.one_group ? " in one group" : ""),
                       request.nodes > 0 ? "nodes" : "chips");
    }
    std::sort(chosen.begin(), chosen.end());
  }

  if (check_only) return static_cast<uint32_t>(bookings_.size());
  AdvanceBookings(now_s);
  const auto index = static_cast<uint32_t>(bookings_.size());
  CapacityBooking booking{.id = std::move(id),
                          .booked_by = request.booked_by,
                          .note = request.note,
                          .grant = grant,
                          .pool = pool_index,
                          .nodes = std::move(chosen),
                          .start_s = request.start_s,
                          .end_s = request.end_s,
                          .booked_at_s = now_s,
                          .price = price};
  if (!price.is_zero()) {
    const GrantInfo& info = grants_[static_cast<size_t>(grant)];
    const ledger::TransferSpec hold{.id = NextTransferId(),
                                    .debit_account_id = info.account,
                                    .credit_account_id = info.revenue_account,
                                    .amount = price,
                                    .code = config_.booking_code,
                                    .flags = ledger::kPending,
                                    .user_data = index};
    if (auto failures = ledger_->CreateTransfers({&hold, 1}, now_s * kMicrosPerSecond);
        !failures.empty()) {
      return MakeError(failures[0].code == ErrorCode::kAccountFrozen
                           ? ErrorCode::kAccountFrozen
                           : ErrorCode::kInsufficientCredits,
                       "the ledger refused the booking's hold", "grant");
    }
    booking.hold_id = hold.id;
    available_pass_[static_cast<size_t>(grant)] = UINT64_MAX;
  }
  // Forced maintenance: the runs that would pass the start yield at it.
  for (const uint32_t node : booking.nodes) {
    for (const JobId other : node_jobs_[node]) {
      Job& job = jobs_[other];
      if (job.expected_end_s() <= request.start_s) continue;
      PoolState& state = pools_[job.shape.pool];
      state.running_by_end.erase({job.expected_end_s(), other});
      state.preemptible.erase(PreemptKeyOf(job, other));
      MarkUnitsStale(job.placement);
      job.preempt_at_s = std::max(request.start_s, job.run_start_s);
      state.running_by_end.emplace(job.expected_end_s(), other);
      yield_notices_.push_back({other, job.expected_end_s()});
    }
  }
  bookings_.push_back(std::move(booking));
  booking_index_.push_back(std::make_unique<NodeIndex>(*cluster_, pool_index, &masks_));
  for (const uint32_t node : bookings_[index].nodes) {
    auto& live_here = node_bookings_[node];
    live_here.insert(std::upper_bound(live_here.begin(), live_here.end(), index,
                                      [&](uint32_t left, uint32_t right) {
                                        return bookings_[left].start_s < bookings_[right].start_s;
                                      }),
                     index);
    RehomeNode(node);
  }
  booking_events_.emplace(request.start_s, index);
  walker_.loaded = false;
  // A window that starts now starts at once.
  AdvanceBookings(now_s);
  return index;
}

Result<Credits> Scheduler::CancelBooking(uint32_t index, int64_t now_s, int64_t fee_bp) {
  if (index >= bookings_.size()) return MakeError(ErrorCode::kNotFound, "no such booking", "id");
  if (fee_bp < 0 || fee_bp > kBasisPoints) {
    return MakeError(ErrorCode::kInvalidArgument, "a fee is 0-10000 basis points", "fee_bp");
  }
  // Its state as of now_s, before anything changes.
  CapacityBooking& booking = bookings_[index];
  BookingState state = booking.state;
  if (state == BookingState::kBooked && booking.start_s <= now_s) state = BookingState::kActive;
  if (state == BookingState::kActive && booking.end_s <= now_s) state = BookingState::kEnded;
  if (state != BookingState::kBooked && state != BookingState::kActive) {
    return MakeError(ErrorCode::kInvalidState,
                     fmt::format("booking {} is {}", booking.id, ToString(state)), "id");
  }
  AdvanceBookings(now_s);
  Credits fee;
  if (booking.state == BookingState::kBooked) {
    booking_events_.erase({booking.start_s, index});
    if (booking.hold_id != kIdNone) {
      const __int128 fee_micro =
          static_cast<__int128>(booking.price.micro()) * fee_bp / kBasisPoints;
      fee = Credits::FromMicro(static_cast<int64_t>(fee_micro));
      ledger::TransferSpec resolve{.id = NextTransferId(),
                                   .pending_id = booking.hold_id,
                                   .code = config_.booking_code,
                                   .user_data = index};
      if (fee.is_zero()) {
        resolve.flags = ledger::kVoidPending;
      } else {
        resolve.flags = ledger::kPostPending;
        resolve.amount = fee;
      }
      const auto failures = ledger_->CreateTransfers({&resolve, 1}, now_s * kMicrosPerSecond);
      ATRIUM_CHECK(failures.empty(), "resolving a booking's hold failed");
      booking.hold_id = kIdNone;
      booking.charged = fee;
      if (!fee.is_zero()) booking_charges_.push_back({index, fee});
      available_pass_[static_cast<size_t>(booking.grant)] = UINT64_MAX;
    }
    booking.state = BookingState::kCancelled;
  } else {
    // Inside the window: the nodes return now; what was charged stays. The owner's runs
    // on them go on (they end by the window's end) and stay free.
    booking_events_.erase({booking.end_s, index});
    booking.state = BookingState::kEnded;
  }
  booking.closed_at_s = now_s;
  RemoveBookingFromNodes(index);
  return fee;
}

void Scheduler::FlushDirtyGroups(uint32_t pool) {
  for (const uint32_t index : pools_[pool].classes) {
    ShapeClass& shape_class = classes_[index];
    for (const uint32_t group : shape_class.dirty_groups) UpdateHead(shape_class, group);
    shape_class.dirty_groups.clear();
  }
}

bool Scheduler::StartInBooking(JobId id, uint32_t index, int64_t now_s, PassResult* result) {
  Job& job = jobs_[id];
  const CapacityBooking& booking = bookings_[index];
  const bool owner = booking.state == BookingState::kActive;
  NodeIndex& nodes = *booking_index_[index];
  if (!nodes.CanFit(job.shape)) return false;
  Credits hold;
  if (!owner) {
    hold = HoldOf(job);
    if (Available(job.grant) < hold) {
      job.reason = ErrorCode::kInsufficientCredits;
      pools_[job.shape.pool].credit_waits = true;
      return false;
    }
  }
  std::vector<Alloc> allocs;
  const bool found = nodes.Find(job.shape, &allocs);
  ATRIUM_ASSERT(found, "CanFit and Find disagree");
  (void)found;
  job.run_limit_s = RunLimitOf(job);
  job.ahead = StartedAhead::kNo;
  job.booking = static_cast<int32_t>(index);
  job.booking_owner = owner;
  Start(id, std::move(allocs), now_s, hold);
  if (job.state != JobState::kRunning) {
    job.booking = -1;
    job.booking_owner = false;
    return false;
  }
  result->started.push_back(id);
  return true;
}

void Scheduler::OwnerPhase(uint32_t pool_index, int64_t now_s, PassResult* result) {
  for (uint32_t index = 0; index < booking_index_.size(); ++index) {
    if (booking_index_[index] == nullptr) continue;
    const CapacityBooking& booking = bookings_[index];
    if (booking.pool != pool_index || booking.state != BookingState::kActive || booking.grant < 0 ||
        booking_index_[index]->member_count() == 0) {
      continue;
    }
    const auto owner = static_cast<uint32_t>(booking.grant);
    const int64_t room_s = booking.end_s - now_s;
    // The owner's waiting jobs of the pool that end by the window's end, best first.
    // Bounded by the jobs looked at, not only those taken: under FIFO the owner's jobs
    // are found among everyone's.
    std::vector<QueueKey> candidates;
    size_t scanned = 0;
    for (const uint32_t class_index : pools_[pool_index].classes) {
      const ShapeClass& shape_class = classes_[class_index];
      if (!booking_index_[index]->CanFit(shape_class.shape)) continue;
      const auto take = [&](const absl::btree_set<AgeKey>& jobs) {
        for (const auto& [submit_s, id] : jobs) {
          if (++scanned > config_.booking_scan_max) return;
          const Job& job = jobs_[id];
          if (job.grant == owner && RunLimitOf(job) <= room_s) candidates.push_back(KeyOf(id));
        }
      };
      if (fifo_order_) {
        take(shape_class.by_age);
      } else {
        for (const Group& group : shape_class.groups) {
          if (group.grant == owner) take(group.jobs);
        }
      }
    }
    std::sort(candidates.begin(), candidates.end(), KeyAfter());
    for (const QueueKey& key : candidates) {
      if (jobs_[key.id].state != JobState::kPending) continue;
      if (booking_index_[index]->free_whole_nodes() == 0 &&
          booking_index_[index]->LargestBlock() == 0) {
        break;
      }
      StartInBooking(key.id, index, now_s, result);
    }
  }
}

void Scheduler::DrainPhase(uint32_t pool_index, int64_t now_s, PassResult* result) {
  for (uint32_t index = 0; index < booking_index_.size(); ++index) {
    if (booking_index_[index] == nullptr) continue;
    const CapacityBooking& booking = bookings_[index];
    if (booking.pool != pool_index || booking.state != BookingState::kBooked ||
        booking_index_[index]->member_count() == 0) {
      continue;
    }
    const int64_t room_s = booking.start_s - now_s;
    // Waiting jobs of the pool that end by the window's start, best first; the shortest
    // of each class are looked at (by_limit), at most booking_scan_max in all.
    std::vector<QueueKey> candidates;
    for (const uint32_t class_index : pools_[pool_index].classes) {
      const ShapeClass& shape_class = classes_[class_index];
      if (!booking_index_[index]->CanFit(shape_class.shape)) continue;
      for (const auto& [limit_s, age] : shape_class.by_limit) {
        if (limit_s > room_s || candidates.size() >= config_.booking_scan_max) break;
        candidates.push_back(KeyOf(age.second));
      }
    }
    std::sort(candidates.begin(), candidates.end(), KeyAfter());
    for (const QueueKey& key : candidates) {
      if (jobs_[key.id].state != JobState::kPending) continue;
      StartInBooking(key.id, index, now_s, result);
    }
  }
  FlushDirtyGroups(pool_index);
}

}  // namespace atrium::sched
