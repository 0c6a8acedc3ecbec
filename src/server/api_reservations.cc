// The API's reads of reservations (docs/api-roles.md).
#include "server/api_internal.h"

namespace atrium::server {

std::vector<Route> ReservationReadRoutes() { return {}; }

}  // namespace atrium::server
