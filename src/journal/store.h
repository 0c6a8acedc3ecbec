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
  virtual Status PutSnapshot(const StoredSnapshot& snapshot) = 0;
  virtual Result<std::optional<StoredSnapshot>> LatestSnapshot() = 0;
  // The snapshot at seq, with its state; kNotFound if there is none.
  virtual Result<StoredSnapshot> ReadSnapshot(uint64_t seq) = 0;
  // Every snapshot's seq and digests (state left empty), oldest first.
  virtual Result<std::vector<StoredSnapshot>> SnapshotIndex() = 0;
  virtual bool read_only() const = 0;
};

}  // namespace atrium::journal
