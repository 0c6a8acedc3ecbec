// Workloads: the jobs a simulation replays, and the grants that pay for them.
//
// The trace format is the contract (docs/traces.md): CSV with a header,
//   job_id,submit_s,chips,duration_s,walltime_s,grant,accelerator,class
// columns found by name (extra columns are ignored), `accelerator` and `class` may be
// empty (the cluster's default type; research). A malformed row is an error naming the
// file, line and column; a well-formed row the cluster cannot take (negative chips, an
// unknown accelerator, too many chips) is kept and later rejected with its reason.
// The grants file is CSV `grant,credits,class`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/credits.h"
#include "base/error.h"
#include "cluster/cluster.h"
#include "sched/job.h"

namespace atrium::sim {

// Bounds on input files: larger ones are refused, not slowly swallowed.
inline constexpr size_t kTraceBytesMax = size_t{4} << 30;
inline constexpr size_t kTraceJobsMax = 50'000'000;

struct Workload {
  std::vector<sched::JobSpec> jobs;
};

struct GrantSpec {
  std::string name;
  Credits credits;
  cluster::JobClass default_class = cluster::JobClass::kResearch;
};

Result<Workload> ParseTrace(std::string_view text, std::string_view source_name);
Result<Workload> ReadTraceFile(const std::string& path);
// The trace format; ParseTrace(FormatTrace(w)) gives w back.
std::string FormatTrace(const Workload& workload);
Status WriteTraceFile(const Workload& workload, const std::string& path);

Result<std::vector<GrantSpec>> ParseGrants(std::string_view text, std::string_view source_name);
Result<std::vector<GrantSpec>> ReadGrantsFile(const std::string& path);

}  // namespace atrium::sim
