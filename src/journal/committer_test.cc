#include "journal/committer.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "journal/sqlite_store.h"
#include "journal/testing/failing_store.h"

namespace atrium::journal {
namespace {

class CommitterTest : public ::testing::Test {
 public:  // ConcurrentClientsLoseNothing opens stores too
  void SetUp() override {
    path_ = (std::filesystem::path(::testing::TempDir()) /
             ("atrium-committer-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db"))
                .string();
    Remove();
  }
  void TearDown() override { Remove(); }
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  }
  std::unique_ptr<DurableCore> Open(Options options = {}) {
    auto store = SqliteStore::Open(path_, OpenMode::kReadWriteCreate);
    EXPECT_TRUE(store.ok());
    auto durable = DurableCore::Open(std::move(*store), options);
    EXPECT_TRUE(durable.ok());
    return std::move(*durable);
  }
  std::string path_;
};

// Run by the two tests below: with the default snapshot policy, and with a snapshot
// due every few entries, so snapshots queue between groups the writer folds together.
void ConcurrentClientsLoseNothing(CommitterTest& test, Options options,
                                  CommitterOptions committer_options = {});

TEST_F(CommitterTest, ConcurrentClientsShareFsyncsAndLoseNothing) {
  ConcurrentClientsLoseNothing(*this, {});
}

// A snapshot queued between groups is stored on its own: no group folds into it (their
// commands would never be written nor answered: a broken promise) and none is lost.
TEST_F(CommitterTest, SnapshotsBetweenFoldedGroupsLoseNothing) {
  ConcurrentClientsLoseNothing(*this, Options{.snapshot_entries = 7});
}

// The same with every snapshot stored in parts of 4 KiB (tens of them by the end, each a
// transaction of its own), groups appended between them, and one group at most ahead of
// the journal (the applier often waits for the write thread, which must wake it when it
// takes a snapshot as well as a group).
TEST_F(CommitterTest, SnapshotsStoredInPartsBetweenGroupsLoseNothing) {
  ConcurrentClientsLoseNothing(
      *this, Options{.snapshot_entries = 150},
      CommitterOptions{.groups_in_flight_max = 1, .snapshot_part_bytes = 4096});
}

// The sponsor (1) and grant (2) accounts that OneTransfer moves credits between.
core::CreateAccounts SponsorAndGrant() {
  return core::CreateAccounts{.now_us = 1,
                              .accounts = {{.id = 1, .kind = ledger::AccountKind::kSponsor},
                                           {.id = 2, .kind = ledger::AccountKind::kGrant}}};
}

void ConcurrentClientsLoseNothing(CommitterTest& test, Options options,
                                  CommitterOptions committer_options) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 300;
  auto durable = test.Open(options);
  std::vector<ledger::AccountSpec> accounts{{.id = 1, .kind = ledger::AccountKind::kSponsor}};
  for (Id128 id = 100; id < 100 + kThreads; ++id) {
    accounts.push_back({.id = id, .kind = ledger::AccountKind::kGrant});
  }
  ASSERT_TRUE(durable->Submit(core::CreateAccounts{.now_us = 1, .accounts = accounts}).ok());
  CommitterStats stats;
  {
    Committer committer(std::move(durable), std::move(committer_options));
    std::atomic<int> failures = 0;
    std::vector<std::thread> clients;
    clients.reserve(kThreads);
    for (int thread_idx = 0; thread_idx < kThreads; ++thread_idx) {
      clients.emplace_back([&, thread_idx] {
        for (int request_idx = 0; request_idx < kPerThread; ++request_idx) {
          const Id128 id = 1'000'000 + static_cast<Id128>(thread_idx * kPerThread + request_idx);
          auto result =
              committer
                  .Submit(core::CreateTransfers{
                      .now_us = 2,
                      .transfers = {{.id = id,
                                     .debit_account_id = 1,
                                     .credit_account_id = 100 + static_cast<Id128>(thread_idx),
                                     .amount = Credits::FromWhole(1)}}})
                  .get();
          if (!result.ok() || !result->failures.empty()) ++failures;
        }
      });
    }
    for (std::thread& client : clients) client.join();
    EXPECT_EQ(failures.load(), 0);
    stats = committer.stats();
    EXPECT_TRUE(committer
                    .Read([](const core::Core& core) {
                      EXPECT_EQ(core.ledger().transfer_count(),
                                static_cast<size_t>(kThreads * kPerThread));
                    })
                    .ok());
  }
  EXPECT_EQ(stats.commands, static_cast<uint64_t>(kThreads * kPerThread));
  // Eight clients waiting on each other's fsyncs must have been grouped.
  EXPECT_LT(stats.groups, stats.commands);
  // Everything acknowledged is in the journal after a restart (from the last snapshot
  // stored, when one was due).
  auto reopened = test.Open();
  if (options.snapshot_entries > 0 && options.snapshot_entries < uint64_t{kThreads} * kPerThread) {
    EXPECT_GT(reopened->recovered_from_seq(), 0U);
  }
  EXPECT_EQ(reopened->core().ledger().transfer_count(), static_cast<size_t>(kThreads * kPerThread));
  for (Id128 id = 100; id < 100 + kThreads; ++id) {
    EXPECT_EQ(reopened->core().ledger().FindAccount(id)->balance(), Credits::FromWhole(kPerThread));
  }
}

using testing::FailingStore;

TEST_F(CommitterTest, AfterAFailedAppendNothingReadsOrCommits) {
  auto sqlite = SqliteStore::Open(path_, OpenMode::kReadWriteCreate);
  ASSERT_TRUE(sqlite.ok());
  auto failing = std::make_unique<FailingStore>(std::move(*sqlite));
  FailingStore* store = failing.get();
  auto durable = DurableCore::Open(std::move(failing));
  ASSERT_TRUE(durable.ok());
  Committer committer(std::move(*durable), {});
  const auto accounts = SponsorAndGrant();
  ASSERT_TRUE(committer.Submit(accounts).get().ok());
  store->set_fail_appends(true);
  const auto transfer = core::CreateTransfers{.now_us = 2,
                                              .transfers = {{.id = 9,
                                                             .debit_account_id = 1,
                                                             .credit_account_id = 2,
                                                             .amount = Credits::FromWhole(1)}}};
  EXPECT_EQ(committer.Submit(transfer).get().code(), ErrorCode::kIoError);
  bool ran = false;
  EXPECT_EQ(committer.Read([&ran](const core::Core&) { ran = true; }).code(),
            ErrorCode::kJournalPoisoned);
  EXPECT_FALSE(ran);
  store->set_fail_appends(false);
  EXPECT_EQ(committer.Submit(core::Tick{.now_us = 3}).get().code(), ErrorCode::kJournalPoisoned);
}

TEST_F(CommitterTest, ReadersNeverSeeACommandBeforeItIsDurable) {
  auto durable = Open();
  ASSERT_TRUE(durable->Submit(SponsorAndGrant()).ok());
  Committer committer(std::move(durable), {.group_commands_max = 4});
  std::atomic<bool> done = false;
  std::atomic<int> violations = 0;
  std::atomic<int> reads = 0;
  std::vector<std::thread> readers;
  readers.reserve(3);
  for (int reader_idx = 0; reader_idx < 3; ++reader_idx) {
    readers.emplace_back([&] {
      while (!done) {
        ASSERT_TRUE(committer
                        .Read([&](const core::Core& core) {
                          // Entry 1 made the accounts; each later entry is one transfer.
                          const uint64_t durable_seq = committer.durable_seq();
                          if (core.ledger().transfer_count() + 1 > durable_seq) ++violations;
                        })
                        .ok());
        ++reads;
      }
    });
  }
  std::vector<std::thread> writers;
  writers.reserve(3);
  for (int writer_idx = 0; writer_idx < 3; ++writer_idx) {
    writers.emplace_back([&, writer_idx] {
      for (int request_idx = 0; request_idx < 200; ++request_idx) {
        const Id128 id = 1000 + static_cast<Id128>(writer_idx * 1000 + request_idx);
        (void)committer
            .Submit(core::CreateTransfers{.now_us = 2,
                                          .transfers = {{.id = id,
                                                         .debit_account_id = 1,
                                                         .credit_account_id = 2,
                                                         .amount = Credits::FromWhole(1)}}})
            .get();
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  done = true;
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

// A store whose appends wait until the test lets them through: a long fsync on demand.
class HeldStore final : public JournalStore {
 public:
  explicit HeldStore(std::unique_ptr<JournalStore> inner) : inner_(std::move(inner)) {}
  void Hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void Release() {
    {
      std::lock_guard lock(mutex_);
      held_ = false;
    }
    changed_.notify_all();
  }
  // Until an append is waiting.
  void AwaitHeldAppend() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return waiting_ > 0; });
  }
  Status Append(std::span<const StoredEntry> entries) override {
    {
      std::unique_lock lock(mutex_);
      ++waiting_;
      changed_.notify_all();
      changed_.wait(lock, [&] { return !held_; });
      --waiting_;
    }
    return inner_->Append(entries);
  }
  Status Scan(uint64_t after, const std::function<Status(const StoredEntry&)>& visit) override {
    return inner_->Scan(after, visit);
  }
  Result<std::optional<StoredEntry>> LastEntry() override { return inner_->LastEntry(); }
  Status PutSnapshot(const StoredSnapshot& snapshot) override {
    return inner_->PutSnapshot(snapshot);
  }
  Status PutSnapshotChunk(uint64_t seq, uint64_t chunk, std::string_view data) override {
    return inner_->PutSnapshotChunk(seq, chunk, data);
  }
  Status PutSnapshotHead(const StoredSnapshot& head, uint64_t state_bytes,
                         uint64_t chunks) override {
    return inner_->PutSnapshotHead(head, state_bytes, chunks);
  }
  Result<uint64_t> PruneSnapshotChunks(uint64_t chunks_max) override {
    return inner_->PruneSnapshotChunks(chunks_max);
  }
  Result<StoredSnapshot> ReadSnapshot(uint64_t seq) override { return inner_->ReadSnapshot(seq); }
  Result<std::optional<StoredSnapshot>> LatestSnapshot() override {
    return inner_->LatestSnapshot();
  }
  Result<std::vector<StoredSnapshot>> SnapshotIndex() override { return inner_->SnapshotIndex(); }
  bool read_only() const override { return inner_->read_only(); }

 private:
  std::unique_ptr<JournalStore> inner_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool held_ = false;
  int waiting_ = 0;
};

core::CreateTransfers OneTransfer(Id128 id) {
  return core::CreateTransfers{.now_us = 2,
                               .transfers = {{.id = id,
                                              .debit_account_id = 1,
                                              .credit_account_id = 2,
                                              .amount = Credits::FromWhole(1)}}};
}

class HeldCommitterTest : public CommitterTest {
 protected:
  void SetUp() override {
    CommitterTest::SetUp();
    auto sqlite = SqliteStore::Open(path_, OpenMode::kReadWriteCreate);
    ASSERT_TRUE(sqlite.ok());
    auto held = std::make_unique<HeldStore>(std::move(*sqlite));
    store_ = held.get();
    auto durable = DurableCore::Open(std::move(held));
    ASSERT_TRUE(durable.ok());
    committer_ = std::make_unique<Committer>(std::move(*durable), CommitterOptions{});
    ASSERT_TRUE(committer_->Submit(SponsorAndGrant()).get().ok());
  }
  void TearDown() override {
    store_->Release();
    committer_.reset();
    CommitterTest::TearDown();
  }
  size_t Transfers() {
    size_t count = 0;
    EXPECT_TRUE(
        committer_->Read([&](const core::Core& core) { count = core.ledger().transfer_count(); })
            .ok());
    return count;
  }
  HeldStore* store_ = nullptr;
  std::unique_ptr<Committer> committer_;
};

// Readers share a window: two of them are inside Read at the same time (with one
// exclusive lock the second would wait for the first, which waits for the second).
TEST_F(HeldCommitterTest, ReadersReadTogether) {
  std::atomic<int> inside = 0;
  std::atomic<bool> met = true;
  auto reader = [&] {
    ASSERT_TRUE(committer_
                    ->Read([&](const core::Core&) {
                      ++inside;
                      const auto deadline =
                          std::chrono::steady_clock::now() + std::chrono::seconds(10);
                      while (inside.load() < 2 && std::chrono::steady_clock::now() < deadline) {
                        std::this_thread::yield();
                      }
                      if (inside.load() < 2) met = false;
                    })
                    .ok());
  };
  std::thread first(reader);
  std::thread second(reader);
  first.join();
  second.join();
  EXPECT_TRUE(met.load());
}

// While a group's fsync is held, a read waits (the state is ahead of the journal) but
// holds nothing: the committer still takes commands, reports its queue and stats, and
// the read sees the group, and its writer's answer, once it is durable.
TEST_F(HeldCommitterTest, AReadWaitsForTheFsyncInFlightHoldingNothing) {
  EXPECT_EQ(Transfers(), 0u);
  store_->Hold();
  auto first = committer_->Submit(OneTransfer(10));
  store_->AwaitHeldAppend();
  std::atomic<int> seen = -1;
  std::thread reader([&] { seen = static_cast<int>(Transfers()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(seen.load(), -1) << "a read saw a group that is not durable";
  // Nothing of the committer is locked by the waiting reader.
  auto second = committer_->Submit(OneTransfer(11));
  EXPECT_EQ(committer_->stats().groups, 1u);
  (void)committer_->queue_depth();
  EXPECT_EQ(first.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  store_->Release();
  ASSERT_TRUE(first.get().ok());
  reader.join();
  EXPECT_GE(seen.load(), 1);
  ASSERT_TRUE(second.get().ok());
  // Read-your-writes: once its future is ready, a write is in every later read.
  EXPECT_EQ(Transfers(), 2u);
}

// A steady stream of groups does not starve readers, nor readers the groups: both make
// progress while fsyncs are slow.
TEST_F(HeldCommitterTest, ReadsAndGroupsInterleaveUnderLoad) {
  std::atomic<bool> done = false;
  std::atomic<int> written = 0;
  std::vector<std::thread> writers;
  writers.reserve(4);
  for (int writer_idx = 0; writer_idx < 4; ++writer_idx) {
    writers.emplace_back([&, writer_idx] {
      for (Id128 id = 1000 + static_cast<Id128>(writer_idx) * 100'000; !done; ++id) {
        if (committer_->Submit(OneTransfer(id)).get().ok()) ++written;
      }
    });
  }
  // Slow fsyncs: appends are held for a millisecond, every other millisecond.
  std::thread slow([&] {
    while (!done) {
      store_->Hold();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      store_->Release();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  size_t last = 0;
  int reads = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (written.load() < 200 && std::chrono::steady_clock::now() < deadline) {
    const size_t now = Transfers();
    EXPECT_GE(now, last);  // never goes back
    last = now;
    ++reads;
  }
  const int written_during_reads = written.load();
  done = true;
  slow.join();
  store_->Release();
  for (std::thread& writer : writers) writer.join();
  EXPECT_GE(written_during_reads, 200);
  EXPECT_GT(reads, 30);
  EXPECT_EQ(Transfers(), static_cast<size_t>(written.load()));
}

// A store that records what the write thread does, and can hold a snapshot chunk's write
// until the test lets it through.
// What the store saw and the hold, kept by the test (the store goes with its committer).
struct StoreRecord {
  void HoldChunk(uint64_t chunk) {
    std::lock_guard lock(mutex);
    held_chunk = chunk;
  }
  void Release() {
    {
      std::lock_guard lock(mutex);
      held_chunk = UINT64_MAX;
    }
    changed.notify_all();
  }
  void AwaitHeld() {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return holding; });
  }
  std::vector<std::string> Calls() {
    std::lock_guard lock(mutex);
    return calls;
  }
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> calls;
  uint64_t chunks_pruned = 0;
  uint64_t held_chunk = UINT64_MAX;
  bool holding = false;
};

class RecordingStore final : public JournalStore {
 public:
  RecordingStore(std::unique_ptr<JournalStore> inner, std::shared_ptr<StoreRecord> record)
      : inner_(std::move(inner)), record_(std::move(record)) {}
  Status Append(std::span<const StoredEntry> entries) override {
    Record("append");
    return inner_->Append(entries);
  }
  Status Scan(uint64_t after, const std::function<Status(const StoredEntry&)>& visit) override {
    return inner_->Scan(after, visit);
  }
  Result<std::optional<StoredEntry>> LastEntry() override { return inner_->LastEntry(); }
  Status PutSnapshot(const StoredSnapshot& snapshot) override {
    Record("snapshot");
    return inner_->PutSnapshot(snapshot);
  }
  Status PutSnapshotChunk(uint64_t seq, uint64_t chunk, std::string_view data) override {
    {
      StoreRecord& record = *record_;
      std::unique_lock lock(record.mutex);
      record.calls.emplace_back("chunk");
      if (chunk == record.held_chunk) {
        record.holding = true;
        record.changed.notify_all();
        record.changed.wait(lock, [&] { return record.held_chunk != chunk; });
        record.holding = false;
      }
    }
    return inner_->PutSnapshotChunk(seq, chunk, data);
  }
  Status PutSnapshotHead(const StoredSnapshot& head, uint64_t state_bytes,
                         uint64_t chunks) override {
    Record("head");
    return inner_->PutSnapshotHead(head, state_bytes, chunks);
  }
  Result<uint64_t> PruneSnapshotChunks(uint64_t chunks_max) override {
    auto pruned = inner_->PruneSnapshotChunks(chunks_max);
    if (pruned.ok()) {
      std::lock_guard lock(record_->mutex);
      record_->chunks_pruned += *pruned;
      record_->calls.emplace_back(*pruned == 0 ? "prune_none" : "prune");
    }
    return pruned;
  }
  Result<StoredSnapshot> ReadSnapshot(uint64_t seq) override { return inner_->ReadSnapshot(seq); }
  Result<std::optional<StoredSnapshot>> LatestSnapshot() override {
    return inner_->LatestSnapshot();
  }
  Result<std::vector<StoredSnapshot>> SnapshotIndex() override { return inner_->SnapshotIndex(); }
  bool read_only() const override { return inner_->read_only(); }

 private:
  void Record(const char* call) {
    std::lock_guard lock(record_->mutex);
    record_->calls.emplace_back(call);
  }
  std::unique_ptr<JournalStore> inner_;
  std::shared_ptr<StoreRecord> record_;
};

// A durable core on the test's SQLite file through a RecordingStore that reports to
// `store`, with a snapshot due every 3 entries.
Result<std::unique_ptr<DurableCore>> OpenRecorded(const std::shared_ptr<StoreRecord>& store,
                                                  const std::string& path) {
  auto sqlite = SqliteStore::Open(path, OpenMode::kReadWriteCreate);
  if (!sqlite.ok()) return sqlite.error();
  return DurableCore::Open(std::make_unique<RecordingStore>(std::move(*sqlite), store),
                           Options{.snapshot_entries = 3});
}

// A group that arrives while a snapshot is being stored waits for one part of it, not for
// the whole: its append comes before the snapshot's head. The snapshot stored in parts is
// the one a restart starts from.
TEST_F(CommitterTest, AGroupDoesNotWaitForAWholeSnapshot) {
  auto store = std::make_shared<StoreRecord>();
  auto durable = OpenRecorded(store, path_);
  ASSERT_TRUE(durable.ok());
  store->HoldChunk(1);
  uint64_t snapshot_seq = 0;
  {
    Committer committer(std::move(*durable), {.snapshot_part_bytes = 32});
    ASSERT_TRUE(committer.Submit(SponsorAndGrant()).get().ok());
    for (Id128 id = 10; id < 12; ++id) {
      ASSERT_TRUE(committer.Submit(OneTransfer(id)).get().ok());
    }
    // Three entries: a snapshot is due, captured, and its second part is held.
    store->AwaitHeld();
    snapshot_seq = 3;
    auto arriving = committer.Submit(OneTransfer(12));
    // Applied and in flight before the part is let through.
    while (committer.queue_depth() > 0) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    store->Release();
    ASSERT_TRUE(arriving.get().ok());
  }
  const std::vector<std::string> calls = store->Calls();
  const auto at = [&](const std::string& call, size_t from) {
    return std::find(calls.begin() + static_cast<std::ptrdiff_t>(from), calls.end(), call) -
           calls.begin();
  };
  const auto first_chunk = static_cast<size_t>(at("chunk", 0));
  const auto last_append = static_cast<size_t>(
      calls.rend() - std::find(calls.rbegin(), calls.rend(), std::string("append")) - 1);
  const auto head = static_cast<size_t>(at("head", 0));
  ASSERT_LT(head, calls.size());
  EXPECT_GT(std::count(calls.begin(), calls.end(), std::string("chunk")), 4);
  EXPECT_LT(first_chunk, last_append);  // the group came during the snapshot's write ...
  EXPECT_LT(last_append, head);         // ... and did not wait for all of it
  EXPECT_EQ(std::count(calls.begin(), calls.end(), std::string("snapshot")), 0);
  // A restart starts from the snapshot stored in parts, then replays the last entry.
  auto reopened = Open();
  EXPECT_EQ(reopened->recovered_from_seq(), snapshot_seq);
  EXPECT_EQ(reopened->core().ledger().transfer_count(), 3U);
}

// The chunks of snapshots no longer kept are deleted by the write thread after the head
// that dropped them, one chunk per transaction, not inside the head's transaction; none
// is left once the thread has nothing else to do.
TEST_F(CommitterTest, DroppedSnapshotsArePrunedAChunkAtATimeAfterTheirSuccessorsHead) {
  auto store = std::make_shared<StoreRecord>();
  auto durable = OpenRecorded(store, path_);
  ASSERT_TRUE(durable.ok());
  {
    Committer committer(std::move(*durable), {.snapshot_part_bytes = 32});
    ASSERT_TRUE(committer.Submit(SponsorAndGrant()).get().ok());
    // One entry at a time, each waiting for the snapshot taken after it to be stored, so
    // that snapshots are due at entries 3, 6, 9 and 12 and none is skipped.
    const auto heads = [&] {
      const std::vector<std::string> calls = store->Calls();
      return std::count(calls.begin(), calls.end(), std::string("head"));
    };
    for (Id128 id = 10; id < 21; ++id) {
      ASSERT_TRUE(committer.Submit(OneTransfer(id)).get().ok());
      const auto wanted = static_cast<std::ptrdiff_t>((id - 10 + 2) / 3);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (heads() < wanted && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      ASSERT_EQ(heads(), wanted) << "entry " << static_cast<uint64_t>(id - 8);
    }
    // Then the write thread, idle, prunes until nothing is left.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      const std::vector<std::string> calls = store->Calls();
      const auto last_head = std::find(calls.rbegin(), calls.rend(), std::string("head"));
      if (std::find(calls.rbegin(), last_head, std::string("prune_none")) != last_head) break;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no prune after the last head";
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  const std::vector<std::string> calls = store->Calls();
  // Nothing is pruned before a third head drops the first snapshot.
  const auto first_prune = std::find(calls.begin(), calls.end(), std::string("prune"));
  ASSERT_NE(first_prune, calls.end());
  EXPECT_EQ(std::count(calls.begin(), first_prune, std::string("head")), 3);
  // Two snapshots dropped (of four), each of more than one chunk, each chunk on its own.
  EXPECT_GT(store->chunks_pruned, 2U);
  EXPECT_EQ(static_cast<uint64_t>(std::count(calls.begin(), calls.end(), std::string("prune"))),
            store->chunks_pruned);
  auto reopened_store = SqliteStore::Open(path_, OpenMode::kReadWrite);
  ASSERT_TRUE(reopened_store.ok());
  auto left = (*reopened_store)->PruneSnapshotChunks(1000);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, 0U);
  auto index = (*reopened_store)->SnapshotIndex();
  ASSERT_TRUE(index.ok());
  ASSERT_EQ(index->size(), 2U);
  EXPECT_EQ(index->back().seq, 12U);
}

// The snapshot's encode runs in a child process: while the child is held (before it
// encodes), groups go on being applied and acknowledged, and nothing of the snapshot is
// stored. Released, the child encodes the state as it was at the fork (entry 3), not the
// state the parent has since moved on to: VerifyStore replays the journal and checks the
// snapshot's digest against the state at its seq.
// (AddressSanitizer builds encode in process; CI runs this test in the tsan preset.)
TEST_F(CommitterTest, GroupsGoOnWhileTheSnapshotIsEncodedInAChild) {
  if (!DurableCore::kCanForkSnapshot) GTEST_SKIP() << "no fork-safe allocator in this build";
  auto store = std::make_shared<StoreRecord>();
  auto durable = OpenRecorded(store, path_);
  ASSERT_TRUE(durable.ok());
  int hold[2];
  ASSERT_EQ(pipe(hold), 0);
  int told[2];  // the child tells its nice value
  ASSERT_EQ(pipe(told), 0);
  constexpr int kAfter = 20;
  {
    CommitterOptions options{.snapshot_part_bytes = 64};
    options.in_snapshot_child = [read_end = hold[0], write_end = told[1]] {
      errno = 0;
      const int child_nice = getpriority(PRIO_PROCESS, 0);
      (void)!write(write_end, &child_nice, sizeof child_nice);
      char byte = 0;
      while (read(read_end, &byte, 1) < 0 && errno == EINTR) {
      }
    };
    Committer committer(std::move(*durable), options);
    ASSERT_TRUE(committer.Submit(SponsorAndGrant()).get().ok());
    for (Id128 id = 10; id < 12; ++id) ASSERT_TRUE(committer.Submit(OneTransfer(id)).get().ok());
    // Three entries: the snapshot is due and forked; its child waits on the pipe.
    for (Id128 id = 100; id < 100 + kAfter; ++id) {
      ASSERT_TRUE(committer.Submit(OneTransfer(id)).get().ok());
    }
    const CommitterStats held = committer.stats();
    EXPECT_EQ(held.snapshots_forked, 1U);
    EXPECT_EQ(held.snapshots_in_child + held.snapshots_in_process, 0U);
    const std::vector<std::string> calls = store->Calls();
    EXPECT_EQ(std::count(calls.begin(), calls.end(), std::string("chunk")), 0);
    EXPECT_EQ(std::count(calls.begin(), calls.end(), std::string("head")), 0);
    EXPECT_GE(std::count(calls.begin(), calls.end(), std::string("append")), 3 + kAfter);
    // The child encodes below the service's priority.
    int child_nice = 0;
    ASSERT_EQ(read(told[0], &child_nice, sizeof child_nice),
              static_cast<ssize_t>(sizeof child_nice));
    EXPECT_EQ(child_nice,
              std::min(getpriority(PRIO_PROCESS, 0) + DurableCore::kSnapshotChildNice, 19));
    ASSERT_EQ(write(hold[1], "x", 1), 1);
  }  // the committer waits for the child, then stores its snapshot
  for (const int fd : {hold[0], hold[1], told[0], told[1]}) close(fd);
  const std::vector<std::string> calls = store->Calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), std::string("head")), 1);
  auto reopened = Open();
  EXPECT_EQ(reopened->recovered_from_seq(), 3U);
  EXPECT_EQ(reopened->core().ledger().transfer_count(), static_cast<size_t>(2 + kAfter));
  auto check = SqliteStore::Open(path_, OpenMode::kReadOnly);
  ASSERT_TRUE(check.ok());
  auto report = VerifyStore(**check);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->snapshots_checked, 1U);
  EXPECT_EQ(report->entries, static_cast<uint64_t>(3 + kAfter));
}

TEST_F(CommitterTest, AFullQueueRefusesAtOnce) {
  auto durable = Open();
  Committer committer(std::move(durable), {.queue_depth_max = 0});
  auto result = committer.Submit(core::Tick{.now_us = 1}).get();
  EXPECT_EQ(result.code(), ErrorCode::kUnavailable);
  // The callback form is told at once, on the caller's thread, before Submit returns.
  bool told = false;
  committer.Submit(core::Tick{.now_us = 1}, [&](Result<core::CommandResult> refused) {
    EXPECT_EQ(refused.code(), ErrorCode::kUnavailable);
    told = true;
  });
  EXPECT_TRUE(told);
}

// The callback form (what the HTTP event loop uses): each completion runs once, in
// submission order, off the submitting thread, and only once its command is durable.
TEST_F(HeldCommitterTest, CompletionsRunOnceEachAfterTheirCommandIsDurable) {
  constexpr int kCommands = 200;
  const uint64_t base = committer_->durable_seq();
  const std::thread::id submitter = std::this_thread::get_id();
  std::mutex mutex;
  std::condition_variable all_told;
  std::vector<int> order;
  bool off_thread = true;
  bool durable_first = true;
  for (int index = 0; index < kCommands; ++index) {
    committer_->Submit(OneTransfer(Id128{1000} + static_cast<Id128>(index)),
                       [&, index](Result<core::CommandResult> result) {
                         const bool durable =
                             committer_->durable_seq() >= base + static_cast<uint64_t>(index) + 1;
                         std::lock_guard lock(mutex);
                         EXPECT_TRUE(result.ok()) << result.error().message;
                         off_thread = off_thread && std::this_thread::get_id() != submitter;
                         durable_first = durable_first && durable;
                         order.push_back(index);
                         all_told.notify_all();
                       });
  }
  std::unique_lock lock(mutex);
  ASSERT_TRUE(all_told.wait_for(lock, std::chrono::seconds(30),
                                [&] { return order.size() == static_cast<size_t>(kCommands); }));
  EXPECT_TRUE(off_thread);
  EXPECT_TRUE(durable_first);
  for (size_t index = 0; index < order.size(); ++index)
    EXPECT_EQ(order[index], static_cast<int>(index));
  lock.unlock();
  EXPECT_EQ(committer_->durable_seq(), base + kCommands);
}

}  // namespace
}  // namespace atrium::journal
