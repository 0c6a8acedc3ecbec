// The Slurm executor's parts that need no Slurm: the sbatch line a placement becomes,
// the batch script, job names, `squeue --json` parsing, the process runner, and the
// accounting mode's sacctmgr commands. tests/slurm_test.cc drives real daemons.
#include "exec/slurm_executor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace atrium::exec {
namespace {

SlurmExecutor Mapped() {
  return SlurmExecutor({.jobs_dir = "/data/jobs",
                        .slurm = {.partition = "atrium", .gres = "gpu", .nodes = {"sn1", "sn2"}},
                        .atrium_nodes = {"gpu-n0000", "gpu-n0001"}});
}

bool Has(const std::vector<std::string>& argv, const std::string& arg) {
  return std::find(argv.begin(), argv.end(), arg) != argv.end();
}

TEST(SlurmExecutorTest, SbatchLineFollowsThePlacementAndTheMapping) {
  const SlurmExecutor slurm = Mapped();
  const RunSpec spec{.job = "J7",
                     .run = 2,
                     .argv = {"python", "train.py"},
                     .chips = 16,
                     .nodes = {"gpu-n0000", "gpu-n0001"},
                     .walltime_s = 90,
                     .kill_grace_s = 10};
  const std::vector<std::string> argv = slurm.SbatchArgv(spec);
  EXPECT_EQ(argv.front(), "sbatch");
  EXPECT_TRUE(Has(argv, "--parsable"));
  EXPECT_TRUE(Has(argv, "--job-name=atrium-J7-2"));
  EXPECT_TRUE(Has(argv, "--nodelist=sn1,sn2"));
  EXPECT_TRUE(Has(argv, "--nodes=2"));
  EXPECT_TRUE(Has(argv, "--gres=gpu:8"));  // per node
  EXPECT_TRUE(Has(argv, "--partition=atrium"));
  EXPECT_TRUE(Has(argv, "--time=3"));  // 100 s -> 2 minutes, plus one
  EXPECT_TRUE(Has(argv, "--no-requeue"));
  EXPECT_TRUE(Has(argv, "--output=/data/jobs/J7/stdout"));
  EXPECT_TRUE(Has(argv, "--error=/data/jobs/J7/stderr"));
  EXPECT_TRUE(Has(argv, "--chdir=/data/jobs/J7"));
  EXPECT_EQ(argv.back(), "/data/jobs/J7/run-2.sh");

  // Unmapped pools use the Atrium names; no GRES, no partition: neither option.
  const SlurmExecutor plain({.jobs_dir = "/j", .atrium_nodes = {"a", "b"}});
  const std::vector<std::string> bare = plain.SbatchArgv({.job = "J1", .run = 1, .nodes = {"b"}});
  EXPECT_TRUE(Has(bare, "--nodelist=b"));
  EXPECT_FALSE(std::any_of(bare.begin(), bare.end(), [](const std::string& arg) {
    return arg.starts_with("--gres") || arg.starts_with("--partition");
  }));
}

TEST(SlurmExecutorTest, BatchScriptExecsArgvQuoted) {
  EXPECT_EQ(SlurmExecutor::BatchScript({"sh", "-c", "echo 'hi' $HOME"}),
            "#!/bin/sh\n# written by atrium: runs the job's argv as it is\n"
            "exec 'sh' '-c' 'echo '\\''hi'\\'' $HOME'\n");
  // What the shell makes of it is the argv itself.
  const Result<CommandResult> ran =
      RunCommand({"sh", "-c", SlurmExecutor::BatchScript({"printf", "%s|", "a b", "it's", "$X"})});
  ASSERT_TRUE(ran.ok()) << ran.error().ToString();
  EXPECT_EQ(ran->out, "a b|it's|$X|");
}

TEST(SlurmExecutorTest, JobNamesRoundTrip) {
  const SlurmExecutor slurm = Mapped();
  std::string job;
  uint32_t run = 0;
  ASSERT_TRUE(slurm.ParseJobName(slurm.JobName("J12", 3), &job, &run));
  EXPECT_EQ(job, "J12");
  EXPECT_EQ(run, 3u);
  ASSERT_TRUE(slurm.ParseJobName("atrium-my-job-7", &job, &run));
  EXPECT_EQ(job, "my-job");
  EXPECT_EQ(run, 7u);
  for (const char* other : {"other-J1-1", "atrium-J1-", "atrium-J1-x", "atrium--1", "atrium-J1-0",
                            "atrium-J1-99999999999", "atrium"}) {
    EXPECT_FALSE(slurm.ParseJobName(other, &job, &run)) << other;
  }
}

TEST(SlurmExecutorTest, OwnsOnlyRunsOfItsOwnDataDirectory) {
  const SlurmExecutor slurm = Mapped();
  std::string job;
  uint32_t run = 0;
  SlurmJob listed{.id = 5, .name = "atrium-J3-2", .state = "RUNNING"};
  listed.standard_output = "/data/jobs/J3/stdout";
  EXPECT_TRUE(slurm.Owns(listed, &job, &run));
  EXPECT_EQ(job, "J3");
  EXPECT_EQ(run, 2u);
  // The same name from another data directory, or another job's directory.
  listed.standard_output = "/other/data/jobs/J3/stdout";
  EXPECT_FALSE(slurm.Owns(listed, &job, &run));
  listed.standard_output = "/data/jobs/J4/stdout";
  EXPECT_FALSE(slurm.Owns(listed, &job, &run));
  // An squeue that does not report the path: the name decides.
  listed.standard_output.clear();
  EXPECT_TRUE(slurm.Owns(listed, &job, &run));
  listed.name = "someone-J3-2";
  EXPECT_FALSE(slurm.Owns(listed, &job, &run));
}

TEST(SlurmExecutorTest, ParsesSqueueJson) {
  const auto jobs = ParseSqueueJson(R"({"meta": {}, "errors": [], "jobs": [
    {"job_id": 1, "name": "atrium-J1-1", "job_state": "FAILED", "start_time": 100,
     "end_time": 102, "exit_code": 768, "nodes": "sn3",
     "standard_output": "/data/jobs/J1/stdout"},
    {"job_id": 2, "name": "x", "job_state": "PENDING", "start_time": 0, "end_time": 0,
     "exit_code": 0, "nodes": ""}]})");
  ASSERT_TRUE(jobs.ok()) << jobs.error().ToString();
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].id, 1);
  EXPECT_EQ((*jobs)[0].state, "FAILED");
  EXPECT_EQ((*jobs)[0].wait_status, 768);  // exit 3
  EXPECT_EQ((*jobs)[0].end_s, 102);
  EXPECT_EQ((*jobs)[0].nodes, "sn3");
  EXPECT_EQ((*jobs)[0].standard_output, "/data/jobs/J1/stdout");
  EXPECT_EQ((*jobs)[1].standard_output, "");
  EXPECT_EQ(ParseSqueueJson("not json").code(), ErrorCode::kParseError);
  EXPECT_EQ(ParseSqueueJson(R"({"jobs": {}})").code(), ErrorCode::kParseError);
  EXPECT_EQ(ParseSqueueJson(R"({"jobs": [{"name": "x"}]})").code(), ErrorCode::kParseError);
}

TEST(SlurmExecutorTest, RunCommandCapturesBothStreamsAndTheExit) {
  const Result<CommandResult> ran = RunCommand({"sh", "-c", "echo out; echo err >&2; exit 4"});
  ASSERT_TRUE(ran.ok());
  EXPECT_EQ(ran->out, "out\n");
  EXPECT_EQ(ran->err, "err\n");
  EXPECT_EQ(ran->exit_code, 4);
  const Result<CommandResult> env = RunCommand({"sh", "-c", "echo $ONLY"}, {"ONLY=this"});
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->out, "this\n");
  EXPECT_EQ(RunCommand({"/no/such/command"}).code(), ErrorCode::kUnavailable);
}

TEST(SlurmExecutorTest, AccountingLimitsFollowBalances) {
  EXPECT_EQ(SlurmAccountName("NSF-Pilot", "G-P1"), "atrium_nsf_pilot_g_p1");
  // 41 credits at 4.10 per chip-hour: 10 chip-hours = 600 chip-minutes; a part minute
  // is not granted; nothing for a spent grant.
  EXPECT_EQ(*ChipMinutes(41'000'000, 4'100'000), 600);
  EXPECT_EQ(*ChipMinutes(41'000'000 - 1, 4'100'000), 599);
  EXPECT_EQ(*ChipMinutes(0, 4'100'000), 0);
  EXPECT_EQ(*ChipMinutes(-5, 4'100'000), 0);
  EXPECT_EQ(*ChipMinutes(INT64_MAX, 1), INT64_MAX);  // saturates, never overflows
  EXPECT_EQ(ChipMinutes(1, 0).code(), ErrorCode::kInvalidArgument);

  const auto commands = SacctmgrCommands("atriumfixture", "atrium", "gpu",
                                         {{.program = "nsf",
                                           .grant = "G-P1",
                                           .available_micro = 41'000'000,
                                           .price_per_chip_hour_micro = 4'100'000},
                                          {.program = "nsf",
                                           .grant = "G-P2",
                                           .available_micro = 0,
                                           .price_per_chip_hour_micro = 4'100'000}});
  ASSERT_TRUE(commands.ok());
  const std::vector<std::vector<std::string>> expected = {
      {"sacctmgr", "-i", "add", "account", "atrium", "cluster=atriumfixture",
       "description=atrium grants"},
      {"sacctmgr", "-i", "add", "account", "atrium_nsf_g_p1", "parent=atrium",
       "cluster=atriumfixture", "description=nsf/G-P1"},
      {"sacctmgr", "-i", "modify", "account", "where", "name=atrium_nsf_g_p1",
       "cluster=atriumfixture", "set", "GrpTRESMins=gres/gpu=600"},
      {"sacctmgr", "-i", "add", "account", "atrium_nsf_g_p2", "parent=atrium",
       "cluster=atriumfixture", "description=nsf/G-P2"},
      {"sacctmgr", "-i", "modify", "account", "where", "name=atrium_nsf_g_p2",
       "cluster=atriumfixture", "set", "GrpTRESMins=gres/gpu=0"},
  };
  EXPECT_EQ(*commands, expected);
  EXPECT_FALSE(SacctmgrCommands("c", "atrium", "gpu",
                                {{.program = "p", .grant = "g", .price_per_chip_hour_micro = 0}})
                   .ok());
}

}  // namespace
}  // namespace atrium::exec
