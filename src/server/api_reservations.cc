// The API's reads of capacity reservations (docs/reservations.md, docs/api-roles.md).
// Everyone, the public included, sees the cluster's busy calendar: each live booking's
// pool, size and window, without its owner. Staff and operators see every booking in
// full; a researcher the bookings of the grants they belong to.
#include "core/reservations.h"
#include "server/api_internal.h"

namespace atrium::server {

using namespace api_internal;  // NOLINT: the reads' helpers

namespace {

Result<json> ListReservations(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const core::AppState& app = request.app;
  if (app.scheduler() == nullptr) return json{{"items", json::array()}, {"next", nullptr}};
  const std::string state = QueryValue(request, "state");
  const std::string program = QueryValue(request, "program");
  const std::string grant = QueryValue(request, "grant");
  const std::string kind = QueryValue(request, "kind");
  if (!state.empty() && state != "booked" && state != "active" && state != "ended" &&
      state != "cancelled") {
    return Error{ErrorCode::kInvalidArgument, "state is booked, active, ended or cancelled",
                 "state"};
  }
  if (!kind.empty() && kind != "booking" && kind != "maintenance") {
    return Error{ErrorCode::kInvalidArgument, "kind is booking or maintenance", "kind"};
  }
  const auto keep = [&](const sched::CapacityBooking& booking) {
    const bool full = core::CanSeeBooking(app, request.actor, booking);
    // Others' bookings only as busy windows: live ones, unfiltered by owner.
    if (!full && (!booking.live() || !program.empty() || !grant.empty())) return false;
    if (!state.empty() && sched::ToString(booking.state) != state) return false;
    if (!kind.empty() && (booking.grant < 0) != (kind == "maintenance")) return false;
    if (!program.empty() || !grant.empty()) {
      const core::SchedGrant owner = core::BookingOwner(app, booking);
      if ((!program.empty() && owner.program != program) ||
          (!grant.empty() && owner.grant != grant)) {
        return false;
      }
    }
    return true;
  };
  const auto view = [&](const sched::CapacityBooking& booking) {
    return core::BookingJson(app, booking, !core::CanSeeBooking(app, request.actor, booking));
  };
  return ListVector(app.scheduler()->bookings(), page, keep, view);
}

Result<json> ShowReservation(const ReadRequest& request) {
  const std::string& id = request.params.at("reservation");
  const auto index = core::FindBooking(request.app, id);
  if (!index || !core::CanSeeBooking(request.app, request.actor,
                                     request.app.scheduler()->bookings()[*index])) {
    return Error{ErrorCode::kNotFound, "no reservation " + id, "reservation"};
  }
  return core::BookingJson(request.app, request.app.scheduler()->bookings()[*index], false);
}

}  // namespace

std::vector<Route> ReservationReadRoutes() {
  return {{"GET",
           "/v1/reservations",
           "reservation_list",
           kAll,
           {},
           {},
           200,
           ListReservations,
           "Capacity reservations: one's own (grants one belongs to; staff and operators all) "
           "in full, everyone's live ones as anonymous busy windows; filter ?state= ?kind= "
           "?program= ?grant="},
          {"GET",
           "/v1/reservations/{reservation}",
           "reservation_show",
           kSignedIn,
           {},
           {},
           200,
           ShowReservation,
           "A capacity reservation one may see"}};
}

}  // namespace atrium::server
