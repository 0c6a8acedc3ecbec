#include "report/program_report.h"

#include <gtest/gtest.h>

#include "program/synthetic.h"

namespace atrium::report {
namespace {

TEST(ProgramReportTest, GiniOfKnownDistributions) {
  EXPECT_DOUBLE_EQ(Gini({}), 0.0);
  EXPECT_DOUBLE_EQ(Gini({5, 5, 5, 5}), 0.0);
  EXPECT_NEAR(Gini({0, 0, 0, 10}), 0.75, 1e-12);  // (n - 1) / n when one takes all
  EXPECT_NEAR(Gini({1, 2, 3, 4}), 0.25, 1e-12);
}

TEST(ProgramReportTest, ReportAddsUpToTheLedger) {
  using namespace program;
  ProgramState state =
      std::move(
          MakeSyntheticCall({.proposals = 120, .reviewers = 40, .institutions = 30, .seed = 3}))
          .value();
  ASSERT_TRUE(state.AssignReviewers(kSyntheticCall, 41 * kMicrosPerDay).ok());
  ASSERT_TRUE(SimulateReviews(state, kSyntheticCall, 3, 50 * kMicrosPerDay).ok());
  ASSERT_TRUE(state.DraftDecision(kSyntheticCall, 75 * kMicrosPerDay).ok());
  ASSERT_TRUE(state.CommitDecision(kSyntheticCall, 80 * kMicrosPerDay).ok());
  const std::string first_grant = state.grants().begin()->first;
  ASSERT_TRUE(state.RecordUsage(first_grant, Credits::FromWhole(100), 81 * kMicrosPerDay).ok());

  const nlohmann::json report = ProgramReportJson(state);
  const Credits committed = *Credits::Parse(report["budget"]["committed"].get<std::string>());
  const Credits track_pool = state.AccountBalance(state.TrackPoolAccount("research"));
  // What the track pool lost is what was committed (holds still sit on the pool).
  Credits held;
  for (const auto& [id, grant] : state.grants()) {
    for (const Tranche& tranche : grant.tranches) {
      if (!tranche.released) held = Credits::FromMicro(held.micro() + tranche.amount.micro());
    }
  }
  EXPECT_EQ(Credits::FromWhole(100'000'000).micro() - track_pool.micro() + held.micro(),
            committed.micro());
  EXPECT_EQ(report["budget"]["spent"], "100");
  Credits by_type;
  for (const auto& bucket : report["awards_by_institution_type"]) {
    by_type = Credits::FromMicro(by_type.micro() +
                                 Credits::Parse(bucket["credits"].get<std::string>())->micro());
  }
  EXPECT_EQ(by_type, committed);
  EXPECT_GE(report["gini_institutions"].get<double>(), 0.0);
  EXPECT_LE(report["gini_institutions"].get<double>(), 1.0);
  EXPECT_EQ(report["fairness_floors"].size(), 2u);
  EXPECT_EQ(report["log"]["head"], state.log().head());
  // Every sealed proposal and review of a decided call is revealed, and the page checks it.
  EXPECT_TRUE(report["log"]["verified"].get<bool>());
  EXPECT_GT(report["log"]["revealed"].get<int64_t>(), 0);
  const std::string html = ProgramReportHtml(state);
  EXPECT_NE(html.find("<h2>Fairness floors</h2>"), std::string::npos);
  EXPECT_NE(html.find(state.log().head()), std::string::npos);
  EXPECT_NE(html.find("chain and reveals verified"), std::string::npos);
}

}  // namespace
}  // namespace atrium::report
