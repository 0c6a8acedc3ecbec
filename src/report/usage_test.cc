#include "report/usage.h"

#include <gtest/gtest.h>

#include "cluster/cluster.h"
#include "ledger/ledger.h"
#include "sched/policy.h"
#include "sched/scheduler.h"

namespace atrium::report {
namespace {

using Params = std::multimap<std::string, std::string>;

UsageRunInput MakeRun(std::string grant, int64_t chips, int64_t submit_s, int64_t start_s,
                      int64_t end_s, int64_t cost_micro, bool first_run = true) {
  UsageRunInput run;
  run.grant = std::move(grant);
  run.institution = "inst-" + run.grant;
  run.accelerator = "trn2";
  run.chips = chips;
  run.submit_s = submit_s;
  run.start_s = start_s;
  run.end_s = end_s;
  run.cost_micro = cost_micro;
  run.first_run = first_run;
  return run;
}

TEST(UsageQueryTest, ParsesDatesStepsAndGroups) {
  auto query = ParseUsageQuery(Params{{"from", "2026-11-01"},
                                      {"to", "2026-11-03T12:00Z"},
                                      {"step", "6h"},
                                      {"group_by", "institution"}},
                               0);
  ASSERT_TRUE(query.ok()) << query.error().ToString();
  EXPECT_EQ(query->from_s, 1'793'491'200);
  EXPECT_EQ(query->to_s, 1'793'491'200 + 2 * 86'400 + 12 * 3'600);
  EXPECT_EQ(query->step_s, 6 * 3'600);
  EXPECT_EQ(query->group_by, UsageGroup::kInstitution);
  EXPECT_EQ(FormatUtc(query->from_s), "2026-11-01T00:00:00Z");

  auto defaults = ParseUsageQuery({}, 86'400 * 100 + 5);
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->to_s, 86'400 * 101);
  EXPECT_EQ(defaults->from_s, 86'400 * 71);
  EXPECT_EQ(defaults->step_s, 86'400);
}

TEST(UsageQueryTest, RefusesBadParametersWithTheirName) {
  const std::vector<std::pair<Params, std::string>> cases = {
      {{{"from", "yesterday"}}, "from"},
      {{{"from", "2026-02-30"}}, "from"},
      {{{"to", "2026-11-01T25:00Z"}}, "to"},
      {{{"from", "200"}, {"to", "100"}}, "to"},
      {{{"step", "0"}}, "step"},
      {{{"step", "30s"}}, "step"},
      {{{"step", "1y"}}, "step"},
      {{{"from", "0"}, {"to", "100000000"}, {"step", "60"}}, "step"},
      {{{"group_by", "planet"}}, "group_by"},
      {{{"series", "51"}}, "series"},
      {{{"colour", "red"}}, "colour"},
      {{{"step", "1h"}, {"step", "1d"}}, "step"},
  };
  for (const auto& [params, field] : cases) {
    auto query = ParseUsageQuery(params, 1'000'000);
    ASSERT_FALSE(query.ok()) << field;
    EXPECT_EQ(query.error().code, ErrorCode::kInvalidArgument) << field;
    EXPECT_EQ(query.error().field, field);
  }
}

TEST(UsageIndexTest, SplitsChipHoursByOverlapAndCountsJobsWhereTheyStart) {
  UsageIndex index(/*chips_total=*/10);
  // Runs over the boundary between the first and second hour: 8 chips x 1800 s in each.
  index.Add(MakeRun("G-a", 8, 0, 1'800, 5'400, 4'000'000));
  // A job that waited 600 s, ran 600 s in hour 3.
  index.Add(MakeRun("G-b", 2, 6'600, 7'200, 7'800, 1'500'000));
  // A later run of a preempted job: chip-hours and credits, no second job.
  index.Add(MakeRun("G-b", 2, 6'600, 9'000, 9'600, 250'000, /*first_run=*/false));
  UsageQuery query{.from_s = 0, .to_s = 4 * 3'600, .step_s = 3'600, .group_by = UsageGroup::kGrant};
  auto report = index.Report(query, {});
  ASSERT_TRUE(report.ok());
  const auto& steps = (*report)["steps"];
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[0]["chip_seconds"], 8 * 1'800);
  EXPECT_EQ(steps[1]["chip_seconds"], 8 * 1'800);
  EXPECT_EQ(steps[2]["chip_seconds"], 2 * 600 + 2 * 600);
  EXPECT_DOUBLE_EQ(steps[0]["utilisation"].get<double>(), 8.0 * 1'800 / (10.0 * 3'600));
  EXPECT_EQ(steps[0]["jobs"], 1);
  EXPECT_EQ(steps[1]["jobs"], 0);
  EXPECT_EQ(steps[2]["jobs"], 1);
  EXPECT_EQ(steps[2]["wait_p95_s"], 600);
  // Credits in the step where each run ended.
  EXPECT_EQ(steps[0]["credits"], "0");
  EXPECT_EQ(steps[1]["credits"], "4");
  EXPECT_EQ(steps[2]["credits"], "1.75");
  EXPECT_EQ((*report)["totals"]["credits"], "5.75");
  EXPECT_EQ((*report)["totals"]["jobs"], 2);
  const auto& groups = (*report)["groups"];
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0]["key"], "G-a");
  EXPECT_EQ(groups[0]["chip_seconds"], 8 * 3'600);
  EXPECT_EQ(groups[1]["key"], "G-b");
  EXPECT_EQ(groups[1]["credits"], "1.75");
  EXPECT_EQ(groups[1]["chip_hours_by_step"].size(), 4u);
}

TEST(UsageIndexTest, FindsLongRunsStartedBeforeTheRangeAndAddsOpenRuns) {
  UsageIndex index(4);
  // Started 20 days before the range, still running inside it.
  index.Add(MakeRun("G-long", 4, 0, 0, 25 * 86'400, 9'000'000));
  UsageQuery query{.from_s = 20 * 86'400,
                   .to_s = 22 * 86'400,
                   .step_s = 86'400,
                   .group_by = UsageGroup::kInstitution};
  std::vector<UsageRunInput> open = {
      MakeRun("G-new", 1, 21 * 86'400, 21 * 86'400 + 100, 21 * 86'400 + 3'700, 0)};
  auto report = index.Report(query, open);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ((*report)["steps"][0]["chip_seconds"], 4 * 86'400);
  EXPECT_EQ((*report)["steps"][1]["chip_seconds"], 4 * 86'400 + 3'600);
  EXPECT_EQ((*report)["steps"][1]["jobs"], 1);
  EXPECT_EQ((*report)["totals"]["credits"], "0");  // the long run's cost posts later
  ASSERT_EQ((*report)["groups"].size(), 2u);
  EXPECT_EQ((*report)["groups"][1]["key"], "inst-G-new");
  EXPECT_EQ(index.run_count(), 1u);  // the open run was not indexed
}

TEST(UsageIndexTest, PercentileIsNearestRank) {
  UsageIndex index(1);
  for (int i = 1; i <= 100; ++i) index.Add(MakeRun("G", 1, 0, i, i + 1, 0));
  UsageQuery query{.from_s = 0, .to_s = 1'000, .step_s = 1'000};
  auto report = index.Report(query, {});
  ASSERT_TRUE(report.ok());
  EXPECT_EQ((*report)["totals"]["wait_p95_s"], 95);
  EXPECT_DOUBLE_EQ((*report)["totals"]["wait_mean_s"].get<double>(), 50.5);
}

TEST(UsageIndexTest, MoneyOverflowIsAnError) {
  UsageIndex index(1);
  index.Add(MakeRun("G", 1, 0, 0, 10, INT64_MAX));
  index.Add(MakeRun("G", 1, 0, 0, 10, 1));
  auto report = index.Report({.from_s = 0, .to_s = 100, .step_s = 100}, {});
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kOverflow);
}

}  // namespace
}  // namespace atrium::report

namespace atrium::report {
namespace {

// The runs of real scheduler jobs: a job that ran once, one preempted and run again, one
// still running, one that never started.
TEST(UsageFromSchedulerTest, CountsEveryRunOfEveryJobOnce) {
  cluster::ClusterBuilder builder("small");
  const uint32_t accel =
      builder.AddAccelerator({.name = "trn1", .price_per_chip_hour = *Credits::Parse("3.6")});
  const uint32_t type = builder.AddNodeType(
      {.name = "trn", .accelerator = accel, .chips = 16, .allocation_sizes = {1, 4, 8}});
  ASSERT_TRUE(builder.AddPool("trn", type, 2, 2, 1).ok());
  builder.AddPartition({.name = "research", .classes = {cluster::JobClass::kResearch}});
  const cluster::Cluster cluster = *std::move(builder).Build();
  ledger::Ledger ledger;
  sched::Scheduler scheduler(cluster, ledger, *sched::MakePolicy("fifo"));
  ASSERT_TRUE(
      scheduler.AddGrant("g1", Credits::FromWhole(1'000'000), 1.0, cluster::JobClass::kResearch, 0)
          .ok());
  auto submit = [&](std::string id, int64_t chips, int64_t now_s) {
    return scheduler.Submit({.id = std::move(id),
                             .grant = "g1",
                             .chips = chips,
                             .submit_s = now_s,
                             .duration_s = 36'000,
                             .walltime_s = 36'000},
                            now_s);
  };
  const sched::JobId once = submit("once", 16, 0);
  const sched::JobId twice = submit("twice", 16, 0);
  (void)scheduler.Pass(100);
  ASSERT_EQ(scheduler.job(once).state, sched::JobState::kRunning);
  scheduler.Finish(once, 3'700, sched::RunEnd::kCompleted);   // 16 chips x 3600 s
  scheduler.Finish(twice, 1'900, sched::RunEnd::kPreempted);  // 16 x 1800, requeued
  const sched::JobId never = submit("never", 64, 2'000);      // larger than the cluster
  (void)scheduler.Pass(2'000);
  ASSERT_EQ(scheduler.job(twice).state, sched::JobState::kRunning);
  scheduler.Finish(twice, 2'000 + 900, sched::RunEnd::kCompleted);  // 16 x 900
  const sched::JobId running = submit("running", 4, 3'000);
  (void)scheduler.Pass(3'000);
  ASSERT_EQ(scheduler.job(running).state, sched::JobState::kRunning);
  (void)never;

  std::vector<UsageRunInput> runs;
  for (sched::JobId id = 0; id < scheduler.job_count(); ++id) {
    AppendJobRuns(scheduler, scheduler.job(id), /*now_s=*/3'600, UsageRunInput{.grant = "g1"},
                  &runs);
  }
  UsageIndex index(32);
  for (const UsageRunInput& run : runs) index.Add(run);
  auto report = index.Report({.from_s = 0, .to_s = 7'200, .step_s = 3'600}, {});
  ASSERT_TRUE(report.ok());
  const nlohmann::json& totals = (*report)["totals"];
  EXPECT_EQ(totals["chip_seconds"], 16 * 3'600 + 16 * 1'800 + 16 * 900 + 4 * 600);
  EXPECT_EQ(totals["jobs"], 3);  // "never" never started
  // 3.6 per chip-hour = 0.001 per chip-second; the running job has not been charged yet.
  EXPECT_EQ(totals["credits"], "100.8");
  EXPECT_EQ(UsageFromScheduler(scheduler).run_count(), runs.size());
}

}  // namespace
}  // namespace atrium::report
