// The API's reads of datasets (docs/api-roles.md).
#include "server/api_internal.h"

namespace atrium::server {

std::vector<Route> DatasetReadRoutes() { return {}; }

}  // namespace atrium::server
