// Scheduler: the cluster's queue and its scheduling passes. A pure state machine like the
// ledger: it reads no clock and does no I/O; time comes in as arguments (`now_s`), and the
// same calls in the same order always give the same decisions.
//
// Waiting jobs sit in queues per pool and shape class (a shape: so many whole nodes, or so
// many chips below a node), each split into groups of jobs that keep their relative order
// (one group under FIFO; one per grant and job class under fair share), ordered by
// (submit time, id). A pass merges the class queues in priority order and looks only at
// what can matter: a class that no longer fits the free chips is dropped at once, so a
// pass costs the jobs it starts, the reservations it makes and a bounded number of tests,
// not the queue. Fair-share priorities are recomputed every `priority_recompute_s` of
// virtual time (Slurm's PriorityCalcPeriod), not at every pass.
//
//   - admission: a job starts only if its grant can hold chips x walltime x price in the
//     ledger (a two-phase hold); if it cannot, it waits with reason insufficient_credits
//     and does not block anyone;
//   - placement: gang, topology-aware, best fit (NodeIndex), on up nodes only;
//   - backfill (EASY by default): the highest-priority blocked job of a pool gets a
//     reservation (policy.reservations_max of them; `conservative` makes more): a start
//     time and a count of capacity units (whole nodes, or nodes with a free block of its
//     size), recomputed at every pass from the running jobs' walltimes, never pinned
//     nodes. A later job that fits now starts now if it ends by the reservation's start or
//     leaves it enough units (the reservation's slack), so backfill never delays it;
//   - preemption (policy option): a research job waiting past preempt_wait_s asks
//     preemptible, then education jobs to yield, after preempt_grace_s; the preempted job
//     is requeued with its age and charged only for what it ran.
// At a run's end (Finish) the actual use is posted to the ledger and the rest released.
//
//   Scheduler sched(cluster, ledger, *MakePolicy("backfill"));
//   sched.AddGrant("g1", Credits::FromWhole(1000), 1.0, JobClass::kResearch, 0);
//   JobId id = sched.Submit({.id = "j1", .grant = "g1", .chips = 16, ...}, now_s);
//   PassResult started = sched.Pass(now_s);
//   sched.Finish(id, later_s, RunEnd::kCompleted);
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "base/credits.h"
#include "base/error.h"
#include "cluster/cluster.h"
#include "ledger/ledger.h"
#include "sched/capacity_reservation.h"
#include "sched/fairshare.h"
#include "sched/job.h"
#include "sched/node_index.h"
#include "sched/policy.h"

namespace atrium::sched {

struct SchedulerConfig {
  // A research job waiting this long may preempt (policy option).
  int64_t preempt_wait_s = int64_t{2} * 3600;
  // Time a preempted job gets to checkpoint before its chips are taken.
  int64_t preempt_grace_s = 300;
  // Preemption attempts per pool per pass: each walks the pool's preemptible runs (an
  // ordered index) until the job would fit, so a backlog of starving jobs is served a
  // few per pass rather than all at once.
  int preempt_attempts_per_pass = 2;
  // Fair-share use halves every week: last month's heavy use is mostly forgiven.
  double fair_share_half_life_s = 7 * 24 * 3600.0;
  // Ledger account ids the scheduler uses (the core assigns them in production).
  Id128 sponsor_account = 1;
  Id128 revenue_account = 2;
  Id128 grant_account_base = 1'000'000;
  Id128 transfer_id_base = Id128{1} << 64;
  // Ledger codes of a job's hold and of the post that charges a run (TransferSpec::code).
  uint16_t hold_code = 1;
  uint16_t charge_code = 2;
  // Bounds the queue: a submission beyond it is refused.
  size_t jobs_max = 50'000'000;
  // Fair-share priorities (and the grants' decayed use) are recomputed at most this often
  // (virtual seconds); in between, the order is the one computed then.
  int64_t priority_recompute_s = 300;
  // Like Slurm's bf_max_job_test: per pool and pass, at most this many jobs that fit the
  // free chips are refused because they would run past a reservation; then the pool's
  // pass ends. Bounds the cost of a pass in a queue of long jobs behind a reservation.
  size_t backfill_test_max = 500;
  // Like Slurm's default_queue_depth: per pool and pass, at most this many jobs are
  // examined (started or not); 0 = no bound.
  size_t queue_depth_max = 0;
  // Preemption: waiting research jobs looked at per pass, oldest first.
  size_t preempt_scan_max = 256;
  // Preemption: running jobs considered per attempt (like Slurm's bound on the preemption
  // candidates tested per job), in the order they would be asked to yield. If the
  // starving job does not fit once this many are counted as gone, nobody is asked and the
  // job gets a reservation instead. 0 = no bound.
  size_t preempt_candidates_max = 64;
  // Capacity reservations (capacity_reservation.h): the ledger code of a booking's hold
  // and of its posts; how many bookings may be live (booked or active) at once (each has
  // a node index of its pool); per booking and pass, how many waiting jobs are looked at
  // for its nodes.
  uint16_t booking_code = 8;
  size_t bookings_live_max = 1024;
  size_t booking_scan_max = 256;
};

struct PreemptNotice {
  JobId job = 0;
  int64_t at_s = 0;  // when its chips are taken (now + grace)
};

struct PassResult {
  std::vector<JobId> started;
  std::vector<PreemptNotice> preempted;
  // The earliest later time at which a pass could decide differently with nothing else
  // happening (a blocked research job reaching the preemption threshold); -1 if none.
  int64_t wake_at_s = -1;
  // After the pass, summed over pools: the chips of the oldest waiting job that fits the
  // free chips (ignoring reservations) and was not started; 0 if none. Held until the
  // next pass, these are the chips left idle while a fitting job waited.
  int64_t idle_fit_chips = 0;
  // Pools in which a job started in this pass while an older job of its shape class,
  // fitting the free chips at the end of the pass, kept waiting.
  int64_t oldest_fit_skipped = 0;
};

// What the passes did, cumulatively (for reports and benchmarks).
struct PassStats {
  int64_t passes = 0;
  int64_t pools_skipped = 0;     // pool passes skipped: nothing changed since the last
  int64_t jobs_examined = 0;     // jobs looked at by the passes
  int64_t backfill_refused = 0;  // fitted now, refused for a reservation's sake
  int64_t bound_hits = 0;        // pool passes ended by backfill_test_max or queue_depth_max
  int64_t reservations = 0;      // made (again at every pass)
  int64_t priority_recomputes = 0;
};

// A reservation as first made, for tests and reports.
struct ReservationRecord {
  JobId job = 0;
  int64_t made_at_s = 0;
  int64_t start_s = 0;
};

struct GrantInfo {
  std::string name;
  Id128 account = kIdNone;
  Id128 revenue_account = kIdNone;  // what its jobs' holds credit
  cluster::JobClass default_class = cluster::JobClass::kResearch;
};

// NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding): one per cluster, 32 bytes
class Scheduler {
 public:
  Scheduler(const cluster::Cluster& cluster, ledger::Ledger& ledger, Policy policy,
            SchedulerConfig config = {});
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Opens the grant's ledger account and funds it with `credits` from the sponsor (the
  // sponsor and revenue accounts are created on first use). `entitlement` weighs its fair
  // share (its awarded credits, typically).
  Result<uint32_t> AddGrant(std::string_view name, Credits credits, double entitlement,
                            cluster::JobClass default_class, int64_t now_s);
  // Registers an account that already exists in the ledger (a program's grant or student
  // account in the core's ledger of record): nothing is minted; its jobs' holds debit it
  // and credit `revenue_account`. kAccountNotFound if either does not exist.
  Result<uint32_t> AddGrantAccount(std::string_view name, Id128 account, Id128 revenue_account,
                                   double entitlement, cluster::JobClass default_class);
  std::optional<uint32_t> FindGrant(std::string_view name) const;
  const std::vector<GrantInfo>& grants() const { return grants_; }

  // Records the job; it is pending, or rejected with a reason (unknown grant or
  // accelerator, bad size, too large, over its partition's limits).
  JobId Submit(JobSpec spec, int64_t now_s);
  PassResult Pass(int64_t now_s);
  // Ends the job's current run at now_s. kCompleted and kWalltime end the job;
  // kPreempted requeues it. Posts the run's cost and releases the rest of the hold.
  void Finish(JobId job, int64_t now_s, RunEnd how);
  // Whether the job's shape fits its pool's free chips now / on its up nodes were they
  // idle (for the reason a job waits).
  bool FitsFreeChips(JobId job) const;
  bool FitsUpNodes(JobId job) const;
  // The credits the job's current run holds (zero when not running).
  Credits HeldBy(JobId job) const;
  // Cancels a pending job (it leaves the queue) or a running one (its run ends now and is
  // charged for what it ran). kInvalidState once the job has ended.
  Status Cancel(JobId job, int64_t now_s);
  // up/down/draining; only up nodes take new work (running jobs are left alone).
  Status SetNodeState(uint32_t node, cluster::NodeState state);

  const Job& job(JobId job) const { return jobs_[job]; }
  // Why a rejected job was refused, in words ("" for any other job). Kept beside the jobs:
  // few are rejected, and every job would otherwise carry an empty string.
  std::string_view rejection_text(JobId job) const {
    const auto found = rejection_texts_.find(job);
    return found == rejection_texts_.end() ? std::string_view() : found->second;
  }
  size_t job_count() const { return jobs_.size(); }
  size_t waiting_count() const { return waiting_.size(); }
  // The jobs waiting now / running now, in no particular order (indexes for lists that
  // filter by state: they cost the active jobs, not every job ever submitted).
  const std::vector<JobId>& waiting() const { return waiting_; }
  template <class Fn>
  void ForEachRunning(Fn fn) const {
    for (const PoolState& pool : pools_) {
      for (const auto& [end_s, id] : pool.running_by_end) fn(id);
    }
  }
  const PassStats& stats() const { return stats_; }
  int64_t busy_chips() const { return busy_chips_; }
  int64_t up_chips() const;
  const cluster::Cluster& cluster() const { return *cluster_; }
  const Policy& policy() const { return policy_; }
  const ledger::Ledger& ledger() const { return *ledger_; }
  const std::vector<ReservationRecord>& reservation_log() const { return reservation_log_; }
  // The price of the job's accelerator type.
  Credits PriceOf(const Job& job) const;
  // Tests: whether every cache (the pools' unit_free_at) equals a recompute from the
  // jobs and masks; refreshes stale entries first.
  bool CachesConsistent();
  // Marks every cache stale (after a decode that restored jobs and masks).
  void RebuildCaches();

  // Capacity reservations (capacity_reservation.cc, capacity_reservation.h). Book chooses
  // the nodes, holds the price and returns the booking's number: kNoCapacity,
  // kInsufficientCredits, kUnknownGrant, kUnknownAccelerator, kInvalidArgument,
  // kLimitExceeded. CancelBooking before the start voids the hold or posts `fee_bp` of the
  // price (returned); after it the nodes return at once and the charge stays.
  // `check_only`: every check, no change (a grant not registered yet is not checked for
  // credits: the caller does that); the number the booking would get.
  Result<uint32_t> Book(std::string id, const BookingRequest& request, int64_t now_s,
                        bool check_only = false);
  Result<Credits> CancelBooking(uint32_t booking, int64_t now_s, int64_t fee_bp);
  const std::vector<CapacityBooking>& bookings() const { return bookings_; }
  // Starts and ends windows due by now_s (a pass does this first).
  void AdvanceBookings(int64_t now_s);
  // The next start or end of a window after the last advance; -1 if none.
  int64_t NextBookingEventS() const;
  // The posts made on bookings' holds since the last call (the service notes them).
  std::vector<BookingCharge> TakeBookingCharges();
  // Runs asked to yield by a forced maintenance booking since the last call.
  std::vector<PreemptNotice> TakeYieldNotices();
  // The live booking holding the node at t_s (its window contains t_s), or -1.
  int32_t BookingAt(uint32_t node, int64_t t_s) const;
  // Whether a pending job waits because bookings hold nodes it could otherwise use: it
  // fits the pool's up nodes but not those outside bookings.
  bool WaitsForBookedNodes(JobId job) const;

  // Snapshots (scheduler_codec.cc): the persistent state (jobs, grants, fair-share use,
  // node states, queue order, reservations, counters) as deterministic bytes; Decode
  // rebuilds the derived indexes, so the decoded scheduler decides exactly as this one.
  void Encode(std::string* out) const;
  static Result<std::unique_ptr<Scheduler>> Decode(std::string_view bytes,
                                                   const cluster::Cluster& cluster,
                                                   ledger::Ledger& ledger);

 private:
  // A reservation made in this pass: its job starts by start_s with `need` units of its
  // shape (whole nodes; or nodes with a free block of sub_node_chips); `slack` units more
  // than it and the reservations made before it in the pool (claimed) will be there.
  struct Reservation {
    JobId job = 0;
    int64_t start_s = 0;
    cluster::JobShape shape;
    int64_t slack = 0;
    bool active = true;  // false once its job started in this pass
  };
  struct QueueKey {
    double priority = 0;
    int64_t submit_s = 0;
    JobId id = 0;
  };
  struct KeyAfter {  // the set's order: higher priority, then earlier, then lower id first
    bool operator()(const QueueKey& left, const QueueKey& right) const {
      if (left.priority != right.priority) return left.priority > right.priority;
      if (left.submit_s != right.submit_s) return left.submit_s < right.submit_s;
      return left.id < right.id;
    }
  };
  using AgeKey = std::pair<int64_t, JobId>;
  struct Group {
    uint32_t grant = 0;
    cluster::JobClass job_class = cluster::JobClass::kResearch;
    absl::btree_set<AgeKey> jobs;
    bool in_heads = false;
    QueueKey head;  // its key in the class's heads, when in_heads
  };
  struct ShapeClass {
    cluster::JobShape shape;
    std::vector<Group> groups;
    absl::flat_hash_map<uint64_t, uint32_t> group_of;
    absl::btree_set<QueueKey, KeyAfter> heads;  // each non-empty group's first job
    absl::btree_set<AgeKey> by_age;             // every waiting job of the class
    // The same jobs by run limit (then age): the class's shortest limit, and under
    // preemption the few jobs short enough to end by a near reservation (PassPool).
    absl::btree_set<std::pair<int64_t, AgeKey>> by_limit;
    std::vector<uint32_t> dirty_groups;  // heads to refresh after the pass
  };
  // (0 for preemptible, 1 for education; -run_start_s; id)
  using PreemptKey = std::tuple<int, int64_t, JobId>;
  static PreemptKey PreemptKeyOf(const Job& job, JobId id) {
    return {job.job_class == cluster::JobClass::kPreemptible ? 0 : 1, -job.run_start_s, id};
  }
  struct PoolState {
    std::unique_ptr<NodeIndex> main;
    std::vector<Reservation> reservations;
    // Policy::firm_reservations: the jobs that held a reservation after the pool's last
    // pass, in the order they were made (persistent: the next pass honours it).
    std::vector<JobId> promised;
    std::set<std::pair<int64_t, JobId>> running_by_end;
    // Running jobs that may be asked to yield (not research, not already asked), in the
    // order preemption asks them: preemptible before education, most recently started
    // first (least work lost), then by id. Kept so an attempt does not sort every run.
    std::set<PreemptKey> preemptible;
    std::vector<uint32_t> classes;
    absl::flat_hash_map<uint64_t, uint32_t> class_of;
    bool changed = true;         // since its last pass
    bool credit_waits = false;   // a job waited for credits in its last pass
    int preempt_attempts = 0;    // this pass
    int64_t idle_fit_chips = 0;  // PassResult::idle_fit_chips of its last pass
    // A cache (rebuilt by marking every node stale): per node of the pool (local index)
    // and block size b in 0..chips_per_node, the earliest time at which the node has a
    // free aligned block of b chips (b = chips_per_node: wholly free) once the jobs on it
    // end at their expected ends; INT64_MIN if it has one now, INT64_MAX never. Nodes
    // whose jobs changed are stale until the next reservation of the pool refreshes them.
    std::vector<int64_t> unit_free_at;
    std::vector<uint8_t> unit_stale;
    std::vector<uint32_t> stale_nodes;
    // Whether the node's row is in unit_sorted (it was up when last refreshed).
    std::vector<uint8_t> unit_counted;
    // Per block size a reservation has asked for: the counted nodes' unit times, sorted
    // (a reservation's start is an order statistic of these).
    std::vector<std::pair<size_t, std::vector<int64_t>>> unit_sorted;
  };
  // The projection's position in a pass: reservations of one pool are made in priority
  // order and each starts no earlier than the one before (time_s, from now on). Reset
  // when the pass moves to another pool or a run ends or is told to yield.
  struct Walker {
    bool loaded = false;
    int64_t time_s = 0;
  };

  Status EnsureSystemAccounts(int64_t now_s);
  Id128 NextTransferId() { return next_transfer_id_++; }
  void Enqueue(JobId id);
  void Dequeue(JobId id);
  void UpdateHead(ShapeClass& shape_class, uint32_t group);
  QueueKey KeyOf(JobId id) const;
  void RecomputePriorities(int64_t now_s);
  void PassPool(uint32_t pool, int64_t now_s, PassResult* result);
  void PreemptPhase(int64_t now_s, PassResult* result);
  enum class Outcome : uint8_t { kStarted, kNoCredits, kReservation };
  // Starts the job now if its grant can hold its cost and it keeps the reservations.
  Outcome TryStart(JobId id, int64_t now_s, PassResult* result);
  // Whether starting the job now (ending at end_s) on `allocs` leaves every reservation
  // of its pool its units; if `take`, the slack it uses is taken.
  bool KeepsReservations(const Job& job, int64_t end_s, const std::vector<Alloc>& allocs,
                         bool take);
  void Start(JobId id, std::vector<Alloc> allocs, int64_t now_s, Credits hold);
  void Settle(JobId id, Job& job, int64_t now_s);
  void ReleaseChips(JobId id, const Job& job);
  void RemoveWaiting(JobId id);
  Credits Available(uint32_t grant);
  Credits HoldOf(const Job& job) const;
  int64_t RunLimitOf(const Job& job) const {
    return std::max<int64_t>(1, job.walltime_s - job.ran_s);
  }

  // Reservations (reservation.cc).
  bool CreateReservation(JobId id, int64_t now_s);
  // Marks the nodes' entries of unit_free_at stale (their jobs or expected ends changed).
  void MarkUnitsStale(absl::Span<const Alloc> allocs);
  void MarkNodeStale(uint32_t node);
  // The pool's sorted unit times for the block size, refreshed.
  const std::vector<int64_t>& SortedUnitTimes(uint32_t pool, size_t block);
  void RefreshUnitTimes(uint32_t pool);
  // The node's unit_free_at row (chips_per_node + 1 entries), computed from scratch.
  void ComputeUnitTimes(uint32_t node, int64_t* out) const;
  // Whether `node` counts as a unit of `shape` at time t (its jobs ending by t gone).
  bool UnitAt(uint32_t node, const cluster::JobShape& shape, int64_t t_s) const;
  // Capacity reservations (capacity_reservation.cc).
  // The index that should hold an up node: its earliest live booking's, else the main.
  NodeIndex* HomeOf(uint32_t node) const;
  void RehomeNode(uint32_t node);
  void RemoveBookingFromNodes(uint32_t booking);
  // Before the main pass: the owner's jobs onto its started bookings' nodes.
  void OwnerPhase(uint32_t pool, int64_t now_s, PassResult* result);
  // After it: jobs that end by a booking's start onto its nodes.
  void DrainPhase(uint32_t pool, int64_t now_s, PassResult* result);
  bool StartInBooking(JobId id, uint32_t booking, int64_t now_s, PassResult* result);
  void FlushDirtyGroups(uint32_t pool);
  // Preemption (preemption.cc).
  void TryPreempt(JobId id, int64_t now_s, PassResult* result);
  // Fills scratch_masks_ with the free chips of the pool's up nodes.
  void LoadScratch(uint32_t pool, std::vector<uint64_t>* scratch) const;
  bool ReleaseOnScratch(const cluster::JobShape& shape, JobId other, const NodeIndex& main,
                        uint64_t full_mask, uint32_t* free_whole, uint32_t* fit_node);
  bool FindOnScratch(const cluster::JobShape& shape, uint32_t fit_node,
                     std::vector<Alloc>* out) const;

  const cluster::Cluster* cluster_;
  ledger::Ledger* ledger_;
  Policy policy_;
  SchedulerConfig config_;
  FairShare fair_share_;

  std::vector<GrantInfo> grants_;
  absl::flat_hash_map<std::string, uint32_t> grant_index_;
  std::vector<Credits> available_;
  std::vector<uint64_t> available_pass_;
  uint64_t pass_count_ = 0;

  JobTable jobs_;  // chunked: no copy of every job when the table grows
  absl::flat_hash_map<JobId, std::string> rejection_texts_;
  std::vector<JobId> waiting_;
  std::vector<ShapeClass> classes_;
  absl::btree_set<AgeKey> research_by_age_;  // waiting research jobs (preemption only)
  int64_t priority_time_s_ = 0;              // when the priorities were last computed
  bool fifo_order_ = true;                   // priority is -submit_s: never recomputed
  bool priorities_computed_ = false;
  bool in_pass_ = false;
  Walker walker_;
  uint32_t walker_pool_ = UINT32_MAX;
  std::vector<JobId> reserved_before_;  // jobs holding a reservation after the last pass
  std::vector<JobId> reserved_now_;
  PassStats stats_;
  std::vector<uint64_t> masks_;     // free chips per node
  std::vector<NodeIndex*> holder_;  // the pool's main index for an up node, else null
  std::vector<std::vector<JobId>> node_jobs_;
  std::vector<cluster::NodeState> node_state_;
  std::vector<PoolState> pools_;
  std::vector<uint64_t> preempt_masks_;  // preemption's
  std::vector<ReservationRecord> reservation_log_;
  int64_t busy_chips_ = 0;
  // Capacity reservations: every booking (index = its number); a node index per live one;
  // per node, its live bookings by start; the live bookings' next starts and ends.
  std::vector<CapacityBooking> bookings_;
  std::vector<std::unique_ptr<NodeIndex>> booking_index_;
  std::vector<std::vector<uint32_t>> node_bookings_;
  std::set<std::pair<int64_t, uint32_t>> booking_events_;
  std::vector<BookingCharge> booking_charges_;  // drained by TakeBookingCharges
  std::vector<PreemptNotice> yield_notices_;    // drained by TakeYieldNotices
  Id128 next_transfer_id_;
  bool system_accounts_ = false;
};

}  // namespace atrium::sched
