#include "report/usage_app.h"

#include <algorithm>

namespace atrium::report {
namespace {

bool Ended(sched::JobState state) {
  return state != sched::JobState::kPending && state != sched::JobState::kRunning;
}

int64_t ChipsTotal(const cluster::Cluster* cluster) {
  if (cluster == nullptr) return 0;
  int64_t chips = 0;
  for (const cluster::Pool& pool : cluster->pools()) {
    chips += static_cast<int64_t>(pool.node_count) * pool.chips_per_node;
  }
  return chips;
}

}  // namespace

AppUsage& AppUsage::Shared() {
  static AppUsage* usage = new AppUsage();  // never destroyed: reads may run at exit
  return *usage;
}

UsageRunInput AppUsage::LabelsOf(const core::AppState& app, const core::JobRecord& record) const {
  UsageRunInput labels;
  labels.grant = record.grant;
  if (const program::ProgramState* program = app.FindProgram(record.program)) {
    const auto grant = program->grants().find(record.grant);
    if (grant != program->grants().end()) {
      labels.institution = grant->second.institution;
      const auto proposal = program->proposals().find(grant->second.proposal);
      if (proposal != program->proposals().end() && !proposal->second.input.topics.empty()) {
        labels.field = proposal->second.input.topics.front();
      }
    }
  }
  const cluster::Cluster& cluster = *app.cluster();
  const sched::Job& job = app.scheduler()->job(record.sched_id);
  labels.accelerator = cluster.accelerators()[cluster.pools()[job.shape.pool].accelerator].name;
  for (const cluster::Partition& partition : cluster.partitions()) {
    if (std::find(partition.classes.begin(), partition.classes.end(), job.job_class) !=
        partition.classes.end()) {
      labels.partition = partition.name;
      break;
    }
  }
  return labels;
}

void AppUsage::CatchUp(const core::AppState& app) {
  if (app_ != &app || app.jobs().size() < open_.size()) {
    app_ = &app;
    index_ = UsageIndex();
    last_job_.clear();
    open_.clear();
  }
  index_.set_chips_total(ChipsTotal(app.cluster()));
  if (app.scheduler() == nullptr) return;
  const sched::Scheduler& scheduler = *app.scheduler();
  std::vector<UsageRunInput> runs;
  auto index_ended = [&](const core::JobRecord& record) {
    const sched::Job& job = scheduler.job(record.sched_id);
    if (!Ended(job.state)) return false;
    runs.clear();
    AppendJobRuns(scheduler, job, job.end_s, LabelsOf(app, record), &runs);
    for (const UsageRunInput& run : runs) index_.Add(run);
    return true;
  };
  for (auto it = open_.begin(); it != open_.end();) {
    const core::JobRecord* record = app.jobs().Find(*it);
    if (record == nullptr || index_ended(*record)) {
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
  auto it = last_job_.empty() ? app.jobs().begin() : app.jobs().upper_bound(last_job_);
  for (; it != app.jobs().end(); ++it) {
    if (!index_ended(*it)) open_.insert(it->id());
    last_job_ = it->id();
  }
}

Result<nlohmann::json> AppUsage::Report(const core::AppState& app, const UsageQuery& query) {
  std::lock_guard lock(mutex_);
  CatchUp(app);
  std::vector<UsageRunInput> extra;
  const int64_t now_s = app.last_now_us() / 1'000'000;
  if (app.scheduler() != nullptr) {
    for (const std::string& id : open_) {
      const core::JobRecord& record = app.jobs().at(id);
      const sched::Job& job = app.scheduler()->job(record.sched_id);
      if (job.first_start_s < 0) continue;  // waiting, never ran
      AppendJobRuns(*app.scheduler(), job, now_s, LabelsOf(app, record), &extra);
    }
  }
  ATRIUM_ASSIGN_OR_RETURN(nlohmann::json report, index_.Report(query, extra));
  report["runs_indexed"] = index_.run_count();
  report["jobs_open"] = open_.size();
  return report;
}

}  // namespace atrium::report
