#include "core/core.h"

#include "base/bytes.h"

namespace atrium::core {
namespace {
constexpr uint32_t kStateMagic = 0x31535441;  // "ATS1"
constexpr uint32_t kStateVersion = 1;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

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
             },
             command);
  return result;
}

Status Core::Verify() const { return ledger_.Verify(); }

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
}

Result<Core> Core::Decode(std::string_view bytes) {
  ByteReader reader(bytes);
  if (reader.Get<uint32_t>() != kStateMagic || reader.Get<uint32_t>() != kStateVersion) {
    return MakeError(ErrorCode::kCorruption, "state snapshot: bad magic or version");
  }
  const auto ledger_size = reader.Get<uint64_t>();
  constexpr size_t kHeaderBytes = 16;
  if (!reader.ok() || ledger_size != bytes.size() - kHeaderBytes) {
    return MakeError(ErrorCode::kCorruption, "state snapshot: bad length");
  }
  Core core;
  ATRIUM_ASSIGN_OR_RETURN(core.ledger_, ledger::Ledger::Decode(bytes.substr(kHeaderBytes)));
  return core;
}

}  // namespace atrium::core
