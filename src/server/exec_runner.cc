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
    : committer_(committer), clock_(std::move(clock)), local_options_(std::move(options)) {}

void ExecRunner::MakeExecutors(const cluster::Cluster& cluster) {
  cluster_seen_ = &cluster;
  // Runs of replaced executors are adopted again by the new ones (Ensure finds them by
  // their records: the local supervisors' files, the Slurm job names).
  slurm_.clear();
  by_pool_.assign(cluster.pools().size(), nullptr);
  for (size_t pool_idx = 0; pool_idx < cluster.pools().size(); ++pool_idx) {
    const cluster::Pool& pool = cluster.pools()[pool_idx];
    switch (pool.executor) {
      case cluster::Executor::kNone:
        break;
      case cluster::Executor::kLocal:
        if (!local_) local_ = std::make_unique<exec::LocalExecutor>(local_options_);
        by_pool_[pool_idx] = local_.get();
        break;
      case cluster::Executor::kSlurm: {
        exec::SlurmExecutorOptions options{.jobs_dir = local_options_.jobs_dir,
                                           .slurm = pool.slurm};
        for (uint32_t node = pool.first_node; node < pool.first_node + pool.node_count; ++node) {
          options.atrium_nodes.push_back(cluster.nodes()[node].name);
        }
        slurm_.push_back(std::make_unique<exec::SlurmExecutor>(std::move(options)));
        by_pool_[pool_idx] = slurm_.back().get();
        break;
      }
    }
  }
}

std::vector<exec::Executor*> ExecRunner::Executors() const {
  std::vector<exec::Executor*> out;
  if (local_) out.push_back(local_.get());
  for (const auto& slurm : slurm_) out.push_back(slurm.get());
  return out;
}

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
  std::vector<std::pair<exec::Executor*, exec::RunSpec>> to_ensure;
  const uint64_t seq = committer_.durable_seq();
  if (seq != seen_seq_) {
    std::map<RunKey, exec::Executor*> running;
    std::set<RunKey> yielding;
    const Status read = committer_.Read([&](const core::Core& core) {
      const core::AppState& app = core.app();
      const cluster::Cluster* cluster = app.cluster();
      const sched::Scheduler* scheduler = app.scheduler();
      if (cluster == nullptr || scheduler == nullptr) return;
      // Bookkeeping clusters (every pool `none`) cost one look at their pools.
      if (std::all_of(cluster->pools().begin(), cluster->pools().end(),
                      [](const cluster::Pool& pool) {
                        return pool.executor == cluster::Executor::kNone;
                      })) {
        return;
      }
      if (cluster != cluster_seen_) MakeExecutors(*cluster);
      for (const auto& [deadline_s, sched_id] : app.running_runs()) {
        const sched::Job& job = scheduler->job(sched_id);
        const cluster::Pool& pool = cluster->pools()[job.shape.pool];
        exec::Executor* executor = by_pool_[job.shape.pool];
        if (executor == nullptr) continue;
        RunKey key{job.id, job.runs};
        running.emplace(key, executor);
        if (job.preempt_at_s >= 0) yielding.insert(key);
        if (executor->Tracks(key.first, key.second)) continue;
        const core::JobRecord& record = app.jobs().at(job.id);
        core::JobTexts texts = record.UnpackTexts();
        exec::RunSpec spec{.job = job.id,
                           .run = job.runs,
                           .argv = std::move(texts.argv),
                           .grant = record.program + "/" + record.grant,
                           .chips = job.shape.chips,
                           .walltime_s = job.run_limit_s,
                           .kill_grace_s = pool.kill_grace_s};
        // Only the datasets its grant may still use (access can be revoked meanwhile).
        if (const program::ProgramState* program = app.FindProgram(record.program)) {
          for (const std::string& dataset : texts.datasets) {
            if (!program->CheckDatasetUse(record.grant, dataset).ok()) continue;
            spec.datasets.emplace(dataset, program->dataset_book().datasets.at(dataset).location);
          }
        }
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
        to_ensure.emplace_back(executor, std::move(spec));
      }
    });
    if (read.ok()) {
      seen_seq_ = seq;
      running_ = std::move(running);
      yielding_ = std::move(yielding);
    }
  }
  std::vector<exec::RunEvent> failed;
  for (const auto& [executor, spec] : to_ensure) {
    if (Status ensured = executor->Ensure(spec); !ensured.ok()) {
      const bool waits = ensured.error().code == ErrorCode::kUnavailable;
      if (!waits || waiting_logged_.insert({spec.job, spec.run}).second) {
        LogEvent(LogLevel::kError, "exec_launch_failed",
                 {{"job", spec.job}, {"run", spec.run}, {"detail", ensured.error().ToString()}});
      }
      // Slurm not answering: try again on a later pass (the state did not change).
      if (waits) {
        seen_seq_ = UINT64_MAX;
        continue;
      }
      const int64_t now = clock_->NowUs();
      failed.push_back(exec::RunEvent{.kind = exec::RunEvent::Kind::kEnded,
                                      .job = spec.job,
                                      .run = spec.run,
                                      .started_at_us = now,
                                      .ended_at_us = now,
                                      .exit_code = 126});
    } else {
      waiting_logged_.erase({spec.job, spec.run});
    }
  }
  // Runs that stopped waiting without a launch (cancelled meanwhile) are forgotten.
  std::erase_if(waiting_logged_, [this](const RunKey& key) { return !running_.contains(key); });
  const std::vector<exec::Executor*> executors = Executors();
  for (exec::Executor* executor : executors) {
    for (const RunKey& key : executor->Tracked()) {
      // Runs the state settled without us (cancel, job_finish, grant close, the late
      // tick), and runs the scheduler asked to yield their chips (preemption).
      if (!running_.contains(key)) {
        if (stopped_.insert(key).second)
          executor->Stop(key.first, key.second, exec::EndHow::kCancelled);
      } else if (yielding_.contains(key) && stopped_.insert(key).second) {
        executor->Stop(key.first, key.second, exec::EndHow::kPreempted);
      }
    }
  }
  std::vector<exec::RunEvent> events;
  for (exec::Executor* executor : executors) {
    std::vector<exec::RunEvent> polled = executor->Poll();
    events.insert(events.end(), std::make_move_iterator(polled.begin()),
                  std::make_move_iterator(polled.end()));
  }
  events.insert(events.end(), failed.begin(), failed.end());
  events.insert(events.end(), retry_.begin(), retry_.end());
  retry_.clear();
  if (!events.empty()) {
    std::vector<std::future<Result<core::CommandResult>>> futures;
    std::vector<const exec::RunEvent*> submitted;
    futures.reserve(events.size());
    const int64_t now_us = clock_->NowUs();
    for (const exec::RunEvent& event : events) {
      if (event.kind == exec::RunEvent::Kind::kEnded) stopped_.erase({event.job, event.run});
      futures.push_back(committer_.Submit(
          core::AppCommand{.now_us = now_us, .json = EventCommand(event).dump()}));
      submitted.push_back(&event);
    }
    // Nodes a run was lost on are drained (after the end, so the run is settled first).
    std::set<std::string> drain;
    for (const exec::RunEvent& event : events)
      drain.insert(event.nodes_down.begin(), event.nodes_down.end());
    for (const std::string& node : drain) {
      LogEvent(LogLevel::kWarn, "exec_node_failed", {{"node", node}});
      futures.push_back(committer_.Submit(core::AppCommand{
          .now_us = now_us,
          .json = json{{"op", "node_drain"}, {"actor", ExecutorActor()}, {"node", node}}.dump()}));
      submitted.push_back(nullptr);
    }
    for (size_t i = 0; i < futures.size(); ++i) {
      Result<core::CommandResult> result = futures[i].get();
      if (!result.ok() && submitted[i] != nullptr) {
        if (result.error().code == ErrorCode::kUnavailable) retry_.push_back(*submitted[i]);
        LogEvent(LogLevel::kError, "exec_report_failed",
                 {{"job", submitted[i]->job}, {"detail", result.error().ToString()}});
      }
    }
  }
  for (exec::Executor* executor : executors) {
    if (!executor->Tracked().empty()) return true;
  }
  return false;
}

}  // namespace atrium::server
