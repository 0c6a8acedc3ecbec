#include "sim/synthetic.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <numbers>

namespace atrium::sim {
namespace {

// xoshiro256** seeded through splitmix64: small, fast and the same everywhere (the
// standard library's distributions are not, so the distributions are written here).
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : state_) {
      seed += 0x9E3779B97F4A7C15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
      word = z ^ (z >> 31);
    }
  }
  uint64_t Next() {
    const uint64_t result = std::rotl(state_[1] * 5, 7) * 9;
    const uint64_t shifted = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= shifted;
    state_[3] = std::rotl(state_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Normal() {
    const double u1 = 1.0 - Uniform();  // (0, 1]
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
  double Exponential() { return -std::log(1.0 - Uniform()); }
  // An index drawn with the given cumulative weights (last = total).
  size_t Pick(const std::vector<double>& cumulative) {
    const double target = Uniform() * cumulative.back();
    return static_cast<size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), target) -
                               cumulative.begin());
  }

 private:
  uint64_t state_[4];
};

struct SizeTable {
  std::vector<int64_t> chips;
  std::vector<double> cumulative;
};

// Sizes the default node type accepts, weighted: about 80% of jobs at one node or less.
SizeTable MakeSizes(const cluster::Cluster& cluster) {
  const cluster::Pool& pool = cluster.pools()[*cluster.PoolOf(cluster.default_accelerator())];
  const auto& sizes = cluster.node_types()[pool.node_type].allocation_sizes;
  std::vector<int64_t> small;
  if (!sizes.empty()) {
    small.assign(sizes.begin(), sizes.end());
  } else {
    for (int64_t size = 1; size < pool.chips_per_node; size *= 2) small.push_back(size);
  }
  small.push_back(pool.chips_per_node);
  SizeTable table;
  double total = 0;
  auto add = [&](int64_t chips, double weight) {
    table.chips.push_back(chips);
    total += weight;
    table.cumulative.push_back(total);
  };
  // Single chips are the most common request; the rest of the 80% spread evenly.
  add(small[0], 0.30);
  for (size_t idx = 1; idx < small.size(); ++idx) {
    add(small[idx], 0.50 / static_cast<double>(small.size() - 1));
  }
  // Multi-node jobs up to 4,096 chips (or the pool), each size about 0.6x as common.
  const int64_t largest =
      std::min<int64_t>(4096, cluster.pool_chips(*cluster.PoolOf(cluster.default_accelerator())));
  double weight = 0.07;
  for (int64_t chips = int64_t{2} * pool.chips_per_node; chips <= largest; chips *= 2) {
    add(chips, weight);
    weight *= 0.6;
  }
  return table;
}

// The long-queue mix: about 70% single chips, the other sizes below a node 15%, one
// node 8%, and gangs of 2 to 64 nodes (each size about half as common as the last) 7%.
SizeTable MakeLongQueueSizes(const cluster::Cluster& cluster) {
  const uint32_t pool_index = *cluster.PoolOf(cluster.default_accelerator());
  const cluster::Pool& pool = cluster.pools()[pool_index];
  const auto& sizes = cluster.node_types()[pool.node_type].allocation_sizes;
  std::vector<int64_t> small;
  if (!sizes.empty()) {
    small.assign(sizes.begin(), sizes.end());
  } else {
    for (int64_t size = 1; size < pool.chips_per_node; size *= 2) small.push_back(size);
  }
  SizeTable table;
  double total = 0;
  auto add = [&](int64_t chips, double weight) {
    table.chips.push_back(chips);
    total += weight;
    table.cumulative.push_back(total);
  };
  add(small[0], 0.70);
  for (size_t idx = 1; idx < small.size(); ++idx) {
    add(small[idx], 0.15 / static_cast<double>(small.size() - 1));
  }
  add(pool.chips_per_node, 0.08);
  const int64_t largest =
      std::min<int64_t>(int64_t{64} * pool.chips_per_node, cluster.pool_chips(pool_index));
  double weight = 0.035;
  for (int64_t chips = int64_t{2} * pool.chips_per_node; chips <= largest; chips *= 2) {
    add(chips, weight);
    weight *= 0.5;
  }
  return table;
}

}  // namespace

Result<SyntheticMix> ParseSyntheticMix(std::string_view name) {
  if (name == "default") return SyntheticMix::kDefault;
  if (name == "long-queue") return SyntheticMix::kLongQueue;
  return MakeError(ErrorCode::kInvalidArgument,
                   fmt::format("unknown synthetic mix '{}'; known: default, long-queue", name),
                   "mix");
}

Result<Workload> GenerateSynthetic(const cluster::Cluster& cluster,
                                   const SyntheticOptions& options) {
  if (options.jobs < 0 || options.jobs > kSyntheticJobsMax) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("jobs must be from 0 to {}", kSyntheticJobsMax), "synthetic");
  }
  if (!(options.load > 0 && options.load <= 100)) {
    return MakeError(ErrorCode::kInvalidArgument, "load must be above 0", "load");
  }
  if (options.grants < 1) {
    return MakeError(ErrorCode::kInvalidArgument, "at least one grant", "grants");
  }
  const bool long_queue = options.mix == SyntheticMix::kLongQueue;
  if (long_queue &&
      !(options.burst_period_s > 0 && options.burst_fraction > 0 && options.burst_fraction < 1 &&
        options.burst_rate >= 1 && options.burst_rate * options.burst_fraction <= 1)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "bursts need period > 0, 0 < fraction < 1, 1 <= rate <= 1 / fraction",
                     "burst");
  }
  Rng rng(options.seed);
  const SizeTable sizes = long_queue ? MakeLongQueueSizes(cluster) : MakeSizes(cluster);
  std::vector<double> grant_weights;
  double grant_total = 0;
  for (int64_t rank = 1; rank <= options.grants; ++rank) {
    grant_total += 1.0 / std::pow(static_cast<double>(rank), options.zipf_exponent);
    grant_weights.push_back(grant_total);
  }
  Workload workload;
  workload.jobs.reserve(static_cast<size_t>(options.jobs));
  double work_chip_s = 0;
  const double mu = std::log(options.duration_median_s);
  for (int64_t idx = 0; idx < options.jobs; ++idx) {
    sched::JobSpec job;
    job.id = fmt::format("s{:07}", idx);
    job.grant = fmt::format("grant-{:04}", rng.Pick(grant_weights) + 1);
    job.chips = sizes.chips[rng.Pick(sizes.cumulative)];
    const double duration = std::exp(mu + options.duration_sigma * rng.Normal());
    job.duration_s = std::clamp<int64_t>(std::llround(duration), 1, options.duration_max_s);
    const double class_draw = rng.Uniform();
    if (class_draw < options.preemptible_fraction) {
      job.job_class = cluster::JobClass::kPreemptible;
    } else if (job.chips <= 64 &&
               class_draw < options.preemptible_fraction + options.education_fraction) {
      job.job_class = cluster::JobClass::kEducation;
      job.duration_s = std::min<int64_t>(job.duration_s, 86400);
    }
    // Users ask for 1.2x to 3x the run time in 5-minute steps; a few ask too little.
    const double ask = rng.Uniform() < options.killed_fraction ? 0.5 + 0.45 * rng.Uniform()
                                                               : 1.2 + 1.8 * rng.Uniform();
    const auto asked =
        static_cast<int64_t>(std::ceil(static_cast<double>(job.duration_s) * ask / 300.0)) * 300;
    const int64_t walltime_max_s =
        job.job_class == cluster::JobClass::kEducation ? 2 * 86400 : 14 * 86400;
    job.walltime_s = std::clamp<int64_t>(asked, 300, walltime_max_s);
    work_chip_s += static_cast<double>(job.chips) *
                   static_cast<double>(std::min(job.duration_s, job.walltime_s));
    workload.jobs.push_back(std::move(job));
  }
  // Arrivals: a Poisson process thinned by a daily sine; the mean rate spreads the work
  // so that it is `load` of the default pool's capacity.
  const double capacity =
      static_cast<double>(cluster.pool_chips(*cluster.PoolOf(cluster.default_accelerator())));
  const double span_s = work_chip_s / (options.load * capacity);
  const double rate =
      options.jobs > 0 ? static_cast<double>(options.jobs) / std::max(span_s, 1.0) : 1.0;
  const double amplitude = std::clamp(options.diurnal_amplitude, 0.0, 1.0);
  // Long queue: burst_rate x the mean in bursts, the rest spread over the quiet part.
  const double quiet_rate =
      (1.0 - options.burst_fraction * options.burst_rate) / (1.0 - options.burst_fraction);
  const double rate_max = long_queue ? rate * options.burst_rate : rate * (1.0 + amplitude);
  const auto period = static_cast<double>(options.burst_period_s);
  double now = 0;
  for (sched::JobSpec& job : workload.jobs) {
    while (true) {
      now += rng.Exponential() / rate_max;
      double intensity = 0;
      if (long_queue) {
        const bool burst = std::fmod(now, period) < options.burst_fraction * period;
        intensity = rate * (burst ? options.burst_rate : quiet_rate);
      } else {
        const double phase = 2.0 * std::numbers::pi * std::fmod(now, 86400.0) / 86400.0;
        intensity = rate * (1.0 - amplitude * std::cos(phase));
      }
      if (rng.Uniform() * rate_max < intensity) break;
    }
    job.submit_s = static_cast<int64_t>(now);
  }
  return workload;
}

}  // namespace atrium::sim
