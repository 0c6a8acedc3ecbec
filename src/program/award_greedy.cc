// The greedy award policy, also the MIP's fallback and starting point.
//
//   1. Floors first: for each fairness floor, walk the candidates in rank order and fund
//      the floor's members (at the largest level that fits the budget and the
//      institution's room) until the floor holds share_bp of the expected total, taken
//      as the smaller of the budget and the sum of all requests.
//   2. Then everyone in rank order, at the largest level that fits.
//   3. Repair: while a floor is below its share of the actual total, decline the
//      lowest-ranked award that is not a member of that floor. Each step removes one
//      award and the empty decision meets every floor, so the result is feasible.
// The gap is measured against UpperBound (the fractional knapsack on the budget).
#include <algorithm>

#include "program/award_policy.h"

namespace atrium::program {
namespace {

struct GreedyState {
  const AwardProblem& problem;
  std::vector<Credits> awarded;
  int64_t budget_left;
  std::vector<int64_t> room_left;

  explicit GreedyState(const AwardProblem& p)
      : problem(p), awarded(p.candidates.size()), budget_left(p.budget.micro()) {
    for (Credits room : p.institution_room) room_left.push_back(room.micro());
  }

  // Funds candidate idx at its largest level that fits; false if none fits.
  bool Fund(size_t idx) {
    const AwardCandidate& candidate = problem.candidates[idx];
    if (!awarded[idx].is_zero() || candidate.excluded) return false;
    int64_t limit = budget_left;
    if (candidate.institution >= 0) {
      limit = std::min(limit, room_left[static_cast<size_t>(candidate.institution)]);
    }
    for (auto level = candidate.levels.rbegin(); level != candidate.levels.rend(); ++level) {
      if (level->micro() <= limit) {
        awarded[idx] = *level;
        budget_left -= level->micro();
        if (candidate.institution >= 0) {
          room_left[static_cast<size_t>(candidate.institution)] -= level->micro();
        }
        return true;
      }
    }
    return false;
  }

  void Decline(size_t idx) {
    const AwardCandidate& candidate = problem.candidates[idx];
    budget_left += awarded[idx].micro();
    if (candidate.institution >= 0) {
      room_left[static_cast<size_t>(candidate.institution)] += awarded[idx].micro();
    }
    awarded[idx] = Credits::Zero();
  }

  __int128 Total() const {
    __int128 total = 0;
    for (Credits amount : awarded) total += amount.micro();
    return total;
  }
  __int128 FloorTotal(size_t floor_idx) const {
    __int128 total = 0;
    for (size_t idx = 0; idx < awarded.size(); ++idx) {
      if (problem.candidates[idx].in_floor[floor_idx]) total += awarded[idx].micro();
    }
    return total;
  }
  bool FloorHolds(size_t floor_idx) const {
    return FloorTotal(floor_idx) * kBasisPointsFull >= Total() * problem.floors[floor_idx].share_bp;
  }
};

class GreedyPolicy final : public AwardPolicy {
 public:
  std::string_view name() const override { return "greedy"; }
  Result<AwardSolution> Solve(const AwardProblem& problem) const override {
    ATRIUM_TRY(ValidateProblem(problem));
    return SolveGreedy(problem);
  }
};

}  // namespace

AwardSolution SolveGreedy(const AwardProblem& problem) {
  GreedyState state(problem);
  const size_t count = problem.candidates.size();
  __int128 requests = 0;
  for (const AwardCandidate& candidate : problem.candidates)
    requests += candidate.requested.micro();
  const __int128 expected_total = std::min<__int128>(requests, problem.budget.micro());
  // Sponsor additions first: they must be funded whatever else is.
  bool any_fixed = false;
  for (size_t idx = 0; idx < count; ++idx) {
    if (problem.candidates[idx].fixed) {
      any_fixed = true;
      state.Fund(idx);
    }
  }

  for (size_t floor_idx = 0; floor_idx < problem.floors.size(); ++floor_idx) {
    const __int128 target = expected_total * problem.floors[floor_idx].share_bp / kBasisPointsFull;
    for (size_t idx = 0; idx < count && state.FloorTotal(floor_idx) < target; ++idx) {
      if (problem.candidates[idx].in_floor[floor_idx]) state.Fund(idx);
    }
  }
  for (size_t idx = 0; idx < count; ++idx) state.Fund(idx);

  // Each step declines one award, so this ends within `count` steps; the all-declined
  // solution satisfies every floor.
  for (size_t step = 0; step <= 2 * count; ++step) {
    size_t failing = problem.floors.size();
    for (size_t floor_idx = 0; floor_idx < problem.floors.size(); ++floor_idx) {
      if (!state.FloorHolds(floor_idx)) {
        failing = floor_idx;
        break;
      }
    }
    if (failing == problem.floors.size()) break;
    // With additions fixed in, the budget a declined award frees may fund a member.
    bool funded_member = false;
    for (size_t idx = 0; any_fixed && idx < count && !funded_member; ++idx) {
      if (problem.candidates[idx].in_floor[failing]) funded_member = state.Fund(idx);
    }
    if (funded_member) continue;
    for (size_t idx = count; idx > 0; --idx) {
      const size_t victim = idx - 1;
      if (!state.awarded[victim].is_zero() && !problem.candidates[victim].in_floor[failing] &&
          !problem.candidates[victim].fixed) {
        state.Decline(victim);
        break;
      }
    }
  }

  AwardSolution solution;
  solution.awarded = std::move(state.awarded);
  solution.policy = "greedy";
  solution.objective = Objective(problem, solution.awarded);
  solution.bound = std::max(UpperBound(problem), solution.objective);
  solution.optimal = solution.bound - solution.objective <= 1e-9 * std::max(1.0, solution.bound);
  return solution;
}

std::unique_ptr<AwardPolicy> MakeGreedyPolicy() { return std::make_unique<GreedyPolicy>(); }

}  // namespace atrium::program
