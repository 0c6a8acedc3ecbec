#include "cli/ledger_bench.h"

#include <sqlite3.h>
#include <sys/resource.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>

#include "core/core.h"
#include "journal/committer.h"
#include "journal/journal.h"
#include "journal/open.h"
#include "journal/pg_store.h"

namespace atrium::cli {
namespace {

// SplitMix64: a counter-based generator, so transfer i needs no state but (seed, i).
uint64_t Mix(uint64_t value) {
  value += 0x9E3779B97F4A7C15ULL;
  value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9ULL;
  value = (value ^ (value >> 27)) * 0x94D049BB133111EBULL;
  return value ^ (value >> 31);
}

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The reference: the same transfers as plain rows in one SQLite table, WAL mode,
// synchronous=FULL, one transaction per batch. Returns rows per second.
Result<double> RunSqliteBaseline(const BenchOptions& options, uint64_t first, uint64_t count) {
  const std::string path = options.db_path + ".baseline";
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    return MakeError(ErrorCode::kIoError, "cannot create " + path);
  }
  auto exec = [db](const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); };
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec("CREATE TABLE transfers (id BLOB, debit BLOB, credit BLOB, amount INTEGER)");
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO transfers VALUES (?, ?, ?, ?)", -1, &insert, nullptr);
  const auto start = Clock::now();
  bool ok = insert != nullptr;
  for (uint64_t done = 0; ok && done < count;) {
    const uint64_t batch_end = std::min<uint64_t>(count, done + options.batch);
    ok = exec("BEGIN") == SQLITE_OK;
    for (; ok && done < batch_end; ++done) {
      const ledger::TransferSpec spec = options.workload.Transfer(first + done);
      sqlite3_bind_blob(insert, 1, &spec.id, sizeof(spec.id), SQLITE_STATIC);
      sqlite3_bind_blob(insert, 2, &spec.debit_account_id, sizeof(Id128), SQLITE_STATIC);
      sqlite3_bind_blob(insert, 3, &spec.credit_account_id, sizeof(Id128), SQLITE_STATIC);
      sqlite3_bind_int64(insert, 4, spec.amount.micro());
      ok = sqlite3_step(insert) == SQLITE_DONE;
      sqlite3_reset(insert);
    }
    ok = ok && exec("COMMIT") == SQLITE_OK;
  }
  const double seconds = SecondsSince(start);
  sqlite3_finalize(insert);
  sqlite3_close(db);
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  if (!ok) return MakeError(ErrorCode::kIoError, "baseline inserts failed");
  return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
}

}  // namespace

ledger::TransferSpec BenchWorkload::Transfer(uint64_t index) const {
  const uint64_t random = Mix(seed * 0x100000001B3ULL ^ index);
  const uint32_t debit = static_cast<uint32_t>(random % accounts);
  uint32_t credit = static_cast<uint32_t>((random >> 20) % (accounts - 1));
  if (credit >= debit) ++credit;  // distinct from the debit account
  return ledger::TransferSpec{
      .id = kTransferIdBase + index,
      .debit_account_id = kFirstAccountId + debit,
      .credit_account_id = kFirstAccountId + credit,
      .amount = Credits::FromMicro(static_cast<int64_t>(1 + (random >> 40) % 1'000'000)),
      .code = 1,
      .user_data = index};
}

std::vector<ledger::AccountSpec> BenchWorkload::AccountSpecs() const {
  std::vector<ledger::AccountSpec> specs{{.id = kSponsorId, .kind = ledger::AccountKind::kSponsor}};
  for (uint32_t account_idx = 0; account_idx < accounts; ++account_idx) {
    specs.push_back({.id = kFirstAccountId + account_idx,
                     .kind = ledger::AccountKind::kGrant,
                     .flags = ledger::kDebitsMustNotExceedCredits});
  }
  return specs;
}

std::vector<ledger::TransferSpec> BenchWorkload::FundingSpecs() const {
  std::vector<ledger::TransferSpec> specs;
  for (uint32_t account_idx = 0; account_idx < accounts; ++account_idx) {
    specs.push_back({.id = kFundingIdBase + account_idx,
                     .debit_account_id = kSponsorId,
                     .credit_account_id = kFirstAccountId + account_idx,
                     .amount = Credits::FromWhole(1'000'000)});
  }
  return specs;
}

double PeakRssMb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

namespace {

core::CreateTransfers BenchBatch(const BenchWorkload& workload, uint64_t first, uint64_t end,
                                 int64_t now_us) {
  core::CreateTransfers command{.now_us = now_us};
  command.transfers.reserve(end - first);
  for (uint64_t index = first; index < end; ++index) {
    command.transfers.push_back(workload.Transfer(index));
  }
  return command;
}

// In memory: the core alone; only applying is timed.
Result<double> RunInMemory(const BenchOptions& options, const std::vector<core::Command>& setup) {
  core::Core core;
  for (const core::Command& command : setup) (void)core.Apply(command);
  double seconds = 0;
  int64_t now_us = 3;
  for (uint64_t next = 0; next < options.transfers;) {
    const uint64_t end = std::min<uint64_t>(options.transfers, next + options.batch);
    const core::Command command = BenchBatch(options.workload, next, end, ++now_us);
    const auto start = Clock::now();
    const core::CommandResult result = core.Apply(command);
    seconds += SecondsSince(start);
    if (!result.failures.empty()) {
      return MakeError(ErrorCode::kInternal, "the benchmark workload was refused");
    }
    next = end;
  }
  return seconds;
}

// Durable: through the Committer, as the service submits, with each batch its own
// transaction; a few batches are outstanding so that applying one overlaps writing the
// previous. Timed from the first submission to the last acknowledgement, generation
// included.
struct DurableRun {
  double seconds = 0;
  uint64_t first = 0;  // the first workload index of this run
  uint64_t journal_entries = 0;
};

Result<DurableRun> RunDurable(const BenchOptions& options, const std::vector<core::Command>& setup,
                              std::ostream& progress) {
  ATRIUM_ASSIGN_OR_RETURN(
      auto store, journal::OpenJournalStore(options.db_path, journal::OpenMode::kReadWriteCreate));
  ATRIUM_ASSIGN_OR_RETURN(auto durable,
                          journal::DurableCore::Open(std::move(store), options.journal));
  const ledger::Ledger& ledger = durable->core().ledger();
  if (ledger.account_count() == 0) {
    ATRIUM_TRY(durable->Submit(setup).status());
  } else if (ledger.account_count() != options.workload.accounts + 1u) {
    return MakeError(ErrorCode::kInvalidArgument,
                     options.db_path + " holds another workload; use a new --db", "db");
  }
  DurableRun run;
  run.first = ledger.transfer_count() - options.workload.accounts;
  constexpr size_t kOutstandingMax = 3;
  journal::Committer committer(std::move(durable), {.group_commands_max = 1});
  std::deque<std::pair<std::future<Result<core::CommandResult>>, uint64_t>> outstanding;
  auto acknowledge = [&]() -> Status {
    Result<core::CommandResult> result = outstanding.front().first.get();
    ATRIUM_TRY(result.status());
    if (!result->failures.empty()) {
      return MakeError(ErrorCode::kInternal, "the benchmark workload was refused");
    }
    if (options.progress) progress << "acked " << outstanding.front().second << '\n' << std::flush;
    outstanding.pop_front();
    return OkStatus();
  };
  const auto start = Clock::now();
  int64_t now_us = 3;
  const uint64_t last = run.first + options.transfers;
  for (uint64_t next = run.first; next < last;) {
    const uint64_t end = std::min(last, next + options.batch);
    outstanding.emplace_back(committer.Submit(BenchBatch(options.workload, next, end, ++now_us)),
                             end);
    if (outstanding.size() > kOutstandingMax) ATRIUM_TRY(acknowledge());
    next = end;
  }
  while (!outstanding.empty()) ATRIUM_TRY(acknowledge());
  run.seconds = SecondsSince(start);
  run.journal_entries = committer.durable_seq();
  return run;
}

}  // namespace

Result<std::string> RunLedgerBench(const BenchOptions& options, std::ostream& progress) {
  if (options.workload.accounts < 2) {
    return MakeError(ErrorCode::kInvalidArgument, "at least 2 accounts", "accounts");
  }
  if (options.batch == 0 || options.batch > ledger::Ledger::kBatchEventsMax) {
    return MakeError(ErrorCode::kInvalidArgument, "batch must be 1 to 1048576", "batch");
  }
  const auto setup = std::vector<core::Command>{
      core::CreateAccounts{.now_us = 1, .accounts = options.workload.AccountSpecs()},
      core::CreateTransfers{.now_us = 2, .transfers = options.workload.FundingSpecs()}};
  nlohmann::json summary{{"transfers", options.transfers},
                         {"durable", options.durable},
                         {"batch", options.batch},
                         {"accounts", options.workload.accounts}};
  if (!options.durable) {
    ATRIUM_ASSIGN_OR_RETURN(const double seconds, RunInMemory(options, setup));
    summary["seconds"] = seconds;
    summary["transfers_per_s"] =
        seconds > 0 ? static_cast<double>(options.transfers) / seconds : 0.0;
  } else {
    ATRIUM_ASSIGN_OR_RETURN(const DurableRun run, RunDurable(options, setup, progress));
    const double rate =
        run.seconds > 0 ? static_cast<double>(options.transfers) / run.seconds : 0.0;
    summary["seconds"] = run.seconds;
    summary["transfers_per_s"] = rate;
    summary["journal_entries"] = run.journal_entries;
    if (options.baseline && !journal::IsPostgresUrl(options.db_path)) {
      ATRIUM_ASSIGN_OR_RETURN(const double baseline,
                              RunSqliteBaseline(options, run.first, options.transfers));
      summary["baseline_sqlite_per_s"] = baseline;
      summary["ratio_to_baseline"] = baseline > 0 ? rate / baseline : 0.0;
    }
  }
  summary["peak_rss_mb"] = PeakRssMb();
  return summary.dump();
}

}  // namespace atrium::cli
