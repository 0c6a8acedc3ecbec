// SqliteStore: the embedded JournalStore, one SQLite file in WAL mode with
// synchronous=FULL, so a committed Append survives a crash or power loss. The file holds
// three tables: meta (format and version), entries (seq, payload, hash) and snapshots
// (with their state in chunks of at most kChunkBytesMax, below SQLite's blob limit).
#pragma once

#include <memory>
#include <string>

#include "journal/store.h"

struct sqlite3;

namespace atrium::journal {

enum class OpenMode {
  kReadOnly,        // the file must exist and be an Atrium journal; nothing is written
  kReadWrite,       // the file must exist
  kReadWriteCreate  // created (with its schema) if missing
};

class SqliteStore final : public JournalStore {
 public:
  static constexpr size_t kChunkBytesMax = kSnapshotChunkBytesMax;
  static constexpr size_t kSnapshotsKept = 2;

  // kNotFound if the file is missing (and may not be created); kCorruption if it is not
  // an Atrium journal; kIoError if SQLite fails. `vfs` names a registered SQLite VFS
  // (empty: the default), so tests can put a fault-injecting one underneath.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path, OpenMode mode,
                                                   const std::string& vfs = "");
  ~SqliteStore() override;

  Status Append(std::span<const StoredEntry> entries) override;
  Status Scan(uint64_t after_seq, const std::function<Status(const StoredEntry&)>& visit) override;
  Result<std::optional<StoredEntry>> LastEntry() override;
  Status PutSnapshot(const StoredSnapshot& snapshot) override;
  Status PutSnapshotChunk(uint64_t seq, uint64_t chunk, std::string_view data) override;
  Status PutSnapshotHead(const StoredSnapshot& head, uint64_t state_bytes,
                         uint64_t chunks) override;
  Result<uint64_t> PruneSnapshotChunks(uint64_t chunks_max) override;
  Result<std::optional<StoredSnapshot>> LatestSnapshot() override;
  Result<StoredSnapshot> ReadSnapshot(uint64_t seq) override;
  Result<std::vector<StoredSnapshot>> SnapshotIndex() override;
  bool read_only() const override { return read_only_; }

 private:
  SqliteStore(sqlite3* db, bool read_only) : db_(db), read_only_(read_only) {}
  Status Exec(const char* sql);
  Error Failure(const std::string& what) const;
  Status Prepare(OpenMode mode);
  Status CheckMeta();
  Status Commit();  // COMMIT, rolling back if it fails
  // BEGIN IMMEDIATE, then `body` (false: its statement failed, rolled back as `what`).
  Status InWriteTransaction(const char* what, const std::function<bool()>& body);
  // Inside a transaction: one chunk of a snapshot's state; a snapshot's head, then the
  // pruning of older snapshots and of chunks no head names.
  bool InsertChunk(uint64_t seq, uint64_t chunk, std::string_view data);
  bool InsertHead(const StoredSnapshot& head, uint64_t state_bytes, uint64_t chunks);

  sqlite3* db_;
  bool read_only_;
};

}  // namespace atrium::journal
