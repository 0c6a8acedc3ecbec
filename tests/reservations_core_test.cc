// Capacity reservations through the core's ops (docs/reservations.md): booking, the
// charge at the window's start, cancellation with and without the program's fee, every
// refusal, maintenance, the wait reason of jobs kept off booked nodes, grants closing with
// bookings, snapshots. Core::Verify (open booking holds = unstarted bookings' prices, the
// grants' spent = the ledger's charges) after every step.
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
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

constexpr char kProgram[] = "xl";

std::string ProgramToml() {
  std::string toml = R"([program]
id = "xl"
name = "Reservations test program"
currency = "USD"
total_budget = 400000
award_policy = "greedy"
topics = ["compilers"]
[program.prices]
trn1 = "1.34375"
[[program.rubric]]
name = "merit"
weight = 1
min = 1
max = 5
[program.reservations]
max_chips = 64
max_hours = 48
max_ahead_days = 30
max_share_bp = 5000
cancel_fee_bp = 1000
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
budget = 200000
award_cap = 50000
institution_cap = 200000
pi_roles = ["faculty"]
[[track]]
id = "courses"
name = "Courses"
kind = "education"
budget = 200000
award_cap = 50000
institution_cap = 200000
pi_roles = ["faculty"]
)";
  for (const char* call : {"c1", "e1"}) {
    toml += "[[call]]\nid = \"" + std::string(call) + "\"\ntrack = \"" +
            (call[0] == 'c' ? "research" : "courses") + "\"\n";
    toml += "opens = \"" + Iso(kT0Us - kHourUs) + "\"\n";
    toml += "closes = \"" + Iso(kT0Us + kDayUs) + "\"\n";
    toml += "review_deadline = \"" + Iso(kT0Us + 3 * kDayUs) + "\"\n";
    toml += "decision = \"" + Iso(kT0Us + 4 * kDayUs) + "\"\n";
    toml += "reviewers_per_proposal = 2\n";
  }
  return toml;
}

constexpr char kClusterToml[] = R"(name = "xl-cluster"
default_accelerator = "trn1"
[accelerators.trn1]
vendor = "AWS"
cores_per_chip = 2
memory_gib_per_chip = 32
price_per_chip_hour = "1.34375"
[node_types."trn1.32xlarge"]
accelerator = "trn1"
chips = 16
allocation_sizes = [1, 4, 8, 16]
[[pools]]
name = "trn"
node_type = "trn1.32xlarge"
nodes = 6
nodes_per_group = 2
groups_per_block = 3
[partitions.research]
classes = ["research", "preemptible"]
walltime_max_s = 604800
[partitions.education]
classes = ["education"]
chips_per_job_max = 32
walltime_max_s = 86400
)";

class ReservationsCoreTest : public ::testing::Test {
 protected:
  core::AppAnswer Op(json command, const json& actor) {
    command["actor"] = actor;
    const core::CommandResult result =
        core_.Apply(core::AppCommand{.now_us = now_us_, .json = command.dump()});
    const Status verified = core_.Verify();
    EXPECT_TRUE(verified.ok()) << command.dump() << ": " << verified.error().message;
    return *result.app;
  }
  json Ok(json command, const json& actor) {
    const core::AppAnswer answer = Op(command, actor);
    EXPECT_TRUE(answer.status.ok()) << command.dump() << ": " << answer.status.error().message;
    return answer.result;
  }
  // The refusal's code and field.
  std::pair<std::string, std::string> Refused(json command, const json& actor) {
    const core::AppAnswer answer = Op(command, actor);
    EXPECT_FALSE(answer.status.ok()) << command.dump();
    EXPECT_FALSE(answer.changed);
    if (answer.status.ok()) return {};
    return {std::string(ToString(answer.status.error().code)), answer.status.error().field};
  }

  void SetUp() override {
    now_us_ = kT0Us;
    const json officer = Actor("officer");
    Ok({{"op", "program_create"}, {"toml", ProgramToml()}}, officer);
    Ok({{"op", "cluster_load"}, {"toml", kClusterToml}}, Actor("admin"));
    for (const char* institution : {"north", "south", "east"}) {
      Ok({{"op", "institution_add"},
          {"program", kProgram},
          {"institution",
           {{"id", institution}, {"name", institution}, {"type", "r1"}, {"country", "US"}}}},
         officer);
    }
    const char* institutions[] = {"north", "south", "east"};
    auto add_person = [&](int n, const char* role, bool reviewer) {
      const std::string id = Orcid(n);
      Ok({{"op", "person_add"},
          {"program", kProgram},
          {"person",
           {{"id", id},
            {"name", "P" + std::to_string(n)},
            {"institution", institutions[n % 3]},
            {"role", role},
            {"expertise", {"compilers"}},
            {"reviewer", reviewer}}}},
         officer);
      return id;
    };
    for (int n = 1; n <= 3; ++n) pis_.push_back(add_person(n, "faculty", false));
    for (int n = 10; n <= 12; ++n) add_person(n, "faculty", true);
    member_ = add_person(30, "postdoc", false);
    Ok({{"op", "call_open"}, {"program", kProgram}, {"call", "c1"}}, officer);
    for (int i = 0; i < 3; ++i) {
      Ok({{"op", "proposal_submit"},
          {"program", kProgram},
          {"proposal",
           {{"id", "P" + std::to_string(i)},
            {"call", "c1"},
            {"title", "Proposal " + std::to_string(i)},
            {"abstract", "Compilers."},
            {"topics", {"compilers"}},
            {"requested", std::to_string(3000 + 2000 * i)},
            {"duration_months", 6},
            {"open_source_plan", "Apache-2.0"}}}},
         Actor("researcher", pis_[static_cast<size_t>(i)]));
    }
    now_us_ = kT0Us + kDayUs + kHourUs;
    Ok({{"op", "call_close"}, {"program", kProgram}, {"call", "c1"}}, officer);
    Ok({{"op", "call_assign"}, {"program", kProgram}, {"call", "c1"}}, officer);
    for (const program::Assignment& assignment : Program().assignments()) {
      Ok({{"op", "review_submit"},
          {"program", kProgram},
          {"proposal", assignment.proposal},
          {"scores", {4}},
          {"comment", "fine"}},
         Actor("reviewer", assignment.reviewer));
    }
    Ok({{"op", "decision_draft"}, {"program", kProgram}, {"call", "c1"}}, officer);
    Ok({{"op", "decision_commit"}, {"program", kProgram}, {"call", "c1"}}, officer);
    ASSERT_EQ(Program().grants().size(), 3u);
    Ok({{"op", "grant_member_add"}, {"program", kProgram}, {"grant", "G-P0"}, {"person", member_}},
       Actor("researcher", pis_[0]));
  }

  const program::ProgramState& Program() const { return *core_.app().FindProgram(kProgram); }
  int64_t NowS() const { return now_us_ / 1'000'000; }
  Credits Available(const std::string& grant) const {
    return core_.app()
        .ledger()
        .FindAccount(Program().AccountId(Program().grants().at(grant).account))
        ->available();
  }
  json Book(const std::string& grant, int64_t nodes, int64_t start_s, int64_t end_s) {
    return {{"op", "reservation_book"}, {"program", kProgram}, {"grant", grant},
            {"nodes", nodes},           {"start_s", start_s},  {"end_s", end_s}};
  }
  json Cancel(const std::string& grant, const std::string& id) {
    return {
        {"op", "reservation_cancel"}, {"program", kProgram}, {"grant", grant}, {"reservation", id}};
  }
  json Submit(const std::string& grant, int64_t chips, int64_t walltime_s) {
    return {{"op", "job_submit"},
            {"program", kProgram},
            {"grant", grant},
            {"chips", chips},
            {"walltime_s", walltime_s}};
  }
  const sched::CapacityBooking& Booking(const std::string& id) const {
    return core_.app().scheduler()->bookings().at(std::stoul(id.substr(1)) - 1);
  }
  const sched::Job& JobOf(const std::string& id) const {
    return core_.app().scheduler()->job(core_.app().jobs().at(id).sched_id);
  }

  core::Core core_;
  int64_t now_us_ = 0;
  std::vector<std::string> pis_;
  std::string member_;
};

// 2 nodes (32 chips) for 2 h at 1.34375 = 86 credits.
TEST_F(ReservationsCoreTest, BookingIsHeldChargedAtTheStartAndFreeForTheOwnersJobs) {
  const Credits before = Available("G-P0");
  ASSERT_GT(before, Credits::Zero()) << Program().grants().at("G-P0").awarded.ToString();
  const int64_t start = NowS() + 3600;
  const json booked = Ok(Book("G-P0", 2, start, start + 7200), Actor("researcher", member_));
  EXPECT_EQ(booked["reservation"], "R1");
  EXPECT_EQ(booked["state"], "booked");
  EXPECT_EQ(booked["price"], Credits::FromWhole(86).ToString());
  EXPECT_EQ(Available("G-P0"), *before.CheckedSub(Credits::FromWhole(86)));
  EXPECT_EQ(Program().grants().at("G-P0").spent, Credits::Zero());
  // The clock's tick is due at the start, and charges then.
  EXPECT_FALSE(core_.app().TickDue(now_us_ + 3599 * 1'000'000LL));
  EXPECT_TRUE(core_.app().TickDue(now_us_ + 3600 * 1'000'000LL));
  now_us_ += 3600 * 1'000'000LL;
  Ok({{"op", "tick"}}, Actor("admin"));
  EXPECT_EQ(Booking("R1").state, sched::BookingState::kActive);
  EXPECT_EQ(Program().grants().at("G-P0").spent, Credits::FromWhole(86));
  EXPECT_EQ(Available("G-P0"), *before.CheckedSub(Credits::FromWhole(86)));
  // The owner's job runs on the booked nodes, for nothing.
  const json job = Ok(Submit("G-P0", 32, 3600), Actor("researcher", pis_[0]));
  EXPECT_EQ(job["state"], "running");
  EXPECT_EQ(JobOf(job["job"]).booking, 0);
  now_us_ += 1800 * 1'000'000LL;
  const json finished = Ok({{"op", "job_finish"}, {"job", job["job"]}}, Actor("operator"));
  EXPECT_EQ(finished["charged"], Credits::Zero().ToString());
  EXPECT_EQ(Available("G-P0"), *before.CheckedSub(Credits::FromWhole(86)));
  // A job of another grant that needs the booked nodes waits, and says why.
  const json other = Ok(Submit("G-P1", 96, 600), Actor("researcher", pis_[1]));
  EXPECT_EQ(other["state"], "pending");
  EXPECT_EQ(core_.app().WaitReason(core_.app().jobs().at(other["job"].get<std::string>())),
            "capacity_reservation");
  // Cancelled after the start: the nodes return at once, the charge stays.
  const json cancelled = Ok(Cancel("G-P0", "R1"), Actor("researcher", pis_[0]));
  EXPECT_EQ(cancelled["state"], "ended");
  EXPECT_EQ(cancelled["fee"], Credits::Zero().ToString());
  EXPECT_EQ(cancelled["charged"], Credits::FromWhole(86).ToString());
  EXPECT_EQ(JobOf(other["job"]).state, sched::JobState::kRunning);
  EXPECT_EQ(Program().grants().at("G-P0").spent, Credits::FromWhole(86));
  EXPECT_EQ(Refused(Cancel("G-P0", "R1"), Actor("researcher", pis_[0])).first, "invalid_state");
}

TEST_F(ReservationsCoreTest, CancellationBeforeTheStartKeepsTheProgramsFee) {
  const Credits before = Available("G-P0");
  const int64_t start = NowS() + 86400;
  Ok(Book("G-P0", 2, start, start + 7200), Actor("researcher", pis_[0]));
  // The program keeps 10% of 86 = 8.6.
  const json cancelled = Ok(Cancel("G-P0", "R1"), Actor("officer"));
  EXPECT_EQ(cancelled["state"], "cancelled");
  EXPECT_EQ(cancelled["fee"], Credits::Parse("8.6")->ToString());
  EXPECT_EQ(Program().grants().at("G-P0").spent, *Credits::Parse("8.6"));
  EXPECT_EQ(Available("G-P0"), *before.CheckedSub(*Credits::Parse("8.6")));
  // Nothing happens at the start of a cancelled window.
  now_us_ += 86400 * 1'000'000LL;
  EXPECT_FALSE(core_.app().TickDue(now_us_));
}

TEST_F(ReservationsCoreTest, EveryRefusal) {
  const json pi = Actor("researcher", pis_[0]);
  const int64_t start = NowS() + 3600;
  using Refusal = std::pair<std::string, std::string>;
  // The program's limits, each naming its field.
  EXPECT_EQ(Refused(Book("G-P0", 5, start, start + 3600), pi),
            Refusal("reservation_limit", "nodes"));
  json by_chips = Book("G-P0", 0, start, start + 3600);
  by_chips.erase("nodes");
  by_chips["chips"] = 65;  // 5 whole nodes = 80 chips
  EXPECT_EQ(Refused(by_chips, pi), Refusal("reservation_limit", "chips"));
  EXPECT_EQ(Refused(Book("G-P0", 1, start, start + 49 * 3600), pi),
            Refusal("reservation_limit", "end_s"));
  EXPECT_EQ(Refused(Book("G-P0", 1, NowS() + 31 * 86400, NowS() + 31 * 86400 + 3600), pi),
            Refusal("reservation_limit", "start_s"));
  // At most half of the pool's 96 chips booked at once: 3 nodes, then 1 more overlapping.
  Ok(Book("G-P0", 3, start, start + 3600), pi);
  EXPECT_EQ(Refused(Book("G-P0", 1, start + 1800, start + 5400), pi),
            Refusal("reservation_limit", "nodes"));
  Ok(Book("G-P0", 1, start + 3600, start + 7200), pi);  // back to back is not at once
  // The grant cannot pay: 48 chips x 48 h = 3096 credits > what G-P1 holds (5000 - ...).
  EXPECT_EQ(Refused(Book("G-P0", 3, NowS() + 86400, NowS() + 86400 + 48 * 3600), pi),
            Refusal("insufficient_credits", "grant"));
  // No capacity: G-P1 takes the other 3 nodes of the window; G-P2 finds none.
  const json pi1 = Actor("researcher", pis_[1]);
  Ok(Book("G-P1", 3, start, start + 3600), pi1);
  EXPECT_EQ(Refused(Book("G-P2", 1, start + 60, start + 120), Actor("researcher", pis_[2])),
            Refusal("no_capacity", "nodes"));
  // Bad input.
  EXPECT_EQ(Refused(Book("G-P1", 1, NowS() - 10, NowS() + 10), pi1),
            Refusal("invalid_argument", "start_s"));
  EXPECT_EQ(Refused(Book("G-P1", 1, start, start), pi1), Refusal("invalid_argument", "end_s"));
  json both = Book("G-P1", 1, start, start + 60);
  both["chips"] = 16;
  EXPECT_EQ(Refused(both, pi1), Refusal("invalid_argument", "chips"));
  json accel = Book("G-P1", 1, start, start + 60);
  accel["accelerator"] = "h100";
  EXPECT_EQ(Refused(accel, pi1), Refusal("unknown_accelerator", "accelerator"));
  // Who: a grant one does not belong to is not found; students and reviewers may not.
  EXPECT_EQ(Refused(Book("G-P0", 1, start, start + 60), pi1).first, "not_found");
  EXPECT_EQ(Refused(Book("G-P0", 1, start, start + 60), Actor("reviewer", Orcid(10))).first,
            "forbidden");
  EXPECT_EQ(Refused(Cancel("G-P0", "R1"), pi1).first, "not_found");
  EXPECT_EQ(Refused(Cancel("G-P1", "R1"), pi1).first, "not_found");  // not G-P1's
  EXPECT_EQ(Refused(Cancel("G-P0", "R99"), pi).first, "not_found");
  EXPECT_EQ(Refused({{"op", "maintenance_book"},
                     {"node_count", 1},
                     {"start_s", start},
                     {"end_s", start + 60}},
                    pi)
                .first,
            "forbidden");
  // A closed grant books nothing; closing a grant releases its bookings' holds.
  Ok({{"op", "grant_close"}, {"program", kProgram}, {"grant", "G-P0"}}, Actor("officer"));
  EXPECT_EQ(Booking("R1").state, sched::BookingState::kCancelled);
  EXPECT_EQ(Booking("R1").charged, Credits::Zero());
  EXPECT_EQ(Refused(Book("G-P0", 1, start, start + 60), pi).first, "grant_not_active");
}

TEST_F(ReservationsCoreTest, MaintenanceKeepsNodesEmptyAndCostsNothing) {
  const json job = Ok(Submit("G-P1", 16, 7200), Actor("researcher", pis_[1]));
  ASSERT_EQ(job["state"], "running");
  const std::string busy_node =
      core_.app().cluster()->nodes()[JobOf(job["job"]).placement[0].node].name;
  const int64_t start = NowS() + 600;
  json maintenance = {{"op", "maintenance_book"},
                      {"nodes", {busy_node}},
                      {"start_s", start},
                      {"end_s", start + 3600},
                      {"reason", "firmware"}};
  EXPECT_EQ(Refused(maintenance, Actor("operator")),
            std::make_pair(std::string("no_capacity"), std::string("nodes")));
  maintenance["force"] = true;
  const json booked = Ok(maintenance, Actor("operator"));
  EXPECT_EQ(booked["price"], Credits::Zero().ToString());
  // The run yields at the start (requeued, charged for what it ran).
  now_us_ += 600 * 1'000'000LL;
  Ok({{"op", "tick"}}, Actor("admin"));
  EXPECT_EQ(JobOf(job["job"]).state, sched::JobState::kRunning);  // requeued and restarted
  EXPECT_NE(core_.app().cluster()->nodes()[JobOf(job["job"]).placement[0].node].name, busy_node);
  // The other nodes: 5 of 6; a 6-node job waits for the maintenance.
  const json wide = Ok(Submit("G-P2", 96, 600), Actor("researcher", pis_[2]));
  EXPECT_EQ(wide["state"], "pending");
  EXPECT_EQ(core_.app().WaitReason(core_.app().jobs().at(wide["job"].get<std::string>())),
            "capacity_reservation");
  EXPECT_EQ(
      Refused({{"op", "maintenance_cancel"}, {"reservation", "R1"}}, Actor("researcher", pis_[0]))
          .first,
      "forbidden");
  Ok({{"op", "job_cancel"}, {"job", job["job"]}}, Actor("admin"));
  const json cancelled = Ok({{"op", "maintenance_cancel"}, {"reservation", "R1"}}, Actor("admin"));
  EXPECT_EQ(cancelled["state"], "ended");
  EXPECT_EQ(JobOf(wide["job"]).state, sched::JobState::kRunning);
}

// Seeded random steps (bookings, cancellations, jobs, maintenance, ticks), Verify after
// each (Op does), and a snapshot in the middle whose decoded state verifies and encodes
// to the same bytes.
TEST_F(ReservationsCoreTest, RandomStepsKeepTheLedgerAndTheBookingsInStep) {
  std::mt19937_64 rng(7);
  const auto below = [&](int64_t n) {
    return std::uniform_int_distribution<int64_t>(0, n - 1)(rng);
  };
  const std::string grants[] = {"G-P0", "G-P1", "G-P2"};
  std::vector<std::string> jobs;
  std::map<std::string, int> outcomes;
  for (int step = 0; step < 300; ++step) {
    now_us_ += below(2 * kHourUs);
    const size_t g = static_cast<size_t>(below(3));
    const json pi = Actor("researcher", pis_[g]);
    core::AppAnswer answer;
    switch (below(6)) {
      case 0: {
        const int64_t start = NowS() + below(48) * 1800;
        answer = Op(Book(grants[g], 1 + below(3), start, start + (1 + below(12)) * 1800), pi);
        break;
      }
      case 1: {
        const auto count = static_cast<int64_t>(core_.app().scheduler()->bookings().size());
        if (count == 0) continue;
        const std::string id = "R" + std::to_string(1 + below(count));
        const bool maintenance = Booking(id).grant < 0;
        answer = maintenance
                     ? Op({{"op", "maintenance_cancel"}, {"reservation", id}}, Actor("operator"))
                     : Op(Cancel(grants[g], id), pi);
        break;
      }
      case 2: {
        const int64_t start = NowS() + below(24) * 1800;
        answer = Op({{"op", "maintenance_book"},
                     {"node_count", 1 + below(2)},
                     {"start_s", start},
                     {"end_s", start + 3600}},
                    Actor("operator"));
        break;
      }
      case 3:
      case 4:
        answer =
            Op(Submit(grants[g], std::vector<int64_t>{1, 8, 16, 32}[static_cast<size_t>(below(4))],
                      600 + below(6 * 3600)),
               pi);
        if (answer.status.ok()) jobs.push_back(answer.result["job"]);
        break;
      default:
        answer = Op({{"op", "tick"}}, Actor("admin"));
        break;
    }
    ++outcomes[answer.status.ok() ? "ok" : std::string(ToString(answer.status.error().code))];
    if (step == 150) {
      std::string bytes;
      core_.Encode(&bytes);
      auto decoded = core::Core::Decode(bytes);
      ASSERT_TRUE(decoded.ok()) << decoded.error().message;
      ASSERT_TRUE(decoded->Verify().ok());
      std::string again;
      decoded->Encode(&again);
      ASSERT_EQ(bytes, again);
    }
  }
  EXPECT_GT(outcomes["ok"], 100);
  EXPECT_GT(core_.app().scheduler()->bookings().size(), 10u);
  int64_t charged = 0;
  for (const auto& booking : core_.app().scheduler()->bookings()) {
    charged += booking.charged.is_zero() ? 0 : 1;
  }
  EXPECT_GT(charged, 0);
}

}  // namespace
}  // namespace atrium
