#include "journal/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstring>

namespace atrium::journal {
namespace {

constexpr std::string_view kFormat = "atrium-journal";
constexpr std::string_view kVersion = "1";
constexpr int kBusyTimeoutMs = 5000;

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void BindInt(int index, uint64_t value) {
    sqlite3_bind_int64(stmt_, index, static_cast<sqlite3_int64>(value));
  }
  void BindBlob(int index, std::string_view bytes) {
    sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_STATIC);
  }
  void BindText(int index, std::string_view text) {
    sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
  }
  int Step() { return sqlite3_step(stmt_); }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  uint64_t ColumnInt(int column) {
    return static_cast<uint64_t>(sqlite3_column_int64(stmt_, column));
  }
  std::string_view ColumnBlob(int column) {
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    return data == nullptr
               ? std::string_view()
               : std::string_view(static_cast<const char*>(data), static_cast<size_t>(size));
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

bool ToDigest(std::string_view bytes, Digest* digest) {
  if (bytes.size() != digest->size()) return false;
  std::memcpy(digest->data(), bytes.data(), digest->size());
  return true;
}

std::string_view AsBytes(const Digest& digest) {
  return std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size());
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path, OpenMode mode,
                                                       const std::string& vfs) {
  struct stat info {};
  const bool exists = ::stat(path.c_str(), &info) == 0;
  if (!exists && mode != OpenMode::kReadWriteCreate) {
    return MakeError(ErrorCode::kNotFound, "no journal at " + path, "db");
  }
  if (exists && !S_ISREG(info.st_mode)) {
    return MakeError(ErrorCode::kInvalidArgument, path + " is not a regular file", "db");
  }
  const bool read_only = mode == OpenMode::kReadOnly;
  const int flags =
      read_only
          ? SQLITE_OPEN_READONLY
          : (SQLITE_OPEN_READWRITE | (mode == OpenMode::kReadWriteCreate ? SQLITE_OPEN_CREATE : 0));
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX,
                                 vfs.empty() ? nullptr : vfs.c_str());
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, read_only));
  if (rc != SQLITE_OK) return store->Failure("cannot open " + path);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  ATRIUM_TRY(store->Prepare(mode));
  return store;
}

SqliteStore::~SqliteStore() { sqlite3_close_v2(db_); }

Error SqliteStore::Failure(const std::string& what) const {
  const int code = sqlite3_errcode(db_);
  const int primary = code & 0xFF;
  const ErrorCode mapped = (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
                               ? ErrorCode::kCorruption
                               : ErrorCode::kIoError;
  return MakeError(mapped, what + ": " + sqlite3_errmsg(db_));
}

Status SqliteStore::Exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Failure(std::string("sqlite: ") + sql);
  }
  return OkStatus();
}

Status SqliteStore::Prepare(OpenMode mode) {
  // Look before writing anything: a file that is not an Atrium journal is refused as it
  // is, and only an empty database may be given the journal's schema.
  uint64_t table_count = 0;
  bool has_meta = false;
  {
    // Scoped: the statement must be finished before the journal mode can change.
    Statement tables(db_, "SELECT count(*), coalesce(sum(name = 'meta'), 0) FROM sqlite_master");
    if (!tables.ok() || tables.Step() != SQLITE_ROW) return Failure("not a journal");
    table_count = tables.ColumnInt(0);
    has_meta = tables.ColumnInt(1) > 0;
  }
  if (!has_meta) {
    if (mode != OpenMode::kReadWriteCreate || table_count > 0) {
      return MakeError(ErrorCode::kCorruption, "not an Atrium journal (no meta table)");
    }
  } else {
    ATRIUM_TRY(CheckMeta());
  }
  if (read_only_) return OkStatus();
  // WAL: readers never block the writer; FULL: fsync the WAL at every commit. Both are
  // checked, because a store that does not fsync must not acknowledge anything.
  ATRIUM_TRY(Exec("PRAGMA journal_mode=WAL"));
  ATRIUM_TRY(Exec("PRAGMA synchronous=FULL"));
  {
    Statement synchronous(db_, "PRAGMA synchronous");
    if (!synchronous.ok() || synchronous.Step() != SQLITE_ROW || synchronous.ColumnInt(0) != 2) {
      return MakeError(ErrorCode::kIoError, "SQLite refused synchronous=FULL");
    }
  }
  if (has_meta) return OkStatus();
  ATRIUM_TRY(Exec("BEGIN IMMEDIATE"));
  Status created = Exec(
      "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL,"
      " hash BLOB NOT NULL);"
      "CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, chain_hash BLOB NOT NULL,"
      " state_digest BLOB NOT NULL, state_bytes INTEGER NOT NULL, chunks INTEGER NOT NULL);"
      "CREATE TABLE IF NOT EXISTS snapshot_chunks (seq INTEGER NOT NULL, chunk INTEGER NOT NULL,"
      " data BLOB NOT NULL, PRIMARY KEY (seq, chunk));"
      "INSERT OR IGNORE INTO meta VALUES ('format', 'atrium-journal'), ('version', '1');");
  if (!created.ok()) {
    (void)Exec("ROLLBACK");
    return created;
  }
  ATRIUM_TRY(Commit());
  return CheckMeta();
}

Status SqliteStore::CheckMeta() {
  Statement meta(db_, "SELECT key, value FROM meta");
  if (!meta.ok()) return MakeError(ErrorCode::kCorruption, "not an Atrium journal (bad meta)");
  bool format_ok = false;
  bool version_ok = false;
  int rc = 0;
  while ((rc = meta.Step()) == SQLITE_ROW) {
    const auto* key = reinterpret_cast<const char*>(sqlite3_column_text(meta.get(), 0));
    const auto* value = reinterpret_cast<const char*>(sqlite3_column_text(meta.get(), 1));
    if (key == nullptr || value == nullptr) continue;
    if (std::string_view(key) == "format") format_ok = std::string_view(value) == kFormat;
    if (std::string_view(key) == "version") version_ok = std::string_view(value) == kVersion;
  }
  if (rc != SQLITE_DONE) return Failure("reading meta");
  if (!format_ok || !version_ok) {
    return MakeError(ErrorCode::kCorruption, "not an Atrium journal of version 1");
  }
  return OkStatus();
}

Status SqliteStore::Commit() {
  Status committed = Exec("COMMIT");
  // A failed COMMIT can leave the transaction open; close it so the next one can begin.
  if (!committed.ok() && sqlite3_get_autocommit(db_) == 0) (void)Exec("ROLLBACK");
  return committed;
}

Status SqliteStore::Append(std::span<const StoredEntry> entries) {
  if (read_only_) return MakeError(ErrorCode::kInvalidArgument, "journal opened read-only");
  if (entries.empty()) return OkStatus();
  ATRIUM_TRY(Exec("BEGIN IMMEDIATE"));
  Statement insert(db_, "INSERT INTO entries (seq, payload, hash) VALUES (?, ?, ?)");
  bool ok = insert.ok();
  for (size_t entry_idx = 0; ok && entry_idx < entries.size(); ++entry_idx) {
    const StoredEntry& entry = entries[entry_idx];
    insert.BindInt(1, entry.seq);
    insert.BindBlob(2, entry.payload);
    insert.BindBlob(3, AsBytes(entry.hash));
    ok = insert.Step() == SQLITE_DONE;
    insert.Reset();
  }
  if (!ok) {
    Error error = Failure("appending to the journal");
    (void)Exec("ROLLBACK");
    return error;
  }
  return Commit();
}

Status SqliteStore::Scan(uint64_t after_seq,
                         const std::function<Status(const StoredEntry&)>& visit) {
  Statement select(db_, "SELECT seq, payload, hash FROM entries WHERE seq > ? ORDER BY seq");
  if (!select.ok()) return Failure("reading the journal");
  select.BindInt(1, after_seq);
  StoredEntry entry;
  int rc = 0;
  while ((rc = select.Step()) == SQLITE_ROW) {
    entry.seq = select.ColumnInt(0);
    entry.payload.assign(select.ColumnBlob(1));
    if (!ToDigest(select.ColumnBlob(2), &entry.hash)) {
      return MakeError(ErrorCode::kCorruption,
                       "entry " + std::to_string(entry.seq) + " has a malformed hash");
    }
    ATRIUM_TRY(visit(entry));
  }
  if (rc != SQLITE_DONE) return Failure("reading the journal");
  return OkStatus();
}

Result<std::optional<StoredEntry>> SqliteStore::LastEntry() {
  Statement select(db_, "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1");
  if (!select.ok()) return Failure("reading the journal");
  const int rc = select.Step();
  if (rc == SQLITE_DONE) return std::optional<StoredEntry>();
  if (rc != SQLITE_ROW) return Failure("reading the journal");
  StoredEntry entry;
  entry.seq = select.ColumnInt(0);
  if (!ToDigest(select.ColumnBlob(1), &entry.hash)) {
    return MakeError(ErrorCode::kCorruption, "last entry has a malformed hash");
  }
  return std::optional<StoredEntry>(std::move(entry));
}

Status SqliteStore::PutSnapshot(const StoredSnapshot& snapshot) {
  const size_t chunks = (snapshot.state.size() + kChunkBytesMax - 1) / kChunkBytesMax;
  return InWriteTransaction("writing a snapshot", [&] {
    bool ok = true;
    for (size_t chunk_idx = 0; ok && chunk_idx < chunks; ++chunk_idx) {
      ok = InsertChunk(
          snapshot.seq, chunk_idx,
          std::string_view(snapshot.state).substr(chunk_idx * kChunkBytesMax, kChunkBytesMax));
    }
    // Written whole (offline): the older snapshots' chunks go in the same transaction.
    return ok && InsertHead(snapshot, snapshot.state.size(), chunks) &&
           Exec("DELETE FROM snapshot_chunks WHERE seq NOT IN (SELECT seq FROM snapshots)").ok();
  });
}

Status SqliteStore::PutSnapshotChunk(uint64_t seq, uint64_t chunk, std::string_view data) {
  if (data.size() > kChunkBytesMax) {
    return MakeError(ErrorCode::kInvalidArgument, "a snapshot chunk above the store's bound");
  }
  return InWriteTransaction("writing a snapshot chunk",
                            [&] { return InsertChunk(seq, chunk, data); });
}

Status SqliteStore::PutSnapshotHead(const StoredSnapshot& head, uint64_t state_bytes,
                                    uint64_t chunks) {
  return InWriteTransaction("writing a snapshot",
                            [&] { return InsertHead(head, state_bytes, chunks); });
}

Status SqliteStore::InWriteTransaction(const char* what, const std::function<bool()>& body) {
  if (read_only_) return MakeError(ErrorCode::kInvalidArgument, "journal opened read-only");
  ATRIUM_TRY(Exec("BEGIN IMMEDIATE"));
  if (!body()) {
    Error error = Failure(what);
    (void)Exec("ROLLBACK");
    return error;
  }
  return Commit();
}

bool SqliteStore::InsertChunk(uint64_t seq, uint64_t chunk, std::string_view data) {
  Statement insert(db_,
                   "INSERT OR REPLACE INTO snapshot_chunks (seq, chunk, data) VALUES (?, ?, ?)");
  if (!insert.ok()) return false;
  insert.BindInt(1, seq);
  insert.BindInt(2, chunk);
  insert.BindBlob(3, data);
  return insert.Step() == SQLITE_DONE;
}

// The head names the snapshot; then only the newest snapshots' heads are kept (the entries
// themselves are never pruned). Chunks no head names are left to PruneSnapshotChunks.
bool SqliteStore::InsertHead(const StoredSnapshot& head, uint64_t state_bytes, uint64_t chunks) {
  Statement insert(db_,
                   "INSERT OR REPLACE INTO snapshots (seq, chain_hash, state_digest, state_bytes,"
                   " chunks) VALUES (?, ?, ?, ?, ?)");
  if (!insert.ok()) return false;
  insert.BindInt(1, head.seq);
  insert.BindBlob(2, AsBytes(head.chain_hash));
  insert.BindBlob(3, AsBytes(head.state_digest));
  insert.BindInt(4, state_bytes);
  insert.BindInt(5, chunks);
  if (insert.Step() != SQLITE_DONE) return false;
  // Chunks beyond its count are of an earlier write of the same seq cut short.
  Statement beyond(db_, "DELETE FROM snapshot_chunks WHERE seq = ? AND chunk >= ?");
  if (!beyond.ok()) return false;
  beyond.BindInt(1, head.seq);
  beyond.BindInt(2, chunks);
  if (beyond.Step() != SQLITE_DONE) return false;
  Statement prune(db_,
                  "DELETE FROM snapshots WHERE seq NOT IN"
                  " (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT ?)");
  if (!prune.ok()) return false;
  prune.BindInt(1, kSnapshotsKept);
  return prune.Step() == SQLITE_DONE;
}

Result<uint64_t> SqliteStore::PruneSnapshotChunks(uint64_t chunks_max) {
  uint64_t pruned = 0;
  ATRIUM_TRY(InWriteTransaction("pruning snapshot chunks", [&] {
    Statement prune(db_,
                    "DELETE FROM snapshot_chunks WHERE rowid IN (SELECT rowid FROM snapshot_chunks"
                    " WHERE seq NOT IN (SELECT seq FROM snapshots)"
                    " AND seq < (SELECT max(seq) FROM snapshots) ORDER BY seq, chunk LIMIT ?)");
    if (!prune.ok()) return false;
    prune.BindInt(1, std::min<uint64_t>(chunks_max, INT64_MAX));
    if (prune.Step() != SQLITE_DONE) return false;
    pruned = static_cast<uint64_t>(sqlite3_changes(db_));
    return true;
  }));
  return pruned;
}

Result<std::vector<StoredSnapshot>> SqliteStore::SnapshotIndex() {
  Statement select(db_, "SELECT seq, chain_hash, state_digest FROM snapshots ORDER BY seq");
  if (!select.ok()) return Failure("reading snapshots");
  std::vector<StoredSnapshot> index;
  int rc = 0;
  while ((rc = select.Step()) == SQLITE_ROW) {
    StoredSnapshot snapshot;
    snapshot.seq = select.ColumnInt(0);
    if (!ToDigest(select.ColumnBlob(1), &snapshot.chain_hash) ||
        !ToDigest(select.ColumnBlob(2), &snapshot.state_digest)) {
      return MakeError(ErrorCode::kCorruption,
                       "snapshot " + std::to_string(snapshot.seq) + " has a malformed digest");
    }
    index.push_back(std::move(snapshot));
  }
  if (rc != SQLITE_DONE) return Failure("reading snapshots");
  return index;
}

Result<std::optional<StoredSnapshot>> SqliteStore::LatestSnapshot() {
  ATRIUM_ASSIGN_OR_RETURN(std::vector<StoredSnapshot> index, SnapshotIndex());
  if (index.empty()) return std::optional<StoredSnapshot>();
  ATRIUM_ASSIGN_OR_RETURN(StoredSnapshot snapshot, ReadSnapshot(index.back().seq));
  return std::optional<StoredSnapshot>(std::move(snapshot));
}

Result<StoredSnapshot> SqliteStore::ReadSnapshot(uint64_t seq) {
  Statement head(
      db_, "SELECT chain_hash, state_digest, state_bytes, chunks FROM snapshots WHERE seq = ?");
  if (!head.ok()) return Failure("reading a snapshot");
  head.BindInt(1, seq);
  const int head_rc = head.Step();
  if (head_rc == SQLITE_DONE) {
    return MakeError(ErrorCode::kNotFound, "no snapshot at " + std::to_string(seq));
  }
  if (head_rc != SQLITE_ROW) return Failure("reading a snapshot");
  StoredSnapshot snapshot;
  snapshot.seq = seq;
  if (!ToDigest(head.ColumnBlob(0), &snapshot.chain_hash) ||
      !ToDigest(head.ColumnBlob(1), &snapshot.state_digest)) {
    return MakeError(ErrorCode::kCorruption,
                     "snapshot " + std::to_string(seq) + " has a malformed digest");
  }
  const uint64_t state_bytes = head.ColumnInt(2);
  const uint64_t chunks = head.ColumnInt(3);
  Statement select(db_, "SELECT chunk, data FROM snapshot_chunks WHERE seq = ? ORDER BY chunk");
  if (!select.ok()) return Failure("reading a snapshot");
  select.BindInt(1, seq);
  if (chunks > (uint64_t{1} << 20) || state_bytes > chunks * kChunkBytesMax) {
    return MakeError(ErrorCode::kCorruption, "snapshot " + std::to_string(seq) + " size is wrong");
  }
  // Reserve only what is plausible; a damaged size must not cause a huge allocation.
  snapshot.state.reserve(std::min<uint64_t>(state_bytes, uint64_t{1} << 30));
  uint64_t expected_chunk = 0;
  int rc = 0;
  while ((rc = select.Step()) == SQLITE_ROW) {
    if (select.ColumnInt(0) != expected_chunk++) {
      return MakeError(ErrorCode::kCorruption, "snapshot chunk missing");
    }
    snapshot.state.append(select.ColumnBlob(1));
  }
  if (rc != SQLITE_DONE) return Failure("reading a snapshot");
  if (expected_chunk != chunks || snapshot.state.size() != state_bytes) {
    return MakeError(ErrorCode::kCorruption, "snapshot " + std::to_string(seq) + " is incomplete");
  }
  return snapshot;
}

}  // namespace atrium::journal
