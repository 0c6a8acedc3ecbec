#include "sched/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include "base/assert.h"

namespace atrium::sched {

namespace {
constexpr int64_t kMicrosPerSecond = 1'000'000;
}  // namespace

std::string_view ToString(JobState state) {
  switch (state) {
    case JobState::kPending:
      return "pending";
    case JobState::kRunning:
      return "running";
    case JobState::kCompleted:
      return "completed";
    case JobState::kKilledAtWalltime:
      return "killed_at_walltime";
    case JobState::kRejected:
      return "rejected";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::string_view ToString(StartedAhead ahead) {
  switch (ahead) {
    case StartedAhead::kNo:
      return "";
    case StartedAhead::kPriority:
      return "priority";
    case StartedAhead::kReservation:
      return "reservation";
    case StartedAhead::kCredits:
      return "credits";
  }
  return "unknown";
}

std::string_view ToString(RunEnd end) {
  switch (end) {
    case RunEnd::kCompleted:
      return "completed";
    case RunEnd::kWalltime:
      return "walltime";
    case RunEnd::kPreempted:
      return "preempted";
  }
  return "unknown";
}

Scheduler::Scheduler(const cluster::Cluster& cluster, ledger::Ledger& ledger, Policy policy,
                     SchedulerConfig config)
    : cluster_(&cluster),
      ledger_(&ledger),
      policy_(std::move(policy)),
      config_(config),
      fair_share_(config.fair_share_half_life_s),
      next_transfer_id_(config.transfer_id_base) {
  ATRIUM_ASSERT(policy_.priority != nullptr, "a policy needs a priority");
  fifo_order_ = policy_.priority->name() == "fifo";
  const size_t node_count = cluster.nodes().size();
  masks_.assign(node_count, 0);
  holder_.assign(node_count, nullptr);
  node_jobs_.resize(node_count);
  node_state_.resize(node_count);
  preempt_masks_.assign(node_count, 0);
  node_bookings_.resize(node_count);
  pools_.resize(cluster.pools().size());
  for (uint32_t pool = 0; pool < cluster.pools().size(); ++pool) {
    const cluster::Pool& p = cluster.pools()[pool];
    pools_[pool].main = std::make_unique<NodeIndex>(cluster, pool, &masks_, true);
    for (uint32_t node = p.first_node; node < p.first_node + p.node_count; ++node) {
      masks_[node] = FullMask(p.chips_per_node);
      node_state_[node] = cluster.nodes()[node].state;
      if (node_state_[node] == cluster::NodeState::kUp) {
        pools_[pool].main->Insert(node);
        holder_[node] = pools_[pool].main.get();
      }
    }
  }
  RebuildCaches();
}

int64_t Scheduler::up_chips() const {
  int64_t chips = 0;
  for (uint32_t node = 0; node < node_state_.size(); ++node) {
    if (node_state_[node] == cluster::NodeState::kUp) {
      chips += cluster_->pools()[cluster_->nodes()[node].pool].chips_per_node;
    }
  }
  return chips;
}

Credits Scheduler::PriceOf(const Job& job) const {
  return cluster_->accelerators()[cluster_->pools()[job.shape.pool].accelerator]
      .price_per_chip_hour;
}

Status Scheduler::EnsureSystemAccounts(int64_t now_s) {
  if (system_accounts_) return OkStatus();
  const ledger::AccountSpec accounts[] = {
      {.id = config_.sponsor_account, .kind = ledger::AccountKind::kSponsor},
      {.id = config_.revenue_account, .kind = ledger::AccountKind::kClusterRevenue}};
  for (const auto& failure : ledger_->CreateAccounts(accounts, now_s * kMicrosPerSecond)) {
    if (failure.code != ErrorCode::kExists) {
      return MakeError(failure.code, "cannot open the sponsor and revenue accounts");
    }
  }
  system_accounts_ = true;
  return OkStatus();
}

Result<uint32_t> Scheduler::AddGrant(std::string_view name, Credits credits, double entitlement,
                                     cluster::JobClass default_class, int64_t now_s) {
  if (grant_index_.contains(std::string(name))) {
    return MakeError(ErrorCode::kAlreadyExists, fmt::format("grant '{}' exists", name), "grant");
  }
  if (credits.is_negative() || entitlement < 0) {
    return MakeError(ErrorCode::kInvalidArgument, "credits and entitlement must be >= 0");
  }
  ATRIUM_TRY(EnsureSystemAccounts(now_s));
  const auto grant = static_cast<uint32_t>(grants_.size());
  const Id128 account = config_.grant_account_base + grant;
  const ledger::AccountSpec spec{.id = account,
                                 .kind = ledger::AccountKind::kGrant,
                                 .flags = ledger::kDebitsMustNotExceedCredits,
                                 .user_data = grant};
  if (auto failures = ledger_->CreateAccounts({&spec, 1}, now_s * kMicrosPerSecond);
      !failures.empty()) {
    return MakeError(failures[0].code, fmt::format("cannot open grant '{}'", name));
  }
  if (!credits.is_zero()) {
    const ledger::TransferSpec fund{.id = NextTransferId(),
                                    .debit_account_id = config_.sponsor_account,
                                    .credit_account_id = account,
                                    .amount = credits};
    if (auto failures = ledger_->CreateTransfers({&fund, 1}, now_s * kMicrosPerSecond);
        !failures.empty()) {
      return MakeError(failures[0].code, fmt::format("cannot fund grant '{}'", name));
    }
  }
  grants_.push_back(GrantInfo{std::string(name), account, config_.revenue_account, default_class});
  grant_index_.emplace(std::string(name), grant);
  available_.push_back(credits);
  available_pass_.push_back(0);
  fair_share_.AddGrant(entitlement);
  return grant;
}

Result<uint32_t> Scheduler::AddGrantAccount(std::string_view name, Id128 account,
                                            Id128 revenue_account, double entitlement,
                                            cluster::JobClass default_class) {
  if (grant_index_.contains(std::string(name))) {
    return MakeError(ErrorCode::kAlreadyExists, fmt::format("grant '{}' exists", name), "grant");
  }
  if (entitlement < 0) return MakeError(ErrorCode::kInvalidArgument, "entitlement must be >= 0");
  if (!ledger_->FindAccount(account) || !ledger_->FindAccount(revenue_account)) {
    return MakeError(ErrorCode::kAccountNotFound,
                     fmt::format("grant '{}': its ledger accounts do not exist", name), "grant");
  }
  const auto grant = static_cast<uint32_t>(grants_.size());
  grants_.push_back(GrantInfo{std::string(name), account, revenue_account, default_class});
  grant_index_.emplace(std::string(name), grant);
  available_.push_back(Credits::Zero());
  available_pass_.push_back(0);  // read from the ledger when first asked
  fair_share_.AddGrant(entitlement);
  return grant;
}

std::optional<uint32_t> Scheduler::FindGrant(std::string_view name) const {
  const auto found = grant_index_.find(std::string(name));
  if (found == grant_index_.end()) return std::nullopt;
  return found->second;
}

JobId Scheduler::Submit(JobSpec spec, int64_t now_s) {
  ATRIUM_CHECK(jobs_.size() < config_.jobs_max, "job table full");
  const auto id = static_cast<JobId>(jobs_.size());
  Job& job = jobs_.emplace_back();
  job.id = std::move(spec.id);
  job.job_class = spec.job_class;
  job.submit_s = spec.submit_s;
  job.duration_s = spec.duration_s;
  job.walltime_s = spec.walltime_s;
  auto reject = [&](const Error& error) {
    job.state = JobState::kRejected;
    job.reason = error.code;
    rejection_texts_[id] = error.message;
    job.end_s = now_s;
    return id;
  };
  const auto grant = FindGrant(spec.grant);
  if (!grant) {
    return reject(MakeError(ErrorCode::kUnknownGrant,
                            fmt::format("grant '{}' is not known", spec.grant), "grant"));
  }
  job.grant = *grant;
  if (!spec.class_given) job.job_class = grants_[*grant].default_class;
  auto shape = cluster_->Shape(spec.accelerator, spec.chips);
  if (!shape.ok()) return reject(shape.error());
  job.shape = *shape;
  if (spec.walltime_s < 1) {
    return reject(MakeError(ErrorCode::kInvalidArgument,
                            fmt::format("walltime_s must be at least 1, not {}", spec.walltime_s),
                            "walltime_s"));
  }
  if (spec.duration_s < 0) {
    return reject(
        MakeError(ErrorCode::kInvalidArgument, "duration_s must not be negative", "duration_s"));
  }
  if (Status limits = cluster_->CheckPartition(job.job_class, spec.chips, spec.walltime_s);
      !limits.ok()) {
    return reject(limits.error());
  }
  if (auto cost = UsageCost(spec.chips, spec.walltime_s, PriceOf(job)); !cost.ok()) {
    return reject(cost.error());
  }
  job.waiting_pos = static_cast<uint32_t>(waiting_.size());
  waiting_.push_back(id);
  Enqueue(id);
  return id;
}

void Scheduler::RemoveWaiting(JobId id) {
  Job& job = jobs_[id];
  ATRIUM_ASSERT(job.waiting_pos < waiting_.size() && waiting_[job.waiting_pos] == id,
                "waiting list out of step");
  const JobId last = waiting_.back();
  waiting_[job.waiting_pos] = last;
  jobs_[last].waiting_pos = job.waiting_pos;
  waiting_.pop_back();
  job.waiting_pos = UINT32_MAX;
  Dequeue(id);
}

Credits Scheduler::Available(uint32_t grant) {
  if (available_pass_[grant] != pass_count_) {
    const auto account = ledger_->FindAccount(grants_[grant].account);
    // A frozen (sanctioned) or closed account admits nothing new: its jobs wait, and
    // those running keep their holds until they end.
    const bool open = account && (account->flags & (ledger::kFrozen | ledger::kClosed)) == 0;
    available_[grant] = open ? account->available() : Credits::Zero();
    available_pass_[grant] = pass_count_;
  }
  return available_[grant];
}

bool Scheduler::FitsFreeChips(JobId id) const {
  const Job& job = jobs_[id];
  return pools_[job.shape.pool].main->CanFit(job.shape);
}

bool Scheduler::FitsUpNodes(JobId id) const {
  const Job& job = jobs_[id];
  const cluster::Pool& pool = cluster_->pools()[job.shape.pool];
  int64_t up_nodes = 0;
  for (uint32_t node = pool.first_node; node < pool.first_node + pool.node_count; ++node) {
    if (node_state_[node] == cluster::NodeState::kUp) ++up_nodes;
  }
  const int64_t needed = job.shape.whole_nodes > 0 ? job.shape.whole_nodes : 1;
  return up_nodes >= needed;
}

Credits Scheduler::HeldBy(JobId id) const {
  const Job& job = jobs_[id];
  if (job.state != JobState::kRunning || job.hold_id == kIdNone) return Credits::Zero();
  const auto hold = ledger_->FindTransfer(job.hold_id);
  return hold && hold->state == ledger::PendingState::kOpen ? hold->amount : Credits::Zero();
}

Credits Scheduler::HoldOf(const Job& job) const {
  const auto hold = UsageCost(job.shape.chips, RunLimitOf(job), PriceOf(job));
  ATRIUM_ASSERT(hold.ok(), "hold checked at submission");
  return *hold;
}

// ---- Queues -------------------------------------------------------------------------

Scheduler::QueueKey Scheduler::KeyOf(JobId id) const {
  const Job& job = jobs_[id];
  return {policy_.priority->Priority(job, fair_share_, priority_time_s_), job.submit_s, id};
}

void Scheduler::UpdateHead(ShapeClass& shape_class, uint32_t group_index) {
  Group& group = shape_class.groups[group_index];
  if (group.in_heads) {
    shape_class.heads.erase(group.head);
    group.in_heads = false;
  }
  if (group.jobs.empty()) return;
  group.head = KeyOf(group.jobs.begin()->second);
  shape_class.heads.insert(group.head);
  group.in_heads = true;
}

void Scheduler::Enqueue(JobId id) {
  Job& job = jobs_[id];
  PoolState& pool = pools_[job.shape.pool];
  const uint64_t class_key = (static_cast<uint64_t>(job.shape.whole_nodes) << 32) |
                             static_cast<uint32_t>(job.shape.sub_node_chips);
  const auto [class_it, class_new] =
      pool.class_of.try_emplace(class_key, static_cast<uint32_t>(classes_.size()));
  if (class_new) {
    classes_.emplace_back().shape = job.shape;
    pool.classes.push_back(class_it->second);
  }
  ShapeClass& shape_class = classes_[class_it->second];
  const uint64_t group_key =
      fifo_order_ ? 0
                  : (static_cast<uint64_t>(job.grant) << 8) | static_cast<uint8_t>(job.job_class);
  const auto [group_it, group_new] =
      shape_class.group_of.try_emplace(group_key, static_cast<uint32_t>(shape_class.groups.size()));
  if (group_new) {
    Group& group = shape_class.groups.emplace_back();
    group.grant = job.grant;
    group.job_class = job.job_class;
  }
  job.shape_class = class_it->second;
  job.group = group_it->second;
  const AgeKey age{job.submit_s, id};
  Group& group = shape_class.groups[job.group];
  group.jobs.insert(age);
  shape_class.by_age.insert(age);
  shape_class.by_limit.insert({RunLimitOf(job), age});
  if (policy_.preemption && job.job_class == cluster::JobClass::kResearch) {
    research_by_age_.insert(age);
  }
  if (group.jobs.begin()->second == id) UpdateHead(shape_class, job.group);
  pool.changed = true;
}

void Scheduler::Dequeue(JobId id) {
  Job& job = jobs_[id];
  ATRIUM_ASSERT(job.shape_class < classes_.size(), "dequeue of a job not queued");
  ShapeClass& shape_class = classes_[job.shape_class];
  Group& group = shape_class.groups[job.group];
  const AgeKey age{job.submit_s, id};
  const bool was_head = group.jobs.begin()->second == id;
  group.jobs.erase(age);
  shape_class.by_age.erase(age);
  shape_class.by_limit.erase({RunLimitOf(job), age});
  research_by_age_.erase(age);
  if (was_head) {
    if (in_pass_) {
      shape_class.dirty_groups.push_back(job.group);
    } else {
      UpdateHead(shape_class, job.group);
    }
  }
  if (!in_pass_) pools_[job.shape.pool].changed = true;
  job.shape_class = UINT32_MAX;
  job.group = UINT32_MAX;
}

void Scheduler::RecomputePriorities(int64_t now_s) {
  fair_share_.Tick(now_s);
  priority_time_s_ = now_s;
  priorities_computed_ = true;
  ++stats_.priority_recomputes;
  if (fifo_order_) return;  // -submit_s does not change
  for (ShapeClass& shape_class : classes_) {
    shape_class.heads.clear();
    for (uint32_t group = 0; group < shape_class.groups.size(); ++group) {
      shape_class.groups[group].in_heads = false;
      UpdateHead(shape_class, group);
    }
  }
  for (PoolState& pool : pools_) pool.changed = true;
}

// ---- Passes -------------------------------------------------------------------------

PassResult Scheduler::Pass(int64_t now_s) {
  PassResult result;
  ++pass_count_;
  ++stats_.passes;
  AdvanceBookings(now_s);
  if (!priorities_computed_ || now_s >= priority_time_s_ + config_.priority_recompute_s) {
    RecomputePriorities(now_s);
  }
  reserved_before_.swap(reserved_now_);
  reserved_now_.clear();
  std::sort(reserved_before_.begin(), reserved_before_.end());
  walker_.loaded = false;
  walker_pool_ = UINT32_MAX;
  in_pass_ = true;
  std::vector<bool> skip(pools_.size(), false);
  for (uint32_t pool = 0; pool < pools_.size(); ++pool) {
    PoolState& state = pools_[pool];
    state.preempt_attempts = 0;
    skip[pool] = !state.changed && !state.credit_waits && !policy_.preemption;
    if (skip[pool]) {
      for (const Reservation& reservation : state.reservations) {
        if (reservation.active) reserved_now_.push_back(reservation.job);
      }
      continue;
    }
    state.promised.clear();
    for (const Reservation& reservation : state.reservations) {
      jobs_[reservation.job].reservation = -1;
      if (policy_.firm_reservations && reservation.active)
        state.promised.push_back(reservation.job);
    }
    state.reservations.clear();
  }
  if (policy_.preemption) PreemptPhase(now_s, &result);
  for (uint32_t pool = 0; pool < pools_.size(); ++pool) {
    if (skip[pool]) {
      ++stats_.pools_skipped;
      result.idle_fit_chips += pools_[pool].idle_fit_chips;
      continue;
    }
    // Capacity reservations: the owners' jobs onto their booked nodes first, then the
    // main pass, then short jobs onto nodes booked for later (capacity_reservation.cc).
    OwnerPhase(pool, now_s, &result);
    PassPool(pool, now_s, &result);
    DrainPhase(pool, now_s, &result);
  }
  in_pass_ = false;
  return result;
}

void Scheduler::PassPool(uint32_t pool_index, int64_t now_s, PassResult* result) {
  PoolState& pool = pools_[pool_index];
  pool.changed = false;
  pool.credit_waits = false;
  NodeIndex& main = *pool.main;
  const auto before = [](const QueueKey& left, const QueueKey& right) {
    return KeyAfter()(left, right);
  };
  const auto heap_less = [](const QueueKey& left, const QueueKey& right) {
    return KeyAfter()(right, left);
  };
  struct Cursor {
    uint32_t shape_class;
    absl::btree_set<QueueKey, KeyAfter>::const_iterator head;
    std::vector<QueueKey> more;  // heap: the next job of each group already passed
    bool dead = false;
    AgeKey latest_started{INT64_MIN, 0};
    // Preemption: once a near reservation refuses the class's long jobs, only its jobs
    // short enough to end by it are walked, best last (ShortOnly below).
    bool short_only = false;
    bool short_tried = false;
    std::vector<QueueKey> short_jobs;
    uint32_t epoch = 0;  // bumped when the cursor's next job changes outside pop
  };
  size_t examined = 0;
  size_t refused = 0;
  int made = 0;
  bool bound_hit = false;
  // Firm promises first: each job promised a start at the last pass starts now if it can
  // without breaking an earlier promise, else gets its reservation again, in the order
  // they were made (so a later promise never pushes an earlier one back).
  for (const JobId id : pool.promised) {
    Job& job = jobs_[id];
    if (job.state != JobState::kPending || made >= policy_.reservations_max) continue;
    ++examined;
    ++stats_.jobs_examined;
    if (main.CanFit(job.shape)) {
      const Outcome outcome = TryStart(id, now_s, result);
      if (outcome == Outcome::kStarted) continue;
      if (outcome == Outcome::kNoCredits) {
        pool.credit_waits = true;
        continue;
      }
    } else if (Available(job.grant) < HoldOf(job)) {
      job.reason = ErrorCode::kInsufficientCredits;
      pool.credit_waits = true;
      continue;
    }
    if (CreateReservation(id, now_s)) ++made;
  }
  // The queues' heads of the jobs started above, before the cursors read them.
  for (const uint32_t index : pool.classes) {
    ShapeClass& shape_class = classes_[index];
    for (const uint32_t group : shape_class.dirty_groups) UpdateHead(shape_class, group);
    shape_class.dirty_groups.clear();
  }
  std::vector<Cursor> cursors;
  for (const uint32_t index : pool.classes) {
    if (classes_[index].by_age.empty()) continue;
    cursors.push_back({index, classes_[index].heads.begin(), {}});
  }
  auto peek = [&](Cursor& cursor) -> const QueueKey* {
    if (cursor.short_only) return cursor.short_jobs.empty() ? nullptr : &cursor.short_jobs.back();
    const ShapeClass& shape_class = classes_[cursor.shape_class];
    const QueueKey* best = nullptr;
    if (cursor.head != shape_class.heads.end()) best = &*cursor.head;
    if (!cursor.more.empty() && (best == nullptr || before(cursor.more.front(), *best))) {
      best = &cursor.more.front();
    }
    return best;
  };
  auto pop = [&](Cursor& cursor) {
    QueueKey key;
    if (cursor.short_only) {
      key = cursor.short_jobs.back();
      cursor.short_jobs.pop_back();
      return key;
    }
    const ShapeClass& shape_class = classes_[cursor.shape_class];
    const bool from_head = cursor.head != shape_class.heads.end() &&
                           (cursor.more.empty() || before(*cursor.head, cursor.more.front()));
    if (from_head) {
      key = *cursor.head;
      ++cursor.head;
    } else {
      std::pop_heap(cursor.more.begin(), cursor.more.end(), heap_less);
      key = cursor.more.back();
      cursor.more.pop_back();
    }
    const Group& group = shape_class.groups[jobs_[key.id].group];
    const auto next = group.jobs.upper_bound(AgeKey{key.submit_s, key.id});
    if (next != group.jobs.end()) {
      cursor.more.push_back(KeyOf(next->second));
      std::push_heap(cursor.more.begin(), cursor.more.end(), heap_less);
    }
    return key;
  };

  // The classes' next jobs in a heap (best first), one entry per live cursor: a pass
  // costs O(log classes) per job examined, not O(classes). A cursor dropped (dead) leaves
  // its entry behind; it is discarded when it comes up.
  struct Next {
    QueueKey key;
    uint32_t cursor;
    uint32_t epoch = 0;
  };
  const auto next_less = [](const Next& left, const Next& right) {
    return KeyAfter()(right.key, left.key);
  };
  std::vector<Next> order;
  order.reserve(cursors.size());
  for (uint32_t index = 0; index < cursors.size(); ++index) {
    if (const QueueKey* key = peek(cursors[index])) order.push_back({*key, index});
  }
  std::make_heap(order.begin(), order.end(), next_less);

  while (true) {
    while (!order.empty() && (cursors[order.front().cursor].dead ||
                              cursors[order.front().cursor].epoch != order.front().epoch)) {
      std::pop_heap(order.begin(), order.end(), next_less);
      order.pop_back();
    }
    if (order.empty()) break;
    std::pop_heap(order.begin(), order.end(), next_less);
    const uint32_t cursor_index = order.back().cursor;
    order.pop_back();
    Cursor& cursor = cursors[cursor_index];
    const ShapeClass& shape_class = classes_[cursor.shape_class];
    const QueueKey key = pop(cursor);
    // Nothing below changes the cursor's queues (heads refresh after the pass), so its
    // next job is known now.
    if (const QueueKey* next = peek(cursor)) {
      order.push_back({*next, cursor_index, cursor.epoch});
      std::push_heap(order.begin(), order.end(), next_less);
    }
    const JobId id = key.id;
    Job& job = jobs_[id];
    ++examined;
    ++stats_.jobs_examined;
    if (config_.queue_depth_max > 0 && examined > config_.queue_depth_max) {
      bound_hit = true;
      break;
    }
    if (!main.CanFit(shape_class.shape)) {
      if (job.reason == ErrorCode::kInsufficientCredits) job.reason = ErrorCode::kOk;
      if (!policy_.backfill) break;  // strict order: the first blocked job blocks its pool
      if (job.reservation >= 0) continue;
      if (made < policy_.reservations_max) {
        // A job its grant could not pay for gets no reservation: it would idle the chips.
        if (Available(job.grant) < HoldOf(job)) {
          job.reason = ErrorCode::kInsufficientCredits;
          pool.credit_waits = true;
          continue;
        }
        if (CreateReservation(id, now_s)) ++made;
        continue;
      }
      cursor.dead = true;  // capacity only shrinks in a pass: nothing of this class fits
      continue;
    }
    if (job.reservation >= 0 && policy_.firm_reservations) continue;  // promised above
    const AgeKey age{job.submit_s, id};
    const Outcome outcome = TryStart(id, now_s, result);
    if (outcome == Outcome::kStarted) {
      cursor.latest_started = std::max(cursor.latest_started, age);
      continue;
    }
    if (outcome == Outcome::kNoCredits) {
      pool.credit_waits = true;
      continue;
    }
    ++refused;
    ++stats_.backfill_refused;
    // With reservations to spare (conservative), the refused job gets one too, so that
    // later jobs cannot push it back.
    if (made < policy_.reservations_max && CreateReservation(id, now_s)) ++made;
    if (refused >= config_.backfill_test_max) {
      bound_hit = true;
      break;
    }
    // Only jobs that end before the earliest reservation this shape would cut into can
    // still start: if the class has none that short, drop it.
    int64_t end_limit_s = INT64_MAX;
    const int64_t units =
        shape_class.shape.whole_nodes > 0 ? static_cast<int64_t>(shape_class.shape.whole_nodes) : 1;
    for (const Reservation& reservation : pool.reservations) {
      if (reservation.active && units > reservation.slack) {
        end_limit_s = std::min(end_limit_s, reservation.start_s);
      }
    }
    if (made < policy_.reservations_max || end_limit_s == INT64_MAX) continue;
    const int64_t room_s = end_limit_s - now_s;
    if (shape_class.by_limit.begin()->first > room_s) {
      cursor.dead = true;
      continue;
    }
    // Under preemption the near starts of the preemptions under way refuse most jobs of
    // every class at every pass, while a class's few short jobs keep it alive: the long
    // ones were each placed and refused in turn, hundreds a pass in a long queue. Here the
    // class's jobs that can end by the reservation (by_limit) are taken in one step and
    // walked alone, in priority order; the others are refused without being looked at.
    // (A job below a node might have fitted on a node that is no unit of the
    // reservation, as when the class is dropped above.) Only with preemption: elsewhere
    // every refused job counts toward backfill_test_max, and skipping them would move
    // where that bound ends a pass.
    if (policy_.preemption && !cursor.short_only && !cursor.short_tried) {
      cursor.short_tried = true;
      constexpr size_t kShortJobsMax = 256;
      std::vector<QueueKey> short_jobs;
      bool too_many = false;
      for (const auto& [limit_s, short_age] : shape_class.by_limit) {
        if (limit_s > room_s) break;
        if (short_jobs.size() == kShortJobsMax) {
          too_many = true;
          break;
        }
        const QueueKey short_key = KeyOf(short_age.second);
        if (before(key, short_key)) short_jobs.push_back(short_key);
      }
      if (too_many) continue;
      std::sort(short_jobs.begin(), short_jobs.end(),
                [&](const QueueKey& left, const QueueKey& right) { return before(right, left); });
      cursor.short_jobs = std::move(short_jobs);
      cursor.short_only = true;
      ++cursor.epoch;
      if (const QueueKey* next = peek(cursor)) {
        order.push_back({*next, cursor_index, cursor.epoch});
        std::push_heap(order.begin(), order.end(), next_less);
      }
    }
  }
  if (bound_hit) {
    ++stats_.bound_hits;
    pool.changed = true;  // the next pass goes on where this one stopped
  }
  // What the pass left: the oldest waiting job that fits the free chips, and whether a
  // later job of its class started in this pass.
  const Job* oldest = nullptr;
  bool skipped = false;
  for (const uint32_t index : pool.classes) {
    ShapeClass& shape_class = classes_[index];
    if (!shape_class.by_age.empty() && main.CanFit(shape_class.shape)) {
      const Job& first = jobs_[shape_class.by_age.begin()->second];
      if (oldest == nullptr || first.submit_s < oldest->submit_s) oldest = &first;
    }
  }
  for (const Cursor& cursor : cursors) {
    const ShapeClass& shape_class = classes_[cursor.shape_class];
    if (cursor.latest_started.first != INT64_MIN && !shape_class.by_age.empty() &&
        *shape_class.by_age.begin() < cursor.latest_started && main.CanFit(shape_class.shape)) {
      skipped = true;
    }
  }
  for (const uint32_t index : pool.classes) {
    ShapeClass& shape_class = classes_[index];
    for (const uint32_t group : shape_class.dirty_groups) UpdateHead(shape_class, group);
    shape_class.dirty_groups.clear();
  }
  pool.idle_fit_chips = oldest != nullptr ? oldest->shape.chips : 0;
  result->idle_fit_chips += pool.idle_fit_chips;
  result->oldest_fit_skipped += skipped ? 1 : 0;
}

bool Scheduler::KeepsReservations(const Job& job, int64_t end_s, const std::vector<Alloc>& allocs,
                                  bool take) {
  PoolState& pool = pools_[job.shape.pool];
  for (int pass = 0; pass < (take ? 2 : 1); ++pass) {
    for (Reservation& reservation : pool.reservations) {
      if (!reservation.active || end_s <= reservation.start_s) continue;
      if (pass == 0 && reservation.slack >= 1 && job.shape.whole_nodes == 0) continue;
      int64_t used = 0;
      if (job.shape.whole_nodes > 0) {
        used = job.shape.whole_nodes;
      } else {
        used = UnitAt(allocs.front().node, reservation.shape, reservation.start_s) ? 1 : 0;
      }
      if (pass == 0 && used > reservation.slack) return false;
      if (pass == 1) reservation.slack -= used;
    }
  }
  return true;
}

Scheduler::Outcome Scheduler::TryStart(JobId id, int64_t now_s, PassResult* result) {
  Job& job = jobs_[id];
  const int64_t run_limit_s = RunLimitOf(job);
  const Credits hold = HoldOf(job);
  if (Available(job.grant) < hold) {
    job.reason = ErrorCode::kInsufficientCredits;
    return Outcome::kNoCredits;
  }
  std::vector<Alloc> allocs;
  // A whole-node job uses the same units wherever it lands: refuse it before placing it.
  if (job.shape.whole_nodes > 0 && !KeepsReservations(job, now_s + run_limit_s, allocs, false)) {
    return Outcome::kReservation;
  }
  const bool found = pools_[job.shape.pool].main->Find(job.shape, &allocs);
  ATRIUM_ASSERT(found, "CanFit and Find disagree");
  (void)found;
  if (job.shape.whole_nodes == 0 && !KeepsReservations(job, now_s + run_limit_s, allocs, false)) {
    return Outcome::kReservation;
  }
  // Record why it starts ahead of an older job of its class, if one waits.
  const ShapeClass& shape_class = classes_[job.shape_class];
  job.ahead = StartedAhead::kNo;
  if (shape_class.by_age.begin()->second != id) {
    const JobId older = shape_class.by_age.begin()->second;
    if (jobs_[older].reason == ErrorCode::kInsufficientCredits) {
      job.ahead = StartedAhead::kCredits;
    } else if (KeyAfter()(KeyOf(id), KeyOf(older))) {
      job.ahead = StartedAhead::kPriority;
    } else {
      job.ahead = StartedAhead::kReservation;
    }
  }
  job.run_limit_s = run_limit_s;
  // The units are counted before the job's chips are taken (a failed start below leaves
  // the slack smaller than it could be: safe).
  KeepsReservations(job, now_s + run_limit_s, allocs, true);
  Start(id, std::move(allocs), now_s, hold);
  if (job.state != JobState::kRunning) {
    job.ahead = StartedAhead::kNo;
    return Outcome::kNoCredits;
  }
  result->started.push_back(id);
  return Outcome::kStarted;
}

void Scheduler::Start(JobId id, std::vector<Alloc> allocs, int64_t now_s, Credits hold) {
  Job& job = jobs_[id];
  const ledger::TransferSpec spec{.id = NextTransferId(),
                                  .debit_account_id = grants_[job.grant].account,
                                  .credit_account_id = grants_[job.grant].revenue_account,
                                  .amount = hold,
                                  .code = config_.hold_code,
                                  .flags = ledger::kPending,
                                  .user_data = id};
  if (hold.is_zero()) {
    job.hold_id = kIdNone;
  } else if (auto failures = ledger_->CreateTransfers({&spec, 1}, now_s * kMicrosPerSecond);
             !failures.empty()) {
    job.reason = failures[0].code;
    available_pass_[job.grant] = 0;  // re-read it
    return;
  } else {
    job.hold_id = spec.id;
    available_[job.grant] = *available_[job.grant].CheckedSub(hold);
  }
  if (job.reservation >= 0) {
    pools_[job.shape.pool].reservations[static_cast<size_t>(job.reservation)].active = false;
    job.reservation = -1;
  }
  RemoveWaiting(id);
  MarkUnitsStale(allocs);
  for (const Alloc& alloc : allocs) {
    ATRIUM_ASSERT((masks_[alloc.node] & alloc.mask) == alloc.mask, "placing on busy chips");
    ATRIUM_ASSERT(node_state_[alloc.node] == cluster::NodeState::kUp, "placing on a node not up");
    masks_[alloc.node] &= ~alloc.mask;
    holder_[alloc.node]->Update(alloc.node);
    node_jobs_[alloc.node].push_back(id);
  }
  job.placement.assign(allocs.begin(), allocs.end());
  job.state = JobState::kRunning;
  job.reason = ErrorCode::kOk;
  job.run_start_s = now_s;
  job.preempt_at_s = -1;
  if (job.first_start_s < 0) job.first_start_s = now_s;
  ++job.runs;
  busy_chips_ += job.shape.chips;
  pools_[job.shape.pool].running_by_end.emplace(job.expected_end_s(), id);
  if (policy_.preemption && job.job_class != cluster::JobClass::kResearch) {
    pools_[job.shape.pool].preemptible.insert(PreemptKeyOf(job, id));
  }
  fair_share_.Start(job.grant, job.shape.chips, now_s);
}

void Scheduler::ReleaseChips(JobId id, const Job& job) {
  MarkUnitsStale(job.placement);
  for (const Alloc& alloc : job.placement) {
    ATRIUM_ASSERT((masks_[alloc.node] & alloc.mask) == 0, "releasing free chips");
    masks_[alloc.node] |= alloc.mask;
    if (holder_[alloc.node] != nullptr) holder_[alloc.node]->Update(alloc.node);
    auto& on_node = node_jobs_[alloc.node];
    on_node.erase(std::find(on_node.begin(), on_node.end(), id));
  }
}

void Scheduler::Settle(JobId id, Job& job, int64_t now_s) {
  const int64_t ran_s = now_s - job.run_start_s;
  if (job.booking >= 0) {
    CapacityBooking& booking = bookings_[static_cast<size_t>(job.booking)];
    (job.booking_owner ? booking.used_chip_s : booking.lent_chip_s) += ran_s * job.shape.chips;
    const bool owner = job.booking_owner;
    job.booking = -1;
    job.booking_owner = false;
    // The owner's run inside its window was paid for by the booking.
    if (owner) {
      ATRIUM_CHECK(job.hold_id == kIdNone, "a run inside its booking holds nothing");
      return;
    }
  }
  const auto cost = UsageCost(job.shape.chips, ran_s, PriceOf(job));
  ATRIUM_CHECK(cost.ok(), "a run's cost is bounded by its hold");
  if (job.hold_id == kIdNone) {
    ATRIUM_CHECK(cost->is_zero(), "a run without a hold cost something");
    return;
  }
  ledger::TransferSpec spec{.id = NextTransferId(),
                            .pending_id = job.hold_id,
                            .code = config_.charge_code,
                            .user_data = id};
  if (cost->is_zero()) {
    spec.flags = ledger::kVoidPending;
  } else {
    spec.flags = ledger::kPostPending;
    spec.amount = *cost;
  }
  const auto failures = ledger_->CreateTransfers({&spec, 1}, now_s * kMicrosPerSecond);
  ATRIUM_CHECK(failures.empty(), "settling a hold failed");
  job.charged = *job.charged.CheckedAdd(*cost);
  available_pass_[job.grant] = 0;  // the released rest is available again
  job.hold_id = kIdNone;
}

void Scheduler::Finish(JobId id, int64_t now_s, RunEnd how) {
  Job& job = jobs_[id];
  ATRIUM_ASSERT(job.state == JobState::kRunning, "Finish of a job that is not running");
  ATRIUM_ASSERT(now_s >= job.run_start_s && now_s <= job.run_start_s + job.run_limit_s,
                "a run ends within its walltime");
  Settle(id, job, now_s);
  ReleaseChips(id, job);
  pools_[job.shape.pool].running_by_end.erase({job.expected_end_s(), id});
  pools_[job.shape.pool].preemptible.erase(PreemptKeyOf(job, id));
  pools_[job.shape.pool].changed = true;
  walker_.loaded = false;
  fair_share_.Stop(job.grant, job.shape.chips, now_s);
  busy_chips_ -= job.shape.chips;
  job.ran_s += now_s - job.run_start_s;
  job.end_s = now_s;
  job.preempt_at_s = -1;
  switch (how) {
    case RunEnd::kCompleted:
      job.state = JobState::kCompleted;
      break;
    case RunEnd::kWalltime:
      job.state = JobState::kKilledAtWalltime;
      break;
    case RunEnd::kPreempted:
      job.state = JobState::kPending;
      job.end_s = -1;
      job.waiting_pos = static_cast<uint32_t>(waiting_.size());
      waiting_.push_back(id);
      Enqueue(id);
      break;
  }
}

Status Scheduler::Cancel(JobId id, int64_t now_s) {
  if (id >= jobs_.size()) return MakeError(ErrorCode::kNotFound, "no such job", "job");
  Job& job = jobs_[id];
  if (job.state == JobState::kPending) {
    RemoveWaiting(id);
    job.end_s = now_s;
  } else if (job.state == JobState::kRunning) {
    if (now_s > job.expected_end_s()) {
      return MakeError(ErrorCode::kInvalidState, "the run has ended", "job");
    }
    Finish(id, now_s, RunEnd::kCompleted);
  } else {
    return MakeError(ErrorCode::kInvalidState, "the job has ended", "job");
  }
  job.state = JobState::kCancelled;
  return OkStatus();
}

Status Scheduler::SetNodeState(uint32_t node, cluster::NodeState state) {
  if (node >= node_state_.size()) {
    return MakeError(ErrorCode::kNotFound, fmt::format("no node {}", node), "node");
  }
  if (node_state_[node] == state) return OkStatus();
  const uint32_t pool = cluster_->nodes()[node].pool;
  if (holder_[node] != nullptr) {
    holder_[node]->Erase(node);
    holder_[node] = nullptr;
  }
  node_state_[node] = state;
  MarkNodeStale(node);  // counted as units only while up
  if (state == cluster::NodeState::kUp) {
    NodeIndex* home = HomeOf(node);  // the main index, or its booking's
    home->Insert(node);
    holder_[node] = home;
  }
  pools_[pool].changed = true;
  return OkStatus();
}

}  // namespace atrium::sched
