#include "program/program_state.h"

#include <gtest/gtest.h>

#include <functional>

#include "program/loader.h"
#include "program/test_helpers.h"
#include "program/validate.h"

namespace atrium::program {
namespace {

constexpr char kProgramToml[] = R"(
[program]
id = "test-program"
name = "Test program"
total_budget = 1000000
topics = ["theory", "systems", "vision"]
[[program.rubric]]
name = "merit"
weight = 3
[[program.rubric]]
name = "need"
weight = 1
min = 0
max = 10
[[program.fairness_floor]]
name = "fundamental"
topics = ["theory"]
share_percent = 20
tracks = ["research"]
[program.obligations]
progress_report_months = [6]
final_grace_months = 3

[[track]]
id = "research"
kind = "research"
budget = 600000
award_cap = 200000
institution_cap = 300000
pi_roles = ["faculty"]
partial_floor_percent = 50
partial_step_percent = 25
[[track.tranche]]
share_percent = 50
condition = "start"
[[track.tranche]]
share_percent = 50
condition = "progress_report:1"

[[track]]
id = "education"
kind = "education"
budget = 100000
award_cap = 20000

[[call]]
id = "r1"
track = "research"
opens = 2026-01-01
closes = 2026-02-01
review_deadline = 2026-03-01
decision = 2026-03-15
reviewers_per_proposal = 2

[[call]]
id = "r2"
track = "research"
opens = 2026-01-01
closes = 2026-02-01
review_deadline = 2026-03-01
decision = 2026-03-15
reviewers_per_proposal = 2

[[call]]
id = "e1"
track = "education"
opens = 2026-01-01
closes = 2026-02-01
review_deadline = 2026-03-01
decision = 2026-03-15
reviewers_per_proposal = 2
)";

using test::At;
using test::LedgerSum;
using test::Person;
using test::Whole;

// Everything a refused command must leave unchanged.
std::string Fingerprint(const ProgramState& state) {
  std::string out = state.log().head() + "|" + std::to_string(state.ledger().transfer_count()) +
                    "|" + std::to_string(state.ledger().account_count()) + "|" +
                    std::to_string(state.reviews().size()) + "|" +
                    std::to_string(state.assignments().size()) + "|";
  for (const auto& [id, proposal] : state.proposals()) {
    out += id + ":" + std::string(ToString(proposal.status)) + ":" + proposal.input.title + ",";
  }
  for (const auto& [id, grant] : state.grants()) {
    out += id + ":" + std::string(ToString(grant.status)) + ":" + grant.spent.ToString() + ",";
  }
  for (const auto& [id, obligation] : state.obligations()) {
    out += id + ":" + std::string(ToString(obligation.state)) + ",";
  }
  state.ledger().ForEachAccount([&](const ledger::Account& account) {
    out += account.balance().ToString() + "/" + std::to_string(account.flags) + ",";
  });
  return out;
}

class ProgramStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<ProgramDefinition> definition = ParseProgramToml(kProgramToml);
    ASSERT_TRUE(definition.ok()) << definition.error().ToString();
    Result<ProgramState> created = ProgramState::Create(*definition, At("2025-12-01"));
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    state_.emplace(std::move(created).value());
    const int64_t t = At("2025-12-01");
    for (const auto& [id, type] : std::vector<std::pair<std::string, std::string>>{
             {"mit", "r1"}, {"howard", "minority_serving"}, {"eth", "r1"}, {"ai2", "nonprofit"}}) {
      ASSERT_TRUE(state().AddInstitution({id, id, type, "US"}, t).ok());
    }
    // PIs 1..8 (faculty, one student), reviewers 101..106.
    const std::vector<std::string> institutions = {"mit", "howard", "eth", "ai2"};
    for (int idx = 1; idx <= 8; ++idx) {
      ASSERT_TRUE(state()
                      .AddPerson({.id = Person(idx),
                                  .name = "PI " + std::to_string(idx),
                                  .institution = institutions[static_cast<size_t>(idx % 4)],
                                  .role = idx == 8 ? "student" : "faculty"},
                                 t)
                      .ok());
    }
    for (int idx = 101; idx <= 106; ++idx) {
      ASSERT_TRUE(state()
                      .AddPerson({.id = Person(idx),
                                  .name = "Reviewer " + std::to_string(idx),
                                  .institution = institutions[static_cast<size_t>(idx % 4)],
                                  .role = "faculty",
                                  .expertise = {"theory", "systems"},
                                  .reviewer = true},
                                 t)
                      .ok());
    }
  }

  ProgramState& state() { return *state_; }

  ProposalInput Proposal(const std::string& id, const std::string& call, int pi, int64_t credits,
                         std::string topic = "systems") {
    return {.id = id,
            .call = call,
            .pi = Person(pi),
            .title = "Proposal " + id,
            .topics = {std::move(topic)},
            .requested = Whole(credits),
            .duration_months = 12};
  }

  // Opens, fills, closes, assigns and reviews a call; scores rise with `quality`.
  void RunToReviews(const std::string& call, const std::vector<ProposalInput>& proposals,
                    const std::map<std::string, int64_t>& quality) {
    ASSERT_TRUE(state().OpenCall(call, At("2026-01-02")).ok());
    for (const ProposalInput& proposal : proposals) {
      const Status submitted = state().SubmitProposal(proposal, At("2026-01-10"));
      ASSERT_TRUE(submitted.ok()) << submitted.error().ToString();
    }
    ASSERT_TRUE(state().CloseCall(call, At("2026-02-01")).ok());
    Result<AssignmentStats> stats = state().AssignReviewers(call, At("2026-02-02"));
    ASSERT_TRUE(stats.ok()) << stats.error().ToString();
    for (const Assignment& assignment : std::vector<Assignment>(state().assignments())) {
      if (state().proposals().at(assignment.proposal).input.call != call) continue;
      const int64_t q = quality.at(assignment.proposal);
      const Status reviewed =
          state().SubmitReview(assignment.reviewer, assignment.proposal, {q, 2 * q},
                               "secret comment " + assignment.reviewer, At("2026-02-15"));
      ASSERT_TRUE(reviewed.ok()) << reviewed.error().ToString();
    }
  }

  std::optional<ProgramState> state_;
};

TEST_F(ProgramStateTest, CreationFundsPoolsAndSumsToZero) {
  EXPECT_EQ(state().AccountBalance(kProgramPoolAccount), Whole(300000));
  EXPECT_EQ(state().AccountBalance(state().TrackPoolAccount("research")), Whole(600000));
  EXPECT_EQ(LedgerSum(state()), 0);
  EXPECT_TRUE(state().ledger().Verify().ok());
}

TEST_F(ProgramStateTest, WholeLifecycleKeepsTheLedgerAtZero) {
  RunToReviews("r1",
               {Proposal("A", "r1", 1, 200000), Proposal("B", "r1", 2, 150000, "theory"),
                Proposal("C", "r1", 3, 100000), Proposal("D", "r1", 4, 200000)},
               {{"A", 5}, {"B", 4}, {"C", 3}, {"D", 2}});
  Result<Decision> decision = state().DraftDecision("r1", At("2026-03-10"));
  ASSERT_TRUE(decision.ok()) << decision.error().ToString();
  EXPECT_TRUE(decision->optimal);
  EXPECT_LE(decision->total_awarded, Whole(600000));
  for (const FloorOutcome& floor : decision->floors) EXPECT_TRUE(floor.met) << floor.name;
  ASSERT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
  EXPECT_EQ(state().call_state("r1"), CallState::kDecided);
  EXPECT_EQ(LedgerSum(state()), 0);
  ASSERT_FALSE(state().grants().empty());

  const Grant& grant = state().grants().begin()->second;
  const std::string grant_id = grant.id;
  // Half at start, half held on the track pool until the progress report is accepted.
  EXPECT_EQ(state().AccountBalance(grant.account), Credits::FromMicro(grant.awarded.micro() / 2));
  ASSERT_TRUE(state().RecordUsage(grant_id, Whole(1000), At("2026-04-01")).ok());
  EXPECT_EQ(state().RecordUsage(grant_id, Whole(10'000'000), At("2026-04-01")).code(),
            ErrorCode::kInsufficientCredits);
  ASSERT_TRUE(
      state().SubmitObligation(grant_id + "/progress-1", "report.pdf", "", At("2026-08-01")).ok());
  ASSERT_TRUE(state().ReviewObligation(grant_id + "/progress-1", true, At("2026-08-02")).ok());
  EXPECT_EQ(state().AccountBalance(state().grants().at(grant_id).account),
            Credits::FromMicro(grant.awarded.micro() - Whole(1000).micro()));
  EXPECT_EQ(LedgerSum(state()), 0);

  const Credits pool_before = state().AccountBalance(kProgramPoolAccount);
  EXPECT_GT(state().Tick(At("2027-04-01")), 0);  // every 12-month grant has expired
  EXPECT_EQ(state().grants().at(grant_id).status, GrantStatus::kExpired);
  EXPECT_EQ(state().AccountBalance(state().grants().at(grant_id).account), Credits::Zero());
  EXPECT_GT(state().AccountBalance(kProgramPoolAccount), pool_before);
  EXPECT_EQ(state().RecordUsage(grant_id, Whole(1), At("2027-04-02")).code(),
            ErrorCode::kGrantNotActive);
  EXPECT_EQ(LedgerSum(state()), 0);
  EXPECT_TRUE(state().ledger().Verify().ok());

  // The public log verifies and carries no reviewer identity or review text.
  const std::string exported = state().log().Export();
  EXPECT_TRUE(VerifyLog(exported).ok);
  EXPECT_EQ(exported.find("secret comment"), std::string::npos);
  for (int idx = 101; idx <= 106; ++idx) EXPECT_EQ(exported.find(Person(idx)), std::string::npos);
}

TEST_F(ProgramStateTest, DecisionOverBudgetIsRefusedWhole) {
  RunToReviews("r1",
               {Proposal("A", "r1", 1, 200000), Proposal("B", "r1", 2, 200000, "theory"),
                Proposal("C", "r1", 3, 200000)},
               {{"A", 5}, {"B", 4}, {"C", 3}});
  // A second call on the same track competes for the same pool.
  ASSERT_TRUE(state().OpenCall("r2", At("2026-01-02")).ok());
  ASSERT_TRUE(
      state().SubmitProposal(Proposal("X", "r2", 5, 200000, "theory"), At("2026-01-10")).ok());
  ASSERT_TRUE(state().SubmitProposal(Proposal("Y", "r2", 6, 200000), At("2026-01-10")).ok());
  ASSERT_TRUE(state().CloseCall("r2", At("2026-02-01")).ok());
  ASSERT_TRUE(state().AssignReviewers("r2", At("2026-02-02")).ok());
  for (const Assignment& assignment : std::vector<Assignment>(state().assignments())) {
    if (assignment.proposal == "X" || assignment.proposal == "Y") {
      ASSERT_TRUE(
          state()
              .SubmitReview(assignment.reviewer, assignment.proposal, {5, 10}, "", At("2026-02-15"))
              .ok());
    }
  }
  ASSERT_TRUE(state().DraftDecision("r1", At("2026-03-10")).ok());
  Result<Decision> second = state().DraftDecision("r2", At("2026-03-10"));
  ASSERT_TRUE(second.ok());
  ASSERT_GT(second->total_awarded, Whole(0));
  ASSERT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
  const Credits pool_left = state().AccountAvailable(state().TrackPoolAccount("research"));
  ASSERT_LT(pool_left, second->total_awarded);

  const std::string before = Fingerprint(state());
  EXPECT_EQ(state().CommitDecision("r2", At("2026-03-15")).code(), ErrorCode::kOverBudget);
  EXPECT_EQ(Fingerprint(state()), before);
  EXPECT_EQ(state().call_state("r2"), CallState::kClosed);
  // A fresh draft fits what is left.
  Result<Decision> redraft = state().DraftDecision("r2", At("2026-03-16"));
  ASSERT_TRUE(redraft.ok());
  EXPECT_LE(redraft->total_awarded, pool_left);
  EXPECT_TRUE(state().CommitDecision("r2", At("2026-03-16")).ok());
  EXPECT_EQ(LedgerSum(state()), 0);
}

TEST_F(ProgramStateTest, InstitutionCapAcrossCallsIsRechecked) {
  // PI 1 and PI 5 are both at howard (idx % 4 == 1): cap 300000 across the program.
  RunToReviews("r1", {Proposal("A", "r1", 1, 200000, "theory")}, {{"A", 5}});
  ASSERT_TRUE(state().OpenCall("r2", At("2026-01-02")).ok());
  ASSERT_TRUE(
      state().SubmitProposal(Proposal("X", "r2", 5, 200000, "theory"), At("2026-01-10")).ok());
  ASSERT_TRUE(state().CloseCall("r2", At("2026-02-01")).ok());
  ASSERT_TRUE(state().AssignReviewers("r2", At("2026-02-02")).ok());
  for (const Assignment& assignment : std::vector<Assignment>(state().assignments())) {
    if (assignment.proposal == "X") {
      ASSERT_TRUE(
          state().SubmitReview(assignment.reviewer, "X", {5, 10}, "", At("2026-02-15")).ok());
    }
  }
  ASSERT_TRUE(state().DraftDecision("r1", At("2026-03-10")).ok());
  Result<Decision> second = state().DraftDecision("r2", At("2026-03-10"));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->total_awarded, Whole(200000));
  ASSERT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
  const std::string before = Fingerprint(state());
  EXPECT_EQ(state().CommitDecision("r2", At("2026-03-15")).code(), ErrorCode::kCapExceeded);
  EXPECT_EQ(Fingerprint(state()), before);
  // Re-drafted, the award is cut to what the cap leaves (50% level = 100000).
  Result<Decision> redraft = state().DraftDecision("r2", At("2026-03-16"));
  ASSERT_TRUE(redraft.ok());
  EXPECT_EQ(redraft->total_awarded, Whole(100000));
  EXPECT_EQ(redraft->outcomes.front().rationale, Rationale::kCutInstitutionCap);
}

TEST_F(ProgramStateTest, AnUnreachableFloorIsLoweredNotFatal) {
  // No proposal is tagged theory: the 20% floor cannot be reached by anyone.
  RunToReviews("r1", {Proposal("A", "r1", 1, 100000), Proposal("B", "r1", 2, 50000)},
               {{"A", 5}, {"B", 3}});
  Result<Decision> decision = state().DraftDecision("r1", At("2026-03-10"));
  ASSERT_TRUE(decision.ok());
  EXPECT_EQ(decision->total_awarded, Whole(150000));
  ASSERT_EQ(decision->floors.size(), 1u);
  EXPECT_EQ(decision->floors[0].share_bp_required, 2'000);
  EXPECT_EQ(decision->floors[0].share_bp_enforced, 0);
  EXPECT_FALSE(decision->floors[0].met);
}

TEST_F(ProgramStateTest, WhatIfSolvesAnotherBudgetOrFloorAndChangesNothing) {
  RunToReviews("r1",
               {Proposal("A", "r1", 1, 200000), Proposal("B", "r1", 2, 150000, "theory"),
                Proposal("C", "r1", 3, 100000), Proposal("D", "r1", 4, 200000)},
               {{"A", 5}, {"B", 4}, {"C", 3}, {"D", 2}});
  // A what-if before any draft is refused like a draft would be for a call not closed.
  EXPECT_EQ(state().WhatIf("r2", {}).code(), ErrorCode::kInvalidState);
  EXPECT_EQ(state().WhatIf("nope", {}).code(), ErrorCode::kNotFound);
  Result<Decision> current = state().DraftDecision("r1", At("2026-03-10"));
  ASSERT_TRUE(current.ok()) << current.error().ToString();
  const std::string before = Fingerprint(state());
  const size_t log_before = state().log().size();
  const std::map<std::string, Decision> decisions_before = state().decisions();

  // Unchanged inputs: the same answer as the stored draft.
  Result<WhatIfResult> same = state().WhatIf("r1", {});
  ASSERT_TRUE(same.ok()) << same.error().ToString();
  EXPECT_EQ(same->budget, Whole(600000));
  EXPECT_EQ(same->draft.total_awarded, current->total_awarded);

  // A smaller budget funds less, and fewer proposals in full.
  const auto funded_in_full = [](const Decision& decision) {
    int count = 0;
    for (const ProposalOutcome& outcome : decision.outcomes) {
      count += !outcome.awarded.is_zero() && outcome.awarded == outcome.requested ? 1 : 0;
    }
    return count;
  };
  Result<WhatIfResult> smaller = state().WhatIf("r1", {.budget = Whole(300000)});
  ASSERT_TRUE(smaller.ok()) << smaller.error().ToString();
  EXPECT_EQ(smaller->budget, Whole(300000));
  EXPECT_LE(smaller->draft.total_awarded, Whole(300000));
  EXPECT_LT(smaller->draft.total_awarded, current->total_awarded);
  EXPECT_LT(funded_in_full(smaller->draft), funded_in_full(*current));

  // Raising the theory floor to 80% of a 300,000 budget: B (the only theory proposal,
  // 150,000) can reach 50% at most, so the floor is enforced at 50%, B is funded in full
  // and the 80% the officer asked for is reported as not met.
  Result<WhatIfResult> raised = state().WhatIf(
      "r1", {.budget = Whole(300000), .floor_bp = {{"fundamental", 8000}}, .policy = "greedy"});
  ASSERT_TRUE(raised.ok()) << raised.error().ToString();
  EXPECT_EQ(raised->draft.policy, "greedy");
  ASSERT_EQ(raised->draft.floors.size(), 1u);
  EXPECT_EQ(raised->draft.floors[0].share_bp_required, 8000);
  EXPECT_EQ(raised->draft.floors[0].share_bp_enforced, 5000);
  EXPECT_GE(raised->draft.floors[0].share_bp_achieved, 5000);
  EXPECT_FALSE(raised->draft.floors[0].met);
  for (const ProposalOutcome& outcome : raised->draft.outcomes) {
    if (outcome.proposal == "B") {
      EXPECT_EQ(outcome.awarded, Whole(150000));
    }
  }
  // Lowering it to 0 is allowed and always met.
  Result<WhatIfResult> none = state().WhatIf("r1", {.floor_bp = {{"fundamental", 0}}});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->draft.floors[0].met);

  // Bad input: coded, and naming the field.
  Result<WhatIfResult> negative = state().WhatIf("r1", {.budget = Credits::FromMicro(-1)});
  EXPECT_EQ(negative.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(negative.error().field, "budget");
  Result<WhatIfResult> unknown = state().WhatIf("r1", {.floor_bp = {{"no-such-floor", 100}}});
  EXPECT_EQ(unknown.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(unknown.error().field, "floor");
  EXPECT_EQ(state().WhatIf("r1", {.floor_bp = {{"fundamental", 10001}}}).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(state().WhatIf("r1", {.floor_bp = {{"fundamental", -1}}}).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(state().WhatIf("r1", {.policy = "lottery"}).code(), ErrorCode::kInvalidArgument);

  // Nothing changed: the log, the ledger, the stored draft.
  EXPECT_EQ(Fingerprint(state()), before);
  EXPECT_EQ(state().log().size(), log_before);
  ASSERT_EQ(state().decisions().size(), decisions_before.size());
  const Decision& stored = state().decisions().at("r1");
  EXPECT_EQ(stored.total_awarded, decisions_before.at("r1").total_awarded);
  EXPECT_EQ(stored.policy, decisions_before.at("r1").policy);
  EXPECT_EQ(stored.drafted_us, decisions_before.at("r1").drafted_us);
  ASSERT_EQ(stored.outcomes.size(), decisions_before.at("r1").outcomes.size());
  for (size_t idx = 0; idx < stored.outcomes.size(); ++idx) {
    EXPECT_EQ(stored.outcomes[idx].awarded, decisions_before.at("r1").outcomes[idx].awarded);
  }
  EXPECT_FALSE(stored.committed);
}

TEST_F(ProgramStateTest, BadInputGetsItsCodeAndChangesNothing) {
  ASSERT_TRUE(state().OpenCall("r1", At("2026-01-02")).ok());
  ASSERT_TRUE(state().SubmitProposal(Proposal("A", "r1", 1, 100000), At("2026-01-10")).ok());
  ASSERT_TRUE(state().SubmitProposal(Proposal("B", "r1", 2, 100000), At("2026-01-10")).ok());
  const auto refused = [&](ErrorCode code, const std::function<Status()>& command) {
    const std::string before = Fingerprint(state());
    const Status status = command();
    EXPECT_EQ(status.code(), code) << (status.ok() ? "ok" : status.error().ToString());
    EXPECT_EQ(Fingerprint(state()), before);
  };
  refused(ErrorCode::kCapExceeded,
          [&] { return state().SubmitProposal(Proposal("C", "r1", 3, 200001), At("2026-01-10")); });
  refused(ErrorCode::kIneligible, [&] {  // a student PI
    return state().SubmitProposal(Proposal("C", "r1", 8, 1000), At("2026-01-10"));
  });
  refused(ErrorCode::kIneligible, [&] {  // one proposal per PI per call
    return state().SubmitProposal(Proposal("C", "r1", 1, 1000), At("2026-01-10"));
  });
  refused(ErrorCode::kNotFound,
          [&] { return state().SubmitProposal(Proposal("C", "r1", 99, 1000), At("2026-01-10")); });
  refused(ErrorCode::kInvalidArgument, [&] {
    return state().SubmitProposal(Proposal("C", "r1", 3, 1000, "astrology"), At("2026-01-10"));
  });
  refused(ErrorCode::kCallNotOpen,
          [&] { return state().SubmitProposal(Proposal("C", "e1", 3, 1000), At("2026-01-10")); });
  refused(ErrorCode::kCallClosed, [&] {  // after the deadline, even before the close
    return state().SubmitProposal(Proposal("C", "r1", 3, 1000), At("2026-02-01"));
  });
  ASSERT_TRUE(state().CloseCall("r1", At("2026-02-01")).ok());
  refused(ErrorCode::kCallClosed, [&] {  // an edit after the close
    ProposalInput edit = Proposal("A", "r1", 1, 1000);
    edit.title = "changed";
    return state().SubmitProposal(edit, At("2026-02-03"));
  });
  ASSERT_TRUE(state().AssignReviewers("r1", At("2026-02-02")).ok());
  std::string assigned, unassigned, conflicted;
  for (int idx = 101; idx <= 106; ++idx) {
    bool on_a = false;
    for (const Assignment& assignment : state().assignments()) {
      on_a = on_a || (assignment.reviewer == Person(idx) && assignment.proposal == "A");
    }
    bool in_conflict = false;
    for (const Conflict& conflict : state().conflicts()) {
      in_conflict = in_conflict || (conflict.reviewer == Person(idx) && conflict.proposal == "A");
    }
    if (on_a) assigned = Person(idx);
    if (in_conflict) conflicted = Person(idx);
    if (!on_a && !in_conflict) unassigned = Person(idx);
  }
  ASSERT_FALSE(assigned.empty());
  ASSERT_FALSE(conflicted.empty());  // reviewer 105 is at howard, like PI 1
  ASSERT_FALSE(unassigned.empty());
  refused(ErrorCode::kScoreOutOfRange, [&] {
    return state().SubmitReview(assigned, "A", {6, 5}, "", At("2026-02-10"));
  });
  refused(ErrorCode::kInvalidArgument,
          [&] { return state().SubmitReview(assigned, "A", {4}, "", At("2026-02-10")); });
  refused(ErrorCode::kNotFound, [&] {
    return state().SubmitReview(Person(555), "A", {4, 5}, "", At("2026-02-10"));
  });
  refused(ErrorCode::kNotAssigned, [&] {
    return state().SubmitReview(unassigned, "A", {4, 5}, "", At("2026-02-10"));
  });
  refused(ErrorCode::kConflictOfInterest, [&] {
    return state().SubmitReview(conflicted, "A", {4, 5}, "", At("2026-02-10"));
  });
  refused(ErrorCode::kDeadlinePassed, [&] {
    return state().SubmitReview(assigned, "A", {4, 5}, "", At("2026-03-02"));
  });
  refused(ErrorCode::kInvalidState, [&] {
    return state().CommitDecision("r1", At("2026-03-02")).ok()
               ? OkStatus()
               : Status(MakeError(ErrorCode::kInvalidState, ""));
  });
  refused(ErrorCode::kInvalidArgument,
          [&] { return state().DraftDecision("r1", At("2026-03-10"), "lottery").status(); });
}

TEST_F(ProgramStateTest, ObligationsSanctionsAndEvidence) {
  RunToReviews("r1", {Proposal("A", "r1", 1, 100000, "theory")}, {{"A", 5}});
  ASSERT_TRUE(state().DraftDecision("r1", At("2026-03-10")).ok());
  ASSERT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
  const std::string grant = "G-A";
  ASSERT_EQ(state().grants().count(grant), 1u);
  const auto refused = [&](ErrorCode code, const std::function<Status()>& command) {
    const std::string before = Fingerprint(state());
    EXPECT_EQ(command().code(), code);
    EXPECT_EQ(Fingerprint(state()), before);
  };
  refused(ErrorCode::kInvalidRepository, [&] {
    return state().SubmitObligation(grant + "/repository", "https://example.com/me/code", "MIT",
                                    At("2026-04-01"));
  });
  refused(ErrorCode::kInvalidLicense, [&] {
    return state().SubmitObligation(grant + "/repository", "https://github.com/me/code",
                                    "Proprietary", At("2026-04-01"));
  });
  refused(ErrorCode::kInvalidPaperId, [&] {
    return state().SubmitObligation(grant + "/paper", "my blog", "", At("2026-04-01"));
  });
  refused(ErrorCode::kNotFound,
          [&] { return state().SubmitObligation(grant + "/nothing", "x", "", At("2026-04-01")); });
  ASSERT_TRUE(
      state().SubmitObligation(grant + "/paper", "arXiv:2604.01234", "", At("2026-04-01")).ok());
  ASSERT_TRUE(state().ReviewObligation(grant + "/paper", true, At("2026-04-02")).ok());

  // The progress report falls due six months after the start and is missed.
  state().Tick(At("2026-09-20"));
  EXPECT_EQ(state().obligations().at(grant + "/progress-1").state, ObligationState::kOverdue);
  EXPECT_EQ(state().grants().at(grant).status, GrantStatus::kFrozen);
  EXPECT_TRUE(
      state().ledger().FindAccount(state().AccountId(state().grants().at(grant).account))->flags &
      ledger::kFrozen);
  EXPECT_EQ(state().RecordUsage(grant, Whole(10), At("2026-09-21")).code(),
            ErrorCode::kGrantNotActive);
  ASSERT_TRUE(
      state().SubmitObligation(grant + "/progress-1", "late report", "", At("2026-09-22")).ok());
  ASSERT_TRUE(state().ReviewObligation(grant + "/progress-1", true, At("2026-09-23")).ok());
  EXPECT_EQ(state().grants().at(grant).status, GrantStatus::kActive);
  EXPECT_TRUE(state().grants().at(grant).tranches.back().released);
  EXPECT_TRUE(state().obligations().at(grant + "/progress-1").was_overdue);
  EXPECT_TRUE(state().RecordUsage(grant, Whole(10), At("2026-09-24")).ok());
  EXPECT_EQ(LedgerSum(state()), 0);
  EXPECT_TRUE(VerifyLog(state().log().Export()).ok);
}

TEST_F(ProgramStateTest, CourseGrantsSplitAmongStudents) {
  RunToReviews("e1", {Proposal("E", "e1", 1, 20000)}, {{"E", 4}});
  ASSERT_TRUE(state().DraftDecision("e1", At("2026-03-10")).ok());
  ASSERT_TRUE(state().CommitDecision("e1", At("2026-03-15")).ok());
  const Status allocated =
      state().AllocateToStudent("G-E", Person(8), Whole(5000), At("2026-03-20"));
  ASSERT_TRUE(allocated.ok()) << allocated.error().ToString();
  EXPECT_EQ(state().AllocateToStudent("G-E", Person(8), Whole(50000), At("2026-03-20")).code(),
            ErrorCode::kInsufficientCredits);
  EXPECT_EQ(state().AccountBalance(state().grants().at("G-E").students.at(Person(8))), Whole(5000));
  // A refused allocation to a new student changes nothing: no account, no membership (the
  // journal does not keep refused commands, so replay must find the same state).
  const size_t accounts = state().ledger().account_count();
  EXPECT_EQ(state().AllocateToStudent("G-E", Person(7), Whole(50000), At("2026-03-20")).code(),
            ErrorCode::kInsufficientCredits);
  EXPECT_EQ(state().ledger().account_count(), accounts);
  EXPECT_FALSE(state().grants().at("G-E").students.contains(Person(7)));
  ASSERT_TRUE(state().CloseGrant("G-E", At("2026-04-01")).ok());
  EXPECT_EQ(state().grants().at("G-E").returned, Whole(20000));
  EXPECT_EQ(LedgerSum(state()), 0);
}

TEST_F(ProgramStateTest, SameCommandsSameLog) {
  const auto run = [&]() {
    RunToReviews("r1", {Proposal("A", "r1", 1, 120000), Proposal("B", "r1", 2, 90000, "theory")},
                 {{"A", 4}, {"B", 3}});
    EXPECT_TRUE(state().DraftDecision("r1", At("2026-03-10")).ok());
    EXPECT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
    return state().log().head();
  };
  const std::string first = run();
  SetUp();
  EXPECT_EQ(run(), first);
}

// Sealed reviews: while a call is under review the public log holds commitments and
// counts only; the decision reveals every proposal and review, and the verifier checks
// each reveal against its commitment.
class SealedLogTest : public ProgramStateTest {
 protected:
  // Rewrites one line's data and re-chains everything after it, as a forger would.
  static std::string Forge(const std::string& exported, const std::string& type,
                           const std::function<void(nlohmann::json&)>& change) {
    DecisionLog forged;
    size_t position = 0;
    bool changed = false;
    while (position < exported.size()) {
      const size_t end = exported.find('\n', position);
      nlohmann::json line = nlohmann::json::parse(exported.substr(position, end - position));
      position = end + 1;
      if (!changed && line["type"] == type) {
        change(line["data"]);
        changed = true;
      }
      forged.Append(line["at_us"].get<int64_t>(), line["type"].get<std::string>(), line["data"]);
    }
    EXPECT_TRUE(changed) << "no " << type << " entry";
    return forged.Export();
  }
};

TEST_F(SealedLogTest, ConflictedReviewerSeesOnlyCountsUntilTheDecision) {
  const int64_t t = At("2025-12-01");
  ASSERT_TRUE(state().AddInstitution({"unseen-u", "Unseen University", "r1", "NL"}, t).ok());
  ASSERT_TRUE(
      state()
          .AddPerson(
              {.id = Person(9), .name = "PI 9", .institution = "unseen-u", .role = "faculty"}, t)
          .ok());
  ASSERT_TRUE(state().OpenCall("r1", At("2026-01-02")).ok());
  ProposalInput secret = Proposal("A", "r1", 9, 123457);
  secret.title = "Quantum gravity on a budget";
  ASSERT_TRUE(state().SubmitProposal(secret, At("2026-01-10")).ok());
  ASSERT_TRUE(
      state().SubmitProposal(Proposal("B", "r1", 2, 150000, "theory"), At("2026-01-10")).ok());
  // Reviewer 101 declares a conflict with A, then reads the public log.
  ASSERT_TRUE(state().DeclareConflict(Person(101), "A", "co-author", At("2026-01-20")).ok());
  ASSERT_TRUE(state().CloseCall("r1", At("2026-02-01")).ok());
  ASSERT_TRUE(state().AssignReviewers("r1", At("2026-02-02")).ok());
  for (const Assignment& assignment : std::vector<Assignment>(state().assignments())) {
    if (assignment.proposal == "A") {
      ASSERT_NE(assignment.reviewer, Person(101));
    }
    const int64_t q = assignment.proposal == "A" ? 4 : 3;
    ASSERT_TRUE(state()
                    .SubmitReview(assignment.reviewer, assignment.proposal, {q, 7}, "comment",
                                  At("2026-02-15"))
                    .ok());
  }
  ASSERT_TRUE(state().DraftDecision("r1", At("2026-03-10")).ok());

  const std::string before = state().log().Export();
  EXPECT_TRUE(VerifyLog(before).ok);
  for (const std::string hidden :
       {"Quantum gravity", "Proposal B", "unseen-u", "howard", "123457", "150000", "\"scores\"",
        "raw_milli", "\"title\"", "\"requested\"", "total_awarded", "\"proposal\":\"A\"",
        "\"proposal\":\"B\""}) {
    EXPECT_EQ(before.find(hidden), std::string::npos) << hidden << " is public too early";
  }
  EXPECT_NE(before.find("\"commitment\""), std::string::npos);
  EXPECT_NE(before.find("\"proposals\":2"), std::string::npos);

  ASSERT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
  const std::string after = state().log().Export();
  const LogVerification verified = VerifyLog(after);
  ASSERT_TRUE(verified.ok) << verified.reason;
  EXPECT_NE(after.find("Quantum gravity on a budget"), std::string::npos);
  EXPECT_NE(after.find("unseen-u"), std::string::npos);
  EXPECT_NE(after.find("\"scores\":[4,7]"), std::string::npos);
  size_t reveals = 0;
  for (size_t at = after.find("review_revealed"); at != std::string::npos;
       at = after.find("review_revealed", at + 1)) {
    ++reveals;
  }
  EXPECT_EQ(reveals, state().reviews().size());

  // Altering one byte of a reveal breaks the chain at that entry.
  std::string flipped = after;
  const size_t score = flipped.find("\"scores\":[4,7]");
  flipped[score + 10] = '5';
  EXPECT_FALSE(VerifyLog(flipped).ok);

  // A forger who re-chains the log after changing a revealed score is still caught.
  const std::string forged = Forge(after, "review_revealed",
                                   [](nlohmann::json& data) { data["content"]["scores"][0] = 5; });
  const LogVerification caught = VerifyLog(forged);
  EXPECT_FALSE(caught.ok);
  EXPECT_NE(caught.reason.find("does not match its commitment"), std::string::npos)
      << caught.reason;
  // So is one who changes a revealed proposal's amount, or its salt.
  const LogVerification amount = VerifyLog(Forge(
      after, "proposal_revealed", [](auto& data) { data["content"]["requested"] = "1.000000"; }));
  EXPECT_NE(amount.reason.find("does not match its commitment"), std::string::npos)
      << amount.reason;
  const LogVerification salt = VerifyLog(
      Forge(after, "proposal_revealed", [](auto& data) { data["salt"] = std::string(64, 'a'); }));
  EXPECT_FALSE(salt.ok);
  // And one who drops a reveal: a decided call must reveal every commitment.
  std::string dropped;
  {
    DecisionLog rebuilt;
    bool skipped = false;
    for (const LogEntry& entry : state().log().entries()) {
      if (!skipped && entry.type == "review_revealed") {
        skipped = true;
        continue;
      }
      rebuilt.Append(entry.at_us, entry.type, entry.data.parsed());
    }
    dropped = rebuilt.Export();
  }
  const LogVerification missing = VerifyLog(dropped);
  EXPECT_FALSE(missing.ok);
  EXPECT_NE(missing.reason.find("never revealed"), std::string::npos) << missing.reason;
}

TEST_F(SealedLogTest, SaltsAreKeyedBySecretAndDeterministic) {
  // The same commands with the same secret give the same log; another secret gives
  // other commitments (so a guess of the scores cannot be checked without the secret).
  auto run = [&](const std::string& secret) {
    Result<ProgramDefinition> definition = ParseProgramToml(kProgramToml);
    EXPECT_TRUE(definition.ok());
    ProgramState other = *ProgramState::Create(*definition, At("2025-12-01"), secret);
    EXPECT_TRUE(other.AddInstitution({"mit", "mit", "r1", "US"}, At("2025-12-01")).ok());
    EXPECT_TRUE(
        other
            .AddPerson({.id = Person(1), .name = "PI", .institution = "mit", .role = "faculty"},
                       At("2025-12-01"))
            .ok());
    EXPECT_TRUE(other.OpenCall("r1", At("2026-01-02")).ok());
    EXPECT_TRUE(other.SubmitProposal(Proposal("A", "r1", 1, 1000), At("2026-01-10")).ok());
    return other.log().head();
  };
  const std::string key_a(32, 'a');
  EXPECT_EQ(run(key_a), run(key_a));
  EXPECT_NE(run(key_a), run(std::string(32, 'b')));
}

// Training (docs/training.md): the catalog's rules, enrolment through a grant, the
// prerequisite chain, a lab's credits moved from the track's pool and back, completion
// and its certificate in the public log (an opaque holder, never the person), refusals
// that change nothing, and the book through the snapshot codec.
TEST_F(ProgramStateTest, TrainingCatalogEnrolmentsAndCertificates) {
  RunToReviews("e1", {Proposal("E", "e1", 1, 20000)}, {{"E", 4}});
  ASSERT_TRUE(state().DraftDecision("e1", At("2026-03-10")).ok());
  ASSERT_TRUE(state().CommitDecision("e1", At("2026-03-15")).ok());
  const int64_t t = At("2026-03-20");
  ASSERT_TRUE(state().AllocateToStudent("G-E", Person(8), Whole(100), t).ok());
  const std::string learner = Person(8);  // a course student of G-E
  const uint64_t pool = state().TrackPoolAccount("education");

  TrainingItem course{.id = "intro", .kind = TrainingKind::kCourse, .title = "Intro to Neuron"};
  course.instructors = {Person(101)};
  TrainingItem lab{.id = "lab1", .kind = TrainingKind::kLab, .title = "First kernel"};
  lab.prerequisites = {"intro"};
  lab.track = "education";
  lab.credits = Whole(300);
  lab.lab = {.chips = 1, .walltime_s = 3600, .argv = {"python", "kernel.py"}};
  // Refusals, each with its code; none changes the state.
  const std::string before = Fingerprint(state());
  TrainingItem bad = lab;
  EXPECT_EQ(state().AddTrainingItem(bad, t).code(), ErrorCode::kNotFound) << "prerequisite";
  bad = course;
  bad.credits = Whole(5);
  EXPECT_EQ(state().AddTrainingItem(bad, t).code(), ErrorCode::kInvalidArgument) << "course";
  bad = lab;
  bad.prerequisites.clear();
  bad.lab = {};
  EXPECT_EQ(state().AddTrainingItem(bad, t).code(), ErrorCode::kInvalidArgument) << "template";
  bad = lab;
  bad.prerequisites.clear();
  bad.track = "nowhere";
  EXPECT_EQ(state().AddTrainingItem(bad, t).code(), ErrorCode::kNotFound) << "track";
  bad = course;
  bad.instructors = {Person(555)};
  EXPECT_EQ(state().AddTrainingItem(bad, t).code(), ErrorCode::kNotFound) << "instructor";
  EXPECT_EQ(Fingerprint(state()), before);
  EXPECT_TRUE(state().training().items.empty());

  ASSERT_TRUE(state().AddTrainingItem(course, t).ok());
  ASSERT_TRUE(state().AddTrainingItem(lab, t).ok());
  EXPECT_EQ(state().AddTrainingItem(course, t).code(), ErrorCode::kAlreadyExists);
  TrainingItem huge = lab;
  huge.id = "huge";
  huge.prerequisites.clear();
  huge.credits = Whole(1'000'000);
  ASSERT_TRUE(state().AddTrainingItem(huge, t).ok());

  // Enrolment: through a grant one belongs to; prerequisites first; the pool must pay.
  const std::string enrolled = Fingerprint(state());
  EXPECT_EQ(state().Enrol("intro", Person(5), "G-E", t).code(), ErrorCode::kForbidden);
  EXPECT_EQ(state().Enrol("lab1", learner, "G-E", t).code(), ErrorCode::kPrerequisiteMissing);
  EXPECT_EQ(state().Enrol("huge", learner, "G-E", t).code(), ErrorCode::kInsufficientCredits);
  EXPECT_EQ(state().Enrol("nope", learner, "G-E", t).code(), ErrorCode::kNotFound);
  EXPECT_EQ(Fingerprint(state()), enrolled);
  EXPECT_TRUE(state().training().enrolments.empty());

  Result<Enrolment> intro = state().Enrol("intro", learner, "G-E", t);
  ASSERT_TRUE(intro.ok()) << intro.error().ToString();
  EXPECT_EQ(intro->id, "E-1");
  EXPECT_EQ(intro->account, 0u);
  EXPECT_EQ(state().Enrol("intro", learner, "G-E", t).code(), ErrorCode::kAlreadyExists);
  const size_t log_before = state().log().size();
  Result<Enrolment> done = state().CompleteEnrolment("E-1", "instructor:" + Person(101), t + 1);
  ASSERT_TRUE(done.ok()) << done.error().ToString();
  EXPECT_EQ(state().CompleteEnrolment("E-1", "again", t + 2).code(), ErrorCode::kInvalidState);
  ASSERT_EQ(state().log().size(), log_before + 1);
  const LogEntry& entry = state().log().entries().back();
  EXPECT_EQ(entry.type, "certificate_issued");
  EXPECT_EQ(entry.data["certificate"], done->certificate);
  EXPECT_EQ(entry.data["item"], "intro");
  EXPECT_EQ(entry.data["holder"], state().CertificateHolder(learner));
  EXPECT_NE(state().CertificateHolder(learner), state().CertificateHolder(Person(1)));
  EXPECT_EQ(entry.data.text().find(learner), std::string::npos) << "the person is in the log";
  EXPECT_EQ(done->certificate_seq, entry.seq);
  EXPECT_EQ(state().training().by_certificate.at(done->certificate), "E-1");
  EXPECT_TRUE(VerifyLog(state().log().Export()).ok);

  // The lab: its credits leave the track's pool for the enrolment's account.
  const Credits pool_before = state().AccountBalance(pool);
  Result<Enrolment> lab1 = state().Enrol("lab1", learner, "G-E", t + 3);
  ASSERT_TRUE(lab1.ok()) << lab1.error().ToString();
  EXPECT_EQ(lab1->credits, Whole(300));
  EXPECT_EQ(state().AccountBalance(lab1->account), Whole(300));
  EXPECT_EQ(state().AccountBalance(pool), *pool_before.CheckedSub(Whole(300)));
  EXPECT_EQ(LedgerSum(state()), 0);

  // Through the snapshot codec: the same bytes again, the same rules after.
  std::string bytes;
  state().EncodeState(&bytes);
  Result<ProgramState> decoded = ProgramState::DecodeState(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
  std::string again;
  decoded->EncodeState(&again);
  EXPECT_EQ(again, bytes);
  EXPECT_EQ(decoded->FindEnrolment(learner, "lab1")->id, lab1->id);
  EXPECT_EQ(decoded->Enrol("lab1", learner, "G-E", t).code(), ErrorCode::kAlreadyExists);

  // Withdrawal returns what is left; a new enrolment is allowed after it.
  ASSERT_TRUE(state().NoteTrainingCharge(lab1->id, Whole(0)).ok());
  Result<Enrolment> left = state().WithdrawEnrolment(lab1->id, t + 4);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->returned, Whole(300));
  EXPECT_EQ(state().AccountBalance(lab1->account), Whole(0));
  EXPECT_EQ(state().AccountBalance(pool), pool_before);
  EXPECT_EQ(state().WithdrawEnrolment(lab1->id, t + 5).code(), ErrorCode::kInvalidState);
  Result<Enrolment> back = state().Enrol("lab1", learner, "G-E", t + 6);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->id, "E-3");
  EXPECT_EQ(LedgerSum(state()), 0);
}

}  // namespace
}  // namespace atrium::program
