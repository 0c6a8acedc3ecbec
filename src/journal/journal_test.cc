#include "journal/journal.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "journal/sqlite_store.h"

namespace atrium::journal {
namespace {

using core::Command;
using ledger::AccountKind;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("atrium-journal-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "ledger.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<DurableCore> OpenDurable(Options options = {}) {
    auto store = SqliteStore::Open(path_, OpenMode::kReadWriteCreate);
    EXPECT_TRUE(store.ok()) << store.error().ToString();
    auto durable = DurableCore::Open(std::move(*store), options);
    EXPECT_TRUE(durable.ok()) << durable.error().ToString();
    return durable.ok() ? std::move(*durable) : nullptr;
  }
  Status OpenStatus() {
    auto store = SqliteStore::Open(path_, OpenMode::kReadWrite);
    if (!store.ok()) return store.error();
    return DurableCore::Open(std::move(*store)).status();
  }
  Result<VerifyReport> Verify() {
    auto store = SqliteStore::Open(path_, OpenMode::kReadOnly);
    if (!store.ok()) return store.error();
    return VerifyStore(**store);
  }
  void Sql(const std::string& statement) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* message = nullptr;
    EXPECT_EQ(sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &message), SQLITE_OK)
        << (message ? message : "");
    sqlite3_free(message);
    sqlite3_close(db);
  }

  static Command Accounts(int64_t now_us) {
    return core::CreateAccounts{
        .now_us = now_us,
        .accounts = {
            {.id = 1, .kind = AccountKind::kSponsor},
            {.id = 2, .kind = AccountKind::kGrant, .flags = ledger::kDebitsMustNotExceedCredits}}};
  }
  static Command Fund(Id128 id, int64_t whole, int64_t now_us) {  // sponsor to grant
    return core::CreateTransfers{.now_us = now_us,
                                 .transfers = {{.id = id,
                                                .debit_account_id = 1,
                                                .credit_account_id = 2,
                                                .amount = Credits::FromWhole(whole)}}};
  }
  static std::string State(const DurableCore& durable) {
    std::string state;
    durable.core().Encode(&state);
    return state;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(JournalTest, ReopenReplaysEveryAcknowledgedCommand) {
  std::string before;
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    ASSERT_TRUE(durable->Submit(Fund(11, 7, 3)).ok());
    EXPECT_EQ(durable->last_seq(), 3u);
    before = State(*durable);
  }
  auto reopened = OpenDurable();
  EXPECT_EQ(reopened->last_seq(), 3u);
  EXPECT_EQ(reopened->recovered_from_seq(), 0u);
  EXPECT_EQ(State(*reopened), before);
  EXPECT_EQ(reopened->core().ledger().FindAccount(2)->balance(), Credits::FromWhole(12));
  auto report = Verify();
  ASSERT_TRUE(report.ok()) << report.error().ToString();
  EXPECT_EQ(report->entries, 3u);
  EXPECT_EQ(report->transfers, 2u);
  EXPECT_EQ(report->last_hash, reopened->last_hash());
}

TEST_F(JournalTest, RefusedCommandsAreNotJournaled) {
  auto durable = OpenDurable();
  ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
  auto refused =
      durable->Submit(core::CreateTransfers{.now_us = 2,
                                            .transfers = {{.id = 10,
                                                           .debit_account_id = 2,
                                                           .credit_account_id = 1,
                                                           .amount = Credits::FromWhole(1)}}});
  ASSERT_TRUE(refused.ok());
  ASSERT_EQ(refused->failures.size(), 1u);
  EXPECT_EQ(refused->failures[0].code, ErrorCode::kInsufficientCredits);
  EXPECT_EQ(durable->last_seq(), 1u);
}

TEST_F(JournalTest, GroupCommitAppendsManyCommandsAtOnce) {
  auto durable = OpenDurable();
  std::vector<Command> commands{Accounts(1)};
  for (uint32_t transfer_idx = 0; transfer_idx < 50; ++transfer_idx) {
    commands.push_back(Fund(100 + transfer_idx, 1, 2 + transfer_idx));
  }
  auto results = durable->Submit(commands);
  ASSERT_TRUE(results.ok());
  EXPECT_EQ(results->size(), 51u);
  EXPECT_EQ(durable->last_seq(), 51u);
  EXPECT_EQ(durable->core().ledger().FindAccount(2)->balance(), Credits::FromWhole(50));
}

TEST_F(JournalTest, SnapshotShortensRecoveryToTheSameState) {
  std::string before;
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    ASSERT_TRUE(durable->Snapshot().ok());
    ASSERT_TRUE(durable->Submit(Fund(11, 7, 3)).ok());
    before = State(*durable);
  }
  auto reopened = OpenDurable();
  EXPECT_EQ(reopened->recovered_from_seq(), 2u);
  EXPECT_EQ(reopened->last_seq(), 3u);
  EXPECT_EQ(State(*reopened), before);
  auto report = Verify();
  ASSERT_TRUE(report.ok()) << report.error().ToString();
  EXPECT_EQ(report->snapshots_checked, 1u);
}

TEST_F(JournalTest, AutomaticSnapshotsFollowTheJournalsGrowth) {
  Options options{.snapshot_bytes_min = 256};
  {
    auto durable = OpenDurable(options);
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    for (uint32_t transfer_idx = 0; transfer_idx < 40; ++transfer_idx) {
      ASSERT_TRUE(durable->Submit(Fund(100 + transfer_idx, 1, 2 + transfer_idx)).ok());
    }
  }
  auto reopened = OpenDurable(options);
  EXPECT_GT(reopened->recovered_from_seq(), 0u);
  EXPECT_EQ(reopened->last_seq(), 41u);
  auto store = SqliteStore::Open(path_, OpenMode::kReadOnly);
  auto index = (*store)->SnapshotIndex();
  ASSERT_TRUE(index.ok());
  EXPECT_LE(index->size(), SqliteStore::kSnapshotsKept);
  EXPECT_TRUE(Verify().ok());
}

TEST_F(JournalTest, AlteredEntryIsFoundAtThatEntry) {
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    ASSERT_TRUE(durable->Submit(Fund(11, 7, 3)).ok());
  }
  // Edit one byte in the middle of entry 2's payload.
  Sql("UPDATE entries SET payload = substr(payload, 1, 20) || x'7F' || substr(payload, 22)"
      " WHERE seq = 2");
  const Status opened = OpenStatus();
  EXPECT_EQ(opened.code(), ErrorCode::kChainBroken);
  EXPECT_NE(opened.error().message.find("entry 2"), std::string::npos) << opened.error().message;
  auto report = Verify();
  EXPECT_EQ(report.code(), ErrorCode::kChainBroken);
  EXPECT_NE(report.error().message.find("entry 2"), std::string::npos);
}

TEST_F(JournalTest, MissingEntryBreaksTheChain) {
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    ASSERT_TRUE(durable->Submit(Fund(11, 7, 3)).ok());
  }
  Sql("DELETE FROM entries WHERE seq = 2");
  EXPECT_EQ(OpenStatus().code(), ErrorCode::kChainBroken);
  auto report = Verify();
  EXPECT_EQ(report.code(), ErrorCode::kChainBroken);
  EXPECT_NE(report.error().message.find("entry 2: missing"), std::string::npos);
}

TEST_F(JournalTest, TruncatedTailAfterASnapshotIsDetected) {
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    ASSERT_TRUE(durable->Snapshot().ok());
  }
  Sql("DELETE FROM entries WHERE seq = 2");
  EXPECT_FALSE(OpenStatus().ok());
  EXPECT_FALSE(Verify().ok());
}

TEST_F(JournalTest, AlteredSnapshotIsDetected) {
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    ASSERT_TRUE(durable->Snapshot().ok());
  }
  Sql("UPDATE snapshot_chunks SET data = substr(data, 1, 30) || x'01' || substr(data, 32)");
  EXPECT_EQ(OpenStatus().code(), ErrorCode::kCorruption);
  EXPECT_EQ(Verify().code(), ErrorCode::kCorruption);
}

TEST_F(JournalTest, ForeignAndMissingFilesAreRefused) {
  EXPECT_EQ(SqliteStore::Open(path_, OpenMode::kReadOnly).code(), ErrorCode::kNotFound);
  EXPECT_EQ(SqliteStore::Open(path_, OpenMode::kReadWrite).code(), ErrorCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(path_));
  {
    std::ofstream garbage(path_, std::ios::binary);
    garbage << std::string(8192, 'x');
  }
  const auto size_before = std::filesystem::file_size(path_);
  EXPECT_EQ(SqliteStore::Open(path_, OpenMode::kReadWrite).code(), ErrorCode::kCorruption);
  EXPECT_EQ(SqliteStore::Open(path_, OpenMode::kReadOnly).code(), ErrorCode::kCorruption);
  EXPECT_EQ(std::filesystem::file_size(path_), size_before);
  // A SQLite database that is not an Atrium journal.
  std::filesystem::remove(path_);
  Sql("CREATE TABLE other (x)");
  EXPECT_EQ(SqliteStore::Open(path_, OpenMode::kReadOnly).code(), ErrorCode::kCorruption);
}

// A store that fails on demand, for the poisoning rule.
class FailingStore final : public JournalStore {
 public:
  explicit FailingStore(std::unique_ptr<JournalStore> inner) : inner_(std::move(inner)) {}
  Status Append(std::span<const StoredEntry> entries) override {
    if (fail_) return MakeError(ErrorCode::kIoError, "disk full (injected)");
    return inner_->Append(entries);
  }
  Status Scan(uint64_t after, const std::function<Status(const StoredEntry&)>& visit) override {
    return inner_->Scan(after, visit);
  }
  Result<std::optional<StoredEntry>> LastEntry() override { return inner_->LastEntry(); }
  Status PutSnapshot(const StoredSnapshot& snapshot) override {
    return inner_->PutSnapshot(snapshot);
  }
  Result<std::optional<StoredSnapshot>> LatestSnapshot() override {
    return inner_->LatestSnapshot();
  }
  Result<StoredSnapshot> ReadSnapshot(uint64_t seq) override { return inner_->ReadSnapshot(seq); }
  Result<std::vector<StoredSnapshot>> SnapshotIndex() override { return inner_->SnapshotIndex(); }
  bool read_only() const override { return false; }
  bool* fail() { return &fail_; }

 private:
  std::unique_ptr<JournalStore> inner_;
  bool fail_ = false;
};

TEST_F(JournalTest, AFailedAppendPoisonsUntilReopenedAndLosesNothingAcknowledged) {
  {
    auto sqlite = SqliteStore::Open(path_, OpenMode::kReadWriteCreate);
    ASSERT_TRUE(sqlite.ok());
    auto failing = std::make_unique<FailingStore>(std::move(*sqlite));
    bool* fail = failing->fail();
    auto durable = DurableCore::Open(std::move(failing));
    ASSERT_TRUE(durable.ok());
    ASSERT_TRUE((*durable)->Submit(Accounts(1)).ok());
    ASSERT_TRUE((*durable)->Submit(Fund(10, 5, 2)).ok());
    *fail = true;
    EXPECT_EQ((*durable)->Submit(Fund(11, 7, 3)).code(), ErrorCode::kIoError);
    *fail = false;
    EXPECT_EQ((*durable)->Submit(Fund(12, 1, 4)).code(), ErrorCode::kJournalPoisoned);
  }
  auto reopened = OpenDurable();
  EXPECT_EQ(reopened->last_seq(), 2u);
  EXPECT_EQ(reopened->core().ledger().FindAccount(2)->balance(), Credits::FromWhole(5));
  EXPECT_FALSE(reopened->core().ledger().FindTransfer(11).has_value());
}

TEST_F(JournalTest, ReadOnlyOpenRefusesCommands) {
  { ASSERT_TRUE(OpenDurable()->Submit(Accounts(1)).ok()); }
  auto store = SqliteStore::Open(path_, OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok());
  auto durable = DurableCore::Open(std::move(*store));
  ASSERT_TRUE(durable.ok());
  EXPECT_EQ((*durable)->Submit(Fund(10, 1, 2)).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ((*durable)->core().ledger().account_count(), 2u);
}

TEST(ChainHashTest, DependsOnEveryInput) {
  const Digest zero{};
  const Digest base = ChainHash(zero, 1, "payload");
  EXPECT_EQ(base, ChainHash(zero, 1, "payload"));
  EXPECT_NE(base, ChainHash(zero, 2, "payload"));
  EXPECT_NE(base, ChainHash(zero, 1, "payloae"));
  Digest other{};
  other[31] = 1;
  EXPECT_NE(base, ChainHash(other, 1, "payload"));
  EXPECT_EQ(ToHex(Sha256Of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace atrium::journal
