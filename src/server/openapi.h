// The OpenAPI 3 description of the API, built from the route table (api.h) so that it
// cannot drift from what the server answers. Served at /v1/openapi.json and kept in
// docs/openapi.json (`atrium serve --print-openapi`; a test compares the two).
#pragma once

#include <nlohmann/json.hpp>

namespace atrium::server {

nlohmann::json OpenApiDocument();

}  // namespace atrium::server
