// Committer: group commit for many concurrent clients, pipelined. Callers on any thread
// hand it a command and get a future. An apply thread takes every command waiting at
// that moment (up to group_commands_max), applies them in arrival order
// (DurableCore::Prepare) and passes the group to a write thread, which appends it to
// the journal in one durable transaction (one fsync for the whole group) and only then
// fulfils the futures. While one group is being written the next is being applied, so
// on two cores throughput approaches the slower of the two stages rather than their sum.
//
// Snapshots (when DurableCore::snapshot_due) are encoded in a child process forked by
// the apply thread (copy-on-write keeps the child's state as it was at the fork; the
// apply thread pauses only for the fork), collected by a collector thread, and digested
// and stored by the write thread in parts (snapshot_part_bytes), each in a transaction of
// its own with the groups that arrive meanwhile appended between them, so neither the
// encode, the digest nor the store write holds up applying or acknowledging for longer
// than one part. Where fork fails, the apply thread encodes as a reader (other readers go
// on; only groups wait).
//
// The queue is bounded: when queue_depth_max commands are waiting, Submit answers
// kUnavailable at once (the service turns it into 503 with Retry-After), instead of
// letting latency grow without limit.
//
// Reads never see a command before it is durable, and never hold a lock across an fsync:
// a gate (gate_mutex_, held only for a few instructions) admits readers in windows, while
// the state equals the journal (every applied group durable). Readers in a window read
// together; the applier waits for the window's readers to finish before it applies the
// next group, and readers that arrive while a group is applied or being written wait,
// holding nothing, for the next window, which opens the moment the writes in flight are
// durable. Readers waiting get that window before another group is applied, so neither
// side starves: under load, reads interleave with groups (each read waits at most for
// the groups in flight), and without writes a read takes the gate twice and nothing else.
//
//   Committer committer(std::move(durable), {});
//   auto future = committer.Submit(core::CreateTransfers{...});
//   Result<core::CommandResult> result = future.get();  // durable when ok
#pragma once

#include <array>
#include <condition_variable>  // (kept for includers that relied on it)
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "journal/journal.h"
#include "journal/mutex.h"

namespace atrium::journal {

struct CommitterOptions {
  size_t queue_depth_max = 65'536;    // commands waiting; beyond it Submit refuses
  size_t group_commands_max = 8'192;  // commands in one durable transaction
  size_t groups_in_flight_max = 2;    // groups applied but not yet written
  // A snapshot is stored in parts of this size, with the groups that arrive meanwhile
  // appended between them: a group waits for one part, not for the whole snapshot.
  size_t snapshot_part_bytes = 1 << 20;
  // The snapshot's encode runs in a child process (DurableCore::ForkSnapshot): the apply
  // thread pauses for the fork only, not for the encode. If the fork fails, or this is
  // false, the apply thread encodes (CaptureSnapshot).
  bool snapshot_in_child = true;
  // Runs in the snapshot's child process before it encodes (tests hold the child there).
  std::function<void()> in_snapshot_child;
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
  // Snapshots: children forked to encode one, snapshots handed to the write thread by
  // where they were encoded, encodes that failed (a child's, or the apply thread's), and
  // how long the apply thread paused for them (the fork, or the whole encode in process).
  uint64_t snapshots_forked = 0;
  uint64_t snapshots_in_child = 0;
  uint64_t snapshots_in_process = 0;
  uint64_t snapshot_failures = 0;
  double snapshot_pause_seconds_sum = 0;
  double snapshot_pause_seconds_max = 0;
  // The longest step the write thread took to store snapshots between groups (a part, a
  // head, a pruned chunk): the most a group waited for one.
  double snapshot_step_seconds_max = 0;
  uint64_t snapshot_chunks_pruned = 0;
};

class Committer {
 public:
  Committer(std::unique_ptr<DurableCore> durable, CommitterOptions options);
  // Finishes every accepted command, then stops both threads.
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Called once with a command's result: after its group is durable (or with the error
  // that refused it). Runs on the committer's write thread (or on the applier's, or on the
  // caller's for a command refused at once) and must not block: hand the result on.
  using Completion = absl::AnyInvocable<void(Result<core::CommandResult>)>;

  std::future<Result<core::CommandResult>> Submit(core::Command command);
  // Submit's callback form, for callers that must not wait (the HTTP event loop): no
  // thread sleeps on a future for each command.
  void Submit(core::Command command, Completion done);

  // Runs `read` on a state that holds exactly the durable commands (read-your-writes: a
  // command acknowledged before Read began is in it). Waits, holding no lock, for the
  // next read window if groups are in flight; other readers read at the same time.
  // kJournalPoisoned (and `read` is not run) after a failed append.
  Status Read(const std::function<void(const core::Core&)>& read) const
      ABSL_LOCKS_EXCLUDED(gate_mutex_, state_);
  // Read's non-blocking form, for callers that must never wait (the HTTP event loop):
  // runs `read` and answers true if a read window is open now and no reader waits for the
  // next; otherwise runs nothing and answers false. kJournalPoisoned as Read.
  Result<bool> TryRead(const std::function<void(const core::Core&)>& read) const
      ABSL_LOCKS_EXCLUDED(gate_mutex_, state_);
  CommitterStats stats() const;
  size_t queue_depth() const;
  uint64_t durable_seq() const { return durable_->durable_seq(); }

 private:
  struct Pending {
    core::Command command;
    Completion done;
  };
  // A group to append, or (snapshot set) a snapshot captured by the apply thread for the
  // write thread to digest and store.
  struct InFlight {
    PreparedGroup group;
    std::vector<Completion> completions;
    std::optional<StoredSnapshot> snapshot;
  };
  // The state as a capability for clang's thread-safety analysis (no lock of its own):
  // held shared by a reader admitted to a window (EnterRead .. ExitRead), exclusively by
  // the applier while it applies a group (EnterApply .. ExitApply). The gate below
  // implements it.
  struct ABSL_LOCKABLE StateCapability {};

  void ApplyLoop() ABSL_LOCKS_EXCLUDED(queue_mutex_, gate_mutex_, flight_mutex_, state_);
  void WriteLoop() ABSL_LOCKS_EXCLUDED(flight_mutex_, gate_mutex_);
  // Takes a snapshot (the policy found one due): forks its encode or runs it here.
  void TakeSnapshot() ABSL_LOCKS_EXCLUDED(flight_mutex_, gate_mutex_, state_);
  // Until nothing is in flight.
  void WaitForWrites() const ABSL_LOCKS_EXCLUDED(flight_mutex_);

  // Returns once this reader is admitted to a read window (or the journal is poisoned).
  void EnterRead() const ABSL_SHARED_LOCK_FUNCTION(state_) ABSL_LOCKS_EXCLUDED(gate_mutex_);
  // Enters the open window without waiting, or answers false.
  bool TryEnterRead() const ABSL_SHARED_TRYLOCK_FUNCTION(true, state_)
      ABSL_LOCKS_EXCLUDED(gate_mutex_);
  void ExitRead() const ABSL_UNLOCK_FUNCTION(state_) ABSL_LOCKS_EXCLUDED(gate_mutex_);
  // Gives waiting readers their window first, then waits for the readers inside to leave.
  void EnterApply() ABSL_EXCLUSIVE_LOCK_FUNCTION(state_) ABSL_LOCKS_EXCLUDED(gate_mutex_);
  // `applied_seq`: the state's last entry now.
  void ExitApply(uint64_t applied_seq) ABSL_UNLOCK_FUNCTION(state_)
      ABSL_LOCKS_EXCLUDED(gate_mutex_);
  // The write thread: the journal is durable up to `durable_seq` (or poisoned).
  void NoteDurable(uint64_t durable_seq, bool poisoned) ABSL_LOCKS_EXCLUDED(gate_mutex_);
  // Whether a reader may read now; opens a window for the waiting readers if so.
  bool Readable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_mutex_);
  void AdmitIfReadable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_mutex_);
  // The core for a reader inside a window, and the durable core for the applier.
  const core::Core& StateForRead() const ABSL_SHARED_LOCKS_REQUIRED(state_) {
    return durable_->core();
  }
  DurableCore& StateForApply() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_) { return *durable_; }

  // The core and its journal. Not guarded by one lock, by design: the apply thread
  // changes the state (Prepare) holding state_ exclusively, the write thread appends to
  // the store (Commit) holding nothing, and DurableCore keeps what both touch
  // (durable_seq, poisoned) atomic. Readers hold state_ shared (StateForRead).
  std::unique_ptr<DurableCore> durable_;
  const CommitterOptions options_;

  // The commands waiting to be applied.
  mutable Mutex queue_mutex_;
  CondVar queue_ready_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(queue_mutex_);
  bool stopping_ ABSL_GUARDED_BY(queue_mutex_) = false;

  mutable StateCapability state_;
  // The read gate (see the top of this file). Never held across an apply, a read or an
  // fsync, nor together with another of the committer's mutexes.
  mutable Mutex gate_mutex_;
  mutable CondVar gate_changed_;
  // Readers inside the current window.
  mutable int64_t active_readers_ ABSL_GUARDED_BY(gate_mutex_) = 0;
  // Readers waiting for the next window, and the windows opened so far.
  mutable int64_t waiting_readers_ ABSL_GUARDED_BY(gate_mutex_) = 0;
  mutable uint64_t windows_ ABSL_GUARDED_BY(gate_mutex_) = 0;
  bool applying_ ABSL_GUARDED_BY(gate_mutex_) = false;
  // The state's last entry, the journal's last durable entry, and whether an append failed.
  uint64_t applied_seq_ ABSL_GUARDED_BY(gate_mutex_) = 0;
  uint64_t durable_seen_ ABSL_GUARDED_BY(gate_mutex_) = 0;
  bool poisoned_seen_ ABSL_GUARDED_BY(gate_mutex_) = false;

  // The groups applied and not yet written.
  mutable Mutex flight_mutex_;
  mutable CondVar flight_changed_;
  std::deque<InFlight> in_flight_ ABSL_GUARDED_BY(flight_mutex_);
  bool writing_ ABSL_GUARDED_BY(flight_mutex_) = false;
  bool applier_done_ ABSL_GUARDED_BY(flight_mutex_) = false;
  // A snapshot's child process is encoding; collector_ waits for it and then hands the
  // bytes to the write thread (which keeps going until it has them).
  bool collecting_ ABSL_GUARDED_BY(flight_mutex_) = false;
  CommitterStats stats_ ABSL_GUARDED_BY(flight_mutex_);

  std::thread writer_;
  std::thread applier_;
  std::thread collector_;  // started by the applier, joined by it or by the destructor
};

}  // namespace atrium::journal
