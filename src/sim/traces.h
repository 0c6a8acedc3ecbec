// Readers that turn public cluster traces into Atrium's workload (docs/traces.md gives
// each mapping in full). Common rules: submit_s is seconds after the trace's earliest
// submission; jobs that used no accelerator, never started, or lack times are skipped
// (counted in `skipped`); the traces record no walltime request, so walltime_s is the
// run time rounded up to the next whole hour, as users typically ask; accelerator and
// class are left empty (the cluster's default type, research).
//
//   Microsoft Philly   cluster_job_log (JSON)                 grant = vc
//   SenseTime Helios   cluster_log.csv                        grant = vc, else user
//   Alibaba PAI 2020   pai_job_table.csv + pai_task_table.csv grant = user
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"
#include "sim/workload.h"

namespace atrium::sim {

struct TraceImport {
  Workload workload;
  int64_t skipped = 0;
};

// The walltime the readers give a job that ran `duration_s`.
int64_t WalltimeFor(int64_t duration_s);

Result<TraceImport> ParsePhilly(std::string_view json_text, std::string_view source_name);
Result<TraceImport> ParseHelios(std::string_view csv_text, std::string_view source_name);
Result<TraceImport> ParsePai(std::string_view job_table, std::string_view task_table,
                             std::string_view source_name);

// By format name: "philly", "helios", "pai" (pai needs `second_path`: the task table).
Result<TraceImport> ReadPublicTrace(std::string_view format, const std::string& path,
                                    const std::string& second_path);

}  // namespace atrium::sim
