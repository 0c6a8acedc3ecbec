// The `atrium ledger` command line, run as a user runs it. Good input changes balances;
// bad input (unknown account, malformed or negative amount, malformed id, unknown flag,
// a malformed batch file, a corrupted or missing journal) gets a clear message with its
// stable code and the documented exit status, and leaves the stored journal as it was.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "process.h"
#include "service_process.h"

namespace atrium {
namespace {

constexpr int kRefused = 1;
constexpr int kUsage = 2;
constexpr int kStorage = 3;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class CliLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("atrium-cli-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "ledger.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  testing::ProcessResult Atrium(std::vector<std::string> args, const std::string& input = {}) {
    args.insert(args.begin(), ATRIUM_BINARY);
    return testing::Run(args, input);
  }
  // Runs a command that must succeed.
  std::string Ok(const std::vector<std::string>& args) {
    const auto result = Atrium(args);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result.out;
  }
  // The journal's state as `verify` reports it: entries and chain head.
  std::string JournalState() {
    const auto result = Atrium({"ledger", "verify", "--db", db_, "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result.out;
  }
  std::string Balance(const std::string& account) {
    const auto result = Atrium({"ledger", "balances", "--db", db_, "--account", account, "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    const auto parsed = nlohmann::json::parse(result.out, nullptr, false);
    return parsed.is_array() && parsed.size() == 1 ? parsed[0]["balance"].get<std::string>() : "";
  }
  void CreateFundedGrant() {
    Ok({"ledger", "account", "create", "--db", db_, "--id", "1", "--kind", "sponsor"});
    Ok({"ledger", "account", "create", "--db", db_, "--id", "2", "--kind", "grant", "--flag",
        "debits_must_not_exceed_credits"});
    Ok({"ledger", "account", "create", "--db", db_, "--id", "3", "--kind", "cluster_revenue"});
    Ok({"ledger", "transfer", "--db", db_, "--id", "10", "--debit", "1", "--credit", "2",
        "--amount", "500000"});
  }

  std::filesystem::path dir_;
  std::string db_;
};

TEST_F(CliLedgerTest, TransfersHoldsAndPostsMoveCredits) {
  CreateFundedGrant();
  EXPECT_EQ(Balance("2"), "500000");
  Ok({"ledger", "hold", "--db", db_, "--id", "20", "--debit", "2", "--credit", "3", "--amount",
      "2064", "--timeout-s", "90000"});
  Ok({"ledger", "post", "--db", db_, "--id", "21", "--pending-id", "20", "--amount", "860"});
  EXPECT_EQ(Balance("2"), "499140");
  EXPECT_EQ(Balance("3"), "860");
  // A retry of the same post answers exists and changes nothing.
  const auto retry = Atrium(
      {"ledger", "post", "--db", db_, "--id", "21", "--pending-id", "20", "--amount", "860"});
  EXPECT_EQ(retry.exit_code, 0);
  EXPECT_NE(retry.out.find("exists"), std::string::npos);
  EXPECT_EQ(Balance("3"), "860");
  const auto history =
      nlohmann::json::parse(Ok({"ledger", "history", "--db", db_, "--account", "2", "--json"}));
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[1]["kind"], "hold");
  EXPECT_EQ(history[1]["state"], "posted");
  EXPECT_EQ(history[2]["amount"], "860");
  const auto verified = nlohmann::json::parse(JournalState());
  EXPECT_EQ(verified["transfers"], 3);
}

TEST_F(CliLedgerTest, LinkedBatchFromAFileIsAllOrNothing) {
  CreateFundedGrant();
  const auto batch = dir_ / "batch.json";
  std::ofstream(batch) << R"([
    {"id": "30", "debit": "2", "credit": "3", "amount": "100", "flags": ["linked"]},
    {"id": 31, "debit": "2", "credit": "3", "amount": "999999"}
  ])";
  const std::string before = JournalState();
  const auto result = Atrium({"ledger", "batch", "--db", db_, "--file", batch.string()});
  EXPECT_EQ(result.exit_code, kRefused);
  EXPECT_NE(result.err.find("transfer 30: linked_event_failed"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("transfer 31: insufficient_credits"), std::string::npos);
  EXPECT_EQ(JournalState(), before);
  EXPECT_EQ(Balance("2"), "500000");
}

struct BadInput {
  const char* name;
  std::vector<std::string> args;  // after "ledger"; --db is appended
  int exit_code;
  const char* code;  // the stable code the message must carry
};

TEST_F(CliLedgerTest, BadInputIsRefusedClearlyAndChangesNothing) {
  CreateFundedGrant();
  const auto bad_batch = dir_ / "bad.json";
  std::ofstream(bad_batch) << R"([{"id": "40", "debit": "2", "credit": "3", "amount": "1",
                                   "colour": "blue"}])";
  const auto not_json = dir_ / "not.json";
  std::ofstream(not_json) << "{ this is not json";
  const std::vector<BadInput> cases = {
      {"unknown account",
       {"transfer", "--id", "40", "--debit", "2", "--credit", "99", "--amount", "1"},
       kRefused,
       "account_not_found"},
      {"malformed amount",
       {"transfer", "--id", "40", "--debit", "2", "--credit", "3", "--amount", "12.3.4"},
       kUsage,
       "parse_error"},
      {"too precise amount",
       {"transfer", "--id", "40", "--debit", "2", "--credit", "3", "--amount", "0.0000001"},
       kUsage,
       "parse_error"},
      {"negative amount",
       {"transfer", "--id", "40", "--debit", "2", "--credit", "3", "--amount", "-5"},
       kUsage,
       "negative_amount"},
      {"overdraft",
       {"transfer", "--id", "40", "--debit", "2", "--credit", "3", "--amount", "500000.000001"},
       kRefused,
       "insufficient_credits"},
      {"malformed id",
       {"transfer", "--id", "4x0", "--debit", "2", "--credit", "3", "--amount", "1"},
       kUsage,
       "parse_error"},
      {"same id, other fields",
       {"transfer", "--id", "10", "--debit", "1", "--credit", "2", "--amount", "1"},
       kRefused,
       "exists_with_different_fields"},
      {"unknown kind",
       {"account", "create", "--id", "7", "--kind", "bank"},
       kUsage,
       "invalid_kind"},
      {"unknown flag",
       {"account", "create", "--id", "7", "--flag", "overdraft"},
       kUsage,
       "invalid_flags"},
      {"post of nothing",
       {"post", "--id", "41", "--pending-id", "777"},
       kRefused,
       "pending_not_found"},
      {"unknown batch field", {"batch", "--file", bad_batch.string()}, kUsage, "parse_error"},
      {"batch not json", {"batch", "--file", not_json.string()}, kUsage, "parse_error"},
      {"bad timeout",
       {"hold", "--id", "42", "--debit", "2", "--credit", "3", "--amount", "1", "--timeout-s",
        "soon"},
       kUsage,
       "parse_error"},
      {"history of nobody", {"history", "--account", "55"}, kRefused, "account_not_found"},
  };
  const std::string before = JournalState();
  for (const BadInput& bad : cases) {
    std::vector<std::string> args{"ledger"};
    args.insert(args.end(), bad.args.begin(), bad.args.end());
    args.push_back("--db");
    args.push_back(db_);
    const auto result = Atrium(args);
    EXPECT_EQ(result.exit_code, bad.exit_code) << bad.name << ": " << result.err;
    EXPECT_NE(result.err.find(bad.code), std::string::npos)
        << bad.name << ": expected " << bad.code << " in: " << result.err;
    EXPECT_EQ(JournalState(), before) << bad.name << " changed the journal";
  }
  EXPECT_EQ(Balance("2"), "500000");
  // CLI11 itself refuses unknown options and missing required ones.
  EXPECT_EQ(Atrium({"ledger", "transfer", "--db", db_, "--id", "1"}).exit_code, kUsage);
  EXPECT_EQ(Atrium({"ledger", "transfer", "--db", db_, "--bogus"}).exit_code, kUsage);
}

TEST_F(CliLedgerTest, MissingJournalIsNotCreatedByMistake) {
  const auto result = Atrium({"ledger", "transfer", "--db", db_, "--id", "1", "--debit", "2",
                              "--credit", "3", "--amount", "1"});
  EXPECT_EQ(result.exit_code, kStorage);
  EXPECT_NE(result.err.find("not_found"), std::string::npos) << result.err;
  EXPECT_FALSE(std::filesystem::exists(db_));
  EXPECT_EQ(Atrium({"ledger", "verify", "--db", db_}).exit_code, kStorage);
  EXPECT_FALSE(std::filesystem::exists(db_));
}

TEST_F(CliLedgerTest, CorruptedJournalIsReportedAndLeftAlone) {
  CreateFundedGrant();
  // Fold the WAL into the main file so the bytes we damage are the journal's.
  Ok({"ledger", "snapshot", "--db", db_});
  std::filesystem::remove(db_ + "-wal");
  std::filesystem::remove(db_ + "-shm");
  std::string bytes = ReadFile(db_);
  ASSERT_GT(bytes.size(), 4096u);
  // Overwrite SQLite's header: the file is no longer a database.
  for (size_t byte_idx = 0; byte_idx < 100; ++byte_idx) bytes[byte_idx] = 'x';
  std::ofstream(db_, std::ios::binary | std::ios::trunc) << bytes;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"ledger", "verify", "--db", db_},
        {"ledger", "balances", "--db", db_},
        {"ledger", "transfer", "--db", db_, "--id", "50", "--debit", "1", "--credit", "2",
         "--amount", "1"}}) {
    const auto result = Atrium(args);
    EXPECT_EQ(result.exit_code, kStorage) << args[1] << ": " << result.err;
    EXPECT_NE(result.err.find("corruption"), std::string::npos) << result.err;
    EXPECT_EQ(ReadFile(db_), bytes) << args[1] << " modified a corrupted journal";
  }
}

TEST_F(CliLedgerTest, TamperedEntryIsNamedByVerify) {
  CreateFundedGrant();
  Ok({"ledger", "snapshot", "--db", db_});
  std::filesystem::remove(db_ + "-wal");
  std::filesystem::remove(db_ + "-shm");
  // Find entry 4's payload (the funding transfer of 500,000 credits, whose amount the
  // journal holds as a varint) and change one byte of it in place.
  std::string bytes = ReadFile(db_);
  std::string amount_varint;
  ByteWriter(&amount_varint).PutZigzag(500'000'000'000);
  const size_t at = bytes.find(amount_varint);
  ASSERT_NE(at, std::string::npos);
  bytes[at] = static_cast<char>(bytes[at] ^ 0x02);
  std::ofstream(db_, std::ios::binary | std::ios::trunc) << bytes;
  const auto result = Atrium({"ledger", "verify", "--db", db_});
  EXPECT_EQ(result.exit_code, kStorage);
  EXPECT_NE(result.err.find("chain_broken: entry 4"), std::string::npos) << result.err;
}

TEST_F(CliLedgerTest, DemoRunsAndIsIdempotent) {
  const std::string demo_db = (dir_ / "demo.db").string();
  const auto first = Atrium({"ledger", "demo", "--db", demo_db});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("insufficient_credits"), std::string::npos);
  EXPECT_NE(first.out.find("Invariants: ok"), std::string::npos);
  const size_t sum_at = first.out.find("sum of all balances");
  ASSERT_NE(sum_at, std::string::npos);
  const std::string sum_line = first.out.substr(sum_at, first.out.find('\n', sum_at) - sum_at);
  EXPECT_EQ(sum_line.substr(sum_line.size() - 2), " 0") << sum_line;
  const auto second = Atrium({"ledger", "demo", "--db", demo_db});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  // The balances are the same after a second run: every step was recognised.
  EXPECT_EQ(first.out.substr(first.out.find("Balances")),
            second.out.substr(second.out.find("Balances")));
}

// `atrium ledger` and `atrium serve` do not share a store by accident: the ledger's default
// is its own file, and a store a running service holds is refused (the journal's
// single-writer lock) with a clear error, leaving the service's journal as it was.
TEST_F(CliLedgerTest, RefusesARunningServicesStoreAndHasItsOwnDefault) {
  const auto help = Atrium({"ledger", "account", "create", "--help"});
  EXPECT_NE(help.out.find("atrium-ledger.db"), std::string::npos) << help.out;
  EXPECT_EQ(help.out.find("atrium-data/atrium.db"), std::string::npos) << help.out;

  testing::ServiceProcess service;
  ASSERT_TRUE(service.Start(
      ATRIUM_BINARY, {"--data", (dir_ / "data").string(), "--no-examples", "--threads", "2"}))
      << service.output();
  const std::string store = (dir_ / "data" / "atrium.db").string();
  ASSERT_TRUE(std::filesystem::exists(store));
  const auto before = Atrium({"ledger", "verify", "--db", store, "--json"});
  ASSERT_EQ(before.exit_code, 0) << before.err;

  for (const std::vector<std::string>& write :
       {std::vector<std::string>{"ledger", "account", "create", "--db", store, "--id", "7"},
        std::vector<std::string>{"ledger", "tick", "--db", store}}) {
    const auto refused = Atrium(write);
    EXPECT_EQ(refused.exit_code, kRefused) << refused.err;
    EXPECT_NE(refused.err.find("locked: another atrium serve is using this store"),
              std::string::npos)
        << refused.err;
    EXPECT_NE(refused.err.find("its default is atrium-ledger.db"), std::string::npos)
        << refused.err;
  }
  const auto after = Atrium({"ledger", "verify", "--db", store, "--json"});
  EXPECT_EQ(after.out, before.out);
  EXPECT_EQ(service.Stop(SIGTERM), 0) << service.output();

  // Stopped, the store is a ledger store like any other.
  Ok({"ledger", "account", "create", "--db", store, "--id", "7"});
}

}  // namespace
}  // namespace atrium
