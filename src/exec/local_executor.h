// LocalExecutor: runs each placed run as a process group on this machine.
//
// For run N of job J it forks a supervisor process (its own session, so neither the
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
// The supervisor is a fork of the service and uses only async-signal-safe calls between
// its fork and its exit (the service is multi-threaded).
//
// Limits (docs/executors.md): RLIMIT_CORE 0, RLIMIT_AS when memory_bytes_max is set,
// RLIMIT_NOFILE at most nofile_max. cgroup v2 is not used yet.
//
//   LocalExecutor executor({.jobs_dir = "atrium-data/jobs"});
//   ATRIUM_TRY(executor.Ensure(spec));
//   std::vector<RunEvent> events = executor.Poll();
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "exec/executor.h"

namespace atrium::exec {

struct LocalExecutorOptions {
  std::string jobs_dir = "atrium-data/jobs";
  int64_t memory_bytes_max = 0;  // RLIMIT_AS of a job's processes; 0: none
  int64_t nofile_max = 4096;     // RLIMIT_NOFILE (lowered to it, never raised)
};

class LocalExecutor final : public Executor {
 public:
  explicit LocalExecutor(LocalExecutorOptions options);
  ~LocalExecutor() override;
  LocalExecutor(const LocalExecutor&) = delete;
  LocalExecutor& operator=(const LocalExecutor&) = delete;

  Status Ensure(const RunSpec& spec) override;
  bool Tracks(const std::string& job, uint32_t run) const override;
  std::vector<std::pair<std::string, uint32_t>> Tracked() const override;
  void Stop(const std::string& job, uint32_t run, EndHow how) override;
  std::vector<RunEvent> Poll() override;

  // The environment a run gets (besides PATH, HOME, LANG, ... taken from the service's):
  // ATRIUM_JOB_ID, ATRIUM_RUN, ATRIUM_GRANT, ATRIUM_CHIPS (count), ATRIUM_CHIP_INDICES,
  // ATRIUM_NODES (comma-separated host list), and the device variable of its type.
  static std::vector<std::string> JobEnvironment(const RunSpec& spec);

 private:
  struct Active {
    pid_t supervisor = 0;
    uint64_t start_ticks = 0;
    bool child = false;  // launched by this process (waitpid works), else adopted
    int64_t started_at_us = 0;
  };
  Status Launch(const RunSpec& spec);
  std::string RunDir(const std::string& job) const;
  // The end recorded in the status file, or a kLost end (estimated from the files'
  // modification times) if there is none.
  RunEvent EndOf(const std::string& job, uint32_t run, const Active& active) const;

  LocalExecutorOptions options_;
  std::map<std::pair<std::string, uint32_t>, Active> active_;
  std::vector<RunEvent> pending_;  // events found by Ensure, reported by the next Poll
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
