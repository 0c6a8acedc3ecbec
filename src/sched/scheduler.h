// Scheduler: the cluster's queue and its scheduling passes. A pure state machine like the
// ledger: it reads no clock and does no I/O; time comes in as arguments (`now_s`), and the
// same calls in the same order always give the same decisions.
//
// A pass orders every waiting job by the policy's priority and walks the whole list once:
//   - admission: a job starts only if its grant can hold chips x walltime x price in the
//     ledger (a two-phase hold); if it cannot, it waits with reason insufficient_credits
//     and does not block anyone;
//   - placement: gang, topology-aware, best fit (NodeIndex), on up nodes only;
//   - backfill: the highest-priority blocked jobs (policy.reservations_max per pool) get a
//     reservation: a set of nodes and the time by which running jobs' walltimes free
//     them. Reserved nodes leave the pool's main index; a lower job may use them only if
//     its walltime ends by the reservation's start. Reservations persist from pass to pass
//     and their start never moves later, so backfill never delays them;
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

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "base/credits.h"
#include "base/error.h"
#include "cluster/cluster.h"
#include "ledger/ledger.h"
#include "sched/fairshare.h"
#include "sched/job.h"
#include "sched/node_index.h"
#include "sched/policy.h"

namespace atrium::sched {

struct SchedulerConfig {
  // A research job waiting this long may preempt (policy option).
  int64_t preempt_wait_s = 2 * 3600;
  // Time a preempted job gets to checkpoint before its chips are taken.
  int64_t preempt_grace_s = 300;
  // Preemption attempts per pool per pass: each scans the pool's running jobs, so a
  // backlog of starving jobs is served a few per pass rather than all at once.
  int preempt_attempts_per_pass = 2;
  // Fair-share use halves every week: last month's heavy use is mostly forgiven.
  double fair_share_half_life_s = 7 * 24 * 3600.0;
  // Ledger account ids the scheduler uses (the core assigns them in production).
  Id128 sponsor_account = 1;
  Id128 revenue_account = 2;
  Id128 grant_account_base = 1'000'000;
  Id128 transfer_id_base = Id128{1} << 64;
  // Bounds the queue: a submission beyond it is refused.
  size_t jobs_max = 50'000'000;
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
  cluster::JobClass default_class = cluster::JobClass::kResearch;
};

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
  std::optional<uint32_t> FindGrant(std::string_view name) const;
  const std::vector<GrantInfo>& grants() const { return grants_; }

  // Records the job; it is pending, or rejected with a reason (unknown grant or
  // accelerator, bad size, too large, over its partition's limits).
  JobId Submit(JobSpec spec, int64_t now_s);
  PassResult Pass(int64_t now_s);
  // Ends the job's current run at now_s. kCompleted and kWalltime end the job;
  // kPreempted requeues it. Posts the run's cost and releases the rest of the hold.
  void Finish(JobId job, int64_t now_s, RunEnd how);
  // Cancels a pending job (it leaves the queue) or a running one (its run ends now and is
  // charged for what it ran). kInvalidState once the job has ended.
  Status Cancel(JobId job, int64_t now_s);
  // up/down/draining; only up nodes take new work (running jobs are left alone).
  Status SetNodeState(uint32_t node, cluster::NodeState state);

  const Job& job(JobId job) const { return jobs_[job]; }
  size_t job_count() const { return jobs_.size(); }
  size_t waiting_count() const { return waiting_.size(); }
  int64_t busy_chips() const { return busy_chips_; }
  int64_t up_chips() const;
  const cluster::Cluster& cluster() const { return *cluster_; }
  const Policy& policy() const { return policy_; }
  const ledger::Ledger& ledger() const { return *ledger_; }
  const std::vector<ReservationRecord>& reservation_log() const { return reservation_log_; }
  // The price of the job's accelerator type.
  Credits PriceOf(const Job& job) const;

 private:
  struct Reservation {
    JobId job = 0;
    int64_t start_s = 0;
    std::vector<uint32_t> nodes;
    std::unique_ptr<NodeIndex> index;
  };
  struct PoolState {
    std::unique_ptr<NodeIndex> main;
    std::vector<Reservation> reservations;
    std::set<std::pair<int64_t, JobId>> running_by_end;
    bool blocked = false;      // this pass, without backfill
    int preempt_attempts = 0;  // this pass
  };

  Status EnsureSystemAccounts(int64_t now_s);
  Id128 NextTransferId() { return next_transfer_id_++; }
  void ConsiderJob(JobId id, int64_t now_s, PassResult* result);
  bool TryStart(JobId id, int64_t now_s, PassResult* result);
  bool PlaceFor(const Job& job, int64_t end_s, NodeIndex** from);
  void Start(JobId id, std::vector<Alloc> allocs, int64_t now_s, Credits hold);
  void Settle(Job& job, int64_t now_s);
  void ReleaseChips(JobId id, const Job& job);
  void RemoveWaiting(JobId id);
  Credits Available(uint32_t grant);

  // Reservations (reservation.cc).
  void RevalidateReservations(uint32_t pool, int64_t now_s);
  std::optional<int64_t> ReservationStart(const Reservation& reservation, int64_t now_s) const;
  bool CreateReservation(JobId id, int64_t now_s);
  void DropReservation(uint32_t pool, size_t slot);
  void DropReservationOf(Job& job);
  // Preemption (preemption.cc).
  void TryPreempt(JobId id, int64_t now_s, PassResult* result);
  // Fills scratch_masks_ with the free chips of the pool's main members.
  void LoadScratch(uint32_t pool);
  // Frees `other`'s chips on scratch_masks_ (main members only) and says whether the shape
  // now fits there: whole nodes are counted in *free_whole; a sub-node fit sets *fit_node
  // to the node whose release made it fit.
  bool ReleaseOnScratch(const cluster::JobShape& shape, JobId other, const NodeIndex& main,
                        uint64_t full_mask, uint32_t* free_whole, uint32_t* fit_node);
  // Finds a placement on scratch_masks_ for the shape among the main members; a sub-node
  // job goes to `fit_node`, the node whose release made it fit.
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

  std::vector<Job> jobs_;
  std::vector<JobId> waiting_;
  std::vector<uint64_t> masks_;     // free chips per node
  std::vector<NodeIndex*> holder_;  // the index a node is a member of, if any
  std::vector<std::vector<JobId>> node_jobs_;
  std::vector<cluster::NodeState> node_state_;
  std::vector<PoolState> pools_;
  std::vector<uint64_t> scratch_masks_;
  std::vector<ReservationRecord> reservation_log_;
  int64_t busy_chips_ = 0;
  Id128 next_transfer_id_;
  bool system_accounts_ = false;
};

}  // namespace atrium::sched
