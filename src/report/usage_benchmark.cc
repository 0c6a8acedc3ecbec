// The usage report over 1,000,000 runs: a one-year range at daily steps, total and
// grouped (the target: under 200 ms per report). Runs are seeded and spread over the
// year, 1-64 chips, up to 2 days long, over 2,000 grants and 40 institutions.
#include <benchmark/benchmark.h>

#include <random>

#include "report/usage.h"

namespace atrium::report {
namespace {

constexpr int64_t kYear_s = 365 * 86'400;

const UsageIndex& MillionRuns() {
  static const UsageIndex index = [] {
    UsageIndex built(40'000);
    std::mt19937_64 random(20261130);
    std::vector<std::string> grants, institutions;
    for (int i = 0; i < 2'000; ++i) grants.push_back("G-" + std::to_string(i));
    for (int i = 0; i < 40; ++i) institutions.push_back("inst-" + std::to_string(i));
    const char* accelerators[] = {"trn2", "trn1", "h100"};
    const char* partitions[] = {"research", "education", "preemptible"};
    for (int i = 0; i < 1'000'000; ++i) {
      UsageRunInput run;
      run.grant = grants[random() % grants.size()];
      run.institution = institutions[random() % institutions.size()];
      run.field = "field-" + std::to_string(random() % 12);
      run.accelerator = accelerators[random() % 3];
      run.partition = partitions[random() % 3];
      run.chips = int64_t{1} << (random() % 7);
      run.submit_s = static_cast<int64_t>(random() % kYear_s);
      run.start_s = run.submit_s + static_cast<int64_t>(random() % 7'200);
      run.end_s = run.start_s + 60 + static_cast<int64_t>(random() % (2 * 86'400));
      run.cost_micro = run.chips * (run.end_s - run.start_s) * 373;
      built.Add(run);
    }
    return built;
  }();
  return index;
}

void BM_UsageYearDaily(benchmark::State& state) {
  const UsageIndex& index = MillionRuns();
  UsageQuery query{.from_s = 0,
                   .to_s = kYear_s,
                   .step_s = 86'400,
                   .group_by = static_cast<UsageGroup>(state.range(0))};
  size_t bytes = 0;
  for (auto _ : state) {
    auto report = index.Report(query, {});
    if (!report.ok()) state.SkipWithError(report.error().message.c_str());
    // What the service does with it: the JSON text.
    bytes = report->dump().size();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["runs"] = static_cast<double>(index.run_count());
  state.counters["answer_bytes"] = static_cast<double>(bytes);
  state.SetLabel(std::string(ToString(query.group_by)));
}
BENCHMARK(BM_UsageYearDaily)
    ->Arg(static_cast<int>(UsageGroup::kNone))
    ->Arg(static_cast<int>(UsageGroup::kGrant))
    ->Arg(static_cast<int>(UsageGroup::kInstitution))
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace atrium::report
