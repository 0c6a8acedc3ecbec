// The award decision as an optimization problem, and the policies that solve it.
//
// Each candidate proposal may be declined or funded at one of its `levels`: amounts in
// increasing order whose last is the full request (all-or-nothing tracks have one
// level; tracks with partial awards have the floor and steps up to the request). A
// candidate funded with amount a (in credits) contributes merit x a to the objective:
// total merit-weighted credits, so each credit goes to the best work it can reach.
// A solution must keep, in exact integer arithmetic:
//   - the total of all awards <= budget;
//   - per institution: its awards <= institution_room (what its cap leaves);
//   - per fairness floor: awards to the floor's members >= share_bp of the total.
// The all-declined solution is always feasible, so every instance has an optimum, unless
// candidates are fixed in (sponsor additions, which must be funded in full): then the
// caller checks that the fixed awards fit before solving, and the answer is re-checked.
//
// Policies are built by name: "mip" (an exact mixed-integer program solved with
// COIN-OR CBC, which falls back to "greedy" beyond its size or node limits and reports
// the gap) and "greedy" (rank order with floors first; its gap is reported against an
// upper bound). Both are deterministic: the same problem gives the same solution.
//
//   ATRIUM_ASSIGN_OR_RETURN(auto policy, MakeAwardPolicy("mip", {}));
//   ATRIUM_ASSIGN_OR_RETURN(AwardSolution solution, policy->Solve(problem));
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/credits.h"
#include "base/error.h"
#include "program/model.h"

namespace atrium::program {

struct AwardCandidate {
  std::string id;
  double merit = 0;  // >= 0
  Credits requested;
  std::vector<Credits> levels;  // ascending, > 0, last == requested
  int institution = -1;         // index into AwardProblem::institution_room; -1: uncapped
  std::vector<bool> in_floor;   // one per floor
  // Fixed in (a sponsor's addition): must be funded at its full request; its only level
  // is the request.
  bool fixed = false;
  // Excluded (a sponsor's veto): stays in the ranking but may not be funded.
  bool excluded = false;
};

struct AwardFloor {
  std::string name;
  int64_t share_bp = 0;
};

struct AwardProblem {
  std::vector<AwardCandidate> candidates;  // in rank order (best merit first, then id)
  Credits budget;
  std::vector<Credits> institution_room;
  std::vector<AwardFloor> floors;
};

struct AwardSolution {
  std::vector<Credits> awarded;  // one per candidate; zero = declined
  std::string policy;            // the policy that produced these awards
  double objective = 0;
  double bound = 0;  // an upper bound on the optimum
  bool optimal = false;
  std::string note;  // why a fallback happened, if one did
  double gap() const { return bound > 0 ? (bound - objective) / bound : 0; }
};

// The solver's answers of one command, journaled with it (docs/journal.md, "Results, not
// requests to recompute"): when a command that drafts awards first applies, each solve
// is recorded with the SHA-256 of its problem; when the journal is replayed, the command
// carries them and each solve takes the next one instead of running the solver again,
// after checking that it answers the same problem. A replay then costs no CBC time and
// cannot depend on a solver's safety-net time limit.
struct SolverTapeEntry {
  std::string problem_sha256;  // ProblemDigest of the problem it answers
  AwardSolution solution;
};
struct SolverTape {
  bool replaying = false;                // take answers from `entries` (else record them)
  std::vector<SolverTapeEntry> entries;  // recorded, or given for the replay
  size_t next = 0;                       // the next entry a replay takes
};

struct AwardOptions {
  // CBC stops after this many branch-and-bound nodes (a node limit keeps runs
  // deterministic, where a time limit would not) and the greedy answer stands if better.
  int mip_nodes_max = 1'000;
  // Beyond this many binary variables the MIP is not attempted: the greedy answers.
  int mip_variables_max = 60'000;
  // A safety net only: a run that reaches it is reported as not optimal.
  double mip_seconds_max = 8.0;
  // Where solves are recorded or replayed from; none: always solve.
  SolverTape* tape = nullptr;
};

class AwardPolicy {
 public:
  virtual ~AwardPolicy() = default;
  virtual std::string_view name() const = 0;
  virtual Result<AwardSolution> Solve(const AwardProblem& problem) const = 0;
};

// The SHA-256 (hex) of a problem's every field, merits by their exact bits.
std::string ProblemDigest(const AwardProblem& problem);

// policy.Solve(problem), recorded on `tape` or, when the tape replays, its next answer
// after checking that it was given for this problem (kInvariantViolated if the tape has
// no answer left or its answer is for another problem). No tape: solves.
Result<AwardSolution> SolveOnTape(const AwardPolicy& policy, const AwardProblem& problem,
                                  SolverTape* tape);

// "mip" or "greedy"; kInvalidArgument for another name.
Result<std::unique_ptr<AwardPolicy>> MakeAwardPolicy(std::string_view name,
                                                     const AwardOptions& options);

// Structural checks of a problem (levels ascending and ending at the request, ...).
Status ValidateProblem(const AwardProblem& problem);
// Every constraint, exactly; kCapExceeded / kOverBudget / kInvalidArgument say which.
Status CheckSolution(const AwardProblem& problem, const std::vector<Credits>& awarded);
double Objective(const AwardProblem& problem, const std::vector<Credits>& awarded);
// The fractional-knapsack bound: budget only, any fraction of any request.
double UpperBound(const AwardProblem& problem);
// Share of `total` in basis points, rounded down (0 when total is zero).
int64_t ShareBp(Credits part, Credits total);

// The greedy, usable directly by other policies as a starting point.
AwardSolution SolveGreedy(const AwardProblem& problem);

}  // namespace atrium::program
