// The CLI's program session: until the service moves program commands into the journal,
// the command line keeps a program in a state file that holds the list of commands
// applied so far (JSON). Each invocation replays them into a fresh ProgramState, applies
// its own command and, only if that succeeds, appends it and rewrites the file. A
// refused command therefore changes nothing, and replay is exact because the core is
// deterministic.
//
//   {"version": 1, "commands": [{"op": "create", "at_us": ..., "program_toml": "..."},
//                               {"op": "open_call", "at_us": ..., "call": "..."}, ...]}
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "program/program_state.h"

namespace atrium::cli {

class ProgramSession {
 public:
  // Replays a state file; kIoError if it cannot be read, kCorruption if a recorded
  // command no longer applies.
  static Result<ProgramSession> Load(const std::string& path);
  // A new session from a program definition (TOML text).
  static Result<ProgramSession> Create(const std::string& program_toml, int64_t at_us);

  // Applies one command ({"op": ..., "at_us": ..., ...}); on success records it.
  Status Apply(nlohmann::json command);
  Status Save(const std::string& path) const;

  program::ProgramState& state() { return *state_; }
  const program::ProgramState& state() const { return *state_; }
  // The time of the last command, for commands given no --at.
  int64_t last_at_us() const { return last_at_us_; }
  // The result of the last draft applied, for printing.
  const std::optional<program::Decision>& last_decision() const { return last_decision_; }

 private:
  ProgramSession() = default;
  Status Dispatch(const nlohmann::json& command);

  std::optional<program::ProgramState> state_;
  nlohmann::json commands_ = nlohmann::json::array();
  int64_t last_at_us_ = 0;
  std::optional<program::Decision> last_decision_;
};

// Reads a whole file; kIoError if it cannot.
Result<std::string> ReadFile(const std::string& path);
Status WriteFile(const std::string& path, const std::string& contents);

}  // namespace atrium::cli
