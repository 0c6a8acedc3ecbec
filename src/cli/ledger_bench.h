// The ledger benchmark behind `atrium ledger bench`, and the deterministic workload it
// applies. The workload is a pure function of (seed, accounts, index), so a test that
// killed a benchmark can recompute every transfer it was told was acknowledged.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "base/error.h"
#include "journal/journal.h"
#include "ledger/ledger.h"

namespace atrium::cli {

struct BenchWorkload {
  uint64_t seed = 1;
  uint32_t accounts = 10'000;

  static constexpr Id128 kSponsorId = 1;
  static constexpr Id128 kFirstAccountId = 1'000;
  static constexpr Id128 kFundingIdBase = Id128{1} << 96;
  static constexpr Id128 kTransferIdBase = Id128{1} << 64;

  // Transfer number `index` (0-based) of the workload: between two distinct grant
  // accounts, 1 to 1,000,000 micro-credits.
  ledger::TransferSpec Transfer(uint64_t index) const;
  // The accounts (a sponsor and `accounts` grants) and the transfers that fund them.
  std::vector<ledger::AccountSpec> AccountSpecs() const;
  std::vector<ledger::TransferSpec> FundingSpecs() const;
};

struct BenchOptions {
  uint64_t transfers = 1'000'000;
  uint32_t batch = 8'000;
  BenchWorkload workload;
  bool durable = false;
  std::string db_path;
  bool progress = false;
  bool baseline = true;  // durable runs also time the plain SQLite baseline
  journal::Options journal;
};

// Runs the benchmark; writes progress lines (`acked N`) to `progress` when asked, and
// returns the JSON summary line. A durable run continues a store it finds partly done.
Result<std::string> RunLedgerBench(const BenchOptions& options, std::ostream& progress);

// Peak resident set size of this process, in MiB.
double PeakRssMb();

}  // namespace atrium::cli
