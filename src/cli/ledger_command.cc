// `atrium ledger ...`: the ledger's command line. Every mutating subcommand opens the
// journal (recovering its state), submits one command stamped with the wall clock (or
// --now-us), and prints the outcome once the command is durable. Refusals print their
// stable code and exit 1; bad input exits 2 before anything is written; a store that
// cannot be read or is corrupt exits 3.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/ledger_bench.h"
#include "journal/journal.h"
#include "journal/open.h"
#include "journal/pg_store.h"

namespace atrium::cli {
namespace {

using journal::DurableCore;
using journal::OpenMode;
using ledger::TransferSpec;

// Its own file, not the service's store (`atrium serve` keeps atrium-data/atrium.db): the
// two never share a journal by accident. A store a running service holds is refused (the
// journal's single-writer lock) with a hint below.
constexpr const char* kDefaultDb = "atrium-ledger.db";
constexpr size_t kBatchFileBytesMax = 64 << 20;

int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kParseError:
    case ErrorCode::kInvalidArgument:
      return kExitUsage;
    case ErrorCode::kIoError:
    case ErrorCode::kCorruption:
    case ErrorCode::kChainBroken:
    case ErrorCode::kNotFound:
    case ErrorCode::kJournalPoisoned:
    case ErrorCode::kInvariantViolated:
    case ErrorCode::kUnavailable:
      return kExitStorage;
    default:
      return kExitRefused;
  }
}

[[noreturn]] void Fail(const Error& error, int exit_code) {
  std::cerr << "atrium: error: " << error.ToString() << '\n';
  throw CLI::RuntimeError(exit_code);
}

[[noreturn]] void Fail(const Error& error) { Fail(error, ExitCodeFor(error.code)); }

// Malformed input on the command line or in an input file: exit 2, nothing opened.
[[noreturn]] void FailUsage(const Error& error) { Fail(error, kExitUsage); }

template <typename T>
T Unwrap(Result<T> result) {
  if (!result.ok()) Fail(result.error());
  return std::move(result).value();
}

void Check(const Status& status) {
  if (!status.ok()) Fail(status.error());
}

Id128 ParseIdOption(const std::string& text, const char* field) {
  auto id = ParseId128(text);
  if (!id.ok()) FailUsage(MakeError(ErrorCode::kParseError, id.error().message, field));
  return *id;
}

Credits ParseAmountOption(const std::string& text, const char* field) {
  auto amount = Credits::Parse(text);
  if (!amount.ok()) FailUsage(MakeError(ErrorCode::kParseError, amount.error().message, field));
  if (amount->is_negative()) {
    FailUsage(MakeError(ErrorCode::kNegativeAmount, "amounts are never negative: " + text, field));
  }
  return *amount;
}

// Options shared by the subcommands that open a store.
struct StoreOptions {
  std::string db = kDefaultDb;
  int64_t now_us = 0;  // 0: the wall clock
  bool json = false;

  int64_t Now() const {
    if (now_us != 0) return now_us;
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

void AddStoreOptions(CLI::App* command, StoreOptions* options, bool with_now) {
  command->add_option("--db", options->db, "Journal: a SQLite file, or postgresql://...")
      ->capture_default_str();
  if (with_now) {
    command->add_option("--now-us", options->now_us,
                        "Logical time in microseconds since the epoch (default: the clock)");
  }
  command->add_flag("--json", options->json, "Print JSON instead of a table");
}

std::unique_ptr<DurableCore> OpenStore(const std::string& path, OpenMode mode) {
  if (mode == OpenMode::kReadWriteCreate && !journal::IsPostgresUrl(path)) {
    const auto parent = std::filesystem::path(path).parent_path();
    std::error_code ignored;
    if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  }
  auto store = journal::OpenJournalStore(path, mode);
  if (!store.ok() && store.error().code == ErrorCode::kLocked) {
    Error error = store.error();
    error.message +=
        ". `atrium ledger` writes only to a store no service runs on (its default is " +
        std::string(kDefaultDb) + "); to read a live service's store, use its API";
    Fail(error);
  }
  std::unique_ptr<DurableCore> durable = Unwrap(DurableCore::Open(Unwrap(std::move(store))));
  for (const DurableCore::SkippedSnapshot& skipped : durable->skipped_snapshots()) {
    fmt::print(stderr, "warning: snapshot {} passed over ({}); the state was rebuilt from {}\n",
               skipped.seq, skipped.reason,
               durable->recovered_from_seq() == 0
                   ? std::string("the journal")
                   : "snapshot " + std::to_string(durable->recovered_from_seq()));
  }
  return durable;
}

std::string FlagNames(uint16_t flags) {
  std::string names;
  auto add = [&names](const char* name) {
    if (!names.empty()) names += ',';
    names += name;
  };
  if (flags & ledger::kDebitsMustNotExceedCredits) add("debits_must_not_exceed_credits");
  if (flags & ledger::kCreditsMustNotExceedDebits) add("credits_must_not_exceed_debits");
  if (flags & ledger::kFrozen) add("frozen");
  if (flags & ledger::kClosed) add("closed");
  return names.empty() ? "-" : names;
}

Result<uint16_t> ParseAccountFlags(const std::vector<std::string>& names) {
  uint16_t flags = 0;
  for (const std::string& name : names) {
    if (name == "debits_must_not_exceed_credits") {
      flags |= ledger::kDebitsMustNotExceedCredits;
    } else if (name == "credits_must_not_exceed_debits") {
      flags |= ledger::kCreditsMustNotExceedDebits;
    } else if (name == "frozen") {
      flags |= ledger::kFrozen;
    } else {
      return MakeError(ErrorCode::kInvalidFlags, "unknown account flag '" + name + "'", "flag");
    }
  }
  return flags;
}

nlohmann::json AccountJson(const ledger::Account& account) {
  return {{"id", FormatId128(account.id)},
          {"kind", ToString(account.kind)},
          {"flags", FlagNames(account.flags)},
          {"debits_pending", account.debits_pending.ToString()},
          {"debits_posted", account.debits_posted.ToString()},
          {"credits_pending", account.credits_pending.ToString()},
          {"credits_posted", account.credits_posted.ToString()},
          {"balance", account.balance().ToString()},
          {"available", account.available().ToString()},
          {"user_data", account.user_data}};
}

std::string TransferKind(uint16_t flags) {
  if (flags & ledger::kPending) return "hold";
  if (flags & ledger::kPostPending) return "post";
  if (flags & ledger::kVoidPending) return "void";
  return "transfer";
}

nlohmann::json TransferJson(const ledger::Transfer& transfer) {
  nlohmann::json out{{"id", FormatId128(transfer.id)},
                     {"kind", TransferKind(transfer.flags)},
                     {"debit", FormatId128(transfer.debit_account_id)},
                     {"credit", FormatId128(transfer.credit_account_id)},
                     {"amount", transfer.amount.ToString()},
                     {"code", transfer.code},
                     {"timestamp_us", transfer.timestamp_us},
                     {"user_data", transfer.user_data}};
  if (transfer.pending_id != kIdNone) out["pending_id"] = FormatId128(transfer.pending_id);
  if (transfer.flags & ledger::kPending) {
    out["state"] = ToString(transfer.state);
    out["timeout_s"] = transfer.timeout_s;
  }
  return out;
}

// Submits one command and reports each event's outcome. A retry that finds its event
// already applied (`exists`) succeeds; any other refusal exits 1.
void SubmitAndReport(DurableCore& durable, const core::Command& command,
                     const std::vector<std::string>& event_labels, bool json) {
  const core::CommandResult result = Unwrap(durable.Submit(command));
  std::vector<ErrorCode> codes(event_labels.size(), ErrorCode::kOk);
  for (const ledger::EventFailure& failure : result.failures) codes[failure.index] = failure.code;
  bool refused = false;
  nlohmann::json out = nlohmann::json::array();
  for (size_t event_idx = 0; event_idx < event_labels.size(); ++event_idx) {
    const ErrorCode code = codes[event_idx];
    refused = refused || (code != ErrorCode::kOk && code != ErrorCode::kExists);
    if (json) {
      out.push_back({{"event", event_labels[event_idx]}, {"result", ToString(code)}});
    } else if (code == ErrorCode::kOk || code == ErrorCode::kExists) {
      std::cout << event_labels[event_idx] << ": " << ToString(code) << '\n';
    } else {
      std::cerr << "atrium: refused: " << event_labels[event_idx] << ": " << ToString(code) << '\n';
    }
  }
  if (json) std::cout << out.dump() << '\n';
  if (refused) throw CLI::RuntimeError(kExitRefused);
}

void PrintBalances(const ledger::Ledger& ledger, std::optional<Id128> only, bool json) {
  std::vector<ledger::Account> accounts;
  if (only.has_value()) {
    auto account = ledger.FindAccount(*only);
    if (!account.has_value()) {
      Fail(MakeError(ErrorCode::kAccountNotFound, "no account " + FormatId128(*only), "account"));
    }
    accounts.push_back(*account);
  } else {
    ledger.ForEachAccount(
        [&accounts](const ledger::Account& account) { accounts.push_back(account); });
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& account : accounts) out.push_back(AccountJson(account));
    std::cout << out.dump(2) << '\n';
    return;
  }
  std::cout << fmt::format("{:>12} {:<16} {:>18} {:>18} {:>16} {}\n", "account", "kind", "balance",
                           "available", "held", "flags");
  for (const auto& account : accounts) {
    std::cout << fmt::format("{:>12} {:<16} {:>18} {:>18} {:>16} {}\n", FormatId128(account.id),
                             ToString(account.kind), account.balance().ToString(),
                             account.available().ToString(), account.debits_pending.ToString(),
                             FlagNames(account.flags));
  }
}

// --- subcommand registration --------------------------------------------------------

void RegisterAccount(CLI::App* ledger_app) {
  CLI::App* account = ledger_app->add_subcommand("account", "Create, freeze, unfreeze or close");
  account->require_subcommand(1);

  struct CreateArgs {
    StoreOptions store;
    std::string id, kind = "grant";
    std::vector<std::string> flags;
    uint64_t user_data = 0;
  };
  auto create_args = std::make_shared<CreateArgs>();
  CLI::App* create = account->add_subcommand("create", "Create an account");
  AddStoreOptions(create, &create_args->store, true);
  create->add_option("--id", create_args->id, "Account id (128-bit, decimal or 0x hex)")
      ->required();
  create
      ->add_option("--kind", create_args->kind,
                   "sponsor, program_pool, track_pool, grant, cluster_revenue, course, "
                   "operating")
      ->capture_default_str();
  create->add_option("--flag", create_args->flags,
                     "debits_must_not_exceed_credits, credits_must_not_exceed_debits, frozen");
  create->add_option("--user-data", create_args->user_data, "Client reference number");
  create->callback([create_args] {
    const Id128 id = ParseIdOption(create_args->id, "id");
    // Refused before the journal is opened, so a bad id never creates a file.
    if (!IsValidId(id)) {
      FailUsage(MakeError(ErrorCode::kInvalidId, "account ids are neither 0 nor 2^128-1", "id"));
    }
    auto kind = ledger::ParseAccountKind(create_args->kind);
    if (!kind.ok()) FailUsage(kind.error());
    auto flags = ParseAccountFlags(create_args->flags);
    if (!flags.ok()) FailUsage(flags.error());
    auto durable = OpenStore(create_args->store.db, OpenMode::kReadWriteCreate);
    SubmitAndReport(*durable,
                    core::CreateAccounts{.now_us = create_args->store.Now(),
                                         .accounts = {{.id = id,
                                                       .kind = *kind,
                                                       .flags = *flags,
                                                       .user_data = create_args->user_data}}},
                    {"account " + FormatId128(id)}, create_args->store.json);
  });

  struct UpdateArgs {
    StoreOptions store;
    std::string id;
  };
  const std::vector<std::tuple<const char*, const char*, uint16_t, uint16_t>> updates = {
      {"freeze", "Refuse new transfers on an account", ledger::kFrozen, 0},
      {"unfreeze", "Accept transfers on a frozen account again", 0, ledger::kFrozen},
      {"close", "Close an account for good (it must hold no pending credits)", ledger::kClosed, 0}};
  for (const auto& [name, help, set_flags, clear_flags] : updates) {
    auto args = std::make_shared<UpdateArgs>();
    CLI::App* update = account->add_subcommand(name, help);
    AddStoreOptions(update, &args->store, true);
    update->add_option("--id", args->id, "Account id")->required();
    update->callback([args, set = set_flags, clear = clear_flags, verb = std::string(name)] {
      const Id128 id = ParseIdOption(args->id, "id");
      auto durable = OpenStore(args->store.db, OpenMode::kReadWrite);
      SubmitAndReport(
          *durable,
          core::UpdateAccounts{.now_us = args->store.Now(),
                               .updates = {{.id = id, .set_flags = set, .clear_flags = clear}}},
          {verb + " account " + FormatId128(id)}, args->store.json);
    });
  }
}

struct TransferArgs {
  StoreOptions store;
  std::string id, debit, credit, amount, pending_id, timeout = "0";
  uint16_t code = 0;
  uint64_t user_data = 0;
};

void AddTransferOptions(CLI::App* command, TransferArgs* args, bool accounts, bool amount_required,
                        bool pending_ref) {
  AddStoreOptions(command, &args->store, true);
  command->add_option("--id", args->id, "Transfer id (chosen by the client; a retry reuses it)")
      ->required();
  if (accounts) {
    command->add_option("--debit", args->debit, "Account debited")->required();
    command->add_option("--credit", args->credit, "Account credited")->required();
  }
  auto* amount = command->add_option("--amount", args->amount, "Credits, e.g. 1234.56");
  if (amount_required) amount->required();
  if (pending_ref) command->add_option("--pending-id", args->pending_id, "The hold")->required();
  command->add_option("--code", args->code, "Reason code");
  command->add_option("--user-data", args->user_data, "Client reference number");
}

void SubmitTransfer(const TransferArgs& args, TransferSpec spec, const std::string& label) {
  spec.id = ParseIdOption(args.id, "id");
  if (!args.debit.empty()) spec.debit_account_id = ParseIdOption(args.debit, "debit");
  if (!args.credit.empty()) spec.credit_account_id = ParseIdOption(args.credit, "credit");
  if (!args.pending_id.empty()) spec.pending_id = ParseIdOption(args.pending_id, "pending-id");
  if (!args.amount.empty()) spec.amount = ParseAmountOption(args.amount, "amount");
  spec.code = args.code;
  spec.user_data = args.user_data;
  auto durable = OpenStore(args.store.db, OpenMode::kReadWrite);
  SubmitAndReport(*durable, core::CreateTransfers{.now_us = args.store.Now(), .transfers = {spec}},
                  {label + " " + FormatId128(spec.id)}, args.store.json);
}

void RegisterTransfers(CLI::App* ledger_app) {
  auto transfer_args = std::make_shared<TransferArgs>();
  CLI::App* transfer = ledger_app->add_subcommand("transfer", "Move credits between two accounts");
  AddTransferOptions(transfer, transfer_args.get(), true, true, false);
  transfer->callback([transfer_args] { SubmitTransfer(*transfer_args, {}, "transfer"); });

  auto hold_args = std::make_shared<TransferArgs>();
  CLI::App* hold = ledger_app->add_subcommand("hold", "Reserve credits (a pending transfer)");
  AddTransferOptions(hold, hold_args.get(), true, true, false);
  hold->add_option("--timeout-s", hold_args->timeout, "Release the hold after this many seconds");
  hold->callback([hold_args] {
    uint32_t timeout_s = 0;
    try {
      const unsigned long parsed = std::stoul(hold_args->timeout);
      if (parsed > UINT32_MAX ||
          hold_args->timeout.find_first_not_of("0123456789") != std::string::npos) {
        throw std::out_of_range("timeout");
      }
      timeout_s = static_cast<uint32_t>(parsed);
    } catch (const std::exception&) {
      FailUsage(MakeError(ErrorCode::kParseError, "not a number of seconds: " + hold_args->timeout,
                          "timeout-s"));
    }
    SubmitTransfer(*hold_args, {.timeout_s = timeout_s, .flags = ledger::kPending}, "hold");
  });

  auto post_args = std::make_shared<TransferArgs>();
  CLI::App* post = ledger_app->add_subcommand("post", "Settle a hold (all, or --amount of it)");
  AddTransferOptions(post, post_args.get(), false, false, true);
  post->callback([post_args] {
    SubmitTransfer(*post_args, {.amount = Credits::Max(), .flags = ledger::kPostPending}, "post");
  });

  auto void_args = std::make_shared<TransferArgs>();
  CLI::App* void_cmd = ledger_app->add_subcommand("void", "Release a hold");
  AddTransferOptions(void_cmd, void_args.get(), false, false, true);
  void_cmd->callback(
      [void_args] { SubmitTransfer(*void_args, {.flags = ledger::kVoidPending}, "void"); });

  auto sweep_args = std::make_shared<TransferArgs>();
  CLI::App* sweep = ledger_app->add_subcommand(
      "sweep", "Move what the debit account has available, up to --amount (a balancing debit)");
  AddTransferOptions(sweep, sweep_args.get(), true, true, false);
  sweep->callback(
      [sweep_args] { SubmitTransfer(*sweep_args, {.flags = ledger::kBalancingDebit}, "sweep"); });
}

Result<TransferSpec> ParseBatchItem(const nlohmann::json& item, size_t index) {
  const std::string where = "transfers[" + std::to_string(index) + "]";
  if (!item.is_object()) return MakeError(ErrorCode::kParseError, where + " is not an object");
  TransferSpec spec;
  for (const auto& entry : item.items()) {
    // Named, not a structured binding: clang 14 (the fuzz build) cannot capture one.
    const std::string& key = entry.key();
    const nlohmann::json& value = entry.value();
    const std::string field = fmt::format("{}.{}", where, key);
    auto id_of = [&]() -> Result<Id128> {
      if (value.is_number_unsigned()) return Id128{value.get<uint64_t>()};
      if (value.is_string()) return ParseId128(value.get<std::string>());
      return MakeError(ErrorCode::kParseError, "an id is a string or a number", field);
    };
    if (key == "id") {
      ATRIUM_ASSIGN_OR_RETURN(spec.id, id_of());
    } else if (key == "debit") {
      ATRIUM_ASSIGN_OR_RETURN(spec.debit_account_id, id_of());
    } else if (key == "credit") {
      ATRIUM_ASSIGN_OR_RETURN(spec.credit_account_id, id_of());
    } else if (key == "pending_id") {
      ATRIUM_ASSIGN_OR_RETURN(spec.pending_id, id_of());
    } else if (key == "amount") {
      if (!value.is_string()) {
        return MakeError(ErrorCode::kParseError, "amounts are decimal strings", field);
      }
      ATRIUM_ASSIGN_OR_RETURN(spec.amount, Credits::Parse(value.get<std::string>()));
    } else if (key == "timeout_s" && value.is_number_unsigned() &&
               value.get<uint64_t>() <= UINT32_MAX) {
      spec.timeout_s = static_cast<uint32_t>(value.get<uint64_t>());
    } else if (key == "code" && value.is_number_unsigned() && value.get<uint64_t>() <= 0xFFFF) {
      spec.code = static_cast<uint16_t>(value.get<uint64_t>());
    } else if (key == "user_data" && value.is_number_unsigned()) {
      spec.user_data = value.get<uint64_t>();
    } else if (key == "flags" && value.is_array()) {
      for (const auto& flag : value) {
        const std::string name = flag.is_string() ? flag.get<std::string>() : "";
        if (name == "linked") {
          spec.flags |= ledger::kLinked;
        } else if (name == "pending") {
          spec.flags |= ledger::kPending;
        } else if (name == "post_pending") {
          spec.flags |= ledger::kPostPending;
        } else if (name == "void_pending") {
          spec.flags |= ledger::kVoidPending;
        } else if (name == "balancing_debit") {
          spec.flags |= ledger::kBalancingDebit;
        } else if (name == "balancing_credit") {
          spec.flags |= ledger::kBalancingCredit;
        } else {
          return MakeError(ErrorCode::kInvalidFlags, "unknown transfer flag", field);
        }
      }
    } else {
      return MakeError(ErrorCode::kParseError, "unknown field or wrong type", field);
    }
  }
  return spec;
}

void RegisterBatch(CLI::App* ledger_app) {
  struct BatchArgs {
    StoreOptions store;
    std::string file;
  };
  auto args = std::make_shared<BatchArgs>();
  CLI::App* batch = ledger_app->add_subcommand(
      "batch",
      "Apply a JSON array of transfers in one command; 'linked' chains are all-or-nothing");
  AddStoreOptions(batch, &args->store, true);
  batch->add_option("--file", args->file, "JSON file ('-' for standard input)")->required();
  batch->callback([args] {
    std::string text;
    {
      std::ifstream file_stream;
      std::istream* in = &std::cin;
      if (args->file != "-") {
        file_stream.open(args->file, std::ios::binary);
        if (!file_stream)
          FailUsage(MakeError(ErrorCode::kNotFound, "cannot read " + args->file, "file"));
        in = &file_stream;
      }
      text.assign(std::istreambuf_iterator<char>(*in), {});
    }
    if (text.size() > kBatchFileBytesMax) {
      FailUsage(MakeError(ErrorCode::kLimitExceeded, "batch file over 64 MiB", "file"));
    }
    const nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_array()) {
      FailUsage(MakeError(ErrorCode::kParseError, "expected a JSON array of transfers", "file"));
    }
    std::vector<TransferSpec> specs;
    std::vector<std::string> labels;
    for (size_t item_idx = 0; item_idx < parsed.size(); ++item_idx) {
      auto spec = ParseBatchItem(parsed[item_idx], item_idx);
      if (!spec.ok()) FailUsage(spec.error());
      labels.push_back("transfer " + FormatId128(spec->id));
      specs.push_back(*spec);
    }
    auto durable = OpenStore(args->store.db, OpenMode::kReadWrite);
    SubmitAndReport(*durable,
                    core::CreateTransfers{.now_us = args->store.Now(), .transfers = specs}, labels,
                    args->store.json);
  });
}

void RegisterQueries(CLI::App* ledger_app) {
  struct QueryArgs {
    StoreOptions store;
    std::string account;
    size_t limit = 100;
  };
  auto balance_args = std::make_shared<QueryArgs>();
  CLI::App* balances = ledger_app->add_subcommand("balances", "Show account balances");
  AddStoreOptions(balances, &balance_args->store, false);
  balances->add_option("--account", balance_args->account, "Only this account");
  balances->callback([balance_args] {
    std::optional<Id128> only;
    if (!balance_args->account.empty()) only = ParseIdOption(balance_args->account, "account");
    auto durable = OpenStore(balance_args->store.db, OpenMode::kReadOnly);
    PrintBalances(durable->core().ledger(), only, balance_args->store.json);
  });

  auto history_args = std::make_shared<QueryArgs>();
  CLI::App* history = ledger_app->add_subcommand("history", "Show an account's transfers");
  AddStoreOptions(history, &history_args->store, false);
  history->add_option("--account", history_args->account, "Account id")->required();
  history->add_option("--limit", history_args->limit, "At most this many")->capture_default_str();
  history->callback([history_args] {
    const Id128 id = ParseIdOption(history_args->account, "account");
    auto durable = OpenStore(history_args->store.db, OpenMode::kReadOnly);
    const ledger::Ledger& ledger = durable->core().ledger();
    if (!ledger.FindAccount(id).has_value()) {
      Fail(
          MakeError(ErrorCode::kAccountNotFound, "no account " + history_args->account, "account"));
    }
    const auto transfers = ledger.History(id, history_args->limit);
    if (history_args->store.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& transfer : transfers) out.push_back(TransferJson(transfer));
      std::cout << out.dump(2) << '\n';
      return;
    }
    std::cout << fmt::format("{:>22} {:<8} {:>12} {:>12} {:>16} {}\n", "transfer", "kind", "debit",
                             "credit", "amount", "state");
    for (const auto& transfer : transfers) {
      std::cout << fmt::format("{:>22} {:<8} {:>12} {:>12} {:>16} {}\n", FormatId128(transfer.id),
                               TransferKind(transfer.flags), FormatId128(transfer.debit_account_id),
                               FormatId128(transfer.credit_account_id), transfer.amount.ToString(),
                               (transfer.flags & ledger::kPending) ? ToString(transfer.state) : "");
    }
  });
}

void RegisterMaintenance(CLI::App* ledger_app) {
  auto verify_args = std::make_shared<StoreOptions>();
  CLI::App* verify = ledger_app->add_subcommand(
      "verify", "Recompute the hash chain and every invariant from the journal alone");
  AddStoreOptions(verify, verify_args.get(), false);
  verify->callback([verify_args] {
    auto store = Unwrap(journal::OpenJournalStore(verify_args->db, OpenMode::kReadOnly));
    const journal::VerifyReport report = Unwrap(journal::VerifyStore(*store));
    if (verify_args->json) {
      std::cout << nlohmann::json{{"ok", true},
                                  {"entries", report.entries},
                                  {"snapshots_checked", report.snapshots_checked},
                                  {"accounts", report.accounts},
                                  {"transfers", report.transfers},
                                  {"chain_head", journal::ToHex(report.last_hash)}}
                       .dump()
                << '\n';
      return;
    }
    std::cout << fmt::format(
        "ok: {} journal entries chain to {}; {} snapshots match; {} accounts and {} transfers "
        "balance to zero\n",
        report.entries, journal::ToHex(report.last_hash), report.snapshots_checked, report.accounts,
        report.transfers);
  });

  auto snapshot_args = std::make_shared<StoreOptions>();
  CLI::App* snapshot = ledger_app->add_subcommand("snapshot", "Write a snapshot now");
  AddStoreOptions(snapshot, snapshot_args.get(), false);
  snapshot->callback([snapshot_args] {
    auto durable = OpenStore(snapshot_args->db, OpenMode::kReadWrite);
    Check(durable->Snapshot());
    std::cout << "snapshot at entry " << durable->last_seq() << '\n';
  });

  auto tick_args = std::make_shared<StoreOptions>();
  CLI::App* tick = ledger_app->add_subcommand("tick", "Release holds whose timeout has passed");
  AddStoreOptions(tick, tick_args.get(), true);
  tick->callback([tick_args] {
    auto durable = OpenStore(tick_args->db, OpenMode::kReadWrite);
    const core::CommandResult result =
        Unwrap(durable->Submit(core::Tick{.now_us = tick_args->Now()}));
    std::cout << "expired " << result.expired << " holds\n";
  });
}

void RegisterBench(CLI::App* ledger_app) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* bench =
      ledger_app->add_subcommand("bench", "Measure transfer throughput; prints one JSON line last");
  bench->add_option("--transfers", options->transfers, "Transfers to apply")
      ->check(CLI::Range(uint64_t{1}, uint64_t{4'000'000'000}))
      ->capture_default_str();
  bench->add_option("--batch", options->batch, "Transfers per command (and per fsync)")
      ->check(CLI::Range(1u, 1u << 20))
      ->capture_default_str();
  bench->add_option("--accounts", options->workload.accounts, "Grant accounts")
      ->check(CLI::Range(2u, 10'000'000u))
      ->capture_default_str();
  bench->add_option("--seed", options->workload.seed, "Workload seed")->capture_default_str();
  auto* durable = bench->add_flag("--durable", options->durable, "Journal every batch to --db");
  bench->add_option("--db", options->db_path, "Journal file for --durable")->needs(durable);
  bench->add_flag("--progress", options->progress, "Print 'acked N' after each durable batch");
  bench->add_flag("!--no-baseline", options->baseline, "Skip the plain SQLite reference");
  bench
      ->add_option("--snapshot-min-bytes", options->journal.snapshot_bytes_min,
                   "No automatic snapshot before this much journal since the last")
      ->capture_default_str();
  bench->callback([options] {
    if (options->durable && options->db_path.empty()) {
      FailUsage(MakeError(ErrorCode::kInvalidArgument, "--durable needs --db FILE", "db"));
    }
    std::cout << Unwrap(RunLedgerBench(*options, std::cout)) << '\n';
  });
}

}  // namespace

void RegisterLedgerCommands(CLI::App& app) {
  CLI::App* ledger_app =
      app.add_subcommand("ledger", "Credit accounts, transfers, holds and balances");
  ledger_app->require_subcommand(1);
  RegisterAccount(ledger_app);
  RegisterTransfers(ledger_app);
  RegisterBatch(ledger_app);
  RegisterQueries(ledger_app);
  RegisterMaintenance(ledger_app);
  RegisterBench(ledger_app);
  RegisterLedgerDemo(ledger_app);
}

}  // namespace atrium::cli
