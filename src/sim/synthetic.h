// A synthetic workload, deterministic by seed: the same options give the same jobs, byte
// for byte, on any run. Heavy-tailed sizes (mostly 1 to 16 chips, some 64 to 4,096, in the
// sizes the cluster's default node type accepts), log-normal durations, diurnal arrivals
// (a daily sine around the mean rate), grants with Zipf-like activity, and arrivals
// spread so that the offered load (chip-seconds asked / chip-seconds available over the
// arrival span) is the target.
//
// The long-queue mix (`mix = kLongQueue`) keeps the queue long, like a busy research
// cluster: mostly single-chip jobs (about 70%) with a tail of gangs up to 64 nodes, and
// arrivals in bursts: for `burst_fraction` of every `burst_period_s` the arrival rate is
// `burst_rate` times the mean (offered load above 1: thousands of jobs wait for days),
// lower in between, so that the mean offered load is still `load`.
//
//   SyntheticOptions options{.jobs = 1000, .load = 0.9, .seed = 7};
//   Result<Workload> workload = GenerateSynthetic(cluster, options);
#pragma once

#include <cstdint>
#include <string_view>

#include "base/error.h"
#include "cluster/cluster.h"
#include "sim/workload.h"

namespace atrium::sim {

enum class SyntheticMix : uint8_t { kDefault, kLongQueue };

struct SyntheticOptions {
  int64_t jobs = 1000;
  double load = 0.9;
  uint64_t seed = 1;
  int64_t grants = 200;
  double zipf_exponent = 1.1;
  // Daily swing of the arrival rate around its mean (0 = flat, 1 = none at night).
  double diurnal_amplitude = 0.5;
  double duration_median_s = 1200;
  double duration_sigma = 1.5;
  int64_t duration_max_s = int64_t{7} * 86400;
  // Jobs that outrun their walltime and are killed.
  double killed_fraction = 0.03;
  double preemptible_fraction = 0.08;
  double education_fraction = 0.12;  // of the jobs small enough for education
  SyntheticMix mix = SyntheticMix::kDefault;
  // Long-queue mix only.
  int64_t burst_period_s = int64_t{3} * 86400;
  double burst_fraction = 0.3;
  double burst_rate = 2.0;  // times the mean rate; at most 1 / burst_fraction
};

// "default" or "long-queue"; kInvalidArgument otherwise.
Result<SyntheticMix> ParseSyntheticMix(std::string_view name);

inline constexpr int64_t kSyntheticJobsMax = 50'000'000;

Result<Workload> GenerateSynthetic(const cluster::Cluster& cluster,
                                   const SyntheticOptions& options);

}  // namespace atrium::sim
