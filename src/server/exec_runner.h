// ExecRunner: the service's glue between the committed state and the executors
// (exec/executor.h). It lives in the server's shell, never in the core: it reads the
// durable state like any reader and submits what the executor reports through the
// Committer like any client (as the admin actor "executor"), so every start and end is
// journaled and replayed, and the core never reads a clock or waits on a process.
//
// Each pass (every few milliseconds, and at once when the journal moved):
//   - each pool has its executor, chosen by the pool's `executor` in the cluster file:
//     one LocalExecutor shared by the `local` pools (one machine), one SlurmExecutor per
//     `slurm` pool (its partition, GRES and node mapping), none for `none` pools;
//   - runs that the state shows running on a pool with an executor, and that it does not
//     carry out yet, are ensured (launched, or adopted after a restart);
//   - runs the core asked to yield (the scheduler's preemption: the job still runs, with
//     preempt_at_s set) are stopped at once with Stop(kPreempted), so they end as
//     `preempted` (requeued), not `cancelled`;
//   - runs the executor carries out that the state no longer shows running (cancelled,
//     finished by an operator, their grant closed, or ended by the core's late tick) are
//     stopped (SIGTERM, SIGKILL after the pool's grace);
//   - a run that ended lost with failed nodes (a Slurm node went down) drains those
//     Atrium nodes (the node_drain op), so nothing more is placed there;
//   - the executors' events become job_run_started / job_run_ended ops, submitted
//     together and awaited (durable) before the next pass, so a run is never launched
//     twice nor settled twice (the core refuses a second end of the same run).
// Start runs one pass synchronously, before the service ticks or listens, so runs that
// ended while the service was down are settled with their real end times before the
// clock could end them at their walltime.
//
//   ExecRunner runner(committer, clock, {.jobs_dir = data_dir + "/jobs"});
//   runner.Start();   // reconcile, then the background loop
//   runner.Stop();    // the loop ends; the runs go on and are adopted on the next Start
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "exec/local_executor.h"
#include "exec/slurm_executor.h"
#include "journal/committer.h"
#include "server/clock.h"

namespace atrium::server {

class ExecRunner {
 public:
  ExecRunner(journal::Committer& committer, std::shared_ptr<const Clock> clock,
             exec::LocalExecutorOptions options);
  ~ExecRunner();
  ExecRunner(const ExecRunner&) = delete;
  ExecRunner& operator=(const ExecRunner&) = delete;

  void Start();
  // Safe from any thread, more than once.
  void Stop();

 private:
  using RunKey = std::pair<std::string, uint32_t>;
  // One pass; returns whether an executor carries out any run.
  bool Pass();
  void Loop();
  // The executors of the cluster's pools (made on first sight of a cluster).
  void MakeExecutors(const cluster::Cluster& cluster);
  std::vector<exec::Executor*> Executors() const;

  journal::Committer& committer_;
  std::shared_ptr<const Clock> clock_;
  exec::LocalExecutorOptions local_options_;
  std::unique_ptr<exec::LocalExecutor> local_;  // the `local` pools', if any
  std::vector<std::unique_ptr<exec::SlurmExecutor>> slurm_;
  std::vector<exec::Executor*> by_pool_;  // index = pool; nullptr for `none`
  const cluster::Cluster* cluster_seen_ = nullptr;
  uint64_t seen_seq_ = UINT64_MAX;
  // Runs the state shows running on pools with an executor (as of seen_seq_), and which
  // executor carries each out.
  std::map<RunKey, exec::Executor*> running_;
  std::set<RunKey> yielding_;          // runs the core asked to yield (as of seen_seq_)
  std::set<RunKey> stopped_;           // runs asked to stop (once)
  std::vector<exec::RunEvent> retry_;  // reports the committer could not take (queue full)
  // Runs whose launch waits for an executor that does not answer (Slurm away): logged once
  // each, not on every pass while they wait.
  std::set<RunKey> waiting_logged_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace atrium::server
