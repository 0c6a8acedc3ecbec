// Request metrics in Prometheus' text format: requests by operation and status, request
// latency histograms by operation, and the gauges the server reads when scraped (journal
// queue length, chips busy, jobs waiting, durable-append latency), and where award
// solves ran.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "journal/committer.h"
#include "journal/mutex.h"

namespace atrium::server {

class Metrics {
 public:
  static constexpr std::array<double, 11> kBoundsS = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,  0.5,   1.0};
  // Safe from any thread.
  void Observe(std::string_view operation, int status, double seconds) ABSL_LOCKS_EXCLUDED(mutex_);
  // An award draft or override whose solver ran on a request thread (its answers entered
  // with the command), or on the apply thread (the fallback when the call changed twice
  // while it was being solved).
  void CountSolve(bool off_apply_thread) {
    (off_apply_thread ? solves_off_apply_ : solves_on_apply_)
        .fetch_add(1, std::memory_order_relaxed);
  }
  // What the store's open found: the snapshot it started from (0: the journal alone) and
  // the damaged snapshots it passed over (docs/journal.md, "Recovery").
  void SetRecovery(uint64_t recovered_from_seq, uint64_t snapshots_passed_over) {
    recovered_from_seq_.store(recovered_from_seq, std::memory_order_relaxed);
    snapshots_passed_over_.store(snapshots_passed_over, std::memory_order_relaxed);
  }
  std::string Render(size_t queue_depth, int64_t chips_busy, int64_t jobs_waiting,
                     const journal::CommitterStats& committer) const ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  struct Latency {
    std::array<uint64_t, kBoundsS.size() + 1> le{};  // cumulative; the last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  std::atomic<uint64_t> solves_off_apply_{0};
  std::atomic<uint64_t> solves_on_apply_{0};
  std::atomic<uint64_t> recovered_from_seq_{0};
  std::atomic<uint64_t> snapshots_passed_over_{0};
  mutable journal::Mutex mutex_;
  struct PerOperation {
    std::map<int, uint64_t> requests_by_status;
    Latency latency;
  };
  // By operation; looked up by string_view, so an observation allocates nothing once its
  // operation and status were seen.
  std::map<std::string, PerOperation, std::less<>> operations_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace atrium::server
