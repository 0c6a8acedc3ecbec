#include "journal/open.h"

#include "journal/pg_store.h"

namespace atrium::journal {

Result<std::unique_ptr<JournalStore>> OpenJournalStore(const std::string& location, OpenMode mode) {
  if (IsPostgresUrl(location)) {
    ATRIUM_ASSIGN_OR_RETURN(auto store, PgStore::Open(location, mode));
    return std::unique_ptr<JournalStore>(std::move(store));
  }
  ATRIUM_ASSIGN_OR_RETURN(auto store, SqliteStore::Open(location, mode));
  return std::unique_ptr<JournalStore>(std::move(store));
}

}  // namespace atrium::journal
