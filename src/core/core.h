// Core: Atrium's state machine. It holds all state (the one ledger of record, and the
// service's programs, cluster, jobs and tokens in AppState, whose accounts live in that
// ledger) and applies one Command at a time at
// the command's logical time. It reads no clock, opens no file and draws no randomness, so
// replaying the journal rebuilds exactly the state that was acknowledged.
//
//   Core core;
//   CommandResult result = core.Apply(CreateTransfers{.now_us = t, .transfers = {...}});
//   if (result.changed) journal.Append(command);  // a command that changed nothing
//                                                 // need not be journaled
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "core/app_state.h"
#include "core/command.h"
#include "ledger/ledger.h"
#include "nlohmann/json.hpp"

namespace atrium::core {

struct CommandResult {
  // The refused events of a batch command (index and code); empty when all applied.
  std::vector<ledger::EventFailure> failures;
  // Holds released by a Tick.
  size_t expired = 0;
  // The answer of an AppCommand (ok with a JSON result, or an error).
  std::optional<AppAnswer> app;
  // Whether the state changed. A command that changed nothing can be left out of the
  // journal: replay would not change anything either.
  bool changed = false;
};

class Core {
 public:
  CommandResult Apply(const Command& command);

  // A command with an AppCommand's JSON parsed already, so that parsing can happen on
  // another thread than the apply (a restart parses the journal's tail on its reader
  // thread: docs/journal.md, "Restart on two threads"). Apply(command) is
  // Apply(Parse(command)).
  struct ParsedCommand {
    Command command;
    // An AppCommand's document (discarded if its text is not JSON); null otherwise.
    nlohmann::json document;
  };
  static ParsedCommand Parse(Command command);
  CommandResult Apply(const ParsedCommand& parsed);

  const ledger::Ledger& ledger() const { return app_.ledger(); }
  const AppState& app() const { return app_; }

  // Checks every invariant of every component and across them: the ledger's own
  // (Ledger::Verify); each open hold of a job is the hold of a running job, and the
  // pending debits of every scheduler grant account are the holds of its running jobs;
  // each job's charge is what its posted transfers moved; each grant's awarded, spent and
  // returned are what the ledger says. kInvariantViolated names the first breach.
  Status Verify() const;

  // The whole state, for snapshots; deterministic bytes (format: docs/snapshots.md).
  // Decode refuses malformed bytes and other versions with kCorruption.
  void Encode(std::string* out) const;
  static Result<Core> Decode(std::string_view bytes);
  // Decode in halves that may run at once, on two threads (a restart decodes the ledger
  // beside the rest): Decode is SplitSnapshot, then DecodeLedger and DecodeWithoutLedger,
  // then AttachLedger. Nothing in the rest reads the ledger while it decodes (the
  // programs and the scheduler only keep its address), so the result is the same state.
  struct SnapshotParts {
    std::string_view ledger;
    std::string_view app;
  };
  static Result<SnapshotParts> SplitSnapshot(std::string_view bytes);
  static Result<ledger::Ledger> DecodeLedger(std::string_view ledger_part);
  // The state with an empty ledger: apply, read and verify nothing until AttachLedger
  // gives it the ledger of the same snapshot.
  static Result<Core> DecodeWithoutLedger(std::string_view app_part);
  void AttachLedger(ledger::Ledger ledger);
  // The format version of a snapshot's bytes (kCorruption if they are not a snapshot).
  static Result<uint32_t> SnapshotVersion(std::string_view bytes);
  // 5: training, datasets, capacity reservations (program 4, app 4, scheduler 4)
  static constexpr uint32_t kSnapshotVersion = 5;

 private:
  void ApplyApp(const AppCommand& command, const nlohmann::json& document, CommandResult& result);

  AppState app_;
};

}  // namespace atrium::core
