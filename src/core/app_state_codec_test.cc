// AppState's and Core's snapshot codecs: round trips, the version gate, and hostile
// bytes (truncated, altered) refused with kCorruption, never a crash.
#include <gtest/gtest.h>

#include <random>

#include "base/bytes.h"
#include "core/core.h"

namespace atrium::core {
namespace {

using nlohmann::json;

constexpr int64_t kT0Us = 1'767'225'600'000'000LL;  // 2026-01-01

constexpr char kCluster[] = R"(name = "tiny"
default_accelerator = "trn1"
[accelerators.trn1]
price_per_chip_hour = "1.34375"
[node_types.trn]
accelerator = "trn1"
chips = 16
allocation_sizes = [1, 4, 8, 16]
[[pools]]
name = "trn"
node_type = "trn"
nodes = 4
nodes_per_group = 2
groups_per_block = 2
)";

json Admin() { return {{"role", "admin"}, {"token", "t-admin"}}; }

Core Sample() {
  Core core;
  int64_t now_us = kT0Us;
  auto apply = [&](json command) {
    now_us += 1'000'000;
    const CommandResult result = core.Apply(AppCommand{.now_us = now_us, .json = command.dump()});
    EXPECT_TRUE(result.app && result.app->status.ok())
        << command.dump() << " -> " << result.app->status.error().ToString();
  };
  apply({{"op", "token_create"},
         {"actor", Admin()},
         {"token_id", "t-admin"},
         {"role", "admin"},
         {"person", ""},
         {"salt", std::string(32, 'a')},
         {"hash", std::string(64, 'b')}});
  apply({{"op", "token_create"},
         {"actor", Admin()},
         {"token_id", "t-r"},
         {"role", "researcher"},
         {"person", "P1"},
         {"salt", std::string(32, 'c')},
         {"hash", std::string(64, 'd')},
         {"idempotency_key", "once"}});
  apply({{"op", "token_revoke"}, {"actor", Admin()}, {"token_id", "t-r"}});
  apply({{"op", "cluster_load"}, {"actor", Admin()}, {"toml", kCluster}});
  apply(
      {{"op", "node_drain"}, {"actor", Admin()}, {"node", core.app().cluster()->nodes()[1].name}});
  return core;
}

std::string Encoded(const Core& core) {
  std::string bytes;
  core.Encode(&bytes);
  return bytes;
}

TEST(AppStateCodec, RoundTripKeepsTokensIdempotencyAndCluster) {
  const Core core = Sample();
  const std::string bytes = Encoded(core);
  auto decoded = Core::Decode(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
  EXPECT_EQ(Encoded(*decoded), bytes);
  EXPECT_TRUE(decoded->app().FindToken("t-r")->revoked);
  ASSERT_TRUE(decoded->app().FindIdempotent("t-admin", "once").has_value());
  EXPECT_EQ(decoded->app().FindIdempotent("t-admin", "once")->result,
            core.app().FindIdempotent("t-admin", "once")->result);
  EXPECT_EQ(decoded->app().node_states(), core.app().node_states());
  EXPECT_EQ(decoded->app().cluster()->nodes().size(), 4u);
  // The same retry answers the same way on both.
  const json retry = {
      {"op", "token_create"},         {"actor", Admin()},         {"token_id", "t-other"},
      {"role", "researcher"},         {"person", "P1"},           {"salt", std::string(32, 'e')},
      {"hash", std::string(64, 'f')}, {"idempotency_key", "once"}};
  Core live = Sample();
  const auto a = live.Apply(AppCommand{.now_us = kT0Us + 60'000'000, .json = retry.dump()});
  const auto b = decoded->Apply(AppCommand{.now_us = kT0Us + 60'000'000, .json = retry.dump()});
  EXPECT_EQ(a.app->result, b.app->result);
  EXPECT_EQ(a.app->replayed, b.app->replayed);
  EXPECT_EQ(Encoded(live), Encoded(*decoded));
}

// A job's name, argv and datasets share one packed string: every split survives, empty
// argv items included, and a record stays within 128 bytes (issue 14's memory budget).
TEST(JobRecordTexts, NameArgvAndDatasetsComeBackAsGiven) {
  static_assert(sizeof(JobRecord) <= 128, "a job record grew past 128 bytes");
  const std::vector<JobTexts> cases = {
      {},
      {.name = "", .argv = {""}, .datasets = {}},
      {.name = "job", .argv = {"train"}, .datasets = {}},
      {.name = "", .argv = {}, .datasets = {"ehr"}},
      {.name = "a name well past the inline buffer",
       .argv = {"python", "", "--flag", std::string(300, 'x'), ""},
       .datasets = {"ehr", "imagenet-2012"}},
  };
  for (const JobTexts& given : cases) {
    JobRecord record;
    record.SetTexts(given.name, given.argv, given.datasets);
    const JobTexts back = record.UnpackTexts();
    EXPECT_EQ(back.name, given.name);
    EXPECT_EQ(back.argv, given.argv);
    EXPECT_EQ(back.datasets, given.datasets);
    EXPECT_EQ(record.name(), given.name);
    EXPECT_EQ(record.argv(), given.argv);
    EXPECT_EQ(record.datasets(), given.datasets);
  }
  // A default record reads as empty texts.
  EXPECT_EQ(JobRecord().name(), "");
  EXPECT_TRUE(JobRecord().argv().empty());
  EXPECT_TRUE(JobRecord().datasets().empty());
}

TEST(AppStateCodec, OlderAndUnknownVersionsAreRefusedByName) {
  std::string bytes = Encoded(Sample());
  for (const uint32_t version : {1u, 2u, 3u, 4u, 6u}) {
    std::string other = bytes;
    std::string patch;
    ByteWriter(&patch).Put<uint32_t>(version);
    other.replace(4, 4, patch);
    auto decoded = Core::Decode(other);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.code(), ErrorCode::kCorruption);
    EXPECT_NE(decoded.error().message.find("unsupported version " + std::to_string(version)),
              std::string::npos);
    EXPECT_EQ(*Core::SnapshotVersion(other), version);
  }
  EXPECT_FALSE(Core::SnapshotVersion("not a snapshot").ok());
}

TEST(AppStateCodec, TruncatedOrAlteredBytesAreRefusedNeverACrash) {
  const std::string bytes = Encoded(Sample());
  for (size_t size = 0; size < bytes.size(); size += 1 + size / 64) {
    auto decoded = Core::Decode(std::string_view(bytes).substr(0, size));
    ASSERT_FALSE(decoded.ok()) << size;
    EXPECT_EQ(decoded.code(), ErrorCode::kCorruption);
  }
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    std::string altered = bytes;
    const size_t at = std::uniform_int_distribution<size_t>(0, altered.size() - 1)(rng);
    altered[at] = static_cast<char>(altered[at] ^ (1 << (trial % 8)));
    auto decoded = Core::Decode(altered);
    if (decoded.ok()) {
      EXPECT_FALSE(Encoded(*decoded).empty());
    } else {
      EXPECT_EQ(decoded.code(), ErrorCode::kCorruption) << decoded.error().ToString();
    }
  }
}

}  // namespace
}  // namespace atrium::core
