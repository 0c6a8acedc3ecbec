#include "exec/slurm_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "exec/local_executor.h"

extern char** environ;

namespace atrium::exec {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int64_t MonotonicUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000;
}

int64_t RealtimeUs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000;
}

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
}

std::optional<EndHow> ParseHow(std::string_view text) {
  for (EndHow how : {EndHow::kExited, EndHow::kWalltime, EndHow::kCancelled, EndHow::kPreempted,
                     EndHow::kLost}) {
    if (ToString(how) == text) return how;
  }
  return std::nullopt;
}

bool Ended(std::string_view state) {
  return state != "PENDING" && state != "RUNNING" && state != "CONFIGURING" &&
         state != "SUSPENDED" && state != "REQUEUED" && state != "REQUEUE_HOLD" &&
         state != "REQUEUE_FED" && state != "RESIZING" && state != "SIGNALING" &&
         state != "STAGE_OUT" && state != "COMPLETING";
}

}  // namespace

Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env) {
  if (argv.empty()) return MakeError(ErrorCode::kInvalidArgument, "no command");
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return MakeError(ErrorCode::kUnavailable, "pipe failed");
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return MakeError(ErrorCode::kUnavailable, "pipe failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<char*> args = CStrings(argv);
  std::vector<char*> envp = CStrings(env);
  pid_t pid = -1;
  const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(),
                                   env.empty() ? environ : envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (spawned != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return MakeError(ErrorCode::kUnavailable,
                     fmt::format("cannot run {}: {}", argv[0], std::strerror(spawned)));
  }
  CommandResult result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buffer[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = read(fds[i].fd, buffer, sizeof buffer);
      if (got > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const pollfd& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

Result<std::vector<SlurmJob>> ParseSqueueJson(std::string_view text) {
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("jobs") || !doc["jobs"].is_array()) {
    return MakeError(ErrorCode::kParseError, "squeue --json: no jobs array");
  }
  std::vector<SlurmJob> jobs;
  jobs.reserve(doc["jobs"].size());
  for (const json& item : doc["jobs"]) {
    if (!item.is_object())
      return MakeError(ErrorCode::kParseError, "squeue --json: a job is not an object");
    SlurmJob job;
    const auto integer = [&](const char* key) -> int64_t {
      const auto found = item.find(key);
      return found != item.end() && found->is_number_integer() ? found->get<int64_t>() : 0;
    };
    const auto text_of = [&](const char* key) -> std::string {
      const auto found = item.find(key);
      return found != item.end() && found->is_string() ? found->get<std::string>() : "";
    };
    job.id = integer("job_id");
    job.name = text_of("name");
    job.state = text_of("job_state");
    job.start_s = integer("start_time");
    job.end_s = integer("end_time");
    job.wait_status = integer("exit_code");
    job.nodes = text_of("nodes");
    job.standard_output = text_of("standard_output");
    if (job.id <= 0 || job.state.empty()) {
      return MakeError(ErrorCode::kParseError, "squeue --json: a job without job_id or job_state");
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

SlurmExecutor::SlurmExecutor(SlurmExecutorOptions options) : options_(std::move(options)) {
  for (size_t i = 0; i < options_.atrium_nodes.size(); ++i) {
    const std::string& atrium = options_.atrium_nodes[i];
    const std::string& slurm = options_.slurm.nodes.size() == options_.atrium_nodes.size()
                                   ? options_.slurm.nodes[i]
                                   : atrium;
    slurm_name_[atrium] = slurm;
    atrium_name_[slurm] = atrium;
  }
}

std::string SlurmExecutor::RunDir(const std::string& job) const {
  return (fs::path(options_.jobs_dir) / job).string();
}

std::string SlurmExecutor::JobName(const std::string& job, uint32_t run) const {
  return fmt::format("{}-{}-{}", options_.job_name_prefix, job, run);
}

bool SlurmExecutor::ParseJobName(const std::string& name, std::string* job, uint32_t* run) const {
  const std::string prefix = options_.job_name_prefix + "-";
  if (name.rfind(prefix, 0) != 0) return false;
  const size_t dash = name.rfind('-');
  if (dash == std::string::npos || dash < prefix.size() + 1 || dash + 1 >= name.size())
    return false;
  uint64_t number = 0;
  for (size_t i = dash + 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || number > UINT32_MAX / 10) return false;
    number = number * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  if (number == 0 || number > UINT32_MAX) return false;
  *job = name.substr(prefix.size(), dash - prefix.size());
  *run = static_cast<uint32_t>(number);
  return true;
}

bool SlurmExecutor::Owns(const SlurmJob& listed, std::string* job, uint32_t* run) const {
  if (!ParseJobName(listed.name, job, run)) return false;
  // squeue --json reports the --output path as given; an older squeue that omits it
  // leaves the name alone to decide.
  return listed.standard_output.empty() || listed.standard_output == RunDir(*job) + "/stdout";
}

std::string SlurmExecutor::BatchScript(const std::vector<std::string>& argv) {
  std::string script = "#!/bin/sh\n# written by atrium: runs the job's argv as it is\nexec";
  for (const std::string& arg : argv) {
    script += " '";
    for (const char c : arg) script += c == '\'' ? std::string("'\\''") : std::string(1, c);
    script += "'";
  }
  return script + "\n";
}

std::vector<std::string> SlurmExecutor::SbatchArgv(const RunSpec& spec) const {
  const std::string dir = RunDir(spec.job);
  std::string nodelist;
  for (const std::string& node : spec.nodes) {
    const auto found = slurm_name_.find(node);
    nodelist += (nodelist.empty() ? "" : ",") + (found != slurm_name_.end() ? found->second : node);
  }
  const int64_t nodes = std::max<int64_t>(static_cast<int64_t>(spec.nodes.size()), 1);
  // Slurm's limit is in minutes: the walltime and the grace, rounded up, plus one minute,
  // so Atrium's own enforcement (to the second) always acts first.
  const int64_t minutes = (spec.walltime_s + spec.kill_grace_s + 59) / 60 + 1;
  std::vector<std::string> argv = {"sbatch",
                                   "--parsable",
                                   "--job-name=" + JobName(spec.job, spec.run),
                                   "--nodelist=" + nodelist,
                                   fmt::format("--nodes={}", nodes),
                                   "--ntasks-per-node=1",
                                   fmt::format("--time={}", minutes),
                                   "--no-requeue",
                                   "--chdir=" + dir,
                                   "--output=" + dir + "/stdout",
                                   "--error=" + dir + "/stderr",
                                   "--open-mode=append",
                                   "--export=ALL"};
  if (!options_.slurm.partition.empty()) argv.push_back("--partition=" + options_.slurm.partition);
  if (!options_.slurm.gres.empty()) {
    argv.push_back(fmt::format("--gres={}:{}", options_.slurm.gres, spec.chips / nodes));
  }
  argv.push_back(fmt::format("{}/run-{}.sh", dir, spec.run));
  return argv;
}

bool SlurmExecutor::Refresh() {
  const Result<CommandResult> ran = RunCommand({"squeue", "--json"});
  listed_at_mono_us_ = MonotonicUs();
  if (!ran.ok() || ran->exit_code != 0) return false;
  Result<std::vector<SlurmJob>> jobs = ParseSqueueJson(ran->out);
  if (!jobs.ok()) return false;
  listing_.clear();
  by_name_.clear();
  for (SlurmJob& job : *jobs) {
    std::string id;
    uint32_t run = 0;
    if (!Owns(job, &id, &run)) continue;
    int64_t& newest = by_name_[job.name];
    newest = std::max(newest, job.id);
    listing_.emplace(job.id, std::move(job));
  }
  listed_ = true;
  return true;
}

bool SlurmExecutor::Tracks(const std::string& job, uint32_t run) const {
  return active_.contains({job, run});
}

std::vector<std::pair<std::string, uint32_t>> SlurmExecutor::Tracked() const {
  std::vector<std::pair<std::string, uint32_t>> out;
  out.reserve(active_.size());
  for (const auto& [key, active] : active_) out.push_back(key);
  return out;
}

Status SlurmExecutor::Ensure(const RunSpec& spec) {
  const Key key{spec.job, spec.run};
  if (active_.contains(key)) return OkStatus();
  const std::string dir = RunDir(spec.job);
  const std::string id_path = fmt::format("{}/slurm-{}.id", dir, spec.run);
  Active active{
      .walltime_s = spec.walltime_s, .grace_s = spec.kill_grace_s, .atrium_nodes = spec.nodes};
  std::error_code ec;
  const bool submitted_before = fs::exists(id_path, ec);
  if (!listed_ && !Refresh()) {
    // Slurm does not answer: nothing can be decided (a second submission could run the
    // job twice); the runner tries again on its next pass.
    return MakeError(ErrorCode::kUnavailable, "slurmctld does not answer squeue");
  }
  const auto named = by_name_.find(JobName(spec.job, spec.run));
  if (named != by_name_.end()) {
    // Launched before (this process or a previous one): adopt it; Poll reports its start
    // and end as Slurm shows them.
    active.slurm_id = named->second;
    const std::string stop = ReadFile(fmt::format("{}/run-{}.stop", dir, spec.run));
    if (const auto how = ParseHow(stop.substr(0, stop.find('\n'))); how && !stop.empty()) {
      active.stop_how = *how;
      active.term_at_mono_us = MonotonicUs();
    }
    active_.emplace(key, std::move(active));
    return OkStatus();
  }
  if (submitted_before) {
    // Submitted, and Slurm no longer knows it: it ended while the service was away and
    // was purged (MinJobAge), or slurmctld lost its state. No trace of how: lost, ended
    // when its output last changed.
    int64_t ended_us = RealtimeUs();
    for (const char* name : {"stdout", "stderr"}) {
      const auto written = fs::last_write_time(fs::path(dir) / name, ec);
      if (!ec) {
        ended_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::file_clock::to_sys(written).time_since_epoch())
                       .count();
      }
    }
    const int64_t started_us = std::stoll("0" + ReadFile(id_path + ".started"));
    pending_.push_back(RunEvent{.kind = RunEvent::Kind::kEnded,
                                .job = spec.job,
                                .run = spec.run,
                                .started_at_us = started_us > 0 ? started_us : ended_us,
                                .ended_at_us = ended_us,
                                .how = EndHow::kLost});
    return OkStatus();
  }
  fs::create_directories(dir, ec);
  if (ec) return MakeError(ErrorCode::kIoError, "cannot create " + dir + ": " + ec.message());
  WriteFileAtomically(fmt::format("{}/run-{}.sh", dir, spec.run), BatchScript(spec.argv));
  std::vector<std::string> env = LocalExecutor::JobEnvironment(spec);
  if (const char* conf = std::getenv("SLURM_CONF"))
    env.push_back(std::string("SLURM_CONF=") + conf);
  const Result<CommandResult> ran = RunCommand(SbatchArgv(spec), env);
  if (!ran.ok()) return ran.error();
  int64_t slurm_id = 0;
  const std::string out = ran->out.substr(0, ran->out.find_first_of(";\n"));
  if (ran->exit_code != 0 || out.empty() ||
      !std::all_of(out.begin(), out.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return MakeError(ErrorCode::kUnavailable,
                     fmt::format("sbatch refused {}: {}", JobName(spec.job, spec.run), ran->err));
  }
  slurm_id = std::stoll(out);
  WriteFileAtomically(id_path, fmt::format("{}\n", slurm_id));
  active.slurm_id = slurm_id;
  active_.emplace(key, std::move(active));
  return OkStatus();
}

void SlurmExecutor::Signal(const Key& key, Active& active, const char* signal) {
  std::vector<std::string> argv = {"scancel"};
  if (signal != nullptr) {
    argv.emplace_back("--full");
    argv.emplace_back(std::string("--signal=") + signal);
  }
  argv.push_back(std::to_string(active.slurm_id));
  (void)key;
  (void)RunCommand(argv);
}

void SlurmExecutor::Stop(const std::string& job, uint32_t run, EndHow how) {
  const auto found = active_.find({job, run});
  if (found == active_.end()) return;
  Active& active = found->second;
  if (active.stop_how != EndHow::kExited) return;  // asked already
  active.stop_how = how;
  active.term_at_mono_us = MonotonicUs();
  WriteFileAtomically(fmt::format("{}/run-{}.stop", RunDir(job), run),
                      std::string(ToString(how)) + "\n");
  // Still waiting in Slurm's queue: taken out of it; else SIGTERM to all its processes.
  Signal(found->first, active, active.started_at_us == 0 ? nullptr : "TERM");
}

RunEvent SlurmExecutor::EndOf(const Key& key, const Active& active, const SlurmJob& slurm) {
  RunEvent event{.kind = RunEvent::Kind::kEnded, .job = key.first, .run = key.second};
  const int64_t end_s = slurm.end_s > 0 ? slurm.end_s : RealtimeUs() / 1'000'000;
  const int64_t start_s = slurm.start_s > 0 ? std::min(slurm.start_s, end_s) : end_s;
  event.started_at_us = active.started_at_us > 0 ? active.started_at_us : start_s * 1'000'000;
  event.ended_at_us = std::max(end_s * 1'000'000, event.started_at_us);
  const int status = static_cast<int>(slurm.wait_status);
  if (WIFSIGNALED(status)) {
    event.signal = WTERMSIG(status);
    event.exit_code = -1;
  } else {
    event.exit_code = WEXITSTATUS(status);
  }
  if (active.stop_how != EndHow::kExited) {
    event.how = active.stop_how;
  } else if (slurm.state == "TIMEOUT" || slurm.state == "DEADLINE") {
    event.how = EndHow::kWalltime;
  } else if (slurm.state == "NODE_FAIL" || slurm.state == "BOOT_FAIL") {
    event.how = EndHow::kLost;
    event.nodes_down = active.atrium_nodes;
  }
  if (event.how == EndHow::kExited && slurm.state == "CANCELLED" && event.signal == 0 &&
      event.exit_code == 0) {
    event.signal = 15;  // cancelled in Slurm by someone else (scancel): not a success
    event.exit_code = -1;
  }
  return event;
}

std::vector<RunEvent> SlurmExecutor::Poll() {
  std::vector<RunEvent> events = std::move(pending_);
  pending_.clear();
  if (active_.empty()) return events;
  const int64_t now_mono = MonotonicUs();
  if (listed_at_mono_us_ >= 0 && now_mono - listed_at_mono_us_ < options_.poll_interval_ms * 1000) {
    return events;
  }
  if (!Refresh()) return events;  // slurmctld away: follow again once it answers
  const int64_t now_us = RealtimeUs();
  std::vector<RunEvent> ends;
  for (auto it = active_.begin(); it != active_.end();) {
    const Key& key = it->first;
    Active& active = it->second;
    const auto found = listing_.find(active.slurm_id);
    if (found == listing_.end()) {
      if (++active.missing_polls >= 3) {
        ends.push_back(
            RunEvent{.kind = RunEvent::Kind::kEnded,
                     .job = key.first,
                     .run = key.second,
                     .started_at_us = active.started_at_us > 0 ? active.started_at_us : now_us,
                     .ended_at_us = now_us,
                     .how = EndHow::kLost});
        it = active_.erase(it);
        continue;
      }
      ++it;
      continue;
    }
    active.missing_polls = 0;
    const SlurmJob& slurm = found->second;
    if (active.started_at_us == 0 && slurm.start_s > 0 && slurm.state != "PENDING") {
      active.started_at_us = slurm.start_s * 1'000'000;
      WriteFileAtomically(fmt::format("{}/slurm-{}.id.started", RunDir(key.first), key.second),
                          std::to_string(active.started_at_us));
      events.push_back(RunEvent{.kind = RunEvent::Kind::kStarted,
                                .job = key.first,
                                .run = key.second,
                                .started_at_us = active.started_at_us});
    }
    if (Ended(slurm.state)) {
      ends.push_back(EndOf(key, active, slurm));
      it = active_.erase(it);
      continue;
    }
    if (active.started_at_us > 0 && active.stop_how == EndHow::kExited &&
        now_us >= active.started_at_us + active.walltime_s * 1'000'000) {
      active.stop_how = EndHow::kWalltime;
      active.term_at_mono_us = now_mono;
      WriteFileAtomically(fmt::format("{}/run-{}.stop", RunDir(key.first), key.second),
                          "walltime\n");
      Signal(key, active, "TERM");
    } else if (active.stop_how != EndHow::kExited && !active.killed &&
               now_mono >= active.term_at_mono_us + active.grace_s * 1'000'000) {
      active.killed = true;
      Signal(key, active, active.started_at_us == 0 ? nullptr : "KILL");
    }
    ++it;
  }
  events.insert(events.end(), ends.begin(), ends.end());
  return events;
}

std::string SlurmAccountName(const std::string& program, const std::string& grant) {
  std::string name = "atrium_" + program + "_" + grant;
  for (char& c : name) {
    const auto u = static_cast<unsigned char>(c);
    c = std::isalnum(u) != 0 ? static_cast<char>(std::tolower(u)) : '_';
  }
  return name;
}

Result<int64_t> ChipMinutes(int64_t available_micro, int64_t price_per_chip_hour_micro) {
  if (price_per_chip_hour_micro <= 0) {
    return MakeError(ErrorCode::kInvalidArgument, "a price per chip-hour must be positive",
                     "price");
  }
  if (available_micro <= 0) return int64_t{0};
  const __int128 minutes = static_cast<__int128>(available_micro) * 60 / price_per_chip_hour_micro;
  return static_cast<int64_t>(std::min<__int128>(minutes, std::numeric_limits<int64_t>::max()));
}

Result<std::vector<std::vector<std::string>>> SacctmgrCommands(
    const std::string& cluster_name, const std::string& parent, const std::string& gres,
    const std::vector<AccountingGrant>& grants) {
  if (cluster_name.empty() || parent.empty() || gres.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "cluster, parent and gres are required");
  }
  std::vector<std::vector<std::string>> commands;
  commands.push_back({"sacctmgr", "-i", "add", "account", parent, "cluster=" + cluster_name,
                      "description=atrium grants"});
  for (const AccountingGrant& grant : grants) {
    ATRIUM_ASSIGN_OR_RETURN(const int64_t minutes,
                            ChipMinutes(grant.available_micro, grant.price_per_chip_hour_micro));
    const std::string account = SlurmAccountName(grant.program, grant.grant);
    commands.push_back({"sacctmgr", "-i", "add", "account", account, "parent=" + parent,
                        "cluster=" + cluster_name,
                        "description=" + grant.program + "/" + grant.grant});
    commands.push_back({"sacctmgr", "-i", "modify", "account", "where", "name=" + account,
                        "cluster=" + cluster_name, "set",
                        fmt::format("GrpTRESMins=gres/{}={}", gres, minutes)});
  }
  return commands;
}

}  // namespace atrium::exec
