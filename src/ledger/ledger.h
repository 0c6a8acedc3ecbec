// Ledger: Atrium's double-entry credit ledger, after TigerBeetle's model. A pure,
// deterministic state machine: it reads no clock and does no I/O; every operation is
// given its logical time (`now_us`) by the caller, and the same operations in the same
// order always give the same state. The journal makes it durable.
//
// Accounts hold four balances (pending and posted, debits and credits). Every transfer
// debits one account and credits another by the same amount, so the sum of all
// (credits - debits) is always zero: credits are never created or lost. Money enters a
// program from a sponsor account, which alone may run a debit balance.
//
// Transfers carry client-chosen 128-bit ids. Applying a transfer whose id exists
// changes nothing and answers kExists (same fields) or kExistsWithDifferentFields.
// Two-phase transfers: a pending transfer (a hold) reserves the amount; a later post
// moves all or part of it and releases the rest; a void releases it; a hold with a
// timeout expires through ExpirePending. A chain of events flagged kLinked applies
// all-or-nothing. Nothing is ever edited or deleted: corrections are new transfers.
//
//   Ledger ledger;
//   ledger.CreateAccounts({{.id = 1, .kind = AccountKind::kSponsor},
//                          {.id = 2, .kind = AccountKind::kGrant,
//                           .flags = kDebitsMustNotExceedCredits}}, now_us);
//   auto failures = ledger.CreateTransfers({{.id = 10, .debit_account_id = 1,
//                                            .credit_account_id = 2,
//                                            .amount = Credits::FromWhole(500)}}, now_us);
//   // failures is empty: every event applied.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "base/credits.h"
#include "base/error.h"
#include "base/id.h"
#include "base/segmented_vector.h"

namespace atrium::ledger {

// What an account stands for. The strings are stable (CLI, API, journal).
enum class AccountKind : uint8_t {
  kSponsor = 1,         // where a program's credits come from; may run a debit balance
  kProgramPool = 2,     // a program's unallocated budget
  kTrackPool = 3,       // a track's budget inside a program
  kGrant = 4,           // an award, charged by jobs
  kClusterRevenue = 5,  // what the cluster earned from jobs
  kCourse = 6,          // an education grant, split among students
  kOperating = 7,       // adjustments and corrections by the operator
};
std::string_view ToString(AccountKind kind);
Result<AccountKind> ParseAccountKind(std::string_view text);

// Account flags (a bit set).
enum AccountFlag : uint16_t {
  kDebitsMustNotExceedCredits = 1 << 0,  // balance may not go below zero, holds included
  kCreditsMustNotExceedDebits = 1 << 1,  // the mirror image, for accounts that only pay out
  kFrozen = 1 << 2,                      // no new transfers; open holds may still resolve
  kClosed = 1 << 3,                      // final: no transfers at all
};
inline constexpr uint16_t kAccountFlagsAll =
    kDebitsMustNotExceedCredits | kCreditsMustNotExceedDebits | kFrozen | kClosed;

// Transfer flags (a bit set).
enum TransferFlag : uint16_t {
  kLinked = 1 << 0,           // this event succeeds only if the next one does
  kPending = 1 << 1,          // a hold: reserve the amount, resolve later
  kPostPending = 1 << 2,      // post (a part of) the hold named by pending_id
  kVoidPending = 1 << 3,      // release the hold named by pending_id
  kBalancingDebit = 1 << 4,   // move at most what the debit account has available
  kBalancingCredit = 1 << 5,  // move at most what the credit account may still receive
};
inline constexpr uint16_t kTransferFlagsAll =
    kLinked | kPending | kPostPending | kVoidPending | kBalancingDebit | kBalancingCredit;

// The state of a pending transfer. Other transfers are always kNone.
enum class PendingState : uint8_t { kNone = 0, kOpen = 1, kPosted = 2, kVoided = 3, kExpired = 4 };
std::string_view ToString(PendingState state);

// Input: one account to create.
struct AccountSpec {
  Id128 id = kIdNone;
  AccountKind kind = AccountKind::kGrant;
  uint16_t flags = 0;
  uint64_t user_data = 0;  // the client's reference (a grant number, a program id)
  friend bool operator==(const AccountSpec&, const AccountSpec&) = default;
};

// Input: a change of an account's frozen or closed flag.
struct AccountUpdate {
  Id128 id = kIdNone;
  uint16_t set_flags = 0;    // kFrozen and/or kClosed
  uint16_t clear_flags = 0;  // kFrozen only: closing is final
  friend bool operator==(const AccountUpdate&, const AccountUpdate&) = default;
};

// Input: one transfer. For post and void, debit and credit may be left zero (they are
// taken from the pending transfer); the amount of a post may be Credits::Max() for
// "the whole pending amount".
struct TransferSpec {
  Id128 id = kIdNone;
  Id128 debit_account_id = kIdNone;
  Id128 credit_account_id = kIdNone;
  Credits amount;
  Id128 pending_id = kIdNone;
  uint32_t timeout_s = 0;  // pending only: the hold expires this long after it was placed
  uint16_t code = 0;       // the client's reason code (job charge, award, sweep, ...)
  uint16_t flags = 0;
  uint64_t user_data = 0;
  friend bool operator==(const TransferSpec&, const TransferSpec&) = default;
};

// Output: an account as it stands.
struct Account {
  Id128 id = kIdNone;
  AccountKind kind = AccountKind::kGrant;
  uint16_t flags = 0;
  uint64_t user_data = 0;
  int64_t timestamp_us = 0;
  Credits debits_pending;
  Credits debits_posted;
  Credits credits_pending;
  Credits credits_posted;

  // credits_posted - debits_posted (what is there; always within int64), and that less
  // debits_pending (what may still be spent), clamped to int64's range.
  Credits balance() const;
  Credits available() const;
};

// Output: a stored transfer. `amount` is what actually moved (a balancing transfer or a
// full post records the resolved amount).
struct Transfer {
  Id128 id = kIdNone;
  Id128 debit_account_id = kIdNone;
  Id128 credit_account_id = kIdNone;
  Credits amount;
  Id128 pending_id = kIdNone;
  uint32_t timeout_s = 0;
  uint16_t code = 0;
  uint16_t flags = 0;
  uint64_t user_data = 0;
  int64_t timestamp_us = 0;
  PendingState state = PendingState::kNone;
};

// The refusal of one event of a batch: its index in the batch and the code.
struct EventFailure {
  uint32_t index = 0;
  ErrorCode code = ErrorCode::kOk;
  friend bool operator==(const EventFailure&, const EventFailure&) = default;
};

class Ledger {
 public:
  // Bounds every batch; a larger batch is refused whole (kLimitExceeded on every event).
  static constexpr size_t kBatchEventsMax = 1 << 20;
  // Logical times outside [0, kTimeMaxUs] (year 9999) are refused whole
  // (kTimestampOverflow on every event): far from int64's end, so timestamps, which
  // advance by one per event, and hold deadlines (at most 2^32 s later) never overflow.
  static constexpr int64_t kTimeMaxUs = 253'402'300'799'000'000;

  Ledger() = default;
  Ledger(Ledger&&) = default;
  Ledger& operator=(Ledger&&) = default;
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Each returns the failed events only: an empty vector means every event applied.
  // An event whose id already exists is reported kExists and changes nothing.
  std::vector<EventFailure> CreateAccounts(std::span<const AccountSpec> accounts, int64_t now_us);
  std::vector<EventFailure> UpdateAccounts(std::span<const AccountUpdate> updates, int64_t now_us);
  std::vector<EventFailure> CreateTransfers(std::span<const TransferSpec> transfers,
                                            int64_t now_us);
  // Releases every open hold whose timeout has passed at now_us; returns how many.
  size_t ExpirePending(int64_t now_us);

  std::optional<Account> FindAccount(Id128 id) const;
  std::optional<Transfer> FindTransfer(Id128 id) const;
  size_t account_count() const { return accounts_.size(); }
  size_t transfer_count() const { return transfers_->size(); }
  int64_t last_timestamp_us() const { return last_timestamp_us_; }
  // Every account / transfer in creation order.
  void ForEachAccount(const std::function<void(const Account&)>& visit) const;
  void ForEachTransfer(const std::function<void(const Transfer&)>& visit) const;
  // The transfers that debit or credit `account_id`, oldest first, at most `limit`.
  std::vector<Transfer> History(Id128 account_id, size_t limit) const;

  // Recomputes every balance from the transfers and checks the invariants: the sum of
  // all balances is zero, posted and pending; no flagged account is past its limit; each
  // hold is resolved at most once and its state agrees with its post or void.
  // kInvariantViolated names the first breach.
  Status Verify() const;

  // The whole state, for snapshots: Encode appends to `out`, Decode rebuilds a ledger
  // (kCorruption for a malformed buffer). The encoding is deterministic.
  void Encode(std::string* out) const;
  static Result<Ledger> Decode(std::string_view bytes);

 private:
  static constexpr uint32_t kNoIndex = UINT32_MAX;

  struct AccountRecord {
    Id128 id;
    int64_t debits_pending;
    int64_t debits_posted;
    int64_t credits_pending;
    int64_t credits_posted;
    int64_t timestamp_us;
    uint64_t user_data;
    uint16_t flags;
    AccountKind kind;
  };
  struct TransferRecord {
    Id128 id;
    uint64_t user_data;
    int64_t amount;
    int64_t timestamp_us;
    uint32_t debit_index;
    uint32_t credit_index;
    uint32_t pending_index;  // for a post or void: the hold it resolves
    uint32_t timeout_s;
    uint16_t code;
    uint16_t flags;
    PendingState state;
  };
  struct Expiry {
    int64_t expires_at_us;
    uint32_t transfer_index;
    bool operator>(const Expiry& other) const {
      return expires_at_us != other.expires_at_us ? expires_at_us > other.expires_at_us
                                                  : transfer_index > other.transfer_index;
    }
  };
  // What a failed linked chain must restore.
  struct Undo {
    std::vector<std::pair<uint32_t, AccountRecord>> accounts;
    std::vector<std::pair<uint32_t, PendingState>> pending_states;
    size_t transfer_count = 0;
    size_t account_count = 0;
    int64_t last_timestamp_us = 0;
    bool active = false;
  };

  int64_t NextTimestamp(int64_t now_us) const;
  ErrorCode ApplyAccount(const AccountSpec& spec, int64_t timestamp_us);
  ErrorCode ApplyUpdate(const AccountUpdate& update, int64_t timestamp_us);
  ErrorCode ApplyTransfer(const TransferSpec& spec, int64_t timestamp_us);
  ErrorCode ApplySinglePhase(const TransferSpec& spec, int64_t timestamp_us);
  ErrorCode ApplyResolve(const TransferSpec& spec, int64_t timestamp_us);
  ErrorCode CompareExisting(const TransferSpec& spec, const TransferRecord& existing) const;
  void SaveAccount(uint32_t index);
  void SavePendingState(uint32_t index);
  void Rollback();
  void ReleaseHold(TransferRecord& hold);
  Account ToAccount(const AccountRecord& record) const;
  Transfer ToTransfer(const TransferRecord& record) const;
  void RebuildIndexes();

  // Runs `apply` for each event of a batch with the linked-chain rules.
  template <typename Spec, typename Apply>
  std::vector<EventFailure> ApplyBatch(std::span<const Spec> events, int64_t now_us, Apply apply);

  // The transfer index holds only each transfer's position (4 bytes a slot, not the
  // 32 of an (Id128, index) pair): its hash and equality read the id from the record,
  // and lookups pass the Id128 itself. A position at or past the end is the slot a
  // transfer being applied has reserved (ApplyTransfer): it equals no id.
  using TransferStore = SegmentedVector<TransferRecord>;
  struct TransferIndexHash {
    using is_transparent = void;
    const TransferStore* store;
    size_t operator()(Id128 id) const { return Id128Hash{}(id); }
    size_t operator()(uint32_t index) const { return Id128Hash{}((*store)[index].id); }
  };
  struct TransferIndexEq {
    using is_transparent = void;
    const TransferStore* store;
    bool operator()(uint32_t a, uint32_t b) const {
      return a == b || (a < store->size() && (*this)(b, (*store)[a].id));
    }
    bool operator()(uint32_t index, Id128 id) const {
      return index < store->size() && (*store)[index].id == id;
    }
    bool operator()(Id128 id, uint32_t index) const { return (*this)(index, id); }
  };

  std::vector<AccountRecord> accounts_;
  // On the heap, so the index's functors keep pointing at it when the ledger moves.
  std::unique_ptr<TransferStore> transfers_ = std::make_unique<TransferStore>();
  absl::flat_hash_map<Id128, uint32_t, Id128Hash> account_index_;
  absl::flat_hash_set<uint32_t, TransferIndexHash, TransferIndexEq> transfer_index_{
      0, TransferIndexHash{transfers_.get()}, TransferIndexEq{transfers_.get()}};
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<Expiry>> expiries_;
  int64_t last_timestamp_us_ = 0;
  Undo undo_;
};

}  // namespace atrium::ledger
