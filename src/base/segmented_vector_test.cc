#include "base/segmented_vector.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace atrium {
namespace {

// Small segments so every boundary (the doubling prefix, then full segments) is crossed
// by a few hundred items; checked against std::vector as the reference.
TEST(SegmentedVectorTest, MatchesAVectorAcrossEverySegmentBoundary) {
  SegmentedVector<uint64_t, 64, 4> items;
  std::vector<uint64_t> reference;
  for (uint64_t i = 0; i < 1000; ++i) {
    items.push_back(i * 7919);
    reference.push_back(i * 7919);
    ASSERT_EQ(items.size(), reference.size());
  }
  for (size_t i = 0; i < reference.size(); ++i) EXPECT_EQ(items[i], reference[i]) << i;
}

TEST(SegmentedVectorTest, CapacityDoublesThenGrowsBySegment) {
  SegmentedVector<int, 64, 4> items;
  EXPECT_EQ(items.capacity(), 0u);
  items.push_back(1);
  EXPECT_EQ(items.capacity(), 4u);
  for (int i = 0; i < 4; ++i) items.push_back(i);
  EXPECT_EQ(items.capacity(), 8u);  // 4 + 4
  while (items.size() < 9) items.push_back(0);
  EXPECT_EQ(items.capacity(), 16u);  // 4 + 4 + 8
  while (items.size() < 65) items.push_back(0);
  EXPECT_EQ(items.capacity(), 128u);  // the prefix (64) and one full segment
}

TEST(SegmentedVectorTest, ReferencesStayValidAsItGrows) {
  SegmentedVector<int, 64, 4> items;
  int& first = items.push_back(41);
  int& tenth = [&]() -> int& {
    for (int i = 1; i < 9; ++i) items.push_back(i);
    return items.push_back(99);
  }();
  for (int i = 0; i < 500; ++i) items.push_back(i);
  EXPECT_EQ(&first, &items[0]);
  EXPECT_EQ(&tenth, &items[9]);
  EXPECT_EQ(first, 41);
  EXPECT_EQ(tenth, 99);
}

TEST(SegmentedVectorTest, TruncateThenGrowReusesTheSegments) {
  SegmentedVector<int, 64, 4> items;
  for (int i = 0; i < 100; ++i) items.push_back(i);
  const size_t capacity = items.capacity();
  items.Truncate(10);
  EXPECT_EQ(items.size(), 10u);
  for (int i = 10; i < 100; ++i) items.push_back(-i);
  EXPECT_EQ(items.capacity(), capacity);
  EXPECT_EQ(items[9], 9);
  EXPECT_EQ(items[10], -10);
  EXPECT_EQ(items[99], -99);
}

TEST(SegmentedVectorTest, ReserveAllocatesWithoutChangingSize) {
  SegmentedVector<int, 64, 4> items;
  items.Reserve(200);
  EXPECT_GE(items.capacity(), 200u);
  EXPECT_EQ(items.size(), 0u);
  for (int i = 0; i < 200; ++i) items.push_back(i);
  EXPECT_EQ(items[199], 199);
}

}  // namespace
}  // namespace atrium
