// The CLI's program session: `atrium program` runs the service's own ops (core/ops.h:
// program_create, people_import, call_open, proposal_submit, review_submit, ...) on an
// embedded durable core, the journal of `atrium serve` (journal::DurableCore on SQLite)
// in a data folder (--data DIR, the store DIR/atrium.db). Each invocation opens the
// store (taking its single-writer lock), applies its op at its logical time and returns
// once the op is durable; a refused op changes nothing and is not journaled. The same
// store opens in `atrium serve --data DIR`.
//
// Before this, the CLI kept a JSON state file of its own commands (atrium-program.json,
// {"version": 1, "commands": [...]}), replayed on every run, with other op names and no
// fsync. Such a file is refused with a message that says how to migrate: load the
// program's TOML again into a data folder (docs/program.md).
//
//   auto session = ProgramSession::Open("atrium-program", /*create=*/true);
//   ATRIUM_TRY(session->Apply({{"op", "call_open"}, {"program", id}, {"call", c}}, at_us));
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "core/app_state.h"
#include "core/core.h"
#include "program/program_state.h"

namespace atrium::journal {
class DurableCore;
}

namespace atrium::cli {

class ProgramSession {
 public:
  // Opens the data folder's store (created if `create`); kLocked if another process
  // holds it, kCorruption (with the migration note) for an old JSON state file.
  static Result<ProgramSession> Open(const std::string& dir, bool create);
  // A session whose state lives only in memory (the demo without --data).
  static ProgramSession InMemory();
  // Opens an existing data folder read-only for reports (`atrium report program --state`).
  static Result<ProgramSession> Load(const std::string& dir);

  ProgramSession(ProgramSession&&) noexcept;
  ProgramSession& operator=(ProgramSession&&) noexcept;
  ~ProgramSession();

  // Applies one op ({"op": ..., fields}) at at_us as `actor` (default: an admin);
  // returns the op's answer once durable, or its refusal.
  Result<nlohmann::json> Apply(nlohmann::json command, int64_t at_us,
                               const core::Actor& actor = {.role = core::Role::kAdmin});

  const core::AppState& app() const;
  // The program: `id`, or the only one (kNotFound / kInvalidArgument otherwise).
  Result<const program::ProgramState*> Program(const std::string& id = "") const;
  // The logical time of the last applied op, for commands given no --at.
  int64_t last_at_us() const { return app().last_now_us(); }

 private:
  ProgramSession();
  std::unique_ptr<journal::DurableCore> durable_;
  std::unique_ptr<core::Core> memory_;
};

// The store inside a data folder.
std::string ProgramStorePath(const std::string& dir);

// Reads a whole file; kIoError if it cannot.
Result<std::string> ReadFile(const std::string& path);
Status WriteFile(const std::string& path, const std::string& contents);

}  // namespace atrium::cli
