// The usage report of the service's state (`GET /v1/usage`): the runs of the jobs in
// core::AppState, labelled with their grant, the grant's institution, the field (the
// proposal's first topic), the accelerator type and the partition of the job's class.
//
// AppUsage keeps a UsageIndex of the runs of jobs that have ended (they never change) and
// a list of the jobs still waiting or running; each report first indexes what ended since
// the last one, then adds the open jobs' runs as of the state's time. The first report
// over a large state reads every job once; later ones read only new and open jobs.
//
// Thread-safe (one report at a time). It remembers the AppState it read: a report over a
// different state (another server in the same process) starts over.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "core/app_state.h"
#include "report/usage.h"

namespace atrium::report {

class AppUsage {
 public:
  Result<nlohmann::json> Report(const core::AppState& app, const UsageQuery& query);

  // The process's instance, for the API's read (a ReadFn is a plain function).
  static AppUsage& Shared();

 private:
  void CatchUp(const core::AppState& app);
  UsageRunInput LabelsOf(const core::AppState& app, const core::JobRecord& record) const;

  std::mutex mutex_;
  const core::AppState* app_ = nullptr;
  UsageIndex index_;
  std::string last_job_;  // the last job id read (ids order as core::ShortLexLess)
  std::set<std::string, core::ShortLexLess> open_;  // waiting or running when last read
};

}  // namespace atrium::report
