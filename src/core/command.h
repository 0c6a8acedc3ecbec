// Commands: everything that changes Atrium's state, as plain values. A shell (the CLI,
// the HTTP server, an executor, the clock) builds a command, the core applies it at the
// command's logical time, and the journal stores its encoding. Replaying the same
// commands in the same order rebuilds the same state, so the encoding is a stable
// contract: add command kinds with new tags, never reuse a tag.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/error.h"
#include "ledger/ledger.h"

namespace atrium::core {

struct CreateAccounts {
  int64_t now_us = 0;
  std::vector<ledger::AccountSpec> accounts;
  friend bool operator==(const CreateAccounts&, const CreateAccounts&) = default;
};

struct UpdateAccounts {
  int64_t now_us = 0;
  std::vector<ledger::AccountUpdate> updates;
  friend bool operator==(const UpdateAccounts&, const UpdateAccounts&) = default;
};

struct CreateTransfers {
  int64_t now_us = 0;
  std::vector<ledger::TransferSpec> transfers;
  friend bool operator==(const CreateTransfers&, const CreateTransfers&) = default;
};

// The clock's tick: releases holds whose timeout has passed.
struct Tick {
  int64_t now_us = 0;
  friend bool operator==(const Tick&, const Tick&) = default;
};

// A change to the service's state (programs, cluster and jobs, tokens): one JSON document
// {"op": ..., "actor": ..., ...} that AppState applies (app_state.h). Its text is what the
// journal keeps, so replay sees exactly the bytes that were acknowledged.
struct AppCommand {
  int64_t now_us = 0;
  std::string json;
  friend bool operator==(const AppCommand&, const AppCommand&) = default;
};

using Command = std::variant<CreateAccounts, UpdateAccounts, CreateTransfers, Tick, AppCommand>;

// The logical time a command carries.
int64_t CommandTime(const Command& command);
// A short name for logs and errors ("create_transfers").
std::string_view CommandName(const Command& command);

// Appends the binary encoding of `command` to `out`.
void EncodeCommand(const Command& command, std::string* out);
// Decodes one command; kCorruption if the bytes are not exactly one valid command.
Result<Command> DecodeCommand(std::string_view bytes);

}  // namespace atrium::core
