#include "sim/output.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <filesystem>
#include <memory>

#include "report/usage.h"

namespace atrium::sim {
namespace {

constexpr size_t kBufferBytesMax = 1 << 20;

Status WriteWhole(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) return MakeError(ErrorCode::kIoError, "cannot write " + path);
  return OkStatus();
}

}  // namespace

std::string FormatPlacement(const cluster::Cluster& cluster,
                            absl::Span<const sched::Alloc> placement) {
  std::string out;
  for (const sched::Alloc& alloc : placement) {
    if (!out.empty()) out.push_back(';');
    fmt::format_to(std::back_inserter(out), "{}:{}", cluster.nodes()[alloc.node].name,
                   std::popcount(alloc.mask));
  }
  return out;
}

Result<std::unique_ptr<OutputWriter>> OutputWriter::Open(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error)
    return MakeError(ErrorCode::kIoError,
                     fmt::format("cannot create {}: {}", dir, error.message()));
  std::unique_ptr<OutputWriter> writer(new OutputWriter(dir));
  writer->runs_.open(dir + "/runs.csv.partial", std::ios::binary | std::ios::trunc);
  if (!writer->runs_)
    return MakeError(ErrorCode::kIoError, "cannot write " + dir + "/runs.csv.partial");
  writer->buffer_ = "job_id,run,start_s,end_s,placement,ended_by\n";
  return writer;
}

OutputWriter::~OutputWriter() = default;

void OutputWriter::OnRun(const sched::Scheduler& scheduler, const RunRecord& run) {
  const sched::Job& job = scheduler.job(run.job);
  fmt::format_to(std::back_inserter(buffer_), "{},{},{},{},{},{}\n", job.id, run.run, run.start_s,
                 run.end_s, FormatPlacement(scheduler.cluster(), job.placement),
                 sched::ToString(run.ended_by));
  if (buffer_.size() >= kBufferBytesMax) (void)FlushRuns();
}

Status OutputWriter::FlushRuns() {
  runs_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  buffer_.clear();
  if (!runs_) return MakeError(ErrorCode::kIoError, "cannot write " + dir_ + "/runs.csv.partial");
  return OkStatus();
}

Status OutputWriter::Finish(const Simulator& simulator, const Summary& summary) {
  ATRIUM_TRY(FlushRuns());
  runs_.close();
  if (!runs_) return MakeError(ErrorCode::kIoError, "cannot write " + dir_ + "/runs.csv.partial");
  const sched::Scheduler& sched = simulator.scheduler();
  const cluster::Cluster& cluster = sched.cluster();
  std::ofstream jobs(dir_ + "/jobs.csv.partial", std::ios::binary | std::ios::trunc);
  std::string text =
      "job_id,grant,class,accelerator,chips,submit_s,start_s,end_s,state,placement,reason\n";
  for (sched::JobId id = 0; id < sched.job_count(); ++id) {
    const sched::Job& job = sched.job(id);
    std::string grant;
    std::string accelerator;
    int64_t chips = job.shape.chips;
    if (const Simulator::Asked* asked = simulator.AskedOf(id)) {
      grant = asked->grant;
      accelerator = asked->accelerator;
      chips = asked->chips;
    } else {
      grant = sched.grants()[job.grant].name;
      accelerator = cluster.accelerators()[cluster.pools()[job.shape.pool].accelerator].name;
    }
    std::string_view state = sched::ToString(job.state);
    std::string reason;
    if (job.state == sched::JobState::kRejected) {
      reason = fmt::format("{}: {}", ToString(job.reason), sched.rejection_text(id));
    } else if (job.state == sched::JobState::kPending || job.state == sched::JobState::kRunning) {
      // The run ended with the job never finished: no resources or credits ever came.
      state = "rejected";
      reason = job.reason == ErrorCode::kInsufficientCredits
                   ? "insufficient_credits: its grant could not hold its cost"
                   : "unfinished: never placed before the workload ended";
    }
    std::replace(reason.begin(), reason.end(), ',', ';');
    const std::string start = job.first_start_s >= 0 ? std::to_string(job.first_start_s) : "";
    const std::string end =
        job.end_s >= 0 && job.state != sched::JobState::kRejected ? std::to_string(job.end_s) : "";
    fmt::format_to(std::back_inserter(text), "{},{},{},{},{},{},{},{},{},{},{}\n", job.id, grant,
                   cluster::ToString(job.job_class), accelerator, chips, job.submit_s, start, end,
                   state, job.runs > 0 ? FormatPlacement(cluster, job.placement) : "", reason);
    if (text.size() >= kBufferBytesMax) {
      jobs.write(text.data(), static_cast<std::streamsize>(text.size()));
      text.clear();
    }
  }
  jobs.write(text.data(), static_cast<std::streamsize>(text.size()));
  jobs.close();
  if (!jobs) return MakeError(ErrorCode::kIoError, "cannot write " + dir_ + "/jobs.csv.partial");
  ATRIUM_TRY(WriteWhole(dir_ + "/summary.json.partial", summary.ToJson().dump(2) + "\n"));
  // The same usage report as the service's GET /v1/usage (report/usage.h).
  ATRIUM_TRY(report::WriteSimulationUsage(sched, dir_ + "/usage.json"));
  for (const char* name : {"runs.csv", "jobs.csv", "summary.json"}) {
    std::error_code error;
    std::filesystem::rename(dir_ + "/" + name + ".partial", dir_ + "/" + name, error);
    if (error)
      return MakeError(ErrorCode::kIoError, fmt::format("cannot move {} into place", name));
  }
  return OkStatus();
}

}  // namespace atrium::sim
