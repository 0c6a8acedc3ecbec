// Clock: where the service takes the time that enters the core. Every command the
// server submits carries `now_us` from its Clock, and the tick loop asks it whether work
// is due; nothing in the core reads a clock. Production uses SystemClock; tests use a
// ManualClock that they advance, so they drive time instead of sleeping
// (`atrium serve --clock manual --allow-test-clock`, docs/service.md "The clock").
//
// The transport's timeouts and the rate limiter measure intervals on the monotonic clock,
// which a ManualClock does not touch: a test that advances the day does not time out
// its own connections.
//
//   auto clock = std::make_shared<ManualClock>(SystemClock().NowUs());
//   clock->Advance(3'600'000'000);  // one hour later, at once
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace atrium::server {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch (UTC).
  virtual int64_t NowUs() const = 0;
  // Whether this is a test clock (ManualClock).
  virtual bool manual() const { return false; }
};

class SystemClock final : public Clock {
 public:
  int64_t NowUs() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// Stands still until advanced. Safe from any thread.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_us) : now_us_(start_us) {}
  int64_t NowUs() const override { return now_us_.load(); }
  bool manual() const override { return true; }
  // Moves the clock forward by `delta_us` (>= 0; never back) and returns the new time.
  int64_t Advance(int64_t delta_us) {
    return now_us_.fetch_add(delta_us < 0 ? 0 : delta_us) + (delta_us < 0 ? 0 : delta_us);
  }

 private:
  std::atomic<int64_t> now_us_;
};

}  // namespace atrium::server
