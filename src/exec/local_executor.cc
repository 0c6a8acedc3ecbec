#include "exec/local_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
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

constexpr int kLaunchers = 4;

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

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t written = write(fd, data, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;
    data += written;
    size -= static_cast<size_t>(written);
  }
}

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool HasWord(const std::string& text, std::string_view word) {
  std::istringstream words(text);
  for (std::string each; words >> each;) {
    if (each == word) return true;
  }
  return false;
}

bool WriteText(const std::string& path, std::string_view text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// The supervisor binary: the option, else atrium-supervisor next to this program, else
// the build tree's.
std::string FindSupervisor(const std::string& configured) {
  if (!configured.empty()) return configured;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path sibling = self.parent_path() / "atrium-supervisor";
    if (access(sibling.c_str(), X_OK) == 0) return sibling.string();
  }
#ifdef ATRIUM_SUPERVISOR_BINARY
  if (access(ATRIUM_SUPERVISOR_BINARY, X_OK) == 0) return ATRIUM_SUPERVISOR_BINARY;
#endif
  return "";
}

// A short stable name for the jobs directory, so services with different data
// directories on one machine never share run cgroups.
std::string PathTag(const std::string& path) {
  std::error_code ec;
  const std::string canonical = fs::weakly_canonical(path, ec).string();
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a
  for (const char c : ec ? path : canonical) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  }
  return fmt::format("{:08x}", static_cast<uint32_t>(hash ^ (hash >> 32)));
}

// argv[0] as a path: itself if it names a directory part, else the first executable of
// that name on PATH (as execvp would find it; searched here because the child may only
// make async-signal-safe calls). Unfound: argv[0], and execve fails with ENOENT.
std::string ResolveProgram(const std::string& name, const std::string& path_env) {
  if (name.find('/') != std::string::npos) return name;
  std::stringstream dirs(path_env);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) dir = ".";
    std::string candidate = dir;
    candidate.append("/").append(name);
    if (access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
  }
  return name;
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

LimitsMode ProbeLimits(const std::string& cgroup_parent) {
  LimitsMode mode;
  if (cgroup_parent == "none") {
    mode.reason = "cgroups turned off (cgroup_parent = none)";
    return mode;
  }
  std::string parent = cgroup_parent;
  if (parent.empty()) {
    // This process's cgroup v2: the cgroup2 mount point plus the "0::" line's path.
    std::string mount;
    std::ifstream mounts("/proc/self/mountinfo");
    for (std::string line; std::getline(mounts, line);) {
      const size_t dash = line.find(" - ");
      if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
      std::istringstream fields(line);
      std::string skip;
      fields >> skip >> skip >> skip >> skip >> mount;  // id parent dev root mount-point
      break;
    }
    if (mount.empty()) {
      mode.reason = "no cgroup v2 hierarchy is mounted";
      return mode;
    }
    std::string own;
    std::ifstream groups("/proc/self/cgroup");
    for (std::string line; std::getline(groups, line);) {
      if (line.starts_with("0::")) own = line.substr(3);
    }
    fs::path base = fs::path(mount) / fs::path(own).relative_path();
    std::error_code ec;
    if (!fs::is_directory(base, ec)) base = mount;
    const std::string controllers = ReadSmallFile((base / "cgroup.controllers").string());
    if (!HasWord(controllers, "memory") || !HasWord(controllers, "cpu")) {
      mode.reason = fmt::format("the cgroup v2 {} offers no memory and cpu controllers ({})",
                                base.string(), controllers.empty() ? "none" : controllers);
      while (!mode.reason.empty() && mode.reason.back() == '\n') mode.reason.pop_back();
      return mode;
    }
    // Controllers for children; refused (EBUSY) where the cgroup holds processes itself,
    // unless a delegating manager enabled them already.
    WriteText((base / "cgroup.subtree_control").string(), "+memory +cpu");
    parent = (base / "atrium-jobs").string();
  }
  std::error_code ec;
  fs::create_directories(parent, ec);
  const std::string controllers = ReadSmallFile(parent + "/cgroup.controllers");
  if (ec || !HasWord(controllers, "memory") || !HasWord(controllers, "cpu")) {
    mode.reason = fmt::format("cannot make {} with the memory and cpu controllers", parent);
    return mode;
  }
  WriteText(parent + "/cgroup.subtree_control", "+memory +cpu");
  // A probe child must show both controllers and accept a limit.
  const std::string probe = fmt::format("{}/probe-{}", parent, getpid());
  fs::create_directory(probe, ec);
  const bool usable = !ec && HasWord(ReadSmallFile(probe + "/cgroup.controllers"), "memory") &&
                      WriteText(probe + "/memory.max", "max\n") &&
                      WriteText(probe + "/cpu.max", "max 100000\n");
  rmdir(probe.c_str());
  if (!usable) {
    mode.reason = fmt::format("the cgroup {} does not delegate memory and cpu", parent);
    return mode;
  }
  mode.cgroup = true;
  mode.parent = parent;
  return mode;
}

LocalExecutor::LocalExecutor(LocalExecutorOptions options)
    : options_(std::move(options)),
      limits_(ProbeLimits(options_.cgroup_parent)),
      supervisor_(FindSupervisor(options_.supervisor_path)),
      cgroup_tag_(PathTag(options_.jobs_dir)),
      null_fd_(open("/dev/null", O_RDONLY | O_CLOEXEC)) {
  for (int i = 0; i < kLaunchers; ++i) launchers_.emplace_back([this] { LauncherLoop(); });
}

void LocalExecutor::LauncherLoop() {
  for (;;) {
    RunSpec spec;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // what is still queued was never launched: a restart will
      spec = std::move(queue_.front());
      queue_.pop_front();
    }
    Result<Active> active = Spawn(spec);
    std::lock_guard lock(mutex_);
    done_.push_back(Launched{{spec.job, spec.run}, std::move(active)});
  }
}

LocalExecutor::~LocalExecutor() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& launcher : launchers_) launcher.join();
  // Supervisors outlive the service by design; reap the ones that already ended.
  for (const auto& [key, active] : active_) {
    if (active.child) waitpid(active.supervisor, nullptr, WNOHANG);
  }
  if (null_fd_ >= 0) close(null_fd_);
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
  // Datasets: one variable each (the id upper-cased, other than letters and digits as _),
  // and the list of ids; only those the core found usable are in the spec.
  std::string dataset_ids;
  for (const auto& [id, location] : spec.datasets) {
    std::string name = "ATRIUM_DATASET_";
    for (const char c : id) {
      const auto byte = static_cast<unsigned char>(c);
      name += std::isalnum(byte) != 0 ? static_cast<char>(std::toupper(byte)) : '_';
    }
    name.append("=").append(location);
    env.push_back(std::move(name));
    dataset_ids += (dataset_ids.empty() ? "" : ",") + id;
  }
  if (!spec.datasets.empty()) env.push_back("ATRIUM_DATASETS=" + dataset_ids);
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
  if (!fs::exists(launch, ec)) {
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
    active_.emplace(std::pair{spec.job, spec.run}, Active{.launching = true});
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(spec);
    }
    wake_.notify_one();
    return OkStatus();
  }
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

Result<LocalExecutor::Active> LocalExecutor::Spawn(const RunSpec& spec) const {
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
  if (supervisor_.empty()) {
    return MakeError(ErrorCode::kIoError, "atrium-supervisor not found (next to atrium or built)");
  }
  const std::string status_path = fmt::format("{}/run-{}.status", dir, spec.run);
  const std::string cgroup =
      limits_.cgroup ? fmt::format("{}/{}-{}-{}", limits_.parent, cgroup_tag_, spec.job, spec.run)
                     : "";
  // The supervisor's arguments (supervisor_main.cc); its environment is the job's.
  std::vector<std::string> args = {supervisor_,
                                   "--status",
                                   status_path,
                                   "--dir",
                                   dir,
                                   "--walltime-us",
                                   std::to_string(spec.walltime_s * 1'000'000),
                                   "--grace-us",
                                   std::to_string(spec.kill_grace_s * 1'000'000),
                                   "--nofile",
                                   std::to_string(options_.nofile_max)};
  if (options_.memory_bytes_max > 0) {
    args.insert(args.end(), {"--memory-bytes", std::to_string(options_.memory_bytes_max)});
  }
  if (!cgroup.empty()) {
    args.insert(args.end(), {"--cgroup", cgroup});
    if (options_.cpu_percent_max > 0) {
      args.insert(args.end(),
                  {"--cpu-max", fmt::format("{} 100000\n", options_.cpu_percent_max * 1000)});
    }
  }
  args.insert(args.end(), {"--program", program, "--"});
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (const std::string& entry : env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  const int out = open((dir + "/stdout").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int err = open((dir + "/stderr").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int release[2] = {-1, -1};
  if (out < 0 || err < 0 || null_fd_ < 0 || pipe2(release, O_CLOEXEC) != 0) {
    for (const int fd : {out, err, release[0], release[1]}) {
      if (fd >= 0) close(fd);
    }
    return MakeError(ErrorCode::kIoError, "cannot open the output files in " + dir);
  }
  // posix_spawn (a vfork-like clone, then exec): the cost does not grow with the service.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, null_fd_, 0);
  posix_spawn_file_actions_adddup2(&actions, out, 1);
  posix_spawn_file_actions_adddup2(&actions, err, 2);
  posix_spawn_file_actions_adddup2(&actions, release[0], 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all;
  sigfillset(&all);
  sigset_t waited;  // the supervisor takes these with sigtimedwait
  sigemptyset(&waited);
  for (const int sig : {SIGCHLD, SIGTERM, SIGUSR1, SIGINT, SIGHUP}) sigaddset(&waited, sig);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &waited);
  posix_spawnattr_setflags(&attr, static_cast<short>(POSIX_SPAWN_SETSIGDEF |
                                                     POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID));
  pid_t supervisor = -1;
  const int spawned =
      posix_spawn(&supervisor, supervisor_.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  for (const int fd : {out, err, release[0]}) close(fd);
  if (spawned != 0) {
    close(release[1]);
    return MakeError(ErrorCode::kIoError,
                     fmt::format("posix_spawn {}: {}", supervisor_, std::strerror(spawned)));
  }
  const int64_t started_us = RealtimeUs();
  const Active active{.supervisor = supervisor,
                      .start_ticks = ProcStartTicks(supervisor),
                      .child = true,
                      .started_at_us = started_us};
  json limits = {{"mode", limits_.cgroup ? "cgroup" : "rlimit"},
                 {"memory_bytes_max", options_.memory_bytes_max},
                 {"nofile_max", options_.nofile_max}};
  if (limits_.cgroup) {
    limits["cgroup"] = cgroup;
    limits["cpu_percent_max"] = options_.cpu_percent_max;
  } else {
    limits["reason"] = limits_.reason;
  }
  const json record = {{"job", spec.job},
                       {"run", spec.run},
                       {"argv", spec.argv},
                       {"program", program},
                       {"env", env},
                       {"walltime_s", spec.walltime_s},
                       {"kill_grace_s", spec.kill_grace_s},
                       {"limits", limits},
                       {"supervisor_pid", supervisor},
                       {"supervisor_start_ticks", active.start_ticks},
                       {"started_at_us", started_us}};
  try {
    WriteFileAtomically(fmt::format("{}/run-{}.json", dir, spec.run), record.dump() + "\n");
  } catch (const fs::filesystem_error& error) {
    close(release[1]);  // the supervisor reads EOF and runs nothing
    waitpid(supervisor, nullptr, 0);
    return MakeError(ErrorCode::kIoError, error.what());
  }
  // Recorded: let it run.
  WriteAll(release[1], "g", 1);
  close(release[1]);
  return active;
}

void LocalExecutor::Stop(const std::string& job, uint32_t run, EndHow how) {
  const auto found = active_.find({job, run});
  if (found == active_.end()) return;
  Active& active = found->second;
  if (active.launching) {
    if (!active.stop_how) active.stop_how = how;  // sent once it is launched
    return;
  }
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
  std::vector<Launched> launched;
  {
    std::lock_guard lock(mutex_);
    launched.swap(done_);
  }
  for (Launched& each : launched) {
    const auto found = active_.find(each.key);
    if (found == active_.end()) continue;
    if (!each.active.ok()) {
      // Not started: it ends at once as a program that could not be executed (126), and
      // says why in its stderr.
      const std::string message = "atrium: cannot launch: " + each.active.error().ToString() + "\n";
      const int fd = open((RunDir(each.key.first) + "/stderr").c_str(),
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        WriteAll(fd, message.data(), message.size());
        close(fd);
      }
      const int64_t now = RealtimeUs();
      pending_.push_back(RunEvent{.kind = RunEvent::Kind::kEnded,
                                  .job = each.key.first,
                                  .run = each.key.second,
                                  .started_at_us = now,
                                  .ended_at_us = now,
                                  .exit_code = 126});
      active_.erase(found);
      continue;
    }
    const std::optional<EndHow> stop = found->second.stop_how;
    found->second = *each.active;
    pending_.push_back(RunEvent{.kind = RunEvent::Kind::kStarted,
                                .job = each.key.first,
                                .run = each.key.second,
                                .started_at_us = found->second.started_at_us});
    if (stop) Stop(each.key.first, each.key.second, *stop);
  }
  std::vector<RunEvent> events = std::move(pending_);
  pending_.clear();
  for (auto it = active_.begin(); it != active_.end();) {
    const auto& [key, active] = *it;
    if (active.launching) {
      ++it;
      continue;
    }
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
  // A run that started and ended since the last poll (a short job) is reported by its end
  // alone: the end carries its start, so the core takes one op instead of two.
  std::set<std::pair<std::string, uint32_t>> ended;
  for (const RunEvent& event : events) {
    if (event.kind == RunEvent::Kind::kEnded) ended.emplace(event.job, event.run);
  }
  if (!ended.empty()) {
    std::erase_if(events, [&](const RunEvent& event) {
      return event.kind == RunEvent::Kind::kStarted && ended.contains({event.job, event.run});
    });
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
