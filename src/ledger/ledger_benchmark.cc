// Micro-benchmarks of the ledger's hot path: batches of single-phase transfers and of
// hold/post pairs between grant accounts. Run the release build:
//   build/release/src/ledger/ledger_benchmark
#include <benchmark/benchmark.h>

#include <random>

#include "ledger/ledger.h"

namespace atrium::ledger {
namespace {

constexpr Id128 kSponsor = 1;

Ledger MakeLedger(size_t accounts) {
  Ledger ledger;
  std::vector<AccountSpec> specs{{.id = kSponsor, .kind = AccountKind::kSponsor}};
  for (size_t account_idx = 0; account_idx < accounts; ++account_idx) {
    specs.push_back({.id = 1000 + account_idx,
                     .kind = AccountKind::kGrant,
                     .flags = kDebitsMustNotExceedCredits});
  }
  (void)ledger.CreateAccounts(specs, 1);
  std::vector<TransferSpec> funding;
  for (size_t account_idx = 0; account_idx < accounts; ++account_idx) {
    funding.push_back({.id = (Id128{1} << 100) + account_idx,
                       .debit_account_id = kSponsor,
                       .credit_account_id = 1000 + account_idx,
                       .amount = Credits::FromWhole(1'000'000'000)});
  }
  (void)ledger.CreateTransfers(funding, 2);
  return ledger;
}

void BM_CreateTransfers(benchmark::State& state) {
  const auto accounts = static_cast<size_t>(state.range(0));
  const auto batch = static_cast<size_t>(state.range(1));
  Ledger ledger = MakeLedger(accounts);
  std::mt19937_64 rng(42);
  std::vector<TransferSpec> specs(batch);
  Id128 next_id = 10;
  int64_t now_us = 10;
  for (auto _ : state) {
    state.PauseTiming();
    for (TransferSpec& spec : specs) {
      const Id128 debit = 1000 + rng() % accounts;
      Id128 credit = 1000 + rng() % accounts;
      if (credit == debit) credit = kSponsor;
      spec = {.id = next_id++,
              .debit_account_id = debit,
              .credit_account_id = credit,
              .amount = Credits::FromMicro(static_cast<int64_t>(1 + rng() % 1'000'000))};
    }
    state.ResumeTiming();
    benchmark::DoNotOptimize(ledger.CreateTransfers(specs, ++now_us));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
}
BENCHMARK(BM_CreateTransfers)->Args({10'000, 8'000})->Args({100'000, 8'000});

void BM_HoldThenPost(benchmark::State& state) {
  const auto accounts = static_cast<size_t>(state.range(0));
  Ledger ledger = MakeLedger(accounts);
  std::mt19937_64 rng(7);
  constexpr size_t kPairs = 4'000;
  std::vector<TransferSpec> holds(kPairs);
  std::vector<TransferSpec> posts(kPairs);
  Id128 next_id = 10;
  int64_t now_us = 10;
  for (auto _ : state) {
    state.PauseTiming();
    for (size_t pair_idx = 0; pair_idx < kPairs; ++pair_idx) {
      const Id128 hold_id = next_id++;
      holds[pair_idx] = {.id = hold_id,
                         .debit_account_id = 1000 + rng() % accounts,
                         .credit_account_id = kSponsor,
                         .amount = Credits::FromWhole(10),
                         .timeout_s = 3600,
                         .flags = kPending};
      posts[pair_idx] = {.id = next_id++,
                         .amount = Credits::FromWhole(3),
                         .pending_id = hold_id,
                         .flags = kPostPending};
    }
    state.ResumeTiming();
    benchmark::DoNotOptimize(ledger.CreateTransfers(holds, ++now_us));
    benchmark::DoNotOptimize(ledger.CreateTransfers(posts, ++now_us));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(2 * kPairs));
}
BENCHMARK(BM_HoldThenPost)->Arg(10'000);

}  // namespace
}  // namespace atrium::ledger
