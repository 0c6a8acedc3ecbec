#include "sim/simulator.h"

#include <gtest/gtest.h>

#include "sim/metrics.h"

namespace atrium::sim {
namespace {

using cluster::JobClass;

cluster::Cluster FourNodes() {
  cluster::ClusterBuilder builder("four");
  const uint32_t accel =
      builder.AddAccelerator({.name = "trn1", .price_per_chip_hour = *Credits::Parse("1.34375")});
  const uint32_t type = builder.AddNodeType(
      {.name = "trn", .accelerator = accel, .chips = 16, .allocation_sizes = {1, 4, 8}});
  EXPECT_TRUE(builder.AddPool("trn", type, 4, 4, 1).ok());
  return *std::move(builder).Build();
}

sched::JobSpec Spec(std::string id, int64_t submit_s, int64_t chips, int64_t duration_s,
                    int64_t walltime_s, JobClass job_class = JobClass::kResearch) {
  return {.id = std::move(id),
          .grant = "g",
          .job_class = job_class,
          .chips = chips,
          .submit_s = submit_s,
          .duration_s = duration_s,
          .walltime_s = walltime_s};
}

class Recorder final : public RunObserver {
 public:
  void OnRun(const sched::Scheduler& scheduler, const RunRecord& run) override {
    runs.push_back({scheduler.job(run.job).id, run});
  }
  std::vector<std::pair<std::string, RunRecord>> runs;
};

TEST(SimulatorTest, PreemptedJobRunsAgainAndFinishesItsWork) {
  const cluster::Cluster cluster = FourNodes();
  SimOptions options{.policy = "fairshare+preempt", .pass_interval_s = 0};
  options.scheduler.preempt_wait_s = 600;
  options.scheduler.preempt_grace_s = 60;
  Simulator sim(cluster, options);
  Workload workload;
  workload.jobs.push_back(Spec("victim", 0, 64, 5000, 20000, JobClass::kPreemptible));
  workload.jobs.push_back(Spec("research", 10, 32, 1000, 2000));
  Recorder recorder;
  ASSERT_TRUE(sim.Run(std::move(workload), nullptr, &recorder).ok());
  // research waits from 10, starves at 610, the victim yields at 670; research runs
  // 670..1670; the victim restarts (its remaining 4330 s) once 64 chips are free.
  ASSERT_EQ(recorder.runs.size(), 3u);
  EXPECT_EQ(recorder.runs[0].first, "victim");
  EXPECT_EQ(recorder.runs[0].second.end_s, 670);
  EXPECT_EQ(recorder.runs[0].second.ended_by, sched::RunEnd::kPreempted);
  EXPECT_EQ(recorder.runs[1].first, "research");
  EXPECT_EQ(recorder.runs[1].second.start_s, 670);
  EXPECT_EQ(recorder.runs[1].second.end_s, 1670);
  EXPECT_EQ(recorder.runs[2].first, "victim");
  EXPECT_EQ(recorder.runs[2].second.run, 2u);
  EXPECT_EQ(recorder.runs[2].second.start_s, 1670);
  EXPECT_EQ(recorder.runs[2].second.end_s, 1670 + 5000 - 670);
  const sched::Job& victim = sim.scheduler().job(0);
  EXPECT_EQ(victim.state, sched::JobState::kCompleted);
  EXPECT_EQ(victim.ran_s, 5000);
  const Summary summary = Summarize(sim);
  EXPECT_EQ(summary.completed, 2);
  EXPECT_EQ(summary.preemptions, 1);
  EXPECT_TRUE(sim.ledger().Verify().ok());
}

TEST(SimulatorTest, WalltimeKillsAndRejectionsAreRecorded) {
  const cluster::Cluster cluster = FourNodes();
  Simulator sim(cluster, {.policy = "backfill", .pass_interval_s = 0});
  Workload workload;
  workload.jobs.push_back(Spec("overrun", 0, 16, 500, 300));
  workload.jobs.push_back(Spec("huge", 0, 128, 10, 60));
  workload.jobs.push_back(Spec("odd", 0, 3, 10, 60));
  Recorder recorder;
  ASSERT_TRUE(sim.Run(std::move(workload), nullptr, &recorder).ok());
  ASSERT_EQ(recorder.runs.size(), 1u);
  EXPECT_EQ(recorder.runs[0].second.end_s, 300);
  EXPECT_EQ(recorder.runs[0].second.ended_by, sched::RunEnd::kWalltime);
  EXPECT_EQ(sim.scheduler().job(0).state, sched::JobState::kKilledAtWalltime);
  EXPECT_EQ(sim.scheduler().job(1).reason, ErrorCode::kJobTooLarge);
  EXPECT_EQ(sim.scheduler().job(2).reason, ErrorCode::kInvalidAllocationSize);
  ASSERT_NE(sim.AskedOf(1), nullptr);
  EXPECT_EQ(sim.AskedOf(1)->chips, 128);
}

TEST(SimulatorTest, GrantsFileBudgetsAreEnforced) {
  const cluster::Cluster cluster = FourNodes();
  Simulator sim(cluster, {.policy = "fairshare", .pass_interval_s = 0});
  Workload workload;
  workload.jobs.push_back(Spec("paid", 0, 16, 3600, 3600));
  workload.jobs.push_back(Spec("broke", 10, 16, 3600, 3600));
  workload.jobs.push_back(
      {.id = "stranger", .grant = "nobody", .chips = 1, .duration_s = 1, .walltime_s = 1});
  // 16 chips x 1 h = 21.5 credits: enough for one job, not two at once or in turn.
  const std::vector<GrantSpec> grants = {{.name = "g", .credits = *Credits::Parse("30")}};
  ASSERT_TRUE(sim.Run(std::move(workload), &grants, nullptr).ok());
  // Jobs are numbered in submission order: paid, stranger, broke.
  ASSERT_EQ(sim.scheduler().job(0).id, "paid");
  EXPECT_EQ(sim.scheduler().job(0).state, sched::JobState::kCompleted);
  EXPECT_EQ(sim.scheduler().job(1).reason, ErrorCode::kUnknownGrant);
  EXPECT_EQ(sim.scheduler().job(2).state, sched::JobState::kPending);
  EXPECT_EQ(sim.scheduler().job(2).reason, ErrorCode::kInsufficientCredits);
}

}  // namespace
}  // namespace atrium::sim
