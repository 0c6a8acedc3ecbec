// Journal: durability for the core. DurableCore wraps a core::Core and a JournalStore:
// Submit applies commands to the core and, before returning their results, appends every
// command that changed state to the store in one durable transaction (group commit: one
// fsync for the whole group). Entries are hash-chained: entry n's hash is
// SHA-256(hash of entry n-1 || n as 8 little-endian bytes || payload), entry 0's hash
// being 32 zero bytes, so any edit to the history breaks the chain at that entry.
//
// Open = load the latest snapshot, check its digest and its place in the chain, replay
// the entries after it, check the core's invariants. A snapshot of an older format
// version (a store written by an earlier build) is passed over: the journal is replayed
// from its first entry, whose format has not changed, and the next snapshot is written
// in the current format. Snapshots are written on demand and automatically by the
// "bounded tail" policy (Options), so restart replays a bounded number of entries.
//
// If the store fails to append, the in-memory core is ahead of what is durable: the
// DurableCore refuses every further command (kJournalPoisoned) and must be reopened.
//
//   auto store = SqliteStore::Open("atrium.db", OpenMode::kReadWriteCreate);
//   auto durable = DurableCore::Open(std::move(*store), {});
//   auto results = (*durable)->Submit(commands);  // durable when ok
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/core.h"
#include "journal/store.h"

namespace atrium::journal {

struct Options {
  // Snapshot policy "bounded tail, amortised". A snapshot is the state itself
  // (docs/snapshots.md), so restart costs decoding it plus replaying the entries after it,
  // and each snapshot costs encoding, digesting and storing the whole state. A snapshot
  // is due once the journal since the last one holds snapshot_due_entries() entries: the
  // larger of snapshot_entries and the last snapshot's size over
  // snapshot_state_bytes_per_entry. A small state is thus snapshotted every
  // snapshot_entries entries (replaying 100,000 service entries takes about a second),
  // and a large one after a tail that grows with it, so the work snapshots add per entry
  // stays bounded as the state grows, while the tail replays in well under the time the
  // snapshot itself takes to load (the default 4096 bytes per entry keeps the count at
  // 100,000 up to a 400 MB state, so a store of 1,000,000 jobs restarts within 3 s with
  // its longest tail; 512 halves the POST tail at 30,000 submissions/s and allows a
  // restart about 4x as long: docs/snapshots.md). A snapshot is
  // also due once the journal's bytes reach the larger of snapshot_bytes_min and
  // snapshot_growth_factor times the last snapshot's size (a ledger whose state is mostly
  // transfers is then not copied over and over for journal that replays as fast as a
  // snapshot loads). snapshot_entries = 0 turns the entry count off;
  // snapshot_state_bytes_per_entry = 0 keeps it at snapshot_entries.
  uint64_t snapshot_entries = 100'000;
  uint64_t snapshot_state_bytes_per_entry = 4096;
  uint64_t snapshot_bytes_min = 64 << 20;
  uint64_t snapshot_growth_factor = 4;
  bool auto_snapshot = true;
};

// Commands applied in memory and chained, waiting to be committed (see Prepare).
struct PreparedGroup {
  std::vector<core::CommandResult> results;
  std::vector<StoredEntry> entries;
};

class DurableCore {
 public:
  static Result<std::unique_ptr<DurableCore>> Open(std::unique_ptr<JournalStore> store,
                                                   Options options = {});

  // Applies the commands in order; returns their results once every command that
  // changed state is durable. On a store failure returns the error and poisons.
  Result<std::vector<core::CommandResult>> Submit(std::span<const core::Command> commands);
  Result<core::CommandResult> Submit(const core::Command& command);

  // The two halves of Submit, for a pipeline that applies the next group while the
  // previous one is being written (Committer). Prepare applies the commands in memory
  // and chains their entries: the state is then ahead of the journal, so nothing may be
  // acknowledged or read from it until Commit of that group succeeds. Groups are
  // committed in the order they were prepared. Prepare and Commit may run on two threads
  // (one each); Snapshot only when every prepared group is committed.
  Result<PreparedGroup> Prepare(std::span<const core::Command> commands);
  Status Commit(const PreparedGroup& group);
  // Whether the journal since the last snapshot calls for a new one (Options).
  bool snapshot_due() const;
  // The entries after which the next snapshot is due by count (0: never by count).
  uint64_t snapshot_due_entries() const;
  // The last entry known durable.
  uint64_t durable_seq() const { return durable_seq_.load(); }
  // Whether an append failed (then the state is ahead of the journal until reopened).
  bool poisoned() const { return poisoned_.load(); }

  // Writes a snapshot of the current state.
  Status Snapshot();
  // Snapshot's two halves, for a pipeline: Capture encodes the state (it must equal the
  // journal: every prepared group committed), restarts the snapshot policy's count, and
  // is the only part that reads the state (call it where Prepare may not run at the same
  // time); Write digests and stores the bytes and touches nothing Prepare does, so it may
  // run on the thread that appends (a store is not shared between threads) while the
  // next groups are prepared.
  Result<StoredSnapshot> CaptureSnapshot();
  Status WriteSnapshot(StoredSnapshot snapshot);
  // WriteSnapshot in parts, for a pipeline that appends groups between them (Committer):
  // each call stores the next chunk of `write`'s state (at most part_bytes) in a
  // transaction of its own and digests it; the call after the last chunk stores the head
  // that makes the snapshot readable. Answers whether the snapshot is now stored. Like
  // WriteSnapshot it touches nothing Prepare does.
  struct SnapshotWrite {
    explicit SnapshotWrite(StoredSnapshot captured) : snapshot(std::move(captured)) {}
    StoredSnapshot snapshot;
    uint64_t written_bytes = 0;
    uint64_t chunks = 0;
    Sha256 digest;
  };
  Result<bool> WriteSnapshotPart(SnapshotWrite& write, uint64_t part_bytes);
  // Deletes at most chunks_max chunks of snapshots no longer kept (JournalStore::
  // PruneSnapshotChunks); how many it deleted. A stored head leaves its elders' chunks to
  // this, so that freeing them is spread out like writing them. Touches nothing Prepare
  // does.
  Result<uint64_t> PruneSnapshotChunks(uint64_t chunks_max);
  // CaptureSnapshot with the encode in a child process, so the state's owner goes on
  // applying meanwhile (the way Redis saves: fork, and copy-on-write keeps the child's
  // view of the state as it was at the fork). ForkSnapshot has CaptureSnapshot's
  // preconditions and costs only the fork (copying the page tables); the child encodes
  // the state into an anonymous file (memfd) and exits. CollectSnapshot waits for the
  // child and reads the bytes; it touches nothing Prepare does, so any thread may call
  // it. `in_child` runs in the child before the encode (a test holds the child there).
  // If the fork fails (or !kCanForkSnapshot) the caller may fall back to CaptureSnapshot; if the
  // child fails nothing is lost (the journal is complete) and the next snapshot is taken when due.
  // Whether this build can encode in a child. AddressSanitizer's allocator (GCC 12, clang
  // 14) is not fork-safe: a lock another thread held at the fork stays held in the child,
  // whose first allocation then waits forever. glibc's malloc (release builds) and
  // ThreadSanitizer's runtime take their locks around fork, so the child allocates freely.
  static constexpr bool kCanForkSnapshot =
#if defined(__SANITIZE_ADDRESS__)
      false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
      false;
#else
      true;
#endif
#else
      true;
#endif
  // How much nicer than the service the encoding child runs.
  static constexpr int kSnapshotChildNice = 10;
  struct ForkedSnapshot {
    int pid = -1;
    int fd = -1;
    uint64_t seq = 0;
    Digest chain_hash{};
  };
  Result<ForkedSnapshot> ForkSnapshot(const std::function<void()>& in_child = {});
  Result<StoredSnapshot> CollectSnapshot(ForkedSnapshot forked);
  // Entries since the last snapshot (or since the start).
  uint64_t entries_since_snapshot() const { return entries_since_snapshot_; }

  const core::Core& core() const { return core_; }
  // The last entry prepared (equal to durable_seq() outside a pipeline).
  uint64_t last_seq() const { return last_seq_; }
  const Digest& last_hash() const { return last_hash_; }
  // The seq of the snapshot Open started from (0: replayed from the beginning).
  uint64_t recovered_from_seq() const { return recovered_from_seq_; }
  // Snapshots Open passed over as damaged, newest first, each with what was wrong; the
  // state came from an older snapshot or the journal alone instead.
  struct SkippedSnapshot {
    uint64_t seq = 0;
    std::string reason;
  };
  const std::vector<SkippedSnapshot>& skipped_snapshots() const { return skipped_snapshots_; }

 private:
  DurableCore(std::unique_ptr<JournalStore> store, Options options)
      : store_(std::move(store)), options_(options) {}
  Status Recover();
  // Recover from `snapshot` (or from the journal's start) and the entries after it; the
  // snapshot's bytes are freed once its state is loaded.
  // `snapshot_damaged` says whether a failure was the snapshot's own (its digest, its
  // decoding or its invariants), found before any entry was replayed.
  Status RecoverFrom(std::optional<StoredSnapshot> snapshot, bool* snapshot_damaged);
  // Back to an empty core before another attempt.
  void ResetForRecovery();

  std::unique_ptr<JournalStore> store_;
  Options options_;
  core::Core core_;
  uint64_t last_seq_ = 0;
  Digest last_hash_{};
  uint64_t recovered_from_seq_ = 0;
  std::vector<SkippedSnapshot> skipped_snapshots_;
  uint64_t bytes_since_snapshot_ = 0;
  uint64_t entries_since_snapshot_ = 0;
  // Read by the apply thread (the policy, the encode buffer's size), set by a collector.
  std::atomic<uint64_t> last_snapshot_bytes_ = 0;
  std::atomic<uint64_t> durable_seq_ = 0;
  std::atomic<bool> poisoned_ = false;
};

// The chain hash of entry `seq` after `previous`.
Digest ChainHash(const Digest& previous, uint64_t seq, std::string_view payload);

struct VerifyReport {
  uint64_t entries = 0;
  uint64_t snapshots_checked = 0;
  size_t accounts = 0;
  size_t transfers = 0;
  Digest last_hash{};
};

// Verifies a store from its journal alone: recomputes the hash chain from the first
// entry, replays every command into a fresh core, compares each stored snapshot with the
// replayed state at its seq, and checks the core's invariants at the end. The first
// problem is returned: kChainBroken names the first entry whose hash or seq does not
// follow, kCorruption an undecodable entry or snapshot, kInvariantViolated a breach.
Result<VerifyReport> VerifyStore(JournalStore& store);

}  // namespace atrium::journal
