// Datasets as allocatable resources (datasets.h): every access policy path, revocation,
// storage charged per GiB-month exactly to the micro-credit over several months (checked
// against an independent computation from the levels and times alone), refusals that
// change nothing, and the snapshot codec's round trip of the dataset book.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "program/datasets.h"
#include "program/loader.h"
#include "program/program_state.h"
#include "program/test_helpers.h"
#include "report/program_report.h"

namespace atrium::program {
namespace {

using test::At;
using test::LedgerSum;
using test::Person;
using test::Whole;

constexpr char kProgram[] = R"(
[program]
id = "data"
name = "Datasets test"
total_budget = 1000000
topics = ["systems"]
[[program.rubric]]
name = "merit"
weight = 1

[[track]]
id = "research"
budget = 500000

[[call]]
id = "r1"
track = "research"
opens = 2026-01-01
closes = 2026-02-01
review_deadline = 2026-03-01
decision = 2026-03-15
reviewers_per_proposal = 1
)";

constexpr int64_t kDayUs = int64_t{24} * 3600 * 1'000'000;
constexpr int64_t kMonthUs = 30 * kDayUs;

class DatasetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<ProgramDefinition> definition = ParseProgramToml(kProgram);
    ASSERT_TRUE(definition.ok()) << definition.error().ToString();
    Result<ProgramState> created = ProgramState::Create(*definition, At("2025-12-01"));
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    state_.emplace(std::move(created).value());
    const int64_t t = At("2025-12-01");
    ASSERT_TRUE(state().AddInstitution({"mit", "MIT", "university", "US"}, t).ok());
    ASSERT_TRUE(state().AddInstitution({"eth", "ETH", "university", "CH"}, t).ok());
    for (int idx : {1, 2, 101, 102}) {
      ASSERT_TRUE(state()
                      .AddPerson({.id = Person(idx),
                                  .name = "P",
                                  .institution = idx > 100 ? "eth" : "mit",
                                  .role = "faculty",
                                  .expertise = {"systems"},
                                  .reviewer = idx > 100},
                                 t)
                      .ok());
    }
    ASSERT_TRUE(state().OpenCall("r1", At("2026-01-02")).ok());
    for (const auto& [id, pi] : std::vector<std::pair<std::string, int>>{{"A", 1}, {"B", 2}}) {
      ASSERT_TRUE(state()
                      .SubmitProposal({.id = id,
                                       .call = "r1",
                                       .pi = Person(pi),
                                       .title = "Proposal " + id,
                                       .topics = {"systems"},
                                       .requested = Whole(100000)},
                                      At("2026-01-10"))
                      .ok());
    }
    ASSERT_TRUE(state().CloseCall("r1", At("2026-02-01")).ok());
    const auto assigned = state().AssignReviewers("r1", At("2026-02-02"));
    ASSERT_TRUE(assigned.ok()) << assigned.error().ToString();
    for (const Assignment& assignment : std::vector<Assignment>(state().assignments())) {
      ASSERT_TRUE(
          state()
              .SubmitReview(assignment.reviewer, assignment.proposal, {4}, "", At("2026-02-15"))
              .ok());
    }
    ASSERT_TRUE(state().DraftDecision("r1", At("2026-03-10")).ok());
    ASSERT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
    ASSERT_TRUE(state().grants().contains("G-A"));
    ASSERT_TRUE(state().grants().contains("G-B"));
    t0_ = At("2026-03-16");
  }

  ProgramState& state() { return *state_; }
  Status Add(const std::string& id, DatasetPolicy policy, std::string agreement = {}) {
    return state().AddDataset({.id = id,
                               .name = "Dataset " + id,
                               .description = "for tests",
                               .size_bytes = 1 << 20,
                               .license = "CC-BY-4.0",
                               .location = "/data/" + id,
                               .policy = policy,
                               .agreement_version = std::move(agreement)},
                              t0_);
  }
  ErrorCode Use(const std::string& grant, const std::string& dataset) {
    const Status status = state().CheckDatasetUse(grant, dataset);
    return status.ok() ? ErrorCode::kOk : status.error().code;
  }
  std::string Bytes() {
    std::string out;
    state().EncodeState(&out);
    return out;
  }
  // What the ledger moved from the grant's account as storage charges.
  int64_t StorageTransferred(const std::string& grant) {
    const Id128 account = state().AccountId(state().grants().at(grant).account);
    int64_t total = 0;
    state().ledger().ForEachTransfer([&](const ledger::Transfer& transfer) {
      if (transfer.code == kCodeStorage && transfer.debit_account_id == account) {
        total += transfer.amount.micro();
      }
    });
    return total;
  }
  const LogEntry& LastLog() { return state().log().entries().back(); }

  std::optional<ProgramState> state_;
  int64_t t0_ = 0;
};

TEST_F(DatasetsTest, OpenDatasetsNeedNoRequest) {
  ASSERT_TRUE(Add("weather", DatasetPolicy::kOpen).ok());
  EXPECT_EQ(LastLog().type, "dataset_added");
  EXPECT_EQ(LastLog().data["policy"], "open");
  EXPECT_EQ(Use("G-A", "weather"), ErrorCode::kOk);
  EXPECT_EQ(Use("G-A", "nope"), ErrorCode::kNotFound);
  auto request = state().RequestDatasetAccess("weather", "G-A", Person(1), "why", t0_);
  ASSERT_FALSE(request.ok());
  EXPECT_EQ(request.error().code, ErrorCode::kInvalidState);
  // Nothing to revoke on an open dataset.
  EXPECT_EQ(state().RevokeDatasetAccess("weather", "G-A", "r", t0_).error().code,
            ErrorCode::kInvalidState);
}

TEST_F(DatasetsTest, ApprovalApproveAndDenyAndRevoke) {
  ASSERT_TRUE(Add("genomes", DatasetPolicy::kApproval).ok());
  EXPECT_EQ(Use("G-A", "genomes"), ErrorCode::kDatasetAccessDenied);
  auto first = state().RequestDatasetAccess("genomes", "G-A", Person(1), "variant calling", t0_);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_EQ(*first, "DR-1");
  // One open request per grant and dataset; a reason is required.
  EXPECT_EQ(state().RequestDatasetAccess("genomes", "G-A", Person(1), "again", t0_).error().code,
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(state().RequestDatasetAccess("genomes", "G-B", Person(2), "", t0_).error().code,
            ErrorCode::kInvalidArgument);
  auto second = state().RequestDatasetAccess("genomes", "G-B", Person(2), "benchmarks", t0_);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, "DR-2");
  // Still pending: denied at use.
  EXPECT_EQ(Use("G-A", "genomes"), ErrorCode::kDatasetAccessDenied);

  ASSERT_TRUE(state().DecideDatasetAccess("DR-1", true, Person(101), "fits", t0_ + 1).ok());
  EXPECT_EQ(LastLog().type, "dataset_access_decided");
  EXPECT_EQ(LastLog().data["decision"], "approved");
  EXPECT_EQ(LastLog().data["grant"], "G-A");
  EXPECT_FALSE(LastLog().data.contains("reason"));
  ASSERT_TRUE(state().DecideDatasetAccess("DR-2", false, Person(101), "no", t0_ + 1).ok());
  EXPECT_EQ(LastLog().data["decision"], "denied");
  EXPECT_EQ(Use("G-A", "genomes"), ErrorCode::kOk);
  EXPECT_EQ(Use("G-B", "genomes"), ErrorCode::kDatasetAccessDenied);
  EXPECT_EQ(state().dataset_book().requests.at("DR-2").state, AccessRequestState::kDenied);
  EXPECT_EQ(state().dataset_book().requests.at("DR-2").decision_reason, "no");
  // Decided once.
  EXPECT_EQ(state().DecideDatasetAccess("DR-1", false, Person(101), "x", t0_).error().code,
            ErrorCode::kInvalidState);
  // With access, a new request is refused; after revocation one may ask again.
  EXPECT_EQ(state().RequestDatasetAccess("genomes", "G-A", Person(1), "more", t0_).error().code,
            ErrorCode::kAlreadyExists);
  ASSERT_TRUE(state().RevokeDatasetAccess("genomes", "G-A", "misuse", t0_ + 2).ok());
  EXPECT_EQ(LastLog().type, "dataset_access_revoked");
  EXPECT_EQ(Use("G-A", "genomes"), ErrorCode::kDatasetAccessDenied);
  EXPECT_EQ(state().RevokeDatasetAccess("genomes", "G-A", "again", t0_ + 2).error().code,
            ErrorCode::kInvalidState);
  EXPECT_TRUE(state().RequestDatasetAccess("genomes", "G-A", Person(1), "fixed", t0_ + 3).ok());
}

TEST_F(DatasetsTest, RestrictedNeedsNamingAndTheCurrentAgreement) {
  EXPECT_EQ(Add("ehr", DatasetPolicy::kRestricted).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(Add("ehr", DatasetPolicy::kOpen, "v1").error().code, ErrorCode::kInvalidArgument);
  ASSERT_TRUE(Add("ehr", DatasetPolicy::kRestricted, "v3").ok());
  EXPECT_EQ(Add("ehr", DatasetPolicy::kOpen).error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(Use("G-A", "ehr"), ErrorCode::kDatasetAccessDenied);
  // Accepting the agreement alone gives no access.
  EXPECT_EQ(state().AcceptDatasetAgreement("ehr", "G-A", "v2", t0_).error().code,
            ErrorCode::kInvalidArgument);
  ASSERT_TRUE(state().AcceptDatasetAgreement("ehr", "G-B", "v3", t0_).ok());
  EXPECT_EQ(LastLog().type, "dataset_agreement_accepted");
  EXPECT_EQ(Use("G-B", "ehr"), ErrorCode::kDatasetAccessDenied);
  // Named (approved) without the agreement: agreement_required until the PI accepts.
  auto request = state().RequestDatasetAccess("ehr", "G-A", Person(1), "cohort study", t0_);
  ASSERT_TRUE(request.ok());
  ASSERT_TRUE(state().DecideDatasetAccess(*request, true, "staff", "named", t0_).ok());
  EXPECT_EQ(Use("G-A", "ehr"), ErrorCode::kAgreementRequired);
  ASSERT_TRUE(state().AcceptDatasetAgreement("ehr", "G-A", "v3", t0_ + 5).ok());
  EXPECT_EQ(state().AcceptDatasetAgreement("ehr", "G-A", "v3", t0_ + 5).error().code,
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(Use("G-A", "ehr"), ErrorCode::kOk);
  ASSERT_TRUE(state().RevokeDatasetAccess("ehr", "G-A", "end of study", t0_ + 6).ok());
  EXPECT_EQ(Use("G-A", "ehr"), ErrorCode::kDatasetAccessDenied);
}

TEST_F(DatasetsTest, ANewAgreementVersionIsAcceptedAgain) {
  ASSERT_TRUE(Add("ehr", DatasetPolicy::kRestricted, "v1").ok());
  ASSERT_TRUE(Add("weather", DatasetPolicy::kOpen).ok());
  auto request = state().RequestDatasetAccess("ehr", "G-A", Person(1), "cohort", t0_);
  ASSERT_TRUE(request.ok());
  ASSERT_TRUE(state().DecideDatasetAccess(*request, true, "staff", "named", t0_).ok());
  ASSERT_TRUE(state().AcceptDatasetAgreement("ehr", "G-A", "v1", t0_).ok());
  EXPECT_EQ(Use("G-A", "ehr"), ErrorCode::kOk);
  const std::string bytes = Bytes();
  EXPECT_EQ(state().UpdateDataset("ehr", {.agreement_version = "v1"}, t0_).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(state().UpdateDataset("weather", {.agreement_version = "v2"}, t0_).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(state().UpdateDataset("ehr", {.location = ""}, t0_).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(state().UpdateDataset("ehr", {}, t0_).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(state().UpdateDataset("nope", {.name = "x"}, t0_).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Bytes(), bytes);
  ASSERT_TRUE(
      state()
          .UpdateDataset("ehr", {.location = "/data/ehr-2", .agreement_version = "v2"}, t0_ + 1)
          .ok());
  EXPECT_EQ(LastLog().type, "dataset_updated");
  EXPECT_EQ(LastLog().data["changed"], nlohmann::json({"location", "agreement_version"}));
  EXPECT_EQ(state().dataset_book().datasets.at("ehr").location, "/data/ehr-2");
  // The grant stays named, but its PI accepts the new version before it reads again.
  EXPECT_EQ(Use("G-A", "ehr"), ErrorCode::kAgreementRequired);
  ASSERT_TRUE(state().AcceptDatasetAgreement("ehr", "G-A", "v2", t0_ + 2).ok());
  EXPECT_EQ(Use("G-A", "ehr"), ErrorCode::kOk);
}

// The storage charges against an independent computation: the exact GiB-microseconds
// times the price, divided by a 30-day month once over the whole time, floored.
TEST_F(DatasetsTest, StorageIsChargedExactlyOverMonths) {
  const Credits price = Credits::FromMicro(1'000'003);  // 1.000003 credits per GiB-month
  ASSERT_TRUE(state().SetStoragePolicy({.price_per_gib_month = price, .gib_max = 500}, t0_).ok());
  struct Level {
    int64_t at_us;
    int64_t gib;
  };
  const int64_t start = t0_;
  const std::vector<Level> levels = {{start, 7},
                                     {start + 10 * kDayUs + 13'000'017, 100},
                                     {start + 45 * kDayUs + 999, 3},
                                     {start + 71 * kDayUs + 1, 0},
                                     {start + 80 * kDayUs + 77, 250}};
  const auto expected_through = [&](int64_t until_us) {
    __int128 numerator = 0;
    for (size_t idx = 0; idx < levels.size(); ++idx) {
      const int64_t from = levels[idx].at_us;
      const int64_t to = idx + 1 < levels.size() ? levels[idx + 1].at_us : INT64_MAX;
      const int64_t end = std::min(to, until_us);
      if (end > from) numerator += static_cast<__int128>(levels[idx].gib) * (end - from);
    }
    return static_cast<int64_t>(numerator * price.micro() / kMonthUs);
  };
  const int64_t before = state().AccountBalance(state().grants().at("G-A").account).micro();
  size_t next_level = 0;
  // Ticks every 5 days, except a gap of 70 days that crosses two boundaries at once.
  std::vector<int64_t> ticks;
  for (int64_t day = 1; day <= 100; day += 5) ticks.push_back(start + day * kDayUs);
  ticks.push_back(start + 170 * kDayUs);
  for (const int64_t tick : ticks) {
    while (next_level < levels.size() && levels[next_level].at_us <= tick) {
      ASSERT_TRUE(
          state().SetGrantStorage("G-A", levels[next_level].gib, levels[next_level].at_us).ok());
      ++next_level;
    }
    state().Tick(tick);
    const int64_t boundaries = (tick - start) / kMonthUs;
    const int64_t expected = expected_through(start + boundaries * kMonthUs);
    EXPECT_EQ(StorageTransferred("G-A"), expected) << "at day " << (tick - start) / kDayUs;
    EXPECT_EQ(state().dataset_book().storage.at("G-A").charged.micro(), expected);
    EXPECT_EQ(before - state().AccountBalance(state().grants().at("G-A").account).micro(),
              expected);
    EXPECT_EQ(state().dataset_book().storage.at("G-A").periods_settled, boundaries);
  }
  // Storage ran through five whole months: something was charged every month.
  EXPECT_GT(expected_through(start + 5 * kMonthUs), expected_through(start + 4 * kMonthUs));
  EXPECT_EQ(LedgerSum(state()), 0);
}

TEST_F(DatasetsTest, StorageRefusalsChangeNothingAndAnUnpaidGrantLapses) {
  EXPECT_EQ(state().SetGrantStorage("G-A", 1, t0_).error().code, ErrorCode::kLimitExceeded);
  ASSERT_TRUE(
      state().SetStoragePolicy({.price_per_gib_month = Whole(1000), .gib_max = 1000}, t0_).ok());
  const std::string bytes = Bytes();
  // 1000 GiB a month cost 1,000,000 credits; the grant has 100,000.
  EXPECT_EQ(state().SetGrantStorage("G-A", 1000, t0_).error().code,
            ErrorCode::kInsufficientCredits);
  EXPECT_EQ(state().SetGrantStorage("G-A", 1001, t0_).error().code, ErrorCode::kLimitExceeded);
  EXPECT_EQ(state().SetGrantStorage("G-A", -1, t0_).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(state().SetGrantStorage("G-nope", 1, t0_).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Bytes(), bytes);

  // 60 GiB: 60,000 a month. Spend most of the grant elsewhere; the first month's charge
  // then fails, and the storage lapses with the amount owed.
  ASSERT_TRUE(state().SetGrantStorage("G-A", 60, t0_).ok());
  ASSERT_TRUE(state().RecordUsage("G-A", Whole(90000), t0_ + 1).ok());
  state().Tick(t0_ + kMonthUs);
  const GrantStorage& storage = state().dataset_book().storage.at("G-A");
  EXPECT_FALSE(storage.active);
  EXPECT_EQ(storage.gib, 0);
  EXPECT_EQ(storage.accrued, Whole(60000));
  EXPECT_TRUE(storage.charged.is_zero());
  EXPECT_EQ(LastLog().type, "storage_lapsed");
  EXPECT_EQ(LastLog().data["owed"], "60000");
  // Asking again needs what is owed plus a month.
  EXPECT_EQ(state().SetGrantStorage("G-A", 1, t0_ + kMonthUs).error().code,
            ErrorCode::kInsufficientCredits);
  EXPECT_EQ(LedgerSum(state()), 0);
}

TEST_F(DatasetsTest, AGrantsEndChargesItsLastPartialMonth) {
  ASSERT_TRUE(
      state().SetStoragePolicy({.price_per_gib_month = Whole(30), .gib_max = 10}, t0_).ok());
  ASSERT_TRUE(state().SetGrantStorage("G-B", 10, t0_).ok());
  ASSERT_TRUE(state().CloseGrant("G-B", t0_ + 3 * kDayUs).ok());
  // 10 GiB x 30 credits x 3/30 of a month.
  EXPECT_EQ(state().dataset_book().storage.at("G-B").charged, Whole(30));
  EXPECT_EQ(StorageTransferred("G-B"), Whole(30).micro());
  EXPECT_FALSE(state().dataset_book().storage.at("G-B").active);
  EXPECT_EQ(LedgerSum(state()), 0);
}

TEST_F(DatasetsTest, TheBookSurvivesTheCodec) {
  ASSERT_TRUE(Add("genomes", DatasetPolicy::kApproval).ok());
  ASSERT_TRUE(Add("ehr", DatasetPolicy::kRestricted, "v1").ok());
  ASSERT_TRUE(state().RequestDatasetAccess("genomes", "G-A", Person(1), "why", t0_).ok());
  ASSERT_TRUE(state().RequestDatasetAccess("ehr", "G-A", Person(1), "why", t0_).ok());
  ASSERT_TRUE(state().DecideDatasetAccess("DR-2", true, "staff", "ok", t0_).ok());
  ASSERT_TRUE(state().AcceptDatasetAgreement("ehr", "G-A", "v1", t0_).ok());
  ASSERT_TRUE(
      state()
          .SetStoragePolicy({.price_per_gib_month = Credits::FromMicro(7), .gib_max = 9}, t0_)
          .ok());
  ASSERT_TRUE(state().SetGrantStorage("G-A", 9, t0_ + 3).ok());
  state().NoteDatasetUse("G-A", {"ehr"});
  state().Tick(t0_ + kMonthUs + 5);
  const std::string bytes = Bytes();
  Result<ProgramState> decoded = ProgramState::DecodeState(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
  std::string again;
  decoded->EncodeState(&again);
  EXPECT_EQ(again, bytes);
  const DatasetBook& book = decoded->dataset_book();
  EXPECT_EQ(book.datasets.size(), 2u);
  EXPECT_EQ(book.datasets.at("ehr").agreement_version, "v1");
  EXPECT_EQ(book.requests.at("DR-1").state, AccessRequestState::kPending);
  EXPECT_EQ(book.next_request, 3u);
  EXPECT_EQ(book.uses.at("ehr").jobs_by_grant.at("G-A"), 1);
  EXPECT_EQ(book.storage.at("G-A").charged.micro(), 63);
  EXPECT_TRUE(decoded->CheckDatasetUse("G-A", "ehr").ok());
  // A truncated book is corruption, not a crash.
  for (size_t cut = 1; cut < 64 && cut < bytes.size(); cut += 7) {
    EXPECT_FALSE(ProgramState::DecodeState(bytes.substr(0, bytes.size() - cut)).ok()) << cut;
  }
}

TEST_F(DatasetsTest, TheReportListsDatasetsWithTheirGrantsAndJobs) {
  ASSERT_TRUE(Add("weather", DatasetPolicy::kOpen).ok());
  ASSERT_TRUE(Add("genomes", DatasetPolicy::kApproval).ok());
  ASSERT_TRUE(Add("unused", DatasetPolicy::kApproval).ok());
  ASSERT_TRUE(state().RequestDatasetAccess("genomes", "G-A", Person(1), "why", t0_).ok());
  ASSERT_TRUE(state().DecideDatasetAccess("DR-1", true, "steward", "ok", t0_).ok());
  state().NoteDatasetUse("G-A", {"weather", "genomes"});
  state().NoteDatasetUse("G-A", {"genomes"});
  state().NoteDatasetUse("G-B", {"weather"});
  ASSERT_TRUE(state().SetStoragePolicy({.price_per_gib_month = Whole(3), .gib_max = 10}, t0_).ok());
  ASSERT_TRUE(state().SetGrantStorage("G-B", 2, t0_).ok());
  state().Tick(t0_ + kMonthUs);
  const nlohmann::json report = report::ProgramReportJson(state());
  const nlohmann::json& items = report["datasets"]["items"];
  ASSERT_EQ(items.size(), 3u);
  std::map<std::string, nlohmann::json> by_id;
  for (const nlohmann::json& item : items) by_id[item["dataset"].get<std::string>()] = item;
  EXPECT_EQ(by_id["weather"]["grants_with_access"], 2);
  EXPECT_EQ(by_id["weather"]["grants_used"], 2);
  EXPECT_EQ(by_id["weather"]["jobs"], 2);
  EXPECT_EQ(by_id["genomes"]["grants_with_access"], 1);
  EXPECT_EQ(by_id["genomes"]["grants_used"], 1);
  EXPECT_EQ(by_id["genomes"]["jobs"], 2);
  EXPECT_EQ(by_id["unused"]["grants_with_access"], 0);
  EXPECT_EQ(by_id["unused"]["jobs"], 0);
  EXPECT_EQ(report["datasets"]["storage_charged"], "6");
  const std::string html = report::ProgramReportHtml(state());
  EXPECT_NE(html.find("<h2>Datasets</h2>"), std::string::npos);
  EXPECT_NE(html.find("genomes"), std::string::npos);
}

}  // namespace
}  // namespace atrium::program
