// ProgramState's snapshot codec: a decoded program encodes to the same bytes and goes
// on exactly like the original (same answers, same log, same state); truncated bytes
// are refused and altered bytes never crash.
#include <gtest/gtest.h>

#include <random>

#include "program/program_state.h"
#include "program/synthetic.h"

namespace atrium::program {
namespace {

std::string Encoded(const ProgramState& state) {
  std::string bytes;
  state.EncodeState(&bytes);
  return bytes;
}

ProgramState RoundTrip(const ProgramState& state) {
  const std::string bytes = Encoded(state);
  auto decoded = ProgramState::DecodeState(bytes);
  EXPECT_TRUE(decoded.ok()) << decoded.error().ToString();
  EXPECT_EQ(Encoded(*decoded), bytes);
  return std::move(*decoded);
}

// The rest of a call's life, step by step; the answers as text.
std::vector<std::string> Finish(ProgramState& state, int64_t now_us) {
  std::vector<std::string> out;
  auto note = [&](const Status& status) {
    out.push_back(status.ok() ? "ok" : status.error().ToString());
  };
  const auto stats = state.AssignReviewers(kSyntheticCall, now_us);
  note(stats.status());
  note(SimulateReviews(state, kSyntheticCall, 5, now_us + 1));
  const auto draft = state.DraftDecision(kSyntheticCall, now_us + 2, "greedy");
  note(draft.status());
  if (draft.ok()) out.push_back(draft->total_awarded.ToString());
  note(state.CommitDecision(kSyntheticCall, now_us + 3));
  for (const auto& [id, grant] : state.grants()) {
    note(state.RecordUsage(id, Credits::FromWhole(10), now_us + 4));
  }
  out.push_back(std::to_string(state.Tick(now_us + 400LL * 86'400'000'000LL)));
  out.push_back(state.log().head());
  return out;
}

TEST(ProgramCodec, DecodedProgramGoesOnLikeTheOriginal) {
  auto made = MakeSyntheticCall({.proposals = 60, .reviewers = 25, .institutions = 20, .seed = 3});
  ASSERT_TRUE(made.ok()) << made.error().ToString();
  ProgramState live = std::move(*made);
  ProgramState decoded = RoundTrip(live);
  const int64_t now_us = live.log().entries().back().at_us + 1;
  const auto live_answers = Finish(live, now_us);
  const auto decoded_answers = Finish(decoded, now_us);
  EXPECT_EQ(live_answers, decoded_answers);
  EXPECT_EQ(Encoded(live), Encoded(decoded));
  EXPECT_FALSE(live.grants().empty());
  // And a snapshot of the decided program round-trips too.
  ProgramState again = RoundTrip(live);
  EXPECT_EQ(again.log().Export(), live.log().Export());
  EXPECT_TRUE(again.ledger().Verify().ok());
}

TEST(ProgramCodec, TruncatedOrAlteredBytesAreRefusedNeverACrash) {
  auto made = MakeSyntheticCall({.proposals = 20, .reviewers = 10, .institutions = 8, .seed = 4});
  ASSERT_TRUE(made.ok());
  ProgramState state = std::move(*made);
  (void)Finish(state, state.log().entries().back().at_us + 1);
  const std::string bytes = Encoded(state);
  for (size_t size = 0; size < bytes.size(); size += 1 + size / 6) {
    auto decoded = ProgramState::DecodeState(std::string_view(bytes).substr(0, size));
    ASSERT_FALSE(decoded.ok()) << size;
    EXPECT_EQ(decoded.code(), ErrorCode::kCorruption);
  }
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 150; ++trial) {
    std::string altered = bytes;
    const size_t at = std::uniform_int_distribution<size_t>(0, altered.size() - 1)(rng);
    altered[at] = static_cast<char>(altered[at] ^ (1 << (trial % 8)));
    auto decoded = ProgramState::DecodeState(altered);
    if (decoded.ok()) {
      EXPECT_FALSE(Encoded(*decoded).empty());
    } else {
      EXPECT_EQ(decoded.code(), ErrorCode::kCorruption);
    }
  }
  std::string other = bytes;
  other[4] = 7;  // the version
  auto refused = ProgramState::DecodeState(other);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("unsupported version"), std::string::npos);
}

}  // namespace
}  // namespace atrium::program
