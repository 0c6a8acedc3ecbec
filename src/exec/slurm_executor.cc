#include "exec/slurm_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "exec/local_executor.h"

extern char** environ;

namespace atrium::exec {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Whether sbatch's error says slurmctld answered and refused the job, not that it could
// not be reached or was too busy (those pass: the run is tried again). sbatch prints
// "sbatch: error: Batch job submission failed: <reason>" for a refusal.
bool SbatchRefused(std::string_view err) {
  if (err.find("Batch job submission failed") == std::string_view::npos) return false;
  for (const std::string_view transient :
       {"Unable to contact slurm controller", "Socket timed out", "temporarily unable",
        "Resource temporarily unavailable", "Slurmctld is busy", "Connection refused",
        "Zero Bytes were transmitted"}) {
    if (err.find(transient) != std::string_view::npos) return false;
  }
  return true;
}

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

Result<std::unique_ptr<BackgroundCommand>> BackgroundCommand::Start(
    const std::vector<std::string>& argv, const std::vector<std::string>& env, int64_t timeout_ms) {
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
  // Its own process group, so a command that outlives its bound is killed with whatever
  // it started (a wrapper script's children too).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args = CStrings(argv);
  std::vector<char*> envp = CStrings(env);
  pid_t pid = -1;
  const int spawned = posix_spawnp(&pid, args[0], &actions, &attr, args.data(),
                                   env.empty() ? environ : envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (spawned != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return MakeError(ErrorCode::kUnavailable,
                     fmt::format("cannot run {}: {}", argv[0], std::strerror(spawned)));
  }
  auto command = std::unique_ptr<BackgroundCommand>(new BackgroundCommand());
  command->name_ = argv[0];
  command->pid_ = pid;
  command->fds_[0] = out_pipe[0];
  command->fds_[1] = err_pipe[0];
  command->timeout_ms_ = timeout_ms;
  command->started_mono_us_ = MonotonicUs();
  command->deadline_mono_us_ = command->started_mono_us_ + std::max<int64_t>(timeout_ms, 1) * 1000;
  return command;
}

BackgroundCommand::~BackgroundCommand() {
  for (int& fd : fds_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  if (pid_ > 0) {
    // Abandoned while it runs: it and its group end now.
    kill(-pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

std::optional<Result<CommandResult>> BackgroundCommand::Check(int64_t wait_ms) {
  if (pid_ <= 0) return std::nullopt;
  const int64_t wait_until_us = MonotonicUs() + std::max<int64_t>(wait_ms, 0) * 1000;
  char buffer[65536];
  std::string* sinks[2] = {&result_.out, &result_.err};
  bool timed_out = false;
  bool too_long = false;
  // Read what is there; wait for more only within wait_ms and the bound.
  while (fds_[0] >= 0 || fds_[1] >= 0) {
    const int64_t now_us = MonotonicUs();
    if (now_us >= deadline_mono_us_) {
      timed_out = true;
      break;
    }
    pollfd fds[2] = {{fds_[0], POLLIN, 0}, {fds_[1], POLLIN, 0}};
    const int64_t wait_us = std::min(wait_until_us, deadline_mono_us_) - now_us;
    const int ready =
        poll(fds, 2,
             wait_us <= 0 ? 0 : static_cast<int>(std::min<int64_t>((wait_us + 999) / 1000, 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      if (MonotonicUs() >= wait_until_us) break;  // nothing more within wait_ms
      continue;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds_[i] < 0 || fds[i].revents == 0) continue;
      const ssize_t got = read(fds_[i], buffer, sizeof buffer);
      if (got > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(got));
        if (sinks[i]->size() > kCommandOutputBytesMax) too_long = true;
      } else if (got == 0 || errno != EINTR) {
        close(fds_[i]);
        fds_[i] = -1;
      }
    }
    if (too_long) break;
  }
  if (!timed_out && !too_long) {
    if (fds_[0] >= 0 || fds_[1] >= 0) return std::nullopt;  // still printing
    // The output closed: the command is ending. Reaped now, or on a later call (a command
    // that closed its output and went on running is killed at the bound).
    int status = 0;
    for (;;) {
      const pid_t reaped = waitpid(pid_, &status, WNOHANG);
      if (reaped < 0 && errno == EINTR) continue;
      if (reaped == pid_ || reaped < 0) {
        const bool ended = reaped == pid_;
        pid_ = -1;
        result_.exit_code = ended && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return Result<CommandResult>(std::move(result_));
      }
      if (MonotonicUs() >= deadline_mono_us_) {
        timed_out = true;
        break;
      }
      if (MonotonicUs() >= wait_until_us) return std::nullopt;
      usleep(200);
    }
  }
  for (int& fd : fds_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  kill(-pid_, SIGKILL);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (timed_out) {
    return Result<CommandResult>(
        MakeError(ErrorCode::kUnavailable,
                  fmt::format("{} did not end within {} ms: killed", name_, timeout_ms_)));
  }
  return Result<CommandResult>(MakeError(
      ErrorCode::kLimitExceeded,
      fmt::format("{} printed more than {} bytes: killed", name_, kCommandOutputBytesMax)));
}

Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env, int64_t timeout_ms) {
  ATRIUM_ASSIGN_OR_RETURN(std::unique_ptr<BackgroundCommand> command,
                          BackgroundCommand::Start(argv, env, timeout_ms));
  for (;;) {
    if (std::optional<Result<CommandResult>> done = command->Check(1000)) return std::move(*done);
  }
}

Result<std::vector<SlurmJob>> ParseSqueueJson(std::string_view text) {
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("jobs") || !doc["jobs"].is_array()) {
    return MakeError(ErrorCode::kParseError, "squeue --json: no jobs array");
  }
  // squeue exits 0 with an empty list and an error when slurmctld does not answer: that
  // is no answer, not "no jobs".
  if (const auto errors = doc.find("errors");
      errors != doc.end() && errors->is_array() && !errors->empty()) {
    return MakeError(ErrorCode::kUnavailable,
                     fmt::format("squeue --json: {}", (*errors)[0].dump()));
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
  if (!options_.slurm.jobcomp_loc.empty()) {
    jobcomp_ = std::make_unique<JobcompLog>(options_.slurm.jobcomp_loc);
  }
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

bool SlurmExecutor::BackingOff() const {
  const int64_t now_us = MonotonicUs();
  // An squeue that takes this long is a controller that is down or hung: sbatch and
  // scancel would hold the runner's thread as long, so they wait for its answer.
  if (squeue_ != nullptr && now_us - squeue_->started_mono_us() > options_.slow_answer_ms * 1000) {
    return true;
  }
  return backoff_ms_ > 0 && now_us < backoff_until_mono_us_;
}

void SlurmExecutor::BackOff() {
  backoff_ms_ = backoff_ms_ == 0 ? options_.backoff_min_ms
                                 : std::min(backoff_ms_ * 2, options_.backoff_max_ms);
  backoff_until_mono_us_ = MonotonicUs() + backoff_ms_ * 1000;
}

Result<CommandResult> SlurmExecutor::Command(const std::vector<std::string>& argv,
                                             const std::vector<std::string>& env) {
  if (BackingOff()) {
    return MakeError(
        ErrorCode::kUnavailable,
        fmt::format("Slurm did not answer lately: {} waits for the back-off", argv.front()));
  }
  Result<CommandResult> ran = RunCommand(argv, env, options_.slurm.command_timeout_s * 1000);
  // The clients say so when they could not reach slurmctld (after retrying for
  // MessageTimeout): that is no answer either.
  if ((!ran.ok() && ran.error().code == ErrorCode::kUnavailable) ||
      (ran.ok() && ran->exit_code != 0 &&
       ran->err.find("Unable to contact slurm controller") != std::string::npos)) {
    BackOff();
    if (ran.ok()) {
      return MakeError(ErrorCode::kUnavailable,
                       fmt::format("{}: {}", argv.front(), ran->err.substr(0, 200)));
    }
  } else {
    backoff_ms_ = 0;
  }
  return ran;
}

bool SlurmExecutor::Refresh() {
  if (squeue_ != nullptr) {
    // One is under way (Poll's): its answer, within its bound.
    std::optional<Result<CommandResult>> done;
    while (!(done = squeue_->Check(1000))) {
    }
    squeue_.reset();
    return ApplyListing(*done);
  }
  if (BackingOff()) return false;
  return ApplyListing(
      RunCommand({"squeue", "--json"}, {}, options_.slurm.command_timeout_s * 1000));
}

bool SlurmExecutor::ApplyListing(const Result<CommandResult>& ran) {
  listed_at_mono_us_ = MonotonicUs();
  if (!ran.ok()) {
    if (ran.code() == ErrorCode::kUnavailable) BackOff();  // timed out
    return false;
  }
  if (ran->exit_code != 0) {
    BackOff();  // slurmctld down or restarting: squeue said so itself
    return false;
  }
  Result<std::vector<SlurmJob>> jobs = ParseSqueueJson(ran->out);
  if (!jobs.ok()) {
    if (jobs.code() == ErrorCode::kUnavailable) BackOff();
    return false;
  }
  backoff_ms_ = 0;
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

bool SlurmExecutor::Listed() {
  if (squeue_ == nullptr) {
    const int64_t now_mono = MonotonicUs();
    if (BackingOff() || (listed_at_mono_us_ >= 0 &&
                         now_mono - listed_at_mono_us_ < options_.poll_interval_ms * 1000)) {
      return false;
    }
    Result<std::unique_ptr<BackgroundCommand>> started =
        BackgroundCommand::Start({"squeue", "--json"}, {}, options_.slurm.command_timeout_s * 1000);
    if (!started.ok()) {
      listed_at_mono_us_ = now_mono;
      BackOff();
      return false;
    }
    squeue_ = std::move(*started);
  }
  std::optional<Result<CommandResult>> done = squeue_->Check(0);
  if (!done) return false;  // still waiting: the runner's thread goes on
  squeue_.reset();
  return ApplyListing(*done);
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
  // Asked to stop before (by a previous process): the same end is reported.
  const std::string stop = ReadFile(fmt::format("{}/run-{}.stop", dir, spec.run));
  if (const auto how = ParseHow(stop.substr(0, stop.find('\n'))); how && !stop.empty()) {
    active.stop_how = *how;
    active.term_at_mono_us = MonotonicUs();
  }
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
    active_.emplace(key, std::move(active));
    return OkStatus();
  }
  if (submitted_before) {
    // Submitted, and Slurm no longer lists it: it ended while the service was away and was
    // purged (MinJobAge), or slurmctld lost its state. The jobcomp record says how it
    // ended, if Slurm wrote one.
    active.slurm_id = std::stoll("0" + ReadFile(id_path).substr(0, 18));
    if (std::optional<RunEvent> end = EndFromJobcomp(key, active)) {
      pending_.push_back(std::move(*end));
      return OkStatus();
    }
    // No trace of how: lost, ended when its output last changed.
    int64_t ended_us = RealtimeUs();
    for (const char* name : {"stdout", "stderr"}) {
      const auto written = fs::last_write_time(fs::path(dir) / name, ec);
      if (!ec) {
        ended_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::file_clock::to_sys(written).time_since_epoch())
                       .count();
      }
    }
    const int64_t started_us = std::stoll("0" + ReadFile(id_path + ".started").substr(0, 18));
    pending_.push_back(RunEvent{.kind = RunEvent::Kind::kEnded,
                                .job = spec.job,
                                .run = spec.run,
                                .started_at_us = started_us > 0 ? started_us : ended_us,
                                .ended_at_us = ended_us,
                                .how = EndHow::kLost});
    return OkStatus();
  }
  if (BackingOff()) {
    return MakeError(ErrorCode::kUnavailable, "Slurm did not answer lately: sbatch waits");
  }
  fs::create_directories(dir, ec);
  if (ec) return MakeError(ErrorCode::kIoError, "cannot create " + dir + ": " + ec.message());
  WriteFileAtomically(fmt::format("{}/run-{}.sh", dir, spec.run), BatchScript(spec.argv));
  std::vector<std::string> env = LocalExecutor::JobEnvironment(spec);
  if (const char* conf = std::getenv("SLURM_CONF"))
    env.push_back(std::string("SLURM_CONF=") + conf);
  const Result<CommandResult> ran = Command(SbatchArgv(spec), env);
  if (!ran.ok()) return ran.error();
  int64_t slurm_id = 0;
  const std::string out = ran->out.substr(0, ran->out.find_first_of(";\n"));
  if (ran->exit_code != 0 || out.empty() || out.size() > 18 ||
      !std::all_of(out.begin(), out.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Slurm answered and refused the job (a bad partition, a node it does not know): the
    // run fails (the runner ends it with exit 126). Anything else may pass: try again.
    const ErrorCode code = ran->exit_code != 0 && SbatchRefused(ran->err)
                               ? ErrorCode::kInvalidArgument
                               : ErrorCode::kUnavailable;
    return MakeError(code,
                     fmt::format("sbatch refused {}: {}", JobName(spec.job, spec.run), ran->err));
  }
  slurm_id = std::stoll(out);
  WriteFileAtomically(id_path, fmt::format("{}\n", slurm_id));
  active.slurm_id = slurm_id;
  active_.emplace(key, std::move(active));
  return OkStatus();
}

std::optional<RunEvent> SlurmExecutor::EndFromJobcomp(const Key& key, const Active& active) {
  if (jobcomp_ == nullptr || active.slurm_id <= 0) return std::nullopt;
  // Keeps the records of this data directory's runs (SlurmExecutor::Owns: the name, and
  // the work directory Atrium gave, as jobcomp has no output path).
  jobcomp_->CatchUp([this](const JobcompRecord& record) {
    std::string job;
    uint32_t run = 0;
    return ParseJobName(record.name, &job, &run) && record.work_dir == RunDir(job);
  });
  std::optional<JobcompRecord> record = jobcomp_->Take(active.slurm_id);
  if (!record || record->name != JobName(key.first, key.second)) return std::nullopt;
  const SlurmJob ended{.id = record->id,
                       .name = record->name,
                       .state = record->state,
                       .start_s = record->start_s,
                       .end_s = record->end_s,
                       .wait_status = record->WaitStatus(),
                       .nodes = record->nodes};
  return EndOf(key, active, ended);
}

bool SlurmExecutor::Signal(Active& active, const char* signal) {
  std::vector<std::string> argv = {"scancel"};
  if (signal != nullptr) {
    argv.emplace_back("--full");
    argv.emplace_back(std::string("--signal=") + signal);
  }
  argv.push_back(std::to_string(active.slurm_id));
  // A nonzero exit is an answer (the job had ended already).
  return Command(argv).ok();
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
  // Slurm not answering: Poll sends it once Slurm answers again.
  active.term_sent = Signal(active, active.started_at_us == 0 ? nullptr : "TERM");
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
  // scancel --full signals every process of the job, in no set order: a batch shell whose
  // child died first reports the child's death as its exit (128 + the signal) before its
  // own signal arrives. That is our signal, not the program's exit.
  const int sent = active.killed ? SIGKILL : active.term_sent ? SIGTERM : 0;
  if (sent != 0 && event.signal == 0 && event.exit_code == 128 + sent) {
    event.signal = sent;
    event.exit_code = -1;
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
  // squeue runs in the background: this pass uses its answer if it came, else goes on.
  if (!Listed()) return events;
  const int64_t now_mono = MonotonicUs();
  const int64_t now_us = RealtimeUs();
  std::vector<RunEvent> ends;
  for (auto it = active_.begin(); it != active_.end();) {
    const Key& key = it->first;
    Active& active = it->second;
    const auto found = listing_.find(active.slurm_id);
    if (found == listing_.end()) {
      // Purged (MinJobAge): the jobcomp record says how it ended.
      if (std::optional<RunEvent> end = EndFromJobcomp(key, active)) {
        ends.push_back(std::move(*end));
        it = active_.erase(it);
        continue;
      }
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
      active.term_sent = Signal(active, "TERM");
    } else if (active.stop_how != EndHow::kExited && !active.term_sent) {
      // Asked to stop while Slurm did not answer (or by a previous process): now.
      active.term_at_mono_us = now_mono;
      active.term_sent = Signal(active, active.started_at_us == 0 ? nullptr : "TERM");
    } else if (active.stop_how != EndHow::kExited && !active.killed &&
               now_mono >= active.term_at_mono_us + active.grace_s * 1'000'000) {
      active.killed = Signal(active, active.started_at_us == 0 ? nullptr : "KILL");
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
