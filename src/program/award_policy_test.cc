#include "program/award_policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

namespace atrium::program {
namespace {

Credits Whole(int64_t value) { return Credits::FromWhole(value); }

// A random instance; small ones are brute-forced.
AwardProblem RandomProblem(uint64_t seed, int candidates_max) {
  std::mt19937_64 random(seed);
  const auto uniform = [&](int64_t low, int64_t high) {
    return std::uniform_int_distribution<int64_t>(low, high)(random);
  };
  AwardProblem problem;
  const int64_t institutions = uniform(1, 3);
  for (int64_t inst = 0; inst < institutions; ++inst) {
    problem.institution_room.push_back(Whole(uniform(40, 250)));
  }
  const int64_t floors = uniform(0, 2);
  for (int64_t floor = 0; floor < floors; ++floor) {
    problem.floors.push_back({"floor" + std::to_string(floor), uniform(1, 5) * 1'000});
  }
  const int64_t count = uniform(2, candidates_max);
  for (int64_t idx = 0; idx < count; ++idx) {
    AwardCandidate candidate;
    candidate.id = "P" + std::to_string(idx);
    candidate.merit = static_cast<double>(uniform(0, 1000)) / 10.0;
    const int64_t request = uniform(10, 120);
    candidate.requested = Whole(request);
    if (uniform(0, 1) == 1) {
      for (int64_t bp : {5'000, 7'500}) {
        const int64_t level = request * bp / 10'000;
        if (level > 0 && (candidate.levels.empty() || Whole(level) > candidate.levels.back())) {
          candidate.levels.push_back(Whole(level));
        }
      }
    }
    candidate.levels.push_back(candidate.requested);
    candidate.institution = static_cast<int>(uniform(-1, institutions - 1));
    for (int64_t floor = 0; floor < floors; ++floor)
      candidate.in_floor.push_back(uniform(0, 2) == 0);
    problem.candidates.push_back(std::move(candidate));
  }
  problem.budget = Whole(uniform(30, 400));
  return problem;
}

// The exact optimum by enumeration of every level choice.
double BruteForce(const AwardProblem& problem) {
  const size_t count = problem.candidates.size();
  std::vector<size_t> choice(count, 0);  // 0 = declined, i = levels[i - 1]
  std::vector<Credits> awarded(count);
  double best = 0;
  while (true) {
    for (size_t idx = 0; idx < count; ++idx) {
      awarded[idx] =
          choice[idx] == 0 ? Credits::Zero() : problem.candidates[idx].levels[choice[idx] - 1];
    }
    if (CheckSolution(problem, awarded).ok()) best = std::max(best, Objective(problem, awarded));
    size_t position = 0;
    while (position < count && ++choice[position] > problem.candidates[position].levels.size()) {
      choice[position++] = 0;
    }
    if (position == count) break;
  }
  return best;
}

// A policy that counts its solves (what a replay must not do).
class CountingPolicy : public AwardPolicy {
 public:
  explicit CountingPolicy(std::unique_ptr<AwardPolicy> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return inner_->name(); }
  Result<AwardSolution> Solve(const AwardProblem& problem) const override {
    ++solves;
    return inner_->Solve(problem);
  }
  mutable int solves = 0;

 private:
  std::unique_ptr<AwardPolicy> inner_;
};

TEST(SolverTapeTest, DigestChangesWithEveryField) {
  const AwardProblem base = RandomProblem(7, 6);
  EXPECT_EQ(ProblemDigest(base), ProblemDigest(RandomProblem(7, 6)));
  EXPECT_EQ(ProblemDigest(base).size(), 64u);
  std::vector<AwardProblem> changed(7, base);
  changed[0].budget = Credits::FromMicro(base.budget.micro() + 1);
  changed[1].candidates[0].merit = std::nextafter(base.candidates[0].merit, 1e9);
  changed[2].candidates[1].fixed = !base.candidates[1].fixed;
  changed[3].candidates[1].excluded = !base.candidates[1].excluded;
  changed[4].candidates[0].id += "x";
  changed[5].institution_room.push_back(Credits::FromWhole(1));
  changed[6].candidates.pop_back();
  for (size_t i = 0; i < changed.size(); ++i) {
    EXPECT_NE(ProblemDigest(changed[i]), ProblemDigest(base)) << "change " << i;
  }
}

TEST(SolverTapeTest, RecordsThenReplaysWithoutSolving) {
  const AwardProblem first = RandomProblem(11, 8);
  const AwardProblem second = RandomProblem(12, 8);
  CountingPolicy policy(*MakeAwardPolicy("greedy", {}));
  SolverTape tape;
  const Result<AwardSolution> a = SolveOnTape(policy, first, &tape);
  const Result<AwardSolution> b = SolveOnTape(policy, second, &tape);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(tape.entries.size(), 2u);
  EXPECT_EQ(policy.solves, 2);

  SolverTape replay{.replaying = true, .entries = tape.entries};
  const Result<AwardSolution> again = SolveOnTape(policy, first, &replay);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->awarded, a->awarded);
  EXPECT_EQ(again->objective, a->objective);
  EXPECT_EQ(policy.solves, 2);  // taken from the tape
  // The second answer is for `second`: asked with `first`, the replay refuses.
  EXPECT_EQ(SolveOnTape(policy, first, &replay).error().code, ErrorCode::kInvariantViolated);
  // Past the tape's end.
  SolverTape short_tape{.replaying = true, .entries = {}};
  EXPECT_EQ(SolveOnTape(policy, first, &short_tape).error().code, ErrorCode::kInvariantViolated);
  // No tape: a plain solve.
  EXPECT_TRUE(SolveOnTape(policy, first, nullptr).ok());
  EXPECT_EQ(policy.solves, 3);
}

TEST(AwardPolicyTest, FactoryKnowsItsPolicies) {
  EXPECT_TRUE(MakeAwardPolicy("mip", {}).ok());
  EXPECT_TRUE(MakeAwardPolicy("greedy", {}).ok());
  EXPECT_EQ(MakeAwardPolicy("lottery", {}).code(), ErrorCode::kInvalidArgument);
}

TEST(AwardPolicyTest, MipMatchesBruteForceOnSmallInstances) {
  auto mip = std::move(MakeAwardPolicy("mip", {})).value();
  auto greedy = std::move(MakeAwardPolicy("greedy", {})).value();
  int greedy_suboptimal = 0;
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const AwardProblem problem = RandomProblem(seed, 7);
    const double optimum = BruteForce(problem);
    Result<AwardSolution> solution = mip->Solve(problem);
    ASSERT_TRUE(solution.ok());
    ASSERT_TRUE(CheckSolution(problem, solution->awarded).ok());
    EXPECT_EQ(solution->policy, "mip") << solution->note;
    EXPECT_TRUE(solution->optimal);
    EXPECT_NEAR(solution->objective, optimum, 1e-6 * std::max(1.0, optimum));
    EXPECT_GE(solution->bound + 1e-6, optimum);

    Result<AwardSolution> fallback = greedy->Solve(problem);
    ASSERT_TRUE(fallback.ok());
    ASSERT_TRUE(CheckSolution(problem, fallback->awarded).ok());
    EXPECT_LE(fallback->objective, optimum + 1e-9);
    EXPECT_GE(fallback->bound + 1e-9, optimum);  // the reported gap is honest
    EXPECT_GE(fallback->gap(), 0.0);
    if (fallback->objective + 1e-6 < optimum) ++greedy_suboptimal;
  }
  // The instances are hard enough that the greedy does not always find the optimum.
  EXPECT_GT(greedy_suboptimal, 0);
}

TEST(AwardPolicyTest, CapsAndFloorsHoldOnLargerRandomInstances) {
  for (const char* name : {"mip", "greedy"}) {
    auto policy = std::move(MakeAwardPolicy(name, {.mip_nodes_max = 2'000})).value();
    for (uint64_t seed = 100; seed < 112; ++seed) {
      SCOPED_TRACE(std::string(name) + " seed " + std::to_string(seed));
      AwardProblem problem = RandomProblem(seed, 150);
      Result<AwardSolution> solution = policy->Solve(problem);
      ASSERT_TRUE(solution.ok());
      ASSERT_TRUE(CheckSolution(problem, solution->awarded).ok());
      // Independent re-count of the constraints.
      int64_t total = 0;
      std::vector<int64_t> per_institution(problem.institution_room.size(), 0);
      std::vector<int64_t> per_floor(problem.floors.size(), 0);
      for (size_t idx = 0; idx < problem.candidates.size(); ++idx) {
        const AwardCandidate& candidate = problem.candidates[idx];
        const Credits amount = solution->awarded[idx];
        EXPECT_LE(amount, candidate.requested);
        total += amount.micro();
        if (candidate.institution >= 0) {
          per_institution[static_cast<size_t>(candidate.institution)] += amount.micro();
        }
        for (size_t floor = 0; floor < problem.floors.size(); ++floor) {
          if (candidate.in_floor[floor]) per_floor[floor] += amount.micro();
        }
      }
      EXPECT_LE(total, problem.budget.micro());
      for (size_t inst = 0; inst < per_institution.size(); ++inst) {
        EXPECT_LE(per_institution[inst], problem.institution_room[inst].micro());
      }
      for (size_t floor = 0; floor < problem.floors.size(); ++floor) {
        EXPECT_GE(static_cast<__int128>(per_floor[floor]) * 10'000,
                  static_cast<__int128>(total) * problem.floors[floor].share_bp);
      }
      // Same input, same answer.
      Result<AwardSolution> again = policy->Solve(problem);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(again->awarded, solution->awarded);
    }
  }
}

TEST(AwardPolicyTest, MipFallsBackToGreedyBeyondItsSizeLimit) {
  const AwardProblem problem = RandomProblem(7, 40);
  auto policy = std::move(MakeAwardPolicy("mip", {.mip_variables_max = 3})).value();
  Result<AwardSolution> solution = policy->Solve(problem);
  ASSERT_TRUE(solution.ok());
  EXPECT_EQ(solution->policy, "greedy");
  EXPECT_NE(solution->note.find("greedy used"), std::string::npos);
  EXPECT_TRUE(CheckSolution(problem, solution->awarded).ok());
  EXPECT_EQ(solution->awarded, SolveGreedy(problem).awarded);
  EXPECT_GE(solution->gap(), 0.0);
  EXPECT_GE(solution->bound, solution->objective);
}

TEST(AwardPolicyTest, CheckSolutionNamesTheBrokenConstraint) {
  AwardProblem problem;
  problem.budget = Whole(100);
  problem.institution_room = {Whole(50)};
  problem.floors = {{"fundamental", 5'000}};
  problem.candidates = {
      {.id = "a",
       .merit = 80,
       .requested = Whole(60),
       .levels = {Whole(30), Whole(60)},
       .institution = 0,
       .in_floor = {false}},
      {.id = "b",
       .merit = 70,
       .requested = Whole(60),
       .levels = {Whole(60)},
       .institution = -1,
       .in_floor = {true}},
  };
  EXPECT_EQ(CheckSolution(problem, {Whole(60), Credits::Zero()}).code(), ErrorCode::kCapExceeded);
  EXPECT_EQ(CheckSolution(problem, {Whole(30), Whole(60)}).code(), ErrorCode::kOk);
  EXPECT_EQ(CheckSolution(problem, {Whole(30), Credits::Zero()}).code(), ErrorCode::kCapExceeded);
  EXPECT_EQ(CheckSolution(problem, {Whole(45), Whole(60)}).code(), ErrorCode::kInvalidArgument);
  problem.budget = Whole(80);
  EXPECT_EQ(CheckSolution(problem, {Whole(30), Whole(60)}).code(), ErrorCode::kOverBudget);
  EXPECT_EQ(ShareBp(Whole(1), Whole(3)), 3'333);
}

TEST(AwardPolicyTest, GreedyFundsInRankOrderWithoutConstraints) {
  AwardProblem problem;
  problem.budget = Whole(100);
  for (int idx = 0; idx < 4; ++idx) {
    problem.candidates.push_back({.id = std::to_string(idx),
                                  .merit = 90.0 - idx,
                                  .requested = Whole(40),
                                  .levels = {Whole(40)}});
  }
  const AwardSolution solution = SolveGreedy(problem);
  EXPECT_EQ(solution.awarded,
            (std::vector<Credits>{Whole(40), Whole(40), Credits::Zero(), Credits::Zero()}));
  EXPECT_GT(solution.gap(), 0.0);  // the fractional bound fills the last 20 credits
}

}  // namespace
}  // namespace atrium::program
