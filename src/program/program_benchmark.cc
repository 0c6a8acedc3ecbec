// Micro-benchmarks of the program's heavy steps on a synthetic call of 5,000 proposals
// and 1,000 reviewers (the targets: assignment < 2 s, decision < 10 s). Run in
// the release preset: build/release/src/program/program_benchmark
#include <benchmark/benchmark.h>

#include "program/synthetic.h"

namespace atrium::program {
namespace {

constexpr int64_t kDayUs = kMicrosPerDay;

SyntheticOptions Options(const benchmark::State& bench) {
  return {.proposals = bench.range(0), .reviewers = bench.range(1), .institutions = 300, .seed = 7};
}

void BM_AssignReviewers(benchmark::State& bench) {
  for (auto _ : bench) {
    bench.PauseTiming();
    ProgramState state = std::move(MakeSyntheticCall(Options(bench))).value();
    bench.ResumeTiming();
    auto stats = state.AssignReviewers(kSyntheticCall, 41 * kDayUs);
    if (!stats.ok()) bench.SkipWithError("assignment failed");
    benchmark::DoNotOptimize(stats);
  }
}
BENCHMARK(BM_AssignReviewers)->Args({5000, 1000})->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_DraftDecision(benchmark::State& bench) {
  ProgramState state = std::move(MakeSyntheticCall(Options(bench))).value();
  if (!state.AssignReviewers(kSyntheticCall, 41 * kDayUs).ok() ||
      !SimulateReviews(state, kSyntheticCall, 7, 50 * kDayUs).ok()) {
    bench.SkipWithError("setup failed");
    return;
  }
  const std::string policy = bench.range(2) == 0 ? "greedy" : "mip";
  AwardOptions options;
  if (bench.range(2) > 0) options.mip_nodes_max = static_cast<int>(bench.range(2));
  for (auto _ : bench) {
    auto decision = state.DraftDecision(kSyntheticCall, 75 * kDayUs, policy, options);
    if (!decision.ok()) {
      bench.SkipWithError("decision failed");
      return;
    }
    bench.counters["gap"] = decision->gap;
    bench.counters["optimal"] = decision->optimal ? 1 : 0;
    bench.counters["funded_credits"] = static_cast<double>(decision->total_awarded.micro()) / 1e6;
  }
}
BENCHMARK(BM_DraftDecision)
    ->Args({5000, 1000, 0})     // greedy
    ->Args({5000, 1000, 1000})  // mip with its default node limit
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);

}  // namespace
}  // namespace atrium::program
