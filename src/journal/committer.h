// Committer: group commit for many concurrent clients, pipelined. Callers on any thread
// hand it a command and get a future. An apply thread takes every command waiting at
// that moment (up to group_commands_max), applies them in arrival order
// (DurableCore::Prepare) and passes the group to a write thread, which appends it to
// the journal in one durable transaction (one fsync for the whole group) and only then
// fulfils the futures. While one group is being written the next is being applied, so
// on two cores throughput approaches the slower of the two stages rather than their sum.
//
// The queue is bounded: when queue_depth_max commands are waiting, Submit answers
// kUnavailable at once (the service turns it into 503 with Retry-After), instead of
// letting latency grow without limit. Read never sees a command before it is durable.
//
//   Committer committer(std::move(durable), {});
//   auto future = committer.Submit(core::CreateTransfers{...});
//   Result<core::CommandResult> result = future.get();  // durable when ok
#pragma once

#include <array>
#include <condition_variable>  // (kept for includers that relied on it)
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "journal/journal.h"
#include "journal/mutex.h"

namespace atrium::journal {

struct CommitterOptions {
  size_t queue_depth_max = 65'536;    // commands waiting; beyond it Submit refuses
  size_t group_commands_max = 8'192;  // commands in one durable transaction
  size_t groups_in_flight_max = 2;    // groups applied but not yet written
  // (Both maxima are at least 1; a zero is taken as 1.)
};

// Upper bounds (seconds) of the durable-append latency histogram (the last is +Inf).
inline constexpr std::array<double, 11> kCommitLatencyBoundsS = {
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};

struct CommitterStats {
  uint64_t commands = 0;
  uint64_t groups = 0;  // durable transactions
  // How long each durable append (one transaction, one fsync) took: counts per bucket of
  // kCommitLatencyBoundsS, cumulative as Prometheus expects, plus the +Inf bucket.
  std::array<uint64_t, kCommitLatencyBoundsS.size() + 1> commit_latency_le{};
  double commit_seconds_sum = 0;
};

class Committer {
 public:
  Committer(std::unique_ptr<DurableCore> durable, CommitterOptions options);
  // Finishes every accepted command, then stops both threads.
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  std::future<Result<core::CommandResult>> Submit(core::Command command);

  // Runs `read` on a state that holds exactly the durable commands: it waits for the
  // groups in flight to be written and holds the next group back meanwhile.
  // kJournalPoisoned (and `read` is not run) after a failed append.
  Status Read(const std::function<void(const core::Core&)>& read) const;
  CommitterStats stats() const;
  size_t queue_depth() const;
  uint64_t durable_seq() const { return durable_->durable_seq(); }

 private:
  using Promise = std::promise<Result<core::CommandResult>>;
  struct Pending {
    core::Command command;
    Promise promise;
  };
  struct InFlight {
    PreparedGroup group;
    std::vector<Promise> promises;
  };
  void ApplyLoop() ABSL_LOCKS_EXCLUDED(queue_mutex_, state_mutex_, flight_mutex_);
  void WriteLoop() ABSL_LOCKS_EXCLUDED(flight_mutex_);
  // Until nothing is in flight.
  void WaitForWrites() const ABSL_LOCKS_EXCLUDED(flight_mutex_);

  // The core and its journal. Not guarded by one lock, by design: the apply thread
  // changes the state (Prepare, Snapshot) holding state_mutex_, the write thread appends
  // to the store (Commit) holding nothing, and DurableCore keeps what both touch
  // (durable_seq, poisoned) atomic. Readers hold state_mutex_ and wait for the writes.
  std::unique_ptr<DurableCore> durable_;
  const CommitterOptions options_;

  // The commands waiting to be applied.
  mutable Mutex queue_mutex_;
  CondVar queue_ready_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(queue_mutex_);
  bool stopping_ ABSL_GUARDED_BY(queue_mutex_) = false;

  // Held while a group is applied, or the state read; taken before flight_mutex_.
  mutable Mutex state_mutex_ ABSL_ACQUIRED_BEFORE(flight_mutex_);

  // The groups applied and not yet written.
  mutable Mutex flight_mutex_;
  mutable CondVar flight_changed_;
  std::deque<InFlight> in_flight_ ABSL_GUARDED_BY(flight_mutex_);
  bool writing_ ABSL_GUARDED_BY(flight_mutex_) = false;
  bool applier_done_ ABSL_GUARDED_BY(flight_mutex_) = false;
  CommitterStats stats_ ABSL_GUARDED_BY(flight_mutex_);

  std::thread writer_;
  std::thread applier_;
};

}  // namespace atrium::journal
