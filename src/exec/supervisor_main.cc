// atrium-supervisor: carries out one run of the local executor (local_executor.h).
//
// The service starts it with posix_spawn (so launching costs an exec of this small static
// program, never a fork of the large service), in a new session, with
//   fd 0  /dev/null            (the job's stdin)
//   fd 1  JOBS/J/stdout        (appended)
//   fd 2  JOBS/J/stderr        (appended)
//   fd 3  the release pipe     (one byte once the service has recorded the launch; EOF
//                               if the service died first: then nothing runs)
// its environment is the job's, and its arguments say the rest:
//   atrium-supervisor --status FILE --dir DIR --walltime-us N --grace-us N
//       [--memory-bytes N] [--nofile N] [--cgroup DIR [--cpu-max "QUOTA PERIOD"]]
//       --program PATH -- ARGV...
// It starts (vfork + exec) the job's process in a new process group (limits applied, signals at
// their defaults, DIR as working directory), sends SIGTERM to the group at the walltime and SIGKILL
// grace later; SIGTERM (cancel) and SIGUSR1 (preemption) from the service start the same two steps.
// When the job's process ends it kills what is left (the group, and the run's cgroup when there is
// one), writes FILE ("v1 EXIT SIGNAL STARTED_US ENDED_US HOW", written whole then renamed) and
// exits 0. Exit 2: bad arguments (nothing ran).
//
// With --cgroup DIR (a cgroup v2 directory the service chose: its parent has the memory
// and cpu controllers enabled for its children) the supervisor creates DIR, writes
// memory.max (= --memory-bytes, with memory.swap.max 0) and cpu.max, moves the job's
// process into it before the exec, and removes it at the end. Without --cgroup the
// memory limit is RLIMIT_AS and there is no CPU limit.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <initializer_list>

extern char** environ;

namespace {

struct Plan {
  const char* status_path = nullptr;
  const char* dir = nullptr;
  const char* program = nullptr;
  const char* cgroup = nullptr;
  const char* cpu_max = nullptr;
  char** argv = nullptr;
  int64_t walltime_us = 0;
  int64_t grace_us = 0;
  int64_t memory_bytes = 0;
  int64_t nofile = 4096;
};

int64_t ClockUs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000;
}

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t written = write(fd, data, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;
    data += written;
    size -= static_cast<size_t>(written);
  }
}

void AppendText(char* buf, size_t size, size_t* pos, const char* text) {
  while (*text != '\0' && *pos + 1 < size) buf[(*pos)++] = *text++;
  buf[*pos] = '\0';
}

void AppendInt(char* buf, size_t size, size_t* pos, int64_t value) {
  char digits[24];
  size_t count = 0;
  const bool negative = value < 0;
  uint64_t magnitude =
      negative ? static_cast<uint64_t>(-(value + 1)) + 1 : static_cast<uint64_t>(value);
  do {
    digits[count++] = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude != 0 && count < sizeof digits);
  if (negative && *pos + 1 < size) buf[(*pos)++] = '-';
  while (count > 0 && *pos + 1 < size) buf[(*pos)++] = digits[--count];
  buf[*pos] = '\0';
}

bool ParseInt(const char* text, int64_t* out) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const long long value = strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0) return false;
  *out = value;
  return true;
}

// Writes `text` to DIR/NAME; whether it was taken whole.
bool WriteControl(const char* dir, const char* name, const char* text) {
  char path[4096];
  size_t pos = 0;
  AppendText(path, sizeof path, &pos, dir);
  AppendText(path, sizeof path, &pos, "/");
  AppendText(path, sizeof path, &pos, name);
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const size_t size = strlen(text);
  const bool ok = write(fd, text, size) == static_cast<ssize_t>(size);
  close(fd);
  return ok;
}

const char* HowName(int how) {
  switch (how) {
    case 1:
      return "walltime";
    case 2:
      return "cancelled";
    case 3:
      return "preempted";
    default:
      return "exited";
  }
}

void WriteStatus(const Plan& plan, int exit_code, int signal, int64_t started_us, int64_t ended_us,
                 int how) {
  char line[160];
  size_t pos = 0;
  AppendText(line, sizeof line, &pos, "v1 ");
  AppendInt(line, sizeof line, &pos, exit_code);
  AppendText(line, sizeof line, &pos, " ");
  AppendInt(line, sizeof line, &pos, signal);
  AppendText(line, sizeof line, &pos, " ");
  AppendInt(line, sizeof line, &pos, started_us);
  AppendText(line, sizeof line, &pos, " ");
  AppendInt(line, sizeof line, &pos, ended_us);
  AppendText(line, sizeof line, &pos, " ");
  AppendText(line, sizeof line, &pos, HowName(how));
  AppendText(line, sizeof line, &pos, "\n");
  char tmp[4096];
  size_t tpos = 0;
  AppendText(tmp, sizeof tmp, &tpos, plan.status_path);
  AppendText(tmp, sizeof tmp, &tpos, ".tmp");
  const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  WriteAll(fd, line, pos);
  close(fd);
  rename(tmp, plan.status_path);
}

// The job's process: new group, limits, default signals, the run's cgroup; then exec.
[[noreturn]] void RunJob(const Plan& plan) {
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  const rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  if (plan.memory_bytes > 0 && plan.cgroup == nullptr) {
    const rlimit memory{static_cast<rlim_t>(plan.memory_bytes),
                        static_cast<rlim_t>(plan.memory_bytes)};
    setrlimit(RLIMIT_AS, &memory);
  }
  rlimit files{};
  if (plan.nofile > 0 && getrlimit(RLIMIT_NOFILE, &files) == 0 &&
      files.rlim_cur > static_cast<rlim_t>(plan.nofile)) {
    files.rlim_cur = static_cast<rlim_t>(plan.nofile);
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (plan.cgroup != nullptr && !WriteControl(plan.cgroup, "cgroup.procs", "0\n")) {
    WriteAll(2, "atrium: cannot join the run's cgroup\n", 37);
    _exit(126);
  }
  if (chdir(plan.dir) != 0) _exit(126);
  execve(plan.program, plan.argv, environ);
  const int error = errno;
  char message[4200];
  size_t pos = 0;
  AppendText(message, sizeof message, &pos, "atrium: cannot execute ");
  AppendText(message, sizeof message, &pos, plan.program);
  AppendText(message, sizeof message, &pos, error == ENOENT ? ": no such file\n" : ": failed\n");
  WriteAll(2, message, pos);
  _exit(error == ENOENT ? 127 : 126);
}

// Creates the run's cgroup with its limits; false if any step was refused.
bool MakeCgroup(const Plan& plan) {
  if (mkdir(plan.cgroup, 0755) != 0 && errno != EEXIST) return false;
  if (plan.memory_bytes > 0) {
    char value[32];
    size_t pos = 0;
    AppendInt(value, sizeof value, &pos, plan.memory_bytes);
    AppendText(value, sizeof value, &pos, "\n");
    if (!WriteControl(plan.cgroup, "memory.max", value)) return false;
    WriteControl(plan.cgroup, "memory.swap.max", "0\n");  // absent without swap accounting
  }
  if (plan.cpu_max != nullptr && !WriteControl(plan.cgroup, "cpu.max", plan.cpu_max)) return false;
  return true;
}

void RemoveCgroup(const Plan& plan) {
  if (plan.cgroup == nullptr) return;
  WriteControl(plan.cgroup, "cgroup.kill", "1\n");  // what escaped the group (Linux >= 5.14)
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (rmdir(plan.cgroup) == 0 || errno == ENOENT) return;
    const timespec pause{0, 10'000'000};
    nanosleep(&pause, nullptr);
  }
}

bool ParseArgs(int argc, char** argv, Plan* plan) {
  for (int i = 1; i < argc; ++i) {
    const char* flag = argv[i];
    if (strcmp(flag, "--") == 0) {
      plan->argv = argv + i + 1;
      return i + 1 < argc && plan->status_path != nullptr && plan->dir != nullptr &&
             plan->program != nullptr;
    }
    if (i + 1 >= argc) return false;
    const char* value = argv[++i];
    if (strcmp(flag, "--status") == 0) {
      plan->status_path = value;
    } else if (strcmp(flag, "--dir") == 0) {
      plan->dir = value;
    } else if (strcmp(flag, "--program") == 0) {
      plan->program = value;
    } else if (strcmp(flag, "--cgroup") == 0) {
      plan->cgroup = value;
    } else if (strcmp(flag, "--cpu-max") == 0) {
      plan->cpu_max = value;
    } else if (strcmp(flag, "--walltime-us") == 0) {
      if (!ParseInt(value, &plan->walltime_us)) return false;
    } else if (strcmp(flag, "--grace-us") == 0) {
      if (!ParseInt(value, &plan->grace_us)) return false;
    } else if (strcmp(flag, "--memory-bytes") == 0) {
      if (!ParseInt(value, &plan->memory_bytes)) return false;
    } else if (strcmp(flag, "--nofile") == 0) {
      if (!ParseInt(value, &plan->nofile)) return false;
    } else {
      return false;
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  Plan plan;
  if (!ParseArgs(argc, argv, &plan)) {
    WriteAll(2, "atrium-supervisor: bad arguments (started by atrium serve only)\n", 64);
    return 2;
  }
  setsid();  // no-op when spawned with POSIX_SPAWN_SETSID
  // SIGTERM, SIGINT, SIGHUP: cancel; SIGUSR1: preempt; SIGCHLD: the job changed state.
  // All are taken with sigtimedwait, so they stay blocked.
  sigset_t waited;
  sigemptyset(&waited);
  for (const int sig : {SIGCHLD, SIGTERM, SIGUSR1, SIGINT, SIGHUP}) sigaddset(&waited, sig);
  sigprocmask(SIG_SETMASK, &waited, nullptr);
  syscall(SYS_close_range, 4U, ~0U, 0U);
  // Wait until the service has recorded the launch; it died first (EOF): run nothing.
  char go = 0;
  ssize_t got = 0;
  do {
    got = read(3, &go, 1);
  } while (got < 0 && errno == EINTR);
  close(3);
  if (got != 1) return 0;

  const int64_t started_us = ClockUs(CLOCK_REALTIME);
  const int64_t started_mono = ClockUs(CLOCK_MONOTONIC);
  if (plan.cgroup != nullptr && !MakeCgroup(plan)) {
    WriteAll(2, "atrium: cannot set up the run's cgroup\n", 39);
    RemoveCgroup(plan);
    WriteStatus(plan, 126, 0, started_us, ClockUs(CLOCK_REALTIME), 0);
    return 0;
  }
  // vfork: the job's process shares this one's memory until its exec (RunJob makes only
  // system calls and never returns), so no page tables are copied per run.
  // NOLINTNEXTLINE(clang-analyzer-security.insecureAPI.vfork): chosen for that reason
  const pid_t job = vfork();
  if (job == 0) RunJob(plan);
  if (job < 0) {
    RemoveCgroup(plan);
    WriteStatus(plan, 126, 0, started_us, ClockUs(CLOCK_REALTIME), 0);
    return 0;
  }
  setpgid(job, job);
  int how = 0;  // 0 exited, 1 walltime, 2 cancelled, 3 preempted
  const int64_t term_at = started_mono + plan.walltime_us;
  int64_t kill_at = -1;
  bool killed = false;
  int status = 0;
  for (;;) {
    const pid_t reaped = waitpid(job, &status, WNOHANG);
    if (reaped == job) break;
    const int64_t now = ClockUs(CLOCK_MONOTONIC);
    auto stop = [&](int why) {
      if (kill_at >= 0) return;
      how = why;
      killpg(job, SIGTERM);
      kill_at = now + plan.grace_us;
    };
    if (now >= term_at) stop(1);
    if (kill_at >= 0 && now >= kill_at && !killed) {
      killpg(job, SIGKILL);
      killed = true;
    }
    int64_t wait_us = 1'000'000;
    if (kill_at < 0 && term_at - now < wait_us) wait_us = term_at - now;
    if (kill_at >= 0 && !killed && kill_at - now < wait_us) wait_us = kill_at - now;
    if (wait_us < 1'000) wait_us = 1'000;
    const timespec timeout{static_cast<time_t>(wait_us / 1'000'000),
                           static_cast<long>(wait_us % 1'000'000) * 1'000};
    const int sig = sigtimedwait(&waited, nullptr, &timeout);
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) stop(2);
    if (sig == SIGUSR1) stop(3);
  }
  const int64_t ended_us = ClockUs(CLOCK_REALTIME);
  killpg(job, SIGKILL);  // what the job left running in its group ends with it
  RemoveCgroup(plan);
  const int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const int signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  WriteStatus(plan, exit_code, signal, started_us, ended_us, how);
  return 0;
}
