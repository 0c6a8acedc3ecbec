#include "ledger/ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace atrium::ledger {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr Id128 kSponsor = 1;
constexpr Id128 kPool = 2;
constexpr Id128 kGrant = 3;
constexpr Id128 kRevenue = 4;
constexpr Id128 kGrantB = 5;

Credits Cr(int64_t whole) { return Credits::FromWhole(whole); }

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(
        ledger_.CreateAccounts(
            std::vector<AccountSpec>{
                {.id = kSponsor, .kind = AccountKind::kSponsor},
                {.id = kPool,
                 .kind = AccountKind::kProgramPool,
                 .flags = kDebitsMustNotExceedCredits},
                {.id = kGrant, .kind = AccountKind::kGrant, .flags = kDebitsMustNotExceedCredits},
                {.id = kRevenue, .kind = AccountKind::kClusterRevenue},
                {.id = kGrantB, .kind = AccountKind::kGrant, .flags = kDebitsMustNotExceedCredits}},
            Now()),
        IsEmpty());
    // The sponsor funds the pool with 1,000 credits; the pool awards 100 to the grant.
    ASSERT_THAT(Transfer({.id = 100,
                          .debit_account_id = kSponsor,
                          .credit_account_id = kPool,
                          .amount = Cr(1000)}),
                IsEmpty());
    ASSERT_THAT(
        Transfer(
            {.id = 101, .debit_account_id = kPool, .credit_account_id = kGrant, .amount = Cr(100)}),
        IsEmpty());
  }

  int64_t Now() { return now_us_ += 1'000'000; }

  std::vector<EventFailure> Transfer(const TransferSpec& spec) {
    return ledger_.CreateTransfers(std::vector<TransferSpec>{spec}, Now());
  }
  ErrorCode TransferCode(const TransferSpec& spec) {
    const auto failures = Transfer(spec);
    return failures.empty() ? ErrorCode::kOk : failures[0].code;
  }
  Account Get(Id128 id) {
    auto account = ledger_.FindAccount(id);
    EXPECT_TRUE(account.has_value());
    return account.value_or(Account{});
  }

  Ledger ledger_;
  int64_t now_us_ = 1'700'000'000'000'000;
};

TEST_F(LedgerTest, SingleTransferMovesCreditsAndConserves) {
  EXPECT_EQ(Get(kSponsor).balance(), Cr(-1000));
  EXPECT_EQ(Get(kPool).balance(), Cr(900));
  EXPECT_EQ(Get(kGrant).balance(), Cr(100));
  EXPECT_TRUE(ledger_.Verify().ok());
  auto stored = ledger_.FindTransfer(101);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->debit_account_id, kPool);
  EXPECT_EQ(stored->credit_account_id, kGrant);
  EXPECT_EQ(stored->amount, Cr(100));
  EXPECT_EQ(stored->state, PendingState::kNone);
}

TEST_F(LedgerTest, IdempotentRetryAnswersExistsAndChangesNothing) {
  const TransferSpec award{
      .id = 101, .debit_account_id = kPool, .credit_account_id = kGrant, .amount = Cr(100)};
  EXPECT_EQ(TransferCode(award), ErrorCode::kExists);
  TransferSpec other = award;
  other.amount = Cr(99);
  EXPECT_EQ(TransferCode(other), ErrorCode::kExistsWithDifferentFields);
  other = award;
  other.credit_account_id = kGrantB;
  EXPECT_EQ(TransferCode(other), ErrorCode::kExistsWithDifferentFields);
  other = award;
  other.code = 7;
  EXPECT_EQ(TransferCode(other), ErrorCode::kExistsWithDifferentFields);
  EXPECT_EQ(Get(kGrant).balance(), Cr(100));
  EXPECT_EQ(ledger_.transfer_count(), 2u);
}

TEST_F(LedgerTest, RefusesEachMalformedTransferWithItsCode) {
  EXPECT_EQ(TransferCode(
                {.id = 0, .debit_account_id = kPool, .credit_account_id = kGrant, .amount = Cr(1)}),
            ErrorCode::kInvalidId);
  EXPECT_EQ(
      TransferCode(
          {.id = kIdMax, .debit_account_id = kPool, .credit_account_id = kGrant, .amount = Cr(1)}),
      ErrorCode::kInvalidId);
  EXPECT_EQ(
      TransferCode(
          {.id = 200, .debit_account_id = kPool, .credit_account_id = kPool, .amount = Cr(1)}),
      ErrorCode::kSameAccount);
  EXPECT_EQ(
      TransferCode(
          {.id = 200, .debit_account_id = kPool, .credit_account_id = kGrant, .amount = Cr(0)}),
      ErrorCode::kZeroAmount);
  EXPECT_EQ(
      TransferCode(
          {.id = 200, .debit_account_id = kPool, .credit_account_id = kGrant, .amount = Cr(-1)}),
      ErrorCode::kNegativeAmount);
  EXPECT_EQ(TransferCode(
                {.id = 200, .debit_account_id = 99, .credit_account_id = kGrant, .amount = Cr(1)}),
            ErrorCode::kAccountNotFound);
  EXPECT_EQ(TransferCode(
                {.id = 200, .debit_account_id = kPool, .credit_account_id = 99, .amount = Cr(1)}),
            ErrorCode::kAccountNotFound);
  EXPECT_EQ(TransferCode({.id = 200,
                          .debit_account_id = kPool,
                          .credit_account_id = kGrant,
                          .amount = Cr(1),
                          .flags = 1 << 10}),
            ErrorCode::kInvalidFlags);
  EXPECT_EQ(TransferCode({.id = 200,
                          .debit_account_id = kPool,
                          .credit_account_id = kGrant,
                          .amount = Cr(1),
                          .flags = kPending | kPostPending}),
            ErrorCode::kInvalidFlags);
  EXPECT_EQ(TransferCode({.id = 200,
                          .debit_account_id = kPool,
                          .credit_account_id = kGrant,
                          .amount = Cr(1),
                          .pending_id = 101,
                          .flags = kPostPending | kBalancingDebit}),
            ErrorCode::kInvalidFlags);
  EXPECT_EQ(TransferCode({.id = 200,
                          .debit_account_id = kPool,
                          .credit_account_id = kGrant,
                          .amount = Cr(1),
                          .timeout_s = 5}),
            ErrorCode::kTimeoutWithoutPending);
  EXPECT_EQ(TransferCode({.id = 200,
                          .debit_account_id = kPool,
                          .credit_account_id = kGrant,
                          .amount = Cr(1),
                          .pending_id = 101}),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(TransferCode({.id = 200,
                          .debit_account_id = kSponsor,
                          .credit_account_id = kPool,
                          .amount = Credits::Max()}),
            ErrorCode::kOverflow);
  EXPECT_TRUE(ledger_.Verify().ok());
  EXPECT_EQ(ledger_.transfer_count(), 2u);
}

TEST_F(LedgerTest, GrantMayNotGoBelowZero) {
  EXPECT_EQ(TransferCode({.id = 200,
                          .debit_account_id = kGrant,
                          .credit_account_id = kRevenue,
                          .amount = Credits::FromMicro(100'000'001)}),
            ErrorCode::kInsufficientCredits);
  EXPECT_THAT(Transfer({.id = 201,
                        .debit_account_id = kGrant,
                        .credit_account_id = kRevenue,
                        .amount = Cr(100)}),
              IsEmpty());
  EXPECT_EQ(Get(kGrant).balance(), Cr(0));
  EXPECT_EQ(TransferCode({.id = 202,
                          .debit_account_id = kGrant,
                          .credit_account_id = kRevenue,
                          .amount = Credits::FromMicro(1)}),
            ErrorCode::kInsufficientCredits);
}

TEST_F(LedgerTest, CreditsMustNotExceedDebitsGuardsPayOutAccounts) {
  ASSERT_THAT(
      ledger_.CreateAccounts(
          std::vector<AccountSpec>{
              {.id = 50, .kind = AccountKind::kOperating, .flags = kCreditsMustNotExceedDebits}},
          Now()),
      IsEmpty());
  EXPECT_EQ(TransferCode(
                {.id = 200, .debit_account_id = kPool, .credit_account_id = 50, .amount = Cr(1)}),
            ErrorCode::kCreditsExceedDebits);
  EXPECT_THAT(
      Transfer({.id = 201, .debit_account_id = 50, .credit_account_id = kPool, .amount = Cr(5)}),
      IsEmpty());
  EXPECT_THAT(
      Transfer({.id = 202, .debit_account_id = kPool, .credit_account_id = 50, .amount = Cr(5)}),
      IsEmpty());
}

TEST_F(LedgerTest, HoldCountsAgainstAvailableAndPostsPartially) {
  // A job holds its worst case, 60; the grant has 100.
  ASSERT_THAT(Transfer({.id = 300,
                        .debit_account_id = kGrant,
                        .credit_account_id = kRevenue,
                        .amount = Cr(60),
                        .flags = kPending}),
              IsEmpty());
  EXPECT_EQ(Get(kGrant).debits_pending, Cr(60));
  EXPECT_EQ(Get(kGrant).available(), Cr(40));
  // A second hold of 41 does not fit beside it.
  EXPECT_EQ(TransferCode({.id = 301,
                          .debit_account_id = kGrant,
                          .credit_account_id = kRevenue,
                          .amount = Cr(41),
                          .flags = kPending}),
            ErrorCode::kInsufficientCredits);
  // The job used 25: post 25, release the other 35.
  ASSERT_THAT(Transfer({.id = 302, .amount = Cr(25), .pending_id = 300, .flags = kPostPending}),
              IsEmpty());
  const Account grant = Get(kGrant);
  EXPECT_EQ(grant.debits_pending, Cr(0));
  EXPECT_EQ(grant.debits_posted, Cr(25));
  EXPECT_EQ(grant.balance(), Cr(75));
  EXPECT_EQ(Get(kRevenue).balance(), Cr(25));
  EXPECT_EQ(ledger_.FindTransfer(300)->state, PendingState::kPosted);
  EXPECT_EQ(ledger_.FindTransfer(302)->debit_account_id, kGrant);
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(LedgerTest, PostAndVoidRulesHaveTheirCodes) {
  ASSERT_THAT(Transfer({.id = 300,
                        .debit_account_id = kGrant,
                        .credit_account_id = kRevenue,
                        .amount = Cr(10),
                        .flags = kPending}),
              IsEmpty());
  EXPECT_EQ(TransferCode({.id = 310, .amount = Cr(1), .pending_id = 999, .flags = kPostPending}),
            ErrorCode::kPendingNotFound);
  EXPECT_EQ(TransferCode({.id = 310, .amount = Cr(1), .pending_id = 101, .flags = kPostPending}),
            ErrorCode::kNotPending);
  EXPECT_EQ(TransferCode({.id = 310, .amount = Cr(1), .pending_id = 310, .flags = kPostPending}),
            ErrorCode::kPendingNotFound);
  EXPECT_FALSE(ledger_.FindTransfer(310).has_value());
  EXPECT_EQ(TransferCode({.id = 310, .amount = Cr(11), .pending_id = 300, .flags = kPostPending}),
            ErrorCode::kPostExceedsPending);
  EXPECT_EQ(TransferCode({.id = 310, .amount = Cr(-1), .pending_id = 300, .flags = kPostPending}),
            ErrorCode::kNegativeAmount);
  EXPECT_EQ(TransferCode({.id = 310,
                          .debit_account_id = kGrantB,
                          .amount = Cr(1),
                          .pending_id = 300,
                          .flags = kPostPending}),
            ErrorCode::kPendingAccountMismatch);
  // Full post with Credits::Max().
  ASSERT_THAT(
      Transfer({.id = 311, .amount = Credits::Max(), .pending_id = 300, .flags = kPostPending}),
      IsEmpty());
  EXPECT_EQ(ledger_.FindTransfer(311)->amount, Cr(10));
  EXPECT_EQ(TransferCode({.id = 312, .amount = Cr(1), .pending_id = 300, .flags = kPostPending}),
            ErrorCode::kPendingAlreadyPosted);
  EXPECT_EQ(TransferCode({.id = 312, .pending_id = 300, .flags = kVoidPending}),
            ErrorCode::kPendingAlreadyPosted);

  ASSERT_THAT(Transfer({.id = 320,
                        .debit_account_id = kGrant,
                        .credit_account_id = kRevenue,
                        .amount = Cr(10),
                        .flags = kPending}),
              IsEmpty());
  ASSERT_THAT(Transfer({.id = 321, .pending_id = 320, .flags = kVoidPending}), IsEmpty());
  EXPECT_EQ(ledger_.FindTransfer(320)->state, PendingState::kVoided);
  EXPECT_EQ(TransferCode({.id = 322, .amount = Cr(1), .pending_id = 320, .flags = kPostPending}),
            ErrorCode::kPendingAlreadyVoided);
  EXPECT_EQ(TransferCode({.id = 322, .pending_id = 320, .flags = kVoidPending}),
            ErrorCode::kPendingAlreadyVoided);
  // Retrying the void itself is idempotent.
  EXPECT_EQ(TransferCode({.id = 321, .pending_id = 320, .flags = kVoidPending}),
            ErrorCode::kExists);
  EXPECT_EQ(Get(kGrant).balance(), Cr(90));
  EXPECT_EQ(Get(kGrant).debits_pending, Cr(0));
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(LedgerTest, HoldsExpireByTickAndRefusePostAfterTimeout) {
  const int64_t placed_at = now_us_ + 1'000'000;
  ASSERT_THAT(Transfer({.id = 400,
                        .debit_account_id = kGrant,
                        .credit_account_id = kRevenue,
                        .amount = Cr(30),
                        .timeout_s = 60,
                        .flags = kPending}),
              IsEmpty());
  EXPECT_EQ(ledger_.ExpirePending(placed_at + 59'000'000), 0u);
  EXPECT_EQ(Get(kGrant).debits_pending, Cr(30));
  // Past the timeout a post is refused even before the tick releases the hold.
  now_us_ = placed_at + 60'000'000;
  EXPECT_EQ(ledger_
                .CreateTransfers(
                    std::vector<TransferSpec>{
                        {.id = 401, .amount = Cr(1), .pending_id = 400, .flags = kPostPending}},
                    now_us_)[0]
                .code,
            ErrorCode::kPendingExpired);
  EXPECT_EQ(ledger_.ExpirePending(placed_at + 60'000'000), 1u);
  EXPECT_EQ(Get(kGrant).debits_pending, Cr(0));
  EXPECT_EQ(ledger_.FindTransfer(400)->state, PendingState::kExpired);
  EXPECT_EQ(TransferCode({.id = 402, .pending_id = 400, .flags = kVoidPending}),
            ErrorCode::kPendingExpired);
  EXPECT_EQ(ledger_.ExpirePending(placed_at + 120'000'000), 0u);
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(LedgerTest, BalancingDebitSweepsWhatIsAvailable) {
  ASSERT_THAT(Transfer({.id = 500,
                        .debit_account_id = kGrant,
                        .credit_account_id = kRevenue,
                        .amount = Cr(30),
                        .flags = kPending}),
              IsEmpty());
  // Sweep the expired grant back to the pool: at most 1,000, but only 70 is free.
  ASSERT_THAT(Transfer({.id = 501,
                        .debit_account_id = kGrant,
                        .credit_account_id = kPool,
                        .amount = Cr(1000),
                        .flags = kBalancingDebit}),
              IsEmpty());
  EXPECT_EQ(ledger_.FindTransfer(501)->amount, Cr(70));
  EXPECT_EQ(Get(kGrant).available(), Cr(0));
  EXPECT_EQ(Get(kPool).balance(), Cr(970));
  // A retry with the same request is recognised although it moved less.
  EXPECT_EQ(TransferCode({.id = 501,
                          .debit_account_id = kGrant,
                          .credit_account_id = kPool,
                          .amount = Cr(1000),
                          .flags = kBalancingDebit}),
            ErrorCode::kExists);
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(LedgerTest, LinkedChainAppliesAllOrNothing) {
  // Award two grants in one chain; the second exceeds the pool, so neither happens.
  const auto failures = ledger_.CreateTransfers(
      std::vector<TransferSpec>{
          {.id = 600,
           .debit_account_id = kPool,
           .credit_account_id = kGrant,
           .amount = Cr(100),
           .flags = kLinked},
          {.id = 601,
           .debit_account_id = kPool,
           .credit_account_id = kGrantB,
           .amount = Cr(5000),
           .flags = kLinked},
          {.id = 602, .debit_account_id = kPool, .credit_account_id = kGrantB, .amount = Cr(1)},
          {.id = 603, .debit_account_id = kPool, .credit_account_id = kGrantB, .amount = Cr(2)}},
      Now());
  EXPECT_THAT(failures, ElementsAre(EventFailure{0, ErrorCode::kLinkedEventFailed},
                                    EventFailure{1, ErrorCode::kInsufficientCredits},
                                    EventFailure{2, ErrorCode::kLinkedEventFailed}));
  EXPECT_FALSE(ledger_.FindTransfer(600).has_value());
  EXPECT_FALSE(ledger_.FindTransfer(602).has_value());
  EXPECT_TRUE(ledger_.FindTransfer(603).has_value());  // after the chain: independent
  EXPECT_EQ(Get(kGrant).balance(), Cr(100));
  EXPECT_EQ(Get(kGrantB).balance(), Cr(2));
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(LedgerTest, LinkedChainRollsBackHoldsAndPosts) {
  ASSERT_THAT(Transfer({.id = 700,
                        .debit_account_id = kGrant,
                        .credit_account_id = kRevenue,
                        .amount = Cr(10),
                        .timeout_s = 30,
                        .flags = kPending}),
              IsEmpty());
  const auto failures = ledger_.CreateTransfers(
      std::vector<TransferSpec>{
          {.id = 701, .amount = Cr(4), .pending_id = 700, .flags = kPostPending | kLinked},
          {.id = 702,
           .debit_account_id = kGrant,
           .credit_account_id = kRevenue,
           .amount = Cr(5),
           .timeout_s = 1,
           .flags = kPending | kLinked},
          {.id = 703, .debit_account_id = kGrant, .credit_account_id = 12345, .amount = Cr(1)}},
      Now());
  EXPECT_THAT(failures, ElementsAre(EventFailure{0, ErrorCode::kLinkedEventFailed},
                                    EventFailure{1, ErrorCode::kLinkedEventFailed},
                                    EventFailure{2, ErrorCode::kAccountNotFound}));
  EXPECT_EQ(ledger_.FindTransfer(700)->state, PendingState::kOpen);
  EXPECT_EQ(Get(kGrant).debits_pending, Cr(10));
  EXPECT_EQ(Get(kGrant).debits_posted, Cr(0));
  EXPECT_TRUE(ledger_.Verify().ok());
  // The rolled-back hold 702 left a stale expiry behind; it must not release anything.
  EXPECT_EQ(ledger_.ExpirePending(now_us_ + 10'000'000), 0u);
  EXPECT_EQ(Get(kGrant).debits_pending, Cr(10));
}

TEST_F(LedgerTest, RetriedLinkedChainAnswersExistsThroughout) {
  const std::vector<TransferSpec> chain{
      {.id = 650,
       .debit_account_id = kPool,
       .credit_account_id = kGrant,
       .amount = Cr(1),
       .flags = kLinked},
      {.id = 651, .debit_account_id = kPool, .credit_account_id = kGrantB, .amount = Cr(2)}};
  ASSERT_THAT(ledger_.CreateTransfers(chain, Now()), IsEmpty());
  EXPECT_THAT(
      ledger_.CreateTransfers(chain, Now()),
      ElementsAre(EventFailure{0, ErrorCode::kExists}, EventFailure{1, ErrorCode::kExists}));
  // A "retry" that adds a new event to an existing one differs from the original.
  std::vector<TransferSpec> mixed = chain;
  mixed[1].id = 652;
  EXPECT_THAT(ledger_.CreateTransfers(mixed, Now()),
              ElementsAre(EventFailure{0, ErrorCode::kExists},
                          EventFailure{1, ErrorCode::kLinkedEventFailed}));
  EXPECT_FALSE(ledger_.FindTransfer(652).has_value());
  // And a new event followed by an existing one fails at the existing one.
  std::vector<TransferSpec> reversed{{.id = 653,
                                      .debit_account_id = kPool,
                                      .credit_account_id = kGrant,
                                      .amount = Cr(1),
                                      .flags = kLinked},
                                     chain[1]};
  EXPECT_THAT(ledger_.CreateTransfers(reversed, Now()),
              ElementsAre(EventFailure{0, ErrorCode::kLinkedEventFailed},
                          EventFailure{1, ErrorCode::kExists}));
  EXPECT_FALSE(ledger_.FindTransfer(653).has_value());
  EXPECT_EQ(Get(kGrantB).balance(), Cr(2));
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(LedgerTest, OpenChainAtEndOfBatchFails) {
  const auto failures =
      ledger_.CreateTransfers(std::vector<TransferSpec>{{.id = 800,
                                                         .debit_account_id = kPool,
                                                         .credit_account_id = kGrant,
                                                         .amount = Cr(1),
                                                         .flags = kLinked},
                                                        {.id = 801,
                                                         .debit_account_id = kPool,
                                                         .credit_account_id = kGrant,
                                                         .amount = Cr(1),
                                                         .flags = kLinked}},
                              Now());
  EXPECT_THAT(failures, ElementsAre(EventFailure{0, ErrorCode::kLinkedEventFailed},
                                    EventFailure{1, ErrorCode::kLinkedEventChainOpen}));
  EXPECT_EQ(ledger_.transfer_count(), 2u);
}

TEST_F(LedgerTest, FrozenAndClosedAccounts) {
  ASSERT_THAT(Transfer({.id = 900,
                        .debit_account_id = kGrant,
                        .credit_account_id = kRevenue,
                        .amount = Cr(10),
                        .flags = kPending}),
              IsEmpty());
  ASSERT_THAT(ledger_.UpdateAccounts(
                  std::vector<AccountUpdate>{{.id = kGrant, .set_flags = kFrozen}}, Now()),
              IsEmpty());
  EXPECT_EQ(
      TransferCode(
          {.id = 901, .debit_account_id = kGrant, .credit_account_id = kRevenue, .amount = Cr(1)}),
      ErrorCode::kAccountFrozen);
  EXPECT_EQ(
      TransferCode(
          {.id = 901, .debit_account_id = kPool, .credit_account_id = kGrant, .amount = Cr(1)}),
      ErrorCode::kAccountFrozen);
  // The hold of a job already running may still be settled.
  EXPECT_THAT(Transfer({.id = 902, .amount = Cr(3), .pending_id = 900, .flags = kPostPending}),
              IsEmpty());
  // Closing is final: it cannot be cleared, and a closed account takes no transfer.
  EXPECT_THAT(
      ledger_.UpdateAccounts(std::vector<AccountUpdate>{{.id = kGrant, .clear_flags = kFrozen},
                                                        {.id = 77, .set_flags = kFrozen},
                                                        {.id = kGrant, .clear_flags = kClosed},
                                                        {.id = kGrant, .set_flags = 0}},
                             Now()),
      ElementsAre(EventFailure{1, ErrorCode::kAccountNotFound},
                  EventFailure{2, ErrorCode::kInvalidFlags},
                  EventFailure{3, ErrorCode::kInvalidFlags}));
  ASSERT_THAT(ledger_.UpdateAccounts(
                  std::vector<AccountUpdate>{{.id = kGrant, .set_flags = kClosed}}, Now()),
              IsEmpty());
  EXPECT_EQ(
      TransferCode(
          {.id = 904, .debit_account_id = kPool, .credit_account_id = kGrant, .amount = Cr(1)}),
      ErrorCode::kAccountClosed);
  EXPECT_THAT(ledger_.UpdateAccounts(
                  std::vector<AccountUpdate>{{.id = kGrant, .set_flags = kFrozen}}, Now()),
              ElementsAre(EventFailure{0, ErrorCode::kAccountClosed}));
  EXPECT_TRUE(ledger_.Verify().ok());
}

// What a sanction means for a running job's hold (docs/program.md, "Holds"): a frozen
// account takes no new transfer and no new hold, but the holds already open settle
// either way, a partial post releasing the rest; and it cannot close while they are open.
TEST_F(LedgerTest, FrozenAccountSettlesOpenHoldsButTakesNoNewOnes) {
  for (const Id128 id : {Id128{960}, Id128{961}}) {
    ASSERT_THAT(Transfer({.id = id,
                          .debit_account_id = kGrant,
                          .credit_account_id = kRevenue,
                          .amount = Cr(20),
                          .flags = kPending}),
                IsEmpty());
  }
  ASSERT_THAT(ledger_.UpdateAccounts(
                  std::vector<AccountUpdate>{{.id = kGrant, .set_flags = kFrozen}}, Now()),
              IsEmpty());
  EXPECT_EQ(Get(kGrant).available(), Cr(60));
  EXPECT_EQ(TransferCode({.id = 962,
                          .debit_account_id = kGrant,
                          .credit_account_id = kRevenue,
                          .amount = Cr(1),
                          .flags = kPending}),
            ErrorCode::kAccountFrozen);
  EXPECT_EQ(TransferCode({.id = 962,
                          .debit_account_id = kGrant,
                          .credit_account_id = kPool,
                          .amount = Credits::Max(),
                          .flags = kBalancingDebit}),
            ErrorCode::kAccountFrozen);
  EXPECT_THAT(ledger_.UpdateAccounts(
                  std::vector<AccountUpdate>{{.id = kGrant, .set_flags = kClosed}}, Now()),
              ElementsAre(EventFailure{0, ErrorCode::kAccountHasPending}));
  // A partial post charges what ran and releases the rest; a void releases it all.
  EXPECT_THAT(Transfer({.id = 963, .amount = Cr(7), .pending_id = 960, .flags = kPostPending}),
              IsEmpty());
  EXPECT_THAT(Transfer({.id = 964, .pending_id = 961, .flags = kVoidPending}), IsEmpty());
  EXPECT_EQ(Get(kGrant).debits_pending, Cr(0));
  EXPECT_EQ(Get(kGrant).balance(), Cr(93));
  EXPECT_EQ(Get(kGrant).available(), Cr(93));
  EXPECT_EQ(Get(kRevenue).balance(), Cr(7));
  // With no hold left it may close.
  EXPECT_THAT(ledger_.UpdateAccounts(
                  std::vector<AccountUpdate>{{.id = kGrant, .set_flags = kClosed}}, Now()),
              IsEmpty());
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(LedgerTest, AccountCannotCloseWithOpenHolds) {
  ASSERT_THAT(Transfer({.id = 950,
                        .debit_account_id = kGrant,
                        .credit_account_id = kRevenue,
                        .amount = Cr(10),
                        .flags = kPending}),
              IsEmpty());
  EXPECT_THAT(ledger_.UpdateAccounts(
                  std::vector<AccountUpdate>{{.id = kGrant, .set_flags = kClosed}}, Now()),
              ElementsAre(EventFailure{0, ErrorCode::kAccountHasPending}));
}

TEST_F(LedgerTest, AccountCreationRules) {
  EXPECT_THAT(
      ledger_.CreateAccounts(
          std::vector<AccountSpec>{
              {.id = kGrant, .kind = AccountKind::kGrant, .flags = kDebitsMustNotExceedCredits},
              {.id = kGrant, .kind = AccountKind::kCourse, .flags = kDebitsMustNotExceedCredits},
              {.id = 0, .kind = AccountKind::kGrant},
              {.id = 60,
               .kind = AccountKind::kGrant,
               .flags = kDebitsMustNotExceedCredits | kCreditsMustNotExceedDebits},
              {.id = 61, .kind = AccountKind::kGrant, .flags = kClosed},
              {.id = 62, .kind = static_cast<AccountKind>(42)},
              {.id = 63, .kind = AccountKind::kCourse, .flags = kFrozen}},
          Now()),
      ElementsAre(EventFailure{0, ErrorCode::kExists},
                  EventFailure{1, ErrorCode::kExistsWithDifferentFields},
                  EventFailure{2, ErrorCode::kInvalidId}, EventFailure{3, ErrorCode::kInvalidFlags},
                  EventFailure{4, ErrorCode::kInvalidFlags},
                  EventFailure{5, ErrorCode::kInvalidKind}));
  EXPECT_EQ(ledger_.account_count(), 6u);
  EXPECT_EQ(ToString(AccountKind::kClusterRevenue), "cluster_revenue");
  EXPECT_EQ(*ParseAccountKind("track_pool"), AccountKind::kTrackPool);
  EXPECT_EQ(ParseAccountKind("bank").code(), ErrorCode::kInvalidKind);
}

TEST_F(LedgerTest, TimestampsStrictlyIncreaseEvenWhenTheClockDoesNot) {
  const auto failures = ledger_.CreateTransfers(
      std::vector<TransferSpec>{
          {.id = 1000, .debit_account_id = kPool, .credit_account_id = kGrant, .amount = Cr(1)},
          {.id = 1001, .debit_account_id = kPool, .credit_account_id = kGrant, .amount = Cr(1)}},
      0);
  ASSERT_THAT(failures, IsEmpty());
  EXPECT_LT(ledger_.FindTransfer(101)->timestamp_us, ledger_.FindTransfer(1000)->timestamp_us);
  EXPECT_LT(ledger_.FindTransfer(1000)->timestamp_us, ledger_.FindTransfer(1001)->timestamp_us);
}

TEST_F(LedgerTest, SnapshotRoundTripsAndDetectsCorruption) {
  ASSERT_THAT(Transfer({.id = 1100,
                        .debit_account_id = kGrant,
                        .credit_account_id = kRevenue,
                        .amount = Cr(10),
                        .timeout_s = 100,
                        .flags = kPending}),
              IsEmpty());
  std::string bytes;
  ledger_.Encode(&bytes);
  auto copy = Ledger::Decode(bytes);
  ASSERT_TRUE(copy.ok()) << copy.error().ToString();
  std::string again;
  copy->Encode(&again);
  EXPECT_EQ(bytes, again);
  EXPECT_TRUE(copy->Verify().ok());
  // The copy keeps the expiry of the open hold.
  EXPECT_EQ(copy->ExpirePending(now_us_ + 200'000'000), 1u);

  EXPECT_EQ(Ledger::Decode(bytes.substr(0, bytes.size() - 1)).code(), ErrorCode::kCorruption);
  EXPECT_EQ(Ledger::Decode(bytes + "x").code(), ErrorCode::kCorruption);
  std::string bad_magic = bytes;
  bad_magic[0] ^= 1;
  EXPECT_EQ(Ledger::Decode(bad_magic).code(), ErrorCode::kCorruption);
}

TEST_F(LedgerTest, VerifyCatchesADoctoredSnapshot) {
  std::string bytes;
  ledger_.Encode(&bytes);
  // The second account's debits_posted sits after magic(4) + timestamp(8) + count(4) +
  // first account (16 + 48 + 3) + id(16) + debits_pending(8).
  const size_t offset = 4 + 8 + 4 + 67 + 16 + 8;
  bytes[offset] = static_cast<char>(bytes[offset] + 1);
  auto doctored = Ledger::Decode(bytes);
  ASSERT_TRUE(doctored.ok());
  EXPECT_EQ(doctored->Verify().code(), ErrorCode::kInvariantViolated);
}

TEST_F(LedgerTest, HistoryListsAnAccountsTransfersInOrder) {
  ASSERT_THAT(
      Transfer(
          {.id = 1200, .debit_account_id = kGrant, .credit_account_id = kRevenue, .amount = Cr(1)}),
      IsEmpty());
  const auto history = ledger_.History(kGrant, 10);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].id, Id128{101});
  EXPECT_EQ(history[1].id, Id128{1200});
  EXPECT_EQ(ledger_.History(kGrant, 1).size(), 1u);
  EXPECT_TRUE(ledger_.History(4242, 10).empty());
}

}  // namespace
}  // namespace atrium::ledger

namespace atrium::ledger {
namespace {

TEST(LedgerReviewTest, LogicalTimeOutsideTheWindowIsRefusedWhole) {
  Ledger ledger;
  const std::vector<AccountSpec> accounts{{.id = 1, .kind = AccountKind::kSponsor},
                                          {.id = 2, .kind = AccountKind::kGrant}};
  EXPECT_THAT(ledger.CreateAccounts(accounts, std::numeric_limits<int64_t>::max()),
              ElementsAre(EventFailure{0, ErrorCode::kTimestampOverflow},
                          EventFailure{1, ErrorCode::kTimestampOverflow}));
  EXPECT_THAT(ledger.CreateAccounts(accounts, -1),
              ElementsAre(EventFailure{0, ErrorCode::kTimestampOverflow},
                          EventFailure{1, ErrorCode::kTimestampOverflow}));
  EXPECT_EQ(ledger.account_count(), 0u);
  ASSERT_THAT(ledger.CreateAccounts(accounts, Ledger::kTimeMaxUs), IsEmpty());
  // At the end of the window timestamps still advance, one per event, without overflow.
  ASSERT_THAT(ledger.CreateTransfers(std::vector<TransferSpec>{{.id = 5,
                                                                .debit_account_id = 1,
                                                                .credit_account_id = 2,
                                                                .amount = Credits::FromWhole(1)}},
                                     Ledger::kTimeMaxUs),
              IsEmpty());
  EXPECT_GT(ledger.FindTransfer(5)->timestamp_us, Ledger::kTimeMaxUs);
  EXPECT_TRUE(ledger.Verify().ok());
}

TEST(LedgerReviewTest, BalancingDebitClampsAccountsWithoutLimitsToo) {
  Ledger ledger;
  ASSERT_THAT(
      ledger.CreateAccounts(std::vector<AccountSpec>{{.id = 1, .kind = AccountKind::kSponsor},
                                                     {.id = 2, .kind = AccountKind::kCourse},
                                                     {.id = 3, .kind = AccountKind::kTrackPool}},
                            1),
      IsEmpty());
  ASSERT_THAT(ledger.CreateTransfers(std::vector<TransferSpec>{{.id = 10,
                                                                .debit_account_id = 1,
                                                                .credit_account_id = 2,
                                                                .amount = Credits::FromWhole(50)},
                                                               {.id = 11,
                                                                .debit_account_id = 2,
                                                                .credit_account_id = 3,
                                                                .amount = Credits::FromWhole(1000),
                                                                .flags = kBalancingDebit}},
                                     2),
              IsEmpty());
  EXPECT_EQ(ledger.FindTransfer(11)->amount, Credits::FromWhole(50));
  EXPECT_EQ(ledger.FindAccount(2)->balance(), Credits::Zero());
}

TEST(LedgerReviewTest, RetryingAWholePostAfterAPartialOneDiffers) {
  Ledger ledger;
  ASSERT_THAT(
      ledger.CreateAccounts(std::vector<AccountSpec>{{.id = 1, .kind = AccountKind::kSponsor},
                                                     {.id = 2, .kind = AccountKind::kGrant}},
                            1),
      IsEmpty());
  ASSERT_THAT(ledger.CreateTransfers(std::vector<TransferSpec>{{.id = 10,
                                                                .debit_account_id = 1,
                                                                .credit_account_id = 2,
                                                                .amount = Credits::FromWhole(100),
                                                                .flags = kPending},
                                                               {.id = 11,
                                                                .amount = Credits::FromWhole(30),
                                                                .pending_id = 10,
                                                                .flags = kPostPending}},
                                     2),
              IsEmpty());
  EXPECT_THAT(
      ledger.CreateTransfers(
          std::vector<TransferSpec>{
              {.id = 11, .amount = Credits::Max(), .pending_id = 10, .flags = kPostPending}},
          3),
      ElementsAre(EventFailure{0, ErrorCode::kExistsWithDifferentFields}));
  EXPECT_THAT(ledger.CreateTransfers(std::vector<TransferSpec>{{.id = 11,
                                                                .amount = Credits::FromWhole(30),
                                                                .pending_id = 10,
                                                                .flags = kPostPending}},
                                     3),
              ElementsAre(EventFailure{0, ErrorCode::kExists}));
}

TEST(LedgerReviewTest, AvailableClampsInsteadOfOverflowing) {
  const Account account{.debits_pending = Credits::Max(),
                        .debits_posted = Credits::Max(),
                        .credits_posted = Credits::Zero()};
  EXPECT_EQ(account.available().micro(), std::numeric_limits<int64_t>::min());
}

}  // namespace
}  // namespace atrium::ledger
