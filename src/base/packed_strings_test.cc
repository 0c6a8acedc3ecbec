#include "base/packed_strings.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace atrium {
namespace {

TEST(PackedStringsTest, GivesBackWhatItKept) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {""},
      {"", ""},
      {"train"},
      {"python", "train.py", "--epochs", "3"},
      {std::string("a\0b", 3), std::string(127, 'x'), std::string(128, 'y'),
       std::string(20000, 'z')},
  };
  for (const auto& items : cases) {
    const PackedStrings packed(items);
    EXPECT_EQ(packed.Unpack(), items);
    EXPECT_EQ(packed.empty(), items.empty());
  }
}

TEST(PackedStringsTest, ShortArgvStaysInline) {
  // Each length prefix is one byte below 128: "train" takes 6 bytes, two words 15.
  EXPECT_EQ(PackedStrings({"train"}).packed_size(), 6u);
  EXPECT_EQ(PackedStrings({"python", "run.py"}).packed_size(), 14u);
  EXPECT_EQ(PackedStrings({std::string(128, 'y')}).packed_size(), 130u);
  EXPECT_NE(PackedStrings({"a", "b"}), PackedStrings({"ab"}));
  EXPECT_EQ(PackedStrings({"a", "b"}), PackedStrings(std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace atrium
