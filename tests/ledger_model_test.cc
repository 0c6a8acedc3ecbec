// A seeded randomized test of the ledger against a reference model. The model below
// implements the ledger's documented rules in the plainest way (ordered maps, 128-bit
// sums, copying the whole state to undo a linked chain); 120,000 random operations,
// valid and invalid, go to both, and after every one the results, error codes and
// balances must agree. A failure prints the seed and the operation number; set
// ATRIUM_SEED to replay it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "ledger/ledger.h"

namespace atrium::ledger {
namespace {

constexpr int64_t kMicros = 1'000'000;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

class Model {
 public:
  struct ModelAccount {
    AccountKind kind;
    uint16_t flags;
    uint64_t user_data;
    __int128 dp = 0, dpo = 0, cp = 0, cpo = 0;
  };
  struct ModelTransfer {
    TransferSpec spec;  // as requested
    Id128 debit, credit;
    int64_t amount;  // as moved
    int64_t timestamp_us;
    PendingState state;
  };

  // A logical time outside [0, year 9999] refuses the whole batch.
  template <typename Spec>
  static bool OutOfTime(const std::vector<Spec>& specs, int64_t now,
                        std::vector<EventFailure>* failures) {
    if (now >= 0 && now <= Ledger::kTimeMaxUs) return false;
    for (size_t i = 0; i < specs.size(); ++i) {
      failures->push_back({static_cast<uint32_t>(i), ErrorCode::kTimestampOverflow});
    }
    return true;
  }

  std::vector<EventFailure> CreateAccounts(const std::vector<AccountSpec>& specs, int64_t now) {
    std::vector<EventFailure> failures;
    if (OutOfTime(specs, now, &failures)) return failures;
    for (size_t i = 0; i < specs.size(); ++i) {
      const ErrorCode code = Account(specs[i], std::max(now, last_ + 1));
      if (code != ErrorCode::kOk) failures.push_back({static_cast<uint32_t>(i), code});
    }
    return failures;
  }

  std::vector<EventFailure> UpdateAccounts(const std::vector<AccountUpdate>& updates, int64_t now) {
    std::vector<EventFailure> failures;
    if (OutOfTime(updates, now, &failures)) return failures;
    for (size_t i = 0; i < updates.size(); ++i) {
      const ErrorCode code = Update(updates[i], std::max(now, last_ + 1));
      if (code != ErrorCode::kOk) failures.push_back({static_cast<uint32_t>(i), code});
    }
    return failures;
  }

  std::vector<EventFailure> CreateTransfers(const std::vector<TransferSpec>& specs, int64_t now) {
    std::vector<EventFailure> failures;
    if (OutOfTime(specs, now, &failures)) return failures;
    size_t i = 0;
    while (i < specs.size()) {
      // The chain starting at i: up to and including the first unlinked event.
      size_t end = i;
      while (end < specs.size() && (specs[end].flags & kLinked)) ++end;
      if (end == i) {
        const ErrorCode code = Transfer(specs[i], std::max(now, last_ + 1));
        if (code != ErrorCode::kOk) failures.push_back({static_cast<uint32_t>(i), code});
        ++i;
        continue;
      }
      const bool open = end == specs.size();
      if (open) end = specs.size() - 1;
      BeginChain();
      std::vector<ErrorCode> codes;
      for (size_t k = i; k <= end; ++k) {
        if (open && k == end) {
          codes.push_back(ErrorCode::kLinkedEventChainOpen);
          break;
        }
        codes.push_back(Transfer(specs[k], std::max(now, last_ + 1)));
        if (codes.back() != ErrorCode::kOk && codes.back() != ErrorCode::kExists) break;
      }
      // Outcome of the chain by the rules: all exist -> all kExists; all ok -> applied;
      // otherwise it fails at the first refused event (or the first existing one).
      size_t exist_count = 0, ok_count = 0;
      for (ErrorCode code : codes) {
        exist_count += code == ErrorCode::kExists;
        ok_count += code == ErrorCode::kOk;
      }
      const size_t chain_length = end - i + 1;
      if (exist_count == chain_length) {
        for (size_t k = i; k <= end; ++k) {
          failures.push_back({static_cast<uint32_t>(k), ErrorCode::kExists});
        }
      } else if (ok_count != chain_length) {
        RollbackChain();
        // The event that fails the chain: the first refused event, unless an existing
        // event came after a new one (then that existing event), or a new event came
        // after existing ones (then the first existing event).
        size_t failed = 0;
        ErrorCode failed_code = ErrorCode::kOk;
        bool seen_exist_first = codes[0] == ErrorCode::kExists;
        for (size_t k = 0; k < codes.size(); ++k) {
          const ErrorCode code = codes[k];
          if (code == ErrorCode::kOk) {
            if (seen_exist_first && k > 0) {
              failed = 0;
              failed_code = ErrorCode::kExists;
              break;
            }
            seen_exist_first = false;
          } else if (code != ErrorCode::kExists || !seen_exist_first) {
            failed = k;
            failed_code = code;
            break;
          }
        }
        for (size_t k = i; k <= end; ++k) {
          failures.push_back({static_cast<uint32_t>(k),
                              k - i == failed ? failed_code : ErrorCode::kLinkedEventFailed});
        }
      }
      recording_ = false;
      i = end + 1;
    }
    return failures;
  }

  size_t Expire(int64_t now) {
    size_t expired = 0;
    for (auto it = open_timed_.begin(); it != open_timed_.end();) {
      ModelTransfer& transfer = transfers_[*it];
      if (transfer.timestamp_us + int64_t{transfer.spec.timeout_s} * kMicros <= now) {
        accounts_[transfer.debit].dp -= transfer.amount;
        accounts_[transfer.credit].cp -= transfer.amount;
        transfer.state = PendingState::kExpired;
        ++expired;
        it = open_timed_.erase(it);
      } else {
        ++it;
      }
    }
    return expired;
  }

  const std::map<Id128, ModelAccount>& accounts() const { return accounts_; }
  const std::map<Id128, ModelTransfer>& transfers() const { return transfers_; }

 private:
  // Undo for a linked chain: the accounts are few, so they are copied whole; the
  // transfers the chain added and the holds it resolved are listed.
  void BeginChain() {
    recording_ = true;
    saved_accounts_ = accounts_;
    saved_last_ = last_;
    inserted_.clear();
    resolved_.clear();
  }
  void RollbackChain() {
    accounts_ = saved_accounts_;
    last_ = saved_last_;
    // Reopen the holds first: a hold both placed and resolved by the chain is then erased.
    for (Id128 id : resolved_) {
      transfers_[id].state = PendingState::kOpen;
      if (transfers_[id].spec.timeout_s != 0) open_timed_.insert(id);
    }
    for (Id128 id : inserted_) {
      transfers_.erase(id);
      open_timed_.erase(id);
    }
    recording_ = false;
  }

  ErrorCode Account(const AccountSpec& spec, int64_t ts) {
    if (!IsValidId(spec.id)) return ErrorCode::kInvalidId;
    const uint16_t known = kDebitsMustNotExceedCredits | kCreditsMustNotExceedDebits | kFrozen;
    if ((spec.flags & ~known) || ((spec.flags & kDebitsMustNotExceedCredits) &&
                                  (spec.flags & kCreditsMustNotExceedDebits))) {
      return ErrorCode::kInvalidFlags;
    }
    if (static_cast<int>(spec.kind) < 1 || static_cast<int>(spec.kind) > 7) {
      return ErrorCode::kInvalidKind;
    }
    if (auto it = accounts_.find(spec.id); it != accounts_.end()) {
      const bool same = it->second.kind == spec.kind && it->second.user_data == spec.user_data &&
                        (it->second.flags & ~(kFrozen | kClosed)) == (spec.flags & ~kFrozen);
      return same ? ErrorCode::kExists : ErrorCode::kExistsWithDifferentFields;
    }
    accounts_[spec.id] = ModelAccount{spec.kind, spec.flags, spec.user_data};
    last_ = ts;
    return ErrorCode::kOk;
  }

  ErrorCode Update(const AccountUpdate& update, int64_t ts) {
    if ((update.set_flags & ~(kFrozen | kClosed)) || (update.clear_flags & ~kFrozen) ||
        (update.set_flags & update.clear_flags) || !(update.set_flags | update.clear_flags)) {
      return ErrorCode::kInvalidFlags;
    }
    auto it = accounts_.find(update.id);
    if (it == accounts_.end()) return ErrorCode::kAccountNotFound;
    ModelAccount& account = it->second;
    if (account.flags & kClosed) return ErrorCode::kAccountClosed;
    if ((update.set_flags & kClosed) && (account.dp != 0 || account.cp != 0)) {
      return ErrorCode::kAccountHasPending;
    }
    account.flags = static_cast<uint16_t>((account.flags | update.set_flags) & ~update.clear_flags);
    last_ = ts;
    return ErrorCode::kOk;
  }

  ErrorCode Compare(const TransferSpec& spec, const ModelTransfer& existing) const {
    const TransferSpec& original = existing.spec;
    if (spec.flags != original.flags || spec.code != original.code ||
        spec.user_data != original.user_data || spec.timeout_s != original.timeout_s) {
      return ErrorCode::kExistsWithDifferentFields;
    }
    bool same = true;
    if (original.flags & (kPostPending | kVoidPending)) {
      same = spec.pending_id == original.pending_id &&
             (spec.debit_account_id == kIdNone || spec.debit_account_id == existing.debit) &&
             (spec.credit_account_id == kIdNone || spec.credit_account_id == existing.credit);
      const bool full = spec.amount == Credits::Max();
      if (original.flags & kPostPending) {
        const int64_t requested =
            full ? transfers_.at(original.pending_id).amount : spec.amount.micro();
        same = same && requested == existing.amount;
      } else {
        same = same && (full || spec.amount.is_zero() || spec.amount.micro() == existing.amount);
      }
    } else {
      same = spec.pending_id == kIdNone && spec.debit_account_id == existing.debit &&
             spec.credit_account_id == existing.credit &&
             ((original.flags & (kBalancingDebit | kBalancingCredit))
                  ? existing.amount <= spec.amount.micro()
                  : existing.amount == spec.amount.micro());
    }
    return same ? ErrorCode::kExists : ErrorCode::kExistsWithDifferentFields;
  }

  ErrorCode Transfer(const TransferSpec& spec, int64_t ts) {
    if (!IsValidId(spec.id)) return ErrorCode::kInvalidId;
    const uint16_t phase = spec.flags & (kPending | kPostPending | kVoidPending);
    if ((spec.flags & ~kTransferFlagsAll) || (phase & (phase - 1)) ||
        ((spec.flags & (kBalancingDebit | kBalancingCredit)) &&
         (spec.flags & (kPostPending | kVoidPending)))) {
      return ErrorCode::kInvalidFlags;
    }
    if (spec.timeout_s != 0 && !(spec.flags & kPending)) return ErrorCode::kTimeoutWithoutPending;
    if (auto it = transfers_.find(spec.id); it != transfers_.end())
      return Compare(spec, it->second);
    if (spec.flags & (kPostPending | kVoidPending)) return Resolve(spec, ts);

    if (spec.pending_id != kIdNone) return ErrorCode::kInvalidArgument;
    if (spec.amount.is_negative()) return ErrorCode::kNegativeAmount;
    if (spec.amount.is_zero()) return ErrorCode::kZeroAmount;
    if (spec.debit_account_id == spec.credit_account_id) return ErrorCode::kSameAccount;
    auto debit_it = accounts_.find(spec.debit_account_id);
    auto credit_it = accounts_.find(spec.credit_account_id);
    if (debit_it == accounts_.end() || credit_it == accounts_.end()) {
      return ErrorCode::kAccountNotFound;
    }
    ModelAccount& debit = debit_it->second;
    ModelAccount& credit = credit_it->second;
    if ((debit.flags | credit.flags) & kClosed) return ErrorCode::kAccountClosed;
    if ((debit.flags | credit.flags) & kFrozen) return ErrorCode::kAccountFrozen;
    __int128 amount = spec.amount.micro();
    if (spec.flags & kBalancingDebit) {
      amount = std::clamp<__int128>(debit.cpo - debit.dpo - debit.dp, 0, amount);
    }
    if (spec.flags & kBalancingCredit) {
      amount = std::clamp<__int128>(credit.dpo - credit.cpo - credit.cp, 0, amount);
    }
    const bool pending = spec.flags & kPending;
    if ((pending ? debit.dp : debit.dpo) + amount > kInt64Max ||
        (pending ? credit.cp : credit.cpo) + amount > kInt64Max) {
      return ErrorCode::kOverflow;
    }
    if ((debit.flags & kDebitsMustNotExceedCredits) && debit.dp + debit.dpo + amount > debit.cpo) {
      return ErrorCode::kInsufficientCredits;
    }
    if ((credit.flags & kCreditsMustNotExceedDebits) &&
        credit.cp + credit.cpo + amount > credit.dpo) {
      return ErrorCode::kCreditsExceedDebits;
    }
    (pending ? debit.dp : debit.dpo) += amount;
    (pending ? credit.cp : credit.cpo) += amount;
    if (recording_) inserted_.push_back(spec.id);
    if (pending && spec.timeout_s != 0) open_timed_.insert(spec.id);
    transfers_[spec.id] = ModelTransfer{spec,
                                        spec.debit_account_id,
                                        spec.credit_account_id,
                                        static_cast<int64_t>(amount),
                                        ts,
                                        pending ? PendingState::kOpen : PendingState::kNone};
    last_ = ts;
    return ErrorCode::kOk;
  }

  ErrorCode Resolve(const TransferSpec& spec, int64_t ts) {
    auto hold_it = transfers_.find(spec.pending_id);
    if (hold_it == transfers_.end()) return ErrorCode::kPendingNotFound;
    ModelTransfer& hold = hold_it->second;
    if (!(hold.spec.flags & kPending)) return ErrorCode::kNotPending;
    if ((spec.debit_account_id != kIdNone && spec.debit_account_id != hold.debit) ||
        (spec.credit_account_id != kIdNone && spec.credit_account_id != hold.credit)) {
      return ErrorCode::kPendingAccountMismatch;
    }
    if (hold.state == PendingState::kPosted) return ErrorCode::kPendingAlreadyPosted;
    if (hold.state == PendingState::kVoided) return ErrorCode::kPendingAlreadyVoided;
    if (hold.state == PendingState::kExpired) return ErrorCode::kPendingExpired;
    if (hold.spec.timeout_s != 0 &&
        ts >= hold.timestamp_us + int64_t{hold.spec.timeout_s} * kMicros) {
      return ErrorCode::kPendingExpired;
    }
    ModelAccount& debit = accounts_[hold.debit];
    ModelAccount& credit = accounts_[hold.credit];
    if ((debit.flags | credit.flags) & kClosed) return ErrorCode::kAccountClosed;
    const bool post = spec.flags & kPostPending;
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
    if (post && (debit.dpo + amount > kInt64Max || credit.cpo + amount > kInt64Max)) {
      return ErrorCode::kOverflow;
    }
    debit.dp -= hold.amount;
    credit.cp -= hold.amount;
    if (post) {
      debit.dpo += amount;
      credit.cpo += amount;
    }
    hold.state = post ? PendingState::kPosted : PendingState::kVoided;
    open_timed_.erase(spec.pending_id);
    if (recording_) {
      resolved_.push_back(spec.pending_id);
      inserted_.push_back(spec.id);
    }
    transfers_[spec.id] =
        ModelTransfer{spec, hold.debit, hold.credit, amount, ts, PendingState::kNone};
    last_ = ts;
    return ErrorCode::kOk;
  }

  std::map<Id128, ModelAccount> accounts_;
  std::map<Id128, ModelTransfer> transfers_;
  std::set<Id128> open_timed_;  // open holds with a timeout
  int64_t last_ = 0;
  bool recording_ = false;
  std::map<Id128, ModelAccount> saved_accounts_;
  int64_t saved_last_ = 0;
  std::vector<Id128> inserted_;
  std::vector<Id128> resolved_;
};

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  uint64_t Below(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  bool Chance(int percent) { return Below(100) < static_cast<uint64_t>(percent); }

  // Ids from small pools so that collisions (exists, not found) are frequent.
  Id128 AccountId() { return Chance(2) ? (Chance(50) ? kIdNone : kIdMax) : 1 + Below(24); }
  Id128 TransferId() {
    if (Chance(1)) return Chance(50) ? kIdNone : kIdMax;
    return Chance(30) && next_transfer_ > 1000 ? 1000 + Below(next_transfer_ - 1000)
                                               : next_transfer_++;
  }
  Id128 KnownTransferId() {
    return next_transfer_ > 1000 ? 1000 + Below(next_transfer_ - 1000) : 1;
  }

  Credits Amount() {
    const uint64_t roll = Below(100);
    if (roll < 3) return Credits::FromMicro(-static_cast<int64_t>(1 + Below(1000)));
    if (roll < 6) return Credits::Zero();
    if (roll < 8) return Credits::FromMicro(kInt64Max / 2 + static_cast<int64_t>(Below(1000)));
    if (roll < 10) return Credits::Max();
    return Credits::FromMicro(static_cast<int64_t>(1 + Below(200 * kMicros)));
  }

  uint16_t TransferFlags() {
    const uint64_t roll = Below(100);
    uint16_t flags = 0;
    if (roll < 30)
      flags = kPending;
    else if (roll < 45)
      flags = kPostPending;
    else if (roll < 55)
      flags = kVoidPending;
    if (Chance(8)) flags |= Chance(70) ? kBalancingDebit : kBalancingCredit;
    if (Chance(2)) flags |= static_cast<uint16_t>(1u << (6 + Below(4)));  // unknown bit
    if (Chance(2)) flags |= kPending;  // sometimes two phases: invalid
    return flags;
  }

  TransferSpec Transfer() {
    TransferSpec spec;
    spec.id = TransferId();
    spec.flags = TransferFlags();
    if (spec.flags & (kPostPending | kVoidPending)) {
      spec.pending_id = Chance(90) ? KnownTransferId() : 999'999;
      if (Chance(10)) spec.debit_account_id = AccountId();
      spec.amount = Chance(40) ? Credits::Max() : Amount();
      if ((spec.flags & kVoidPending) && Chance(70)) spec.amount = Credits::Zero();
    } else {
      spec.debit_account_id = AccountId();
      spec.credit_account_id = Chance(5) ? spec.debit_account_id : AccountId();
      spec.amount = Amount();
      if (Chance(2)) spec.pending_id = KnownTransferId();
    }
    if ((spec.flags & kPending) && Chance(60))
      spec.timeout_s = static_cast<uint32_t>(1 + Below(30));
    if (Chance(2)) spec.timeout_s = 5;
    spec.code = static_cast<uint16_t>(Below(3));
    spec.user_data = Below(3);
    return spec;
  }

  AccountSpec Account() {
    AccountSpec spec;
    spec.id = AccountId();
    spec.kind = static_cast<AccountKind>(Chance(3) ? 9 : 1 + Below(7));
    const uint64_t roll = Below(100);
    spec.flags = roll < 55   ? kDebitsMustNotExceedCredits
                 : roll < 65 ? kCreditsMustNotExceedDebits
                             : 0;
    if (Chance(3)) spec.flags |= kFrozen;
    if (Chance(2)) spec.flags |= kClosed;
    if (Chance(2)) spec.flags = kDebitsMustNotExceedCredits | kCreditsMustNotExceedDebits;
    spec.user_data = Below(2);
    return spec;
  }

  AccountUpdate Update() {
    AccountUpdate update{.id = AccountId()};
    const uint64_t roll = Below(100);
    if (roll < 45)
      update.set_flags = kFrozen;
    else if (roll < 85)
      update.clear_flags = kFrozen;
    else if (roll < 95)
      update.set_flags = kClosed;
    else
      update.clear_flags = kClosed;
    return update;
  }

 private:
  std::mt19937_64 rng_;
  uint64_t next_transfer_ = 1000;
};

uint64_t SeedFromEnvironment() {
  const char* text = std::getenv("ATRIUM_SEED");
  return text != nullptr ? std::strtoull(text, nullptr, 10) : 20261122;
}

void ExpectSameBalances(const Ledger& ledger, const Model& model, uint64_t seed, int op) {
  ASSERT_EQ(ledger.account_count(), model.accounts().size()) << "seed " << seed << " op " << op;
  ASSERT_EQ(ledger.transfer_count(), model.transfers().size()) << "seed " << seed << " op " << op;
  for (const auto& [id, expected] : model.accounts()) {
    const auto actual = ledger.FindAccount(id);
    ASSERT_TRUE(actual.has_value());
    ASSERT_EQ(actual->debits_pending.micro(), static_cast<int64_t>(expected.dp))
        << "seed " << seed << " op " << op << " account " << FormatId128(id);
    ASSERT_EQ(actual->debits_posted.micro(), static_cast<int64_t>(expected.dpo))
        << "seed " << seed << " op " << op << " account " << FormatId128(id);
    ASSERT_EQ(actual->credits_pending.micro(), static_cast<int64_t>(expected.cp))
        << "seed " << seed << " op " << op << " account " << FormatId128(id);
    ASSERT_EQ(actual->credits_posted.micro(), static_cast<int64_t>(expected.cpo))
        << "seed " << seed << " op " << op << " account " << FormatId128(id);
    ASSERT_EQ(actual->flags, expected.flags) << "seed " << seed << " op " << op;
  }
}

TEST(LedgerModelTest, AgreesWithTheReferenceModelOnRandomOperations) {
  const uint64_t seed = SeedFromEnvironment();
  SCOPED_TRACE("replay with ATRIUM_SEED=" + std::to_string(seed));
  Generator gen(seed);
  Ledger ledger;
  Model model;
  // Seed some funded accounts so that valid transfers are common.
  std::vector<AccountSpec> initial{{.id = 1, .kind = AccountKind::kSponsor}};
  for (Id128 id = 2; id <= 12; ++id) {
    initial.push_back(
        {.id = id, .kind = AccountKind::kGrant, .flags = kDebitsMustNotExceedCredits});
  }
  int64_t now_us = 1'000'000;
  ASSERT_EQ(ledger.CreateAccounts(initial, now_us), model.CreateAccounts(initial, now_us));
  std::vector<TransferSpec> funding;
  for (Id128 id = 2; id <= 12; ++id) {
    funding.push_back({.id = 100 + id,
                       .debit_account_id = 1,
                       .credit_account_id = id,
                       .amount = Credits::FromWhole(5'000)});
  }
  ASSERT_EQ(ledger.CreateTransfers(funding, now_us), model.CreateTransfers(funding, now_us));

  constexpr int kOperations = 120'000;
  std::map<ErrorCode, int> seen;
  for (int op = 0; op < kOperations; ++op) {
    // Time mostly advances, sometimes stands still or goes back (a skewed clock).
    now_us += gen.Chance(5) ? -static_cast<int64_t>(gen.Below(2 * kMicros))
                            : static_cast<int64_t>(gen.Below(3 * kMicros));
    const uint64_t kind = gen.Below(100);
    std::vector<EventFailure> expected, actual;
    if (kind < 6) {
      std::vector<AccountSpec> specs{gen.Account()};
      if (gen.Chance(30)) specs.push_back(gen.Account());
      actual = ledger.CreateAccounts(specs, now_us);
      expected = model.CreateAccounts(specs, now_us);
    } else if (kind < 10) {
      std::vector<AccountUpdate> updates{gen.Update()};
      actual = ledger.UpdateAccounts(updates, now_us);
      expected = model.UpdateAccounts(updates, now_us);
    } else if (kind < 14) {
      const size_t expired_actual = ledger.ExpirePending(now_us);
      const size_t expired_expected = model.Expire(now_us);
      ASSERT_EQ(expired_actual, expired_expected) << "seed " << seed << " op " << op;
    } else {
      std::vector<TransferSpec> specs;
      const size_t count = gen.Chance(80) ? 1 : 2 + gen.Below(4);
      for (size_t spec_idx = 0; spec_idx < count; ++spec_idx) {
        TransferSpec spec = gen.Transfer();
        if (count > 1 && gen.Chance(60)) spec.flags |= kLinked;
        specs.push_back(spec);
      }
      // Sometimes retry an earlier batch verbatim.
      actual = ledger.CreateTransfers(specs, now_us);
      expected = model.CreateTransfers(specs, now_us);
      if (gen.Chance(10)) {
        ASSERT_EQ(ledger.CreateTransfers(specs, now_us), model.CreateTransfers(specs, now_us))
            << "seed " << seed << " op " << op << " (retry)";
      }
    }
    ASSERT_EQ(actual, expected) << "seed " << seed << " op " << op;
    for (const EventFailure& failure : actual) ++seen[failure.code];
    ExpectSameBalances(ledger, model, seed, op);
    if (HasFatalFailure()) return;
    if (op % 10'000 == 5'000) {
      // Carry on from a snapshot of the ledger: decoding must rebuild the same state,
      // expiry heap included, even after rolled-back chains.
      std::string bytes;
      ledger.Encode(&bytes);
      auto decoded = Ledger::Decode(bytes);
      ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
      ledger = std::move(*decoded);
      for (const auto& [id, modelled] : model.transfers()) {
        const auto stored = ledger.FindTransfer(id);
        ASSERT_TRUE(stored.has_value());
        ASSERT_EQ(stored->amount.micro(), modelled.amount) << "seed " << seed << " op " << op;
        ASSERT_EQ(stored->state, modelled.state) << "seed " << seed << " op " << op;
      }
    }
    if (op % 20'000 == 0) {
      ASSERT_TRUE(ledger.Verify().ok()) << "seed " << seed << " op " << op;
    }
  }
  const Status verified = ledger.Verify();
  ASSERT_TRUE(verified.ok()) << verified.error().ToString();
  // The random operations must have reached every refusal the ledger has, or the test
  // would prove less than it claims.
  for (ErrorCode code : {ErrorCode::kExists,
                         ErrorCode::kExistsWithDifferentFields,
                         ErrorCode::kInsufficientCredits,
                         ErrorCode::kAccountNotFound,
                         ErrorCode::kAccountFrozen,
                         ErrorCode::kAccountClosed,
                         ErrorCode::kSameAccount,
                         ErrorCode::kZeroAmount,
                         ErrorCode::kNegativeAmount,
                         ErrorCode::kOverflow,
                         ErrorCode::kPendingNotFound,
                         ErrorCode::kPendingAlreadyPosted,
                         ErrorCode::kPendingAlreadyVoided,
                         ErrorCode::kPendingExpired,
                         ErrorCode::kPostExceedsPending,
                         ErrorCode::kNotPending,
                         ErrorCode::kLinkedEventFailed,
                         ErrorCode::kLinkedEventChainOpen,
                         ErrorCode::kInvalidFlags,
                         ErrorCode::kInvalidId,
                         ErrorCode::kCreditsExceedDebits,
                         ErrorCode::kTimeoutWithoutPending,
                         ErrorCode::kInvalidKind,
                         ErrorCode::kAccountHasPending,
                         ErrorCode::kPendingAccountMismatch,
                         ErrorCode::kInvalidArgument}) {
    EXPECT_GT(seen[code], 0) << "never exercised: " << ToString(code);
  }
}

}  // namespace
}  // namespace atrium::ledger
