// The exec runner's generalisation (server/exec_runner.h), in process: a durable core on
// SQLite behind a Committer, a manual clock, and the runner with its per-pool executors.
// A preemptive policy (fairshare+preempt) on a `local` pool: a real preemptible run,
// asked to yield its chips to a research job that waited past the preemption threshold,
// is stopped with Stop(kPreempted) and ends `preempted` (requeued, its run signalled
// with SIGTERM), not `cancelled`; the research job then runs.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/core.h"
#include "journal/committer.h"
#include "journal/journal.h"
#include "journal/open.h"
#include "server/clock.h"
#include "server/exec_runner.h"

namespace atrium {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// The transcripts' funded program (tests/transcripts/_funded.jsonl), its cluster "tiny"
// (4 nodes x 16 trn1 chips) made a `local` pool with a 1 s grace, under fairshare+preempt.
std::vector<json> FundedCommands() {
  std::vector<json> out;
  std::function<void(const std::string&)> load = [&](const std::string& name) {
    std::ifstream in(std::string(ATRIUM_SOURCE_DIR) + "/tests/transcripts/" + name);
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      json command = json::parse(line);
      if (command.contains("include")) {
        load(command["include"]);
        continue;
      }
      if (!command.contains("op")) continue;  // queries
      if (command["op"] == "cluster_load") {
        std::string toml = command["toml"];
        const std::string anchor = "groups_per_block = 2\n";
        toml.replace(toml.find(anchor), anchor.size(),
                     anchor + "executor = \"local\"\nkill_grace_s = 1\n");
        command["toml"] = toml;
        command["policy"] = "fairshare+preempt";
      }
      command.erase("expect");
      command.erase("save");
      out.push_back(std::move(command));
    }
  };
  load("_funded.jsonl");
  return out;
}

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("atrium-runner-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto store = journal::OpenJournalStore((dir_ / "atrium.db").string(),
                                           journal::OpenMode::kReadWriteCreate);
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    auto durable = journal::DurableCore::Open(std::move(*store), {});
    ASSERT_TRUE(durable.ok()) << durable.error().ToString();
    committer_ =
        std::make_unique<journal::Committer>(std::move(*durable), journal::CommitterOptions{});
  }
  void TearDown() override {
    runner_.reset();
    committer_.reset();
    fs::remove_all(dir_);
  }

  json Apply(json command) {
    int64_t now = now_us_;
    if (command.contains("now_us")) {
      now = command["now_us"];
      command.erase("now_us");
    }
    now_us_ = std::max(now_us_, now);
    Result<core::CommandResult> result =
        committer_->Submit(core::AppCommand{.now_us = now, .json = command.dump()}).get();
    EXPECT_TRUE(result.ok()) << command.dump() << ": " << result.error().ToString();
    return command;
  }

  // The job as the state shows it: {state, runs, end_state, signal, started_us}.
  json JobState(const std::string& id) {
    json out;
    const Status read = committer_->Read([&](const core::Core& core) {
      const core::AppState& app = core.app();
      const core::JobRecord& record = app.jobs().at(id);
      const sched::Job& job = app.scheduler()->job(record.sched_id);
      out = {{"state", app.JobStateText(record)},
             {"sched_state", sched::ToString(job.state)},
             {"runs", job.runs},
             {"preempt_at_s", job.preempt_at_s},
             {"end_state", record.end_state},
             {"signal", record.term_signal},
             {"started_us", record.run_started_us}};
    });
    EXPECT_TRUE(read.ok());
    return out;
  }

  json WaitFor(const std::string& id, const std::function<bool(const json&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    json state;
    while (std::chrono::steady_clock::now() < deadline) {
      state = JobState(id);
      if (done(state)) return state;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << id << " never got there: " << state.dump();
    return state;
  }

  fs::path dir_;
  int64_t now_us_ = 0;
  std::unique_ptr<journal::Committer> committer_;
  std::unique_ptr<server::ExecRunner> runner_;
};

TEST_F(RunnerTest, PreemptedLocalRunEndsPreemptedAndYieldsItsChips) {
  for (const json& command : FundedCommands()) Apply(command);
  auto clock = std::make_shared<server::ManualClock>(now_us_);
  runner_ = std::make_unique<server::ExecRunner>(
      *committer_, clock, exec::LocalExecutorOptions{.jobs_dir = (dir_ / "jobs").string()});
  runner_->Start();
  const json pi = {{"role", "researcher"}, {"person", "0000-0002-0260-0005"}, {"token", "t-pi"}};
  const json admin = {{"role", "admin"}, {"token", "t-admin"}};
  const int64_t t0 = now_us_ + 1'000'000;
  // The whole cluster, preemptible; it notes its own pid and ends only by a signal.
  Apply({{"now_us", t0},
         {"op", "job_submit"},
         {"actor", pi},
         {"program", "p1"},
         {"grant", "G-P1"},
         {"chips", 64},
         {"walltime_s", 86400},
         {"class", "preemptible"},
         {"argv", {"sh", "-c", "echo $$ > pid; exec sleep 600"}}});
  const json first =
      WaitFor("J1", [](const json& job) { return job["started_us"].get<int64_t>() > 0; });
  EXPECT_EQ(first["sched_state"], "running");
  pid_t pid = 0;
  for (int tries = 0; tries < 500 && pid == 0; ++tries) {
    std::ifstream(dir_ / "jobs" / "J1" / "pid") >> pid;
    if (pid == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(pid, 0);
  // A research job for the same chips waits; past the preemption threshold (2 h) a pass
  // asks the preemptible run to yield.
  Apply({{"now_us", t0},
         {"op", "job_submit"},
         {"actor", pi},
         {"program", "p1"},
         {"grant", "G-P1"},
         {"chips", 64},
         {"walltime_s", 3600},
         {"argv", {"sh", "-c", "echo $$ > pid; exec sleep 600"}}});
  EXPECT_EQ(JobState("J2")["sched_state"], "pending");
  const int64_t later = t0 + 7300LL * 1'000'000;
  clock->Advance(later - clock->NowUs());
  Apply({{"now_us", later}, {"op", "tick"}, {"actor", admin}});
  // Stopped with kPreempted: SIGTERM reached the process, the run ended `preempted` and
  // the job went back to the queue, not cancelled.
  const json yielded = WaitFor("J1", [](const json& job) { return job["end_state"] != ""; });
  EXPECT_EQ(yielded["end_state"], "preempted") << yielded;
  EXPECT_EQ(yielded["signal"], SIGTERM) << yielded;
  EXPECT_NE(yielded["sched_state"], "cancelled") << yielded;
  EXPECT_EQ(yielded["runs"], 1) << yielded;
  for (int tries = 0; tries < 500 && kill(pid, 0) == 0; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(kill(pid, 0), 0) << "the preempted process still runs";
  // The chips went to the research job, which really runs.
  Apply({{"now_us", later + 1'000'000}, {"op", "tick"}, {"actor", admin}});
  const json research =
      WaitFor("J2", [](const json& job) { return job["started_us"].get<int64_t>() > 0; });
  EXPECT_EQ(research["sched_state"], "running");
  EXPECT_EQ(JobState("J1")["sched_state"], "pending");
  pid_t research_pid = 0;
  for (int tries = 0; tries < 500 && research_pid == 0; ++tries) {
    std::ifstream(dir_ / "jobs" / "J2" / "pid") >> research_pid;
    if (research_pid == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(research_pid, 0);
  // Both end (the research job by a cancel, the requeued one while waiting).
  for (const char* job : {"J2", "J1"}) {
    Apply({{"now_us", later + 2'000'000}, {"op", "job_cancel"}, {"actor", pi}, {"job", job}});
  }
  for (int tries = 0; tries < 500 && kill(research_pid, 0) == 0; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(kill(research_pid, 0), 0);
  runner_->Stop();
  Status verified = OkStatus();
  ASSERT_TRUE(committer_->Read([&](const core::Core& core) { verified = core.Verify(); }).ok());
  EXPECT_TRUE(verified.ok()) << verified.error().ToString();
}

}  // namespace
}  // namespace atrium
