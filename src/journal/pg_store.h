// PgStore: the JournalStore for sites that outgrow one machine, in a PostgreSQL database
// (libpqxx). Same tables and contract as SqliteStore: Append commits one transaction
// (PostgreSQL fsyncs its WAL at commit with synchronous_commit=on, which Atrium
// requires), entries are never updated, the two newest snapshots are kept.
//
//   auto store = PgStore::Open("postgresql://atrium@127.0.0.1:5432/atrium",
//                              OpenMode::kReadWriteCreate);
#pragma once

#include <memory>
#include <string>

#include "journal/sqlite_store.h"  // OpenMode
#include "journal/store.h"

namespace atrium::journal {

struct PgConnection;  // wraps libpqxx's connection, kept out of this header

class PgStore final : public JournalStore {
 public:
  static constexpr size_t kChunkBytesMax = kSnapshotChunkBytesMax;
  static constexpr size_t kSnapshotsKept = 2;
  static constexpr size_t kScanPageEntries = 4096;

  // kUnavailable if the server cannot be reached; kNotFound if the journal's tables do
  // not exist and mode forbids creating them; kCorruption if they hold something else.
  static Result<std::unique_ptr<PgStore>> Open(const std::string& url, OpenMode mode);
  ~PgStore() override;

  Status Append(std::span<const StoredEntry> entries) override;
  Status Scan(uint64_t after_seq, const std::function<Status(const StoredEntry&)>& visit) override;
  Result<std::optional<StoredEntry>> LastEntry() override;
  Status PutSnapshot(const StoredSnapshot& snapshot) override;
  Status PutSnapshotChunk(uint64_t seq, uint64_t chunk, std::string_view data) override;
  Status PutSnapshotHead(const StoredSnapshot& head, uint64_t state_bytes,
                         uint64_t chunks) override;
  Result<uint64_t> PruneSnapshotChunks(uint64_t chunks_max) override;
  Result<StoredSnapshot> ReadSnapshot(uint64_t seq) override;
  Result<std::optional<StoredSnapshot>> LatestSnapshot() override;
  Result<std::vector<StoredSnapshot>> SnapshotIndex() override;
  bool read_only() const override { return read_only_; }

 private:
  PgStore(std::unique_ptr<PgConnection> connection, bool read_only);
  Status Prepare(OpenMode mode);

  std::unique_ptr<PgConnection> connection_;
  bool read_only_;
};

// Whether `url` names a PostgreSQL store (postgresql:// or postgres://).
bool IsPostgresUrl(std::string_view url);

}  // namespace atrium::journal
