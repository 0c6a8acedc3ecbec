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
// - A failing squeue (slurmctld down or restarting) changes nothing: the runs stay
//   tracked and are followed again once it answers. A run Slurm no longer knows for three
//   answered polls in a row (purged after MinJobAge while the service was down, or lost
//   with slurmctld's state) ends as lost.
//
// Commands are run with posix_spawn (no shell) by RunCommand; their stdout is parsed as
// JSON (nlohmann) or fixed, delimited formats.
//
//   SlurmExecutor slurm({.jobs_dir = "atrium-data/jobs", .slurm = pool.slurm,
//                        .atrium_nodes = {...}});
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "exec/executor.h"

namespace atrium::exec {

// What a command printed and how it ended.
struct CommandResult {
  int exit_code = -1;  // -1 if killed by a signal or not started
  std::string out;
  std::string err;
};
// Runs argv (argv[0] searched on PATH) with posix_spawn, stdin /dev/null, and returns its
// output. `env` empty: the service's environment. kUnavailable if it cannot be started.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env = {});

struct SlurmExecutorOptions {
  std::string jobs_dir = "atrium-data/jobs";
  cluster::SlurmPool slurm;
  std::vector<std::string> atrium_nodes;  // the pool's node names, in pool order
  std::string job_name_prefix = "atrium";
  int64_t poll_interval_ms = 200;
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
// not that.
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
    bool killed = false;
    int missing_polls = 0;
  };
  using Key = std::pair<std::string, uint32_t>;
  std::string RunDir(const std::string& job) const;
  // squeue --json now; false if slurmctld did not answer.
  bool Refresh();
  RunEvent EndOf(const Key& key, const Active& active, const SlurmJob& slurm);
  void Signal(const Key& key, Active& active, const char* signal);
  std::vector<std::string> DownNodes(const std::vector<std::string>& atrium_nodes);

  SlurmExecutorOptions options_;
  std::map<std::string, std::string> slurm_name_;   // Atrium node -> Slurm node
  std::map<std::string, std::string> atrium_name_;  // Slurm node -> Atrium node
  std::map<Key, Active> active_;
  std::vector<RunEvent> pending_;
  std::map<int64_t, SlurmJob> listing_;     // the last answered squeue, by Slurm id
  std::map<std::string, int64_t> by_name_;  // our job names -> newest Slurm id
  bool listed_ = false;
  int64_t listed_at_mono_us_ = -1;
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
