#include "base/credits.h"

#include <gtest/gtest.h>

#include <limits>

namespace atrium {
namespace {

Credits C(std::string_view text) {
  auto parsed = Credits::Parse(text);
  EXPECT_TRUE(parsed.ok()) << text;
  return parsed.ok() ? *parsed : Credits();
}

TEST(CreditsTest, ParsesAndFormatsExactly) {
  EXPECT_EQ(C("1234.56").micro(), 1'234'560'000);
  EXPECT_EQ(C("500000").micro(), 500'000'000'000);
  EXPECT_EQ(C("-0.000001").micro(), -1);
  EXPECT_EQ(C("0").micro(), 0);
  EXPECT_EQ(C("-0").micro(), 0);
  EXPECT_EQ(C("1.34375").micro(), 1'343'750);
  EXPECT_EQ(C("1234.56").ToString(), "1234.56");
  EXPECT_EQ(C("500000").ToString(), "500000");
  EXPECT_EQ(C("-0.000001").ToString(), "-0.000001");
  EXPECT_EQ(C("0.100000").ToString(), "0.1");
  EXPECT_EQ(Credits::FromMicro(-1'500'000).ToString(), "-1.5");
}

TEST(CreditsTest, RoundTripsTheWholeRange) {
  for (int64_t micro : {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                        int64_t{-1}, int64_t{1}, int64_t{999'999}, int64_t{1'000'001}}) {
    const Credits value = Credits::FromMicro(micro);
    auto parsed = Credits::Parse(value.ToString());
    ASSERT_TRUE(parsed.ok()) << value.ToString();
    EXPECT_EQ(parsed->micro(), micro);
  }
}

TEST(CreditsTest, RefusesMalformedText) {
  for (std::string_view bad :
       {"", "-", ".5", "5.", "1e3", "+1", " 1", "1 ", "1.2.3", "0x10", "1.0000001", "abc", "--1",
        "9223372036854.775808", "-9223372036854.775809", "99999999999999999999"}) {
    auto parsed = Credits::Parse(bad);
    EXPECT_FALSE(parsed.ok()) << "'" << bad << "'";
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.code(), ErrorCode::kParseError) << bad;
    }
  }
}

TEST(CreditsTest, CheckedArithmeticReportsOverflow) {
  const Credits max = Credits::Max();
  EXPECT_EQ(max.CheckedAdd(Credits::FromMicro(1)).code(), ErrorCode::kOverflow);
  EXPECT_EQ(Credits::FromMicro(std::numeric_limits<int64_t>::min())
                .CheckedSub(Credits::FromMicro(1))
                .code(),
            ErrorCode::kOverflow);
  EXPECT_EQ(Credits::FromMicro(std::numeric_limits<int64_t>::min()).CheckedNeg().code(),
            ErrorCode::kOverflow);
  EXPECT_EQ(C("1.5").CheckedAdd(C("2.25"))->micro(), 3'750'000);
  EXPECT_EQ(C("1.5").CheckedSub(C("2.25"))->micro(), -750'000);
  EXPECT_EQ(C("1.5").CheckedNeg()->micro(), -1'500'000);
}

TEST(CreditsTest, UsageCostIsChipsTimesSecondsTimesPriceOver3600RoundedUp) {
  const Credits trainium = C("1.34375");
  // 16 chips for one hour: one trn1.32xlarge-hour, 21.50.
  EXPECT_EQ(UsageCost(16, 3600, trainium)->ToString(), "21.5");
  // One chip for one second: 1.34375 / 3600 = 373.263.. micro, rounded up to 374.
  EXPECT_EQ(UsageCost(1, 1, trainium)->micro(), 374);
  // Exact multiples are not rounded.
  EXPECT_EQ(UsageCost(1, 3600, C("0.000001"))->micro(), 1);
  EXPECT_EQ(UsageCost(1, 1, C("0.000001"))->micro(), 1);
  EXPECT_EQ(UsageCost(0, 1000, trainium)->micro(), 0);
  EXPECT_EQ(UsageCost(40'000, 365LL * 24 * 3600, trainium)->ToString(), "470850000");
  EXPECT_EQ(UsageCost(-1, 1, trainium).code(), ErrorCode::kNegativeAmount);
  EXPECT_EQ(UsageCost(1, -1, trainium).code(), ErrorCode::kNegativeAmount);
  EXPECT_EQ(UsageCost(1, 1, C("-1")).code(), ErrorCode::kNegativeAmount);
  EXPECT_EQ(UsageCost(std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max(),
                      Credits::Max())
                .code(),
            ErrorCode::kOverflow);
  EXPECT_EQ(UsageCost(1'000'000'000, 1'000'000'000, trainium).code(), ErrorCode::kOverflow);
}

}  // namespace
}  // namespace atrium
