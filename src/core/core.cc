#include "core/core.h"

#include <fmt/format.h>

#include <algorithm>
#include "absl/container/flat_hash_map.h"

#include "base/bytes.h"

namespace atrium::core {
namespace {
constexpr uint32_t kStateMagic = 0x31535441;  // "ATS1"
// Version 1 held the ledger only; versions 2 and 3 added the service's app commands,
// which decoding replayed (3: into the one ledger of record). Version 4 holds the state
// itself (docs/snapshots.md): the ledger of record, then AppState's encoding
// (app_state_codec.cc), each behind its u64 length; version 5 adds training, datasets and
// capacity reservations to the parts. Older versions are refused by Decode
// (kCorruption, "unsupported version"); the journal then replays from its start.
constexpr uint32_t kStateVersion = Core::kSnapshotVersion;

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

// Raw ledger commands may not name an id of a program's or the cluster's id space: those
// accounts and transfers change only through the ops that own them. A batch that does is
// refused whole, as an oversized one is.
bool TouchesReserved(const ledger::AccountSpec& spec) { return program::IsReservedId(spec.id); }
bool TouchesReserved(const ledger::AccountUpdate& update) {
  return program::IsReservedId(update.id);
}
bool TouchesReserved(const ledger::TransferSpec& spec) {
  return program::IsReservedId(spec.id) || program::IsReservedId(spec.debit_account_id) ||
         program::IsReservedId(spec.credit_account_id) || program::IsReservedId(spec.pending_id);
}
template <typename Spec>
std::optional<std::vector<ledger::EventFailure>> RefuseReserved(const std::vector<Spec>& events) {
  if (std::none_of(events.begin(), events.end(),
                   [](const Spec& event) { return TouchesReserved(event); })) {
    return std::nullopt;
  }
  std::vector<ledger::EventFailure> failures;
  for (size_t i = 0; i < events.size(); ++i) {
    failures.push_back({static_cast<uint32_t>(i), ErrorCode::kInvalidId});
  }
  return failures;
}

Status Breach(const std::string& message) {
  return MakeError(ErrorCode::kInvariantViolated, message);
}
}  // namespace

CommandResult Core::Apply(const Command& command) {
  CommandResult result;
  std::visit(
      Overloaded{
          [&](const CreateAccounts& typed) {
            if (auto refused = RefuseReserved(typed.accounts)) {
              result.failures = std::move(*refused);
              return;
            }
            result.failures = app_.mutable_ledger().CreateAccounts(typed.accounts, typed.now_us);
            result.changed = AnyApplied(typed.accounts.size(), result.failures);
          },
          [&](const UpdateAccounts& typed) {
            if (auto refused = RefuseReserved(typed.updates)) {
              result.failures = std::move(*refused);
              return;
            }
            result.failures = app_.mutable_ledger().UpdateAccounts(typed.updates, typed.now_us);
            result.changed = AnyApplied(typed.updates.size(), result.failures);
          },
          [&](const CreateTransfers& typed) {
            if (auto refused = RefuseReserved(typed.transfers)) {
              result.failures = std::move(*refused);
              return;
            }
            result.failures = app_.mutable_ledger().CreateTransfers(typed.transfers, typed.now_us);
            result.changed = AnyApplied(typed.transfers.size(), result.failures);
          },
          [&](const Tick& typed) {
            result.expired = app_.mutable_ledger().ExpirePending(typed.now_us);
            result.changed = result.expired > 0;
          },
          [&](const AppCommand& typed) {
            ApplyApp(typed, nlohmann::json::parse(typed.json, nullptr, /*allow_exceptions=*/false),
                     result);
          },
      },
      command);
  return result;
}

Core::ParsedCommand Core::Parse(Command command) {
  ParsedCommand parsed{.command = std::move(command), .document = nullptr};
  if (const auto* app = std::get_if<AppCommand>(&parsed.command)) {
    parsed.document = nlohmann::json::parse(app->json, nullptr, /*allow_exceptions=*/false);
  }
  return parsed;
}

CommandResult Core::Apply(const ParsedCommand& parsed) {
  const auto* app = std::get_if<AppCommand>(&parsed.command);
  if (app == nullptr) return Apply(parsed.command);
  CommandResult result;
  ApplyApp(*app, parsed.document, result);
  return result;
}

void Core::ApplyApp(const AppCommand& command, const nlohmann::json& document,
                    CommandResult& result) {
  if (document.is_discarded()) {
    AppAnswer answer;
    answer.status = MakeError(ErrorCode::kParseError, "the command is not JSON");
    result.app = std::move(answer);
    return;
  }
  result.app = app_.Apply(document, command.now_us);
  result.changed = result.app->changed;
}

Status Core::Verify() const {
  const ledger::Ledger& book = app_.ledger();
  ATRIUM_TRY(book.Verify());

  // One pass over the transfers: what each account was charged, returned and awarded,
  // each job's posted charges, and the scheduler's open holds.
  struct Totals {
    __int128 usage = 0;         // posted debits coded usage (charges)
    __int128 returned = 0;      // debits coded return (sweeps at close or expiry)
    __int128 awarded = 0;       // posted credits coded award (released tranches)
    __int128 training_in = 0;   // credits coded training (a lab enrolment's credits)
    __int128 training_out = 0;  // debits coded training (returned to the track)
    __int128 storage = 0;       // debits coded storage (datasets.h: storage kept, per GiB-month)
  };
  absl::flat_hash_map<Id128, Totals, Id128Hash> totals;
  // Per scheduler job (user_data is its JobId): what its posts moved and its open hold,
  // in vectors indexed by job, as dense as the jobs (a restart verifies millions). An
  // open hold naming a job the scheduler does not have goes to the map (a breach below);
  // posts are compared per job the scheduler has, as before.
  const size_t job_count = app_.scheduler() != nullptr ? app_.scheduler()->job_count() : 0;
  std::vector<__int128> job_posted_by_id(job_count, 0);
  std::vector<Id128> open_hold_by_id(job_count, kIdNone);
  absl::flat_hash_map<uint64_t, Id128> open_holds;  // job -> hold id, for unknown jobs
  __int128 open_hold_count = 0;
  const uint64_t cluster_space = program::kNamespaceBit;
  std::optional<Status> breach;
  // Capacity reservations: open holds and posts per booking (coded kCodeReservation).
  absl::flat_hash_map<uint64_t, __int128> booking_open;
  absl::flat_hash_map<uint64_t, __int128> booking_posted;
  absl::flat_hash_map<Id128, __int128, Id128Hash> booking_held;  // account -> open holds
  __int128 booking_open_total = 0;
  book.ForEachTransfer([&](const ledger::Transfer& transfer) {
    const bool scheduler = static_cast<uint64_t>(transfer.id >> 64) == cluster_space;
    const bool hold = (transfer.flags & ledger::kPending) != 0;
    const bool voided = (transfer.flags & ledger::kVoidPending) != 0;
    if (scheduler && transfer.code == program::kCodeReservation) {
      if (hold && transfer.state == ledger::PendingState::kOpen) {
        booking_open[transfer.user_data] += transfer.amount.micro();
        booking_held[transfer.debit_account_id] += transfer.amount.micro();
        booking_open_total += transfer.amount.micro();
      }
      if ((transfer.flags & ledger::kPostPending) != 0) {
        booking_posted[transfer.user_data] += transfer.amount.micro();
        totals[transfer.debit_account_id].usage += transfer.amount.micro();
      }
      return;
    }
    if (scheduler && hold && transfer.state == ledger::PendingState::kOpen) {
      ++open_hold_count;
      const bool known = transfer.user_data < job_count;
      const bool second = known ? open_hold_by_id[transfer.user_data] != kIdNone
                                : !open_holds.emplace(transfer.user_data, transfer.id).second;
      if (known && !second) open_hold_by_id[transfer.user_data] = transfer.id;
      if (second && !breach) {
        breach = Breach(fmt::format("job {} has two open holds", transfer.user_data));
      }
    }
    if (scheduler && (transfer.flags & ledger::kPostPending) != 0) {
      if (transfer.user_data < job_count)
        job_posted_by_id[transfer.user_data] += transfer.amount.micro();
    }
    if (hold || voided) return;
    switch (transfer.code) {
      case program::kCodeUsage:
        totals[transfer.debit_account_id].usage += transfer.amount.micro();
        break;
      case program::kCodeReturn:
        totals[transfer.debit_account_id].returned += transfer.amount.micro();
        break;
      case program::kCodeAward:
        totals[transfer.credit_account_id].awarded += transfer.amount.micro();
        break;
      case program::kCodeTraining:
        totals[transfer.credit_account_id].training_in += transfer.amount.micro();
        totals[transfer.debit_account_id].training_out += transfer.amount.micro();
        break;
      case program::kCodeStorage:
        totals[transfer.debit_account_id].storage += transfer.amount.micro();
        break;
      default:
        break;
    }
  });
  if (breach) return *breach;

  if (const sched::Scheduler* scheduler = app_.scheduler()) {
    // Holds of running jobs = pending debits of their accounts; every open hold is one.
    absl::flat_hash_map<Id128, __int128, Id128Hash> held;
    __int128 running_holds = 0;
    // A hold or post naming no job of the scheduler belongs to no running job.
    if (!open_holds.empty()) {
      return Breach(fmt::format("job {} is not in the scheduler but holds credits",
                                open_holds.begin()->first));
    }
    for (sched::JobId id = 0; id < scheduler->job_count(); ++id) {
      const sched::Job& job = scheduler->job(id);
      const Id128 open_hold = open_hold_by_id[id];
      if (job.state == sched::JobState::kRunning && job.hold_id != kIdNone) {
        if (open_hold != job.hold_id) {
          return Breach(fmt::format("running job {} has no open hold in the ledger", job.id));
        }
        held[scheduler->grants()[job.grant].account] += scheduler->HeldBy(id).micro();
        ++running_holds;
      } else if (open_hold != kIdNone) {
        return Breach(fmt::format("job {} ({}) is not running but holds credits", job.id,
                                  sched::ToString(job.state)));
      }
      const __int128 charged = job_posted_by_id[id];
      if (charged != job.charged.micro()) {
        return Breach(fmt::format("job {}: charged {} but its posted transfers moved {}", job.id,
                                  job.charged.ToString(),
                                  Credits::FromMicro(static_cast<int64_t>(charged)).ToString()));
      }
    }
    if (running_holds != open_hold_count) {
      return Breach("an open hold of the scheduler belongs to no running job");
    }
    // Open booking holds = the unstarted bookings' prices; posts = what each was charged.
    __int128 unstarted_total = 0;
    for (uint32_t index = 0; index < scheduler->bookings().size(); ++index) {
      const sched::CapacityBooking& booking = scheduler->bookings()[index];
      const bool unstarted = booking.state == sched::BookingState::kBooked;
      const __int128 expected_open = unstarted ? booking.price.micro() : 0;
      const auto open = booking_open.find(index);
      if ((open == booking_open.end() ? 0 : open->second) != expected_open) {
        return Breach(fmt::format("booking {} ({}): its open hold differs from its price",
                                  booking.id, sched::ToString(booking.state)));
      }
      const auto posted = booking_posted.find(index);
      if ((posted == booking_posted.end() ? 0 : posted->second) != booking.charged.micro()) {
        return Breach(fmt::format("booking {}: charged {} but its posts moved otherwise",
                                  booking.id, booking.charged.ToString()));
      }
      unstarted_total += expected_open;
    }
    if (unstarted_total != booking_open_total) {
      return Breach("an open booking hold belongs to no unstarted booking");
    }
    for (const auto& [account, amount] : booking_held) held[account] += amount;
    for (const sched::GrantInfo& grant : scheduler->grants()) {
      const auto account = book.FindAccount(grant.account);
      if (!account) return Breach("scheduler grant " + grant.name + " has no ledger account");
      const auto found = held.find(grant.account);
      const __int128 expected = found == held.end() ? 0 : found->second;
      if (account->debits_pending.micro() != expected) {
        return Breach(fmt::format("grant {}: pending debits {} but its runs and bookings hold {}",
                                  grant.name, account->debits_pending.ToString(),
                                  Credits::FromMicro(static_cast<int64_t>(expected)).ToString()));
      }
    }
  }

  // Program totals = ledger totals.
  for (const auto& [id, program] : app_.programs()) {
    __int128 spent_total = 0;
    for (const auto& [grant_id, grant] : program.grants()) {
      const std::string name = fmt::format("program {} grant {}", id, grant_id);
      std::vector<Id128> accounts = {program.AccountId(grant.account)};
      for (const auto& [student, account] : grant.students) {
        accounts.push_back(program.AccountId(account));
      }
      Totals sum;
      __int128 balance = 0;
      for (const Id128 account : accounts) {
        const auto found = totals.find(account);
        if (found != totals.end()) {
          sum.usage += found->second.usage;
          sum.returned += found->second.returned;
          sum.awarded += found->second.awarded;
          sum.storage += found->second.storage;
        }
        const auto record = book.FindAccount(account);
        if (!record) return Breach(name + ": an account is missing from the ledger");
        balance += record->balance().micro();
      }
      __int128 released = 0;
      __int128 tranches = 0;
      for (const program::Tranche& tranche : grant.tranches) {
        tranches += tranche.amount.micro();
        if (tranche.released) released += tranche.amount.micro();
      }
      if (tranches != grant.awarded.micro() || released != sum.awarded) {
        return Breach(name + ": awarded and released tranches differ from the ledger's awards");
      }
      if (sum.usage != grant.spent.micro()) {
        return Breach(fmt::format("{}: spent {} but the ledger charged {}", name,
                                  grant.spent.ToString(),
                                  Credits::FromMicro(static_cast<int64_t>(sum.usage)).ToString()));
      }
      if (sum.returned != grant.returned.micro()) {
        return Breach(name + ": returned differs from the ledger's sweeps");
      }
      const auto storage = program.dataset_book().storage.find(grant_id);
      const __int128 storage_charged =
          storage == program.dataset_book().storage.end() ? 0 : storage->second.charged.micro();
      if (sum.storage != storage_charged) {
        return Breach(name + ": storage charged differs from the ledger's storage transfers");
      }
      if (balance != released - sum.usage - sum.storage - sum.returned) {
        return Breach(name + ": balance is not released - spent - storage - returned");
      }
      spent_total += sum.usage + sum.storage;
    }
    // Lab enrolments (docs/training.md): credits in = moved from the track, spent = their
    // jobs' charges, returned = moved back; the balance is what is left.
    for (const auto& [enrolment_id, enrolment] : program.training().enrolments) {
      const std::string name = fmt::format("program {} enrolment {}", id, enrolment_id);
      if (enrolment.account == 0) {
        if (!enrolment.credits.is_zero() || !enrolment.spent.is_zero()) {
          return Breach(name + ": credits without an account");
        }
        continue;
      }
      const Id128 account = program.AccountId(enrolment.account);
      const auto record = book.FindAccount(account);
      if (!record) return Breach(name + ": its account is missing from the ledger");
      const auto found = totals.find(account);
      const Totals sum = found == totals.end() ? Totals{} : found->second;
      if (sum.training_in != enrolment.credits.micro() ||
          sum.training_out != enrolment.returned.micro() || sum.usage != enrolment.spent.micro()) {
        return Breach(name + ": credits, spent or returned differ from the ledger");
      }
      if (record->balance().micro() != sum.training_in - sum.usage - sum.training_out) {
        return Breach(name + ": balance is not credits - spent - returned");
      }
      spent_total += sum.usage;
    }
    const auto revenue = book.FindAccount(program.AccountId(program::kClusterRevenueAccount));
    if (!revenue || revenue->credits_posted.micro() != spent_total) {
      return Breach("program " + id +
                    ": the cluster's revenue differs from its grants' spent and storage");
    }
  }
  return OkStatus();
}

void Core::Encode(std::string* out) const {
  ByteWriter writer(out);
  writer.Put<uint32_t>(kStateMagic);
  writer.Put<uint32_t>(kStateVersion);
  // Each part's length goes before it; write zero and patch it, rather than encode into
  // a temporary copy of what may be hundreds of megabytes. The ledger of record once,
  // then the service's state, whose programs and scheduler hold ids into that ledger.
  const auto sized = [out](const auto& encode) {
    const size_t length_at = out->size();
    ByteWriter(out).Put<uint64_t>(0);
    encode(out);
    std::string length;
    ByteWriter(&length).Put<uint64_t>(out->size() - length_at - sizeof(uint64_t));
    out->replace(length_at, length.size(), length);
  };
  sized([this](std::string* into) { app_.ledger().Encode(into); });
  sized([this](std::string* into) { app_.Encode(into); });
}

Result<uint32_t> Core::SnapshotVersion(std::string_view bytes) {
  ByteReader reader(bytes);
  const auto magic = reader.Get<uint32_t>();
  const auto version = reader.Get<uint32_t>();
  if (!reader.ok() || magic != kStateMagic) {
    return MakeError(ErrorCode::kCorruption, "state snapshot: bad magic");
  }
  return version;
}

Result<Core::SnapshotParts> Core::SplitSnapshot(std::string_view bytes) {
  ATRIUM_ASSIGN_OR_RETURN(const uint32_t version, SnapshotVersion(bytes));
  if (version != kStateVersion) {
    return MakeError(ErrorCode::kCorruption,
                     "state snapshot: unsupported version " + std::to_string(version) +
                         " (this build reads version " + std::to_string(kStateVersion) +
                         "; the journal is replayed from its start instead)");
  }
  ByteReader reader(bytes.substr(8));
  SnapshotParts parts;
  parts.ledger = reader.GetRaw(reader.Get<uint64_t>());
  parts.app = reader.GetRaw(reader.Get<uint64_t>());
  if (!reader.ok() || !reader.at_end()) {
    return MakeError(ErrorCode::kCorruption, "state snapshot: bad length");
  }
  return parts;
}

Result<ledger::Ledger> Core::DecodeLedger(std::string_view ledger_part) {
  return ledger::Ledger::Decode(ledger_part);
}

Result<Core> Core::DecodeWithoutLedger(std::string_view app_part) {
  Core core;
  ATRIUM_ASSIGN_OR_RETURN(core.app_, AppState::Decode(app_part, ledger::Ledger()));
  return core;
}

void Core::AttachLedger(ledger::Ledger ledger) {
  // Assigned into the ledger the programs and the scheduler point at: its address stays.
  app_.mutable_ledger() = std::move(ledger);
}

Result<Core> Core::Decode(std::string_view bytes) {
  ATRIUM_ASSIGN_OR_RETURN(const SnapshotParts parts, SplitSnapshot(bytes));
  ATRIUM_ASSIGN_OR_RETURN(ledger::Ledger ledger, DecodeLedger(parts.ledger));
  ATRIUM_ASSIGN_OR_RETURN(Core core, DecodeWithoutLedger(parts.app));
  core.AttachLedger(std::move(ledger));
  return core;
}

}  // namespace atrium::core
