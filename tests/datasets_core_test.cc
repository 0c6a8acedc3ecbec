// Datasets and storage through the whole core (docs/datasets.md): four grants keep storage
// at changing levels for months while their jobs read datasets, their obligations go
// overdue (the grants freeze, and storage charges wait), one grant closes and the rest
// expire. Core::Verify (every ledger invariant, each grant's storage charged equal to the
// ledger's storage transfers, the cluster revenue equal to compute plus storage) must pass
// after every op; a grant kept at one level is charged exactly
// floor(gib x its storage's life in microseconds x price / 30 days) in all; the state survives
// a snapshot byte for byte.
#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/credits.h"
#include "core/core.h"
#include "core_test_util.h"

namespace atrium {
namespace {

using core_test::Actor;
using core_test::Iso;
using core_test::kDayUs;
using core_test::kHourUs;
using core_test::kT0Us;
using core_test::Orcid;
using nlohmann::json;

constexpr int64_t kMonthUs = 30 * kDayUs;
constexpr char kProgram[] = "ds";
constexpr int64_t kPriceMicro = 333'333;  // 0.333333 credits per GiB-month

std::string ProgramToml() {
  return std::string(R"([program]
id = "ds"
name = "Datasets core test"
total_budget = 100000
award_policy = "greedy"
topics = ["compilers"]
[program.prices]
trn1 = "1.34375"
[[program.rubric]]
name = "merit"
weight = 1
min = 1
max = 5
[program.obligations]
progress_report_months = [1]
final_report = false
paper = false
repository = false
final_grace_months = 1
freeze_when_overdue = true
[[track]]
id = "research"
name = "Research"
kind = "research"
budget = 100000
award_cap = 50000
institution_cap = 100000
pi_roles = ["faculty"]
[[call]]
id = "c1"
track = "research"
)") + "opens = \"" +
         Iso(kT0Us - kHourUs) + "\"\ncloses = \"" + Iso(kT0Us + kDayUs) +
         "\"\nreview_deadline = \"" + Iso(kT0Us + 3 * kDayUs) + "\"\ndecision = \"" +
         Iso(kT0Us + 4 * kDayUs) + "\"\nreviewers_per_proposal = 1\n";
}

constexpr char kClusterToml[] = R"(name = "ds-cluster"
default_accelerator = "trn1"
[accelerators.trn1]
vendor = "AWS"
cores_per_chip = 2
memory_gib_per_chip = 32
price_per_chip_hour = "1.34375"
[node_types.n16]
accelerator = "trn1"
chips = 16
allocation_sizes = [1, 4, 8, 16]
[[pools]]
name = "trn"
node_type = "n16"
nodes = 2
[partitions.research]
classes = ["research", "preemptible"]
walltime_max_s = 604800
)";

class DatasetsCoreTest : public ::testing::Test {
 protected:
  core::AppAnswer Op(json command, const json& actor) {
    command["actor"] = actor;
    if (command.contains("grant") || command.contains("dataset") || command.contains("gib") ||
        command.contains("price_per_gib_month") || command.contains("request")) {
      command["program"] = kProgram;
    }
    const core::CommandResult result =
        core_.Apply(core::AppCommand{.now_us = now_us_, .json = command.dump()});
    const Status verified = core_.Verify();
    EXPECT_TRUE(verified.ok()) << "after " << command.dump() << ": " << verified.error().message;
    return *result.app;
  }
  json Ok(const json& command, const json& actor) {
    const core::AppAnswer answer = Op(command, actor);
    EXPECT_TRUE(answer.status.ok()) << command.dump() << ": " << answer.status.error().message;
    return answer.result;
  }
  const program::ProgramState& Program() const { return *core_.app().FindProgram(kProgram); }

  void SetUp() override {
    now_us_ = kT0Us;
    const json officer = Actor("officer");
    Ok({{"op", "program_create"}, {"toml", ProgramToml()}}, officer);
    Ok({{"op", "cluster_load"}, {"toml", kClusterToml}}, Actor("admin"));
    for (const char* institution : {"north", "south"}) {
      Ok({{"op", "institution_add"},
          {"program", kProgram},
          {"institution",
           {{"id", institution}, {"name", institution}, {"type", "r1"}, {"country", "US"}}}},
         officer);
    }
    const auto person = [&](int n, bool reviewer) {
      Ok({{"op", "person_add"},
          {"program", kProgram},
          {"person",
           {{"id", Orcid(n)},
            {"name", "P"},
            {"institution", reviewer ? "south" : "north"},
            {"role", "faculty"},
            {"expertise", {"compilers"}},
            {"reviewer", reviewer}}}},
         officer);
    };
    for (int n = 1; n <= 4; ++n) person(n, false);
    person(10, true);
    Ok({{"op", "call_open"}, {"program", kProgram}, {"call", "c1"}}, officer);
    for (int i = 0; i < 4; ++i) {
      Ok({{"op", "proposal_submit"},
          {"program", kProgram},
          {"proposal",
           {{"id", "P" + std::to_string(i)},
            {"call", "c1"},
            {"title", "Proposal"},
            {"abstract", "Compilers."},
            {"topics", {"compilers"}},
            {"requested", "5000"},
            {"duration_months", 3 + i},
            {"open_source_plan", "Apache-2.0"}}}},
         Actor("researcher", Orcid(i + 1)));
    }
    now_us_ = kT0Us + kDayUs + kHourUs;
    Ok({{"op", "call_close"}, {"program", kProgram}, {"call", "c1"}}, officer);
    Ok({{"op", "call_assign"}, {"program", kProgram}, {"call", "c1"}}, officer);
    for (const program::Assignment& assignment : Program().assignments()) {
      Ok({{"op", "review_submit"},
          {"program", kProgram},
          {"proposal", assignment.proposal},
          {"scores", {4}}},
         Actor("reviewer", assignment.reviewer));
    }
    Ok({{"op", "decision_draft"}, {"program", kProgram}, {"call", "c1"}}, officer);
    Ok({{"op", "decision_commit"}, {"program", kProgram}, {"call", "c1"}}, officer);
    ASSERT_EQ(Program().grants().size(), 4u);
  }

  json Pi(const std::string& grant) { return Actor("researcher", Program().grants().at(grant).pi); }

  core::Core core_;
  int64_t now_us_ = 0;
};

TEST_F(DatasetsCoreTest, StorageAndDatasetsKeepTheLedgerWholeForMonths) {
  const json officer = Actor("officer");
  Ok({{"op", "dataset_add"},
      {"dataset", "weather"},
      {"name", "Weather"},
      {"size_bytes", 1000},
      {"location", "/data/weather"},
      {"policy", "open"}},
     officer);
  Ok({{"op", "dataset_add"},
      {"dataset", "genomes"},
      {"name", "Genomes"},
      {"size_bytes", 1000},
      {"location", "/data/genomes"},
      {"policy", "approval"}},
     Actor("data_steward"));
  Ok({{"op", "dataset_access_request"},
      {"dataset", "genomes"},
      {"grant", "G-P1"},
      {"reason", "variants"}},
     Pi("G-P1"));
  Ok({{"op", "dataset_access_decide"},
      {"request", "DR-1"},
      {"decision", "approve"},
      {"reason", "ok"}},
     Actor("data_steward"));
  Ok({{"op", "storage_policy_set"}, {"price_per_gib_month", "0.333333"}, {"gib_max", 50}}, officer);

  // G-P2 keeps 3 GiB from now to its end and nothing else changes it.
  const int64_t p2_start_us = now_us_;
  Ok({{"op", "storage_set"}, {"grant", "G-P2"}, {"gib", 3}}, Pi("G-P2"));
  const std::vector<std::string> grants = {"G-P0", "G-P1", "G-P3"};
  int64_t jobs = 0;
  int64_t frozen_days = 0;
  for (int day = 1; day <= 150; ++day) {
    now_us_ += kDayUs + 7'777'777;  // a day and a few odd seconds
    const std::string& grant = grants[static_cast<size_t>(day) % grants.size()];
    const program::Grant& record = Program().grants().at(grant);
    const bool live = record.status == program::GrantStatus::kActive;
    const std::string& keeper = grants[static_cast<size_t>(day / 6) % grants.size()];
    if (day % 6 == 0 && Program().grants().at(keeper).status == program::GrantStatus::kActive) {
      const core::AppAnswer answer =
          Op({{"op", "storage_set"}, {"grant", keeper}, {"gib", (day * 7) % 51}}, Pi(keeper));
      EXPECT_TRUE(answer.status.ok() ||
                  answer.status.error().code == ErrorCode::kInsufficientCredits)
          << answer.status.error().ToString();
    }
    if (day % 4 == 0 && (live || record.status == program::GrantStatus::kFrozen)) {
      json datasets = {"weather"};
      if (grant == "G-P1") datasets.push_back("genomes");
      const core::AppAnswer answer = Op({{"op", "job_submit"},
                                         {"program", kProgram},
                                         {"grant", grant},
                                         {"chips", 4},
                                         {"walltime_s", 3600},
                                         {"datasets", datasets}},
                                        Pi(grant));
      EXPECT_TRUE(answer.status.ok()) << answer.status.error().ToString();
      jobs += answer.status.ok() ? 1 : 0;
    }
    if (day == 45) {
      Ok({{"op", "grant_close"}, {"program", kProgram}, {"grant", "G-P0"}}, officer);
    }
    Ok({{"op", "tick"}}, Actor("admin"));
    frozen_days += Program().grants().at("G-P2").status == program::GrantStatus::kFrozen ? 1 : 0;
  }
  // The runs reached what they are meant to exercise: jobs with datasets, a grant frozen
  // with its storage charge waiting, storage charged at boundaries before the end.
  EXPECT_GT(jobs, 20);
  EXPECT_GT(frozen_days, 0);
  EXPECT_GT(Program().dataset_book().storage.at("G-P1").periods_settled, 1);
  now_us_ += 400 * kDayUs;
  Ok({{"op", "tick"}}, Actor("admin"));

  const program::DatasetBook& book = Program().dataset_book();
  Credits storage_total;
  for (const auto& [grant, storage] : book.storage) {
    EXPECT_FALSE(storage.active) << grant;
    storage_total = *storage_total.CheckedAdd(storage.charged);
  }
  EXPECT_GT(storage_total, Credits::Zero());
  // G-P2: one level for the whole life of its storage, frozen or not.
  const program::Grant& p2 = Program().grants().at("G-P2");
  EXPECT_EQ(p2.status, program::GrantStatus::kExpired);
  const __int128 exact = static_cast<__int128>(3) * (p2.end_us - p2_start_us) * kPriceMicro;
  EXPECT_EQ(book.storage.at("G-P2").charged.micro(), static_cast<int64_t>(exact / kMonthUs));
  EXPECT_TRUE(book.storage.at("G-P2").accrued.is_zero());
  // The report counts the jobs that read each dataset.
  EXPECT_EQ(book.uses.at("weather").jobs, jobs);
  EXPECT_EQ(book.uses.at("genomes").jobs_by_grant.size(), 1u);
  // A snapshot carries the book byte for byte.
  std::string bytes;
  core_.Encode(&bytes);
  Result<core::Core> decoded = core::Core::Decode(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
  std::string again;
  decoded->Encode(&again);
  EXPECT_EQ(again, bytes);
  EXPECT_TRUE(decoded->Verify().ok());
  const core::JobRecord& first = *decoded->app().jobs().begin();
  EXPECT_FALSE(first.datasets().empty());
}

}  // namespace
}  // namespace atrium
