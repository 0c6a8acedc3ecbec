#include "journal/committer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "journal/sqlite_store.h"
#include "journal/testing/failing_store.h"

namespace atrium::journal {
namespace {

class CommitterTest : public ::testing::Test {
 protected:
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
  std::unique_ptr<DurableCore> Open() {
    auto store = SqliteStore::Open(path_, OpenMode::kReadWriteCreate);
    EXPECT_TRUE(store.ok());
    auto durable = DurableCore::Open(std::move(*store));
    EXPECT_TRUE(durable.ok());
    return std::move(*durable);
  }
  std::string path_;
};

TEST_F(CommitterTest, ConcurrentClientsShareFsyncsAndLoseNothing) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 300;
  auto durable = Open();
  std::vector<ledger::AccountSpec> accounts{{.id = 1, .kind = ledger::AccountKind::kSponsor}};
  for (Id128 id = 100; id < 100 + kThreads; ++id) {
    accounts.push_back({.id = id, .kind = ledger::AccountKind::kGrant});
  }
  ASSERT_TRUE(durable->Submit(core::CreateAccounts{.now_us = 1, .accounts = accounts}).ok());
  CommitterStats stats;
  {
    Committer committer(std::move(durable), {});
    std::atomic<int> failures = 0;
    std::vector<std::thread> clients;
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
  // Everything acknowledged is in the journal after a restart.
  auto reopened = Open();
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
  const auto accounts =
      core::CreateAccounts{.now_us = 1,
                           .accounts = {{.id = 1, .kind = ledger::AccountKind::kSponsor},
                                        {.id = 2, .kind = ledger::AccountKind::kGrant}}};
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
  ASSERT_TRUE(durable
                  ->Submit(core::CreateAccounts{
                      .now_us = 1,
                      .accounts = {{.id = 1, .kind = ledger::AccountKind::kSponsor},
                                   {.id = 2, .kind = ledger::AccountKind::kGrant}}})
                  .ok());
  Committer committer(std::move(durable), {.group_commands_max = 4});
  std::atomic<bool> done = false;
  std::atomic<int> violations = 0;
  std::thread reader([&] {
    while (!done) {
      ASSERT_TRUE(committer
                      .Read([&](const core::Core& core) {
                        // Entry 1 made the accounts; each later entry is one transfer.
                        const uint64_t durable_seq = committer.durable_seq();
                        if (core.ledger().transfer_count() + 1 > durable_seq) ++violations;
                      })
                      .ok());
    }
  });
  std::vector<std::thread> writers;
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
  reader.join();
  EXPECT_EQ(violations.load(), 0);
}

TEST_F(CommitterTest, AFullQueueRefusesAtOnce) {
  auto durable = Open();
  Committer committer(std::move(durable), {.queue_depth_max = 0});
  auto result = committer.Submit(core::Tick{.now_us = 1}).get();
  EXPECT_EQ(result.code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace atrium::journal
