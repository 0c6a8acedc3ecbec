#include "journal/committer.h"

#include <algorithm>
#include <chrono>
#include <iterator>

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
    : durable_(std::move(durable)), options_(Sane(std::move(options))) {
  {
    MutexLock lock(&gate_mutex_);
    applied_seq_ = durable_->last_seq();
    durable_seen_ = durable_->durable_seq();
    poisoned_seen_ = durable_->poisoned();
  }
  writer_ = std::thread([this] { WriteLoop(); });
  applier_ = std::thread([this] { ApplyLoop(); });
}

Committer::~Committer() {
  {
    MutexLock lock(&queue_mutex_);
    stopping_ = true;
  }
  queue_ready_.SignalAll();
  applier_.join();  // applies what was accepted, hands over its snapshot, marks itself done
  writer_.join();   // writes what was applied, then sees the applier done
}

std::future<Result<core::CommandResult>> Committer::Submit(core::Command command) {
  std::promise<Result<core::CommandResult>> promise;
  auto future = promise.get_future();
  Submit(std::move(command),
         [promise = std::move(promise)](Result<core::CommandResult> result) mutable {
           promise.set_value(std::move(result));
         });
  return future;
}

void Committer::Submit(core::Command command, Completion done) {
  std::optional<Error> refused;
  {
    MutexLock lock(&queue_mutex_);
    if (stopping_) {
      refused = Error{ErrorCode::kUnavailable, "the journal is shutting down", ""};
    } else if (queue_.size() >= options_.queue_depth_max) {
      refused = Error{ErrorCode::kUnavailable,
                      "too many commands waiting for the journal; retry shortly", ""};
    } else {
      queue_.push_back(Pending{std::move(command), std::move(done)});
    }
  }
  if (refused) {
    // Outside the lock: the completion may submit again. (`done` was moved only when the
    // command was queued, never on this path.)
    done(std::move(*refused));  // NOLINT(bugprone-use-after-move)
    return;
  }
  queue_ready_.Signal();
}

void Committer::ApplyLoop() {
  std::vector<core::Command> commands;
  for (;;) {
    std::vector<Completion> completions;
    commands.clear();
    {
      MutexLock lock(&queue_mutex_);
      while (!stopping_ && queue_.empty()) queue_ready_.Wait(&queue_mutex_);
      if (queue_.empty()) break;  // stopping, and everything accepted is applied
      const size_t take = std::min(queue_.size(), options_.group_commands_max);
      for (size_t taken = 0; taken < take; ++taken) {
        commands.push_back(std::move(queue_.front().command));
        completions.push_back(std::move(queue_.front().done));
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
    // Readers are kept out while the group is applied; it joins the flight before they
    // may come back, and they wait until it is durable (ExitApply with its last entry).
    EnterApply();
    Result<PreparedGroup> prepared = StateForApply().Prepare(commands);
    const uint64_t applied_seq = StateForApply().last_seq();
    if (!prepared.ok()) {
      ExitApply(applied_seq);
      for (Completion& done : completions) done(prepared.error());
      continue;
    }
    {
      MutexLock flight_lock(&flight_mutex_);
      in_flight_.push_back(InFlight{std::move(*prepared), std::move(completions)});
      flight_changed_.SignalAll();
    }
    ExitApply(applied_seq);
    if (durable_->snapshot_due()) TakeSnapshot();
  }
  // The snapshot's child dies with the thread that forked it (PR_SET_PDEATHSIG): this
  // one stays until the child's bytes are handed over.
  if (collector_.joinable()) collector_.join();
  {
    MutexLock lock(&flight_mutex_);
    applier_done_ = true;
    flight_changed_.SignalAll();
  }
}

void Committer::TakeSnapshot() {
  {
    // One child at a time: a snapshot still being encoded is the one due.
    MutexLock lock(&flight_mutex_);
    if (collecting_) return;
  }
  // The previous collector has handed its snapshot over; it only has to end.
  if (collector_.joinable()) collector_.join();
  // A snapshot needs the state to equal the journal: let the writes catch up first. It is
  // taken as a reader, so other readers go on meanwhile (only groups wait).
  WaitForWrites();
  const auto pause_started = std::chrono::steady_clock::now();
  EnterRead();
  Result<DurableCore::ForkedSnapshot> forked =
      options_.snapshot_in_child
          ? durable_->ForkSnapshot(options_.in_snapshot_child)
          : Result<DurableCore::ForkedSnapshot>(MakeError(ErrorCode::kUnavailable, "in process"));
  std::optional<Result<StoredSnapshot>> captured;
  if (!forked.ok()) captured = durable_->CaptureSnapshot();
  ExitRead();
  const double pause_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - pause_started).count();
  MutexLock lock(&flight_mutex_);
  stats_.snapshot_pause_seconds_sum += pause_s;
  stats_.snapshot_pause_seconds_max = std::max(stats_.snapshot_pause_seconds_max, pause_s);
  if (forked.ok()) {
    ++stats_.snapshots_forked;
    collecting_ = true;
    collector_ = std::thread([this, child = *forked] {
      Result<StoredSnapshot> collected = durable_->CollectSnapshot(child);
      MutexLock collector_lock(&flight_mutex_);
      // A failed child loses nothing (the journal is complete); taken again when due.
      if (collected.ok()) {
        ++stats_.snapshots_in_child;
        in_flight_.push_back(InFlight{.snapshot = std::move(*collected)});
      } else {
        ++stats_.snapshot_failures;
      }
      collecting_ = false;
      flight_changed_.SignalAll();
    });
  } else if (captured->ok()) {  // a failed snapshot loses nothing; taken again when due
    ++stats_.snapshots_in_process;
    in_flight_.push_back(InFlight{.snapshot = std::move(**captured)});
    flight_changed_.SignalAll();
  } else {
    ++stats_.snapshot_failures;
  }
}

void Committer::WriteLoop() {
  // The snapshot being stored, one part between groups (only this thread touches it).
  std::optional<DurableCore::SnapshotWrite> snapshot;
  // Chunks of snapshots no longer kept are deleted one at a time between groups, like
  // parts: freeing a snapshot's pages in one transaction held every group (and so every
  // reader) for up to 1.7 s at 300 MiB. At the start: strays a crash left.
  bool prune_pending = true;
  // Times one step (snapshot_step_seconds_max).
  const auto timed = [&](auto step) {
    const auto started = std::chrono::steady_clock::now();
    auto result = step();
    const double step_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    MutexLock lock(&flight_mutex_);
    stats_.snapshot_step_seconds_max = std::max(stats_.snapshot_step_seconds_max, step_s);
    return result;
  };
  const auto write_part = [&] {
    const Result<bool> stored =
        timed([&] { return durable_->WriteSnapshotPart(*snapshot, options_.snapshot_part_bytes); });
    // A failed part loses nothing (the journal is complete); the next one is taken when
    // due, and the chunks it wrote are pruned after a later snapshot's head.
    if (!stored.ok() || *stored) snapshot.reset();
    if (stored.ok() && *stored) prune_pending = true;
  };
  const auto prune_chunk = [&] {
    const Result<uint64_t> pruned = timed([&] { return durable_->PruneSnapshotChunks(1); });
    // A failed prune loses nothing: the next head tries again.
    if (!pruned.ok() || *pruned == 0) {
      prune_pending = false;
      return;
    }
    MutexLock lock(&flight_mutex_);
    stats_.snapshot_chunks_pruned += *pruned;
  };
  for (;;) {
    InFlight flight;
    bool group = false;
    {
      MutexLock lock(&flight_mutex_);
      // Until the applier is done and no snapshot's child is still encoding. Pruning goes
      // on while nothing else waits, but does not hold up the end.
      while ((!applier_done_ || collecting_) && in_flight_.empty() && !snapshot && !prune_pending)
        flight_changed_.Wait(&flight_mutex_);
      if (in_flight_.empty() && !snapshot && !(prune_pending && (!applier_done_ || collecting_))) {
        return;
      }
      if (!in_flight_.empty()) {
        flight = std::move(in_flight_.front());
        in_flight_.pop_front();
        group = !flight.snapshot;
        // Groups applied while the last one was written join this transaction (one fsync
        // for all of them): when the journal is the slower stage its groups grow,
        // instead of each waiting a whole fsync behind the one before. A snapshot is
        // taken on its own, in its place in the order: nothing folds into it, and
        // folding stops at it.
        while (group && !in_flight_.empty() && !in_flight_.front().snapshot) {
          InFlight& next = in_flight_.front();
          std::move(next.group.results.begin(), next.group.results.end(),
                    std::back_inserter(flight.group.results));
          std::move(next.group.entries.begin(), next.group.entries.end(),
                    std::back_inserter(flight.group.entries));
          std::move(next.completions.begin(), next.completions.end(),
                    std::back_inserter(flight.completions));
          in_flight_.pop_front();
        }
        writing_ = group;
        // The applier may prepare the next group (it waits for room in the flight, and a
        // snapshot taken from it makes room as a group does).
        flight_changed_.SignalAll();
      }
    }
    if (!group) {
      if (flight.snapshot) {
        // A newer snapshot: the one being stored is finished first.
        while (snapshot) write_part();
        snapshot.emplace(std::move(*flight.snapshot));
      }
      // Nothing else waits: the next part now, or the next chunk to prune.
      if (snapshot) {
        write_part();
      } else {
        prune_chunk();
      }
      continue;
    }
    const auto commit_started = std::chrono::steady_clock::now();
    const Status written = durable_->Commit(flight.group);
    const double commit_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - commit_started).count();
    {
      // Counted before the completions are called, so a caller that saw its result also
      // sees it counted.
      MutexLock lock(&flight_mutex_);
      ++stats_.groups;
      stats_.commands += flight.completions.size();
      stats_.commit_seconds_sum += commit_s;
      for (size_t bucket = 0; bucket < stats_.commit_latency_le.size(); ++bucket) {
        if (bucket == kCommitLatencyBoundsS.size() || commit_s <= kCommitLatencyBoundsS[bucket]) {
          ++stats_.commit_latency_le[bucket];
        }
      }
    }
    // Readers may see the group from now on: before its completions are called, so a
    // client that has its answer reads its own write.
    NoteDurable(durable_->durable_seq(), durable_->poisoned());
    for (size_t command_idx = 0; command_idx < flight.completions.size(); ++command_idx) {
      if (written.ok()) {
        flight.completions[command_idx](std::move(flight.group.results[command_idx]));
      } else {
        flight.completions[command_idx](written.error());
      }
    }
    {
      MutexLock lock(&flight_mutex_);
      writing_ = false;
      flight_changed_.SignalAll();
    }
    // One part, or one pruned chunk, between groups.
    if (snapshot) {
      write_part();
    } else if (prune_pending) {
      prune_chunk();
    }
  }
}

void Committer::WaitForWrites() const {
  MutexLock lock(&flight_mutex_);
  while (!in_flight_.empty() || writing_) flight_changed_.Wait(&flight_mutex_);
}

Status Committer::Read(const std::function<void(const core::Core&)>& read) const {
  EnterRead();
  // After a failed append the state holds commands the journal lost: nothing may read it.
  if (durable_->poisoned()) {
    ExitRead();
    return MakeError(ErrorCode::kJournalPoisoned,
                     "an append failed; the state is ahead of the journal until reopened");
  }
  read(StateForRead());
  ExitRead();
  return OkStatus();
}

Result<bool> Committer::TryRead(const std::function<void(const core::Core&)>& read) const {
  if (!TryEnterRead()) return false;
  if (durable_->poisoned()) {
    ExitRead();
    return MakeError(ErrorCode::kJournalPoisoned,
                     "an append failed; the state is ahead of the journal until reopened");
  }
  read(StateForRead());
  ExitRead();
  return true;
}

// ---- the read gate --------------------------------------------------------------------

bool Committer::Readable() const {
  return poisoned_seen_ || (!applying_ && applied_seq_ == durable_seen_);
}

void Committer::AdmitIfReadable() const {
  if (waiting_readers_ == 0 || !Readable()) return;
  // Counted in before they wake, so the applier cannot slip in between.
  active_readers_ += waiting_readers_;
  waiting_readers_ = 0;
  ++windows_;
  gate_changed_.SignalAll();
}

void Committer::EnterRead() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  MutexLock lock(&gate_mutex_);
  if (waiting_readers_ == 0 && Readable()) {
    ++active_readers_;
    return;
  }
  // Wait for the next window, holding nothing but this wait; it counts us in.
  ++waiting_readers_;
  const uint64_t window = windows_;
  while (windows_ == window) gate_changed_.Wait(&gate_mutex_);
}

bool Committer::TryEnterRead() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  MutexLock lock(&gate_mutex_);
  if (waiting_readers_ != 0 || !Readable()) return false;
  ++active_readers_;
  return true;
}

void Committer::ExitRead() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  MutexLock lock(&gate_mutex_);
  if (--active_readers_ == 0) gate_changed_.SignalAll();
}

void Committer::EnterApply() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  MutexLock lock(&gate_mutex_);
  // Readers already waiting read before this group is applied (their window opens when
  // the groups in flight are durable), so a stream of groups cannot starve them.
  while (waiting_readers_ > 0 && !poisoned_seen_) gate_changed_.Wait(&gate_mutex_);
  applying_ = true;  // readers arriving from now on wait for the next window
  while (active_readers_ > 0) gate_changed_.Wait(&gate_mutex_);
}

void Committer::ExitApply(uint64_t applied_seq) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  MutexLock lock(&gate_mutex_);
  applying_ = false;
  applied_seq_ = applied_seq;
  AdmitIfReadable();  // a group that changed nothing leaves the state durable
}

void Committer::NoteDurable(uint64_t durable_seq, bool poisoned) {
  MutexLock lock(&gate_mutex_);
  durable_seen_ = durable_seq;
  poisoned_seen_ = poisoned;
  AdmitIfReadable();
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
