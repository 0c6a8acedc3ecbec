#include "base/id.h"

#include <gtest/gtest.h>

namespace atrium {
namespace {

TEST(IdTest, ParsesDecimalAndHex) {
  EXPECT_EQ(*ParseId128("42"), Id128{42});
  EXPECT_EQ(*ParseId128("0x2a"), Id128{42});
  EXPECT_EQ(*ParseId128("0X2A"), Id128{42});
  EXPECT_EQ(*ParseId128("340282366920938463463374607431768211455"), kIdMax);
  EXPECT_EQ(FormatId128(kIdMax), "340282366920938463463374607431768211455");
  EXPECT_EQ(FormatId128(0), "0");
  EXPECT_EQ(FormatId128(Id128{1} << 64), "18446744073709551616");
}

TEST(IdTest, RefusesMalformedIds) {
  for (std::string_view bad :
       {"", "0x", "-1", "12a", " 1", "340282366920938463463374607431768211456",
        "0xfffffffffffffffffffffffffffffffff"}) {
    EXPECT_EQ(ParseId128(bad).code(), ErrorCode::kParseError) << bad;
  }
}

TEST(IdTest, ZeroAndAllOnesAreReserved) {
  EXPECT_FALSE(IsValidId(kIdNone));
  EXPECT_FALSE(IsValidId(kIdMax));
  EXPECT_TRUE(IsValidId(1));
}

}  // namespace
}  // namespace atrium
