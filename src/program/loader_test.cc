#include "program/loader.h"

#include <gtest/gtest.h>

namespace atrium::program {
namespace {

TEST(LoaderTest, TimesRoundTrip) {
  EXPECT_EQ(*ParseTimeUs("1970-01-01"), 0);
  EXPECT_EQ(*ParseTimeUs("2026-01-15T09:30:00Z"),
            (DaysFromCivil(2026, 1, 15) * 86400 + 34200) * 1'000'000);
  EXPECT_EQ(FormatTimeUs(*ParseTimeUs("2028-02-29T23:59:59Z")), "2028-02-29T23:59:59Z");
  EXPECT_EQ(ParseTimeUs("2026-13-01").code(), ErrorCode::kParseError);
  EXPECT_EQ(ParseTimeUs("yesterday").code(), ErrorCode::kParseError);
  // Digits only, each at its place: no sign, space or short field inside a date.
  EXPECT_EQ(ParseTimeUs("+026-01-15").code(), ErrorCode::kParseError);
  EXPECT_EQ(ParseTimeUs("2026-1-015").code(), ErrorCode::kParseError);
  EXPECT_EQ(ParseTimeUs("2026-01- 5").code(), ErrorCode::kParseError);
  EXPECT_EQ(ParseTimeUs("2026-01-15T09:30:0xZ").code(), ErrorCode::kParseError);
  EXPECT_EQ(ParseTimeUs("2026-01-15T09:30:00+").code(), ErrorCode::kParseError);
  EXPECT_EQ(ParseTimeUs("2026-01-15 09:30:00Z").code(), ErrorCode::kParseError);
}

TEST(LoaderTest, ErrorsNameTheField) {
  Result<ProgramDefinition> missing = ParseProgramToml("[program]\nid = 'x'\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().field, "program.total_budget");
  Result<ProgramDefinition> malformed = ParseProgramToml("[program\n");
  EXPECT_EQ(malformed.code(), ErrorCode::kParseError);
  Result<ProgramDefinition> money = ParseProgramToml("[program]\nid = 'x'\ntotal_budget = '1e6'\n");
  ASSERT_FALSE(money.ok());
  EXPECT_EQ(money.error().field, "program.total_budget");
  Result<ProgramDefinition> percent = ParseProgramToml(
      "[program]\nid='x'\ntotal_budget=5\n[[program.fairness_floor]]\nname='f'\nshare_percent="
      "120\n");
  ASSERT_FALSE(percent.ok());
  EXPECT_EQ(percent.error().field, "program.fairness_floor[0].share_percent");
}

// Capacity reservations (docs/reservations.md): opt-in, bounded, unknown keys refused.
TEST(LoaderTest, ReservationLimits) {
  const std::string base = "[program]\nid='x'\ntotal_budget=5\n";
  Result<ProgramDefinition> none = ParseProgramToml(base);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->reservations.enabled);
  Result<ProgramDefinition> some = ParseProgramToml(
      base + "[program.reservations]\nmax_chips=64\nmax_hours=48\ncancel_fee_bp=500\n");
  ASSERT_TRUE(some.ok()) << some.error().message;
  EXPECT_TRUE(some->reservations.enabled);
  EXPECT_EQ(some->reservations.max_chips, 64);
  EXPECT_EQ(some->reservations.max_hours, 48);
  EXPECT_EQ(some->reservations.max_ahead_days, 0);
  EXPECT_EQ(some->reservations.max_share_bp, 10'000);
  EXPECT_EQ(some->reservations.cancel_fee_bp, 500);
  for (const char* bad : {"max_share_bp=10001", "cancel_fee_bp=-1", "max_hours='x'"}) {
    Result<ProgramDefinition> refused =
        ParseProgramToml(base + "[program.reservations]\n" + bad + "\n");
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().field.rfind("program.reservations.", 0), 0u) << refused.error().field;
  }
  EXPECT_FALSE(ParseProgramToml(base + "[program.reservations]\nmax_nodes=4\n").ok());
}

TEST(LoaderTest, ReadsPeopleAndProposals) {
  Result<PeopleFile> people = ParsePeopleToml(R"(
[[institution]]
id = "mit"
type = "r1"
country = "US"
[[person]]
id = "0000-0002-1825-0097"
institution = "mit"
role = "faculty"
expertise = ["nlp"]
reviewer = true
)");
  ASSERT_TRUE(people.ok()) << people.error().ToString();
  ASSERT_EQ(people->people.size(), 1u);
  EXPECT_TRUE(people->people[0].reviewer);
  Result<std::vector<ProposalInput>> proposals = ParseProposalsToml(R"(
[[proposal]]
id = "P-1"
call = "c"
pi = "0000-0002-1825-0097"
title = "T"
topics = ["nlp"]
requested = "1500.5"
[[proposal.chip_hours]]
accelerator = "trainium2"
chip_hours = 100
)");
  ASSERT_TRUE(proposals.ok()) << proposals.error().ToString();
  EXPECT_EQ((*proposals)[0].requested, *Credits::Parse("1500.5"));
  EXPECT_EQ((*proposals)[0].chip_hours[0].chip_hours, 100);
  EXPECT_EQ(ParseProposalsToml("[[proposal]]\nid = 'x'\n").code(), ErrorCode::kParseError);
}

}  // namespace
}  // namespace atrium::program
