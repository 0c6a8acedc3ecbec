// Capacity reservations for `atrium simulate --capacity-reservations FILE`
// (docs/reservations.md, docs/simulate.md): bookings made during the run, so a program
// sees what a booking policy costs everyone else in waits and utilisation. One booking a
// line, after a header naming the columns (any order; unknown columns are refused):
//
//   grant,accelerator,nodes,chips,start_s,end_s,booked_at_s,one_group
//   g1,trn1,4,,86400,172800,0,1
//   ,trn1,2,,3600,7200,0,0        # no grant: maintenance
//
// grant (empty: maintenance), accelerator (empty: the cluster's default), nodes or chips
// (one of them), start_s and end_s are required; booked_at_s (default 0: before the first
// job) and one_group (0 or 1, default 0) are optional.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "sched/capacity_reservation.h"

namespace atrium::sim {

struct BookingSpec {
  int64_t booked_at_s = 0;
  sched::BookingRequest request;
};

inline constexpr size_t kBookingsMax = 100'000;

// kParseError naming the line and column of the first problem.
Result<std::vector<BookingSpec>> ParseBookingsCsv(std::string_view text);

}  // namespace atrium::sim
