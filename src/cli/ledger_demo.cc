// `atrium ledger demo`: a grant program's money in a dozen steps, on a real journal. A
// sponsor funds a program; the program splits its budget into tracks; a decision awards
// three grants in one linked batch; jobs hold their worst case and settle what they used;
// an abandoned hold expires; an over-budget job is refused; an expired course's credits
// are swept back. Logical times are fixed, so the output is the same on every machine,
// and every id is fixed, so a second run shows each step answering `exists`.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "journal/journal.h"
#include "journal/open.h"
#include "journal/pg_store.h"

namespace atrium::cli {
namespace {

using ledger::AccountKind;
using ledger::TransferSpec;

constexpr int64_t kStartUs = 1'767'571'200'000'000;  // 2026-01-05T00:00:00Z
constexpr int64_t kHourUs = 3'600'000'000;

enum DemoAccount : uint32_t {
  kSponsor = 1,
  kProgramPool = 10,
  kPartnerTrack = 20,
  kResearcherTrack = 21,
  kEducationTrack = 22,
  kUniversityGrant = 100,
  kResearcherGrant = 101,
  kCourse = 102,
  kClusterRevenue = 900,
};

const char* Name(Id128 id) {
  switch (static_cast<uint32_t>(id)) {
    case kSponsor:
      return "sponsor (accelerator credits)";
    case kProgramPool:
      return "program pool";
    case kPartnerTrack:
      return "track: partner universities";
    case kResearcherTrack:
      return "track: individual researchers";
    case kEducationTrack:
      return "track: courses";
    case kUniversityGrant:
      return "grant: partner university";
    case kResearcherGrant:
      return "grant: researcher";
    case kCourse:
      return "course: intro to accelerators";
    case kClusterRevenue:
      return "cluster revenue";
    default:
      return "?";
  }
}

Credits Whole(int64_t credits) { return Credits::FromWhole(credits); }

class Demo {
 public:
  explicit Demo(journal::DurableCore* durable) : durable_(durable) {}

  void Step(const std::string& what, const core::Command& command) {
    auto result = durable_->Submit(command);
    if (!result.ok()) {
      std::cerr << "atrium: error: " << result.error().ToString() << '\n';
      throw CLI::RuntimeError(kExitStorage);
    }
    // One word per distinct outcome, with a count when an outcome repeats: "exists x9".
    std::string outcome = result->failures.empty() ? "ok" : "";
    for (size_t failure_idx = 0; failure_idx < result->failures.size();) {
      const ErrorCode code = result->failures[failure_idx].code;
      size_t run_end = failure_idx;
      while (run_end < result->failures.size() && result->failures[run_end].code == code) ++run_end;
      if (!outcome.empty()) outcome += ", ";
      outcome += std::string(ToString(code));
      if (run_end - failure_idx > 1) outcome += fmt::format(" x{}", run_end - failure_idx);
      failure_idx = run_end;
    }
    if (std::holds_alternative<core::Tick>(command)) {
      outcome = fmt::format("{} hold(s) expired", result->expired);
    }
    std::cout << fmt::format("  {:<64} {}\n", what, outcome);
  }

 private:
  journal::DurableCore* durable_;
};

void RunDemo(const std::string& db) {
  if (!journal::IsPostgresUrl(db)) {
    const auto parent = std::filesystem::path(db).parent_path();
    std::error_code ignored;
    if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  }
  auto store = journal::OpenJournalStore(db, journal::OpenMode::kReadWriteCreate);
  if (!store.ok()) {
    std::cerr << "atrium: error: " << store.error().ToString() << '\n';
    throw CLI::RuntimeError(kExitStorage);
  }
  auto opened = journal::DurableCore::Open(std::move(*store));
  if (!opened.ok()) {
    std::cerr << "atrium: error: " << opened.error().ToString() << '\n';
    throw CLI::RuntimeError(kExitStorage);
  }
  journal::DurableCore& durable = **opened;
  Demo demo(&durable);
  const Credits trainium = *Credits::Parse("1.34375");  // per chip-hour: 21.50 / 16 chips

  std::cout << "Atrium ledger demo: a Build-on-Trainium-style program (journal: " << db << ")\n";
  constexpr uint16_t kNoOverdraft = ledger::kDebitsMustNotExceedCredits;
  demo.Step(
      "open accounts: sponsor, pool, 3 tracks, 3 grants, cluster revenue",
      core::CreateAccounts{
          .now_us = kStartUs,
          .accounts = {
              {.id = kSponsor, .kind = AccountKind::kSponsor},
              {.id = kProgramPool, .kind = AccountKind::kProgramPool, .flags = kNoOverdraft},
              {.id = kPartnerTrack, .kind = AccountKind::kTrackPool, .flags = kNoOverdraft},
              {.id = kResearcherTrack, .kind = AccountKind::kTrackPool, .flags = kNoOverdraft},
              {.id = kEducationTrack, .kind = AccountKind::kTrackPool, .flags = kNoOverdraft},
              {.id = kUniversityGrant, .kind = AccountKind::kGrant, .flags = kNoOverdraft},
              {.id = kResearcherGrant, .kind = AccountKind::kGrant, .flags = kNoOverdraft},
              {.id = kCourse, .kind = AccountKind::kCourse, .flags = kNoOverdraft},
              {.id = kClusterRevenue, .kind = AccountKind::kClusterRevenue}}});
  demo.Step("sponsor funds the program with 110,000,000 credits",
            core::CreateTransfers{.now_us = kStartUs + 1,
                                  .transfers = {{.id = 1001,
                                                 .debit_account_id = kSponsor,
                                                 .credit_account_id = kProgramPool,
                                                 .amount = Whole(110'000'000)}}});
  demo.Step("budget split into three tracks (one linked batch)",
            core::CreateTransfers{.now_us = kStartUs + 2,
                                  .transfers = {{.id = 1002,
                                                 .debit_account_id = kProgramPool,
                                                 .credit_account_id = kPartnerTrack,
                                                 .amount = Whole(66'000'000),
                                                 .flags = ledger::kLinked},
                                                {.id = 1003,
                                                 .debit_account_id = kProgramPool,
                                                 .credit_account_id = kResearcherTrack,
                                                 .amount = Whole(30'000'000),
                                                 .flags = ledger::kLinked},
                                                {.id = 1004,
                                                 .debit_account_id = kProgramPool,
                                                 .credit_account_id = kEducationTrack,
                                                 .amount = Whole(14'000'000)}}});
  const std::vector<TransferSpec> awards = {{.id = 1010,
                                             .debit_account_id = kPartnerTrack,
                                             .credit_account_id = kUniversityGrant,
                                             .amount = Whole(11'000'000),
                                             .flags = ledger::kLinked},
                                            {.id = 1011,
                                             .debit_account_id = kResearcherTrack,
                                             .credit_account_id = kResearcherGrant,
                                             .amount = Whole(500'000),
                                             .flags = ledger::kLinked},
                                            {.id = 1012,
                                             .debit_account_id = kEducationTrack,
                                             .credit_account_id = kCourse,
                                             .amount = Whole(2'000)}};
  demo.Step("decision committed: 11 M, 500 k and a 2 k course (linked)",
            core::CreateTransfers{.now_us = kStartUs + kHourUs, .transfers = awards});
  demo.Step("the same decision retried by a client (idempotent)",
            core::CreateTransfers{.now_us = kStartUs + kHourUs + 1, .transfers = awards});

  const Credits job_hold = *UsageCost(64, int64_t{24} * 3600, trainium);
  demo.Step(fmt::format("job 1 starts: hold 64 chips x 24 h = {}", job_hold.ToString()),
            core::CreateTransfers{.now_us = kStartUs + 2 * kHourUs,
                                  .transfers = {{.id = 2001,
                                                 .debit_account_id = kResearcherGrant,
                                                 .credit_account_id = kClusterRevenue,
                                                 .amount = job_hold,
                                                 .timeout_s = 25 * 3600,
                                                 .flags = ledger::kPending}}});
  const Credits job_used = *UsageCost(64, int64_t{10} * 3600, trainium);
  demo.Step(fmt::format("job 1 ends after 10 h: post {}, release the rest", job_used.ToString()),
            core::CreateTransfers{.now_us = kStartUs + 12 * kHourUs,
                                  .transfers = {{.id = 2002,
                                                 .amount = job_used,
                                                 .pending_id = 2001,
                                                 .flags = ledger::kPostPending}}});
  const Credits huge_hold = *UsageCost(4096, int64_t{168} * 3600, trainium);
  demo.Step(fmt::format("job 2 asks to hold 4,096 chips x 1 week = {}", huge_hold.ToString()),
            core::CreateTransfers{.now_us = kStartUs + 13 * kHourUs,
                                  .transfers = {{.id = 2003,
                                                 .debit_account_id = kResearcherGrant,
                                                 .credit_account_id = kClusterRevenue,
                                                 .amount = huge_hold,
                                                 .timeout_s = 169 * 3600,
                                                 .flags = ledger::kPending}}});
  const Credits lab_hold = *UsageCost(16, int64_t{2} * 3600, trainium);
  demo.Step(fmt::format("student lab holds 16 chips x 2 h = {}, then is lost", lab_hold.ToString()),
            core::CreateTransfers{.now_us = kStartUs + 14 * kHourUs,
                                  .transfers = {{.id = 2004,
                                                 .debit_account_id = kCourse,
                                                 .credit_account_id = kClusterRevenue,
                                                 .amount = lab_hold,
                                                 .timeout_s = 3 * 3600,
                                                 .flags = ledger::kPending}}});
  demo.Step("the clock ticks 4 h later", core::Tick{.now_us = kStartUs + 18 * kHourUs});
  demo.Step("the course ends: sweep its unspent credits back to its track",
            core::CreateTransfers{.now_us = kStartUs + 19 * kHourUs,
                                  .transfers = {{.id = 2005,
                                                 .debit_account_id = kCourse,
                                                 .credit_account_id = kEducationTrack,
                                                 .amount = Whole(1'000'000),
                                                 .flags = ledger::kBalancingDebit}}});

  std::cout << "\nBalances\n";
  std::cout << fmt::format("  {:<32} {:>18} {:>16} {:>16}\n", "account", "balance", "held",
                           "available");
  __int128 total = 0;
  durable.core().ledger().ForEachAccount([&total](const ledger::Account& account) {
    total += account.balance().micro();
    std::cout << fmt::format("  {:<32} {:>18} {:>16} {:>16}\n", Name(account.id),
                             account.balance().ToString(), account.debits_pending.ToString(),
                             account.available().ToString());
  });
  std::cout << fmt::format("  {:<32} {:>18}\n", "sum of all balances",
                           Credits::FromMicro(static_cast<int64_t>(total)).ToString());
  const Status verified = durable.core().Verify();
  std::cout << "\nInvariants: " << (verified.ok() ? "ok" : verified.error().ToString())
            << "; journal entries: " << durable.last_seq()
            << "; chain head: " << journal::ToHex(durable.last_hash()).substr(0, 16) << "...\n";
  std::cout << "Verify the journal yourself: atrium ledger verify --db " << db << '\n';
  if (!verified.ok()) throw CLI::RuntimeError(kExitStorage);
}

}  // namespace

void RegisterLedgerDemo(CLI::App* ledger_app) {
  auto db = std::make_shared<std::string>("atrium-data/demo.db");
  CLI::App* demo = ledger_app->add_subcommand(
      "demo", "Run a grant program's money through the ledger and print the balances");
  demo->add_option("--db", *db, "Journal file")->capture_default_str();
  demo->callback([db] { RunDemo(*db); });
}

}  // namespace atrium::cli
