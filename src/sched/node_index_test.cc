#include "sched/node_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <random>
#include <set>

namespace atrium::sched {
namespace {

// 32 nodes of 16 chips (sizes 1, 4, 8), 4 nodes per group, 2 groups per block.
cluster::Cluster MakeCluster(std::vector<int> sizes = {1, 4, 8}) {
  cluster::ClusterBuilder builder("t");
  const uint32_t accel = builder.AddAccelerator({.name = "trn1"});
  const uint32_t type = builder.AddNodeType(
      {.name = "trn", .accelerator = accel, .chips = 16, .allocation_sizes = std::move(sizes)});
  EXPECT_TRUE(builder.AddPool("trn", type, 32, 4, 2).ok());
  return *std::move(builder).Build();
}

class NodeIndexTest : public ::testing::Test {
 protected:
  NodeIndexTest()
      : cluster_(MakeCluster()), masks_(32, FullMask(16)), index_(cluster_, 0, &masks_) {
    for (uint32_t node = 0; node < 32; ++node) index_.Insert(node);
  }
  void Take(uint32_t node, uint64_t mask) {
    masks_[node] &= ~mask;
    index_.Update(node);
  }
  cluster::JobShape Shape(int64_t chips) { return *cluster_.Shape("trn1", chips); }

  cluster::Cluster cluster_;
  std::vector<uint64_t> masks_;
  NodeIndex index_;
};

TEST_F(NodeIndexTest, SubNodeJobsBestFitAlignedBlocks) {
  Take(5, 0x00FF);  // node 5: 8 free (chips 8-15)
  Take(9, 0x0FFF);  // node 9: 4 free (chips 12-15)
  std::vector<Alloc> out;
  ASSERT_TRUE(index_.Find(Shape(4), &out));
  EXPECT_EQ(out, (std::vector<Alloc>{{9, 0xF000}}));  // the fullest node that fits
  ASSERT_TRUE(index_.Find(Shape(8), &out));
  EXPECT_EQ(out, (std::vector<Alloc>{{5, 0xFF00}}));
  ASSERT_TRUE(index_.Find(Shape(1), &out));
  EXPECT_EQ(out[0].node, 9u);
  EXPECT_EQ(std::popcount(out[0].mask), 1);
  // Node 9's 4 free chips are not aligned for a new 4-chip job once one is taken.
  Take(9, 0x1000);
  ASSERT_TRUE(index_.Find(Shape(4), &out));
  EXPECT_EQ(out[0].node, 5u);  // 5 has 8 free: the next best fit
  EXPECT_EQ(out[0].mask, 0x0F00u);
}

TEST_F(NodeIndexTest, WholeNodeJobsPreferTheFullestGroupThatFits) {
  // Group 0 (nodes 0-3): 2 free nodes; group 1 (4-7): 3 free; others 4 free.
  Take(0, FullMask(16));
  Take(1, 1);
  Take(4, FullMask(16));
  std::vector<Alloc> out;
  ASSERT_TRUE(index_.Find(Shape(32), &out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].node, 2u);
  EXPECT_EQ(out[1].node, 3u);
  ASSERT_TRUE(index_.Find(Shape(48), &out));
  for (const Alloc& alloc : out) EXPECT_EQ(cluster_.nodes()[alloc.node].group, 1u);
  EXPECT_EQ(index_.free_whole_nodes(), 32u - 3u);
}

TEST_F(NodeIndexTest, LargeJobsStayInOneBlockWhenTheyCan) {
  std::vector<Alloc> out;
  ASSERT_TRUE(
      index_.Find(Shape(int64_t{6} * 16), &out));  // 6 nodes: more than a group, fits a block
  ASSERT_EQ(out.size(), 6u);
  for (const Alloc& alloc : out) {
    EXPECT_EQ(cluster_.nodes()[alloc.node].block, cluster_.nodes()[out[0].node].block);
    EXPECT_EQ(alloc.mask, FullMask(16));
  }
  ASSERT_TRUE(index_.Find(Shape(int64_t{20} * 16), &out));  // spans blocks: the spine
  std::set<uint32_t> nodes;
  for (const Alloc& alloc : out) nodes.insert(alloc.node);
  EXPECT_EQ(nodes.size(), 20u);
  ASSERT_TRUE(index_.Find(Shape(512), &out));  // the whole pool
  EXPECT_EQ(out.size(), 32u);
}

TEST_F(NodeIndexTest, NonMembersAreNeverChosen) {
  for (uint32_t node = 0; node < 31; ++node) index_.Erase(node);
  std::vector<Alloc> out;
  EXPECT_FALSE(index_.Find(Shape(32), &out));
  ASSERT_TRUE(index_.Find(Shape(16), &out));
  EXPECT_EQ(out[0].node, 31u);
  index_.Erase(31);
  EXPECT_FALSE(index_.Find(Shape(1), &out));
  EXPECT_EQ(index_.free_whole_nodes(), 0u);
}

// Random takes and releases against a brute-force model of what must fit.
// The precomputed table (built mask by mask from smaller masks) agrees with the direct
// computation for every mask, for chains of sizes, sizes that do not divide the node and
// no sizes.
TEST(NodeIndexTableTest, LookupTableAgreesWithTheDirectComputation) {
  const std::vector<std::vector<int>> size_sets = {{1, 4, 8}, {1, 2, 4, 8, 16}, {4}, {16},
                                                   {},        {3, 6},           {5}, {2, 12}};
  for (const std::vector<int>& sizes : size_sets) {
    const cluster::Cluster cluster = MakeCluster(sizes);
    std::vector<uint64_t> masks(32, FullMask(16));
    const NodeIndex direct(cluster, 0, &masks, /*lookup_table=*/false);
    const NodeIndex table(cluster, 0, &masks, /*lookup_table=*/true);
    int mismatches = 0;
    for (uint64_t mask = 0; mask <= FullMask(16); ++mask) {
      if (direct.LargestBlockOf(mask) != table.LargestBlockOf(mask)) ++mismatches;
    }
    EXPECT_EQ(mismatches, 0) << "sizes " << testing::PrintToString(sizes);
    // Spot checks against hand-worked answers.
    if (sizes == std::vector<int>{1, 4, 8}) {
      EXPECT_EQ(table.LargestBlockOf(0x00F0), 4);
      EXPECT_EQ(table.LargestBlockOf(0x0078), 1);  // 4 free chips, not aligned
      EXPECT_EQ(table.LargestBlockOf(0xFF00), 8);
      EXPECT_EQ(table.LargestBlockOf(0xFFFF), 16);
      EXPECT_EQ(table.LargestBlockOf(0), 0);
    }
    if (sizes.empty()) {
      EXPECT_EQ(table.LargestBlockOf(0x0F0F), 8);  // any size: the free chips
    }
  }
}

TEST(NodeIndexRandomTest, AgreesWithBruteForce) {
  for (const bool sized : {true, false}) {
    const cluster::Cluster cluster = sized ? MakeCluster() : MakeCluster({});
    std::vector<uint64_t> masks(32, FullMask(16));
    NodeIndex index(cluster, 0, &masks);
    std::vector<bool> member(32, false);
    const uint64_t seed = 20261122;
    std::mt19937_64 rng(seed);
    std::vector<std::vector<Alloc>> live;
    const std::vector<int64_t> sizes = {1, 4, 8, 16, 32, 64, 112, 256};
    for (uint32_t node = 0; node < 32; ++node) {
      if (rng() % 5 != 0) {
        index.Insert(node);
        member[node] = true;
      }
    }
    for (int step = 0; step < 3000; ++step) {
      if (!live.empty() && rng() % 3 == 0) {
        const size_t pick = rng() % live.size();
        for (const Alloc& alloc : live[pick]) {
          masks[alloc.node] |= alloc.mask;
          index.Update(alloc.node);
        }
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(pick));
        continue;
      }
      const int64_t chips = sizes[rng() % sizes.size()];
      const auto shape = cluster.Shape("trn1", chips);
      ASSERT_TRUE(shape.ok());
      // Brute force: whole nodes by count; sub-node by an aligned free block.
      bool expect = false;
      uint32_t whole = 0;
      std::vector<uint32_t> group_whole(8, 0);
      for (uint32_t node = 0; node < 32; ++node) {
        if (!member[node]) continue;
        whole += masks[node] == FullMask(16) ? 1u : 0u;
        group_whole[node / 4] += masks[node] == FullMask(16) ? 1u : 0u;
        if (shape->sub_node_chips > 0) {
          const int size = shape->sub_node_chips;
          for (int offset = 0; offset + size <= 16; offset += sized ? size : 1) {
            if (!sized) {
              expect = expect || std::popcount(masks[node]) >= size;
              break;
            }
            const uint64_t block = FullMask(size) << offset;
            expect = expect || (masks[node] & block) == block;
          }
        }
      }
      if (shape->whole_nodes > 0) expect = whole >= shape->whole_nodes;
      std::vector<Alloc> out;
      ASSERT_EQ(index.Find(*shape, &out), expect) << "seed " << seed << " step " << step;
      if (!expect) continue;
      const bool group_fits =
          shape->whole_nodes > 0 &&
          *std::max_element(group_whole.begin(), group_whole.end()) >= shape->whole_nodes;
      if (group_fits) {
        // A group had room, so the job must sit inside one group.
        for (const Alloc& alloc : out) ASSERT_EQ(alloc.node / 4, out[0].node / 4);
      }
      int64_t got = 0;
      for (const Alloc& alloc : out) {
        ASSERT_TRUE(member[alloc.node]);
        ASSERT_EQ(masks[alloc.node] & alloc.mask, alloc.mask) << "seed " << seed;
        got += std::popcount(alloc.mask);
        masks[alloc.node] &= ~alloc.mask;
        index.Update(alloc.node);
      }
      ASSERT_EQ(got, chips);
      live.push_back(out);
    }
  }
}

}  // namespace
}  // namespace atrium::sched
