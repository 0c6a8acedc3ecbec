#include "cluster/cluster.h"

#include <gtest/gtest.h>

namespace atrium::cluster {
namespace {

Cluster MakeCluster() {
  ClusterBuilder builder("test");
  const uint32_t trn =
      builder.AddAccelerator({.name = "trn1", .price_per_chip_hour = *Credits::Parse("1.34375")});
  const uint32_t gpu = builder.AddAccelerator({.name = "h100"});
  builder.AddAccelerator({.name = "orphan"});
  const uint32_t trn_node = builder.AddNodeType(
      {.name = "trn", .accelerator = trn, .chips = 16, .allocation_sizes = {1, 4, 8}});
  const uint32_t gpu_node = builder.AddNodeType({.name = "gpu", .accelerator = gpu, .chips = 8});
  EXPECT_TRUE(builder.AddPool("trn", trn_node, 8, 4, 2).ok());
  EXPECT_TRUE(builder.AddPool("gpu", gpu_node, 2, 1, 1).ok());
  EXPECT_EQ(builder.AddPool("trn2", trn_node, 1, 1, 1).code(), ErrorCode::kConfigInvalid);
  builder.AddPartition({.name = "education",
                        .classes = {JobClass::kEducation},
                        .chips_per_job_max = 16,
                        .walltime_max_s = 3600});
  auto cluster = std::move(builder).Build();
  EXPECT_TRUE(cluster.ok());
  return std::move(cluster).value();
}

TEST(ClusterTest, ShapesFollowTheNodeTypesAllocationSizes) {
  const Cluster cluster = MakeCluster();
  EXPECT_EQ(cluster.Shape("", 4)->sub_node_chips, 4);
  EXPECT_EQ(cluster.Shape("trn1", 32)->whole_nodes, 2u);
  EXPECT_EQ(cluster.Shape("trn1", 128)->whole_nodes, 8u);
  const auto odd = cluster.Shape("trn1", 3);
  EXPECT_EQ(odd.code(), ErrorCode::kInvalidAllocationSize);
  EXPECT_NE(odd.error().message.find("1, 4, 8"), std::string::npos) << odd.error().message;
  EXPECT_EQ(cluster.Shape("trn1", 24).code(), ErrorCode::kInvalidAllocationSize);
  EXPECT_EQ(cluster.Shape("trn1", 144).code(), ErrorCode::kJobTooLarge);
  EXPECT_EQ(cluster.Shape("trn1", 0).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(cluster.Shape("trn1", -4).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(cluster.Shape("tpu", 1).code(), ErrorCode::kUnknownAccelerator);
  EXPECT_EQ(cluster.Shape("orphan", 1).code(), ErrorCode::kUnknownAccelerator);
  EXPECT_EQ(cluster.Shape("h100", 5)->sub_node_chips, 5);  // any size on a GPU node
  EXPECT_EQ(cluster.Shape("h100", 5)->pool, 1u);
}

TEST(ClusterTest, PartitionsLimitTheirClassesOnly) {
  const Cluster cluster = MakeCluster();
  EXPECT_TRUE(cluster.CheckPartition(JobClass::kEducation, 16, 3600).ok());
  EXPECT_EQ(cluster.CheckPartition(JobClass::kEducation, 32, 60).code(),
            ErrorCode::kPartitionLimit);
  EXPECT_EQ(cluster.CheckPartition(JobClass::kEducation, 1, 3601).code(),
            ErrorCode::kPartitionLimit);
  EXPECT_TRUE(cluster.CheckPartition(JobClass::kResearch, 128, 1 << 30).ok());
}

TEST(ClusterTest, ClassAndStateStringsRoundTrip) {
  for (JobClass job_class : {JobClass::kResearch, JobClass::kEducation, JobClass::kPreemptible}) {
    EXPECT_EQ(*ParseJobClass(ToString(job_class)), job_class);
  }
  EXPECT_EQ(*ParseJobClass(""), JobClass::kResearch);
  EXPECT_FALSE(ParseJobClass("vip").ok());
  EXPECT_EQ(*ParseNodeState("draining"), NodeState::kDraining);
  EXPECT_FALSE(ParseNodeState("broken").ok());
}

}  // namespace
}  // namespace atrium::cluster
