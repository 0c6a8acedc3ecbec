// JournalStore: where the journal's entries and snapshots live. The interface is all the
// journal needs from a database, so SQLite (the embedded default) and PostgreSQL (for
// sites that outgrow one machine) are interchangeable without touching the core.
//
// Contract: Append is atomic and durable when it returns ok (every entry of the call is
// on stable storage, or none is); entries have consecutive sequence numbers from 1;
// nothing is ever updated or deleted except older snapshots.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/error.h"
#include "journal/sha256.h"

namespace atrium::journal {

struct StoredEntry {
  uint64_t seq = 0;
  std::string payload;  // one encoded command
  Digest hash{};        // SHA-256 of (previous hash, seq, payload)
};

struct StoredSnapshot {
  uint64_t seq = 0;       // the state after applying entries 1..seq
  Digest chain_hash{};    // the hash of entry seq (zero for seq 0)
  Digest state_digest{};  // SHA-256 of state
  std::string state;      // core::Core::Encode
};

// The largest chunk of a snapshot's state a store takes in one row.
inline constexpr size_t kSnapshotChunkBytesMax = size_t{64} << 20;

class JournalStore {
 public:
  virtual ~JournalStore() = default;

  // Appends entries in one durable transaction.
  virtual Status Append(std::span<const StoredEntry> entries) = 0;
  // Calls visit for every entry with seq > after_seq in order; stops at its first error.
  virtual Status Scan(uint64_t after_seq,
                      const std::function<Status(const StoredEntry&)>& visit) = 0;
  // The last entry's seq and hash, or nullopt for an empty journal.
  virtual Result<std::optional<StoredEntry>> LastEntry() = 0;
  // Writes a snapshot (its head and its state's chunks) in one transaction, and prunes
  // older snapshots.
  virtual Status PutSnapshot(const StoredSnapshot& snapshot) = 0;
  // A snapshot written in parts, for a pipeline that appends entries between them
  // (Committer): PutSnapshotChunk writes chunk `chunk` of snapshot `seq`'s state in a
  // transaction of its own; nothing reads it until PutSnapshotHead names the snapshot
  // (seq, hashes, the state's size and its chunk count; `head.state` is not read) once
  // every chunk is written. The head drops the heads of older snapshots beyond the kept
  // ones; their chunks, and stray chunks such as those of a write a crash cut short, are
  // left to PruneSnapshotChunks. Chunks may be of any size up to the store's bound.
  virtual Status PutSnapshotChunk(uint64_t seq, uint64_t chunk, std::string_view data) = 0;
  virtual Status PutSnapshotHead(const StoredSnapshot& head, uint64_t state_bytes,
                                 uint64_t chunks) = 0;
  // Deletes, in one transaction, at most `chunks_max` chunks that no head names and that
  // are older than the newest head (so never the chunks of a snapshot still being
  // written); returns how many it deleted (fewer than chunks_max: none remain). Deleting a
  // chunk frees every page of its data, which costs about as much as writing it (a 300
  // MiB snapshot took 1.7 s in one transaction on SQLite), so the Committer prunes one
  // chunk between groups, as it writes them.
  virtual Result<uint64_t> PruneSnapshotChunks(uint64_t chunks_max) = 0;
  virtual Result<std::optional<StoredSnapshot>> LatestSnapshot() = 0;
  // The snapshot at seq, with its state; kNotFound if there is none.
  virtual Result<StoredSnapshot> ReadSnapshot(uint64_t seq) = 0;
  // Every snapshot's seq and digests (state left empty), oldest first.
  virtual Result<std::vector<StoredSnapshot>> SnapshotIndex() = 0;
  virtual bool read_only() const = 0;
};

}  // namespace atrium::journal
