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
  const size_t node_count = cluster.nodes().size();
  masks_.assign(node_count, 0);
  holder_.assign(node_count, nullptr);
  node_jobs_.resize(node_count);
  node_state_.resize(node_count);
  scratch_masks_.assign(node_count, 0);
  pools_.resize(cluster.pools().size());
  for (uint32_t pool = 0; pool < cluster.pools().size(); ++pool) {
    const cluster::Pool& p = cluster.pools()[pool];
    pools_[pool].main = std::make_unique<NodeIndex>(cluster, pool, &masks_);
    for (uint32_t node = p.first_node; node < p.first_node + p.node_count; ++node) {
      masks_[node] = FullMask(p.chips_per_node);
      node_state_[node] = cluster.nodes()[node].state;
      if (node_state_[node] == cluster::NodeState::kUp) {
        pools_[pool].main->Insert(node);
        holder_[node] = pools_[pool].main.get();
      }
    }
  }
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
  grants_.push_back(GrantInfo{std::string(name), account, default_class});
  grant_index_.emplace(std::string(name), grant);
  available_.push_back(credits);
  available_pass_.push_back(0);
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
    job.reason_text = error.message;
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
}

Credits Scheduler::Available(uint32_t grant) {
  if (available_pass_[grant] != pass_count_) {
    const auto account = ledger_->FindAccount(grants_[grant].account);
    available_[grant] = account ? account->available() : Credits::Zero();
    available_pass_[grant] = pass_count_;
  }
  return available_[grant];
}

namespace {

struct Entry {
  double priority;
  int64_t submit_s;
  JobId id;
};

bool Before(const Entry& left, const Entry& right) {
  if (left.priority != right.priority) return left.priority > right.priority;
  if (left.submit_s != right.submit_s) return left.submit_s < right.submit_s;
  return left.id < right.id;
}

// Keeps the `count` highest entries (unordered).
void KeepHighest(std::vector<Entry>* entries, size_t count) {
  if (entries->size() <= count) return;
  std::nth_element(entries->begin(), entries->begin() + static_cast<std::ptrdiff_t>(count),
                   entries->end(), [](const Entry& a, const Entry& b) { return Before(a, b); });
  entries->resize(count);
}

}  // namespace

PassResult Scheduler::Pass(int64_t now_s) {
  PassResult result;
  ++pass_count_;
  fair_share_.Tick(now_s);
  for (uint32_t pool = 0; pool < pools_.size(); ++pool) {
    pools_[pool].blocked = false;
    pools_[pool].preempt_attempts = 0;
    RevalidateReservations(pool, now_s);
  }
  std::vector<Entry> order;
  order.reserve(waiting_.size());
  if (!policy_.backfill) {
    // Strict order: every job's place in it matters, so sort them all.
    for (const JobId id : waiting_) {
      order.push_back(
          {policy_.priority->Priority(jobs_[id], fair_share_, now_s), jobs_[id].submit_s, id});
    }
  } else {
    // Capacity only shrinks during a pass, so a job that cannot be placed now cannot be
    // placed later in it: only the placeable jobs need ordering, plus, per pool, the few
    // highest blocked ones that may get a reservation or preempt. O(n) + a small sort.
    const size_t keep_blocked = static_cast<size_t>(policy_.reservations_max) +
                                static_cast<size_t>(config_.preempt_attempts_per_pass);
    std::vector<std::vector<Entry>> blocked(pools_.size());
    std::vector<std::vector<Entry>> starving(pools_.size());
    for (const JobId id : waiting_) {
      Job& job = jobs_[id];
      const Entry entry{policy_.priority->Priority(job, fair_share_, now_s), job.submit_s, id};
      NodeIndex* from = nullptr;
      const int64_t run_limit_s = std::max<int64_t>(1, job.walltime_s - job.ran_s);
      if (PlaceFor(job, now_s + run_limit_s, &from)) {
        order.push_back(entry);
        continue;
      }
      if (job.reason == ErrorCode::kInsufficientCredits) job.reason = ErrorCode::kOk;
      if (policy_.preemption && job.job_class == cluster::JobClass::kResearch) {
        const int64_t starving_at = job.submit_s + config_.preempt_wait_s;
        if (starving_at > now_s) {
          if (result.wake_at_s < 0 || starving_at < result.wake_at_s)
            result.wake_at_s = starving_at;
        } else if (job.preempt_retry_s <= now_s) {
          starving[job.shape.pool].push_back(entry);
        }
      }
      blocked[job.shape.pool].push_back(entry);
    }
    const size_t starving_keep = static_cast<size_t>(config_.preempt_attempts_per_pass);
    for (uint32_t pool = 0; pool < pools_.size(); ++pool) {
      KeepHighest(&blocked[pool], keep_blocked);
      KeepHighest(&starving[pool], starving_keep);
      // A starving job may also be among the highest blocked: add it once.
      for (const Entry& entry : starving[pool]) {
        if (std::find_if(blocked[pool].begin(), blocked[pool].end(), [&](const Entry& other) {
              return other.id == entry.id;
            }) == blocked[pool].end()) {
          order.push_back(entry);
        }
      }
      order.insert(order.end(), blocked[pool].begin(), blocked[pool].end());
    }
  }
  // A lambda, not the function pointer, so that the comparison inlines.
  std::sort(order.begin(), order.end(),
            [](const Entry& a, const Entry& b) { return Before(a, b); });
  for (const Entry& entry : order) ConsiderJob(entry.id, now_s, &result);
  return result;
}

void Scheduler::ConsiderJob(JobId id, int64_t now_s, PassResult* result) {
  Job& job = jobs_[id];
  PoolState& pool = pools_[job.shape.pool];
  if (!policy_.backfill && pool.blocked) return;
  if (TryStart(id, now_s, result)) return;
  if (job.reason == ErrorCode::kInsufficientCredits) return;  // does not block others
  if (!policy_.backfill) {
    pool.blocked = true;
    return;
  }
  // A job its grant could not pay for gets no reservation: it would idle the nodes.
  const auto hold =
      UsageCost(job.shape.chips, std::max<int64_t>(1, job.walltime_s - job.ran_s), PriceOf(job));
  if (Available(job.grant) < *hold) {
    job.reason = ErrorCode::kInsufficientCredits;
    return;
  }
  if (policy_.preemption && job.job_class == cluster::JobClass::kResearch &&
      now_s >= job.submit_s + config_.preempt_wait_s &&
      pool.preempt_attempts < config_.preempt_attempts_per_pass) {
    TryPreempt(id, now_s, result);
  }
  if (job.reservation < 0 &&
      pool.reservations.size() < static_cast<size_t>(policy_.reservations_max)) {
    CreateReservation(id, now_s);
  }
}

bool Scheduler::PlaceFor(const Job& job, int64_t end_s, NodeIndex** from) {
  PoolState& pool = pools_[job.shape.pool];
  if (pool.main->CanFit(job.shape)) {
    *from = pool.main.get();
    return true;
  }
  for (size_t slot = 0; slot < pool.reservations.size(); ++slot) {
    Reservation& reservation = pool.reservations[slot];
    const bool own = static_cast<int32_t>(slot) == job.reservation;
    if (!own && end_s > reservation.start_s) continue;
    if (reservation.index->CanFit(job.shape)) {
      *from = reservation.index.get();
      return true;
    }
  }
  return false;
}

bool Scheduler::TryStart(JobId id, int64_t now_s, PassResult* result) {
  Job& job = jobs_[id];
  const int64_t run_limit_s = std::max<int64_t>(1, job.walltime_s - job.ran_s);
  NodeIndex* from = nullptr;
  if (!PlaceFor(job, now_s + run_limit_s, &from)) {
    if (job.reason == ErrorCode::kInsufficientCredits) job.reason = ErrorCode::kOk;
    return false;
  }
  const auto hold = UsageCost(job.shape.chips, run_limit_s, PriceOf(job));
  ATRIUM_ASSERT(hold.ok(), "hold checked at submission");
  if (Available(job.grant) < *hold) {
    job.reason = ErrorCode::kInsufficientCredits;
    return false;
  }
  std::vector<Alloc> allocs;
  const bool found = from->Find(job.shape, &allocs);
  ATRIUM_ASSERT(found, "CanFit and Find disagree");
  (void)found;
  job.run_limit_s = run_limit_s;
  Start(id, std::move(allocs), now_s, *hold);
  if (job.state != JobState::kRunning) return false;
  result->started.push_back(id);
  return true;
}

void Scheduler::Start(JobId id, std::vector<Alloc> allocs, int64_t now_s, Credits hold) {
  Job& job = jobs_[id];
  const ledger::TransferSpec spec{.id = NextTransferId(),
                                  .debit_account_id = grants_[job.grant].account,
                                  .credit_account_id = config_.revenue_account,
                                  .amount = hold,
                                  .code = 1,
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
  DropReservationOf(job);
  RemoveWaiting(id);
  for (const Alloc& alloc : allocs) {
    ATRIUM_ASSERT((masks_[alloc.node] & alloc.mask) == alloc.mask, "placing on busy chips");
    ATRIUM_ASSERT(node_state_[alloc.node] == cluster::NodeState::kUp, "placing on a node not up");
    masks_[alloc.node] &= ~alloc.mask;
    holder_[alloc.node]->Update(alloc.node);
    node_jobs_[alloc.node].push_back(id);
  }
  job.placement = std::move(allocs);
  job.state = JobState::kRunning;
  job.reason = ErrorCode::kOk;
  job.run_start_s = now_s;
  job.preempt_at_s = -1;
  if (job.first_start_s < 0) job.first_start_s = now_s;
  ++job.runs;
  busy_chips_ += job.shape.chips;
  pools_[job.shape.pool].running_by_end.emplace(job.expected_end_s(), id);
  fair_share_.Start(job.grant, job.shape.chips, now_s);
}

void Scheduler::ReleaseChips(JobId id, const Job& job) {
  for (const Alloc& alloc : job.placement) {
    ATRIUM_ASSERT((masks_[alloc.node] & alloc.mask) == 0, "releasing free chips");
    masks_[alloc.node] |= alloc.mask;
    if (holder_[alloc.node] != nullptr) holder_[alloc.node]->Update(alloc.node);
    auto& on_node = node_jobs_[alloc.node];
    on_node.erase(std::find(on_node.begin(), on_node.end(), id));
  }
}

void Scheduler::Settle(Job& job, int64_t now_s) {
  const int64_t ran_s = now_s - job.run_start_s;
  const auto cost = UsageCost(job.shape.chips, ran_s, PriceOf(job));
  ATRIUM_CHECK(cost.ok(), "a run's cost is bounded by its hold");
  if (job.hold_id == kIdNone) {
    ATRIUM_CHECK(cost->is_zero(), "a run without a hold cost something");
    return;
  }
  ledger::TransferSpec spec{.id = NextTransferId(), .pending_id = job.hold_id, .code = 2};
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
  Settle(job, now_s);
  ReleaseChips(id, job);
  pools_[job.shape.pool].running_by_end.erase({job.expected_end_s(), id});
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
      break;
  }
}

Status Scheduler::Cancel(JobId id, int64_t now_s) {
  if (id >= jobs_.size()) return MakeError(ErrorCode::kNotFound, "no such job", "job");
  Job& job = jobs_[id];
  if (job.state == JobState::kPending) {
    DropReservationOf(job);
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
  if (holder_[node] != nullptr) {
    // A reserved node leaving service ends its reservation; the next pass makes another.
    PoolState& pool = pools_[cluster_->nodes()[node].pool];
    for (size_t slot = 0; slot < pool.reservations.size(); ++slot) {
      if (pool.reservations[slot].index.get() == holder_[node]) {
        DropReservation(cluster_->nodes()[node].pool, slot);
        break;
      }
    }
    holder_[node]->Erase(node);
    holder_[node] = nullptr;
  }
  node_state_[node] = state;
  if (state == cluster::NodeState::kUp) {
    NodeIndex* main = pools_[cluster_->nodes()[node].pool].main.get();
    main->Insert(node);
    holder_[node] = main;
  }
  return OkStatus();
}

}  // namespace atrium::sched
