#include "journal/open.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>

#include <pqxx/pqxx>

#include "journal/pg_store.h"

namespace atrium::journal {
namespace {

class FileLock final : public StoreLock {
 public:
  ~FileLock() override {
    for (const int fd : fds_) close(fd);
  }
  // An exclusive flock on the file at path (created if `create`); false if it is held.
  Status Add(const std::string& path, bool create, const std::string& shown) {
    const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (fd < 0) return MakeError(ErrorCode::kIoError, "cannot open " + path + " to lock it", "db");
    fds_.push_back(fd);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      return MakeError(ErrorCode::kLocked,
                       "another atrium serve is using this store, or another writer (" + shown +
                           " is locked); stop it first or open the journal read-only",
                       "db");
    }
    return OkStatus();
  }

 private:
  std::vector<int> fds_;
};

class PgLock final : public StoreLock {
 public:
  Status Acquire(const std::string& url) {
    try {
      connection_ = std::make_unique<pqxx::connection>(url);
      pqxx::nontransaction tx(*connection_);
      // The key is a fixed number chosen for Atrium's journal.
      if (!tx.exec1("SELECT pg_try_advisory_lock(7305718390125)")[0].as<bool>()) {
        return MakeError(ErrorCode::kLocked,
                         "another atrium serve is using this PostgreSQL database, or another "
                         "writer; stop it first",
                         "db");
      }
    } catch (const std::exception& e) {
      return MakeError(ErrorCode::kIoError, std::string("cannot lock the database: ") + e.what(),
                       "db");
    }
    return OkStatus();
  }

 private:
  std::unique_ptr<pqxx::connection> connection_;
};

// A store and the lock that makes its owner the only writer.
class LockedStore final : public JournalStore {
 public:
  LockedStore(std::unique_ptr<StoreLock> lock, std::unique_ptr<JournalStore> store)
      : lock_(std::move(lock)), store_(std::move(store)) {}
  ~LockedStore() override { store_.reset(); }  // closed before the lock is released
  Status Append(std::span<const StoredEntry> entries) override { return store_->Append(entries); }
  Status Scan(uint64_t after_seq, const std::function<Status(const StoredEntry&)>& visit) override {
    return store_->Scan(after_seq, visit);
  }
  Result<std::optional<StoredEntry>> LastEntry() override { return store_->LastEntry(); }
  Status PutSnapshot(const StoredSnapshot& snapshot) override {
    return store_->PutSnapshot(snapshot);
  }
  Status PutSnapshotChunk(uint64_t seq, uint64_t chunk, std::string_view data) override {
    return store_->PutSnapshotChunk(seq, chunk, data);
  }
  Status PutSnapshotHead(const StoredSnapshot& head, uint64_t state_bytes,
                         uint64_t chunks) override {
    return store_->PutSnapshotHead(head, state_bytes, chunks);
  }
  Result<uint64_t> PruneSnapshotChunks(uint64_t chunks_max) override {
    return store_->PruneSnapshotChunks(chunks_max);
  }
  Result<std::optional<StoredSnapshot>> LatestSnapshot() override {
    return store_->LatestSnapshot();
  }
  Result<StoredSnapshot> ReadSnapshot(uint64_t seq) override { return store_->ReadSnapshot(seq); }
  Result<std::vector<StoredSnapshot>> SnapshotIndex() override { return store_->SnapshotIndex(); }
  bool read_only() const override { return store_->read_only(); }

 private:
  std::unique_ptr<StoreLock> lock_;
  std::unique_ptr<JournalStore> store_;
};

}  // namespace

Result<std::unique_ptr<StoreLock>> LockStore(const std::string& location, OpenMode mode) {
  if (IsPostgresUrl(location)) {
    auto lock = std::make_unique<PgLock>();
    ATRIUM_TRY(lock->Acquire(location));
    return std::unique_ptr<StoreLock>(std::move(lock));
  }
  auto lock = std::make_unique<FileLock>();
  const bool create = mode == OpenMode::kReadWriteCreate;
  // Resolve the file: every path to it (symlinks, "..", another spelling) names one lock.
  std::string resolved;
  if (char* real = realpath(location.c_str(), nullptr)) {
    resolved = real;
    free(real);
  } else if (create) {
    // Not there yet: create it (SQLite takes an empty file as a new database).
    ATRIUM_TRY(lock->Add(location, true, location));
    if (char* made = realpath(location.c_str(), nullptr)) {
      resolved = made;
      free(made);
    }
    if (resolved.empty()) return MakeError(ErrorCode::kIoError, "cannot resolve " + location, "db");
    ATRIUM_TRY(lock->Add(resolved + ".lock", true, location));
    return std::unique_ptr<StoreLock>(std::move(lock));
  } else {
    return MakeError(ErrorCode::kNotFound, "no journal at " + location, "db");
  }
  struct stat info {};
  if (::stat(resolved.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return MakeError(ErrorCode::kInvalidArgument, location + " is not a regular file", "db");
  }
  // The lock file first (what older versions took), then the database file itself.
  ATRIUM_TRY(lock->Add(resolved + ".lock", true, location));
  ATRIUM_TRY(lock->Add(resolved, false, location));
  return std::unique_ptr<StoreLock>(std::move(lock));
}

Result<std::unique_ptr<JournalStore>> OpenJournalStore(const std::string& location, OpenMode mode) {
  std::unique_ptr<StoreLock> lock;
  if (mode != OpenMode::kReadOnly) {
    ATRIUM_ASSIGN_OR_RETURN(lock, LockStore(location, mode));
  }
  std::unique_ptr<JournalStore> store;
  if (IsPostgresUrl(location)) {
    ATRIUM_ASSIGN_OR_RETURN(auto pg, PgStore::Open(location, mode));
    store = std::move(pg);
  } else {
    ATRIUM_ASSIGN_OR_RETURN(auto sqlite, SqliteStore::Open(location, mode));
    store = std::move(sqlite);
  }
  if (!lock) return store;
  return std::unique_ptr<JournalStore>(
      std::make_unique<LockedStore>(std::move(lock), std::move(store)));
}

}  // namespace atrium::journal
