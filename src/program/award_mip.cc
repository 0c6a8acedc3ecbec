// The "mip" award policy: the exact problem of award_policy.h as a 0-1 program solved
// with COIN-OR CBC.
//
//   variables  x[c][l] in {0,1}: candidate c funded at level l
//   maximize   sum merit[c] * amount[c][l] * x[c][l]
//   subject to sum_l x[c][l] <= 1                                   (one level each)
//              sum amount[c][l] x[c][l] <= budget
//              sum_{c at i} amount[c][l] x[c][l] <= room[i]          (institution caps)
//              sum amount[c][l] (member_f(c) - share_f) x[c][l] >= 0 (fairness floors)
//
// Amounts are in thousands of credits to keep coefficients well scaled. CBC's answer
// is re-checked in exact integer arithmetic; if it is not proven optimal, fails the
// check, or is worse than the greedy (which is also CBC's starting solution), the
// better exact-feasible answer stands and its gap is reported against CBC's bound.
// CBC throws CoinError and prints; both stay inside this file.
#include <CbcModel.hpp>
#include <CglClique.hpp>
#include <CglGomory.hpp>
#include <CglKnapsackCover.hpp>
#include <CoinError.hpp>
#include <CoinPackedMatrix.hpp>
#include <OsiClpSolverInterface.hpp>

#include <algorithm>
#include <cmath>

#include "program/award_policy.h"

namespace atrium::program {
namespace {

constexpr double kMicroPerUnit = 1e9;  // one MIP unit = 1000 credits
constexpr double kCreditsPerUnit = 1e3;

struct Column {
  size_t candidate;
  Credits amount;
};

class MipPolicy final : public AwardPolicy {
 public:
  explicit MipPolicy(const AwardOptions& options) : options_(options) {}
  std::string_view name() const override { return "mip"; }
  Result<AwardSolution> Solve(const AwardProblem& problem) const override;

 private:
  AwardOptions options_;
};

std::vector<Column> MakeColumns(const AwardProblem& problem) {
  std::vector<Column> columns;
  for (size_t idx = 0; idx < problem.candidates.size(); ++idx) {
    for (Credits level : problem.candidates[idx].levels) columns.push_back({idx, level});
  }
  return columns;
}

double Units(Credits amount) { return static_cast<double>(amount.micro()) / kMicroPerUnit; }

// Runs CBC; returns the awards it found (empty if none) and sets *bound and *proven.
std::vector<Credits> RunCbc(const AwardProblem& problem, const std::vector<Column>& columns,
                            const AwardSolution& start, const AwardOptions& options, double* bound,
                            bool* proven) {
  const int column_count = static_cast<int>(columns.size());
  CoinPackedMatrix matrix(false, 0, 0);
  matrix.setDimensions(0, column_count);
  std::vector<double> row_lower;
  std::vector<double> row_upper;
  const auto add_row = [&](const std::vector<int>& indices, const std::vector<double>& values,
                           double lower, double upper) {
    matrix.appendRow(static_cast<int>(indices.size()), indices.data(), values.data());
    row_lower.push_back(lower);
    row_upper.push_back(upper);
  };
  const double infinity = COIN_DBL_MAX;

  // One level per candidate.
  for (size_t first = 0; first < columns.size();) {
    size_t last = first;
    std::vector<int> indices;
    while (last < columns.size() && columns[last].candidate == columns[first].candidate) {
      indices.push_back(static_cast<int>(last++));
    }
    if (indices.size() > 1)
      add_row(indices, std::vector<double>(indices.size(), 1.0), -infinity, 1);
    first = last;
  }
  std::vector<int> all(columns.size());
  std::vector<double> amounts(columns.size());
  for (size_t col = 0; col < columns.size(); ++col) {
    all[col] = static_cast<int>(col);
    amounts[col] = Units(columns[col].amount);
  }
  add_row(all, amounts, -infinity, Units(problem.budget));
  for (size_t inst = 0; inst < problem.institution_room.size(); ++inst) {
    std::vector<int> indices;
    std::vector<double> values;
    double demand = 0;
    for (size_t col = 0; col < columns.size(); ++col) {
      if (problem.candidates[columns[col].candidate].institution == static_cast<int>(inst)) {
        indices.push_back(static_cast<int>(col));
        values.push_back(amounts[col]);
        demand += amounts[col];
      }
    }
    const double room = Units(problem.institution_room[inst]);
    if (!indices.empty() && demand > room) add_row(indices, values, -infinity, room);
  }
  for (size_t floor_idx = 0; floor_idx < problem.floors.size(); ++floor_idx) {
    const double share = static_cast<double>(problem.floors[floor_idx].share_bp) / kBasisPointsFull;
    if (share <= 0) continue;
    std::vector<double> values(columns.size());
    for (size_t col = 0; col < columns.size(); ++col) {
      const bool member = problem.candidates[columns[col].candidate].in_floor[floor_idx];
      values[col] = amounts[col] * ((member ? 1.0 : 0.0) - share);
    }
    add_row(all, values, 0, infinity);
  }

  // CBC minimizes: the objective is negated.
  std::vector<double> objective(columns.size());
  for (size_t col = 0; col < columns.size(); ++col) {
    // In merit x kilo-credits, like the rows; scaled back below.
    objective[col] = -problem.candidates[columns[col].candidate].merit * amounts[col];
  }
  std::vector<double> column_lower(columns.size(), 0.0);
  std::vector<double> column_upper(columns.size(), 1.0);
  // A sponsor's addition has one level, which must be taken.
  for (size_t col = 0; col < columns.size(); ++col) {
    if (problem.candidates[columns[col].candidate].fixed) column_lower[col] = 1.0;
    if (problem.candidates[columns[col].candidate].excluded) column_upper[col] = 0.0;
  }

  OsiClpSolverInterface solver;
  solver.messageHandler()->setLogLevel(0);
  solver.loadProblem(matrix, column_lower.data(), column_upper.data(), objective.data(),
                     row_lower.data(), row_upper.data());
  for (int col = 0; col < column_count; ++col) solver.setInteger(col);

  CbcModel model(solver);
  model.setLogLevel(0);
  model.messageHandler()->setLogLevel(0);
  model.solver()->messageHandler()->setLogLevel(0);
  model.setRandomSeed(1);
  model.setNumberThreads(0);
  model.setMaximumNodes(options.mip_nodes_max);
  model.setMaximumSeconds(options.mip_seconds_max);
  CglKnapsackCover knapsack;
  CglGomory gomory;
  CglClique clique;
  clique.setStarCliqueReport(false);
  clique.setRowCliqueReport(false);
  model.addCutGenerator(&knapsack, -1, "KnapsackCover");
  model.addCutGenerator(&gomory, -1, "Gomory");
  model.addCutGenerator(&clique, -1, "Clique");

  std::vector<double> start_values(columns.size(), 0.0);
  for (size_t col = 0; col < columns.size(); ++col) {
    if (start.awarded[columns[col].candidate] == columns[col].amount) start_values[col] = 1.0;
  }
  model.setBestSolution(start_values.data(), column_count, -start.objective / kCreditsPerUnit,
                        true);
  model.branchAndBound();

  *proven = model.isProvenOptimal();
  *bound = -model.getBestPossibleObjValue() * kCreditsPerUnit;
  std::vector<Credits> awarded;
  const double* best = model.bestSolution();
  if (best == nullptr) return awarded;
  awarded.assign(problem.candidates.size(), Credits::Zero());
  for (size_t col = 0; col < columns.size(); ++col) {
    if (best[col] > 0.5) awarded[columns[col].candidate] = columns[col].amount;
  }
  return awarded;
}

Result<AwardSolution> MipPolicy::Solve(const AwardProblem& problem) const {
  ATRIUM_TRY(ValidateProblem(problem));
  AwardSolution greedy = SolveGreedy(problem);
  const std::vector<Column> columns = MakeColumns(problem);
  if (columns.empty()) {
    greedy.policy = "mip";
    greedy.optimal = true;
    greedy.bound = greedy.objective;
    return greedy;
  }
  if (static_cast<int64_t>(columns.size()) > options_.mip_variables_max) {
    greedy.note = "instance has " + std::to_string(columns.size()) +
                  " variables, above the MIP limit; greedy used";
    return greedy;
  }
  double bound = 0;
  bool proven = false;
  std::vector<Credits> awarded;
  try {
    awarded = RunCbc(problem, columns, greedy, options_, &bound, &proven);
  } catch (const CoinError& error) {
    greedy.note = "CBC failed: " + error.message() + "; greedy used";
    return greedy;
  }
  if (awarded.empty() || !CheckSolution(problem, awarded).ok()) {
    greedy.note = awarded.empty() ? "CBC found no solution; greedy used"
                                  : "CBC's answer failed the exact check; greedy used";
    greedy.bound = std::max(greedy.objective, std::min(greedy.bound, bound));
    return greedy;
  }
  AwardSolution solution;
  solution.awarded = std::move(awarded);
  solution.objective = Objective(problem, solution.awarded);
  solution.policy = "mip";
  if (solution.objective + 1e-9 < greedy.objective && CheckSolution(problem, greedy.awarded).ok()) {
    greedy.note = "CBC's answer was worse than the greedy; greedy used";
    greedy.bound = std::max(greedy.objective, std::min(greedy.bound, bound));
    return greedy;
  }
  solution.bound = proven ? solution.objective : std::max(solution.objective, bound);
  solution.optimal = proven;
  if (!proven) solution.note = "node or time limit reached before optimality was proven";
  return solution;
}

}  // namespace

std::unique_ptr<AwardPolicy> MakeMipPolicy(const AwardOptions& options) {
  return std::make_unique<MipPolicy>(options);
}

}  // namespace atrium::program
