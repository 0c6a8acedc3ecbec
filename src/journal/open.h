// OpenJournalStore: the store a location names. "postgresql://..." (or "postgres://")
// opens a PgStore; anything else is a SQLite file path.
//
// A store opened for writing holds the store's single-writer lock for as long as it is
// open, whichever process opens it (`atrium serve`, `atrium ledger ... --db`): a second
// writer is refused with kLocked, a clear message and nothing written. For SQLite the lock
// is taken on the resolved file, so a symlink, a hard link or another spelling of the path
// cannot bypass it: an exclusive flock(2) on the database file itself (independent of
// SQLite's own fcntl locks, so readers are not blocked) and one on "<realpath>.lock"
// beside it. For PostgreSQL it is a session advisory lock on the database.
#pragma once

#include <memory>
#include <string>

#include "journal/sqlite_store.h"
#include "journal/store.h"

namespace atrium::journal {

// The single-writer lock of a store location, held until destroyed.
class StoreLock {
 public:
  virtual ~StoreLock() = default;
};
// kLocked if another process (or another open store in this one) holds it.
Result<std::unique_ptr<StoreLock>> LockStore(const std::string& location, OpenMode mode);

Result<std::unique_ptr<JournalStore>> OpenJournalStore(const std::string& location, OpenMode mode);

}  // namespace atrium::journal
