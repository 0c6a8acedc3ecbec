// OpenJournalStore: the store a location names. "postgresql://..." (or "postgres://")
// opens a PgStore; anything else is a SQLite file path.
#pragma once

#include <memory>
#include <string>

#include "journal/sqlite_store.h"
#include "journal/store.h"

namespace atrium::journal {

Result<std::unique_ptr<JournalStore>> OpenJournalStore(const std::string& location, OpenMode mode);

}  // namespace atrium::journal
