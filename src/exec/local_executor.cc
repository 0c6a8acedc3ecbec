#include "exec/local_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace atrium::exec {

namespace fs = std::filesystem;
using nlohmann::json;

std::string_view ToString(EndHow how) {
  switch (how) {
    case EndHow::kExited:
      return "exited";
    case EndHow::kWalltime:
      return "walltime";
    case EndHow::kCancelled:
      return "cancelled";
    case EndHow::kPreempted:
      return "preempted";
    case EndHow::kLost:
      return "lost";
  }
  return "lost";
}

namespace {

std::optional<EndHow> ParseEndHow(std::string_view text) {
  for (EndHow how : {EndHow::kExited, EndHow::kWalltime, EndHow::kCancelled, EndHow::kPreempted,
                     EndHow::kLost}) {
    if (ToString(how) == text) return how;
  }
  return std::nullopt;
}

int64_t RealtimeUs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000;
}

int64_t MonotonicUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000;
}

// The start time (clock ticks since boot, /proc/PID/stat field 22) of a live process;
// 0 if there is none or it is a zombie.
uint64_t ProcStartTicks(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  if (!in) return 0;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string state;
  fields >> state;
  if (state == "Z" || state == "X") return 0;
  std::string skip;
  for (int field = 4; field < 22; ++field) fields >> skip;  // ppid .. priority fields
  uint64_t ticks = 0;
  fields >> ticks;
  return ticks;
}

// argv[0] as a path: itself if it names a directory part, else the first executable of
// that name on PATH (as execvp would find it; searched here because the child may only
// make async-signal-safe calls). Unfound: argv[0], and execve fails with ENOENT.
std::string ResolveProgram(const std::string& name, const std::string& path_env) {
  if (name.find('/') != std::string::npos) return name;
  std::stringstream dirs(path_env);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
  }
  return name;
}

// ---- the supervisor (async-signal-safe only) ------------------------------------------

struct SupervisorPlan {
  const char* program;
  char* const* argv;
  char* const* envp;
  const char* dir;
  const char* status_path;
  const char* status_tmp;
  int stdout_fd;
  int stderr_fd;
  int stdin_fd;
  int release_fd;
  int64_t walltime_us;
  int64_t grace_us;
  rlim_t memory_bytes_max;  // 0: none
  rlim_t nofile_max;
};

// Appends the decimal digits of `value` to buf at *pos (bounded by size).
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
  if (negative && *pos < size) buf[(*pos)++] = '-';
  while (count > 0 && *pos < size) buf[(*pos)++] = digits[--count];
}

void AppendText(char* buf, size_t size, size_t* pos, const char* text) {
  while (*text != '\0' && *pos < size) buf[(*pos)++] = *text++;
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

// "v1 EXIT SIGNAL STARTED_US ENDED_US HOW\n", written whole then renamed into place.
void WriteStatus(const SupervisorPlan& plan, int exit_code, int signal, int64_t started_us,
                 int64_t ended_us, EndHow how) {
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
  const char* name = how == EndHow::kWalltime    ? "walltime"
                     : how == EndHow::kCancelled ? "cancelled"
                     : how == EndHow::kPreempted ? "preempted"
                     : how == EndHow::kLost      ? "lost"
                                                 : "exited";
  AppendText(line, sizeof line, &pos, name);
  AppendText(line, sizeof line, &pos, "\n");
  const int fd = open(plan.status_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  WriteAll(fd, line, pos);
  close(fd);
  rename(plan.status_tmp, plan.status_path);
}

[[noreturn]] void RunJobProcess(const SupervisorPlan& plan) {
  setpgid(0, 0);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  const rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  if (plan.memory_bytes_max > 0) {
    const rlimit memory{plan.memory_bytes_max, plan.memory_bytes_max};
    setrlimit(RLIMIT_AS, &memory);
  }
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur > plan.nofile_max) {
    files.rlim_cur = plan.nofile_max;
    if (files.rlim_max < files.rlim_cur) files.rlim_max = files.rlim_cur;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (chdir(plan.dir) != 0) _exit(126);
  execve(plan.program, plan.argv, plan.envp);
  const int error = errno;
  char message[512];
  size_t pos = 0;
  AppendText(message, sizeof message, &pos, "atrium: cannot execute ");
  AppendText(message, sizeof message, &pos, plan.program);
  AppendText(message, sizeof message, &pos, error == ENOENT ? ": no such file\n" : ": failed\n");
  WriteAll(2, message, pos);
  _exit(error == ENOENT ? 127 : 126);
}

[[noreturn]] void Supervise(const SupervisorPlan& plan) {
  setsid();
  // SIGTERM: cancel; SIGUSR1: preempt; SIGCHLD: the job's process changed state. All are
  // taken with sigtimedwait, so they are blocked; the rest keep their default action.
  sigset_t waited;
  sigemptyset(&waited);
  sigaddset(&waited, SIGCHLD);
  sigaddset(&waited, SIGTERM);
  sigaddset(&waited, SIGUSR1);
  sigaddset(&waited, SIGINT);
  sigaddset(&waited, SIGHUP);
  sigprocmask(SIG_SETMASK, &waited, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &dfl, nullptr);
  sigaction(SIGPIPE, &dfl, nullptr);
  // 0-2: the job's stdin, stdout, stderr; 3: the release pipe; nothing else stays open.
  dup2(plan.stdin_fd, 0);
  dup2(plan.stdout_fd, 1);
  dup2(plan.stderr_fd, 2);
  dup2(plan.release_fd, 3);
  close_range(4, ~0U, 0);
  // Wait until the service has recorded the launch; it died first (EOF): run nothing.
  char go = 0;
  ssize_t got = 0;
  do {
    got = read(3, &go, 1);
  } while (got < 0 && errno == EINTR);
  close(3);
  if (got != 1) _exit(0);

  const int64_t started_us = RealtimeUs();
  const int64_t started_mono = MonotonicUs();
  const pid_t job = fork();
  if (job == 0) RunJobProcess(plan);
  if (job < 0) {
    WriteStatus(plan, 126, 0, started_us, RealtimeUs(), EndHow::kExited);
    _exit(0);
  }
  setpgid(job, job);
  EndHow how = EndHow::kExited;
  const int64_t term_at = started_mono + plan.walltime_us;
  int64_t kill_at = -1;
  bool killed = false;
  int status = 0;
  for (;;) {
    const pid_t reaped = waitpid(job, &status, WNOHANG);
    if (reaped == job) break;
    const int64_t now = MonotonicUs();
    auto stop = [&](EndHow why) {
      if (kill_at >= 0) return;
      how = why;
      killpg(job, SIGTERM);
      kill_at = now + plan.grace_us;
    };
    if (now >= term_at) stop(EndHow::kWalltime);
    if (kill_at >= 0 && now >= kill_at && !killed) {
      killpg(job, SIGKILL);
      killed = true;
    }
    int64_t wait_us = 1'000'000;
    if (kill_at < 0) wait_us = std::min(wait_us, term_at - now);
    if (kill_at >= 0 && !killed) wait_us = std::min(wait_us, kill_at - now);
    wait_us = std::max<int64_t>(wait_us, 1'000);
    const timespec timeout{static_cast<time_t>(wait_us / 1'000'000),
                           static_cast<long>(wait_us % 1'000'000) * 1'000};
    const int sig = sigtimedwait(&waited, nullptr, &timeout);
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) stop(EndHow::kCancelled);
    if (sig == SIGUSR1) stop(EndHow::kPreempted);
  }
  const int64_t ended_us = RealtimeUs();
  killpg(job, SIGKILL);  // what the job left running in its group ends with it
  const int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const int signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  WriteStatus(plan, exit_code, signal, started_us, ended_us, how);
  _exit(0);
}

void WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
  }
  fs::rename(tmp, path);
}

std::string DeviceVariable(cluster::DeviceKind kind) {
  switch (kind) {
    case cluster::DeviceKind::kNeuron:
      return "NEURON_RT_VISIBLE_CORES";
    case cluster::DeviceKind::kCuda:
      return "CUDA_VISIBLE_DEVICES";
    case cluster::DeviceKind::kTpu:
      return "TPU_VISIBLE_CHIPS";
    case cluster::DeviceKind::kNone:
      break;
  }
  return "";
}

}  // namespace

LocalExecutor::LocalExecutor(LocalExecutorOptions options) : options_(std::move(options)) {}

LocalExecutor::~LocalExecutor() {
  // Supervisors outlive the service by design; reap the ones that already ended.
  for (const auto& [key, active] : active_) {
    if (active.child) waitpid(active.supervisor, nullptr, WNOHANG);
  }
}

std::string LocalExecutor::RunDir(const std::string& job) const {
  return (fs::path(options_.jobs_dir) / job).string();
}

std::vector<std::string> LocalExecutor::JobEnvironment(const RunSpec& spec) {
  std::vector<std::string> env;
  for (const char* name :
       {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR"}) {
    if (const char* value = std::getenv(name)) env.push_back(fmt::format("{}={}", name, value));
  }
  if (std::getenv("PATH") == nullptr) env.emplace_back("PATH=/usr/local/bin:/usr/bin:/bin");
  std::string indices;
  for (const int chip : spec.chip_indices) {
    indices += (indices.empty() ? "" : ",") + std::to_string(chip);
  }
  std::string nodes;
  for (const std::string& node : spec.nodes) nodes += (nodes.empty() ? "" : ",") + node;
  env.push_back("ATRIUM_JOB_ID=" + spec.job);
  env.push_back(fmt::format("ATRIUM_RUN={}", spec.run));
  env.push_back("ATRIUM_GRANT=" + spec.grant);
  env.push_back(fmt::format("ATRIUM_CHIPS={}", spec.chips));
  env.push_back("ATRIUM_CHIP_INDICES=" + indices);
  env.push_back("ATRIUM_NODES=" + nodes);
  const std::string variable = DeviceVariable(spec.device);
  if (!variable.empty()) {
    std::string value;
    if (spec.device == cluster::DeviceKind::kNeuron) {
      // NeuronCores: chip c holds cores c*k .. c*k+k-1.
      const int64_t per_chip = std::max<int64_t>(spec.cores_per_chip, 1);
      for (const int chip : spec.chip_indices) {
        for (int64_t core = 0; core < per_chip; ++core) {
          value += (value.empty() ? "" : ",") + std::to_string(chip * per_chip + core);
        }
      }
    } else {
      value = indices;
    }
    env.push_back(variable + "=" + value);
  }
  return env;
}

bool LocalExecutor::Tracks(const std::string& job, uint32_t run) const {
  return active_.contains({job, run});
}

std::vector<std::pair<std::string, uint32_t>> LocalExecutor::Tracked() const {
  std::vector<std::pair<std::string, uint32_t>> out;
  out.reserve(active_.size());
  for (const auto& [key, active] : active_) out.push_back(key);
  return out;
}

Status LocalExecutor::Ensure(const RunSpec& spec) {
  if (Tracks(spec.job, spec.run)) return OkStatus();
  const std::string dir = RunDir(spec.job);
  const std::string launch = fmt::format("{}/run-{}.json", dir, spec.run);
  std::error_code ec;
  if (!fs::exists(launch, ec)) return Launch(spec);
  // Launched before this process started: adopt it, or report the end it had.
  std::ifstream in(launch);
  const json record = json::parse(in, nullptr, false);
  if (record.is_discarded() || !record.contains("supervisor_pid")) {
    return MakeError(ErrorCode::kCorruption, "unreadable " + launch);
  }
  Active active{.supervisor = record["supervisor_pid"].get<pid_t>(),
                .start_ticks = record["supervisor_start_ticks"].get<uint64_t>(),
                .child = false,
                .started_at_us = record["started_at_us"].get<int64_t>()};
  const bool alive = ProcStartTicks(active.supervisor) == active.start_ticks;
  const bool ended = fs::exists(fmt::format("{}/run-{}.status", dir, spec.run), ec);
  if (alive && !ended) {
    active_.emplace(std::pair{spec.job, spec.run}, active);
    return OkStatus();
  }
  pending_.push_back(EndOf(spec.job, spec.run, active));
  return OkStatus();
}

Status LocalExecutor::Launch(const RunSpec& spec) {
  if (spec.argv.empty()) {
    // Nothing to run: it ends at once, successfully, as `true` would.
    const int64_t now = RealtimeUs();
    pending_.push_back(RunEvent{.kind = RunEvent::Kind::kEnded,
                                .job = spec.job,
                                .run = spec.run,
                                .started_at_us = now,
                                .ended_at_us = now,
                                .exit_code = 0});
    return OkStatus();
  }
  const std::string dir = RunDir(spec.job);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return MakeError(ErrorCode::kIoError, "cannot create " + dir + ": " + ec.message());
  const std::vector<std::string> env = JobEnvironment(spec);
  std::string path_env = "/usr/local/bin:/usr/bin:/bin";
  for (const std::string& entry : env) {
    if (entry.starts_with("PATH=")) path_env = entry.substr(5);
  }
  const std::string program = ResolveProgram(spec.argv[0], path_env);
  std::vector<char*> argv;
  for (const std::string& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& entry : env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  const std::string status_path = fmt::format("{}/run-{}.status", dir, spec.run);
  const std::string status_tmp = status_path + ".tmp";
  const int out = open((dir + "/stdout").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int err = open((dir + "/stderr").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int release[2] = {-1, -1};
  if (out < 0 || err < 0 || null < 0 || pipe2(release, O_CLOEXEC) != 0) {
    for (const int fd : {out, err, null, release[0], release[1]}) {
      if (fd >= 0) close(fd);
    }
    return MakeError(ErrorCode::kIoError, "cannot open the output files in " + dir);
  }
  const SupervisorPlan plan{.program = program.c_str(),
                            .argv = argv.data(),
                            .envp = envp.data(),
                            .dir = dir.c_str(),
                            .status_path = status_path.c_str(),
                            .status_tmp = status_tmp.c_str(),
                            .stdout_fd = out,
                            .stderr_fd = err,
                            .stdin_fd = null,
                            .release_fd = release[0],
                            .walltime_us = spec.walltime_s * 1'000'000,
                            .grace_us = spec.kill_grace_s * 1'000'000,
                            .memory_bytes_max = static_cast<rlim_t>(options_.memory_bytes_max),
                            .nofile_max = static_cast<rlim_t>(options_.nofile_max)};
  const pid_t supervisor = fork();
  if (supervisor == 0) Supervise(plan);
  for (const int fd : {out, err, null, release[0]}) close(fd);
  if (supervisor < 0) {
    close(release[1]);
    return MakeError(ErrorCode::kIoError, fmt::format("fork: {}", std::strerror(errno)));
  }
  const int64_t started_us = RealtimeUs();
  const Active active{.supervisor = supervisor,
                      .start_ticks = ProcStartTicks(supervisor),
                      .child = true,
                      .started_at_us = started_us};
  const json record = {{"job", spec.job},
                       {"run", spec.run},
                       {"argv", spec.argv},
                       {"program", program},
                       {"env", env},
                       {"walltime_s", spec.walltime_s},
                       {"kill_grace_s", spec.kill_grace_s},
                       {"supervisor_pid", supervisor},
                       {"supervisor_start_ticks", active.start_ticks},
                       {"started_at_us", started_us}};
  try {
    WriteFileAtomically(fmt::format("{}/run-{}.json", dir, spec.run), record.dump(2) + "\n");
  } catch (const fs::filesystem_error& error) {
    close(release[1]);  // the supervisor reads EOF and runs nothing
    waitpid(supervisor, nullptr, 0);
    return MakeError(ErrorCode::kIoError, error.what());
  }
  // Recorded: let it run.
  WriteAll(release[1], "g", 1);
  close(release[1]);
  active_.emplace(std::pair{spec.job, spec.run}, active);
  pending_.push_back(RunEvent{.kind = RunEvent::Kind::kStarted,
                              .job = spec.job,
                              .run = spec.run,
                              .started_at_us = started_us});
  return OkStatus();
}

void LocalExecutor::Stop(const std::string& job, uint32_t run, EndHow how) {
  const auto found = active_.find({job, run});
  if (found == active_.end()) return;
  const Active& active = found->second;
  if (!active.child && ProcStartTicks(active.supervisor) != active.start_ticks) return;
  kill(active.supervisor, how == EndHow::kPreempted ? SIGUSR1 : SIGTERM);
}

RunEvent LocalExecutor::EndOf(const std::string& job, uint32_t run, const Active& active) const {
  const std::string dir = RunDir(job);
  RunEvent event{.kind = RunEvent::Kind::kEnded,
                 .job = job,
                 .run = run,
                 .started_at_us = active.started_at_us};
  std::ifstream in(fmt::format("{}/run-{}.status", dir, run));
  std::string version;
  std::string how;
  if (in >> version >> event.exit_code >> event.signal >> event.started_at_us >>
          event.ended_at_us >> how &&
      version == "v1" && ParseEndHow(how)) {
    event.how = *ParseEndHow(how);
    return event;
  }
  // No status: the supervisor was killed, or the machine went down. The run ended at the
  // latest when its output last changed (or when it was launched).
  event.exit_code = -1;
  event.signal = 0;
  event.how = EndHow::kLost;
  event.started_at_us = active.started_at_us;
  event.ended_at_us = active.started_at_us;
  for (const char* name : {"stdout", "stderr"}) {
    struct stat info {};
    if (stat((dir + "/" + name).c_str(), &info) == 0) {
      const int64_t modified =
          static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000 + info.st_mtim.tv_nsec / 1'000;
      event.ended_at_us = std::max(event.ended_at_us, modified);
    }
  }
  return event;
}

std::vector<RunEvent> LocalExecutor::Poll() {
  std::vector<RunEvent> events = std::move(pending_);
  pending_.clear();
  for (auto it = active_.begin(); it != active_.end();) {
    const auto& [key, active] = *it;
    bool ended = false;
    if (active.child) {
      const pid_t reaped = waitpid(active.supervisor, nullptr, WNOHANG);
      ended = reaped == active.supervisor || (reaped < 0 && errno == ECHILD);
    } else {
      std::error_code ec;
      ended = fs::exists(fmt::format("{}/run-{}.status", RunDir(key.first), key.second), ec) ||
              ProcStartTicks(active.supervisor) != active.start_ticks;
    }
    if (!ended) {
      ++it;
      continue;
    }
    events.push_back(EndOf(key.first, key.second, active));
    it = active_.erase(it);
  }
  return events;
}

Result<LogChunk> ReadJobLog(const std::string& jobs_dir, const std::string& job,
                            std::string_view stream, int64_t offset, int64_t length) {
  if (stream != "stdout" && stream != "stderr") {
    return MakeError(ErrorCode::kInvalidArgument, "stream is stdout or stderr", "stream");
  }
  LogChunk chunk;
  chunk.offset = offset;
  const std::string path = (fs::path(jobs_dir) / job / std::string(stream)).string();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return chunk;  // nothing printed yet
  struct stat info {};
  if (fstat(fd, &info) == 0) chunk.size = info.st_size;
  if (offset < chunk.size) {
    const int64_t want = std::min(length, chunk.size - offset);
    chunk.data.resize(static_cast<size_t>(want));
    int64_t done = 0;
    while (done < want) {
      const ssize_t got = pread(fd, chunk.data.data() + done, static_cast<size_t>(want - done),
                                static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      done += got;
    }
    chunk.data.resize(static_cast<size_t>(done));
  }
  close(fd);
  return chunk;
}

}  // namespace atrium::exec
