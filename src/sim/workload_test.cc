#include "sim/workload.h"

#include <gtest/gtest.h>

namespace atrium::sim {
namespace {

constexpr std::string_view kHeader =
    "job_id,submit_s,chips,duration_s,walltime_s,grant,accelerator,class\n";

TEST(WorkloadTest, ParsesTheContractAndRoundTrips) {
  const std::string text = std::string(kHeader) +
                           "a,0,16,3600,7200,g1,,\n"
                           "b,5,-4,60,60,g2,h100,education\n";
  const auto workload = ParseTrace(text, "t.csv");
  ASSERT_TRUE(workload.ok()) << workload.error().ToString();
  ASSERT_EQ(workload->jobs.size(), 2u);
  EXPECT_EQ(workload->jobs[0].chips, 16);
  EXPECT_FALSE(workload->jobs[0].class_given);
  EXPECT_EQ(workload->jobs[0].job_class, cluster::JobClass::kResearch);
  EXPECT_EQ(workload->jobs[1].chips, -4);  // kept: the scheduler rejects it with a reason
  EXPECT_EQ(workload->jobs[1].accelerator, "h100");
  EXPECT_EQ(workload->jobs[1].job_class, cluster::JobClass::kEducation);
  EXPECT_EQ(FormatTrace(*workload), text);
}

TEST(WorkloadTest, ColumnsAreFoundByName) {
  const auto workload = ParseTrace(
      "class,grant,job_id,chips,submit_s,walltime_s,duration_s,accelerator,comment\n"
      "preemptible,g,x,4,10,100,50,,hello\n",
      "t.csv");
  ASSERT_TRUE(workload.ok()) << workload.error().ToString();
  EXPECT_EQ(workload->jobs[0].walltime_s, 100);
  EXPECT_EQ(workload->jobs[0].duration_s, 50);
  EXPECT_EQ(workload->jobs[0].job_class, cluster::JobClass::kPreemptible);
}

TEST(WorkloadTest, BadRowsNameTheLineAndColumn) {
  const struct {
    std::string text;
    std::string expected;
  } cases[] = {
      {"job_id,submit_s,chips,duration_s,grant,accelerator,class\n", "t.csv:1: column walltime_s"},
      {std::string(kHeader) + "a,0,16,3600,7200,g1,,\nb,0,x,1,1,g,,\n", "t.csv:3: column chips"},
      {std::string(kHeader) + "a,0,16,3600,7200,g1\n", "t.csv:2: column *"},
      {std::string(kHeader) + "a,0,1,1,1,g1,,vip\n", "t.csv:2: column class"},
      {std::string(kHeader) + ",0,1,1,1,g1,,\n", "t.csv:2: column job_id"},
      {"", "t.csv:1: column job_id"},
  };
  for (const auto& bad : cases) {
    const auto workload = ParseTrace(bad.text, "t.csv");
    ASSERT_FALSE(workload.ok()) << bad.text;
    EXPECT_EQ(workload.code(), ErrorCode::kTraceInvalid);
    EXPECT_NE(workload.error().message.find(bad.expected), std::string::npos)
        << workload.error().message;
  }
}

TEST(WorkloadTest, GrantsFile) {
  const auto grants =
      ParseGrants("grant,credits,class\ng1,1000.5,research\ng2,0,education\n", "g.csv");
  ASSERT_TRUE(grants.ok()) << grants.error().ToString();
  ASSERT_EQ(grants->size(), 2u);
  EXPECT_EQ((*grants)[0].credits, *Credits::Parse("1000.5"));
  EXPECT_EQ((*grants)[1].default_class, cluster::JobClass::kEducation);
  const auto bad = ParseGrants("grant,credits,class\ng1,-3,research\n", "g.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("g.csv:2: column credits"), std::string::npos);
}

}  // namespace
}  // namespace atrium::sim
