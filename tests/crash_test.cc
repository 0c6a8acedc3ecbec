// Crash test: `atrium ledger bench --durable --progress` applies transfers to a journal
// and prints `acked N` once N transfers are durable. It is killed with SIGKILL at random
// moments (during start-up and recovery, or in the middle of a batch), 24 times, on the
// same journal. After each kill the journal is reopened (the
// same recovery a restart does) and checked: every acknowledged transfer is there with
// its exact fields, the transfers present are exactly a prefix of the workload ending at a
// batch boundary (nothing half-applied), the hash chain and every snapshot verify, and the
// balances sum to zero. The next run continues the same journal. Snapshots are made small
// so that runs also die while writing one. SIGKILL leaves the operating system's page
// cache alone, so this test proves the order of commit and acknowledgement, not the fsync
// itself: SqliteStore checks at open that synchronous=FULL is in force. ATRIUM_SEED
// replays a run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "cli/ledger_bench.h"
#include "journal/journal.h"
#include "journal/sqlite_store.h"
#include "process.h"

namespace atrium {
namespace {

constexpr uint32_t kAccounts = 300;
constexpr uint64_t kWorkloadSeed = 7;
constexpr int kKills = 24;

TEST(CrashTest, EveryAcknowledgedTransferSurvivesSigkill) {
  const char* seed_text = std::getenv("ATRIUM_SEED");
  const uint64_t seed = seed_text != nullptr ? std::strtoull(seed_text, nullptr, 10) : 4242;
  SCOPED_TRACE("replay with ATRIUM_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const auto dir =
      std::filesystem::path(::testing::TempDir()) / ("atrium-crash-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = (dir / "ledger.db").string();
  const cli::BenchWorkload workload{.seed = kWorkloadSeed, .accounts = kAccounts};

  uint64_t durable_before = 0;  // workload transfers present before this run
  uint64_t acked_total = 0;
  int killed_mid_run = 0;
  uint64_t snapshots_seen = 0;
  for (int kill_idx = 0; kill_idx < kKills; ++kill_idx) {
    const uint32_t batch = static_cast<uint32_t>(50 + rng() % 1500);
    // One run in four dies at a random moment of its start (recovery, setup); the others
    // die just after their k-th acknowledgement, in the middle of the next batch.
    const bool kill_by_time = rng() % 4 == 0;
    const uint64_t kill_after_acks = 1 + rng() % 6;
    const auto delay =
        kill_by_time ? std::chrono::milliseconds(rng() % 300) : std::chrono::milliseconds(60'000);
    uint64_t acked = 0;
    uint64_t acks_this_run = 0;
    const testing::ProcessResult run = testing::RunAndKill(
        {ATRIUM_BINARY, "ledger", "bench", "--durable", "--db", db, "--progress", "--no-baseline",
         "--transfers", "2000000", "--batch", std::to_string(batch), "--accounts",
         std::to_string(kAccounts), "--seed", std::to_string(kWorkloadSeed),
         // Small enough that snapshots are written (and killed) during the test too.
         "--snapshot-min-bytes", "65536"},
        delay, [&](const std::string& line) {
          if (line.rfind("acked ", 0) != 0) return false;
          acked = std::stoull(line.substr(6));
          return !kill_by_time && ++acks_this_run >= kill_after_acks;
        });
    ASSERT_EQ(run.signal, SIGKILL) << "run " << kill_idx << " ended by itself: " << run.err;
    if (acked > durable_before) ++killed_mid_run;

    // Restart: recover from the journal and check what survived.
    auto store = journal::SqliteStore::Open(db, journal::OpenMode::kReadWrite);
    if (!store.ok() && store.code() == ErrorCode::kNotFound) {
      ASSERT_EQ(acked, 0u) << "acknowledged without a journal";
      continue;  // killed before the journal was created
    }
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    auto recovered = journal::DurableCore::Open(std::move(*store));
    ASSERT_TRUE(recovered.ok()) << "run " << kill_idx << ": " << recovered.error().ToString();
    const ledger::Ledger& ledger = (*recovered)->core().ledger();
    if (ledger.account_count() == 0) {
      ASSERT_EQ(acked, 0u);
      continue;
    }
    ASSERT_EQ(ledger.account_count(), kAccounts + 1u);
    ASSERT_GE(ledger.transfer_count(), kAccounts) << "funding applies in one command";
    const uint64_t present = ledger.transfer_count() - kAccounts;
    ASSERT_GE(present, acked) << "run " << kill_idx << " lost acknowledged transfers";
    ASSERT_GE(present, durable_before) << "run " << kill_idx << " lost earlier transfers";
    ASSERT_EQ((present - durable_before) % batch, 0u)
        << "run " << kill_idx << ": a batch was half applied";
    // The workload's prefix, exactly: each transfer with its fields, none beyond.
    for (uint64_t index = 0; index < present; ++index) {
      const ledger::TransferSpec expected = workload.Transfer(index);
      const auto stored = ledger.FindTransfer(expected.id);
      ASSERT_TRUE(stored.has_value()) << "transfer " << index << " missing";
      ASSERT_EQ(stored->debit_account_id, expected.debit_account_id);
      ASSERT_EQ(stored->credit_account_id, expected.credit_account_id);
      ASSERT_EQ(stored->amount, expected.amount);
      ASSERT_EQ(stored->user_data, expected.user_data);
    }
    ASSERT_FALSE(ledger.FindTransfer(workload.Transfer(present).id).has_value());
    recovered->reset();

    auto read_only = journal::SqliteStore::Open(db, journal::OpenMode::kReadOnly);
    ASSERT_TRUE(read_only.ok());
    auto report = journal::VerifyStore(**read_only);
    ASSERT_TRUE(report.ok()) << "run " << kill_idx << ": " << report.error().ToString();
    snapshots_seen = std::max<uint64_t>(snapshots_seen, report->snapshots_checked);
    durable_before = present;
    acked_total = std::max(acked_total, acked);
  }
  // Most kills must have landed while work was being acknowledged.
  EXPECT_GE(killed_mid_run, kKills / 2);
  EXPECT_GT(acked_total, 0u);
  // Recovery started from snapshots as well as from the bare journal.
  EXPECT_GT(snapshots_seen, 0u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace atrium
