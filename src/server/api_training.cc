// The API's reads of training (docs/api-roles.md).
#include "server/api_internal.h"

namespace atrium::server {

std::vector<Route> TrainingReadRoutes() { return {}; }

}  // namespace atrium::server
