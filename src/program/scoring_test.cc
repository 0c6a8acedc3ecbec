#include "program/scoring.h"

#include <gtest/gtest.h>

namespace atrium::program {
namespace {

const std::vector<Criterion> kRubric = {{"merit", 3, 1, 5}, {"need", 1, 0, 10}};

TEST(ScoringTest, ValidatesScores) {
  EXPECT_TRUE(ValidateScores(kRubric, {5, 0}).ok());
  EXPECT_EQ(ValidateScores(kRubric, {6, 0}).code(), ErrorCode::kScoreOutOfRange);
  EXPECT_EQ(ValidateScores(kRubric, {1, -1}).code(), ErrorCode::kScoreOutOfRange);
  EXPECT_EQ(ValidateScores(kRubric, {1}).code(), ErrorCode::kInvalidArgument);
}

TEST(ScoringTest, RawScoreIsWeightedOnAHundredScale) {
  EXPECT_DOUBLE_EQ(RawScore(kRubric, {1, 0}), 0.0);
  EXPECT_DOUBLE_EQ(RawScore(kRubric, {5, 10}), 100.0);
  EXPECT_DOUBLE_EQ(RawScore(kRubric, {3, 0}), 37.5);  // 3 x 0.5 / 4
}

TEST(ScoringTest, HarshAndLenientReviewersWeighTheSame) {
  // The harsh reviewer H scores A above B by the same margin as the lenient L scores C
  // above D; after normalization A and C tie, and B and D tie.
  std::vector<Review> reviews = {
      {.reviewer = "H", .proposal = "A", .scores = {3, 2}},
      {.reviewer = "H", .proposal = "B", .scores = {1, 2}},
      {.reviewer = "L", .proposal = "C", .scores = {5, 10}},
      {.reviewer = "L", .proposal = "D", .scores = {4, 8}},
      {.reviewer = "S", .proposal = "E", .scores = {4, 4}},
  };
  NormalizeScores(kRubric, &reviews);
  EXPECT_LT(reviews[0].raw, reviews[2].raw);
  EXPECT_NEAR(reviews[0].normalized, reviews[2].normalized, 1e-9);
  EXPECT_NEAR(reviews[1].normalized, reviews[3].normalized, 1e-9);
  EXPECT_GT(reviews[0].normalized, reviews[1].normalized);
  EXPECT_DOUBLE_EQ(reviews[4].normalized, reviews[4].raw);  // a single review stays raw
  const auto merit = MeritByProposal(reviews);
  EXPECT_NEAR(merit.at("A"), merit.at("C"), 1e-9);
}

}  // namespace
}  // namespace atrium::program
