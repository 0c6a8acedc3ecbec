// The Slurm executor's parts that need no Slurm: the sbatch line a placement becomes,
// the batch script, job names, `squeue --json` parsing, the process runner and its bound,
// the back-off and the jobcomp record against fake squeue/sbatch/scancel scripts, and the
// accounting mode's sacctmgr commands. tests/slurm_test.cc drives real daemons.
#include "exec/slurm_executor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
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
  // What squeue 22.05 prints, exiting 0, when slurmctld does not answer.
  EXPECT_EQ(ParseSqueueJson(R"({"meta": {}, "errors": [{"description": "Failed while looking )"
                            R"(for jobs", "error_number": -1, "error": "Unspecified error", )"
                            R"("source": "slurm_load_jobs"}], "jobs": []})")
                .code(),
            ErrorCode::kUnavailable);
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

int64_t ElapsedMs(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               since)
      .count();
}

// Whether a process is gone (or a zombie no one reaped yet: it runs no more).
bool Ended(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(stat, text);
  const size_t paren = text.rfind(')');
  return text.empty() || (paren != std::string::npos && text.substr(paren + 2, 1) == "Z");
}

TEST(SlurmExecutorTest, RunCommandKillsWhatOutlivesItsBound) {
  const std::string pid_file =
      ::testing::TempDir() + "/atrium-bounded-" + std::to_string(getpid()) + ".pid";
  const auto began = std::chrono::steady_clock::now();
  // The command and a child it left behind in its group, both holding the output open.
  const Result<CommandResult> ran = RunCommand(
      {"sh", "-c", "sleep 30 & echo $! > " + pid_file + "; echo started; wait"}, {}, 500);
  const int64_t took_ms = ElapsedMs(began);
  ASSERT_FALSE(ran.ok());
  EXPECT_EQ(ran.code(), ErrorCode::kUnavailable);
  EXPECT_NE(ran.error().message.find("did not end within 500 ms"), std::string::npos)
      << ran.error().message;
  EXPECT_GE(took_ms, 450);
  EXPECT_LT(took_ms, 3000);
  pid_t child = 0;
  std::ifstream(pid_file) >> child;
  ASSERT_GT(child, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!Ended(child) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(Ended(child)) << "the group's other process still runs: " << child;
  std::filesystem::remove(pid_file);
  // A command that ends in time is not cut short.
  const Result<CommandResult> quick = RunCommand({"sh", "-c", "sleep 0.2; echo ok"}, {}, 5000);
  ASSERT_TRUE(quick.ok()) << quick.error().ToString();
  EXPECT_EQ(quick->out, "ok\n");
}

// squeue, sbatch and scancel as shell scripts in a folder put first on PATH: squeue prints
// DIR/squeue.json (after sleeping while DIR/hang exists), sbatch prints 42, scancel logs
// its arguments.
class FakeSlurm : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("atrium-fake-slurm-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "bin");
    std::filesystem::create_directories(dir_ / "jobs");
    const std::string d = dir_.string();
    Script("squeue", "if [ -f " + d + "/hang ]; then sleep 30; fi\ncat " + d + "/squeue.json\n");
    Script("sbatch", "echo \"$@\" >> " + d + "/sbatch.log\necho 42\n");
    Script("scancel", "echo \"$@\" >> " + d + "/scancel.log\n");
    Listing(R"({"jobs": []})");
    const char* path = std::getenv("PATH");
    saved_path_ = path != nullptr ? path : "";
    setenv("PATH", ((dir_ / "bin").string() + ":" + saved_path_).c_str(), 1);
  }
  void TearDown() override {
    setenv("PATH", saved_path_.c_str(), 1);
    std::filesystem::remove_all(dir_);
  }
  void Script(const std::string& name, const std::string& body) {
    const std::filesystem::path file = dir_ / "bin" / name;
    std::ofstream(file) << "#!/bin/sh\n" << body;
    chmod(file.c_str(), 0755);
  }
  void Listing(const std::string& json) { std::ofstream(dir_ / "squeue.json") << json; }
  std::string Read(const std::string& name) {
    std::ifstream in(dir_ / name);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  std::string jobs() const { return (dir_ / "jobs").string(); }

  std::filesystem::path dir_;
  std::string saved_path_;
};

RunSpec Spec(const std::string& job) {
  return RunSpec{.job = job,
                 .run = 1,
                 .argv = {"true"},
                 .chips = 1,
                 .nodes = {"gpu-n0000"},
                 .walltime_s = 600,
                 .kill_grace_s = 1};
}

TEST_F(FakeSlurm, AHangingSqueueReturnsWithinTheBoundThenBacksOff) {
  SlurmExecutor slurm({.jobs_dir = jobs(),
                       .slurm = {.command_timeout_s = 1},
                       .atrium_nodes = {"gpu-n0000"},
                       .backoff_min_ms = 400,
                       .slow_answer_ms = 300});
  std::ofstream(dir_ / "hang") << "";
  auto began = std::chrono::steady_clock::now();
  const Status hung = slurm.Ensure(Spec("J1"));
  int64_t took_ms = ElapsedMs(began);
  ASSERT_FALSE(hung.ok());
  EXPECT_EQ(hung.code(), ErrorCode::kUnavailable) << hung.error().ToString();
  EXPECT_GE(took_ms, 900);
  EXPECT_LT(took_ms, 4000);  // the 1 s bound, and the kill and reap
  EXPECT_FALSE(slurm.Tracks("J1", 1));
  // Within the back-off no command runs: the next calls answer at once.
  began = std::chrono::steady_clock::now();
  EXPECT_EQ(slurm.Ensure(Spec("J1")).code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(slurm.Poll().empty());
  EXPECT_LT(ElapsedMs(began), 300);
  EXPECT_EQ(Read("sbatch.log"), "");  // nothing was submitted blind
  // Slurm answers again: after the back-off the run is submitted, once.
  std::filesystem::remove(dir_ / "hang");
  std::this_thread::sleep_for(std::chrono::milliseconds(450));
  const Status ensured = slurm.Ensure(Spec("J1"));
  ASSERT_TRUE(ensured.ok()) << ensured.error().ToString();
  EXPECT_TRUE(slurm.Tracks("J1", 1));
  EXPECT_NE(Read("sbatch.log").find("--job-name=atrium-J1-1"), std::string::npos);
  EXPECT_EQ(Read("jobs/J1/slurm-1.id"), "42\n");

  // Poll's squeue runs in the background: Poll never waits for it, even while it hangs;
  // a stop asked meanwhile is sent once Slurm answers again.
  // Started now (its 600 s walltime far off).
  Listing(R"({"jobs": [{"job_id": 42, "name": "atrium-J1-1", "job_state": "RUNNING",
      "start_time": )" +
          std::to_string(std::time(nullptr)) +
          R"(, "end_time": 0, "exit_code": 0, "nodes": "gpu-n0000", "standard_output": ")" +
          jobs() + R"(/J1/stdout"}]})");
  std::vector<RunEvent> started;
  const auto listed_by = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (started.empty() && std::chrono::steady_clock::now() < listed_by) {
    started = slurm.Poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].kind, RunEvent::Kind::kStarted);
  std::ofstream(dir_ / "hang") << "";
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the poll interval
  began = std::chrono::steady_clock::now();
  int64_t longest_poll_ms = 0;
  while (ElapsedMs(began) < 600) {  // squeue started, and past the 300 ms "slow" mark
    const auto asked = std::chrono::steady_clock::now();
    EXPECT_TRUE(slurm.Poll().empty());
    longest_poll_ms = std::max(longest_poll_ms, ElapsedMs(asked));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_LT(longest_poll_ms, 100);
  slurm.Stop("J1", 1, EndHow::kCancelled);  // squeue is slow: scancel waits
  EXPECT_EQ(Read("scancel.log"), "");
  EXPECT_EQ(Read("jobs/J1/run-1.stop"), "cancelled\n");
  std::filesystem::remove(dir_ / "hang");
  // The hung squeue is killed at its 1 s bound, the back-off passes, the next squeue
  // answers, and the stop goes out.
  const auto sent_by = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (Read("scancel.log").empty() && std::chrono::steady_clock::now() < sent_by) {
    EXPECT_TRUE(slurm.Poll().empty());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Read("scancel.log"), "--full --signal=TERM 42\n");
  EXPECT_TRUE(slurm.Tracks("J1", 1));
}

std::string JobcompLine(int64_t id, const std::string& name, const std::string& state,
                        const std::string& work_dir, const std::string& exit_code) {
  return "JobId=" + std::to_string(id) + " UserId=root(0) GroupId=root(0) Name=" + name +
         " JobState=" + state +
         " Partition=atrium TimeLimit=11 StartTime=2024-05-01T10:00:01 "
         "EndTime=2024-05-01T10:00:04 NodeList=sn1 NodeCnt=1 ProcCnt=1 WorkDir=" +
         work_dir +
         " ReservationName= Tres=cpu=1,node=1 Account= QOS= WcKey= Cluster=unknown "
         "SubmitTime=2024-05-01T10:00:00 EligibleTime=2024-05-01T10:00:00 "
         "DerivedExitCode=0:0 ExitCode=" +
         exit_code + "\n";
}

int64_t LocalUs(int hour, int minute, int second) {
  std::tm tm{.tm_sec = second,
             .tm_min = minute,
             .tm_hour = hour,
             .tm_mday = 1,
             .tm_mon = 4,
             .tm_year = 124,
             .tm_isdst = -1};
  return static_cast<int64_t>(std::mktime(&tm)) * 1'000'000;
}

// sbatch that Slurm refuses (a bad partition) fails the run: Ensure answers other than
// `unavailable`, so the runner ends it with exit 126 instead of trying forever; an sbatch
// that could not reach slurmctld stays `unavailable` (tried again), and neither leaves a
// Slurm id behind.
TEST_F(FakeSlurm, SbatchRefusalFailsTheRunAndAnUnreachableControllerWaits) {
  SlurmExecutor slurm({.jobs_dir = jobs(), .atrium_nodes = {"gpu-n0000"}});
  Script("sbatch",
         "echo 'sbatch: error: Batch job submission failed: Invalid partition name specified' "
         ">&2\nexit 1\n");
  const Status refused = slurm.Ensure(Spec("J7"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), ErrorCode::kInvalidArgument) << refused.error().ToString();
  EXPECT_NE(refused.error().message.find("Invalid partition"), std::string::npos);
  EXPECT_FALSE(slurm.Tracks("J7", 1));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "jobs/J7/slurm-1.id"));
  Script("sbatch",
         "echo 'sbatch: error: Batch job submission failed: Unable to contact slurm controller "
         "(connect failure)' >&2\nexit 1\n");
  const Status unreachable = slurm.Ensure(Spec("J8"));
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.code(), ErrorCode::kUnavailable) << unreachable.error().ToString();
  EXPECT_FALSE(std::filesystem::exists(dir_ / "jobs/J8/slurm-1.id"));
}

TEST_F(FakeSlurm, RunsSlurmPurgedEndFromTheJobcompRecord) {
  const std::string jobcomp = (dir_ / "jobcomp.log").string();
  // Three runs submitted by a previous process, none listed any more. J1 failed (exit 3),
  // J2 was cancelled by us (its stop file), J3's record is a stranger's (another work
  // directory) and J4 has no record: those two are lost.
  for (const auto& [job, id] : {std::pair{"J1", 41}, {"J2", 42}, {"J3", 43}, {"J4", 44}}) {
    std::filesystem::create_directories(jobs() + "/" + job);
    std::ofstream(jobs() + "/" + job + "/slurm-1.id") << id << "\n";
  }
  std::ofstream(jobs() + "/J2/run-1.stop") << "cancelled\n";
  std::ofstream(jobcomp) << JobcompLine(41, "atrium-J1-1", "FAILED", jobs() + "/J1", "3:0")
                         << JobcompLine(42, "atrium-J2-1", "CANCELLED", jobs() + "/J2", "0:15")
                         << JobcompLine(43, "atrium-J3-1", "COMPLETED", "/elsewhere/J3", "0:0");
  SlurmExecutor slurm({.jobs_dir = jobs(),
                       .slurm = {.command_timeout_s = 5, .jobcomp_loc = jobcomp},
                       .atrium_nodes = {"gpu-n0000"}});
  for (const char* job : {"J1", "J2", "J3", "J4"}) ASSERT_TRUE(slurm.Ensure(Spec(job)).ok());
  std::map<std::string, RunEvent> ends;
  for (RunEvent& event : slurm.Poll()) ends[event.job] = event;
  ASSERT_EQ(ends.size(), 4u);
  EXPECT_EQ(ends["J1"].how, EndHow::kExited);
  EXPECT_EQ(ends["J1"].exit_code, 3);
  EXPECT_EQ(ends["J1"].started_at_us, LocalUs(10, 0, 1));
  EXPECT_EQ(ends["J1"].ended_at_us, LocalUs(10, 0, 4));
  EXPECT_EQ(ends["J2"].how, EndHow::kCancelled);
  EXPECT_EQ(ends["J2"].signal, 15);
  EXPECT_EQ(ends["J2"].ended_at_us, LocalUs(10, 0, 4));
  EXPECT_EQ(ends["J3"].how, EndHow::kLost);
  EXPECT_EQ(ends["J4"].how, EndHow::kLost);

  // A run this process follows, purged between two polls: its record, not lost.
  ASSERT_TRUE(slurm.Ensure(Spec("J5")).ok());  // sbatch: Slurm id 42
  EXPECT_TRUE(slurm.Tracks("J5", 1));
  std::ofstream(jobcomp, std::ios::app)
      << JobcompLine(42, "atrium-J5-1", "TIMEOUT", jobs() + "/J5", "0:15");
  std::vector<RunEvent> polled;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (polled.empty() && std::chrono::steady_clock::now() < deadline) {
    polled = slurm.Poll();  // squeue in the background: its answer on a later call
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(polled.size(), 1u);
  EXPECT_EQ(polled[0].job, "J5");
  EXPECT_EQ(polled[0].how, EndHow::kWalltime);
  EXPECT_EQ(polled[0].signal, 15);
  EXPECT_EQ(polled[0].ended_at_us, LocalUs(10, 0, 4));
  EXPECT_FALSE(slurm.Tracks("J5", 1));
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
