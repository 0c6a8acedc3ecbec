// Synthetic calls for benchmarks, the demo and large tests: a program with one call of
// `proposals` proposals and `reviewers` reviewers, generated from a seed. Deterministic:
// the same options give the same state.
//
//   SyntheticOptions options{.proposals = 5000, .reviewers = 1000, .seed = 7};
//   ATRIUM_ASSIGN_OR_RETURN(ProgramState state, MakeSyntheticCall(options));
//   // the call "synthetic" is closed: assign, review, decide.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"
#include "program/program_state.h"

namespace atrium::program {

struct SyntheticOptions {
  int64_t proposals = 200;
  int64_t reviewers = 60;
  int64_t institutions = 120;
  uint64_t seed = 1;
};

inline constexpr char kSyntheticCall[] = "synthetic";

// A program with a closed call full of submitted proposals.
Result<ProgramState> MakeSyntheticCall(const SyntheticOptions& options);

// Every assignment of `call` gets a review: each proposal has a hidden quality, each
// reviewer a bias (harsh or lenient) and each score a little noise, all from `seed`.
Status SimulateReviews(ProgramState& state, const std::string& call, uint64_t seed, int64_t now_us);

}  // namespace atrium::program
