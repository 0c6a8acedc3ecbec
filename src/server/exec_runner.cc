#include "server/exec_runner.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/core.h"
#include "server/log.h"

namespace atrium::server {

using nlohmann::json;

namespace {

const json& ExecutorActor() {
  static const json actor = {{"role", "admin"}, {"token", "executor"}};
  return actor;
}

json EventCommand(const exec::RunEvent& event) {
  if (event.kind == exec::RunEvent::Kind::kStarted) {
    return json{{"op", "job_run_started"},
                {"actor", ExecutorActor()},
                {"job", event.job},
                {"run", event.run},
                {"started_at_us", event.started_at_us}};
  }
  // A cancel's end is reported as what it was (the core settled the run when it was
  // cancelled, so this is refused as settled unless something else sent the signal).
  const exec::EndHow how =
      event.how == exec::EndHow::kCancelled ? exec::EndHow::kExited : event.how;
  return json{{"op", "job_run_ended"},
              {"actor", ExecutorActor()},
              {"job", event.job},
              {"run", event.run},
              {"started_at_us", event.started_at_us},
              {"ended_at_us", std::max(event.ended_at_us, event.started_at_us)},
              {"exit_code", event.exit_code},
              {"signal", event.signal},
              {"how", exec::ToString(how)}};
}

}  // namespace

ExecRunner::ExecRunner(journal::Committer& committer, std::shared_ptr<const Clock> clock,
                       exec::LocalExecutorOptions options)
    : committer_(committer), clock_(std::move(clock)), local_(std::move(options)) {}

ExecRunner::~ExecRunner() {
  Stop();
  if (thread_.joinable()) thread_.join();
}

void ExecRunner::Start() {
  (void)Pass();
  thread_ = std::thread([this] { Loop(); });
}

void ExecRunner::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
}

void ExecRunner::Loop() {
  for (;;) {
    const bool busy = Pass();
    std::unique_lock lock(mutex_);
    // Busy: look again soon (an end is seen within 2 ms); idle: only new runs matter.
    wake_.wait_for(lock, std::chrono::milliseconds(busy ? 2 : 10), [this] { return stopping_; });
    if (stopping_) return;
  }
}

bool ExecRunner::Pass() {
  std::vector<exec::RunSpec> to_ensure;
  const uint64_t seq = committer_.durable_seq();
  if (seq != seen_seq_) {
    std::set<RunKey> running;
    const Status read = committer_.Read([&](const core::Core& core) {
      const core::AppState& app = core.app();
      const cluster::Cluster* cluster = app.cluster();
      const sched::Scheduler* scheduler = app.scheduler();
      if (cluster == nullptr || scheduler == nullptr) return;
      // Bookkeeping clusters (every pool `none`) cost one look at their pools.
      if (std::none_of(cluster->pools().begin(), cluster->pools().end(),
                       [](const cluster::Pool& pool) {
                         return pool.executor == cluster::Executor::kLocal;
                       })) {
        return;
      }
      for (const auto& [deadline_s, sched_id] : app.running_runs()) {
        const sched::Job& job = scheduler->job(sched_id);
        const cluster::Pool& pool = cluster->pools()[job.shape.pool];
        if (pool.executor != cluster::Executor::kLocal) continue;
        RunKey key{job.id, job.runs};
        running.insert(key);
        if (local_.Tracks(key.first, key.second)) continue;
        const core::JobRecord& record = app.jobs().at(job.id);
        exec::RunSpec spec{.job = job.id,
                           .run = job.runs,
                           .argv = record.argv,
                           .grant = record.program + "/" + record.grant,
                           .chips = job.shape.chips,
                           .walltime_s = job.run_limit_s,
                           .kill_grace_s = pool.kill_grace_s};
        const cluster::AcceleratorType& type = cluster->accelerators()[pool.accelerator];
        spec.device = cluster::DeviceKindOf(type);
        spec.cores_per_chip = type.cores_per_chip;
        for (const sched::Alloc& alloc : job.placement) {
          spec.nodes.push_back(cluster->nodes()[alloc.node].name);
        }
        if (!job.placement.empty()) {
          const uint64_t mask = job.placement.front().mask;
          for (int chip = 0; chip < 64; ++chip) {
            if ((mask >> chip) & 1U) spec.chip_indices.push_back(chip);
          }
        }
        to_ensure.push_back(std::move(spec));
      }
    });
    if (read.ok()) {
      seen_seq_ = seq;
      running_ = std::move(running);
    }
  }
  std::vector<exec::RunEvent> failed;
  for (const exec::RunSpec& spec : to_ensure) {
    if (Status ensured = local_.Ensure(spec); !ensured.ok()) {
      LogEvent(LogLevel::kError, "exec_launch_failed",
               {{"job", spec.job}, {"run", spec.run}, {"detail", ensured.error().ToString()}});
      const int64_t now = clock_->NowUs();
      failed.push_back(exec::RunEvent{.kind = exec::RunEvent::Kind::kEnded,
                                      .job = spec.job,
                                      .run = spec.run,
                                      .started_at_us = now,
                                      .ended_at_us = now,
                                      .exit_code = 126});
    }
  }
  // Runs the state settled without us (cancel, job_finish, grant close, the late tick).
  for (const RunKey& key : local_.Tracked()) {
    if (!running_.contains(key) && stopped_.insert(key).second) {
      local_.Stop(key.first, key.second, exec::EndHow::kCancelled);
    }
  }
  std::vector<exec::RunEvent> events = local_.Poll();
  events.insert(events.end(), failed.begin(), failed.end());
  events.insert(events.end(), retry_.begin(), retry_.end());
  retry_.clear();
  if (!events.empty()) {
    std::vector<std::future<Result<core::CommandResult>>> futures;
    futures.reserve(events.size());
    const int64_t now_us = clock_->NowUs();
    for (const exec::RunEvent& event : events) {
      if (event.kind == exec::RunEvent::Kind::kEnded) stopped_.erase({event.job, event.run});
      futures.push_back(committer_.Submit(
          core::AppCommand{.now_us = now_us, .json = EventCommand(event).dump()}));
    }
    for (size_t i = 0; i < futures.size(); ++i) {
      Result<core::CommandResult> result = futures[i].get();
      if (!result.ok()) {
        if (result.error().code == ErrorCode::kUnavailable) retry_.push_back(events[i]);
        LogEvent(LogLevel::kError, "exec_report_failed",
                 {{"job", events[i].job}, {"detail", result.error().ToString()}});
      }
    }
  }
  return !local_.Tracked().empty();
}

}  // namespace atrium::server
