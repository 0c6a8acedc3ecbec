#include "core/core.h"

#include "base/bytes.h"

namespace atrium::core {
namespace {
constexpr uint32_t kStateMagic = 0x31535441;  // "ATS1"
// Version 1 held the ledger only; version 2 adds the service's app commands, which
// decoding replays (AppState's state is rebuilt from them, as the journal would).
constexpr uint32_t kStateVersion = 2;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// Clang 14 (the fuzz build) does not deduce aggregate template arguments by itself.
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// A batch changed state unless every one of its events was refused.
bool AnyApplied(size_t events, const std::vector<ledger::EventFailure>& failures) {
  return failures.size() < events;
}
}  // namespace

CommandResult Core::Apply(const Command& command) {
  CommandResult result;
  std::visit(Overloaded{
                 [&](const CreateAccounts& typed) {
                   result.failures = ledger_.CreateAccounts(typed.accounts, typed.now_us);
                   result.changed = AnyApplied(typed.accounts.size(), result.failures);
                 },
                 [&](const UpdateAccounts& typed) {
                   result.failures = ledger_.UpdateAccounts(typed.updates, typed.now_us);
                   result.changed = AnyApplied(typed.updates.size(), result.failures);
                 },
                 [&](const CreateTransfers& typed) {
                   result.failures = ledger_.CreateTransfers(typed.transfers, typed.now_us);
                   result.changed = AnyApplied(typed.transfers.size(), result.failures);
                 },
                 [&](const Tick& typed) {
                   result.expired = ledger_.ExpirePending(typed.now_us);
                   result.changed = result.expired > 0;
                 },
                 [&](const AppCommand& typed) {
                   const nlohmann::json document =
                       nlohmann::json::parse(typed.json, nullptr, /*allow_exceptions=*/false);
                   if (document.is_discarded()) {
                     AppAnswer answer;
                     answer.status = MakeError(ErrorCode::kParseError, "the command is not JSON");
                     result.app = std::move(answer);
                     return;
                   }
                   result.app = app_.Apply(document, typed.now_us);
                   result.changed = result.app->changed;
                 },
             },
             command);
  return result;
}

Status Core::Verify() const {
  ATRIUM_TRY(ledger_.Verify());
  for (const auto& [id, program] : app_.programs()) {
    if (Status status = program.ledger().Verify(); !status.ok()) {
      return MakeError(status.error().code, "program " + id + ": " + status.error().message);
    }
  }
  if (const sched::Scheduler* scheduler = app_.scheduler()) {
    if (Status status = scheduler->ledger().Verify(); !status.ok()) {
      return MakeError(status.error().code, "cluster ledger: " + status.error().message);
    }
  }
  return OkStatus();
}

void Core::Encode(std::string* out) const {
  ByteWriter writer(out);
  writer.Put<uint32_t>(kStateMagic);
  writer.Put<uint32_t>(kStateVersion);
  // The ledger's length goes before it; write zero and patch it, rather than
  // encode into a temporary copy of what may be hundreds of megabytes.
  const size_t length_at = out->size();
  writer.Put<uint64_t>(0);
  ledger_.Encode(out);
  std::string length;
  ByteWriter(&length).Put<uint64_t>(out->size() - length_at - sizeof(uint64_t));
  out->replace(length_at, length.size(), length);
  ByteWriter tail(out);
  tail.Put<uint64_t>(app_.history().size());
  for (const auto& [now_us, json] : app_.history()) {
    tail.Put<int64_t>(now_us);
    tail.PutBytes(json);
  }
}

Result<Core> Core::Decode(std::string_view bytes) {
  ByteReader reader(bytes);
  const auto magic = reader.Get<uint32_t>();
  const auto version = reader.Get<uint32_t>();
  if (magic != kStateMagic || (version != 1 && version != kStateVersion)) {
    return MakeError(ErrorCode::kCorruption, "state snapshot: bad magic or version");
  }
  const auto ledger_size = reader.Get<uint64_t>();
  constexpr size_t kHeaderBytes = 16;
  if (!reader.ok() || ledger_size > bytes.size() - kHeaderBytes ||
      (version == 1 && ledger_size != bytes.size() - kHeaderBytes)) {
    return MakeError(ErrorCode::kCorruption, "state snapshot: bad length");
  }
  Core core;
  ATRIUM_ASSIGN_OR_RETURN(core.ledger_,
                          ledger::Ledger::Decode(bytes.substr(kHeaderBytes, ledger_size)));
  if (version == 1) return core;
  ByteReader tail(bytes.substr(kHeaderBytes + ledger_size));
  const auto count = tail.Get<uint64_t>();
  if (!tail.ok() || count > bytes.size()) {
    return MakeError(ErrorCode::kCorruption, "state snapshot: bad app history");
  }
  for (uint64_t i = 0; i < count; ++i) {
    const auto now_us = tail.Get<int64_t>();
    const std::string_view json = tail.GetBytes();
    if (!tail.ok()) return MakeError(ErrorCode::kCorruption, "state snapshot: bad app history");
    const CommandResult result =
        core.Apply(AppCommand{.now_us = now_us, .json = std::string(json)});
    if (!result.changed) {
      return MakeError(ErrorCode::kCorruption,
                       "state snapshot: app command " + std::to_string(i) + " no longer applies");
    }
  }
  if (!tail.at_end()) return MakeError(ErrorCode::kCorruption, "state snapshot: trailing bytes");
  return core;
}

}  // namespace atrium::core
