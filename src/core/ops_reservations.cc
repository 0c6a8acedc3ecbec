// The op table's part for capacity reservations: Capacity reservations (docs/reservations.md).
#include "core/ops_internal.h"

namespace atrium::core {

std::vector<OpSpec> OpHandlers::ReservationTable() { return {}; }

}  // namespace atrium::core
