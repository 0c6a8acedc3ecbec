#include "journal/committer.h"

#include <chrono>

namespace atrium::journal {

namespace {
CommitterOptions Sane(CommitterOptions options) {
  // Zero would stall the pipeline for good; one is the smallest that works.
  options.group_commands_max = std::max<size_t>(1, options.group_commands_max);
  options.groups_in_flight_max = std::max<size_t>(1, options.groups_in_flight_max);
  return options;
}
}  // namespace

Committer::Committer(std::unique_ptr<DurableCore> durable, CommitterOptions options)
    : durable_(std::move(durable)),
      options_(Sane(options)),
      writer_([this] { WriteLoop(); }),
      applier_([this] { ApplyLoop(); }) {}

Committer::~Committer() {
  {
    MutexLock lock(&queue_mutex_);
    stopping_ = true;
  }
  queue_ready_.SignalAll();
  applier_.join();  // applies what was accepted, then marks itself done
  writer_.join();   // writes what was applied, then sees the applier done
}

std::future<Result<core::CommandResult>> Committer::Submit(core::Command command) {
  Promise promise;
  auto future = promise.get_future();
  {
    MutexLock lock(&queue_mutex_);
    if (stopping_) {
      promise.set_value(MakeError(ErrorCode::kUnavailable, "the journal is shutting down"));
      return future;
    }
    if (queue_.size() >= options_.queue_depth_max) {
      promise.set_value(MakeError(ErrorCode::kUnavailable,
                                  "too many commands waiting for the journal; retry shortly"));
      return future;
    }
    queue_.push_back(Pending{std::move(command), std::move(promise)});
  }
  queue_ready_.Signal();
  return future;
}

void Committer::ApplyLoop() {
  std::vector<core::Command> commands;
  for (;;) {
    std::vector<Promise> promises;
    commands.clear();
    {
      MutexLock lock(&queue_mutex_);
      while (!stopping_ && queue_.empty()) queue_ready_.Wait(&queue_mutex_);
      if (queue_.empty()) break;  // stopping, and everything accepted is applied
      const size_t take = std::min(queue_.size(), options_.group_commands_max);
      for (size_t taken = 0; taken < take; ++taken) {
        commands.push_back(std::move(queue_.front().command));
        promises.push_back(std::move(queue_.front().promise));
        queue_.pop_front();
      }
    }
    {
      // Bound the work applied ahead of the journal.
      MutexLock lock(&flight_mutex_);
      while (in_flight_.size() >= options_.groups_in_flight_max) {
        flight_changed_.Wait(&flight_mutex_);
      }
    }
    {
      // The group joins the flight before the state lock is released, so a reader that
      // takes the lock next finds it there and waits for it to be written.
      MutexLock state_lock(&state_mutex_);
      Result<PreparedGroup> prepared = durable_->Prepare(commands);
      if (!prepared.ok()) {
        for (Promise& promise : promises) promise.set_value(prepared.error());
        continue;
      }
      MutexLock flight_lock(&flight_mutex_);
      in_flight_.push_back(InFlight{std::move(*prepared), std::move(promises)});
      flight_changed_.SignalAll();
    }
    if (durable_->snapshot_due()) {
      // A snapshot needs the state to equal the journal: let the writes catch up first.
      WaitForWrites();
      MutexLock lock(&state_mutex_);
      (void)durable_->Snapshot();  // a failed snapshot loses nothing; retried when due
    }
  }
  {
    MutexLock lock(&flight_mutex_);
    applier_done_ = true;
    flight_changed_.SignalAll();
  }
}

void Committer::WriteLoop() {
  for (;;) {
    InFlight flight;
    {
      MutexLock lock(&flight_mutex_);
      while (!applier_done_ && in_flight_.empty()) flight_changed_.Wait(&flight_mutex_);
      if (in_flight_.empty()) return;
      flight = std::move(in_flight_.front());
      in_flight_.pop_front();
      writing_ = true;
    }
    const auto commit_started = std::chrono::steady_clock::now();
    const Status written = durable_->Commit(flight.group);
    const double commit_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - commit_started).count();
    {
      // Counted before the futures are fulfilled, so a caller that saw its result also
      // sees it counted.
      MutexLock lock(&flight_mutex_);
      ++stats_.groups;
      stats_.commands += flight.promises.size();
      stats_.commit_seconds_sum += commit_s;
      for (size_t bucket = 0; bucket < stats_.commit_latency_le.size(); ++bucket) {
        if (bucket == kCommitLatencyBoundsS.size() || commit_s <= kCommitLatencyBoundsS[bucket]) {
          ++stats_.commit_latency_le[bucket];
        }
      }
    }
    for (size_t command_idx = 0; command_idx < flight.promises.size(); ++command_idx) {
      if (written.ok()) {
        flight.promises[command_idx].set_value(std::move(flight.group.results[command_idx]));
      } else {
        flight.promises[command_idx].set_value(written.error());
      }
    }
    {
      MutexLock lock(&flight_mutex_);
      writing_ = false;
      flight_changed_.SignalAll();
    }
  }
}

void Committer::WaitForWrites() const {
  MutexLock lock(&flight_mutex_);
  while (!in_flight_.empty() || writing_) flight_changed_.Wait(&flight_mutex_);
}

Status Committer::Read(const std::function<void(const core::Core&)>& read) const {
  MutexLock lock(&state_mutex_);  // no new group is applied meanwhile
  WaitForWrites();
  // After a failed append the state holds commands the journal lost: nothing may read it.
  if (durable_->poisoned()) {
    return MakeError(ErrorCode::kJournalPoisoned,
                     "an append failed; the state is ahead of the journal until reopened");
  }
  read(durable_->core());
  return OkStatus();
}

CommitterStats Committer::stats() const {
  MutexLock lock(&flight_mutex_);
  return stats_;
}

size_t Committer::queue_depth() const {
  MutexLock lock(&queue_mutex_);
  return queue_.size();
}

}  // namespace atrium::journal
