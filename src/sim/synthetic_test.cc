#include "sim/synthetic.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "cluster/config.h"

namespace atrium::sim {
namespace {

cluster::Cluster Research40k() {
  return *cluster::LoadClusterFile(std::string(ATRIUM_SOURCE_DIR) +
                                   "/examples/clusters/research-40k.toml");
}

TEST(SyntheticTest, SameSeedSameWorkloadOtherSeedAnother) {
  const cluster::Cluster cluster = Research40k();
  const SyntheticOptions options{.jobs = 5000, .load = 0.9, .seed = 42};
  const auto first = GenerateSynthetic(cluster, options);
  const auto second = GenerateSynthetic(cluster, options);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(FormatTrace(*first), FormatTrace(*second));
  SyntheticOptions other = options;
  other.seed = 43;
  EXPECT_NE(FormatTrace(*GenerateSynthetic(cluster, other)), FormatTrace(*first));
}

TEST(SyntheticTest, ShapesAndLoadFollowTheOptions) {
  const cluster::Cluster cluster = Research40k();
  const SyntheticOptions options{.jobs = 20000, .load = 0.7, .seed = 7, .grants = 50};
  const auto workload = GenerateSynthetic(cluster, options);
  ASSERT_TRUE(workload.ok());
  int64_t small = 0;
  int64_t large = 0;
  double work = 0;
  std::map<std::string, int64_t> per_grant;
  int64_t previous_submit = 0;
  for (const auto& job : workload->jobs) {
    ASSERT_TRUE(cluster.Shape("", job.chips).ok()) << job.chips;  // sizes the cluster accepts
    ASSERT_GE(job.submit_s, previous_submit);
    previous_submit = job.submit_s;
    ASSERT_GE(job.duration_s, 1);
    ASSERT_TRUE(cluster.CheckPartition(job.job_class, job.chips, job.walltime_s).ok());
    small += job.chips <= 16 ? 1 : 0;
    large += job.chips >= 64 ? 1 : 0;
    work += static_cast<double>(job.chips) *
            static_cast<double>(std::min(job.duration_s, job.walltime_s));
    ++per_grant[job.grant];
  }
  EXPECT_GT(small, 20000 * 7 / 10);  // mostly 1 to 16 chips
  EXPECT_GT(large, 20000 / 50);      // and some 64 or more
  const double span = static_cast<double>(workload->jobs.back().submit_s);
  EXPECT_NEAR(work / (40000.0 * span), 0.7, 0.05);
  EXPECT_LE(per_grant.size(), 50u);
  // Zipf-like: the most active grant has several times the jobs of a median one.
  EXPECT_GT(per_grant["grant-0001"], 5 * per_grant["grant-0025"]);
}

TEST(SyntheticTest, RefusesBadOptions) {
  const cluster::Cluster cluster = Research40k();
  EXPECT_EQ(GenerateSynthetic(cluster, {.jobs = -1}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(GenerateSynthetic(cluster, {.jobs = 1, .load = 0}).code(), ErrorCode::kInvalidArgument);
}

TEST(SyntheticTest, LongQueueMixIsMostlySingleChipsArrivingInBursts) {
  const cluster::Cluster cluster = Research40k();
  SyntheticOptions options{.jobs = 20000, .load = 0.9, .seed = 5, .mix = SyntheticMix::kLongQueue};
  // 20,000 jobs fill this large cluster for only a few hours: shorter bursts, many periods.
  options.burst_period_s = 3600;
  const auto workload = GenerateSynthetic(cluster, options);
  ASSERT_TRUE(workload.ok());
  int64_t single = 0;
  int64_t gangs = 0;
  int64_t in_burst = 0;
  for (const auto& job : workload->jobs) {
    ASSERT_TRUE(cluster.Shape("", job.chips).ok()) << job.chips;
    single += job.chips == 1 ? 1 : 0;
    gangs += job.chips >= 32 ? 1 : 0;
    const double phase =
        std::fmod(static_cast<double>(job.submit_s), static_cast<double>(options.burst_period_s));
    in_burst += phase < options.burst_fraction * static_cast<double>(options.burst_period_s);
  }
  const auto count = static_cast<double>(workload->jobs.size());
  EXPECT_NEAR(static_cast<double>(single) / count, 0.70, 0.02);
  EXPECT_GT(gangs, 0);
  // Bursts take 30% of the time and, at twice the mean rate, 60% of the arrivals.
  EXPECT_NEAR(static_cast<double>(in_burst) / count, 0.6, 0.05);
  EXPECT_EQ(ParseSyntheticMix("long-queue").value(), SyntheticMix::kLongQueue);
  EXPECT_EQ(ParseSyntheticMix("bursty").code(), ErrorCode::kInvalidArgument);
  options.burst_rate = 5;  // 5 x 30% of the time > all the arrivals
  EXPECT_EQ(GenerateSynthetic(cluster, options).code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace atrium::sim
