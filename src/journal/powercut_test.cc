// Power cuts under the journal: a seeded run of the commit path (DurableCore::Submit),
// explicit and automatic snapshots, a clean close and recovery, and the Committer's
// pipelined group commit from two threads, all on SqliteStore over PowerCutVfs. The power
// goes off at a random write, sync or truncate (or after the workload); the unsynced
// writes are lost or torn; sometimes the power fails again during the recovery that
// follows. Then the store is reopened with SQLite's default VFS and must hold every
// acknowledged command, verify its hash chain and snapshots (VerifyStore) and its ledger.
//
// ATRIUM_POWERCUT_CUTS sets the number of cuts (default 1,000), ATRIUM_POWERCUT_SEED the
// first seed; a failure prints the seed and cut that replay it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "journal/committer.h"
#include "journal/journal.h"
#include "journal/sqlite_store.h"
#include "journal/testing/power_cut_vfs.h"

namespace atrium::journal {
namespace {

using testing::PowerCutVfs;

constexpr Id128 kSponsor = 1;
constexpr Id128 kGrantFirst = 2;
constexpr int kGrants = 4;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value == nullptr ? fallback : std::strtoull(value, nullptr, 10);
}

std::filesystem::path ScratchDir() {
  // tmpfs when there is one: the reopened store's real fsyncs then cost nothing.
  const std::filesystem::path shm = "/dev/shm";
  std::error_code error;
  const auto base =
      std::filesystem::is_directory(shm, error) ? shm : std::filesystem::temp_directory_path();
  return base / ("atrium-powercut-" + std::to_string(::getpid()));
}

core::Command Transfer(Id128 id, int64_t now_us) {
  return core::CreateTransfers{
      .now_us = now_us,
      .transfers = {{.id = id,
                     .debit_account_id = kSponsor,
                     .credit_account_id = kGrantFirst + id % kGrants,
                     .amount = Credits::FromMicro(static_cast<int64_t>(id) * 1'000)}}};
}

// What the workload was told is durable, and where the power went off.
struct Acknowledged {
  bool accounts = false;
  std::vector<Id128> transfers;
  std::string phase_at_cut = "after";
};

Options SmallSnapshots() {
  // Snapshots every few entries, so cuts land inside them too.
  return Options{.snapshot_bytes_min = 256, .snapshot_growth_factor = 1};
}

Result<std::unique_ptr<DurableCore>> OpenDurable(const std::string& path, const std::string& vfs) {
  ATRIUM_ASSIGN_OR_RETURN(auto store, SqliteStore::Open(path, OpenMode::kReadWriteCreate, vfs));
  return DurableCore::Open(std::move(store), SmallSnapshots());
}

// Runs the workload until the power goes off; records every acknowledgement.
void RunWorkload(const std::string& path, PowerCutVfs& vfs, Acknowledged* acked) {
  auto note = [&](const char* phase) {
    if (vfs.dead() && acked->phase_at_cut == "after") acked->phase_at_cut = phase;
    return !vfs.dead();
  };
  auto durable = OpenDurable(path, PowerCutVfs::kName);
  if (!durable.ok()) {
    ASSERT_TRUE(vfs.dead()) << durable.error().ToString();
    note("create");
    return;
  }
  // The commit path, one durable transaction per Submit; snapshots on the way.
  std::vector<ledger::AccountSpec> accounts = {
      {.id = kSponsor, .kind = ledger::AccountKind::kSponsor}};
  for (int grant = 0; grant < kGrants; ++grant) {
    accounts.push_back({.id = kGrantFirst + static_cast<Id128>(grant)});
  }
  if ((*durable)->Submit(core::CreateAccounts{.now_us = 1, .accounts = accounts}).ok()) {
    acked->accounts = true;
  }
  if (!note("commit")) return;
  Id128 next_id = 100;
  for (int step = 0; step < 12; ++step) {
    const Id128 id = next_id++;
    if ((*durable)->Submit(Transfer(id, 10 + step)).ok()) acked->transfers.push_back(id);
    if (!note("commit")) return;
    if (step == 5) {
      (void)(*durable)->Snapshot();
      if (!note("snapshot")) return;
    }
  }
  // A clean close and recovery.
  durable->reset();
  if (!note("close")) return;
  durable = OpenDurable(path, PowerCutVfs::kName);
  if (!note("recovery")) return;
  ASSERT_TRUE(durable.ok()) << durable.error().ToString();
  // Group commit: two clients, small groups, two groups in flight.
  {
    Committer committer(std::move(*durable), {.group_commands_max = 3});
    std::vector<std::future<Result<core::CommandResult>>> futures[2];
    std::vector<Id128> ids[2];
    std::thread clients[2];
    for (int client = 0; client < 2; ++client) {
      for (int step = 0; step < 10; ++step) ids[client].push_back(next_id++);
      clients[client] = std::thread([&, client] {
        for (const Id128 id : ids[client]) {
          futures[client].push_back(committer.Submit(Transfer(id, 100)));
        }
      });
    }
    for (std::thread& thread : clients) thread.join();
    for (int client = 0; client < 2; ++client) {
      for (size_t index = 0; index < futures[client].size(); ++index) {
        if (futures[client][index].get().ok()) acked->transfers.push_back(ids[client][index]);
      }
    }
  }
  note("group_commit");
}

// Reopens with the default VFS and checks everything acknowledged survived.
void CheckSurvivors(const std::string& path, const Acknowledged& acked, const std::string& where) {
  auto store = SqliteStore::Open(path, OpenMode::kReadWriteCreate);
  ASSERT_TRUE(store.ok()) << where << store.error().ToString();
  auto durable = DurableCore::Open(std::move(*store), SmallSnapshots());
  ASSERT_TRUE(durable.ok()) << where << durable.error().ToString();
  const ledger::Ledger& ledger = (*durable)->core().ledger();
  if (acked.accounts) {
    for (int grant = 0; grant < kGrants; ++grant) {
      ASSERT_TRUE(ledger.FindAccount(kGrantFirst + static_cast<Id128>(grant)).has_value()) << where;
    }
  }
  for (const Id128 id : acked.transfers) {
    ASSERT_TRUE(ledger.FindTransfer(id).has_value()) << where << "acknowledged transfer lost";
  }
  durable->reset();
  auto again = SqliteStore::Open(path, OpenMode::kReadOnly);
  ASSERT_TRUE(again.ok()) << where << again.error().ToString();
  auto verified = VerifyStore(**again);
  ASSERT_TRUE(verified.ok()) << where << verified.error().ToString();
}

TEST(PowerCut, EveryAcknowledgedWriteSurvivesCutsAnywhere) {
  PowerCutVfs& vfs = PowerCutVfs::Install();
  const uint64_t cuts = EnvOr("ATRIUM_POWERCUT_CUTS", 1'000);
  const uint64_t first_seed = EnvOr("ATRIUM_POWERCUT_SEED", 1);
  const std::filesystem::path dir = ScratchDir();
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "journal.db").string();
  auto clear = [&] {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  };

  // One run without a cut says how many operations the workload makes.
  clear();
  vfs.Arm(PowerCutVfs::kNever, 0);
  Acknowledged uncut;
  RunWorkload(path, vfs, &uncut);
  const uint64_t operations = vfs.operations();
  ASSERT_GT(operations, 50u);
  ASSERT_EQ(uncut.transfers.size(), 32u);

  std::map<std::string, int> cuts_by_phase;
  uint64_t acknowledged_total = 0;
  uint64_t double_cuts = 0;
  for (uint64_t cut_idx = 0; cut_idx < cuts; ++cut_idx) {
    const uint64_t seed = first_seed + cut_idx;
    std::mt19937_64 random(seed);
    // A tenth of the cuts come after the workload has finished.
    const uint64_t cut_at = 1 + random() % (operations + operations / 10);
    const std::string where =
        "seed " + std::to_string(seed) + ", cut at operation " + std::to_string(cut_at) + ": ";
    clear();
    vfs.Arm(cut_at, seed);
    Acknowledged acked;
    RunWorkload(path, vfs, &acked);
    ASSERT_FALSE(HasFatalFailure()) << where;
    vfs.ApplyCut();
    ++cuts_by_phase[acked.phase_at_cut];
    acknowledged_total += acked.transfers.size();
    if (random() % 4 == 0) {
      // The power fails again while the journal recovers.
      ++double_cuts;
      vfs.Arm(1 + random() % 12, seed ^ 0x5eed);
      auto recovering = OpenDurable(path, PowerCutVfs::kName);
      ASSERT_TRUE(recovering.ok() || vfs.dead()) << where << recovering.error().ToString();
      recovering = MakeError(ErrorCode::kInternal, "closed");
      vfs.ApplyCut();
    }
    CheckSurvivors(path, acked, where);
    ASSERT_FALSE(HasFatalFailure()) << where;
  }
  clear();
  std::filesystem::remove_all(dir);
  std::string summary;
  for (const auto& [phase, count] : cuts_by_phase) {
    summary += " " + phase + "=" + std::to_string(count);
  }
  std::printf(
      "power cuts: %llu (%llu during recovery too), workload operations %llu,"
      " acknowledged transfers checked %llu; cuts by phase:%s\n",
      static_cast<unsigned long long>(cuts), static_cast<unsigned long long>(double_cuts),
      static_cast<unsigned long long>(operations),
      static_cast<unsigned long long>(acknowledged_total), summary.c_str());
}

}  // namespace
}  // namespace atrium::journal
