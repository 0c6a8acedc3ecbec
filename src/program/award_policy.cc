#include "program/award_policy.h"

#include <algorithm>
#include <bit>
#include <cstdint>

#include "base/assert.h"
#include "program/decision_log.h"

namespace atrium::program {

std::unique_ptr<AwardPolicy> MakeGreedyPolicy();
std::unique_ptr<AwardPolicy> MakeMipPolicy(const AwardOptions& options);

Result<std::unique_ptr<AwardPolicy>> MakeAwardPolicy(std::string_view name,
                                                     const AwardOptions& options) {
  if (name == "greedy") return MakeGreedyPolicy();
  if (name == "mip") return MakeMipPolicy(options);
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown award policy '" + std::string(name) + "' (mip, greedy)", "policy");
}

std::string ProblemDigest(const AwardProblem& problem) {
  // Length-prefixed fields in a fixed order: two problems share a digest only if every
  // field is equal.
  std::string bytes;
  auto put_int = [&bytes](int64_t value) {
    bytes.append(reinterpret_cast<const char*>(&value), sizeof value);
  };
  auto put_text = [&](const std::string& text) {
    put_int(static_cast<int64_t>(text.size()));
    bytes.append(text);
  };
  put_int(problem.budget.micro());
  put_int(static_cast<int64_t>(problem.institution_room.size()));
  for (Credits room : problem.institution_room) put_int(room.micro());
  put_int(static_cast<int64_t>(problem.floors.size()));
  for (const AwardFloor& floor : problem.floors) {
    put_text(floor.name);
    put_int(floor.share_bp);
  }
  put_int(static_cast<int64_t>(problem.candidates.size()));
  for (const AwardCandidate& candidate : problem.candidates) {
    put_text(candidate.id);
    put_int(std::bit_cast<int64_t>(candidate.merit));
    put_int(candidate.requested.micro());
    put_int(static_cast<int64_t>(candidate.levels.size()));
    for (Credits level : candidate.levels) put_int(level.micro());
    put_int(candidate.institution);
    put_int(static_cast<int64_t>(candidate.in_floor.size()));
    for (const bool member : candidate.in_floor) put_int(member ? 1 : 0);
    put_int((candidate.fixed ? 1 : 0) | (candidate.excluded ? 2 : 0));
  }
  return Sha256Hex(bytes);
}

Result<AwardSolution> SolveOnTape(const AwardPolicy& policy, const AwardProblem& problem,
                                  SolverTape* tape) {
  if (tape == nullptr) return policy.Solve(problem);
  const std::string digest = ProblemDigest(problem);
  if (tape->replaying) {
    if (tape->next >= tape->entries.size()) {
      return MakeError(ErrorCode::kInvariantViolated,
                       "the command carries fewer solver answers than it solves", "solver_answers");
    }
    const SolverTapeEntry& entry = tape->entries[tape->next++];
    if (entry.problem_sha256 != digest) {
      return MakeError(ErrorCode::kInvariantViolated,
                       "a journaled solver answer is for another problem: the state has diverged",
                       "solver_answers");
    }
    if (entry.solution.awarded.size() != problem.candidates.size()) {
      return MakeError(ErrorCode::kInvariantViolated,
                       "a journaled solver answer has the wrong number of awards",
                       "solver_answers");
    }
    return entry.solution;
  }
  ATRIUM_ASSIGN_OR_RETURN(AwardSolution solution, policy.Solve(problem));
  tape->entries.push_back({.problem_sha256 = digest, .solution = solution});
  return solution;
}

Status ValidateProblem(const AwardProblem& problem) {
  if (problem.budget.is_negative()) {
    return MakeError(ErrorCode::kInvalidArgument, "negative budget", "budget");
  }
  for (const AwardFloor& floor : problem.floors) {
    if (floor.share_bp < 0 || floor.share_bp > kBasisPointsFull) {
      return MakeError(ErrorCode::kInvalidArgument, "floor share outside 0..100%", floor.name);
    }
  }
  for (const AwardCandidate& candidate : problem.candidates) {
    if (candidate.levels.empty() || candidate.levels.back() != candidate.requested ||
        candidate.merit < 0 || candidate.in_floor.size() != problem.floors.size() ||
        candidate.institution >= static_cast<int>(problem.institution_room.size())) {
      return MakeError(ErrorCode::kInvalidArgument, "malformed candidate", candidate.id);
    }
    if (candidate.fixed && candidate.levels.size() != 1) {
      return MakeError(ErrorCode::kInvalidArgument, "a fixed candidate has one level",
                       candidate.id);
    }
    for (size_t level_idx = 0; level_idx < candidate.levels.size(); ++level_idx) {
      if (candidate.levels[level_idx] <= Credits::Zero() ||
          (level_idx > 0 && candidate.levels[level_idx] <= candidate.levels[level_idx - 1])) {
        return MakeError(ErrorCode::kInvalidArgument, "levels must ascend and be positive",
                         candidate.id);
      }
    }
  }
  return OkStatus();
}

int64_t ShareBp(Credits part, Credits total) {
  if (total.micro() <= 0) return 0;
  return static_cast<int64_t>(static_cast<__int128>(part.micro()) * kBasisPointsFull /
                              total.micro());
}

Status CheckSolution(const AwardProblem& problem, const std::vector<Credits>& awarded) {
  if (awarded.size() != problem.candidates.size()) {
    return MakeError(ErrorCode::kInvalidArgument, "one award per candidate expected");
  }
  __int128 total = 0;
  std::vector<__int128> per_institution(problem.institution_room.size(), 0);
  std::vector<__int128> per_floor(problem.floors.size(), 0);
  for (size_t idx = 0; idx < awarded.size(); ++idx) {
    const AwardCandidate& candidate = problem.candidates[idx];
    if (candidate.fixed && awarded[idx] != candidate.requested) {
      return MakeError(ErrorCode::kOverBudget, "a proposal fixed in is not funded in full",
                       candidate.id);
    }
    if (candidate.excluded && !awarded[idx].is_zero()) {
      return MakeError(ErrorCode::kInvalidArgument, "a vetoed proposal is funded", candidate.id);
    }
    if (awarded[idx].is_zero()) continue;
    if (std::find(candidate.levels.begin(), candidate.levels.end(), awarded[idx]) ==
        candidate.levels.end()) {
      return MakeError(ErrorCode::kInvalidArgument, "award is not one of the allowed levels",
                       candidate.id);
    }
    total += awarded[idx].micro();
    if (candidate.institution >= 0) {
      per_institution[static_cast<size_t>(candidate.institution)] += awarded[idx].micro();
    }
    for (size_t floor_idx = 0; floor_idx < problem.floors.size(); ++floor_idx) {
      if (candidate.in_floor[floor_idx]) per_floor[floor_idx] += awarded[idx].micro();
    }
  }
  if (total > problem.budget.micro()) {
    return MakeError(ErrorCode::kOverBudget, "awards exceed the budget");
  }
  for (size_t inst = 0; inst < per_institution.size(); ++inst) {
    if (per_institution[inst] > problem.institution_room[inst].micro()) {
      return MakeError(ErrorCode::kCapExceeded, "awards exceed an institution cap",
                       std::to_string(inst));
    }
  }
  for (size_t floor_idx = 0; floor_idx < problem.floors.size(); ++floor_idx) {
    if (per_floor[floor_idx] * kBasisPointsFull < problem.floors[floor_idx].share_bp * total) {
      return MakeError(ErrorCode::kCapExceeded, "fairness floor not met",
                       problem.floors[floor_idx].name);
    }
  }
  return OkStatus();
}

double Objective(const AwardProblem& problem, const std::vector<Credits>& awarded) {
  double objective = 0;
  for (size_t idx = 0; idx < awarded.size(); ++idx) {
    const AwardCandidate& candidate = problem.candidates[idx];
    if (awarded[idx].is_zero()) continue;
    objective += candidate.merit * static_cast<double>(awarded[idx].micro()) /
                 static_cast<double>(Credits::kMicroPerCredit);
  }
  return objective;
}

double UpperBound(const AwardProblem& problem) {
  std::vector<size_t> order(problem.candidates.size());
  for (size_t idx = 0; idx < order.size(); ++idx) order[idx] = idx;
  // Every credit is worth its proposal's merit, so the best fractional use of the budget
  // takes proposals by merit.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return problem.candidates[a].merit > problem.candidates[b].merit;
  });
  double room = static_cast<double>(problem.budget.micro());
  double bound = 0;
  for (size_t idx : order) {
    if (room <= 0) break;
    const AwardCandidate& candidate = problem.candidates[idx];
    if (candidate.excluded) continue;
    const double take = std::min(room, static_cast<double>(candidate.requested.micro()));
    bound += candidate.merit * take / static_cast<double>(Credits::kMicroPerCredit);
    room -= take;
  }
  return bound;
}

}  // namespace atrium::program
