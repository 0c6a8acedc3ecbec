#include "ledger/ledger.h"

#include <algorithm>
#include <array>
#include <bit>
#include <limits>

#include "base/bytes.h"

namespace atrium::ledger {
namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr uint32_t kSnapshotMagic = 0x31474C41;  // "ALG1"

constexpr std::array<std::string_view, 8> kAccountKindNames = {
    "", "sponsor", "program_pool", "track_pool", "grant", "cluster_revenue", "course", "operating"};

constexpr uint16_t kPhaseFlags = kPending | kPostPending | kVoidPending;
constexpr uint16_t kBalancingFlags = kBalancingDebit | kBalancingCredit;

bool AddOverflows(int64_t a, int64_t b, int64_t* sum) { return __builtin_add_overflow(a, b, sum); }

int64_t ExpiresAt(int64_t timestamp_us, uint32_t timeout_s) {
  return timestamp_us + static_cast<int64_t>(timeout_s) * kMicrosPerSecond;
}

}  // namespace

std::string_view ToString(AccountKind kind) {
  const auto index = static_cast<size_t>(kind);
  return index < kAccountKindNames.size() ? kAccountKindNames[index] : std::string_view("unknown");
}

Result<AccountKind> ParseAccountKind(std::string_view text) {
  for (size_t kind_idx = 1; kind_idx < kAccountKindNames.size(); ++kind_idx) {
    if (kAccountKindNames[kind_idx] == text) return static_cast<AccountKind>(kind_idx);
  }
  return MakeError(ErrorCode::kInvalidKind, "unknown account kind '" + std::string(text) + "'",
                   "kind");
}

std::string_view ToString(PendingState state) {
  switch (state) {
    case PendingState::kNone:
      return "none";
    case PendingState::kOpen:
      return "open";
    case PendingState::kPosted:
      return "posted";
    case PendingState::kVoided:
      return "voided";
    case PendingState::kExpired:
      return "expired";
  }
  return "unknown";
}

Credits Account::balance() const {
  return Credits::FromMicro(credits_posted.micro() - debits_posted.micro());
}

Credits Account::available() const {
  const __int128 available = static_cast<__int128>(credits_posted.micro()) - debits_posted.micro() -
                             debits_pending.micro();
  return Credits::FromMicro(static_cast<int64_t>(std::clamp<__int128>(
      available, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())));
}

// ---------------------------------------------------------------------------------------
// Batches and linked chains.

int64_t Ledger::NextTimestamp(int64_t now_us) const {
  ATRIUM_ASSERT(last_timestamp_us_ < std::numeric_limits<int64_t>::max(), "timestamp overflow");
  return std::max(now_us, last_timestamp_us_ + 1);
}

template <typename Spec, typename Apply>
std::vector<EventFailure> Ledger::ApplyBatch(std::span<const Spec> events, int64_t now_us,
                                             Apply apply) {
  std::vector<EventFailure> failures;
  const size_t event_count = events.size();
  const bool time_valid = now_us >= 0 && now_us <= kTimeMaxUs;
  if (event_count > kBatchEventsMax || !time_valid) {
    const ErrorCode code = time_valid ? ErrorCode::kLimitExceeded : ErrorCode::kTimestampOverflow;
    for (size_t event_idx = 0; event_idx < event_count; ++event_idx) {
      failures.push_back({static_cast<uint32_t>(event_idx), code});
    }
    return failures;
  }
  auto is_linked = [&events](size_t event_idx) {
    if constexpr (std::is_same_v<Spec, TransferSpec>) {
      return (events[event_idx].flags & kLinked) != 0;
    } else {
      (void)events;  // only transfers link; clang warns of the unused capture otherwise
      (void)event_idx;
      return false;
    }
  };
  constexpr size_t kNoChain = SIZE_MAX;
  size_t chain_start = kNoChain;
  // Whether every event of the open chain so far answered kExists: a retried chain,
  // which answers kExists throughout rather than failing.
  bool chain_all_exist = false;
  for (size_t event_idx = 0; event_idx < event_count; ++event_idx) {
    const bool linked = is_linked(event_idx);
    if (linked && chain_start == kNoChain) {
      chain_start = event_idx;
      chain_all_exist = true;
      undo_ = Undo{.transfer_count = transfers_->size(),
                   .account_count = accounts_.size(),
                   .last_timestamp_us = last_timestamp_us_,
                   .active = true};
    }
    if constexpr (std::is_same_v<Spec, TransferSpec>) {
      // The transfer index is far larger than the caches: start fetching the slot of a
      // transfer a few events ahead while this one is applied.
      constexpr size_t kPrefetchDistance = 8;
      if (event_idx + kPrefetchDistance < event_count) {
        transfer_index_.prefetch(events[event_idx + kPrefetchDistance].id);
      }
    }
    const ErrorCode code = (linked && event_idx + 1 == event_count)
                               ? ErrorCode::kLinkedEventChainOpen
                               : apply(events[event_idx], NextTimestamp(now_us));
    if (chain_start == kNoChain) {
      if (code != ErrorCode::kOk) failures.push_back({static_cast<uint32_t>(event_idx), code});
      continue;
    }
    // Inside a chain. A chain mixing existing and new events is a retry that differs
    // from the original: it fails at its first existing event.
    size_t failed_idx = event_idx;
    bool chain_fails = false;
    if (code == ErrorCode::kOk) {
      if (chain_all_exist && event_idx > chain_start) {
        chain_fails = true;
        failed_idx = chain_start;
      }
      chain_all_exist = false;
    } else if (code != ErrorCode::kExists || !chain_all_exist) {
      chain_fails = true;
    }
    if (!chain_fails) {
      if (!linked) {  // the chain is complete
        if (chain_all_exist) {
          for (size_t chain_idx = chain_start; chain_idx <= event_idx; ++chain_idx) {
            failures.push_back({static_cast<uint32_t>(chain_idx), ErrorCode::kExists});
          }
        }
        chain_start = kNoChain;
        undo_ = Undo{};
      }
      continue;
    }
    // Undo the chain so far and fail every one of its events.
    Rollback();
    const ErrorCode failed_code = failed_idx == event_idx ? code : ErrorCode::kExists;
    size_t chain_end = event_idx;
    while (chain_end + 1 < event_count && is_linked(chain_end)) ++chain_end;
    for (size_t chain_idx = chain_start; chain_idx <= chain_end; ++chain_idx) {
      failures.push_back({static_cast<uint32_t>(chain_idx),
                          chain_idx == failed_idx ? failed_code : ErrorCode::kLinkedEventFailed});
    }
    event_idx = chain_end;
    chain_start = kNoChain;
    undo_ = Undo{};
  }
  return failures;
}

void Ledger::SaveAccount(uint32_t index) {
  if (undo_.active) undo_.accounts.emplace_back(index, accounts_[index]);
}

void Ledger::SavePendingState(uint32_t index) {
  if (undo_.active) undo_.pending_states.emplace_back(index, (*transfers_)[index].state);
}

void Ledger::Rollback() {
  ATRIUM_ASSERT(undo_.active, "rollback outside a linked chain");
  for (auto it = undo_.accounts.rbegin(); it != undo_.accounts.rend(); ++it) {
    accounts_[it->first] = it->second;
  }
  for (auto it = undo_.pending_states.rbegin(); it != undo_.pending_states.rend(); ++it) {
    (*transfers_)[it->first].state = it->second;
  }
  for (size_t transfer_idx = undo_.transfer_count; transfer_idx < transfers_->size();
       ++transfer_idx) {
    transfer_index_.erase((*transfers_)[transfer_idx].id);
  }
  // Expiry entries pushed by the chain stay in the heap; ExpirePending skips entries
  // that no longer match an open hold.
  transfers_->Truncate(undo_.transfer_count);
  last_timestamp_us_ = undo_.last_timestamp_us;
  ATRIUM_ASSERT(accounts_.size() == undo_.account_count, "accounts are never linked");
}

// ---------------------------------------------------------------------------------------
// Accounts.

std::vector<EventFailure> Ledger::CreateAccounts(std::span<const AccountSpec> accounts,
                                                 int64_t now_us) {
  return ApplyBatch(accounts, now_us, [this](const AccountSpec& spec, int64_t timestamp_us) {
    return ApplyAccount(spec, timestamp_us);
  });
}

ErrorCode Ledger::ApplyAccount(const AccountSpec& spec, int64_t timestamp_us) {
  if (!IsValidId(spec.id)) return ErrorCode::kInvalidId;
  if ((spec.flags & ~kAccountFlagsAll) != 0 || (spec.flags & kClosed) != 0 ||
      ((spec.flags & kDebitsMustNotExceedCredits) && (spec.flags & kCreditsMustNotExceedDebits))) {
    return ErrorCode::kInvalidFlags;
  }
  const auto kind_value = static_cast<size_t>(spec.kind);
  if (kind_value == 0 || kind_value >= kAccountKindNames.size()) return ErrorCode::kInvalidKind;
  if (auto found = account_index_.find(spec.id); found != account_index_.end()) {
    const AccountRecord& existing = accounts_[found->second];
    // Frozen may have changed since creation; it is not part of the identity.
    const bool same = existing.kind == spec.kind && existing.user_data == spec.user_data &&
                      (existing.flags & ~(kFrozen | kClosed)) == (spec.flags & ~kFrozen);
    return same ? ErrorCode::kExists : ErrorCode::kExistsWithDifferentFields;
  }
  if (accounts_.size() >= kNoIndex) return ErrorCode::kLimitExceeded;
  accounts_.push_back(AccountRecord{.id = spec.id,
                                    .debits_pending = 0,
                                    .debits_posted = 0,
                                    .credits_pending = 0,
                                    .credits_posted = 0,
                                    .timestamp_us = timestamp_us,
                                    .user_data = spec.user_data,
                                    .flags = spec.flags,
                                    .kind = spec.kind});
  account_index_.emplace(spec.id, static_cast<uint32_t>(accounts_.size() - 1));
  last_timestamp_us_ = timestamp_us;
  return ErrorCode::kOk;
}

std::vector<EventFailure> Ledger::UpdateAccounts(std::span<const AccountUpdate> updates,
                                                 int64_t now_us) {
  return ApplyBatch(updates, now_us, [this](const AccountUpdate& update, int64_t timestamp_us) {
    return ApplyUpdate(update, timestamp_us);
  });
}

ErrorCode Ledger::ApplyUpdate(const AccountUpdate& update, int64_t timestamp_us) {
  constexpr uint16_t kMutable = kFrozen | kClosed;
  if ((update.set_flags & ~kMutable) != 0 || (update.clear_flags & ~kFrozen) != 0 ||
      (update.set_flags & update.clear_flags) != 0 ||
      (update.set_flags | update.clear_flags) == 0) {
    return ErrorCode::kInvalidFlags;
  }
  auto found = account_index_.find(update.id);
  if (found == account_index_.end()) return ErrorCode::kAccountNotFound;
  AccountRecord& account = accounts_[found->second];
  if (account.flags & kClosed) return ErrorCode::kAccountClosed;
  if ((update.set_flags & kClosed) &&
      (account.debits_pending != 0 || account.credits_pending != 0)) {
    return ErrorCode::kAccountHasPending;
  }
  account.flags = static_cast<uint16_t>((account.flags | update.set_flags) & ~update.clear_flags);
  last_timestamp_us_ = timestamp_us;
  return ErrorCode::kOk;
}

// ---------------------------------------------------------------------------------------
// Transfers.

std::vector<EventFailure> Ledger::CreateTransfers(std::span<const TransferSpec> transfers,
                                                  int64_t now_us) {
  return ApplyBatch(transfers, now_us, [this](const TransferSpec& spec, int64_t timestamp_us) {
    return ApplyTransfer(spec, timestamp_us);
  });
}

ErrorCode Ledger::ApplyTransfer(const TransferSpec& spec, int64_t timestamp_us) {
  if (!IsValidId(spec.id)) return ErrorCode::kInvalidId;
  if ((spec.flags & ~kTransferFlagsAll) != 0 ||
      std::popcount(static_cast<unsigned>(spec.flags & kPhaseFlags)) > 1 ||
      ((spec.flags & kBalancingFlags) && (spec.flags & (kPostPending | kVoidPending)))) {
    return ErrorCode::kInvalidFlags;
  }
  if (spec.timeout_s != 0 && !(spec.flags & kPending)) return ErrorCode::kTimeoutWithoutPending;
  if (transfers_->size() >= kNoIndex) return ErrorCode::kLimitExceeded;
  // One probe both finds an existing id and reserves the slot for a new one; a refused
  // transfer gives the slot back. Nothing else inserts in between, so the iterator holds.
  const auto position = static_cast<uint32_t>(transfers_->size());
  bool inserted = false;
  const auto slot = transfer_index_.lazy_emplace(spec.id, [&](const auto& construct) {
    inserted = true;
    construct(position);
  });
  if (!inserted) return CompareExisting(spec, (*transfers_)[*slot]);
  const ErrorCode code = (spec.flags & (kPostPending | kVoidPending))
                             ? ApplyResolve(spec, timestamp_us)
                             : ApplySinglePhase(spec, timestamp_us);
  if (code != ErrorCode::kOk) transfer_index_.erase(slot);
  return code;
}

ErrorCode Ledger::CompareExisting(const TransferSpec& spec, const TransferRecord& existing) const {
  constexpr ErrorCode kDifferent = ErrorCode::kExistsWithDifferentFields;
  if (spec.flags != existing.flags || spec.code != existing.code ||
      spec.user_data != existing.user_data || spec.timeout_s != existing.timeout_s) {
    return kDifferent;
  }
  const Id128 debit_id = accounts_[existing.debit_index].id;
  const Id128 credit_id = accounts_[existing.credit_index].id;
  if (existing.flags & (kPostPending | kVoidPending)) {
    if (spec.pending_id != (*transfers_)[existing.pending_index].id) return kDifferent;
    if (spec.debit_account_id != kIdNone && spec.debit_account_id != debit_id) return kDifferent;
    if (spec.credit_account_id != kIdNone && spec.credit_account_id != credit_id) return kDifferent;
    const bool full = spec.amount == Credits::Max();
    if (existing.flags & kPostPending) {
      // "The whole hold" matches only a post that took the whole hold.
      const int64_t requested =
          full ? (*transfers_)[existing.pending_index].amount : spec.amount.micro();
      return requested == existing.amount ? ErrorCode::kExists : kDifferent;
    }
    return full || spec.amount.is_zero() || spec.amount.micro() == existing.amount
               ? ErrorCode::kExists
               : kDifferent;
  }
  if (spec.pending_id != kIdNone || spec.debit_account_id != debit_id ||
      spec.credit_account_id != credit_id) {
    return kDifferent;
  }
  const bool amount_matches = (existing.flags & kBalancingFlags)
                                  ? existing.amount <= spec.amount.micro()
                                  : existing.amount == spec.amount.micro();
  return amount_matches ? ErrorCode::kExists : kDifferent;
}

ErrorCode Ledger::ApplySinglePhase(const TransferSpec& spec, int64_t timestamp_us) {
  if (spec.pending_id != kIdNone) return ErrorCode::kInvalidArgument;
  if (spec.amount.is_negative()) return ErrorCode::kNegativeAmount;
  if (spec.amount.is_zero()) return ErrorCode::kZeroAmount;
  if (spec.debit_account_id == spec.credit_account_id) return ErrorCode::kSameAccount;
  const auto debit_found = account_index_.find(spec.debit_account_id);
  const auto credit_found = account_index_.find(spec.credit_account_id);
  if (debit_found == account_index_.end() || credit_found == account_index_.end()) {
    return ErrorCode::kAccountNotFound;
  }
  const uint32_t debit_index = debit_found->second;
  const uint32_t credit_index = credit_found->second;
  AccountRecord& debit = accounts_[debit_index];
  AccountRecord& credit = accounts_[credit_index];
  if ((debit.flags | credit.flags) & kClosed) return ErrorCode::kAccountClosed;
  if ((debit.flags | credit.flags) & kFrozen) return ErrorCode::kAccountFrozen;

  int64_t amount = spec.amount.micro();
  if (spec.flags & kBalancingDebit) {
    const __int128 available =
        static_cast<__int128>(debit.credits_posted) - debit.debits_posted - debit.debits_pending;
    amount = static_cast<int64_t>(std::clamp<__int128>(available, 0, amount));
  }
  if (spec.flags & kBalancingCredit) {
    const __int128 room = static_cast<__int128>(credit.debits_posted) - credit.credits_posted -
                          credit.credits_pending;
    amount = static_cast<int64_t>(std::clamp<__int128>(room, 0, amount));
  }

  const bool pending = (spec.flags & kPending) != 0;
  int64_t debit_after = 0;
  int64_t credit_after = 0;
  if (AddOverflows(pending ? debit.debits_pending : debit.debits_posted, amount, &debit_after) ||
      AddOverflows(pending ? credit.credits_pending : credit.credits_posted, amount,
                   &credit_after)) {
    return ErrorCode::kOverflow;
  }
  if ((debit.flags & kDebitsMustNotExceedCredits) &&
      static_cast<__int128>(debit.debits_pending) + debit.debits_posted + amount >
          debit.credits_posted) {
    return ErrorCode::kInsufficientCredits;
  }
  if ((credit.flags & kCreditsMustNotExceedDebits) &&
      static_cast<__int128>(credit.credits_pending) + credit.credits_posted + amount >
          credit.debits_posted) {
    return ErrorCode::kCreditsExceedDebits;
  }
  if (pending && spec.timeout_s != 0 &&
      timestamp_us > std::numeric_limits<int64_t>::max() -
                         static_cast<int64_t>(spec.timeout_s) * kMicrosPerSecond) {
    return ErrorCode::kTimestampOverflow;
  }

  SaveAccount(debit_index);
  SaveAccount(credit_index);
  (pending ? debit.debits_pending : debit.debits_posted) = debit_after;
  (pending ? credit.credits_pending : credit.credits_posted) = credit_after;
  const auto transfer_index = static_cast<uint32_t>(transfers_->size());
  transfers_->push_back(
      TransferRecord{.id = spec.id,
                     .user_data = spec.user_data,
                     .amount = amount,
                     .timestamp_us = timestamp_us,
                     .debit_index = debit_index,
                     .credit_index = credit_index,
                     .pending_index = kNoIndex,
                     .timeout_s = spec.timeout_s,
                     .code = spec.code,
                     .flags = spec.flags,
                     .state = pending ? PendingState::kOpen : PendingState::kNone});
  if (pending && spec.timeout_s != 0) {
    expiries_.push(Expiry{ExpiresAt(timestamp_us, spec.timeout_s), transfer_index});
  }
  last_timestamp_us_ = timestamp_us;
  return ErrorCode::kOk;
}

ErrorCode Ledger::ApplyResolve(const TransferSpec& spec, int64_t timestamp_us) {
  const bool post = (spec.flags & kPostPending) != 0;
  const auto hold_found = transfer_index_.find(spec.pending_id);
  // The slot just reserved for this transfer's own id is not a hold (pending_id == id).
  if (hold_found == transfer_index_.end() || *hold_found >= transfers_->size()) {
    return ErrorCode::kPendingNotFound;
  }
  const uint32_t hold_index = *hold_found;
  TransferRecord& hold = (*transfers_)[hold_index];
  if (!(hold.flags & kPending)) return ErrorCode::kNotPending;
  AccountRecord& debit = accounts_[hold.debit_index];
  AccountRecord& credit = accounts_[hold.credit_index];
  if ((spec.debit_account_id != kIdNone && spec.debit_account_id != debit.id) ||
      (spec.credit_account_id != kIdNone && spec.credit_account_id != credit.id)) {
    return ErrorCode::kPendingAccountMismatch;
  }
  switch (hold.state) {
    case PendingState::kPosted:
      return ErrorCode::kPendingAlreadyPosted;
    case PendingState::kVoided:
      return ErrorCode::kPendingAlreadyVoided;
    case PendingState::kExpired:
      return ErrorCode::kPendingExpired;
    case PendingState::kOpen:
      break;
    case PendingState::kNone:
      return ErrorCode::kNotPending;
  }
  if (hold.timeout_s != 0 && timestamp_us >= ExpiresAt(hold.timestamp_us, hold.timeout_s)) {
    return ErrorCode::kPendingExpired;
  }
  if ((debit.flags | credit.flags) & kClosed) return ErrorCode::kAccountClosed;

  int64_t amount = hold.amount;
  if (post) {
    if (spec.amount != Credits::Max()) {
      if (spec.amount.is_negative()) return ErrorCode::kNegativeAmount;
      if (spec.amount.micro() > hold.amount) return ErrorCode::kPostExceedsPending;
      amount = spec.amount.micro();
    }
  } else if (!(spec.amount.is_zero() || spec.amount == Credits::Max() ||
               spec.amount.micro() == hold.amount)) {
    return ErrorCode::kInvalidArgument;
  }
  int64_t debit_posted_after = debit.debits_posted;
  int64_t credit_posted_after = credit.credits_posted;
  if (post && (AddOverflows(debit.debits_posted, amount, &debit_posted_after) ||
               AddOverflows(credit.credits_posted, amount, &credit_posted_after))) {
    return ErrorCode::kOverflow;
  }

  SaveAccount(hold.debit_index);
  SaveAccount(hold.credit_index);
  SavePendingState(hold_index);
  debit.debits_pending -= hold.amount;
  credit.credits_pending -= hold.amount;
  debit.debits_posted = debit_posted_after;
  credit.credits_posted = credit_posted_after;
  hold.state = post ? PendingState::kPosted : PendingState::kVoided;
  const TransferRecord record{.id = spec.id,
                              .user_data = spec.user_data,
                              .amount = amount,
                              .timestamp_us = timestamp_us,
                              .debit_index = hold.debit_index,
                              .credit_index = hold.credit_index,
                              .pending_index = hold_index,
                              .timeout_s = 0,
                              .code = spec.code,
                              .flags = spec.flags,
                              .state = PendingState::kNone};
  transfers_->push_back(record);
  last_timestamp_us_ = timestamp_us;
  return ErrorCode::kOk;
}

void Ledger::ReleaseHold(TransferRecord& hold) {
  accounts_[hold.debit_index].debits_pending -= hold.amount;
  accounts_[hold.credit_index].credits_pending -= hold.amount;
}

size_t Ledger::ExpirePending(int64_t now_us) {
  size_t expired = 0;
  while (!expiries_.empty() && expiries_.top().expires_at_us <= now_us) {
    const Expiry expiry = expiries_.top();
    expiries_.pop();
    if (expiry.transfer_index >= transfers_->size()) continue;  // rolled back
    TransferRecord& hold = (*transfers_)[expiry.transfer_index];
    if (hold.state != PendingState::kOpen || hold.timeout_s == 0 ||
        ExpiresAt(hold.timestamp_us, hold.timeout_s) != expiry.expires_at_us) {
      continue;  // resolved, or a stale entry of a rolled-back chain
    }
    ReleaseHold(hold);
    hold.state = PendingState::kExpired;
    ++expired;
  }
  return expired;
}

// ---------------------------------------------------------------------------------------
// Queries.

Account Ledger::ToAccount(const AccountRecord& record) const {
  return Account{.id = record.id,
                 .kind = record.kind,
                 .flags = record.flags,
                 .user_data = record.user_data,
                 .timestamp_us = record.timestamp_us,
                 .debits_pending = Credits::FromMicro(record.debits_pending),
                 .debits_posted = Credits::FromMicro(record.debits_posted),
                 .credits_pending = Credits::FromMicro(record.credits_pending),
                 .credits_posted = Credits::FromMicro(record.credits_posted)};
}

Transfer Ledger::ToTransfer(const TransferRecord& record) const {
  return Transfer{.id = record.id,
                  .debit_account_id = accounts_[record.debit_index].id,
                  .credit_account_id = accounts_[record.credit_index].id,
                  .amount = Credits::FromMicro(record.amount),
                  .pending_id = record.pending_index == kNoIndex
                                    ? kIdNone
                                    : (*transfers_)[record.pending_index].id,
                  .timeout_s = record.timeout_s,
                  .code = record.code,
                  .flags = record.flags,
                  .user_data = record.user_data,
                  .timestamp_us = record.timestamp_us,
                  .state = record.state};
}

std::optional<Account> Ledger::FindAccount(Id128 id) const {
  auto found = account_index_.find(id);
  if (found == account_index_.end()) return std::nullopt;
  return ToAccount(accounts_[found->second]);
}

std::optional<Transfer> Ledger::FindTransfer(Id128 id) const {
  auto found = transfer_index_.find(id);
  if (found == transfer_index_.end()) return std::nullopt;
  return ToTransfer((*transfers_)[*found]);
}

void Ledger::ForEachAccount(const std::function<void(const Account&)>& visit) const {
  for (const AccountRecord& record : accounts_) visit(ToAccount(record));
}

void Ledger::ForEachTransfer(const std::function<void(const Transfer&)>& visit) const {
  for (size_t transfer_idx = 0; transfer_idx < transfers_->size(); ++transfer_idx) {
    visit(ToTransfer((*transfers_)[transfer_idx]));
  }
}

std::vector<Transfer> Ledger::History(Id128 account_id, size_t limit) const {
  std::vector<Transfer> history;
  auto found = account_index_.find(account_id);
  if (found == account_index_.end()) return history;
  const uint32_t account_index = found->second;
  for (size_t transfer_idx = 0; transfer_idx < transfers_->size() && history.size() < limit;
       ++transfer_idx) {
    const TransferRecord& record = (*transfers_)[transfer_idx];
    if (record.debit_index == account_index || record.credit_index == account_index) {
      history.push_back(ToTransfer(record));
    }
  }
  return history;
}

// ---------------------------------------------------------------------------------------
// Invariants.

Status Ledger::Verify() const {
  auto violated = [](std::string what) {
    return Status(MakeError(ErrorCode::kInvariantViolated, std::move(what)));
  };
  struct Totals {
    __int128 debits_pending = 0, debits_posted = 0, credits_pending = 0, credits_posted = 0;
  };
  std::vector<Totals> recomputed(accounts_.size());
  std::vector<uint8_t> resolutions(transfers_->size(), 0);
  int64_t previous_timestamp_us = std::numeric_limits<int64_t>::min();
  for (size_t transfer_idx = 0; transfer_idx < transfers_->size(); ++transfer_idx) {
    const TransferRecord& record = (*transfers_)[transfer_idx];
    // Named only when something is wrong: Verify walks every transfer.
    auto where = [&record] { return "transfer " + FormatId128(record.id); };
    if (record.debit_index >= accounts_.size() || record.credit_index >= accounts_.size() ||
        record.debit_index == record.credit_index) {
      return violated(where() + " has invalid accounts");
    }
    if (record.amount < 0) return violated(where() + " has a negative amount");
    if (record.timestamp_us <= previous_timestamp_us) {
      return violated(where() + " is out of timestamp order");
    }
    previous_timestamp_us = record.timestamp_us;
    Totals& debit = recomputed[record.debit_index];
    Totals& credit = recomputed[record.credit_index];
    if (record.flags & kPending) {
      if (record.state == PendingState::kOpen) {
        debit.debits_pending += record.amount;
        credit.credits_pending += record.amount;
      }
    } else if (record.flags & (kPostPending | kVoidPending)) {
      if (record.pending_index >= transfer_idx) return violated(where() + " resolves a later hold");
      const TransferRecord& hold = (*transfers_)[record.pending_index];
      const PendingState expected =
          (record.flags & kPostPending) ? PendingState::kPosted : PendingState::kVoided;
      if (!(hold.flags & kPending) || hold.state != expected ||
          ++resolutions[record.pending_index] != 1) {
        return violated(where() + " resolves a hold that is not resolved by it alone");
      }
      if (record.amount > hold.amount) return violated(where() + " posts more than its hold");
      if (record.flags & kPostPending) {
        debit.debits_posted += record.amount;
        credit.credits_posted += record.amount;
      }
    } else {
      debit.debits_posted += record.amount;
      credit.credits_posted += record.amount;
    }
  }
  for (size_t transfer_idx = 0; transfer_idx < transfers_->size(); ++transfer_idx) {
    const TransferRecord& record = (*transfers_)[transfer_idx];
    const bool resolved =
        record.state == PendingState::kPosted || record.state == PendingState::kVoided;
    if ((record.flags & kPending) && resolved != (resolutions[transfer_idx] == 1)) {
      return violated("hold " + FormatId128(record.id) + " is " +
                      std::string(ToString(record.state)) + " without a matching resolution");
    }
  }
  __int128 sum_posted = 0;
  __int128 sum_pending = 0;
  for (size_t account_idx = 0; account_idx < accounts_.size(); ++account_idx) {
    const AccountRecord& account = accounts_[account_idx];
    const Totals& totals = recomputed[account_idx];
    auto where = [&account] { return "account " + FormatId128(account.id); };
    if (totals.debits_pending != account.debits_pending ||
        totals.debits_posted != account.debits_posted ||
        totals.credits_pending != account.credits_pending ||
        totals.credits_posted != account.credits_posted) {
      return violated(where() + " balances differ from its transfers");
    }
    sum_posted += static_cast<__int128>(account.credits_posted) - account.debits_posted;
    sum_pending += static_cast<__int128>(account.credits_pending) - account.debits_pending;
    if ((account.flags & kDebitsMustNotExceedCredits) &&
        static_cast<__int128>(account.debits_pending) + account.debits_posted >
            account.credits_posted) {
      return violated(where() + " is below zero counting its holds");
    }
    if ((account.flags & kCreditsMustNotExceedDebits) &&
        static_cast<__int128>(account.credits_pending) + account.credits_posted >
            account.debits_posted) {
      return violated(where() + " received more than it paid");
    }
  }
  if (sum_posted != 0) return violated("posted balances do not sum to zero");
  if (sum_pending != 0) return violated("pending balances do not sum to zero");
  return OkStatus();
}

// ---------------------------------------------------------------------------------------
// Snapshot encoding.

void Ledger::Encode(std::string* out) const {
  constexpr size_t kAccountBytes = 16 + 6 * 8 + 2 + 1;
  constexpr size_t kTransferBytes = 16 + 3 * 8 + 4 * 4 + 2 * 2 + 1;
  out->reserve(out->size() + 32 + accounts_.size() * kAccountBytes +
               transfers_->size() * kTransferBytes);
  ByteWriter writer(out);
  writer.Put<uint32_t>(kSnapshotMagic);
  writer.Put<int64_t>(last_timestamp_us_);
  writer.Put<uint32_t>(static_cast<uint32_t>(accounts_.size()));
  for (const AccountRecord& account : accounts_) {
    writer.Put<Id128>(account.id);
    writer.Put<int64_t>(account.debits_pending);
    writer.Put<int64_t>(account.debits_posted);
    writer.Put<int64_t>(account.credits_pending);
    writer.Put<int64_t>(account.credits_posted);
    writer.Put<int64_t>(account.timestamp_us);
    writer.Put<uint64_t>(account.user_data);
    writer.Put<uint16_t>(account.flags);
    writer.Put<uint8_t>(static_cast<uint8_t>(account.kind));
  }
  writer.Put<uint32_t>(static_cast<uint32_t>(transfers_->size()));
  for (size_t transfer_idx = 0; transfer_idx < transfers_->size(); ++transfer_idx) {
    const TransferRecord& record = (*transfers_)[transfer_idx];
    writer.Put<Id128>(record.id);
    writer.Put<uint64_t>(record.user_data);
    writer.Put<int64_t>(record.amount);
    writer.Put<int64_t>(record.timestamp_us);
    writer.Put<uint32_t>(record.debit_index);
    writer.Put<uint32_t>(record.credit_index);
    writer.Put<uint32_t>(record.pending_index);
    writer.Put<uint32_t>(record.timeout_s);
    writer.Put<uint16_t>(record.code);
    writer.Put<uint16_t>(record.flags);
    writer.Put<uint8_t>(static_cast<uint8_t>(record.state));
  }
}

Result<Ledger> Ledger::Decode(std::string_view bytes) {
  auto corrupt = [](std::string what) {
    return MakeError(ErrorCode::kCorruption, "ledger snapshot: " + std::move(what));
  };
  ByteReader reader(bytes);
  if (reader.Get<uint32_t>() != kSnapshotMagic) return corrupt("bad magic");
  Ledger ledger;
  ledger.last_timestamp_us_ = reader.Get<int64_t>();
  if (ledger.last_timestamp_us_ < 0 ||
      ledger.last_timestamp_us_ > kTimeMaxUs + (int64_t{1} << 40)) {
    return corrupt("bad timestamp");
  }
  constexpr size_t kAccountBytes = 16 + 6 * 8 + 2 + 1;
  const uint32_t account_count = reader.GetCount(kAccountBytes);
  ledger.accounts_.reserve(account_count);
  for (uint32_t account_idx = 0; account_idx < account_count; ++account_idx) {
    AccountRecord account{};
    account.id = reader.Get<Id128>();
    account.debits_pending = reader.Get<int64_t>();
    account.debits_posted = reader.Get<int64_t>();
    account.credits_pending = reader.Get<int64_t>();
    account.credits_posted = reader.Get<int64_t>();
    account.timestamp_us = reader.Get<int64_t>();
    account.user_data = reader.Get<uint64_t>();
    account.flags = reader.Get<uint16_t>();
    if ((account.flags & ~kAccountFlagsAll) != 0) return corrupt("bad account flags");
    const auto kind = reader.Get<uint8_t>();
    if (kind == 0 || kind >= kAccountKindNames.size()) return corrupt("bad account kind");
    account.kind = static_cast<AccountKind>(kind);
    if (!IsValidId(account.id)) return corrupt("bad account id");
    ledger.accounts_.push_back(account);
  }
  constexpr size_t kTransferBytes = 16 + 3 * 8 + 4 * 4 + 2 * 2 + 1;
  const uint32_t transfer_count = reader.GetCount(kTransferBytes);
  ledger.transfers_->Reserve(transfer_count);
  for (uint32_t transfer_idx = 0; transfer_idx < transfer_count; ++transfer_idx) {
    TransferRecord record{};
    record.id = reader.Get<Id128>();
    record.user_data = reader.Get<uint64_t>();
    record.amount = reader.Get<int64_t>();
    record.timestamp_us = reader.Get<int64_t>();
    record.debit_index = reader.Get<uint32_t>();
    record.credit_index = reader.Get<uint32_t>();
    record.pending_index = reader.Get<uint32_t>();
    record.timeout_s = reader.Get<uint32_t>();
    record.code = reader.Get<uint16_t>();
    record.flags = reader.Get<uint16_t>();
    const auto state = reader.Get<uint8_t>();
    if (state > static_cast<uint8_t>(PendingState::kExpired)) return corrupt("bad hold state");
    record.state = static_cast<PendingState>(state);
    if (record.debit_index >= account_count || record.credit_index >= account_count ||
        (record.pending_index != kNoIndex && record.pending_index >= transfer_idx)) {
      return corrupt("transfer refers past the end");
    }
    // The shape every applied transfer has; Verify checks the arithmetic afterwards.
    const bool resolves = (record.flags & (kPostPending | kVoidPending)) != 0;
    if ((record.flags & ~kTransferFlagsAll) != 0 ||
        std::popcount(static_cast<unsigned>(record.flags & kPhaseFlags)) > 1 ||
        resolves != (record.pending_index != kNoIndex) ||
        ((record.flags & kPending) != 0) != (record.state != PendingState::kNone) ||
        (record.timeout_s != 0 && !(record.flags & kPending)) || record.timestamp_us < 0 ||
        record.timestamp_us > kTimeMaxUs + static_cast<int64_t>(transfer_count) ||
        !IsValidId(record.id)) {
      return corrupt("malformed transfer " + FormatId128(record.id));
    }
    ledger.transfers_->push_back(record);
  }
  if (!reader.ok() || !reader.at_end()) return corrupt("truncated or trailing bytes");
  ledger.RebuildIndexes();
  if (ledger.account_index_.size() != account_count ||
      ledger.transfer_index_.size() != transfer_count) {
    return corrupt("duplicate ids");
  }
  return ledger;
}

void Ledger::RebuildIndexes() {
  account_index_.clear();
  account_index_.reserve(accounts_.size());
  for (size_t account_idx = 0; account_idx < accounts_.size(); ++account_idx) {
    account_index_.emplace(accounts_[account_idx].id, static_cast<uint32_t>(account_idx));
  }
  transfer_index_.clear();
  transfer_index_.reserve(transfers_->size());
  for (size_t transfer_idx = 0; transfer_idx < transfers_->size(); ++transfer_idx) {
    const TransferRecord& record = (*transfers_)[transfer_idx];
    transfer_index_.insert(static_cast<uint32_t>(transfer_idx));
    if ((record.flags & kPending) && record.state == PendingState::kOpen && record.timeout_s != 0) {
      expiries_.push(Expiry{ExpiresAt(record.timestamp_us, record.timeout_s),
                            static_cast<uint32_t>(transfer_idx)});
    }
  }
}

}  // namespace atrium::ledger
