// Cross-ledger invariants: seeded random runs of the service's core where grants are
// frozen (obligations overdue), thawed, closed and expired and students get allocations
// while jobs hold credits, run, finish, are cancelled and hit their walltime. Core::Verify
// (the ledger, and every invariant across the ledger, the programs and the scheduler)
// must pass after every step, and every run must be charged exactly once: the sum of the
// jobs' charges equals the sum over runs of chips x run time x price, computed here from
// what the test submitted and the times the runs started and ended.
//
// A failing run prints its seed; ATRIUM_SEED=<n> replays it (ATRIUM_STEPS=<n> for length).
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
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
const Credits kPrice = *Credits::Parse("1.34375");  // trn1, per chip-hour

std::string ProgramToml() {
  std::string toml = R"([program]
id = "xl"
name = "Cross-ledger test program"
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

// What the test submitted: enough to price every run independently.
struct Submitted {
  std::string id;
  int64_t chips = 0;
  int64_t walltime_s = 0;
};

class CrossLedgerRun {
 public:
  explicit CrossLedgerRun(uint64_t seed) : rng_(seed) {}

  core::AppAnswer Op(json command, const json& actor) {
    command["actor"] = actor;
    core::AppCommand applied{.now_us = now_us_, .json = command.dump()};
    const core::CommandResult result = core_.Apply(applied);
    // As a journal would keep it: with the results an op journals (a draft's solver answers).
    if (result.changed) {
      if (!result.app->journal_json.empty()) applied.json = result.app->journal_json;
      journaled_.push_back(std::move(applied));
    }
    return *result.app;
  }
  json Ok(json command, const json& actor) {
    const core::AppAnswer answer = Op(command, actor);
    EXPECT_TRUE(answer.status.ok()) << command.dump() << ": " << answer.status.error().message;
    return answer.result;
  }
  void CheckVerify(const std::string& step) {
    const Status verified = core_.Verify();
    ASSERT_TRUE(verified.ok()) << "after " << step << ": " << verified.error().message;
    // The state index (?state=pending / running) agrees with a walk over every job.
    for (const std::string_view state : {"pending", "running"}) {
      std::vector<std::string> walked;
      for (const core::JobRecord& record : core_.app().jobs()) {
        if (core_.app().JobStateText(record) == state) walked.push_back(record.id());
      }
      std::vector<std::string> indexed;
      for (const std::string& id : core_.app().ActiveJobs(
               state == "pending" ? sched::JobState::kPending : sched::JobState::kRunning)) {
        indexed.push_back(id);
      }
      ASSERT_EQ(indexed, walked) << "after " << step << ", state " << state;
      if (state == "pending") pending_seen_ += walked.size();
      if (state == "running") running_seen_ += walked.size();
    }
  }
  size_t pending_seen_ = 0;
  size_t running_seen_ = 0;

  void SetUp() {
    now_us_ = kT0Us;
    const json admin = Actor("admin");
    const json officer = Actor("officer");
    Ok({{"op", "program_create"}, {"toml", ProgramToml()}}, officer);
    Ok({{"op", "cluster_load"}, {"toml", kClusterToml}}, admin);
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
    for (int n = 1; n <= 4; ++n) pis_.push_back(add_person(n, "faculty", false));
    for (int n = 10; n <= 13; ++n) reviewers_.push_back(add_person(n, "faculty", true));
    for (int n = 20; n <= 23; ++n) students_.push_back(add_person(n, "student", false));
    Ok({{"op", "call_open"}, {"program", kProgram}, {"call", "c1"}}, officer);
    Ok({{"op", "call_open"}, {"program", kProgram}, {"call", "e1"}}, officer);
    // Three research proposals (2 to 4 months) and one course (3 months).
    for (int i = 0; i < 4; ++i) {
      const bool course = i == 3;
      Ok({{"op", "proposal_submit"},
          {"program", kProgram},
          {"proposal",
           {{"id", "P" + std::to_string(i)},
            {"call", course ? "e1" : "c1"},
            {"title", "Proposal " + std::to_string(i)},
            {"abstract", "Compilers."},
            {"topics", {"compilers"}},
            {"requested", course ? "8000" : std::to_string(3000 + 2000 * i)},
            {"duration_months", course ? 3 : 2 + i},
            {"open_source_plan", "Apache-2.0"}}}},
         Actor("researcher", pis_[static_cast<size_t>(i)]));
    }
    now_us_ = kT0Us + kDayUs + kHourUs;
    for (const char* call : {"c1", "e1"}) {
      Ok({{"op", "call_close"}, {"program", kProgram}, {"call", call}}, officer);
      Ok({{"op", "call_assign"}, {"program", kProgram}, {"call", call}}, officer);
    }
    for (const program::Assignment& assignment : Program().assignments()) {
      Ok({{"op", "review_submit"},
          {"program", kProgram},
          {"proposal", assignment.proposal},
          {"scores", {4}},
          {"comment", "fine"}},
         Actor("reviewer", assignment.reviewer));
    }
    for (const char* call : {"c1", "e1"}) {
      Ok({{"op", "decision_draft"}, {"program", kProgram}, {"call", call}}, officer);
      Ok({{"op", "decision_commit"}, {"program", kProgram}, {"call", call}}, officer);
    }
    for (const auto& [id, grant] : Program().grants()) grants_.push_back(id);
    ASSERT_EQ(grants_.size(), 4u);
    // Training (docs/training.md): a course, and a lab paid from the courses' track.
    instructor_ = add_person(30, "faculty", false);
    Ok({{"op", "training_add"},
        {"program", kProgram},
        {"id", "intro"},
        {"kind", "course"},
        {"title", "Intro"},
        {"instructors", {instructor_}}},
       officer);
    Ok({{"op", "training_add"},
        {"program", kProgram},
        {"id", "lab1"},
        {"kind", "lab"},
        {"title", "First kernel"},
        {"prerequisites", {"intro"}},
        {"instructors", {instructor_}},
        {"track", "courses"},
        {"credits", "10"},
        {"lab", {{"chips", 4}, {"walltime_s", 3600}, {"argv", {"true"}}}}},
       officer);
    CheckVerify("setup");
  }

  const program::ProgramState& Program() const { return *core_.app().FindProgram(kProgram); }

  int64_t Below(int64_t n) { return std::uniform_int_distribution<int64_t>(0, n - 1)(rng_); }

  // One random step; returns its name.
  std::string Step() {
    now_us_ += Below(4 * kHourUs);
    const std::string grant = grants_[static_cast<size_t>(Below(4))];
    const program::Grant& record = Program().grants().at(grant);
    const bool course = grant == "G-P3";
    switch (Below(15)) {
      case 0:
      case 1:
      case 2:
      case 3: {  // submit
        std::string submitter = record.pi;
        json actor = Actor("researcher", record.pi);
        if (course && Below(3) > 0) {
          submitter = students_[static_cast<size_t>(Below(4))];
          actor = Actor("student", submitter);
        }
        const int64_t chips = std::vector<int64_t>{1, 4, 8, 16, 32}[static_cast<size_t>(Below(5))];
        const int64_t walltime_s = 600 + Below(course ? 20 * 3600 : 30 * 3600);
        const core::AppAnswer answer = Op({{"op", "job_submit"},
                                           {"program", kProgram},
                                           {"grant", grant},
                                           {"chips", chips},
                                           {"walltime_s", walltime_s}},
                                          actor);
        if (answer.status.ok()) {
          submitted_.push_back({answer.result["job"], chips, walltime_s});
        } else {
          ++refusals_[std::string(ToString(answer.status.error().code))];
        }
        return "submit " + grant;
      }
      case 4:
      case 5: {  // finish or cancel a job
        if (submitted_.empty()) return "nothing";
        const Submitted& job =
            submitted_[static_cast<size_t>(Below(static_cast<int64_t>(submitted_.size())))];
        const bool cancel = Below(2) == 0;
        const core::AppAnswer answer =
            Op({{"op", cancel ? "job_cancel" : "job_finish"}, {"job", job.id}},
               cancel ? Actor("admin") : Actor("operator"));
        if (!answer.status.ok()) ++refusals_[std::string(ToString(answer.status.error().code))];
        return (cancel ? "cancel " : "finish ") + job.id;
      }
      case 6:
      case 7:
        Ok({{"op", "tick"}}, Actor("admin"));
        return "tick";
      case 8: {  // a PI catches up on an overdue obligation: the grant thaws
        for (const auto& [id, obligation] : Program().obligations()) {
          if (obligation.state != program::ObligationState::kOverdue) continue;
          const std::string pi = Program().grants().at(obligation.grant).pi;
          if (Op({{"op", "obligation_submit"},
                  {"program", kProgram},
                  {"obligation", id},
                  {"reference", "late report"}},
                 Actor("researcher", pi))
                  .status.ok()) {
            Ok({{"op", "obligation_review"},
                {"program", kProgram},
                {"obligation", id},
                {"accept", true}},
               Actor("officer"));
          }
          return "thaw " + obligation.grant;
        }
        return "nothing";
      }
      case 9: {  // the instructor gives a student credits
        const std::string student = students_[static_cast<size_t>(Below(4))];
        const core::AppAnswer answer = Op({{"op", "student_allocate"},
                                           {"program", kProgram},
                                           {"grant", "G-P3"},
                                           {"student", student},
                                           {"amount", std::to_string(5 + Below(400))}},
                                          Actor("researcher", Program().grants().at("G-P3").pi));
        if (!answer.status.ok()) ++refusals_[std::string(ToString(answer.status.error().code))];
        return "allocate " + student;
      }
      case 10: {  // rarely, an officer closes a grant with its jobs in flight
        if (Below(8) != 0) return "nothing";
        const core::AppAnswer answer =
            Op({{"op", "grant_close"}, {"program", kProgram}, {"grant", grant}}, Actor("officer"));
        if (!answer.status.ok()) ++refusals_[std::string(ToString(answer.status.error().code))];
        return "close " + grant;
      }
      case 12: {  // a grant's PI takes the course, then the lab
        const std::string& pi = record.pi;
        const char* item = Program().FindEnrolment(pi, "intro") == nullptr ? "intro" : "lab1";
        const core::AppAnswer answer =
            Op({{"op", "training_enrol"}, {"program", kProgram}, {"item", item}, {"grant", grant}},
               Actor("researcher", pi));
        if (!answer.status.ok()) {
          ++refusals_[std::string(ToString(answer.status.error().code))];
        } else if (std::string(item) == "intro") {
          Ok({{"op", "training_complete"},
              {"program", kProgram},
              {"enrolment", answer.result["enrolment"]}},
             Actor("instructor", instructor_));
        }
        return std::string("enrol ") + item;
      }
      case 13: {  // a lab's job, within or beyond what is left of its credits
        const std::string& pi = record.pi;
        const program::Enrolment* enrolment = Program().FindEnrolment(pi, "lab1");
        if (enrolment == nullptr) return "nothing";
        const int64_t chips = 1 + Below(4);
        const int64_t walltime_s = 600 + Below(3000);
        const core::AppAnswer answer = Op({{"op", "job_submit"},
                                           {"program", kProgram},
                                           {"lab", "lab1"},
                                           {"chips", chips},
                                           {"walltime_s", walltime_s}},
                                          Actor("researcher", pi));
        if (answer.status.ok()) {
          submitted_.push_back({answer.result["job"], chips, walltime_s});
          ++lab_jobs_;
        } else {
          ++refusals_[std::string(ToString(answer.status.error().code))];
        }
        return "lab " + grant;
      }
      case 14: {  // a learner withdraws from the lab
        const program::Enrolment* enrolment = Program().FindEnrolment(record.pi, "lab1");
        if (enrolment == nullptr || Below(3) != 0) return "nothing";
        const core::AppAnswer answer =
            Op({{"op", "training_withdraw"}, {"program", kProgram}, {"enrolment", enrolment->id}},
               Actor("researcher", record.pi));
        if (!answer.status.ok()) ++refusals_[std::string(ToString(answer.status.error().code))];
        return "withdraw " + enrolment->id;
      }
      default: {  // drain or resume a node
        const std::string node = "trn-n000" + std::to_string(Below(6));
        const bool drain = Below(2) == 0;
        (void)Op({{"op", drain ? "node_drain" : "node_resume"}, {"node", node}}, Actor("operator"));
        return (drain ? "drain " : "resume ") + node;
      }
    }
  }

  // Every run charged exactly once, priced from what was submitted and when it ran.
  void CheckCharges() {
    const sched::Scheduler& scheduler = *core_.app().scheduler();
    __int128 expected = 0;
    __int128 charged = 0;
    for (const Submitted& submitted : submitted_) {
      const core::JobRecord& record = core_.app().jobs().at(submitted.id);
      const sched::Job& job = scheduler.job(record.sched_id);
      ASSERT_LE(job.runs, 1u) << submitted.id << ": no preemption under this policy";
      int64_t ran_s = 0;
      if (job.state == sched::JobState::kRunning) {
        ASSERT_TRUE(job.charged.is_zero()) << submitted.id << " charged before its run ended";
        continue;
      }
      if (job.first_start_s >= 0) {
        ran_s = job.end_s - job.first_start_s;
        ASSERT_GE(ran_s, 0) << submitted.id;
        ASSERT_LE(ran_s, submitted.walltime_s) << submitted.id << " ran past its walltime";
      }
      const Credits cost = *UsageCost(submitted.chips, ran_s, kPrice);
      EXPECT_EQ(job.charged, cost) << submitted.id;
      expected += cost.micro();
      charged += job.charged.micro();
    }
    EXPECT_EQ(charged, expected);
    __int128 spent = 0;
    for (const auto& [id, grant] : Program().grants()) spent += grant.spent.micro();
    for (const auto& [id, enrolment] : Program().training().enrolments) {
      spent += enrolment.spent.micro();
    }
    EXPECT_EQ(spent, expected) << "the grants' and labs' spent is not the jobs' charges";
    const auto revenue =
        core_.ledger().FindAccount(Program().AccountId(program::kClusterRevenueAccount));
    ASSERT_TRUE(revenue.has_value());
    EXPECT_EQ(revenue->credits_posted.micro(), expected);
  }

  core::Core core_;
  int64_t now_us_ = 0;
  std::vector<core::AppCommand> journaled_;  // every command that changed the state
  std::mt19937_64 rng_;
  std::vector<std::string> pis_, reviewers_, students_, grants_;
  std::string instructor_;
  int64_t lab_jobs_ = 0;
  std::vector<Submitted> submitted_;
  std::map<std::string, int> refusals_;
};

std::vector<uint64_t> Seeds() {
  if (const char* seed = std::getenv("ATRIUM_SEED")) return {std::strtoull(seed, nullptr, 10)};
  return {1, 2, 3, 4};
}

int64_t Steps() {
  if (const char* steps = std::getenv("ATRIUM_STEPS")) return std::strtoll(steps, nullptr, 10);
  return 600;
}

TEST(CrossLedgerTest, VerifyAfterEveryStepAndEveryRunChargedOnce) {
  std::map<std::string, int> steps_seen;
  std::map<std::string, int> refusals;
  int64_t jobs = 0;
  int64_t lab_jobs = 0;
  int64_t certificates = 0;
  int64_t frozen_steps = 0;
  int64_t closed_or_expired = 0;
  size_t pending_seen = 0;
  size_t running_seen = 0;
  for (const uint64_t seed : Seeds()) {
    SCOPED_TRACE("ATRIUM_SEED=" + std::to_string(seed));
    CrossLedgerRun run(seed);
    run.SetUp();
    if (::testing::Test::HasFatalFailure()) return;
    for (int64_t step = 0; step < Steps(); ++step) {
      const std::string name = run.Step();
      ++steps_seen[name.substr(0, name.find(' '))];
      run.CheckVerify("step " + std::to_string(step) + " (" + name + ")");
      if (::testing::Test::HasFatalFailure()) return;
      for (const auto& [id, grant] : run.Program().grants()) {
        if (grant.status == program::GrantStatus::kFrozen) ++frozen_steps;
      }
    }
    // Past every grant's end: everything expires, every job stops.
    run.now_us_ += 200 * kDayUs;
    run.Ok({{"op", "tick"}}, Actor("admin"));
    run.CheckVerify("final tick");
    for (const auto& [id, grant] : run.Program().grants()) {
      EXPECT_TRUE(grant.status == program::GrantStatus::kExpired ||
                  grant.status == program::GrantStatus::kClosed)
          << id;
      ++closed_or_expired;
      EXPECT_TRUE(run.Program().GrantHeld(grant).is_zero()) << id;
    }
    for (const core::JobRecord& record : run.core_.app().jobs()) {
      const sched::JobState state = run.core_.app().scheduler()->job(record.sched_id).state;
      EXPECT_TRUE(state != sched::JobState::kRunning && state != sched::JobState::kPending)
          << record.id();
    }
    run.CheckCharges();
    jobs += static_cast<int64_t>(run.submitted_.size());
    lab_jobs += run.lab_jobs_;
    for (const auto& [id, enrolment] : run.Program().training().enrolments) {
      if (!enrolment.certificate.empty()) ++certificates;
      // Every ended enrolment's credits went back once its jobs settled.
      if (enrolment.state != program::EnrolmentState::kEnrolled && enrolment.account != 0) {
        EXPECT_TRUE(run.Program().AccountBalance(enrolment.account).is_zero()) << id;
      }
    }
    for (const auto& [code, count] : run.refusals_) refusals[code] += count;
    pending_seen += run.pending_seen_;
    running_seen += run.running_seen_;
  }
  // The runs reached what they are meant to exercise.
  EXPECT_GT(jobs, 50);
  EXPECT_GT(pending_seen, 100U) << "the pending index was checked on too few jobs";
  EXPECT_GT(running_seen, 100U) << "the running index was checked on too few jobs";
  EXPECT_GT(frozen_steps, 0) << "no grant was ever frozen";
  EXPECT_GT(steps_seen["close"], 0);
  EXPECT_GT(steps_seen["allocate"], 0);
  EXPECT_GT(refusals["student_limit"], 0) << "no student job was refused for its allocation";
  EXPECT_GT(closed_or_expired, 0);
  EXPECT_GT(lab_jobs, 10) << "labs ran too rarely to test their credits";
  EXPECT_GT(certificates, 4);
  EXPECT_GT(steps_seen["withdraw"], 0);
}

// The pieces one at a time: a hold is visible in the grant's available balance, a frozen
// grant's job waits with reason grant_frozen while a running one settles, closing stops
// the jobs and charges what ran, a student is held to their allocation.
TEST(CrossLedgerTest, HoldsFreezeCloseAndStudents) {
  CrossLedgerRun run(7);
  run.SetUp();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const program::ProgramState& program = run.Program();
  const std::string grant = "G-P1";
  const std::string pi = program.grants().at(grant).pi;
  const Credits before = program.AccountAvailable(program.grants().at(grant).account);
  json job = run.Ok({{"op", "job_submit"},
                     {"program", kProgram},
                     {"grant", grant},
                     {"chips", 16},
                     {"walltime_s", 3600}},
                    Actor("researcher", pi));
  EXPECT_EQ(job["state"], "running");
  const std::string running = job["job"];
  // The worst case (16 chips x 1 h x 1.34375) is held: available drops, balance does not.
  EXPECT_EQ(program.AccountAvailable(program.grants().at(grant).account),
            *before.CheckedSub(*Credits::Parse("21.5")));
  EXPECT_EQ(program.AccountBalance(program.grants().at(grant).account), before);
  run.CheckVerify("hold");

  // Students: not in the course, not found; a member without an allocation, refused;
  // beyond the allocation, refused; within it, runs on the student's own account.
  const std::string course = "G-P3";
  const std::string instructor = program.grants().at(course).pi;
  const std::string student = run.students_[0];
  const json small = {{"op", "job_submit"},
                      {"program", kProgram},
                      {"grant", course},
                      {"chips", 1},
                      {"walltime_s", 600}};
  EXPECT_EQ(run.Op(small, Actor("student", student)).status.code(), ErrorCode::kNotFound);
  run.Ok(
      {{"op", "grant_member_add"}, {"program", kProgram}, {"grant", course}, {"person", student}},
      Actor("researcher", instructor));
  core::AppAnswer refused = run.Op(small, Actor("student", student));
  EXPECT_EQ(refused.status.code(), ErrorCode::kStudentLimit);
  run.Ok({{"op", "student_allocate"},
          {"program", kProgram},
          {"grant", course},
          {"student", student},
          {"amount", "10"}},
         Actor("researcher", instructor));
  refused = run.Op({{"op", "job_submit"},
                    {"program", kProgram},
                    {"grant", course},
                    {"chips", 16},
                    {"walltime_s", 86400}},
                   Actor("student", student));
  EXPECT_EQ(refused.status.code(), ErrorCode::kStudentLimit);
  EXPECT_EQ(ToString(refused.status.code()), "student_limit");
  // 4 chips x 1 h = 5.375: the first runs, the second waits for the student's credits.
  const std::string first = run.Ok({{"op", "job_submit"},
                                    {"program", kProgram},
                                    {"grant", course},
                                    {"chips", 4},
                                    {"walltime_s", 3600}},
                                   Actor("student", student))["job"];
  const json second = run.Ok({{"op", "job_submit"},
                              {"program", kProgram},
                              {"grant", course},
                              {"chips", 4},
                              {"walltime_s", 3600}},
                             Actor("student", student));
  EXPECT_EQ(second["state"], "pending");
  run.Ok({{"op", "tick"}}, Actor("admin"));
  EXPECT_EQ(run.core_.app().WaitReason(run.core_.app().jobs().at(second["job"].get<std::string>())),
            "student_limit");
  const uint64_t student_account = program.grants().at(course).students.at(student);
  EXPECT_EQ(program.AccountAvailable(student_account), *Credits::Parse("4.625"));
  run.CheckVerify("students");
  (void)first;

  // Freeze by an overdue progress report (due a month after the start).
  run.now_us_ += 31 * kDayUs;
  run.Ok({{"op", "tick"}}, Actor("admin"));
  // The running job ended at its walltime in that tick, charged once.
  EXPECT_EQ(program.grants().at(grant).status, program::GrantStatus::kFrozen);
  EXPECT_EQ(program.grants().at(grant).spent, *Credits::Parse("21.5"));
  job = run.Ok({{"op", "job_submit"},
                {"program", kProgram},
                {"grant", grant},
                {"chips", 4},
                {"walltime_s", 600}},
               Actor("researcher", pi));
  const std::string waiting = job["job"];
  EXPECT_EQ(job["state"], "pending");
  run.Ok({{"op", "tick"}}, Actor("admin"));
  EXPECT_EQ(run.core_.app().WaitReason(run.core_.app().jobs().at(waiting)), "grant_frozen");
  run.CheckVerify("frozen");

  // Close: the waiting job is cancelled, nothing is charged for it.
  run.Ok({{"op", "grant_close"}, {"program", kProgram}, {"grant", grant}}, Actor("officer"));
  const auto& scheduler = *run.core_.app().scheduler();
  EXPECT_EQ(scheduler.job(run.core_.app().jobs().at(waiting).sched_id).state,
            sched::JobState::kCancelled);
  EXPECT_TRUE(program.GrantHeld(program.grants().at(grant)).is_zero());
  run.CheckVerify("close");
}

// Training labs one at a time (docs/training.md): enrolment needs the course first; the
// lab's credits are the learner's allocation (a job beyond them is refused, a second one
// waits); the template bounds the job; the lab job's success completes the enrolment,
// ends its other jobs, returns what is left to the track and logs a certificate that
// names no one; everything verifies across the ledger and survives a snapshot.
// Verify is not a check that always passes: each fault planted in the ledger behind the
// scheduler's back (a running job's hold voided, a charge the job does not know of, an
// open hold naming no job) is reported. The ledger is reached around the core's const
// interface, as no op could.
TEST(CrossLedgerTest, VerifyReportsLedgerOutOfStepWithTheScheduler) {
  enum class Fault { kHoldVoided, kExtraCharge, kHoldOfNoJob };
  for (const Fault fault : {Fault::kHoldVoided, Fault::kExtraCharge, Fault::kHoldOfNoJob}) {
    CrossLedgerRun run(11);
    run.SetUp();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    const std::string grant = "G-P1";
    const std::string pi = run.Program().grants().at(grant).pi;
    const json job = run.Ok({{"op", "job_submit"},
                             {"program", kProgram},
                             {"grant", grant},
                             {"chips", 16},
                             {"walltime_s", 3600}},
                            Actor("researcher", pi));
    ASSERT_EQ(job["state"], "running") << job;
    run.CheckVerify("before the fault");
    const core::AppState& app = run.core_.app();
    const core::JobRecord& record = app.jobs().at(job["job"].get<std::string>());
    const sched::Job& running = app.scheduler()->job(record.sched_id);
    ASSERT_NE(running.hold_id, kIdNone);
    const Id128 account = app.scheduler()->grants()[running.grant].account;
    const Id128 revenue = app.scheduler()->grants()[running.grant].revenue_account;
    const Id128 space = Id128{program::kNamespaceBit} << 64;
    ledger::TransferSpec spec{.debit_account_id = account,
                              .credit_account_id = revenue,
                              .amount = *Credits::Parse("1"),
                              .code = program::kCodeUsage};
    switch (fault) {
      case Fault::kHoldVoided:
        spec = {.id = space | 0x7001, .pending_id = running.hold_id, .flags = ledger::kVoidPending};
        break;
      case Fault::kExtraCharge:
        // A posted part of a new hold for this job: a charge it never made.
        spec.id = space | 0x7002;
        spec.flags = ledger::kPending;
        spec.user_data = 999'999;
        break;
      case Fault::kHoldOfNoJob:
        spec.id = space | 0x7003;
        spec.flags = ledger::kPending;
        spec.user_data = app.scheduler()->job_count() + 5;
        break;
    }
    auto& book = const_cast<core::AppState&>(app).mutable_ledger();
    ASSERT_TRUE(book.CreateTransfers({&spec, 1}, run.now_us_ + 1).empty());
    if (fault == Fault::kExtraCharge) {
      const ledger::TransferSpec post{.id = space | 0x7004,
                                      .amount = *Credits::Parse("1"),
                                      .pending_id = spec.id,
                                      .flags = ledger::kPostPending,
                                      .user_data = record.sched_id};
      ASSERT_TRUE(book.CreateTransfers({&post, 1}, run.now_us_ + 2).empty());
    }
    const Status verified = run.core_.Verify();
    ASSERT_FALSE(verified.ok()) << "fault " << static_cast<int>(fault) << " went unseen";
    const std::string expected = fault == Fault::kHoldVoided    ? "has no open hold"
                                 : fault == Fault::kExtraCharge ? "posted transfers moved"
                                                                : "not in the scheduler";
    EXPECT_NE(verified.error().message.find(expected), std::string::npos)
        << verified.error().message;
  }
}

TEST(CrossLedgerTest, LabsCreditsCompletionAndCertificates) {
  CrossLedgerRun run(11);
  run.SetUp();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const program::ProgramState& program = run.Program();
  const std::string course = "G-P3";
  const std::string teacher = program.grants().at(course).pi;
  const std::string student = run.students_[1];
  const json as_student = Actor("student", student);
  run.Ok(
      {{"op", "grant_member_add"}, {"program", kProgram}, {"grant", course}, {"person", student}},
      Actor("researcher", teacher));
  const json enrol_lab = {
      {"op", "training_enrol"}, {"program", kProgram}, {"item", "lab1"}, {"grant", course}};
  EXPECT_EQ(run.Op(enrol_lab, as_student).status.code(), ErrorCode::kPrerequisiteMissing);
  const json lab_job = {{"op", "job_submit"}, {"program", kProgram}, {"lab", "lab1"}};
  EXPECT_EQ(run.Op(lab_job, as_student).status.code(), ErrorCode::kNotEnrolled);
  const std::string intro = run.Ok(
      {{"op", "training_enrol"}, {"program", kProgram}, {"item", "intro"}, {"grant", course}},
      as_student)["enrolment"];
  // Only the item's instructor (or staff) marks it; another instructor sees nothing.
  const json complete = {{"op", "training_complete"}, {"program", kProgram}, {"enrolment", intro}};
  EXPECT_EQ(run.Op(complete, Actor("instructor", run.reviewers_[0])).status.code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(run.Op(complete, as_student).status.code(), ErrorCode::kForbidden);
  run.Ok(complete, Actor("instructor", run.instructor_));

  const uint64_t pool = program.TrackPoolAccount("courses");
  const Credits pool_before = program.AccountBalance(pool);
  const json enrolled = run.Ok(enrol_lab, as_student);
  EXPECT_EQ(enrolled["credits"], "10");
  const std::string enrolment_id = enrolled["enrolment"];
  EXPECT_EQ(program.AccountBalance(pool), *pool_before.CheckedSub(*Credits::Parse("10")));
  run.CheckVerify("enrolled");

  // The template bounds the job; the credits bound what it may cost.
  json too_big = lab_job;
  too_big["chips"] = 8;
  EXPECT_EQ(run.Op(too_big, as_student).status.code(), ErrorCode::kInvalidArgument);
  json too_long = lab_job;
  too_long["chips"] = 1;
  too_long["walltime_s"] = 7200;
  EXPECT_EQ(run.Op(too_long, as_student).status.code(), ErrorCode::kInvalidArgument);
  json other_grant = lab_job;
  other_grant["grant"] = "G-P1";
  EXPECT_EQ(run.Op(other_grant, as_student).status.code(), ErrorCode::kInvalidArgument);
  // The template's 4 chips x 1 h = 5.375 of the 10: one runs, a second waits.
  const json first = run.Ok(lab_job, as_student);
  EXPECT_EQ(first["state"], "running");
  const json second = run.Ok(lab_job, as_student);
  EXPECT_EQ(second["state"], "pending");
  run.Ok({{"op", "tick"}}, Actor("admin"));
  EXPECT_EQ(run.core_.app().WaitReason(run.core_.app().jobs().at(second["job"].get<std::string>())),
            "student_limit");
  const core::JobRecord& record = run.core_.app().jobs().at(first["job"].get<std::string>());
  EXPECT_EQ(record.argv(), std::vector<std::string>{"true"});
  EXPECT_EQ(record.enrolment, enrolment_id);
  run.CheckVerify("lab running");

  // Half an hour later the lab's job succeeds: 4 chips x 0.5 h = 2.6875 charged.
  run.now_us_ += kHourUs / 2;
  run.Ok({{"op", "job_finish"}, {"job", first["job"]}}, Actor("operator"));
  const program::Enrolment& done = program.training().enrolments.at(enrolment_id);
  EXPECT_EQ(done.state, program::EnrolmentState::kCompleted);
  EXPECT_EQ(done.completed_by, "job:" + first["job"].get<std::string>());
  EXPECT_EQ(done.spent, *Credits::Parse("2.6875"));
  EXPECT_EQ(done.returned, *Credits::Parse("7.3125"));
  EXPECT_EQ(program.AccountBalance(pool),
            *pool_before.CheckedSub(*Credits::Parse("2.6875")));  // only what ran is gone
  const auto& scheduler = *run.core_.app().scheduler();
  EXPECT_EQ(
      scheduler.job(run.core_.app().jobs().at(second["job"].get<std::string>()).sched_id).state,
      sched::JobState::kCancelled);
  // The grant paid nothing for its student's lab.
  EXPECT_TRUE(program.grants().at(course).spent.is_zero());
  run.CheckVerify("lab completed");

  // Its certificate: in the public log, verifiable, with an opaque holder.
  const program::LogEntry& entry =
      program.log().entries().at(static_cast<size_t>(done.certificate_seq - 1));
  EXPECT_EQ(entry.type, "certificate_issued");
  EXPECT_EQ(entry.data["certificate"], done.certificate);
  EXPECT_EQ(entry.data["item"], "lab1");
  EXPECT_EQ(program.log().Export().find(student), std::string::npos);
  EXPECT_TRUE(program::VerifyLog(program.log().Export()).ok);
  EXPECT_EQ(
      run.Op({{"op", "training_withdraw"}, {"program", kProgram}, {"enrolment", enrolment_id}},
             as_student)
          .status.code(),
      ErrorCode::kInvalidState);

  // The state survives a snapshot: same bytes again, and it still verifies.
  std::string bytes;
  run.core_.Encode(&bytes);
  Result<core::Core> decoded = core::Core::Decode(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_TRUE(decoded->Verify().ok());
  std::string again;
  decoded->Encode(&again);
  EXPECT_EQ(again, bytes);
}

// A draft's solver answers are journaled with its command, and a replay of that command
// takes them instead of solving again: a replica fed the journaled commands reaches the
// same state; one fed an altered answer follows it (CheckSolution still holds it to the
// budget, caps and floors); an answer for another problem is refused.
TEST(CrossLedgerTest, DraftsJournalTheirSolverAnswersAndReplaysTakeThem) {
  CrossLedgerRun run(1);
  run.SetUp();
  size_t draft_at = run.journaled_.size();
  size_t drafts = 0;
  for (size_t i = 0; i < run.journaled_.size(); ++i) {
    const json command = json::parse(run.journaled_[i].json);
    if (command["op"] != "decision_draft") continue;
    ++drafts;
    ASSERT_TRUE(command.contains("solver_answers")) << command.dump();
    ASSERT_EQ(command["solver_answers"].size(), 1u);
    EXPECT_EQ(command["solver_answers"][0]["problem_sha256"].get<std::string>().size(), 64u);
    if (command["call"] == "c1") draft_at = i;
  }
  EXPECT_EQ(drafts, 2u);
  ASSERT_LT(draft_at, run.journaled_.size());

  core::Core replica;
  for (const core::AppCommand& command : run.journaled_) {
    const core::CommandResult result = replica.Apply(command);
    ASSERT_TRUE(result.app->status.ok()) << command.json;
  }
  std::string live_bytes;
  std::string replica_bytes;
  run.core_.Encode(&live_bytes);
  replica.Encode(&replica_bytes);
  EXPECT_EQ(replica_bytes, live_bytes);

  // Up to c1's draft, with its answer altered: nothing awarded.
  auto replay_draft = [&](const std::function<void(json&)>& alter) {
    auto altered = std::make_unique<core::Core>();
    for (size_t i = 0; i < draft_at; ++i) altered->Apply(run.journaled_[i]);
    json draft = json::parse(run.journaled_[draft_at].json);
    alter(draft);
    const core::CommandResult result = altered->Apply(
        core::AppCommand{.now_us = run.journaled_[draft_at].now_us, .json = draft.dump()});
    return std::make_pair(std::move(altered), *result.app);
  };
  const Credits live_total = run.Program().decisions().at("c1").total_awarded;
  ASSERT_FALSE(live_total.is_zero());
  {
    auto [altered, answer] = replay_draft([](json& draft) {
      for (json& amount : draft["solver_answers"][0]["awarded_micro"]) amount = 0;
    });
    ASSERT_TRUE(answer.status.ok()) << answer.status.error().message;
    EXPECT_TRUE(altered->app().FindProgram(kProgram)->decisions().at("c1").total_awarded.is_zero());
  }
  {
    auto [altered, answer] = replay_draft(
        [](json& draft) { draft["solver_answers"][0]["problem_sha256"] = std::string(64, '0'); });
    EXPECT_EQ(answer.status.code(), ErrorCode::kInvariantViolated);
  }
  {
    // More than the budget: refused by the solution check, never applied.
    auto [altered, answer] = replay_draft([](json& draft) {
      for (json& amount : draft["solver_answers"][0]["awarded_micro"]) {
        amount = int64_t{1'000'000'000'000'000};
      }
    });
    EXPECT_FALSE(answer.status.ok());
  }
}

}  // namespace
}  // namespace atrium
