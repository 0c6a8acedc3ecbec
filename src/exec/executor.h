// The executor seam: what carries out a placed run and reports what really happened.
// The scheduler (in the core) decides which job runs where; an Executor launches it,
// signals it (cancel, preemption), and reports its start and end (exit code, signal,
// measured times). The service's exec runner (server/exec_runner.h) turns the reports
// into journaled ops (job_run_started, job_run_ended), so the core stays deterministic:
// it never waits on a process, it only applies what an executor said.
//
// Implementations: LocalExecutor (local_executor.h: process groups on this machine) and
// SlurmExecutor (slurm_executor.h: sbatch on the Slurm nodes the placement maps to;
// Ensure adopts the Slurm job named after the run, Stop is scancel, Poll follows
// `squeue --json`).
//
//   LocalExecutor executor({.jobs_dir = "atrium-data/jobs"});
//   executor.Ensure(spec);                       // launch, or adopt after a restart
//   for (const RunEvent& event : executor.Poll()) ...;
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "cluster/cluster.h"

namespace atrium::exec {

// A run as placed by the scheduler: everything an executor needs to start it.
struct RunSpec {
  std::string job;   // "J12"
  uint32_t run = 0;  // the scheduler's run number (1, 2, ... after preemption)
  std::vector<std::string> argv;
  std::string grant;               // "program/grant": ATRIUM_GRANT
  int64_t chips = 0;               // ATRIUM_CHIPS
  std::vector<std::string> nodes;  // the placement's node names: ATRIUM_NODES
  std::vector<int> chip_indices;   // the chips of the first node, ascending
  cluster::DeviceKind device = cluster::DeviceKind::kNone;
  int64_t cores_per_chip = 1;  // NEURON_RT_VISIBLE_CORES = chip x cores_per_chip ...
  int64_t walltime_s = 0;      // this run's limit: SIGTERM then, SIGKILL kill_grace_s later
  int64_t kill_grace_s = cluster::kKillGraceDefaultS;
  // The datasets the job reads that its grant may use as the run starts: id -> location
  // (docs/datasets.md): ATRIUM_DATASET_<ID> and ATRIUM_DATASETS.
  std::map<std::string, std::string> datasets;
};

// How a run ended, as job_run_ended's `how`.
enum class EndHow : uint8_t {
  kExited,     // by itself (exit code or a signal it did not get from us)
  kWalltime,   // we signalled it at its limit
  kCancelled,  // we signalled it on a cancel (the core had already settled it)
  kPreempted,  // we signalled it to yield its chips
  kLost,       // no trace of how it ended (its supervisor died, the machine rebooted)
};
std::string_view ToString(EndHow how);

struct RunEvent {
  enum class Kind : uint8_t { kStarted, kEnded };
  Kind kind = Kind::kStarted;
  std::string job;
  uint32_t run = 0;
  int64_t started_at_us = 0;
  int64_t ended_at_us = 0;  // kEnded only
  int exit_code = -1;       // -1 when a signal ended it
  int signal = 0;
  EndHow how = EndHow::kExited;
  // kEnded with kLost only: the Atrium nodes of the run that the executor saw fail (the
  // runner drains them, so nothing else is placed there until an operator resumes them).
  std::vector<std::string> nodes_down;
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Makes sure the run is carried out: adopts it if it was launched before (a restart of
  // the service: still alive, or ended meanwhile, then its end is reported once by Poll),
  // else launches it. A started event follows for a new launch. Idempotent.
  virtual Status Ensure(const RunSpec& spec) = 0;
  // Whether the run is being carried out (launched or adopted, its end not yet polled).
  virtual bool Tracks(const std::string& job, uint32_t run) const = 0;
  // Every run being carried out.
  virtual std::vector<std::pair<std::string, uint32_t>> Tracked() const = 0;
  // Asks the run to stop: SIGTERM to its process group now, SIGKILL after its grace.
  // `how` is kCancelled or kPreempted (what its end will report).
  virtual void Stop(const std::string& job, uint32_t run, EndHow how) = 0;
  // What happened since the last poll: starts, then ends (each run's end exactly once).
  virtual std::vector<RunEvent> Poll() = 0;
};

}  // namespace atrium::exec
