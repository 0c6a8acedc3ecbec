// Governance in the open: sponsor overrides inside and outside the program's rules, the
// re-solve that keeps caps and floors, the rationale of displaced proposals, the public
// log (and a tampered override entry), appeals and the sponsor's ties.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "program/loader.h"
#include "program/program_state.h"
#include "program/test_helpers.h"
#include "program/validate.h"
#include "report/program_report.h"

namespace atrium::program {
namespace {

using nlohmann::json;

constexpr char kRules[] = R"(
[program.overrides]
max_per_call = 2
max_budget_percent = 70
reasons = ["eligibility", "conflict_of_interest", "strategic"]
allow_strategic = true

[program.appeals]
window_days = 30
grounds = ["procedural_error", "conflict_not_detected", "factual_error"]
reviewers = 2
reserve = 100000

[[program.sponsor_tie]]
institution = "howard"
kind = "funding"
)";

std::string ProgramToml(const std::string& rules) {
  return R"(
[program]
id = "gov"
name = "Governance test"
total_budget = 1000000
topics = ["theory", "systems"]
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
)" + rules +
         R"(
[[track]]
id = "research"
budget = 450000
award_cap = 200000
institution_cap = 250000

[[call]]
id = "r1"
track = "research"
opens = 2026-01-01
closes = 2026-02-01
review_deadline = 2026-03-01
decision = 2026-03-15
reviewers_per_proposal = 2
)";
}

using test::At;
using test::LedgerSum;
using test::Person;
using test::Whole;

class GovernanceTest : public ::testing::Test {
 protected:
  void Build(const std::string& rules) {
    Result<ProgramDefinition> definition = ParseProgramToml(ProgramToml(rules));
    ASSERT_TRUE(definition.ok()) << definition.error().ToString();
    Result<ProgramState> created = ProgramState::Create(*definition, At("2025-12-01"));
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    state_.emplace(std::move(created).value());
    const int64_t t = At("2025-12-01");
    const std::vector<std::string> institutions = {"mit", "howard", "eth", "ai2"};
    for (const std::string& id : institutions) {
      ASSERT_TRUE(state().AddInstitution({id, id, "r1", "US"}, t).ok());
    }
    for (int idx = 1; idx <= 5; ++idx) {
      ASSERT_TRUE(state()
                      .AddPerson({.id = Person(idx),
                                  .name = "PI",
                                  .institution = institutions[static_cast<size_t>(idx % 4)],
                                  .role = "faculty"},
                                 t)
                      .ok());
    }
    for (int idx = 101; idx <= 108; ++idx) {
      ASSERT_TRUE(state()
                      .AddPerson({.id = Person(idx),
                                  .name = "Reviewer",
                                  .institution = institutions[static_cast<size_t>(idx % 4)],
                                  .role = "faculty",
                                  .expertise = {"theory", "systems"},
                                  .reviewer = true},
                                 t)
                      .ok());
    }
    // A 200k (howard), B 150k theory (eth), C 100k (ai2), D 100k theory (mit), E 100k
    // (howard); merit falls A > B > C > E > D. The optimiser funds A, B, C (450k).
    struct Row {
      const char* id;
      int pi;
      int64_t credits;
      const char* topic;
      int64_t quality;
    };
    const std::vector<Row> rows = {{"A", 1, 200000, "systems", 5},
                                   {"B", 2, 150000, "theory", 4},
                                   {"C", 3, 100000, "systems", 3},
                                   {"D", 4, 100000, "theory", 1},
                                   {"E", 5, 100000, "systems", 2}};
    ASSERT_TRUE(state().OpenCall("r1", At("2026-01-02")).ok());
    std::map<std::string, int64_t> quality;
    for (const Row& row : rows) {
      quality[row.id] = row.quality;
      ASSERT_TRUE(state()
                      .SubmitProposal({.id = row.id,
                                       .call = "r1",
                                       .pi = Person(row.pi),
                                       .title = std::string("Proposal ") + row.id,
                                       .topics = {row.topic},
                                       .requested = Whole(row.credits)},
                                      At("2026-01-10"))
                      .ok());
    }
    ASSERT_TRUE(state().CloseCall("r1", At("2026-02-01")).ok());
    ASSERT_TRUE(state().AssignReviewers("r1", At("2026-02-02")).ok());
    for (const Assignment& assignment : std::vector<Assignment>(state().assignments())) {
      const int64_t q = quality.at(assignment.proposal);
      ASSERT_TRUE(state()
                      .SubmitReview(assignment.reviewer, assignment.proposal, {q, 2 * q}, "",
                                    At("2026-02-15"))
                      .ok());
    }
    Result<Decision> draft = state().DraftDecision("r1", At("2026-03-10"));
    ASSERT_TRUE(draft.ok()) << draft.error().ToString();
  }

  ProgramState& state() { return *state_; }
  const ProposalOutcome& Outcome(const std::string& proposal) {
    for (const ProposalOutcome& outcome : state().decisions().at("r1").outcomes) {
      if (outcome.proposal == proposal) return outcome;
    }
    ADD_FAILURE() << "no outcome for " << proposal;
    static const ProposalOutcome none;
    return none;
  }
  Result<SponsorOverride> Override(const std::string& proposal, OverrideKind kind,
                                   const std::string& reason) {
    return state().OverrideDecision("r1", proposal, kind, reason, "public text for " + proposal,
                                    Person(200), At("2026-03-11"));
  }

  std::optional<ProgramState> state_;
};

TEST_F(GovernanceTest, BaseDecisionFundsTheTopThree) {
  Build(kRules);
  EXPECT_EQ(Outcome("A").awarded, Whole(200000));
  EXPECT_EQ(Outcome("B").awarded, Whole(150000));
  EXPECT_EQ(Outcome("C").awarded, Whole(100000));
  EXPECT_TRUE(Outcome("D").awarded.is_zero());
  EXPECT_TRUE(Outcome("E").awarded.is_zero());
}

TEST_F(GovernanceTest, VetoResolvesAndDisplacedProposalsSaySo) {
  Build(kRules);
  Result<SponsorOverride> veto = Override("A", OverrideKind::kVeto, "eligibility");
  ASSERT_TRUE(veto.ok()) << veto.error().ToString();
  EXPECT_EQ(veto->id, "r1:override-1");
  EXPECT_EQ(veto->moved, Whole(200000));
  EXPECT_TRUE(Outcome("A").awarded.is_zero());
  EXPECT_EQ(Outcome("A").rationale, Rationale::kVetoedByOverride);
  EXPECT_EQ(Outcome("A").base_awarded, Whole(200000));
  // The 200k the veto freed goes down the ranking: D and E move up.
  for (const char* moved : {"D", "E"}) {
    EXPECT_EQ(Outcome(moved).awarded, Whole(100000)) << moved;
    EXPECT_EQ(Outcome(moved).rationale, Rationale::kDisplacedByOverride) << moved;
    EXPECT_EQ(Outcome(moved).overrides, std::vector<std::string>{"r1:override-1"});
    EXPECT_NE(Outcome(moved).explanation.find("r1:override-1"), std::string::npos);
  }
  // Unmoved proposals keep their own rationale.
  EXPECT_EQ(Outcome("B").rationale, Rationale::kFunded);
  EXPECT_TRUE(Outcome("B").overrides.empty());
  EXPECT_EQ(state().decisions().at("r1").total_awarded, Whole(450000));
}

// The service solves a draft off its apply thread: DraftProblems gives the problems
// DraftDecision solves, in its order (the call's, then with the overrides), so answers
// solved elsewhere are taken by the draft as its own.
TEST_F(GovernanceTest, DraftProblemsAreTheProblemsADraftSolves) {
  Build(kRules);
  ASSERT_TRUE(Override("A", OverrideKind::kVeto, "eligibility").ok());
  Result<std::vector<AwardProblem>> problems = state().DraftProblems("r1");
  ASSERT_TRUE(problems.ok()) << problems.error().ToString();
  ASSERT_EQ(problems->size(), 2u);
  auto policy = MakeAwardPolicy(state().definition().award_policy, {});
  ASSERT_TRUE(policy.ok());
  SolverTape elsewhere;
  for (const AwardProblem& problem : *problems) {
    ASSERT_TRUE(SolveOnTape(**policy, problem, &elsewhere).ok());
  }
  SolverTape recorded;
  Result<Decision> solved = state().DraftDecision("r1", At("2026-03-12"), "", {.tape = &recorded});
  ASSERT_TRUE(solved.ok()) << solved.error().ToString();
  ASSERT_EQ(recorded.entries.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(recorded.entries[i].problem_sha256, elsewhere.entries[i].problem_sha256) << i;
    EXPECT_EQ(recorded.entries[i].solution.awarded, elsewhere.entries[i].solution.awarded) << i;
  }
  SolverTape given{.replaying = true, .entries = elsewhere.entries};
  Result<Decision> taken = state().DraftDecision("r1", At("2026-03-12"), "", {.tape = &given});
  ASSERT_TRUE(taken.ok()) << taken.error().ToString();
  EXPECT_EQ(given.next, 2u);
  EXPECT_EQ(taken->total_awarded, solved->total_awarded);
  ASSERT_EQ(taken->outcomes.size(), solved->outcomes.size());
  for (size_t i = 0; i < taken->outcomes.size(); ++i) {
    EXPECT_EQ(taken->outcomes[i].awarded, solved->outcomes[i].awarded);
    EXPECT_EQ(taken->outcomes[i].rationale, solved->outcomes[i].rationale);
  }
  // Not closed, or unknown: refused like a draft.
  EXPECT_EQ(state().DraftProblems("nope").error().code, ErrorCode::kNotFound);
}

// The same for a sponsor's override: OverrideProblems gives the problems OverrideDecision
// solves (the call's, then with every override including the new one), so the override
// takes answers solved elsewhere, and refuses answers to another override's problems.
TEST_F(GovernanceTest, OverrideProblemsAreTheProblemsAnOverrideSolves) {
  Build(kRules);
  auto policy = MakeAwardPolicy(state().decisions().at("r1").policy, {});
  ASSERT_TRUE(policy.ok());
  const auto solve = [&](const std::vector<AwardProblem>& problems) {
    SolverTape tape;
    for (const AwardProblem& problem : problems) {
      EXPECT_TRUE(SolveOnTape(**policy, problem, &tape).ok());
    }
    return SolverTape{.replaying = true, .entries = tape.entries};
  };
  Result<std::vector<AwardProblem>> add = state().OverrideProblems("r1", "E", OverrideKind::kAdd);
  ASSERT_TRUE(add.ok()) << add.error().ToString();
  ASSERT_EQ(add->size(), 2u);
  Result<std::vector<AwardProblem>> veto = state().OverrideProblems("r1", "A", OverrideKind::kVeto);
  ASSERT_TRUE(veto.ok()) << veto.error().ToString();
  // Answers to the veto's problems are not the addition's: refused, nothing changed.
  SolverTape wrong = solve(*veto);
  Result<SponsorOverride> refused =
      state().OverrideDecision("r1", "E", OverrideKind::kAdd, "strategic", "public text",
                               Person(200), At("2026-03-11"), &wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvariantViolated);
  EXPECT_EQ(refused.error().field, "solver_answers");
  EXPECT_FALSE(state().overrides().contains("r1"));
  // Its own answers are taken, and the outcome is the one the override solves itself
  // (AdditionIsFixedInAndTheCapStillHolds).
  SolverTape given = solve(*add);
  Result<SponsorOverride> made =
      state().OverrideDecision("r1", "E", OverrideKind::kAdd, "strategic", "public text",
                               Person(200), At("2026-03-11"), &given);
  ASSERT_TRUE(made.ok()) << made.error().ToString();
  EXPECT_EQ(given.next, 2u);
  EXPECT_EQ(Outcome("E").awarded, Whole(100000));
  EXPECT_EQ(Outcome("E").rationale, Rationale::kAddedByOverride);
  EXPECT_TRUE(Outcome("A").awarded.is_zero());
  // Unknown call or proposal: refused like the override.
  EXPECT_EQ(state().OverrideProblems("nope", "E", OverrideKind::kAdd).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(state().OverrideProblems("r1", "nope", OverrideKind::kAdd).error().code,
            ErrorCode::kNotFound);
}

TEST_F(GovernanceTest, VetoKeepsTheFloor) {
  Build(kRules);
  // Vetoing B, the best theory proposal: E outranks D, but the 20% theory floor needs D.
  ASSERT_TRUE(Override("B", OverrideKind::kVeto, "conflict_of_interest").ok());
  EXPECT_EQ(Outcome("D").awarded, Whole(100000));
  EXPECT_EQ(Outcome("D").rationale, Rationale::kDisplacedByOverride);
  EXPECT_TRUE(Outcome("E").awarded.is_zero());
  for (const FloorOutcome& floor : state().decisions().at("r1").floors) {
    EXPECT_TRUE(floor.met) << floor.name;
  }
}

TEST_F(GovernanceTest, AdditionIsFixedInAndTheCapStillHolds) {
  Build(kRules);
  // E is at howard, like A: with E fixed in, A (200k) no longer fits howard's 250k cap.
  Result<SponsorOverride> add = Override("E", OverrideKind::kAdd, "strategic");
  ASSERT_TRUE(add.ok()) << add.error().ToString();
  EXPECT_EQ(add->moved, Whole(100000));
  EXPECT_EQ(Outcome("E").awarded, Whole(100000));
  EXPECT_EQ(Outcome("E").rationale, Rationale::kAddedByOverride);
  EXPECT_TRUE(Outcome("A").awarded.is_zero());
  EXPECT_EQ(Outcome("A").rationale, Rationale::kDisplacedByOverride);
  EXPECT_EQ(Outcome("A").base_awarded, Whole(200000));
  Credits howard;
  for (const ProposalOutcome& outcome : state().decisions().at("r1").outcomes) {
    if (state().proposals().at(outcome.proposal).institution == "howard") {
      howard = Credits::FromMicro(howard.micro() + outcome.awarded.micro());
    }
  }
  EXPECT_LE(howard, Whole(250000));
  EXPECT_LE(state().decisions().at("r1").total_awarded, Whole(450000));
}

TEST_F(GovernanceTest, OverridesOutsideTheRulesAreRefusedAndChangeNothing) {
  Build(kRules);
  const std::string head = state().log().head();
  EXPECT_EQ(Override("A", OverrideKind::kVeto, "duplicate_funding").code(),
            ErrorCode::kOverrideNotAllowed);  // not published by this program
  EXPECT_EQ(Override("A", OverrideKind::kVeto, "whim").code(), ErrorCode::kOverrideNotAllowed);
  EXPECT_EQ(Override("D", OverrideKind::kVeto, "eligibility").code(),
            ErrorCode::kInvalidState);  // not funded
  EXPECT_EQ(Override("A", OverrideKind::kAdd, "eligibility").code(),
            ErrorCode::kInvalidState);  // already funded
  EXPECT_EQ(Override("Z", OverrideKind::kVeto, "eligibility").code(), ErrorCode::kNotFound);
  EXPECT_EQ(state()
                .OverrideDecision("r1", "A", OverrideKind::kVeto, "eligibility", "", Person(200),
                                  At("2026-03-11"))
                .code(),
            ErrorCode::kInvalidArgument);  // no public text
  EXPECT_EQ(state().log().head(), head);
  EXPECT_EQ(Outcome("A").awarded, Whole(200000));

  // Budget share: 70% of 450k is 315k; vetoing A (200k) then adding D (100k) is 300k,
  // but vetoing A then B would move 350k.
  ASSERT_TRUE(Override("A", OverrideKind::kVeto, "eligibility").ok());
  EXPECT_EQ(Override("B", OverrideKind::kVeto, "eligibility").code(), ErrorCode::kOverrideLimit);
  EXPECT_EQ(Override("A", OverrideKind::kVeto, "eligibility").code(), ErrorCode::kInvalidState);
  // Count: two per call.
  ASSERT_TRUE(Override("C", OverrideKind::kVeto, "eligibility").ok());
  EXPECT_EQ(Override("E", OverrideKind::kVeto, "eligibility").code(), ErrorCode::kOverrideLimit);
  EXPECT_EQ(state().overrides().at("r1").size(), 2U);
}

TEST_F(GovernanceTest, AProgramWithoutOverridesRefusesThemAndSaysSo) {
  Build("");
  EXPECT_EQ(Override("A", OverrideKind::kVeto, "eligibility").code(),
            ErrorCode::kOverrideNotAllowed);
  const json report = report::ProgramReportJson(state());
  EXPECT_FALSE(report["governance"]["overrides"]["allowed"].get<bool>());
  EXPECT_EQ(report["governance"]["overrides"]["statement"],
            "This program allows no sponsor overrides.");
  EXPECT_NE(report::ProgramReportHtml(state()).find("allows no sponsor overrides"),
            std::string::npos);
}

TEST_F(GovernanceTest, StrategicNeedsTheProgramsConsent) {
  const std::string rules = R"(
[program.overrides]
max_per_call = 1
reasons = ["strategic"]
)";
  Result<ProgramDefinition> definition = ParseProgramToml(ProgramToml(rules));
  ASSERT_TRUE(definition.ok());
  const Result<ProgramState> created = ProgramState::Create(*definition, At("2025-12-01"));
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().field, "program.overrides.reasons");
}

TEST_F(GovernanceTest, OverridesArePublishedAtCommitAndVerified) {
  Build(kRules);
  ASSERT_TRUE(Override("A", OverrideKind::kVeto, "eligibility").ok());
  // While under review the log names the override's kind and reason, not its proposal.
  const LogEntry& recorded = state().log().entries().back();
  EXPECT_EQ(recorded.type, "override_recorded");
  EXPECT_FALSE(recorded.data.contains("proposal"));
  ASSERT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
  EXPECT_EQ(LedgerSum(state()), 0);
  EXPECT_FALSE(state().grants().contains("G-A"));
  EXPECT_TRUE(state().grants().contains("G-D"));

  const std::string exported = state().log().Export();
  ASSERT_TRUE(VerifyLog(exported).ok) << VerifyLog(exported).reason;
  int published = 0;
  for (const LogEntry& entry : state().log().entries()) {
    if (entry.type == "override_committed") {
      ++published;
      EXPECT_EQ(entry.data["proposal"], "A");
      EXPECT_EQ(entry.data["reason"], "eligibility");
      EXPECT_EQ(entry.data["text"], "public text for A");
      EXPECT_EQ(entry.data["moved"], "200000");
      EXPECT_EQ(entry.data["displaced"].size(), 2U);
    }
    if (entry.type == "decision_committed") {
      EXPECT_EQ(entry.data["overrides"], 1);
    }
    if (entry.type == "proposal_decided" && entry.data["proposal"] == "D") {
      EXPECT_EQ(entry.data["rationale"], "displaced_by_override");
      EXPECT_EQ(entry.data["base_awarded"], "0");
    }
  }
  EXPECT_EQ(published, 1);

  // The transparency report: by kind and reason, budget moved, proposals displaced.
  const json report = report::ProgramReportJson(state());
  const json& calls = report["governance"]["overrides"]["calls"];
  ASSERT_EQ(calls.size(), 1U);
  EXPECT_EQ(calls[0]["vetoes"], 1);
  EXPECT_EQ(calls[0]["additions"], 0);
  EXPECT_EQ(calls[0]["budget_moved"], "200000");
  EXPECT_EQ(calls[0]["by_reason"][0]["reason"], "eligibility");
  EXPECT_EQ(calls[0]["displaced"].size(), 2U);
}

// Rewrites line `index` (0-based) of an exported log with `edit` and re-chains every
// later line, as a forger who controls the whole file would.
std::string Forge(const std::string& exported, size_t index,
                  const std::function<void(json&)>& edit) {
  std::vector<json> lines;
  size_t position = 0;
  while (position < exported.size()) {
    const size_t end = exported.find('\n', position);
    lines.push_back(json::parse(exported.substr(position, end - position)));
    position = end + 1;
  }
  edit(lines[index]["data"]);
  std::string out;
  std::string prev = lines[0]["prev"];
  for (json& line : lines) {
    line["prev"] = prev;
    const json body = {{"at_us", line["at_us"]},
                       {"data", line["data"]},
                       {"prev", line["prev"]},
                       {"seq", line["seq"]},
                       {"type", line["type"]}};
    line["hash"] = Sha256Hex(prev + "\n" + body.dump());
    prev = line["hash"];
    out += line.dump() + "\n";
  }
  return out;
}

TEST_F(GovernanceTest, ATamperedOverrideEntryIsCaught) {
  Build(kRules);
  ASSERT_TRUE(Override("A", OverrideKind::kVeto, "eligibility").ok());
  ASSERT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
  const std::string exported = state().log().Export();
  size_t committed = 0;
  size_t decision = 0;
  for (size_t idx = 0; idx < state().log().entries().size(); ++idx) {
    if (state().log().entries()[idx].type == "override_committed") committed = idx;
    if (state().log().entries()[idx].type == "decision_committed") decision = idx;
  }
  ASSERT_GT(committed, 0U);
  // Re-chaining itself is sound: an unchanged forgery verifies.
  ASSERT_TRUE(VerifyLog(Forge(exported, committed, [](json&) {})).ok);

  // A changed byte without re-chaining breaks the chain at that entry.
  std::string flipped = exported;
  const size_t at = flipped.find("\"eligibility\"", flipped.find("override_committed") - 400);
  ASSERT_NE(at, std::string::npos);
  flipped[at + 1] = 'E';
  const LogVerification broken = VerifyLog(flipped);
  EXPECT_FALSE(broken.ok);

  // Re-chained forgeries: a reason changed after the fact, an override hidden from the
  // decision, an override dropped.
  const LogVerification reason = VerifyLog(
      Forge(exported, committed, [](json& data) { data["reason"] = "conflict_of_interest"; }));
  EXPECT_FALSE(reason.ok);
  EXPECT_EQ(reason.first_broken, static_cast<int64_t>(committed) + 1);
  const LogVerification hidden =
      VerifyLog(Forge(exported, decision, [](json& data) { data.erase("overrides"); }));
  EXPECT_FALSE(hidden.ok);
  EXPECT_EQ(hidden.first_broken, static_cast<int64_t>(decision) + 1);
  const LogVerification renamed =
      VerifyLog(Forge(exported, committed, [](json& data) { data["override"] = "r1:override-9"; }));
  EXPECT_FALSE(renamed.ok);
}

// The log's appeal entries are checked too: an appeal of a funded proposal, a decision
// whose ground or outcome differs from the appeal's, a reserve grant larger than the
// reserve or claimed by no appeal are refused, at the entry that was changed.
TEST_F(GovernanceTest, ATamperedAppealEntryIsCaught) {
  Build(kRules);
  ASSERT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
  ASSERT_TRUE(state().FileAppeal("E", "factual_error", "", Person(5), At("2026-03-20")).ok());
  ASSERT_TRUE(state().DecideAppeal("A-E", true, "the score was misread", At("2026-03-25")).ok());
  const std::string exported = state().log().Export();
  ASSERT_TRUE(VerifyLog(exported).ok) << VerifyLog(exported).reason;
  size_t filed = 0;
  size_t grant = 0;
  size_t decided = 0;
  for (size_t idx = 0; idx < state().log().entries().size(); ++idx) {
    const LogEntry& entry = state().log().entries()[idx];
    if (entry.type == "appeal_filed") filed = idx;
    if (entry.type == "grant_created" &&
        entry.data.parsed().value("from", "") == "appeals_reserve") {
      grant = idx;
    }
    if (entry.type == "appeal_decided") decided = idx;
  }
  ASSERT_TRUE(filed > 0 && grant > filed && decided > grant);
  const auto at = [](size_t idx) { return static_cast<int64_t>(idx) + 1; };
  const auto refused = [&](size_t idx, const std::function<void(json&)>& edit) {
    const LogVerification verdict = VerifyLog(Forge(exported, idx, edit));
    EXPECT_FALSE(verdict.ok);
    return verdict.first_broken;
  };
  // An appeal of A, which the decision funded.
  EXPECT_EQ(refused(filed,
                    [](json& data) {
                      data["proposal"] = "A";
                      data["appeal"] = "A-A";
                    }),
            at(filed));
  // The decision names another ground, or says rejected while a grant is paid.
  EXPECT_EQ(refused(decided, [](json& data) { data["ground"] = "procedural_error"; }), at(decided));
  EXPECT_EQ(refused(decided, [](json& data) { data["outcome"] = "rejected"; }), at(decided));
  // The reserve (100000) pays more than it holds; or pays with no appeal claiming it.
  EXPECT_EQ(refused(grant, [](json& data) { data["amount"] = "150000"; }), at(grant));
  EXPECT_EQ(refused(decided,
                    [](json& data) {
                      data.erase("grant");
                      data.erase("funded");
                    }),
            at(grant));
}

TEST_F(GovernanceTest, AppealsWindowGroundsReviewersAndTheReserve) {
  Build(kRules);
  ASSERT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
  const Credits reserve_before = state().AccountBalance(kAppealsReserveAccount);
  EXPECT_EQ(reserve_before, Whole(100000));
  const std::string head = state().log().head();
  // Only declined proposals, on a published ground, within the window.
  EXPECT_EQ(state().FileAppeal("A", "factual_error", "", Person(1), At("2026-03-20")).code(),
            ErrorCode::kAppealNotAllowed);
  EXPECT_EQ(state().FileAppeal("E", "bad_luck", "", Person(5), At("2026-03-20")).code(),
            ErrorCode::kAppealNotAllowed);
  EXPECT_EQ(state().FileAppeal("E", "factual_error", "", Person(5), At("2026-04-15")).code(),
            ErrorCode::kAppealWindowClosed);
  EXPECT_EQ(state().log().head(), head);

  Result<Appeal> appeal =
      state().FileAppeal("E", "conflict_not_detected", "a reviewer", Person(5), At("2026-03-20"));
  ASSERT_TRUE(appeal.ok()) << appeal.error().ToString();
  EXPECT_EQ(appeal->id, "A-E");
  ASSERT_EQ(appeal->reviewers.size(), 2U);
  for (const std::string& reviewer : appeal->reviewers) {
    for (const Assignment& assignment : state().assignments()) {
      EXPECT_FALSE(assignment.proposal == "E" && assignment.reviewer == reviewer) << reviewer;
    }
    for (const Conflict& conflict : state().conflicts()) {
      EXPECT_FALSE(conflict.proposal == "E" && conflict.reviewer == reviewer) << reviewer;
    }
    EXPECT_NE(state().people().at(reviewer).institution, "howard") << reviewer;  // E's PI's
  }
  EXPECT_EQ(state().FileAppeal("E", "factual_error", "", Person(5), At("2026-03-21")).code(),
            ErrorCode::kAppealNotAllowed);  // once
  ASSERT_TRUE(state().FileAppeal("D", "factual_error", "", Person(4), At("2026-03-21")).ok());

  EXPECT_EQ(state().DecideAppeal("A-E", true, "", At("2026-03-25")).code(),
            ErrorCode::kInvalidArgument);
  Result<Appeal> upheld =
      state().DecideAppeal("A-E", true, "reviewer 2 co-authored with the PI", At("2026-03-25"));
  ASSERT_TRUE(upheld.ok()) << upheld.error().ToString();
  EXPECT_EQ(upheld->state, AppealState::kUpheld);
  EXPECT_EQ(upheld->grant, "G-E");
  EXPECT_EQ(state().grants().at("G-E").awarded, Whole(100000));
  EXPECT_EQ(state().AccountBalance(state().grants().at("G-E").account), Whole(100000));
  EXPECT_EQ(state().AccountBalance(kAppealsReserveAccount), Credits::Zero());
  EXPECT_EQ(state().proposals().at("E").status, ProposalStatus::kAwarded);
  EXPECT_TRUE(state().obligations().contains("G-E/paper"));
  EXPECT_EQ(state().DecideAppeal("A-E", false, "again", At("2026-03-26")).code(),
            ErrorCode::kInvalidState);
  // The reserve is spent: another upheld appeal cannot be funded, and changes nothing.
  EXPECT_EQ(state().DecideAppeal("A-D", true, "yes", At("2026-03-26")).code(),
            ErrorCode::kInsufficientCredits);
  ASSERT_TRUE(state().DecideAppeal("A-D", false, "scores were right", At("2026-03-26")).ok());
  EXPECT_EQ(LedgerSum(state()), 0);
  EXPECT_TRUE(state().ledger().Verify().ok());
  EXPECT_TRUE(VerifyLog(state().log().Export()).ok);

  const json report = report::ProgramReportJson(state());
  const json& appeals = report["governance"]["appeals"];
  EXPECT_EQ(appeals["filed"], 2);
  EXPECT_EQ(appeals["upheld"], 1);
  EXPECT_EQ(appeals["rejected"], 1);
  EXPECT_EQ(appeals["reserve"]["funded"], "100000");
  ASSERT_EQ(appeals["by_ground"].size(), 2U);
  EXPECT_EQ(appeals["by_ground"][0]["ground"], "conflict_not_detected");
  EXPECT_EQ(appeals["by_ground"][0]["upheld"], 1);
}

// Every reviewer free of the proposal is eligible, and no other: with room for ten, the
// appeal gets exactly the reviewers who were not assigned to E, did not review it, are
// not at its PI's institution (howard) and declared no conflict with it (one does, after
// the decision).
TEST_F(GovernanceTest, AppealReviewersAreExactlyThoseFreeOfTheProposal) {
  std::string rules = kRules;
  rules.replace(rules.find("reviewers = 2"), 13, "reviewers = 10");
  Build(rules);
  ASSERT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
  std::set<std::string> free;
  for (const auto& [id, person] : state().people()) {
    if (person.reviewer && person.institution != "howard") free.insert(id);
  }
  for (const Assignment& assignment : state().assignments()) {
    if (assignment.proposal == "E") free.erase(assignment.reviewer);
  }
  for (const Review& review : state().reviews()) {
    if (review.proposal == "E") free.erase(review.reviewer);
  }
  ASSERT_GE(free.size(), 3U);
  const std::string conflicted = *free.begin();
  ASSERT_TRUE(state().DeclareConflict(conflicted, "E", "former student", At("2026-03-16")).ok());
  free.erase(conflicted);
  Result<Appeal> appeal = state().FileAppeal("E", "factual_error", "", Person(5), At("2026-03-20"));
  ASSERT_TRUE(appeal.ok()) << appeal.error().ToString();
  EXPECT_EQ(std::set<std::string>(appeal->reviewers.begin(), appeal->reviewers.end()), free);
}

TEST_F(GovernanceTest, SponsorTiesAreMarkedAndCompared) {
  Build(kRules);
  ASSERT_TRUE(state().CommitDecision("r1", At("2026-03-15")).ok());
  EXPECT_EQ(state().SponsorTieOf(state().proposals().at("A")), "funding");  // howard
  EXPECT_EQ(state().SponsorTieOf(state().proposals().at("B")), "");
  const json ties = report::ProgramReportJson(state())["governance"]["sponsor_ties"];
  // Howard: A (funded) and E (declined); others: B, C funded, D declined.
  EXPECT_EQ(ties["tied"]["decided"], 2);
  EXPECT_EQ(ties["tied"]["awarded"], 1);
  EXPECT_EQ(ties["tied"]["award_rate"], 0.5);
  EXPECT_EQ(ties["others"]["decided"], 3);
  EXPECT_EQ(ties["others"]["awarded"], 2);
  EXPECT_GT(ties["tied"]["mean_score"].get<double>(), 0.0);
  bool marked = false;
  for (const LogEntry& entry : state().log().entries()) {
    if (entry.type == "proposal_decided" && entry.data["proposal"] == "A") {
      marked = entry.data.parsed().value("sponsor_tie", "") == "funding";
    }
  }
  EXPECT_TRUE(marked);
}

}  // namespace
}  // namespace atrium::program
