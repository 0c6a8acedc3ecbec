// Writers for the simulation's output contract (docs/simulate.md):
//   DIR/jobs.csv     job_id,grant,class,accelerator,chips,submit_s,start_s,end_s,state,
//                    placement,reason
//   DIR/runs.csv     job_id,run,start_s,end_s,placement,ended_by
//   DIR/summary.json the Summary
// Every file is written as NAME.partial and renamed into place only when the run has
// finished, so a run that fails never leaves a half-written output behind.
#pragma once

#include <fstream>
#include <string>

#include "absl/types/span.h"
#include "base/error.h"
#include "sim/metrics.h"
#include "sim/simulator.h"

namespace atrium::sim {

// "node:chips" pairs joined by ';'.
std::string FormatPlacement(const cluster::Cluster& cluster,
                            absl::Span<const sched::Alloc> placement);

class OutputWriter final : public RunObserver {
 public:
  // Creates DIR if needed and opens runs.csv.partial.
  static Result<std::unique_ptr<OutputWriter>> Open(const std::string& dir);
  ~OutputWriter() override;

  void OnRun(const sched::Scheduler& scheduler, const RunRecord& run) override;
  // Writes jobs.csv and summary.json and moves all three files into place.
  Status Finish(const Simulator& simulator, const Summary& summary);

 private:
  explicit OutputWriter(std::string dir) : dir_(std::move(dir)) {}
  Status FlushRuns();

  std::string dir_;
  std::ofstream runs_;
  std::string buffer_;
};

}  // namespace atrium::sim
