// ExecRunner: the service's glue between the committed state and the executors
// (exec/executor.h). It lives in the server's shell, never in the core: it reads the
// durable state like any reader and submits what the executor reports through the
// Committer like any client (as the admin actor "executor"), so every start and end is
// journaled and replayed, and the core never reads a clock or waits on a process.
//
// Each pass (every few milliseconds, and at once when the journal moved):
//   - runs that the state shows running on a pool whose executor is `local`, and that
//     the executor does not carry out yet, are ensured (launched, or adopted after a
//     restart: their supervisors outlive the service);
//   - runs the executor carries out that the state no longer shows running (cancelled,
//     finished by an operator, their grant closed, or ended by the core's late tick) are
//     stopped (SIGTERM, SIGKILL after the pool's grace);
//   - the executor's events become job_run_started / job_run_ended ops, submitted
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
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "exec/local_executor.h"
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
  // One pass; returns whether the executor carries out any run.
  bool Pass();
  void Loop();

  journal::Committer& committer_;
  std::shared_ptr<const Clock> clock_;
  exec::LocalExecutor local_;
  uint64_t seen_seq_ = UINT64_MAX;
  std::set<RunKey> running_;           // local runs the state shows running (as of seen_seq_)
  std::set<RunKey> stopped_;           // runs asked to stop (once)
  std::vector<exec::RunEvent> retry_;  // reports the committer could not take (queue full)
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace atrium::server
