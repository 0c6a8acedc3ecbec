// Capacity reservations as the service shows them (docs/reservations.md): a booking's id
// ("R<n>"), its program grant, who may see it, and its JSON. The bookings themselves live
// in the scheduler (sched/capacity_reservation.h); the ops that make and cancel them are
// in ops_reservations.cc, which also implements these.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/app_state.h"
#include "sched/capacity_reservation.h"

namespace atrium::core {

// The scheduler's number of the booking "R<n>", if it exists.
std::optional<uint32_t> FindBooking(const AppState& app, std::string_view id);
// The program grant that owns the booking (both empty for maintenance).
SchedGrant BookingOwner(const AppState& app, const sched::CapacityBooking& booking);
// Staff and operators see every booking; a researcher those of the grants they belong to.
bool CanSeeBooking(const AppState& app, const Actor& actor, const sched::CapacityBooking& booking);
// The booking as the API shows it. `anonymous`: only the pool, the node count and the
// window (the public's busy calendar).
nlohmann::json BookingJson(const AppState& app, const sched::CapacityBooking& booking,
                           bool anonymous);

}  // namespace atrium::core
