// Usage reporting (XDMoD-like): chip-hours, credits, jobs, waits and utilisation per time
// step, optionally split by grant, institution, field, accelerator type or partition.
// One report for the service (`GET /v1/usage`, `atrium usage`) and the simulator
// (usage.json), so a what-if and production compare side by side.
//
// A UsageIndex holds runs bucketed by the day their run started, so a report touches
// only the buckets its range can reach (a run overlaps the range only if it started at
// most `longest run` before it). Adding a run is O(log days); a report is linear in the
// runs it touches. Labels (grant ids, institution ids, ...) are interned once.
//
// How a run is counted in a report:
//   chip-hours  split over the steps the run overlaps, by overlap;
//   credits     in the step in which the run ended (when the ledger posted its cost);
//               integer micro-credits, formatted as decimal strings;
//   jobs, waits in the step in which the job first started (wait = first start - submit);
//               a job's later runs (after preemption) add chip-hours and credits only;
//   utilisation busy chip-seconds of the step / (chips_total x step length).
//
//   UsageIndex index(/*chips_total=*/4096);
//   index.Add({.grant = "G-1", ..., .chips = 64, .submit_s = 0, .start_s = 60, .end_s = 3660,
//              .cost_micro = 86'000'000, .first_run = true});
//   ATRIUM_ASSIGN_OR_RETURN(UsageQuery query, ParseUsageQuery(params, now_s));
//   nlohmann::json report = index.Report(query, /*extra=*/{});
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace atrium::sched {
class Scheduler;
struct Job;
}  // namespace atrium::sched

namespace atrium::report {

enum class UsageGroup : uint8_t { kNone, kGrant, kInstitution, kField, kAccelerator, kPartition };
inline constexpr int kUsageGroupCount = 6;
std::string_view ToString(UsageGroup group);

// One run of a job as a report sees it. Labels may be empty ("(none)").
struct UsageRunInput {
  std::string grant;
  std::string institution;
  std::string field;
  std::string accelerator;
  std::string partition;
  int64_t chips = 0;
  int64_t submit_s = 0;
  int64_t start_s = 0;
  int64_t end_s = 0;  // >= start_s
  int64_t cost_micro = 0;
  bool first_run = true;  // counts the job and its wait
};

struct UsageQuery {
  int64_t from_s = 0;  // inclusive
  int64_t to_s = 0;    // exclusive
  int64_t step_s = 86'400;
  UsageGroup group_by = UsageGroup::kNone;
  size_t series_max = 8;  // groups that also get a per-step chip-hours series
};

// Bounds on a report's work and size.
inline constexpr int64_t kUsageStepsMax = 20'000;  // 54 years of days, 2 years of hours
inline constexpr int64_t kUsageStepMinS = 60;      // finer steps are noise
inline constexpr size_t kUsageGroupsMax = 1'000;   // groups listed (largest first)
inline constexpr size_t kUsageSeriesMax = 50;      // groups with a per-step series
inline constexpr int64_t kUsageDefaultRangeS = int64_t{30} * 86'400;

// Parses and checks ?from=&to=&step=&group_by=&series= (every error is
// kInvalidArgument naming the parameter; an unknown parameter is an error too).
// from/to: unix seconds or an ISO 8601 UTC date or date-time ("2026-11-01",
// "2026-11-01T12:00:00Z"); defaults: to = now_s rounded up to the step, from = to - 30
// days. step: seconds, or a number with s, m, h, d or w ("1d"), or hour|day|week;
// default 1d. group_by: grant|institution|field|accelerator|partition (default none).
Result<UsageQuery> ParseUsageQuery(const std::multimap<std::string, std::string>& params,
                                   int64_t now_s);

// "2026-11-01T00:00:00Z"
std::string FormatUtc(int64_t unix_s);

// (bugprone-reserved-identifier: clang-tidy reads the loop variable of the implicit copy of
// the array members below, `__i0`, as a declaration of ours.)
class UsageIndex {  // NOLINT(bugprone-reserved-identifier)
 public:
  explicit UsageIndex(int64_t chips_total = 0) : chips_total_(chips_total) {}

  void set_chips_total(int64_t chips) { chips_total_ = chips; }
  int64_t chips_total() const { return chips_total_; }
  size_t run_count() const { return run_count_; }

  void Add(const UsageRunInput& run);

  // The report over the indexed runs plus `extra` (runs still in progress, which the
  // caller rebuilds for each report). Money sums are checked; a sum beyond int64 is
  // kOverflow.
  Result<nlohmann::json> Report(const UsageQuery& query,
                                const std::vector<UsageRunInput>& extra) const;

 private:
  struct Run {
    uint32_t labels[kUsageGroupCount - 1];  // interned, indexed by UsageGroup - 1
    int32_t chips;
    int64_t submit_s;
    int64_t start_s;
    int64_t end_s;
    int64_t cost_micro;
    bool first_run;
  };
  static constexpr int64_t kBucketS = 86'400;

  Run Intern(const UsageRunInput& run);
  uint32_t InternLabel(int dimension, const std::string& label);

  int64_t chips_total_ = 0;
  size_t run_count_ = 0;
  int64_t longest_run_s_ = 0;
  std::map<int64_t, std::vector<Run>> buckets_;  // start day -> runs
  std::vector<std::string> names_[kUsageGroupCount - 1];
  std::map<std::string, uint32_t, std::less<>> ids_[kUsageGroupCount - 1];
};

// Appends the runs of one scheduler job as of now_s (a running job's current run ends at
// now_s). The scheduler keeps a job's last run exactly and the total time of the runs
// before it, which become one run from the job's first start. Nothing for a job that
// never started.
void AppendJobRuns(const sched::Scheduler& scheduler, const sched::Job& job, int64_t now_s,
                   UsageRunInput labels, std::vector<UsageRunInput>* out);

// The runs of a scheduler's jobs (the simulator's): labels are the grant, its default
// partition and the accelerator; institution and field are unknown there ("").
UsageIndex UsageFromScheduler(const sched::Scheduler& scheduler);

// Writes the simulator's usage.json (the whole run at daily steps, or hourly when it
// spans under two days; grouped by grant), as PATH.partial renamed into place.
Status WriteSimulationUsage(const sched::Scheduler& scheduler, const std::string& path);

}  // namespace atrium::report
