// Capacity reservations (bookings): whole nodes of one pool set aside for a window
// [start_s, end_s), for one grant (a booking, paid for) or for nobody (maintenance). Not
// to be confused with backfill's reservations (reservation.cc), which are the scheduler's
// own promises to blocked jobs and are recomputed at every pass; a booking is made by a
// user ahead of time, pins its nodes when it is made, and lasts until its window ends or
// it is cancelled.
//
// The rules the scheduler keeps (capacity_reservation.cc):
//   - at booking, the nodes are chosen among the pool's nodes that no live booking holds
//     in an overlapping window and whose runs end by start_s (else kNoCapacity); inside
//     one topology group when asked, else in as few groups as possible;
//   - a booked node leaves the pool's main index: until the window starts it takes only
//     jobs that end by start_s (of anyone, charged as usual), so the nodes are free at
//     the start and backfill can never delay a booking; inside the window only the
//     owner's jobs run there, free of charge, and only those that end by end_s; the
//     owner's jobs are offered the booked nodes before any other node;
//   - a maintenance booking takes nobody's jobs inside its window;
//   - when the window ends (or the booking is cancelled) the nodes return to everyone.
// Ledger: the price (the window's chip-hours at the type's price) is held from the
// grant's account at booking (a pending transfer coded `booking_code`, user_data = the
// booking's number), posted at the start, voided at a cancellation before the start (or
// a fee is posted and the rest released). Maintenance costs nothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/credits.h"
#include "base/id.h"

namespace atrium::sched {

enum class BookingState : uint8_t {
  kBooked,     // before its window: the nodes drain towards start_s
  kActive,     // inside its window (charged)
  kEnded,      // its window is over (or it was cancelled after its start)
  kCancelled,  // cancelled before its start
};
std::string_view ToString(BookingState state);

struct BookingRequest {
  std::string grant;        // a scheduler grant; empty = maintenance (no owner, no charge)
  std::string accelerator;  // "" = the cluster's default type
  int64_t chips = 0;        // rounded up to whole nodes; or
  int64_t nodes = 0;        // a count of whole nodes (one of the two, > 0)
  bool one_group = false;   // all nodes inside one topology group
  // Maintenance only: these nodes (cluster indexes) instead of a count. Runs on them that
  // would pass start_s are refused (kNoCapacity) unless `force`, which asks them to yield
  // at start_s (TakeYieldNotices).
  std::vector<uint32_t> node_list;
  bool force = false;
  int64_t start_s = 0;
  int64_t end_s = 0;
  std::string booked_by;  // who asked (a label kept with the booking)
  std::string note;       // why (maintenance's reason)
};

struct CapacityBooking {
  std::string id;  // the caller's name for it
  std::string booked_by;
  std::string note;
  int32_t grant = -1;  // scheduler grant; -1 = maintenance
  uint32_t pool = 0;
  std::vector<uint32_t> nodes;  // cluster node indexes, ascending
  int64_t start_s = 0;
  int64_t end_s = 0;
  int64_t booked_at_s = 0;
  int64_t closed_at_s = -1;  // when it ended, or was cancelled
  BookingState state = BookingState::kBooked;
  Credits price;    // held at booking (zero for maintenance)
  Credits charged;  // posted: the price at the start, or a cancellation fee
  Id128 hold_id = kIdNone;
  // The owner's use of its window: chip-seconds of the runs it ran on the nodes.
  int64_t used_chip_s = 0;
  // Chip-seconds of others' runs on the nodes before the window (they ended by start_s).
  int64_t lent_chip_s = 0;

  int64_t chips(int chips_per_node) const {
    return static_cast<int64_t>(nodes.size()) * chips_per_node;
  }
  bool live() const { return state == BookingState::kBooked || state == BookingState::kActive; }
};

// A post the scheduler made on a booking's hold (at its start, or a cancellation fee):
// the service adds it to the grant's spent.
struct BookingCharge {
  uint32_t booking = 0;
  Credits amount;
};

}  // namespace atrium::sched
