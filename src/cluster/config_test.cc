#include "cluster/config.h"

#include <gtest/gtest.h>

#include <string>

namespace atrium::cluster {
namespace {

constexpr std::string_view kSmall = R"(
name = "small"
[accelerators.trn1]
price_per_chip_hour = "1.34375"
[node_types.trn]
accelerator = "trn1"
chips = 16
allocation_sizes = [1, 4, 8, 16]
[[pools]]
name = "trn"
node_type = "trn"
nodes = 10
nodes_per_group = 4
groups_per_block = 2
)";

TEST(ConfigTest, LoadsTheShippedResearchCluster) {
  auto cluster =
      LoadClusterFile(std::string(ATRIUM_SOURCE_DIR) + "/examples/clusters/research-40k.toml");
  ASSERT_TRUE(cluster.ok()) << cluster.error().ToString();
  EXPECT_EQ(cluster->total_chips(), 40000);
  EXPECT_EQ(cluster->nodes().size(), 2500u);
  EXPECT_EQ(cluster->groups().size(), 625u);
  EXPECT_EQ(cluster->blocks().size(), 25u);
  EXPECT_EQ(cluster->accelerators()[0].price_per_chip_hour, *Credits::Parse("1.34375"));
  EXPECT_EQ(cluster->node_types()[0].allocation_sizes, (std::vector<int>{1, 4, 8}));
}

TEST(ConfigTest, LoadsTheMixedClusterWithNodeStates) {
  auto cluster = LoadClusterFile(std::string(ATRIUM_SOURCE_DIR) + "/examples/clusters/mixed.toml");
  ASSERT_TRUE(cluster.ok()) << cluster.error().ToString();
  EXPECT_EQ(cluster->pools().size(), 3u);
  const auto gpu = cluster->FindNode("gpu-n0031");
  ASSERT_TRUE(gpu.has_value());
  EXPECT_EQ(cluster->nodes()[*gpu].state, NodeState::kDown);
  EXPECT_EQ(cluster->nodes()[*cluster->FindNode("trn-n0063")].state, NodeState::kDraining);
  EXPECT_TRUE(cluster->Shape("h100", 3).ok());  // no allocation sizes: any count
  EXPECT_EQ(cluster->Shape("tpu-v5e", 2).code(), ErrorCode::kInvalidAllocationSize);
}

TEST(ConfigTest, LaysOutPartialGroupsAndBlocks) {
  auto cluster = ParseClusterToml(kSmall, "small.toml");
  ASSERT_TRUE(cluster.ok()) << cluster.error().ToString();
  // 10 nodes, 4 per group: groups of 4, 4, 2; two groups per block: blocks of 8 and 2.
  ASSERT_EQ(cluster->groups().size(), 3u);
  EXPECT_EQ(cluster->groups()[2].node_count, 2u);
  ASSERT_EQ(cluster->blocks().size(), 2u);
  EXPECT_EQ(cluster->blocks()[0].node_count, 8u);
  EXPECT_EQ(cluster->blocks()[1].group_count, 1u);
  EXPECT_EQ(cluster->nodes()[9].group, 2u);
  EXPECT_EQ(cluster->nodes()[9].block, 1u);
  EXPECT_EQ(cluster->nodes()[9].name, "trn-n0009");
  EXPECT_EQ(cluster->jobs_waiting_max(), kJobsWaitingMaxDefault);
  auto capped =
      ParseClusterToml("jobs_waiting_max = 5000000\n" + std::string(kSmall), "small.toml");
  ASSERT_TRUE(capped.ok()) << capped.error().ToString();
  EXPECT_EQ(capped->jobs_waiting_max(), 5'000'000);
}

struct BadCase {
  std::string_view from;
  std::string_view to;
  std::string_view expected;  // a fragment of the message: file, line and key
};

TEST(ConfigTest, BadConfigurationNamesFileLineAndKey) {
  const BadCase cases[] = {
      {"chips = 16", "chips = 0", "small.toml:7: node_types.trn.chips: must be an integer"},
      {"chips = 16", "chips = \"16\"", "small.toml:7: node_types.trn.chips"},
      {"[1, 4, 8, 16]", "[1, 3, 16]", "small.toml:8: node_types.trn.allocation_sizes"},
      {"nodes = 10", "nodes = -1", "small.toml:12: pools[0].nodes"},
      {"node_type = \"trn\"\nnodes", "node_type = \"gpu\"\nnodes",
       "small.toml:11: pools[0].node_type: unknown node type 'gpu'"},
      {"accelerator = \"trn1\"", "accelerator = \"h100\"",
       "small.toml:6: node_types.trn.accelerator: unknown accelerator 'h100'"},
      {"price_per_chip_hour = \"1.34375\"", "price_per_chip_hour = \"cheap\"",
       "small.toml:4: accelerators.trn1.price_per_chip_hour"},
      {"price_per_chip_hour = \"1.34375\"", "vendor = 3",
       "accelerators.trn1.vendor: must be a non-empty string"},
      {"name = \"small\"", "name = \"small\"\njobs_waiting_max = 0",
       "small.toml:3: jobs_waiting_max: must be an integer from 1 to 10000000"},
      {"name = \"small\"", "name = \"small\"\njobs_waiting_max = 10000001",
       "small.toml:3: jobs_waiting_max: must be an integer"},
  };
  for (const BadCase& bad : cases) {
    std::string text(kSmall);
    const size_t at = text.find(bad.from);
    ASSERT_NE(at, std::string::npos) << bad.from;
    text.replace(at, bad.from.size(), bad.to);
    const auto cluster = ParseClusterToml(text, "small.toml");
    ASSERT_FALSE(cluster.ok()) << bad.to;
    EXPECT_EQ(cluster.code(), ErrorCode::kConfigInvalid) << cluster.error().ToString();
    EXPECT_NE(cluster.error().message.find(bad.expected), std::string::npos)
        << cluster.error().message;
  }
}

TEST(ConfigTest, LoadsTheSlurmExampleWithItsMapping) {
  auto cluster = LoadClusterFile(std::string(ATRIUM_SOURCE_DIR) + "/examples/clusters/slurm.toml");
  ASSERT_TRUE(cluster.ok()) << cluster.error().ToString();
  const Pool& pool = cluster->pools()[0];
  EXPECT_EQ(pool.executor, Executor::kSlurm);
  EXPECT_EQ(pool.slurm.partition, "atrium");
  EXPECT_EQ(pool.slurm.gres, "gpu");
  ASSERT_EQ(pool.slurm.nodes.size(), 16u);
  EXPECT_EQ(cluster->nodes()[3].name, "gpu-n0003");
  EXPECT_EQ(pool.slurm.nodes[3], "sn4");
}

TEST(ConfigTest, SlurmPoolDefaultsAndRefusals) {
  std::string text(kSmall);
  text += "executor = \"slurm\"\n";
  auto cluster = ParseClusterToml(text, "small.toml");
  ASSERT_TRUE(cluster.ok()) << cluster.error().ToString();
  EXPECT_EQ(cluster->pools()[0].executor, Executor::kSlurm);
  EXPECT_TRUE(cluster->pools()[0].slurm.partition.empty());  // Slurm's default partition
  EXPECT_TRUE(cluster->pools()[0].slurm.nodes.empty());      // the same names
  EXPECT_EQ(cluster->pools()[0].slurm.command_timeout_s, kSlurmCommandTimeoutDefaultS);
  EXPECT_TRUE(cluster->pools()[0].slurm.jobcomp_loc.empty());  // not read
  const auto set = ParseClusterToml(
      text + "slurm_command_timeout_s = 3\nslurm_jobcomp = \"/var/log/slurm/jobcomp.log\"\n",
      "small.toml");
  ASSERT_TRUE(set.ok()) << set.error().ToString();
  EXPECT_EQ(set->pools()[0].slurm.command_timeout_s, 3);
  EXPECT_EQ(set->pools()[0].slurm.jobcomp_loc, "/var/log/slurm/jobcomp.log");
  struct SlurmBad {
    std::string extra;
    std::string expected;
  };
  const std::vector<SlurmBad> cases = {
      {"executor = \"slurm\"\nslurm_nodes = [\"a\", \"b\"]\n",
       "pools[0].slurm_nodes: lists 2 Slurm nodes for the pool's 10 nodes"},
      {"executor = \"slurm\"\nslurm_nodes = "
       "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"a\"]\n",
       "names Slurm node 'a' twice"},
      {"executor = \"slurm\"\nslurm_nodes = [\"a b\"]\n", "must be Slurm node names"},
      {"executor = \"slurm\"\nslurm_nodes = \"a\"\n", "must be an array of Slurm node names"},
      {"executor = \"slurm\"\nslurm_partition = \"x;rm\"\n",
       "pools[0].slurm_partition: must be a Slurm name"},
      {"executor = \"slurm\"\nslurm_gres = 3\n", "pools[0].slurm_gres: must be a non-empty string"},
      {"executor = \"local\"\nslurm_partition = \"p\"\n",
       "pools[0].slurm_partition: is only for executor = \"slurm\""},
      {"slurm_gres = \"gpu\"\n", "pools[0].slurm_gres: is only for executor = \"slurm\""},
      {"executor = \"slurmm\"\n", "must be \"local\", \"slurm\" or \"none\""},
      {"executor = \"slurm\"\nslurm_command_timeout_s = 0\n",
       "pools[0].slurm_command_timeout_s: must be an integer from 1 to 300"},
      {"executor = \"slurm\"\nslurm_jobcomp = \"jobcomp.log\"\n",
       "pools[0].slurm_jobcomp: must be an absolute path"},
      {"executor = \"local\"\nslurm_jobcomp = \"/j.log\"\n",
       "pools[0].slurm_jobcomp: is only for executor = \"slurm\""},
  };
  for (const SlurmBad& bad : cases) {
    const auto refused = ParseClusterToml(std::string(kSmall) + bad.extra, "small.toml");
    ASSERT_FALSE(refused.ok()) << bad.extra;
    EXPECT_EQ(refused.code(), ErrorCode::kConfigInvalid) << refused.error().ToString();
    EXPECT_NE(refused.error().message.find(bad.expected), std::string::npos)
        << refused.error().message;
  }
}

TEST(ConfigTest, MalformedTomlNamesTheLine) {
  const auto cluster = ParseClusterToml("name = \"x\"\n[accelerators\n", "broken.toml");
  ASSERT_FALSE(cluster.ok());
  EXPECT_EQ(cluster.code(), ErrorCode::kParseError);
  EXPECT_NE(cluster.error().message.find("broken.toml:2"), std::string::npos)
      << cluster.error().message;
}

TEST(ConfigTest, MissingFileIsAnIoError) {
  EXPECT_EQ(LoadClusterFile("/nonexistent/cluster.toml").code(), ErrorCode::kIoError);
}

}  // namespace
}  // namespace atrium::cluster
