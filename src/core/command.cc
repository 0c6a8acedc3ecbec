#include "core/command.h"

#include "base/bytes.h"

namespace atrium::core {
namespace {

// Tags in the encoding; stable forever.
enum class Tag : uint8_t {
  kCreateAccounts = 1,
  kUpdateAccounts = 2,
  kCreateTransfers = 3,
  kTick = 4,
  kAppCommand = 5,
};

// The fewest bytes one item can take, to refuse impossible counts; and the most, to
// reserve space when encoding.
constexpr size_t kAccountSpecBytesMin = 4;
constexpr size_t kAccountUpdateBytesMin = 3;
constexpr size_t kTransferSpecBytesMin = 9;
constexpr size_t kTransferSpecBytesMax = 19 * 4 + 10 + 5 + 3 + 3 + 10;

void Encode(const CreateAccounts& command, ByteWriter& writer) {
  writer.Put<uint32_t>(static_cast<uint32_t>(command.accounts.size()));
  for (const ledger::AccountSpec& spec : command.accounts) {
    writer.PutVarint<Id128>(spec.id);
    writer.Put<uint8_t>(static_cast<uint8_t>(spec.kind));
    writer.PutVarint<uint16_t>(spec.flags);
    writer.PutVarint<uint64_t>(spec.user_data);
  }
}

void Encode(const UpdateAccounts& command, ByteWriter& writer) {
  writer.Put<uint32_t>(static_cast<uint32_t>(command.updates.size()));
  for (const ledger::AccountUpdate& update : command.updates) {
    writer.PutVarint<Id128>(update.id);
    writer.PutVarint<uint16_t>(update.set_flags);
    writer.PutVarint<uint16_t>(update.clear_flags);
  }
}

void Encode(const CreateTransfers& command, ByteWriter& writer) {
  writer.Put<uint32_t>(static_cast<uint32_t>(command.transfers.size()));
  for (const ledger::TransferSpec& spec : command.transfers) {
    writer.PutVarint<Id128>(spec.id);
    writer.PutVarint<Id128>(spec.debit_account_id);
    writer.PutVarint<Id128>(spec.credit_account_id);
    writer.PutVarint<Id128>(spec.pending_id);
    writer.PutZigzag(spec.amount.micro());
    writer.PutVarint<uint32_t>(spec.timeout_s);
    writer.PutVarint<uint16_t>(spec.code);
    writer.PutVarint<uint16_t>(spec.flags);
    writer.PutVarint<uint64_t>(spec.user_data);
  }
}

void Encode(const Tick&, ByteWriter&) {}

void Encode(const AppCommand& command, ByteWriter& writer) { writer.PutBytes(command.json); }

Tag TagOf(const CreateAccounts&) { return Tag::kCreateAccounts; }
Tag TagOf(const UpdateAccounts&) { return Tag::kUpdateAccounts; }
Tag TagOf(const CreateTransfers&) { return Tag::kCreateTransfers; }
Tag TagOf(const Tick&) { return Tag::kTick; }
Tag TagOf(const AppCommand&) { return Tag::kAppCommand; }

}  // namespace

int64_t CommandTime(const Command& command) {
  return std::visit([](const auto& typed) { return typed.now_us; }, command);
}

std::string_view CommandName(const Command& command) {
  static constexpr std::string_view kNames[] = {"create_accounts", "update_accounts",
                                                "create_transfers", "tick", "app"};
  return kNames[command.index()];
}

void EncodeCommand(const Command& command, std::string* out) {
  if (const auto* transfers = std::get_if<CreateTransfers>(&command)) {
    out->reserve(out->size() + 16 + transfers->transfers.size() * kTransferSpecBytesMax);
  }
  ByteWriter writer(out);
  std::visit(
      [&writer](const auto& typed) {
        writer.Put<uint8_t>(static_cast<uint8_t>(TagOf(typed)));
        writer.Put<int64_t>(typed.now_us);
        Encode(typed, writer);
      },
      command);
}

Result<Command> DecodeCommand(std::string_view bytes) {
  ByteReader reader(bytes);
  const auto tag = static_cast<Tag>(reader.Get<uint8_t>());
  const auto now_us = reader.Get<int64_t>();
  Command command;
  switch (tag) {
    case Tag::kCreateAccounts: {
      CreateAccounts typed{.now_us = now_us};
      typed.accounts.resize(reader.GetCount(kAccountSpecBytesMin));
      for (ledger::AccountSpec& spec : typed.accounts) {
        spec.id = reader.GetVarint<Id128>();
        spec.kind = static_cast<ledger::AccountKind>(reader.Get<uint8_t>());
        spec.flags = reader.GetVarint<uint16_t>();
        spec.user_data = reader.GetVarint<uint64_t>();
      }
      command = std::move(typed);
      break;
    }
    case Tag::kUpdateAccounts: {
      UpdateAccounts typed{.now_us = now_us};
      typed.updates.resize(reader.GetCount(kAccountUpdateBytesMin));
      for (ledger::AccountUpdate& update : typed.updates) {
        update.id = reader.GetVarint<Id128>();
        update.set_flags = reader.GetVarint<uint16_t>();
        update.clear_flags = reader.GetVarint<uint16_t>();
      }
      command = std::move(typed);
      break;
    }
    case Tag::kCreateTransfers: {
      CreateTransfers typed{.now_us = now_us};
      typed.transfers.resize(reader.GetCount(kTransferSpecBytesMin));
      for (ledger::TransferSpec& spec : typed.transfers) {
        spec.id = reader.GetVarint<Id128>();
        spec.debit_account_id = reader.GetVarint<Id128>();
        spec.credit_account_id = reader.GetVarint<Id128>();
        spec.pending_id = reader.GetVarint<Id128>();
        spec.amount = Credits::FromMicro(reader.GetZigzag());
        spec.timeout_s = reader.GetVarint<uint32_t>();
        spec.code = reader.GetVarint<uint16_t>();
        spec.flags = reader.GetVarint<uint16_t>();
        spec.user_data = reader.GetVarint<uint64_t>();
      }
      command = std::move(typed);
      break;
    }
    case Tag::kTick:
      command = Tick{.now_us = now_us};
      break;
    case Tag::kAppCommand:
      command = AppCommand{.now_us = now_us, .json = std::string(reader.GetBytes())};
      break;
    default:
      return MakeError(ErrorCode::kCorruption, "unknown command tag");
  }
  if (!reader.ok() || !reader.at_end()) {
    return MakeError(ErrorCode::kCorruption, "malformed command encoding");
  }
  return command;
}

}  // namespace atrium::core
