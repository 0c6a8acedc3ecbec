// LocalExecutor: runs each placed run as a process group on this machine.
//
// For run N of job J it starts a supervisor process (its own session, so neither the
// service's terminal nor the service's death touches it), which waits until the service
// has recorded the launch in JOBS/J/run-N.json (argv, environment, the supervisor's pid
// and start time), then forks the job's process in a new process group, with
// JOBS/J/stdout and JOBS/J/stderr (appended across runs), /dev/null as stdin, the
// working directory JOBS/J, the device visibility variables of its placement and the
// rlimits below. The supervisor enforces the walltime itself (SIGTERM to the group at the
// limit, SIGKILL kill_grace_s later), turns SIGTERM into a cancel and SIGUSR1 into a
// preemption (the same two steps), and when the job's process ends it kills what is left
// of the group and writes JOBS/J/run-N.status (exit code, signal, start and end times,
// how it ended) before it exits. So walltimes hold, and every end is recorded, even while
// the service is down; a restarted service re-adopts live supervisors (pid and start
// time, so a reused pid is never mistaken for one) and reports the ends it missed once.
//
// The supervisor is a small static program (atrium-supervisor, supervisor_main.cc) started
// with posix_spawn: launching a run never forks the large, multi-threaded service.
//
// Limits (docs/executors.md): a cgroup v2 per run (memory.max, cpu.max) when this
// process's cgroup v2 can delegate the memory and cpu controllers, else RLIMIT_AS for
// memory (no CPU limit); always RLIMIT_CORE 0 and RLIMIT_NOFILE at most nofile_max.
//
//   LocalExecutor executor({.jobs_dir = "atrium-data/jobs"});
//   ATRIUM_TRY(executor.Ensure(spec));
//   std::vector<RunEvent> events = executor.Poll();
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "exec/executor.h"

namespace atrium::exec {

struct LocalExecutorOptions {
  std::string jobs_dir = "atrium-data/jobs";
  // A run's memory: memory.max of its cgroup, else RLIMIT_AS of its processes; 0: none.
  int64_t memory_bytes_max = 0;
  // A run's CPU in percent of one CPU (150: 1.5 CPUs): cpu.max of its cgroup; not
  // enforced without a cgroup (rlimits have no rate limit). 0: none.
  int64_t cpu_percent_max = 0;
  int64_t nofile_max = 4096;  // RLIMIT_NOFILE (lowered to it, never raised)
  // Where the runs' cgroups go: "" finds this process's cgroup v2 and uses
  // <it>/atrium-jobs when the memory and cpu controllers can be delegated there;
  // "none": never a cgroup (rlimits); else a cgroup v2 directory to use as that parent.
  std::string cgroup_parent;
  // The supervisor binary; "": atrium-supervisor next to this program, else the build's.
  std::string supervisor_path;
};

// How a run's limits are enforced, decided once when the executor is made.
struct LimitsMode {
  bool cgroup = false;  // true: a cgroup v2 per run under `parent`
  std::string parent;   // the cgroup directory the runs' cgroups are made in
  std::string reason;   // why rlimits are used, when they are
};
// Probes the machine as LocalExecutor does (cgroup_parent as in the options).
LimitsMode ProbeLimits(const std::string& cgroup_parent);

class LocalExecutor final : public Executor {
 public:
  explicit LocalExecutor(LocalExecutorOptions options);
  ~LocalExecutor() override;
  LocalExecutor(const LocalExecutor&) = delete;
  LocalExecutor& operator=(const LocalExecutor&) = delete;

  // A new launch is queued for the launcher threads: its started event (or, if it could
  // not be started, an end with exit code 126) comes from a later Poll.
  Status Ensure(const RunSpec& spec) override;
  bool Tracks(const std::string& job, uint32_t run) const override;
  std::vector<std::pair<std::string, uint32_t>> Tracked() const override;
  void Stop(const std::string& job, uint32_t run, EndHow how) override;
  // As Executor::Poll, except that a run whose start and end both fall in one poll (a
  // job shorter than the runner's pass) is reported by its end alone, which carries its
  // start time: one op for the core instead of two.
  std::vector<RunEvent> Poll() override;

  // The environment a run gets (besides PATH, HOME, LANG, ... taken from the service's):
  // ATRIUM_JOB_ID, ATRIUM_RUN, ATRIUM_GRANT, ATRIUM_CHIPS (count), ATRIUM_CHIP_INDICES,
  // ATRIUM_NODES (comma-separated host list), the device variable of its type, and for the
  // datasets it may read ATRIUM_DATASET_<ID>=<location> and ATRIUM_DATASETS=<id,id>.
  static std::vector<std::string> JobEnvironment(const RunSpec& spec);

  // How limits are enforced here (cgroup v2 or rlimits, and why).
  const LimitsMode& limits() const { return limits_; }

 private:
  struct Active {
    pid_t supervisor = 0;
    uint64_t start_ticks = 0;
    bool child = false;  // launched by this process (waitpid works), else adopted
    int64_t started_at_us = 0;
    bool launching = false;          // queued for, or being started by, a launcher thread
    std::optional<EndHow> stop_how;  // a Stop that came while it was launching
  };
  struct Launched {
    std::pair<std::string, uint32_t> key;
    Result<Active> active;
  };
  // Starts the run's supervisor and records the launch (run-N.json). Thread-safe: reads
  // only what the constructor set.
  Result<Active> Spawn(const RunSpec& spec) const;
  void LauncherLoop();
  std::string RunDir(const std::string& job) const;
  // The end recorded in the status file, or a kLost end (estimated from the files'
  // modification times) if there is none.
  RunEvent EndOf(const std::string& job, uint32_t run, const Active& active) const;

  LocalExecutorOptions options_;
  LimitsMode limits_;
  std::string supervisor_;  // the supervisor binary ("": not found; launches fail)
  std::string cgroup_tag_;  // names this service's run cgroups (a hash of jobs_dir)
  int null_fd_ = -1;        // /dev/null, every job's stdin
  std::map<std::pair<std::string, uint32_t>, Active> active_;
  std::vector<RunEvent> pending_;  // events found by Ensure, reported by the next Poll
  // Launches run on a few threads: posix_spawn waits until the supervisor has exec'd,
  // which on a busy machine is milliseconds of waiting per run, so launching one run
  // after another bounded the whole executor (docs/executors.md, Benchmark).
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<RunSpec> queue_;   // guarded by mutex_
  std::vector<Launched> done_;  // guarded by mutex_
  bool stopping_ = false;       // guarded by mutex_
  std::vector<std::thread> launchers_;
};

// Reading a run's output (the logs route): `length` bytes from `offset` of JOBS/J/stdout
// or stderr; `size` is the file's size now. A job that printed nothing has empty files
// (or none yet: size 0).
struct LogChunk {
  std::string data;
  int64_t offset = 0;
  int64_t size = 0;
};
Result<LogChunk> ReadJobLog(const std::string& jobs_dir, const std::string& job,
                            std::string_view stream, int64_t offset, int64_t length);

}  // namespace atrium::exec
