#include "program/decision_log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace atrium::program {
namespace {

DecisionLog SampleLog() {
  DecisionLog log;
  log.Append(10, "program_created", {{"program", "bot"}, {"total_budget", "110000000"}});
  log.Append(20, "call_opened", {{"call", "c1"}, {"track", "research"}});
  log.Append(
      30, "proposal_submitted",
      {{"proposal", "P-1"}, {"institution", "Université de Montréal"}, {"topics", {"a", "b"}}});
  log.Append(40, "conflict_recorded", {{"proposal", "P-1"}, {"reason", "same_institution"}});
  log.Append(50, "review_submitted", {{"proposal", "P-1"}, {"scores", {4, 5, 3}}});
  log.Append(60, "decision_committed", {{"call", "c1"}, {"total_awarded", "500000"}});
  log.Append(70, "grant_created", {{"grant", "G-P-1"}, {"amount", "500000"}});
  return log;
}

int64_t EntryOfByte(const std::string& text, size_t position) {
  return static_cast<int64_t>(
             std::count(text.begin(), text.begin() + static_cast<long>(position), '\n')) +
         1;
}

TEST(DecisionLogTest, ChainsAndVerifies) {
  const DecisionLog log = SampleLog();
  EXPECT_EQ(log.entries().front().prev, GenesisHash());
  for (size_t idx = 1; idx < log.size(); ++idx) {
    EXPECT_EQ(log.entries()[idx].prev, log.entries()[idx - 1].hash);
  }
  const LogVerification verification = VerifyLog(log.Export());
  EXPECT_TRUE(verification.ok) << verification.reason;
  EXPECT_EQ(verification.entries, 7);
  EXPECT_EQ(verification.head, log.head());
  EXPECT_TRUE(VerifyLog("").ok);
}

// Entries keep their data as canonical text and write their lines directly: each line and
// hash must be exactly what nlohmann writes for the whole entry as a JSON object (the form
// logs published before were hashed in), escapes and non-ASCII text included.
TEST(DecisionLogTest, LinesAndHashesAreNlohmannsCanonicalJson) {
  DecisionLog log;
  const std::vector<std::pair<std::string, nlohmann::json>> events = {
      {"program_created", {{"program", "bot"}, {"total_budget", "110000000"}}},
      {"quote\"back\\slash\ttab", {{"z", nullptr}, {"a", {1, -2, 3.5, true}}}},
      {"école", {{"nested", {{"b", {{"c", "ünïcödé \x01"}}}, {"a", nlohmann::json::array()}}}}},
      {"empty", nlohmann::json::object()},
      {"scalar", "just text"},
      {"null", nullptr},
  };
  int64_t at_us = -5;
  for (const auto& [type, data] : events) log.Append(at_us += 1'000'000'000'007, type, data);
  std::string expected_export;
  std::string prev = GenesisHash();
  for (size_t idx = 0; idx < events.size(); ++idx) {
    const LogEntry& entry = log.entries()[idx];
    nlohmann::json body = {{"seq", entry.seq},
                           {"at_us", entry.at_us},
                           {"type", events[idx].first},
                           {"data", events[idx].second},
                           {"prev", prev}};
    EXPECT_EQ(entry.hash, Sha256Hex(prev + "\n" + body.dump())) << idx;
    EXPECT_EQ(entry.data.parsed(), events[idx].second) << idx;
    body["hash"] = entry.hash;
    expected_export += body.dump() + "\n";
    prev = entry.hash;
  }
  EXPECT_EQ(log.Export(), expected_export);
  EXPECT_TRUE(VerifyLog(log.Export()).ok);
}

TEST(DecisionLogTest, SameEventsSameHashes) {
  EXPECT_EQ(SampleLog().head(), SampleLog().head());
  DecisionLog other = SampleLog();
  other.Append(80, "x", {{"a", 1}});
  DecisionLog another = SampleLog();
  another.Append(80, "x", {{"a", 2}});
  EXPECT_NE(other.head(), another.head());
}

TEST(DecisionLogTest, EveryAlteredByteIsFoundAtItsEntry) {
  const std::string exported = SampleLog().Export();
  for (size_t position = 0; position < exported.size(); ++position) {
    for (int mask : {0x01, 0x20, 0x80}) {
      std::string altered = exported;
      altered[position] = static_cast<char>(static_cast<unsigned char>(altered[position]) ^ mask);
      const LogVerification verification = VerifyLog(altered);
      ASSERT_FALSE(verification.ok) << "byte " << position << " mask " << mask;
      ASSERT_EQ(verification.first_broken, EntryOfByte(exported, position))
          << "byte " << position << " mask " << mask << ": " << verification.reason;
    }
  }
}

TEST(DecisionLogTest, RemovedOrSwappedEntriesAreFound) {
  const DecisionLog log = SampleLog();
  std::vector<std::string> lines;
  const std::string exported = log.Export();
  size_t start = 0;
  while (start < exported.size()) {
    const size_t end = exported.find('\n', start);
    lines.push_back(exported.substr(start, end - start + 1));
    start = end + 1;
  }
  ASSERT_EQ(lines.size(), 7u);
  std::string without_third;
  for (size_t idx = 0; idx < lines.size(); ++idx) {
    if (idx != 2) without_third += lines[idx];
  }
  EXPECT_EQ(VerifyLog(without_third).first_broken, 3);
  std::string swapped;
  for (size_t idx : {0u, 1u, 3u, 2u, 4u, 5u, 6u}) swapped += lines[idx];
  EXPECT_EQ(VerifyLog(swapped).first_broken, 3);
  EXPECT_EQ(VerifyLog(exported + "{}\n").first_broken, 8);
  EXPECT_EQ(VerifyLog(exported.substr(0, exported.size() - 1)).first_broken, 7);
}

}  // namespace
}  // namespace atrium::program
