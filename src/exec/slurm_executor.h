// SlurmExecutor: carries out the placed runs of one `executor = "slurm"` pool through a
// real Slurm cluster, in dispatch mode: Atrium decides which run goes where and when,
// Slurm launches it on exactly those nodes.
//
// - Ensure: adopts the Slurm job named `PREFIX-J-N` (run N of job J) if Slurm still
//   knows it (a restarted service), else submits it with `sbatch --parsable`: the
//   placement's nodes mapped to Slurm names (--nodelist, --nodes), --partition,
//   --gres=NAME:K per node where the pool has a GRES, --time as a backstop (the walltime
//   plus the grace, rounded up to Slurm's minutes), --no-requeue, --chdir and
//   --output/--error (appended) under JOBS/J, and the job's environment (the local
//   executor's: ATRIUM_*, the device variable) exported by sbatch. The batch script
//   JOBS/J/run-N.sh execs argv (no shell in between); JOBS/J/slurm-N.id keeps the Slurm
//   job id.
// - Poll: at most every poll_interval_ms one `squeue --json` (22.05 prints every job
//   slurmctld still holds, ended ones for MinJobAge; no slurmdbd needed): RUNNING ->
//   started (Slurm's start time), an ended state -> ended with the wait status's exit
//   code or signal and Slurm's start and end times; TIMEOUT -> walltime, NODE_FAIL ->
//   lost with the run's nodes that `sinfo` shows down or drained. The walltime itself is
//   enforced here to the second (SIGTERM at the limit, SIGKILL after the grace, by
//   scancel), since Slurm's own limit counts whole minutes.
// - Stop: `scancel --full --signal=TERM`, then `--signal=KILL` after the grace (a run
//   still pending in Slurm: plain scancel). Why it was stopped is kept in
//   JOBS/J/run-N.stop, so a restarted service reports the same end.
// - Every Slurm command has a bound (the pool's slurm_command_timeout_s): past it the
//   command's process group is killed and the call answers kUnavailable. Poll's squeue
//   runs in the background (BackgroundCommand), so Poll never waits on Slurm; sbatch and
//   scancel wait while an squeue is slow. A command that got no answer (timed out, or
//   squeue failed: slurmctld down or restarting) changes nothing: the runs stay tracked,
//   and no Slurm command runs for a back-off (1 s doubling to 30 s; Ensure answers
//   kUnavailable meanwhile). The runs are followed again once it answers.
// - A run Slurm no longer lists (purged after MinJobAge while the service was down) is
//   looked up in the jobcomp record (the pool's slurm_jobcomp, slurm_jobcomp.h) by its
//   Slurm id, name and work directory, and settled with the end it records; not there for
//   three answered polls in a row (lost with slurmctld's state, or no record): lost.
//
// Commands are run with posix_spawn (no shell) by RunCommand; their stdout is parsed as
// JSON (nlohmann) or fixed, delimited formats.
//
//   SlurmExecutor slurm({.jobs_dir = "atrium-data/jobs", .slurm = pool.slurm,
//                        .atrium_nodes = {...}});
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "exec/executor.h"
#include "exec/slurm_jobcomp.h"

namespace atrium::exec {

// What a command printed and how it ended.
struct CommandResult {
  int exit_code = -1;  // -1 if killed by a signal or not started
  std::string out;
  std::string err;
};

// How long one Slurm command (squeue, sbatch, scancel, sinfo) may take, unless the pool's
// slurm_command_timeout_s says otherwise (the reason is at cluster::kSlurmCommandTimeoutDefaultS).
inline constexpr int64_t kSlurmCommandTimeoutDefaultMs =
    cluster::kSlurmCommandTimeoutDefaultS * 1000;
// After a Slurm command failed to get an answer (timed out, or squeue failed), no command
// runs for this long, doubling on each failure up to the max: a stuck slurmctld costs the
// runner's thread (which local runs share) one bounded wait per back-off, not every pass.
inline constexpr int64_t kSlurmBackoffMinMs = 1'000;
inline constexpr int64_t kSlurmBackoffMaxMs = 30'000;
// Poll's squeue runs in the background; while one has taken longer than this, sbatch and
// scancel wait (Ensure answers kUnavailable, a stop is sent later): slurmctld answers in
// milliseconds, and a client of one that is down holds its caller for MessageTimeout.
inline constexpr int64_t kSlurmSlowAnswerMs = 2'000;
// What a command may print: `squeue --json` is ~2 KB per job, so this holds MaxJobCount
// jobs of a large site many times over; more is not Slurm talking.
inline constexpr size_t kCommandOutputBytesMax = size_t{256} << 20;

// A command started and not waited for (argv[0] searched on PATH; posix_spawn, stdin
// /dev/null, a process group of its own), so a caller can go on while it runs: Check
// reads what it printed without blocking longer than asked, and gives its result once it
// ended. Past timeout_ms its group is killed with SIGKILL and reaped, and the result is
// kUnavailable; past kCommandOutputBytesMax, likewise, kLimitExceeded. Destroyed while it
// runs: killed and reaped.
class BackgroundCommand {
 public:
  static Result<std::unique_ptr<BackgroundCommand>> Start(const std::vector<std::string>& argv,
                                                          const std::vector<std::string>& env,
                                                          int64_t timeout_ms);
  ~BackgroundCommand();
  BackgroundCommand(const BackgroundCommand&) = delete;
  BackgroundCommand& operator=(const BackgroundCommand&) = delete;
  // Waits at most wait_ms (0: not at all); nullopt while it runs within its bound.
  std::optional<Result<CommandResult>> Check(int64_t wait_ms);
  int64_t started_mono_us() const { return started_mono_us_; }

 private:
  BackgroundCommand() = default;
  std::string name_;
  pid_t pid_ = -1;  // -1 once reaped
  int fds_[2] = {-1, -1};
  int64_t timeout_ms_ = 0;
  int64_t started_mono_us_ = 0;
  int64_t deadline_mono_us_ = 0;
  CommandResult result_;
};

// Runs argv (argv[0] searched on PATH) with posix_spawn in a process group of its own,
// stdin /dev/null, and returns its output. `env` empty: the service's environment.
// kUnavailable if it cannot be started or does not end within timeout_ms (its process
// group is then killed with SIGKILL and reaped); kLimitExceeded if it prints more than
// kCommandOutputBytesMax (killed likewise).
Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env = {},
                                 int64_t timeout_ms = kSlurmCommandTimeoutDefaultMs);

struct SlurmExecutorOptions {
  std::string jobs_dir = "atrium-data/jobs";
  cluster::SlurmPool slurm;               // slurm.command_timeout_s and slurm.jobcomp_loc included
  std::vector<std::string> atrium_nodes;  // the pool's node names, in pool order
  std::string job_name_prefix = "atrium";
  int64_t poll_interval_ms = 200;
  int64_t backoff_min_ms = kSlurmBackoffMinMs;
  int64_t backoff_max_ms = kSlurmBackoffMaxMs;
  int64_t slow_answer_ms = kSlurmSlowAnswerMs;
};

// One Slurm job as `squeue --json` shows it.
struct SlurmJob {
  int64_t id = 0;
  std::string name;
  std::string state;  // PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, CANCELLED, NODE_FAIL ...
  int64_t start_s = 0;
  int64_t end_s = 0;
  int64_t wait_status = 0;      // exit_code: the batch script's wait status
  std::string nodes;            // Slurm's hostlist
  std::string standard_output;  // the path its output goes to ("" if squeue omits it)
};
// Parses `squeue --json` (Slurm 22.05, openapi v0.0.38's job list). kParseError if it is
// not that; kUnavailable if it reports errors (slurmctld down: squeue then exits 0 with
// an empty list and "Failed while looking for jobs").
Result<std::vector<SlurmJob>> ParseSqueueJson(std::string_view text);

class SlurmExecutor final : public Executor {
 public:
  explicit SlurmExecutor(SlurmExecutorOptions options);
  SlurmExecutor(const SlurmExecutor&) = delete;
  SlurmExecutor& operator=(const SlurmExecutor&) = delete;

  Status Ensure(const RunSpec& spec) override;
  bool Tracks(const std::string& job, uint32_t run) const override;
  std::vector<std::pair<std::string, uint32_t>> Tracked() const override;
  void Stop(const std::string& job, uint32_t run, EndHow how) override;
  std::vector<RunEvent> Poll() override;

  // The sbatch command line for a run (the script path last) and the batch script.
  std::vector<std::string> SbatchArgv(const RunSpec& spec) const;
  static std::string BatchScript(const std::vector<std::string>& argv);
  // "atrium-J12-1"; and back (false if the name is not one of ours).
  std::string JobName(const std::string& job, uint32_t run) const;
  bool ParseJobName(const std::string& name, std::string* job, uint32_t* run) const;
  // Whether a job squeue lists is one of this service's runs: its name parses and its
  // output goes to this data directory's run directory (a second Atrium against the same
  // Slurm, or anyone's job of the same name, is a stranger). Sets *job and *run.
  bool Owns(const SlurmJob& listed, std::string* job, uint32_t* run) const;

 private:
  struct Active {
    int64_t slurm_id = 0;
    int64_t started_at_us = 0;  // 0 until Slurm shows it running
    int64_t walltime_s = 0;
    int64_t grace_s = 0;
    std::vector<std::string> atrium_nodes;
    EndHow stop_how = EndHow::kExited;  // kExited: not asked to stop
    int64_t term_at_mono_us = -1;
    bool term_sent = false;  // the first scancel of a stop got through
    bool killed = false;
    int missing_polls = 0;
  };
  using Key = std::pair<std::string, uint32_t>;
  std::string RunDir(const std::string& job) const;
  // squeue --json now (waiting for one under way); false if slurmctld did not answer.
  bool Refresh();
  // Poll's squeue: started in the background when due, its answer taken when it came;
  // true when a new listing arrived in this call.
  bool Listed();
  bool ApplyListing(const Result<CommandResult>& ran);
  RunEvent EndOf(const Key& key, const Active& active, const SlurmJob& slurm);
  // The run's end from the jobcomp record (a job Slurm no longer lists), if it is there.
  std::optional<RunEvent> EndFromJobcomp(const Key& key, const Active& active);
  // scancel; false if Slurm did not answer (then the executor backs off).
  bool Signal(Active& active, const char* signal);
  // A Slurm command within the pool's bound; a command that got no answer starts (or
  // lengthens) the back-off, one that did ends it.
  Result<CommandResult> Command(const std::vector<std::string>& argv,
                                const std::vector<std::string>& env = {});
  bool BackingOff() const;
  void BackOff();

  SlurmExecutorOptions options_;
  std::map<std::string, std::string> slurm_name_;   // Atrium node -> Slurm node
  std::map<std::string, std::string> atrium_name_;  // Slurm node -> Atrium node
  std::map<Key, Active> active_;
  std::vector<RunEvent> pending_;
  std::map<int64_t, SlurmJob> listing_;     // the last answered squeue, by Slurm id
  std::map<std::string, int64_t> by_name_;  // our job names -> newest Slurm id
  bool listed_ = false;
  int64_t listed_at_mono_us_ = -1;
  int64_t backoff_ms_ = 0;  // 0: Slurm answered last time
  int64_t backoff_until_mono_us_ = -1;
  std::unique_ptr<JobcompLog> jobcomp_;        // slurm.jobcomp_loc set
  std::unique_ptr<BackgroundCommand> squeue_;  // Poll's squeue, while it runs
};

// Accounting mode (docs/executors.md; for sites that keep Slurm's own scheduler): each
// grant is a Slurm account under `parent`, whose GrpTRESMins on the pool's GRES follows
// the grant's available balance: floor(balance x 60 / price per chip-hour) chip-minutes
// (0 when the balance is not positive, so no new job starts). Needs slurmdbd, which the
// test fixture does not run: Atrium only computes the commands here.
struct AccountingGrant {
  std::string program;
  std::string grant;
  int64_t available_micro = 0;            // the grant's available credits, micro-credits
  int64_t price_per_chip_hour_micro = 0;  // the pool's price, micro-credits
};
// The Slurm account of a grant: "atrium_<program>_<grant>", lowercased (Slurm's
// account names are), anything but [a-z0-9_] as '_'.
std::string SlurmAccountName(const std::string& program, const std::string& grant);
// The chip-minutes a balance buys at a price (kInvalidArgument for a price <= 0).
Result<int64_t> ChipMinutes(int64_t available_micro, int64_t price_per_chip_hour_micro);
// The sacctmgr command lines (argv, run with -i: no prompt) that create the parent
// account and each grant's account (idempotent: sacctmgr reports an existing one and
// changes nothing) and set each limit.
Result<std::vector<std::vector<std::string>>> SacctmgrCommands(
    const std::string& cluster_name, const std::string& parent, const std::string& gres,
    const std::vector<AccountingGrant>& grants);

}  // namespace atrium::exec
