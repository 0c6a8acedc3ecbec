// The journal's behaviour, run against each store: this file is compiled twice, as
// journal_test (SQLite) and, with ATRIUM_JOURNAL_TEST_PG, as journal_pg_test against the
// real PostgreSQL server that the test fixture starts (scripts/pg-test-server.sh). The
// PostgreSQL build fails, rather than skips, when no server is given.
#include "journal/journal.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "base/bytes.h"
#include "journal/sqlite_store.h"
#include "journal/testing/failing_store.h"
#ifdef ATRIUM_JOURNAL_TEST_PG
#include <pqxx/pqxx>

#include "journal/pg_store.h"
#endif

namespace atrium::journal {
namespace {

using core::Command;
using ledger::AccountKind;

// Where a test's journal lives, and how a test damages it behind the journal's back.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Result<std::unique_ptr<JournalStore>> Open(OpenMode mode) = 0;
  virtual void TamperEntry(uint64_t seq) = 0;  // change one byte inside its payload
  virtual void DeleteEntry(uint64_t seq) = 0;
  // Changes one byte of snapshot `seq`'s state (every snapshot's if 0).
  virtual void TamperSnapshots(uint64_t seq = 0) = 0;
};

class SqliteBackend final : public Backend {
 public:
  explicit SqliteBackend(std::string path) : path_(std::move(path)) {}
  Result<std::unique_ptr<JournalStore>> Open(OpenMode mode) override {
    ATRIUM_ASSIGN_OR_RETURN(auto store, SqliteStore::Open(path_, mode));
    return std::unique_ptr<JournalStore>(std::move(store));
  }
  void TamperEntry(uint64_t seq) override {
    Sql("UPDATE entries SET payload = substr(payload, 1, 20) || x'7F' || substr(payload, 22)"
        " WHERE seq = " +
        std::to_string(seq));
  }
  void DeleteEntry(uint64_t seq) override {
    Sql("DELETE FROM entries WHERE seq = " + std::to_string(seq));
  }
  void TamperSnapshots(uint64_t seq = 0) override {
    Sql("UPDATE snapshot_chunks SET data = substr(data, 1, 30) || x'01' || substr(data, 32)" +
        (seq == 0 ? std::string() : " WHERE seq = " + std::to_string(seq)));
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

 private:
  std::string path_;
};

#ifdef ATRIUM_JOURNAL_TEST_PG
class PgBackend final : public Backend {
 public:
  explicit PgBackend(std::string url) : url_(std::move(url)) {
    Sql("DROP TABLE IF EXISTS atrium_meta, atrium_entries, atrium_snapshots,"
        " atrium_snapshot_chunks");
  }
  Result<std::unique_ptr<JournalStore>> Open(OpenMode mode) override {
    ATRIUM_ASSIGN_OR_RETURN(auto store, PgStore::Open(url_, mode));
    return std::unique_ptr<JournalStore>(std::move(store));
  }
  void TamperEntry(uint64_t seq) override {
    Sql("UPDATE atrium_entries SET payload = overlay(payload placing '\\x7f'::bytea from 21"
        " for 1) WHERE seq = " +
        std::to_string(seq));
  }
  void DeleteEntry(uint64_t seq) override {
    Sql("DELETE FROM atrium_entries WHERE seq = " + std::to_string(seq));
  }
  void TamperSnapshots(uint64_t seq = 0) override {
    Sql("UPDATE atrium_snapshot_chunks SET data = overlay(data placing '\\x01'::bytea from 31"
        " for 1)" +
        (seq == 0 ? std::string() : " WHERE seq = " + std::to_string(seq)));
  }
  void Sql(const std::string& statement) {
    pqxx::connection connection(url_);
    pqxx::work work(connection);
    work.exec(statement);
    work.commit();
  }

 private:
  std::string url_;
};
#endif

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("atrium-journal-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "ledger.db").string();
#ifdef ATRIUM_JOURNAL_TEST_PG
    const char* url = std::getenv("ATRIUM_TEST_PG_URL");
    ASSERT_NE(url, nullptr) << "ATRIUM_TEST_PG_URL must name the test PostgreSQL server";
    backend_ = std::make_unique<PgBackend>(url);
#else
    backend_ = std::make_unique<SqliteBackend>(path_);
#endif
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<DurableCore> OpenDurable(Options options = {}) {
    auto store = backend_->Open(OpenMode::kReadWriteCreate);
    EXPECT_TRUE(store.ok()) << store.error().ToString();
    if (!store.ok()) return nullptr;
    auto durable = DurableCore::Open(std::move(*store), options);
    EXPECT_TRUE(durable.ok()) << durable.error().ToString();
    return durable.ok() ? std::move(*durable) : nullptr;
  }
  Status OpenStatus() {
    auto store = backend_->Open(OpenMode::kReadWrite);
    if (!store.ok()) return store.error();
    return DurableCore::Open(std::move(*store)).status();
  }
  Result<VerifyReport> Verify() {
    auto store = backend_->Open(OpenMode::kReadOnly);
    if (!store.ok()) return store.error();
    return VerifyStore(**store);
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
  std::unique_ptr<Backend> backend_;
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

// A snapshot stored in parts (the Committer's way): unread until its head is written,
// then the one recovery starts from; the chunks of a write cut short before its head are
// never read and go once a later snapshot is stored.
TEST_F(JournalTest, ASnapshotStoredInPartsIsReadOnlyOnceItsHeadIsWritten) {
  std::string at_two;
  std::string before;
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    at_two = State(*durable);
    auto captured = durable->CaptureSnapshot();
    ASSERT_TRUE(captured.ok());
    DurableCore::SnapshotWrite write(std::move(*captured));
    int parts = 0;
    for (;;) {
      auto stored = durable->WriteSnapshotPart(write, 16);
      ASSERT_TRUE(stored.ok()) << stored.error().ToString();
      if (*stored) break;
      ++parts;
      if (parts == 2) {
        // Two chunks and no head: nothing to recover from yet.
        auto store = backend_->Open(OpenMode::kReadOnly);
        ASSERT_TRUE(store.ok());
        auto latest = (*store)->LatestSnapshot();
        ASSERT_TRUE(latest.ok());
        EXPECT_FALSE(latest->has_value());
      }
    }
    EXPECT_EQ(static_cast<size_t>(parts), (at_two.size() + 15) / 16);
    // A later snapshot whose write stops after three chunks, as a crash would stop it.
    ASSERT_TRUE(durable->Submit(Fund(11, 7, 3)).ok());
    auto later = durable->CaptureSnapshot();
    ASSERT_TRUE(later.ok());
    DurableCore::SnapshotWrite cut(std::move(*later));
    for (int part = 0; part < 3; ++part) ASSERT_TRUE(durable->WriteSnapshotPart(cut, 16).ok());
    before = State(*durable);
  }
  auto reopened = OpenDurable();
  EXPECT_EQ(reopened->recovered_from_seq(), 2u);
  EXPECT_EQ(reopened->last_seq(), 3u);
  EXPECT_EQ(State(*reopened), before);
  auto report = Verify();
  ASSERT_TRUE(report.ok()) << report.error().ToString();
  EXPECT_EQ(report->snapshots_checked, 1u);
  // A whole snapshot of the same seq (one chunk) leaves none of the stray chunks behind.
  ASSERT_TRUE(reopened->Snapshot().ok());
  auto again = OpenDurable();
  EXPECT_EQ(again->recovered_from_seq(), 3u);
  EXPECT_EQ(State(*again), before);
  ASSERT_TRUE(Verify().ok());
}

// A head drops the heads of snapshots no longer kept but leaves their chunks, which are
// then pruned a few at a time (the Committer prunes one between groups): only chunks older
// than the newest head, never those of a snapshot still being written.
TEST_F(JournalTest, ChunksOfDroppedSnapshotsArePrunedApartFromTheHead) {
  std::string before;
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    // Snapshots at entries 2, 3 and 4, each in parts of 16 bytes.
    std::vector<uint64_t> chunk_counts;
    for (Id128 id = 10; id < 13; ++id) {
      ASSERT_TRUE(durable->Submit(Fund(id, 5, static_cast<int64_t>(id))).ok());
      auto captured = durable->CaptureSnapshot();
      ASSERT_TRUE(captured.ok());
      DurableCore::SnapshotWrite write(std::move(*captured));
      for (;;) {
        auto stored = durable->WriteSnapshotPart(write, 16);
        ASSERT_TRUE(stored.ok()) << stored.error().ToString();
        if (*stored) break;
      }
      chunk_counts.push_back(write.chunks);
    }
    ASSERT_GT(chunk_counts[0], 2u);
    // A fourth snapshot, written only in part: its chunks are the newest and unnamed.
    ASSERT_TRUE(durable->Submit(Fund(13, 5, 13)).ok());
    auto unfinished = durable->CaptureSnapshot();
    ASSERT_TRUE(unfinished.ok());
    DurableCore::SnapshotWrite cut(std::move(*unfinished));
    for (int part = 0; part < 2; ++part) ASSERT_TRUE(durable->WriteSnapshotPart(cut, 16).ok());
    // Two kept (entries 3 and 4): the first snapshot's chunks go, one per call, and no more.
    uint64_t pruned = 0;
    for (int call = 0; call < 1000; ++call) {
      auto one = durable->PruneSnapshotChunks(1);
      ASSERT_TRUE(one.ok()) << one.error().ToString();
      if (*one == 0) break;
      EXPECT_EQ(*one, 1u);
      pruned += *one;
    }
    EXPECT_EQ(pruned, chunk_counts[0]);
    // The unfinished snapshot's chunks survived: it completes and is the one recovered.
    for (;;) {
      auto stored = durable->WriteSnapshotPart(cut, 16);
      ASSERT_TRUE(stored.ok()) << stored.error().ToString();
      if (*stored) break;
    }
    // Its head dropped the second snapshot's head; a bounded prune takes all its chunks.
    auto rest = durable->PruneSnapshotChunks(1000);
    ASSERT_TRUE(rest.ok());
    EXPECT_EQ(*rest, chunk_counts[1]);
    before = State(*durable);
  }
  auto reopened = OpenDurable();
  EXPECT_EQ(reopened->recovered_from_seq(), 5u);
  EXPECT_EQ(State(*reopened), before);
  auto report = Verify();
  ASSERT_TRUE(report.ok()) << report.error().ToString();
  EXPECT_EQ(report->snapshots_checked, 2u);  // entries 4 and 5, both whole
}

TEST_F(JournalTest, AnOlderSnapshotVersionIsPassedOverAndTheJournalReplayed) {
  std::string before;
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    before = State(*durable);
  }
  {
    // What an earlier build left: a version 3 snapshot (ledger and op history) at entry 2.
    auto store = backend_->Open(OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok());
    auto last = (*store)->LastEntry();
    ASSERT_TRUE(last.ok() && last->has_value());
    StoredSnapshot old;
    old.seq = (*last)->seq;
    old.chain_hash = (*last)->hash;
    ByteWriter writer(&old.state);
    writer.Put<uint32_t>(0x31535441);
    writer.Put<uint32_t>(3);
    writer.Put<uint64_t>(0);
    old.state_digest = Sha256Of(old.state);
    ASSERT_TRUE((*store)->PutSnapshot(old).ok());
  }
  auto reopened = OpenDurable();
  EXPECT_EQ(reopened->recovered_from_seq(), 0u);  // replayed from the start
  EXPECT_EQ(reopened->last_seq(), 2u);
  EXPECT_EQ(State(*reopened), before);
  ASSERT_TRUE(reopened->Snapshot().ok());  // the next one is the current version
  auto again = OpenDurable();
  EXPECT_EQ(again->recovered_from_seq(), 2u);
  EXPECT_EQ(State(*again), before);
  EXPECT_TRUE(Verify().ok());
}

TEST_F(JournalTest, SnapshotsAreDueByEntriesSinceTheLast) {
  Options options{.snapshot_entries = 10, .snapshot_bytes_min = 1 << 30};
  {
    auto durable = OpenDurable(options);
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    for (uint32_t transfer_idx = 0; transfer_idx < 24; ++transfer_idx) {
      ASSERT_TRUE(durable->Submit(Fund(100 + transfer_idx, 1, 2 + transfer_idx)).ok());
    }
    EXPECT_EQ(durable->entries_since_snapshot(), 5u);  // snapshots at entries 10 and 20
  }
  auto reopened = OpenDurable(options);
  EXPECT_EQ(reopened->recovered_from_seq(), 20u);
  EXPECT_EQ(reopened->last_seq(), 25u);
}

TEST_F(JournalTest, SnapshotEntryCountGrowsWithTheLastSnapshot) {
  // Every transfer grows the state, so the gap between snapshots must grow with it: after
  // a snapshot of S bytes the next is due max(4, S / 16) entries later, never sooner.
  Options options{
      .snapshot_entries = 4, .snapshot_state_bytes_per_entry = 16, .snapshot_bytes_min = 1 << 30};
  auto durable = OpenDurable(options);
  ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
  uint64_t expected_gap = 4;
  uint64_t since = 1;
  std::vector<uint64_t> gaps;
  for (uint32_t transfer_idx = 0; transfer_idx < 600; ++transfer_idx) {
    ASSERT_TRUE(durable->Submit(Fund(100 + transfer_idx, 1, 2 + transfer_idx)).ok());
    ++since;
    if (durable->entries_since_snapshot() != 0) {
      ASSERT_LT(since, expected_gap) << "no snapshot when one was due";
      continue;
    }
    EXPECT_EQ(since, expected_gap);
    gaps.push_back(since);
    const uint64_t snapshot_bytes = State(*durable).size();
    expected_gap = std::max<uint64_t>(4, snapshot_bytes / 16);
    EXPECT_EQ(durable->snapshot_due_entries(), expected_gap);
    since = 0;
  }
  ASSERT_GE(gaps.size(), 3u);
  EXPECT_EQ(gaps.front(), 4u);
  EXPECT_GT(gaps.back(), 4u * 4);  // the gap grew with the state

  // Reopened, the count is taken from the snapshot it starts from.
  const uint64_t due = durable->snapshot_due_entries();
  durable.reset();
  auto reopened = OpenDurable(options);
  EXPECT_EQ(reopened->snapshot_due_entries(), due);
  // Without scaling the count stays at snapshot_entries whatever the state's size.
  Options fixed = options;
  fixed.snapshot_state_bytes_per_entry = 0;
  reopened.reset();
  EXPECT_EQ(OpenDurable(fixed)->snapshot_due_entries(), 4u);
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
  auto store = backend_->Open(OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok());
  auto index = (*store)->SnapshotIndex();
  ASSERT_TRUE(index.ok());
  EXPECT_LE(index->size(), 2u);
  EXPECT_TRUE(Verify().ok());
}

TEST_F(JournalTest, AlteredEntryIsFoundAtThatEntry) {
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    ASSERT_TRUE(durable->Submit(Fund(11, 7, 3)).ok());
  }
  backend_->TamperEntry(2);
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
  backend_->DeleteEntry(2);
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
  backend_->DeleteEntry(2);
  EXPECT_FALSE(OpenStatus().ok());
  EXPECT_FALSE(Verify().ok());
}

// A snapshot is a cache of the journal: a damaged one is passed over, and the state comes
// from the journal alone, the same as before; `verify` still reports the damage.
TEST_F(JournalTest, AlteredSnapshotIsPassedOverForTheJournal) {
  std::string before;
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    ASSERT_TRUE(durable->Snapshot().ok());
    ASSERT_TRUE(durable->Submit(Fund(11, 7, 3)).ok());
    before = State(*durable);
  }
  backend_->TamperSnapshots();
  {
    auto reopened = OpenDurable();
    ASSERT_NE(reopened, nullptr);
    EXPECT_EQ(reopened->recovered_from_seq(), 0u);
    EXPECT_EQ(reopened->last_seq(), 3u);
    EXPECT_EQ(State(*reopened), before);
    ASSERT_EQ(reopened->skipped_snapshots().size(), 1u);
    EXPECT_EQ(reopened->skipped_snapshots()[0].seq, 2u);
    EXPECT_NE(reopened->skipped_snapshots()[0].reason.find("digest"), std::string::npos)
        << reopened->skipped_snapshots()[0].reason;
    // Appends go on from the replayed state.
    ASSERT_TRUE(reopened->Submit(Fund(12, 1, 4)).ok());
  }
  EXPECT_EQ(Verify().code(), ErrorCode::kCorruption);
}

// Two snapshots kept, the newer damaged: the older one and the entries after it.
TEST_F(JournalTest, ADamagedNewestSnapshotFallsBackToTheOneBefore) {
  std::string before;
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    ASSERT_TRUE(durable->Snapshot().ok());
    ASSERT_TRUE(durable->Submit(Fund(11, 7, 3)).ok());
    ASSERT_TRUE(durable->Snapshot().ok());
    ASSERT_TRUE(durable->Submit(Fund(12, 1, 4)).ok());
    before = State(*durable);
  }
  backend_->TamperSnapshots(3);
  auto reopened = OpenDurable();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->recovered_from_seq(), 2u);
  EXPECT_EQ(reopened->entries_since_snapshot(), 2u);
  EXPECT_EQ(reopened->last_seq(), 4u);
  EXPECT_EQ(State(*reopened), before);
  ASSERT_EQ(reopened->skipped_snapshots().size(), 1u);
  EXPECT_EQ(reopened->skipped_snapshots()[0].seq, 3u);
}

// A damaged snapshot still proves that its entries were written: a journal that ends
// before it has lost acknowledged entries and is refused, not opened short.
TEST_F(JournalTest, ADamagedSnapshotDoesNotHideATruncatedJournal) {
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    ASSERT_TRUE(durable->Submit(Fund(11, 7, 3)).ok());
    ASSERT_TRUE(durable->Snapshot().ok());
  }
  backend_->TamperSnapshots();
  backend_->DeleteEntry(3);
  const Status opened = OpenStatus();
  EXPECT_EQ(opened.code(), ErrorCode::kCorruption);
  EXPECT_NE(opened.error().message.find("ends at entry 2, before snapshot 3"), std::string::npos)
      << opened.error().message;
}

// Restart reads the tail on a second thread and hands it over in batches of a bounded
// queue (docs/journal.md, "Restart on two threads"). A tail many times longer than that
// queue: replayed in order to the same state; a break deep in it is named at its entry.
TEST_F(JournalTest, ALongTailIsReplayedInOrderAndABreakDeepInItIsNamed) {
  constexpr uint32_t kTail = 6000;
  std::string before;
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    ASSERT_TRUE(durable->Snapshot().ok());
    std::vector<Command> group;
    for (uint32_t i = 0; i < kTail; ++i) {
      group.push_back(Fund(100 + i, 1, 3 + i));
      if (group.size() == 1000) {
        ASSERT_TRUE(durable->Submit(group).ok());
        group.clear();
      }
    }
    before = State(*durable);
  }
  {
    auto reopened = OpenDurable();
    EXPECT_EQ(reopened->recovered_from_seq(), 2u);
    EXPECT_EQ(reopened->last_seq(), 2u + kTail);
    EXPECT_EQ(reopened->entries_since_snapshot(), kTail);
    EXPECT_EQ(State(*reopened), before);
    EXPECT_EQ(reopened->core().ledger().FindAccount(2)->balance(),
              Credits::FromWhole(5 + int64_t{kTail}));
  }
  backend_->TamperEntry(4321);
  const Status opened = OpenStatus();
  EXPECT_EQ(opened.code(), ErrorCode::kChainBroken);
  EXPECT_NE(opened.error().message.find("entry 4321"), std::string::npos) << opened.error().message;
}

// A snapshot whose digest matches but whose state does not decode, ahead of a tail the
// reader thread is still handing over: the reader is stopped (no hang, no half-opened
// core) and the journal is replayed from its start instead; `verify` reports the snapshot.
TEST_F(JournalTest, ASnapshotThatDoesNotDecodeStopsTheTailsReader) {
  std::string before;
  {
    auto durable = OpenDurable();
    ASSERT_TRUE(durable->Submit(Accounts(1)).ok());
    ASSERT_TRUE(durable->Submit(Fund(10, 5, 2)).ok());
    auto captured = durable->CaptureSnapshot();
    ASSERT_TRUE(captured.ok());
    // The state: magic and version (8 bytes), the ledger part and the rest, each
    // length-prefixed. One byte of the rest's magic changes; the digest follows it.
    ByteReader reader(std::string_view(captured->state).substr(8));
    const auto ledger_bytes = reader.Get<uint64_t>();
    ASSERT_TRUE(reader.ok());
    captured->state[8 + 8 + ledger_bytes + 8] ^= 0x5A;
    captured->state_digest = Sha256Of(captured->state);
    ASSERT_TRUE(durable->WriteSnapshot(std::move(*captured)).ok());
    std::vector<Command> group;
    for (uint32_t i = 0; i < 6000; ++i) group.push_back(Fund(100 + i, 1, 3 + i));
    ASSERT_TRUE(durable->Submit(group).ok());
    before = State(*durable);
  }
  {
    auto reopened = OpenDurable();
    ASSERT_NE(reopened, nullptr);
    EXPECT_EQ(reopened->recovered_from_seq(), 0u);
    EXPECT_EQ(State(*reopened), before);
    ASSERT_EQ(reopened->skipped_snapshots().size(), 1u);
    EXPECT_EQ(reopened->skipped_snapshots()[0].seq, 2u);
  }
  EXPECT_EQ(Verify().code(), ErrorCode::kCorruption);
}

#ifndef ATRIUM_JOURNAL_TEST_PG
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
  SqliteBackend(path_).Sql("CREATE TABLE other (x)");
  EXPECT_EQ(SqliteStore::Open(path_, OpenMode::kReadOnly).code(), ErrorCode::kCorruption);
  // Opened for writing, or even for creating, it is refused untouched: no journal tables
  // appear in it and it stays out of WAL mode.
  EXPECT_EQ(SqliteStore::Open(path_, OpenMode::kReadWrite).code(), ErrorCode::kCorruption);
  EXPECT_EQ(SqliteStore::Open(path_, OpenMode::kReadWriteCreate).code(), ErrorCode::kCorruption);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* count = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &count, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(count), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(count, 0), 1);
  sqlite3_finalize(count);
  sqlite3_close(db);
  EXPECT_FALSE(std::filesystem::exists(path_ + "-wal"));
}
#else
TEST_F(JournalTest, MissingOrForeignJournalIsRefused) {
  const char* url = std::getenv("ATRIUM_TEST_PG_URL");
  ASSERT_NE(url, nullptr);  // (SetUp checked it too)
  EXPECT_EQ(PgStore::Open(url, OpenMode::kReadWrite).code(), ErrorCode::kNotFound);
  EXPECT_EQ(PgStore::Open(url, OpenMode::kReadOnly).code(), ErrorCode::kNotFound);
  { ASSERT_TRUE(OpenDurable()->Submit(Accounts(1)).ok()); }
  static_cast<PgBackend*>(backend_.get())
      ->Sql("UPDATE atrium_meta SET value = 'something-else' WHERE key = 'format'");
  EXPECT_EQ(OpenStatus().code(), ErrorCode::kCorruption);
  EXPECT_EQ(PgStore::Open("postgresql://nobody@127.0.0.1:1/none", OpenMode::kReadOnly).code(),
            ErrorCode::kUnavailable);
}
#endif

using testing::FailingStore;

TEST_F(JournalTest, AFailedAppendPoisonsUntilReopenedAndLosesNothingAcknowledged) {
  {
    auto inner = backend_->Open(OpenMode::kReadWriteCreate);
    ASSERT_TRUE(inner.ok());
    auto failing = std::make_unique<FailingStore>(std::move(*inner));
    FailingStore* store = failing.get();
    auto durable = DurableCore::Open(std::move(failing));
    ASSERT_TRUE(durable.ok());
    ASSERT_TRUE((*durable)->Submit(Accounts(1)).ok());
    ASSERT_TRUE((*durable)->Submit(Fund(10, 5, 2)).ok());
    store->set_fail_appends(true);
    EXPECT_EQ((*durable)->Submit(Fund(11, 7, 3)).code(), ErrorCode::kIoError);
    store->set_fail_appends(false);
    EXPECT_EQ((*durable)->Submit(Fund(12, 1, 4)).code(), ErrorCode::kJournalPoisoned);
  }
  auto reopened = OpenDurable();
  EXPECT_EQ(reopened->last_seq(), 2u);
  EXPECT_EQ(reopened->core().ledger().FindAccount(2)->balance(), Credits::FromWhole(5));
  EXPECT_FALSE(reopened->core().ledger().FindTransfer(11).has_value());
}

TEST_F(JournalTest, ReadOnlyOpenRefusesCommands) {
  { ASSERT_TRUE(OpenDurable()->Submit(Accounts(1)).ok()); }
  auto store = backend_->Open(OpenMode::kReadOnly);
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
