// One scheduling pass on the 40,000-chip research cluster (research-40k.toml's shape),
// 90% busy, with 100,000 jobs waiting. BM_PassFresh times the first pass over a freshly
// built state (it starts what fits in the free 10% and makes the reservations);
// BM_PassSteady times the passes after it, where nothing has changed (skipped);
// BM_PassChurn times a full pass after one submission and one run's end, with the
// queue at 100,000 (what a pass costs in a long queue, every time something changes).
//
//   build/release/src/sched/sched_benchmark --benchmark_repetitions=10
//       --benchmark_report_aggregates_only=true   (one command line)
#include <benchmark/benchmark.h>

#include <memory>
#include <random>

#include "sched/scheduler.h"

namespace atrium::sched {
namespace {

cluster::Cluster Research40k() {
  cluster::ClusterBuilder builder("research-40k");
  const uint32_t accel =
      builder.AddAccelerator({.name = "trn1", .price_per_chip_hour = *Credits::Parse("1.34375")});
  const uint32_t type = builder.AddNodeType(
      {.name = "trn1.32xlarge", .accelerator = accel, .chips = 16, .allocation_sizes = {1, 4, 8}});
  (void)builder.AddPool("trn", type, 2500, 4, 25);
  return *std::move(builder).Build();
}

int64_t DrawChips(std::mt19937_64& rng) {
  static constexpr int64_t kSizes[] = {1, 1, 1, 4, 4, 8, 8, 16, 16, 16, 32, 64, 128, 256, 1024};
  return kSizes[rng() % std::size(kSizes)];
}

struct State {
  State(const cluster::Cluster& cluster, std::string_view policy) {
    scheduler = std::make_unique<Scheduler>(cluster, ledger, *MakePolicy(policy));
    for (int grant = 0; grant < 200; ++grant) {
      (void)scheduler->AddGrant("g" + std::to_string(grant), Credits::FromWhole(1'000'000'000), 1.0,
                                cluster::JobClass::kResearch, 0);
    }
    std::mt19937_64 rng(42);
    int64_t submitted = 0;
    int job_index = 0;
    // 90% busy: start jobs until 36,000 chips run.
    while (submitted < 36'000) {
      const int64_t chips = std::min<int64_t>(DrawChips(rng), 36'000 - submitted);
      const int64_t size = chips >= 16 ? chips / 16 * 16 : (chips >= 8 ? 8 : (chips >= 4 ? 4 : 1));
      Submit(rng, job_index++, size, 0);
      submitted += size;
    }
    (void)scheduler->Pass(0);
    for (int waiting = 0; waiting < kWaiting; ++waiting) {
      Submit(rng, job_index++, DrawChips(rng), 1);
    }
    next_index = job_index;
  }
  static constexpr int kWaiting = 100'000;
  int next_index = 0;
  void Submit(std::mt19937_64& rng, int index, int64_t chips, int64_t now_s) {
    const int64_t walltime_s = 600 + static_cast<int64_t>(rng() % (uint64_t{48} * 3600));
    scheduler->Submit({.id = "j" + std::to_string(index),
                       .grant = "g" + std::to_string(rng() % 200),
                       .job_class = rng() % 10 == 0 ? cluster::JobClass::kPreemptible
                                                    : cluster::JobClass::kResearch,
                       .chips = chips,
                       .submit_s = now_s,
                       .duration_s = walltime_s,
                       .walltime_s = walltime_s},
                      now_s);
  }
  ledger::Ledger ledger;
  std::unique_ptr<Scheduler> scheduler;
};

void BM_PassFresh(benchmark::State& bench) {
  const cluster::Cluster cluster = Research40k();
  size_t started = 0;
  for (auto _ : bench) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the library's idiom
    bench.PauseTiming();
    auto state = std::make_unique<State>(cluster, "fairshare");
    bench.ResumeTiming();
    const PassResult result = state->scheduler->Pass(2);
    bench.PauseTiming();
    started = result.started.size();
    state.reset();
    bench.ResumeTiming();
  }
  bench.counters["started"] = static_cast<double>(started);
}
BENCHMARK(BM_PassFresh)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_PassSteady(benchmark::State& bench) {
  const cluster::Cluster cluster = Research40k();
  State state(cluster, bench.range(0) == 0 ? "fairshare" : "fairshare+preempt");
  (void)state.scheduler->Pass(2);
  int64_t now_s = 3;
  for (auto _ : bench) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the library's idiom
    benchmark::DoNotOptimize(state.scheduler->Pass(now_s++));
  }
  bench.counters["waiting"] = static_cast<double>(state.scheduler->waiting_count());
  bench.counters["busy_chips"] = static_cast<double>(state.scheduler->busy_chips());
}
BENCHMARK(BM_PassSteady)->Unit(benchmark::kMillisecond)->Arg(0)->Arg(1);

void BM_PassChurn(benchmark::State& bench) {
  const cluster::Cluster cluster = Research40k();
  State state(cluster, bench.range(0) == 0 ? "fairshare" : "backfill");
  Scheduler& sched = *state.scheduler;
  (void)sched.Pass(2);
  std::mt19937_64 rng(7);
  int64_t now_s = 3;
  for (auto _ : bench) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the library's idiom
    bench.PauseTiming();
    // One run ends (the job started first) and one job arrives.
    for (JobId id = 0; id < sched.job_count(); ++id) {
      if (sched.job(id).state == JobState::kRunning) {
        sched.Finish(id, std::max(now_s, sched.job(id).run_start_s), RunEnd::kCompleted);
        break;
      }
    }
    state.Submit(rng, state.next_index++, DrawChips(rng), now_s);
    bench.ResumeTiming();
    benchmark::DoNotOptimize(sched.Pass(now_s++));
  }
  bench.counters["waiting"] = static_cast<double>(sched.waiting_count());
  bench.counters["busy_chips"] = static_cast<double>(sched.busy_chips());
}
BENCHMARK(BM_PassChurn)->Unit(benchmark::kMillisecond)->Arg(0)->Arg(1)->Iterations(200);

}  // namespace
}  // namespace atrium::sched
