// Helpers the program's tests share (program_state_test.cc, governance_test.cc): times,
// people and credits written as in the examples, and the ledger's conservation check.
#pragma once

#include <cstdint>
#include <string>

#include "program/loader.h"
#include "program/program_state.h"
#include "program/validate.h"

namespace atrium::program::test {

// "2026-03-15" -> microseconds since the epoch (the test's own dates are valid).
inline int64_t At(const char* text) { return *ParseTimeUs(text); }
// Person 7 -> an ORCID-style id with a valid check digit.
inline std::string Person(int number) { return OrcidFromNumber(static_cast<uint64_t>(number)); }
inline Credits Whole(int64_t value) { return Credits::FromWhole(value); }

// Sum of all balances: zero when no credit was created or lost.
inline int64_t LedgerSum(const ProgramState& state) {
  __int128 sum = 0;
  state.ledger().ForEachAccount(
      [&](const ledger::Account& account) { sum += account.balance().micro(); });
  return static_cast<int64_t>(sum);
}

}  // namespace atrium::program::test
