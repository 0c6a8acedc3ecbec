#include "core/command.h"

#include <gtest/gtest.h>

#include "core/core.h"

namespace atrium::core {
namespace {

std::vector<Command> Samples() {
  return {
      CreateAccounts{.now_us = 5,
                     .accounts = {{.id = 1, .kind = ledger::AccountKind::kSponsor},
                                  {.id = Id128{1} << 90,
                                   .kind = ledger::AccountKind::kGrant,
                                   .flags = ledger::kDebitsMustNotExceedCredits,
                                   .user_data = 77}}},
      UpdateAccounts{.now_us = 6, .updates = {{.id = 3, .set_flags = ledger::kFrozen}}},
      CreateTransfers{.now_us = -7,
                      .transfers = {{.id = 9,
                                     .debit_account_id = 1,
                                     .credit_account_id = 2,
                                     .amount = Credits::FromMicro(-12345),
                                     .pending_id = 4,
                                     .timeout_s = 60,
                                     .code = 3,
                                     .flags = ledger::kPending | ledger::kLinked,
                                     .user_data = ~uint64_t{0}}}},
      Tick{.now_us = 1'700'000'000'000'000},
  };
}

TEST(CommandTest, EncodingRoundTrips) {
  for (const Command& command : Samples()) {
    std::string bytes;
    EncodeCommand(command, &bytes);
    auto decoded = DecodeCommand(bytes);
    ASSERT_TRUE(decoded.ok()) << CommandName(command) << ": " << decoded.error().ToString();
    EXPECT_EQ(*decoded, command) << CommandName(command);
    EXPECT_EQ(CommandTime(*decoded), CommandTime(command));
  }
}

TEST(CommandTest, EveryTruncationOrExtensionIsCorruption) {
  for (const Command& command : Samples()) {
    std::string bytes;
    EncodeCommand(command, &bytes);
    for (size_t length = 0; length < bytes.size(); ++length) {
      EXPECT_EQ(DecodeCommand(bytes.substr(0, length)).code(), ErrorCode::kCorruption)
          << CommandName(command) << " cut at " << length;
    }
    EXPECT_EQ(DecodeCommand(bytes + '\0').code(), ErrorCode::kCorruption);
  }
  EXPECT_EQ(DecodeCommand(std::string("\x63\0\0\0\0\0\0\0\0", 9)).code(), ErrorCode::kCorruption);
}

TEST(CoreTest, ChangedIsFalseOnlyWhenNothingApplied) {
  Core core;
  auto created =
      core.Apply(CreateAccounts{.now_us = 1,
                                .accounts = {{.id = 1, .kind = ledger::AccountKind::kSponsor},
                                             {.id = 2, .kind = ledger::AccountKind::kGrant}}});
  EXPECT_TRUE(created.changed);
  EXPECT_TRUE(created.failures.empty());
  auto refused = core.Apply(CreateTransfers{.now_us = 2,
                                            .transfers = {{.id = 5,
                                                           .debit_account_id = 1,
                                                           .credit_account_id = 99,
                                                           .amount = Credits::FromWhole(1)}}});
  EXPECT_FALSE(refused.changed);
  ASSERT_EQ(refused.failures.size(), 1u);
  EXPECT_EQ(refused.failures[0].code, ErrorCode::kAccountNotFound);
  EXPECT_FALSE(core.Apply(Tick{.now_us = 3}).changed);

  std::string state;
  core.Encode(&state);
  auto copy = Core::Decode(state);
  ASSERT_TRUE(copy.ok());
  std::string again;
  copy->Encode(&again);
  EXPECT_EQ(state, again);
  EXPECT_EQ(Core::Decode(state.substr(1)).code(), ErrorCode::kCorruption);
}

}  // namespace
}  // namespace atrium::core
