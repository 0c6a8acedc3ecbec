#include "base/interned.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>

namespace atrium {
namespace {

TEST(InternedTest, OneCopyPerValueThatReadsAsAString) {
  Interner interner;
  const Interned a = interner.Intern("grant-7");
  const Interned b = interner.Intern(std::string("grant-") + "7");
  EXPECT_EQ(interner.size(), 1u);
  EXPECT_EQ(&a.str(), &b.str());  // the same stored text
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, "grant-7");
  EXPECT_EQ(std::string("grant-7"), a);
  EXPECT_NE(a, "grant-8");
  EXPECT_LT(a, "grant-8");
  EXPECT_EQ("id " + a, "id grant-7");
  EXPECT_EQ(a + "/x", "grant-7/x");
  const std::string& text = a;
  EXPECT_EQ(text, "grant-7");
  EXPECT_EQ(a.size(), 7u);
}

TEST(InternedTest, FindAddsNothing) {
  Interner interner;
  const Interned kept = interner.Intern("kept");
  EXPECT_TRUE(interner.Find("other").empty());
  EXPECT_EQ(interner.size(), 1u);
  EXPECT_EQ(&interner.Find("kept").str(), &kept.str());
  EXPECT_EQ(interner.Find("kept").hash(), kept.hash());
}

TEST(InternedTest, EmptyIsTheDefaultAndIsNotStored) {
  Interner interner;
  EXPECT_TRUE(interner.Intern("").empty());
  EXPECT_EQ(interner.size(), 0u);
  const Interned none;
  EXPECT_EQ(none, "");
  EXPECT_EQ(none, interner.Intern(""));
  EXPECT_NE(none, interner.Intern("x"));
}

TEST(InternedTest, ValuesOutliveRehashesAndMovesOfTheirInterner) {
  Interner interner;
  const Interned first = interner.Intern("first");
  for (int i = 0; i < 10'000; ++i) interner.Intern("value-" + std::to_string(i));
  Interner moved = std::move(interner);
  EXPECT_EQ(first, "first");
  EXPECT_EQ(&moved.Intern("first").str(), &first.str());
  EXPECT_EQ(moved.size(), 10'001u);
}

TEST(InternedTest, LooksUpMapsKeyedByString) {
  Interner interner;
  std::map<std::string, int> plain = {{"a", 1}, {"b", 2}};
  std::map<std::string, int, std::less<>> transparent = {{"a", 1}, {"b", 2}};
  EXPECT_EQ(plain.at(interner.Intern("b")), 2);
  EXPECT_EQ(transparent.find(std::string_view(interner.Intern("a")))->second, 1);
}

}  // namespace
}  // namespace atrium
