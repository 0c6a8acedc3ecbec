#include "journal/pg_store.h"

#include <cstring>
#include <pqxx/pqxx>

namespace atrium::journal {

struct PgConnection {
  explicit PgConnection(const std::string& url) : connection(url) {}
  pqxx::connection connection;
};

namespace {

// libpqxx reports failures by exception; they stop here and become Errors.
template <typename Body>
auto Guard(const char* what, Body body) -> decltype(body()) {
  try {
    return body();
  } catch (const pqxx::broken_connection& failure) {
    return MakeError(ErrorCode::kUnavailable, std::string(what) + ": " + failure.what());
  } catch (const pqxx::data_exception& failure) {
    return MakeError(ErrorCode::kCorruption, std::string(what) + ": " + failure.what());
  } catch (const std::exception& failure) {
    return MakeError(ErrorCode::kIoError, std::string(what) + ": " + failure.what());
  }
}

pqxx::binarystring Blob(std::string_view bytes) {
  return pqxx::binarystring(bytes.data(), bytes.size());
}
pqxx::binarystring Blob(const Digest& digest) {
  return pqxx::binarystring(digest.data(), digest.size());
}

bool ToDigest(const pqxx::field& field, Digest* digest) {
  const pqxx::binarystring bytes(field);
  if (bytes.size() != digest->size()) return false;
  std::memcpy(digest->data(), bytes.data(), digest->size());
  return true;
}

int64_t AsInt(uint64_t value) { return static_cast<int64_t>(value); }

}  // namespace

bool IsPostgresUrl(std::string_view url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

PgStore::PgStore(std::unique_ptr<PgConnection> connection, bool read_only)
    : connection_(std::move(connection)), read_only_(read_only) {}

PgStore::~PgStore() = default;

Result<std::unique_ptr<PgStore>> PgStore::Open(const std::string& url, OpenMode mode) {
  return Guard("connecting to PostgreSQL", [&]() -> Result<std::unique_ptr<PgStore>> {
    auto connection = std::make_unique<PgConnection>(url);
    std::unique_ptr<PgStore> store(new PgStore(std::move(connection), mode == OpenMode::kReadOnly));
    ATRIUM_TRY(store->Prepare(mode));
    return store;
  });
}

Status PgStore::Prepare(OpenMode mode) {
  return Guard("preparing the journal", [&]() -> Status {
    {
      pqxx::nontransaction probe(connection_->connection);
      const auto sync = probe.exec1("SHOW synchronous_commit")[0].as<std::string>();
      if (sync == "off") {
        return MakeError(ErrorCode::kInvalidArgument,
                         "synchronous_commit is off: commits would not be durable", "db");
      }
      const bool exists =
          probe.exec1("SELECT to_regclass('atrium_meta') IS NOT NULL")[0].as<bool>();
      if (!exists && mode != OpenMode::kReadWriteCreate) {
        return MakeError(ErrorCode::kNotFound, "no Atrium journal in this database", "db");
      }
    }
    if (mode == OpenMode::kReadWriteCreate) {
      pqxx::work create(connection_->connection);
      // One creator at a time: a transaction-scoped advisory lock serialises them.
      create.exec("SELECT pg_advisory_xact_lock(7401)");
      create.exec(
          "CREATE TABLE IF NOT EXISTS atrium_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
          "CREATE TABLE IF NOT EXISTS atrium_entries (seq BIGINT PRIMARY KEY,"
          " payload BYTEA NOT NULL, hash BYTEA NOT NULL);"
          "CREATE TABLE IF NOT EXISTS atrium_snapshots (seq BIGINT PRIMARY KEY,"
          " chain_hash BYTEA NOT NULL, state_digest BYTEA NOT NULL, state_bytes BIGINT NOT NULL,"
          " chunks BIGINT NOT NULL);"
          "CREATE TABLE IF NOT EXISTS atrium_snapshot_chunks (seq BIGINT NOT NULL,"
          " chunk BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (seq, chunk));"
          "INSERT INTO atrium_meta VALUES ('format', 'atrium-journal'), ('version', '1')"
          " ON CONFLICT (key) DO NOTHING");
      create.commit();
    }
    pqxx::read_transaction read(connection_->connection);
    bool format_ok = false;
    bool version_ok = false;
    for (const auto& row : read.exec("SELECT key, value FROM atrium_meta")) {
      const auto key = row[0].as<std::string>();
      const auto value = row[1].as<std::string>();
      if (key == "format") format_ok = value == "atrium-journal";
      if (key == "version") version_ok = value == "1";
    }
    if (!format_ok || !version_ok) {
      return MakeError(ErrorCode::kCorruption, "not an Atrium journal of version 1");
    }
    return OkStatus();
  });
}

Status PgStore::Append(std::span<const StoredEntry> entries) {
  if (read_only_) return MakeError(ErrorCode::kInvalidArgument, "journal opened read-only");
  if (entries.empty()) return OkStatus();
  return Guard("appending to the journal", [&]() -> Status {
    pqxx::work append(connection_->connection);
    for (const StoredEntry& entry : entries) {
      append.exec_params0("INSERT INTO atrium_entries (seq, payload, hash) VALUES ($1, $2, $3)",
                          AsInt(entry.seq), Blob(entry.payload), Blob(entry.hash));
    }
    append.commit();
    return OkStatus();
  });
}

Status PgStore::Scan(uint64_t after_seq, const std::function<Status(const StoredEntry&)>& visit) {
  uint64_t next_after = after_seq;
  for (;;) {
    std::vector<StoredEntry> page;
    ATRIUM_TRY(Guard("reading the journal", [&]() -> Status {
      pqxx::read_transaction read(connection_->connection);
      const pqxx::result rows = read.exec_params(
          "SELECT seq, payload, hash FROM atrium_entries WHERE seq > $1 ORDER BY seq LIMIT $2",
          AsInt(next_after), static_cast<int64_t>(kScanPageEntries));
      for (const auto& row : rows) {
        StoredEntry& entry = page.emplace_back();
        entry.seq = row[0].as<uint64_t>();
        const pqxx::binarystring payload(row[1]);
        entry.payload.assign(payload.str());
        if (!ToDigest(row[2], &entry.hash)) {
          return MakeError(ErrorCode::kCorruption,
                           "entry " + std::to_string(entry.seq) + " has a malformed hash");
        }
      }
      return OkStatus();
    }));
    for (const StoredEntry& entry : page) ATRIUM_TRY(visit(entry));
    if (page.size() < kScanPageEntries) return OkStatus();
    next_after = page.back().seq;
  }
}

Result<std::optional<StoredEntry>> PgStore::LastEntry() {
  return Guard("reading the journal", [&]() -> Result<std::optional<StoredEntry>> {
    pqxx::read_transaction read(connection_->connection);
    const pqxx::result rows =
        read.exec("SELECT seq, hash FROM atrium_entries ORDER BY seq DESC LIMIT 1");
    if (rows.empty()) return std::optional<StoredEntry>();
    StoredEntry entry;
    entry.seq = rows[0][0].as<uint64_t>();
    if (!ToDigest(rows[0][1], &entry.hash)) {
      return MakeError(ErrorCode::kCorruption, "last entry has a malformed hash");
    }
    return std::optional<StoredEntry>(std::move(entry));
  });
}

namespace {

void InsertChunk(pqxx::work& write, uint64_t seq, uint64_t chunk, std::string_view data) {
  write.exec_params0(
      "INSERT INTO atrium_snapshot_chunks (seq, chunk, data) VALUES ($1, $2, $3)"
      " ON CONFLICT (seq, chunk) DO UPDATE SET data = EXCLUDED.data",
      AsInt(seq), AsInt(chunk), Blob(data));
}

// The head names the snapshot; then only the newest snapshots' heads are kept (the entries
// themselves are never pruned). Chunks no head names are left to PruneSnapshotChunks.
void InsertHead(pqxx::work& write, const StoredSnapshot& head, uint64_t state_bytes,
                uint64_t chunks) {
  write.exec_params0(
      "INSERT INTO atrium_snapshots (seq, chain_hash, state_digest, state_bytes, chunks)"
      " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO UPDATE SET chain_hash ="
      " EXCLUDED.chain_hash, state_digest = EXCLUDED.state_digest, state_bytes ="
      " EXCLUDED.state_bytes, chunks = EXCLUDED.chunks",
      AsInt(head.seq), Blob(head.chain_hash), Blob(head.state_digest), AsInt(state_bytes),
      AsInt(chunks));
  // Chunks beyond its count are of an earlier write of the same seq cut short.
  write.exec_params0("DELETE FROM atrium_snapshot_chunks WHERE seq = $1 AND chunk >= $2",
                     AsInt(head.seq), AsInt(chunks));
  write.exec_params0(
      "DELETE FROM atrium_snapshots WHERE seq NOT IN"
      " (SELECT seq FROM atrium_snapshots ORDER BY seq DESC LIMIT $1)",
      static_cast<int64_t>(PgStore::kSnapshotsKept));
}

}  // namespace

Status PgStore::PutSnapshot(const StoredSnapshot& snapshot) {
  if (read_only_) return MakeError(ErrorCode::kInvalidArgument, "journal opened read-only");
  return Guard("writing a snapshot", [&]() -> Status {
    const size_t chunks = (snapshot.state.size() + kChunkBytesMax - 1) / kChunkBytesMax;
    pqxx::work write(connection_->connection);
    write.exec_params0("DELETE FROM atrium_snapshot_chunks WHERE seq = $1", AsInt(snapshot.seq));
    for (size_t chunk_idx = 0; chunk_idx < chunks; ++chunk_idx) {
      InsertChunk(
          write, snapshot.seq, chunk_idx,
          std::string_view(snapshot.state).substr(chunk_idx * kChunkBytesMax, kChunkBytesMax));
    }
    InsertHead(write, snapshot, snapshot.state.size(), chunks);
    // Written whole (offline): the older snapshots' chunks go in the same transaction.
    write.exec0(
        "DELETE FROM atrium_snapshot_chunks WHERE seq NOT IN (SELECT seq FROM atrium_snapshots)");
    write.commit();
    return OkStatus();
  });
}

Status PgStore::PutSnapshotChunk(uint64_t seq, uint64_t chunk, std::string_view data) {
  if (read_only_) return MakeError(ErrorCode::kInvalidArgument, "journal opened read-only");
  if (data.size() > kChunkBytesMax) {
    return MakeError(ErrorCode::kInvalidArgument, "a snapshot chunk above the store's bound");
  }
  return Guard("writing a snapshot chunk", [&]() -> Status {
    pqxx::work write(connection_->connection);
    InsertChunk(write, seq, chunk, data);
    write.commit();
    return OkStatus();
  });
}

Status PgStore::PutSnapshotHead(const StoredSnapshot& head, uint64_t state_bytes, uint64_t chunks) {
  if (read_only_) return MakeError(ErrorCode::kInvalidArgument, "journal opened read-only");
  return Guard("writing a snapshot", [&]() -> Status {
    pqxx::work write(connection_->connection);
    InsertHead(write, head, state_bytes, chunks);
    write.commit();
    return OkStatus();
  });
}

Result<uint64_t> PgStore::PruneSnapshotChunks(uint64_t chunks_max) {
  if (read_only_) return MakeError(ErrorCode::kInvalidArgument, "journal opened read-only");
  return Guard("pruning snapshot chunks", [&]() -> Result<uint64_t> {
    pqxx::work write(connection_->connection);
    const pqxx::result pruned = write.exec_params(
        "DELETE FROM atrium_snapshot_chunks WHERE (seq, chunk) IN (SELECT seq, chunk FROM"
        " atrium_snapshot_chunks WHERE seq NOT IN (SELECT seq FROM atrium_snapshots)"
        " AND seq < (SELECT max(seq) FROM atrium_snapshots) ORDER BY seq, chunk LIMIT $1)",
        static_cast<int64_t>(std::min<uint64_t>(chunks_max, INT64_MAX)));
    write.commit();
    return static_cast<uint64_t>(pruned.affected_rows());
  });
}

Result<std::vector<StoredSnapshot>> PgStore::SnapshotIndex() {
  return Guard("reading snapshots", [&]() -> Result<std::vector<StoredSnapshot>> {
    pqxx::read_transaction read(connection_->connection);
    std::vector<StoredSnapshot> index;
    for (const auto& row :
         read.exec("SELECT seq, chain_hash, state_digest FROM atrium_snapshots ORDER BY seq")) {
      StoredSnapshot& snapshot = index.emplace_back();
      snapshot.seq = row[0].as<uint64_t>();
      if (!ToDigest(row[1], &snapshot.chain_hash) || !ToDigest(row[2], &snapshot.state_digest)) {
        return MakeError(ErrorCode::kCorruption,
                         "snapshot " + std::to_string(snapshot.seq) + " has a malformed digest");
      }
    }
    return index;
  });
}

Result<StoredSnapshot> PgStore::ReadSnapshot(uint64_t seq) {
  return Guard("reading a snapshot", [&]() -> Result<StoredSnapshot> {
    pqxx::read_transaction read(connection_->connection);
    const pqxx::result head = read.exec_params(
        "SELECT chain_hash, state_digest, state_bytes, chunks FROM atrium_snapshots"
        " WHERE seq = $1",
        AsInt(seq));
    if (head.empty())
      return MakeError(ErrorCode::kNotFound, "no snapshot at " + std::to_string(seq));
    StoredSnapshot snapshot;
    snapshot.seq = seq;
    if (!ToDigest(head[0][0], &snapshot.chain_hash) ||
        !ToDigest(head[0][1], &snapshot.state_digest)) {
      return MakeError(ErrorCode::kCorruption,
                       "snapshot " + std::to_string(seq) + " has a malformed digest");
    }
    const auto state_bytes = head[0][2].as<uint64_t>();
    const auto chunks = head[0][3].as<uint64_t>();
    if (chunks > (uint64_t{1} << 20) || state_bytes > chunks * kChunkBytesMax) {
      return MakeError(ErrorCode::kCorruption,
                       "snapshot " + std::to_string(seq) + " size is wrong");
    }
    snapshot.state.reserve(std::min<uint64_t>(state_bytes, uint64_t{1} << 30));
    uint64_t expected_chunk = 0;
    for (const auto& row : read.exec_params(
             "SELECT chunk, data FROM atrium_snapshot_chunks WHERE seq = $1 ORDER BY chunk",
             AsInt(seq))) {
      if (row[0].as<uint64_t>() != expected_chunk++) {
        return MakeError(ErrorCode::kCorruption, "snapshot chunk missing");
      }
      const pqxx::binarystring data(row[1]);
      snapshot.state.append(data.str());
    }
    if (expected_chunk != chunks || snapshot.state.size() != state_bytes) {
      return MakeError(ErrorCode::kCorruption,
                       "snapshot " + std::to_string(seq) + " is incomplete");
    }
    return snapshot;
  });
}

Result<std::optional<StoredSnapshot>> PgStore::LatestSnapshot() {
  ATRIUM_ASSIGN_OR_RETURN(std::vector<StoredSnapshot> index, SnapshotIndex());
  if (index.empty()) return std::optional<StoredSnapshot>();
  ATRIUM_ASSIGN_OR_RETURN(StoredSnapshot snapshot, ReadSnapshot(index.back().seq));
  return std::optional<StoredSnapshot>(std::move(snapshot));
}

}  // namespace atrium::journal
