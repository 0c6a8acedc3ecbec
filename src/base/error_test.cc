#include "base/error.h"

#include <gtest/gtest.h>

#include <set>

namespace atrium {
namespace {

Result<int> Half(int value) {
  if (value % 2 != 0) return MakeError(ErrorCode::kInvalidArgument, "odd", "value");
  return value / 2;
}

Result<int> Quarter(int value) {
  ATRIUM_ASSIGN_OR_RETURN(int half, Half(value));
  ATRIUM_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

TEST(ErrorTest, CodesHaveUniqueStableStrings) {
  EXPECT_EQ(ToString(ErrorCode::kInsufficientCredits), "insufficient_credits");
  EXPECT_EQ(ToString(ErrorCode::kExistsWithDifferentFields), "exists_with_different_fields");
  std::set<std::string_view> seen;
  for (uint16_t code = 0; code < kErrorCodeCount; ++code) {
    const std::string_view text = ToString(static_cast<ErrorCode>(code));
    EXPECT_TRUE(seen.insert(text).second) << text;
    EXPECT_NE(text, "unknown");
    ErrorCode back{};
    ASSERT_TRUE(ErrorCodeFromString(text, &back));
    EXPECT_EQ(static_cast<uint16_t>(back), code);
  }
  ErrorCode unused{};
  EXPECT_FALSE(ErrorCodeFromString("no_such_code", &unused));
}

TEST(ErrorTest, ResultPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  const auto failed = Quarter(6);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(failed.error().ToString(), "invalid_argument: odd (value)");
}

}  // namespace
}  // namespace atrium
