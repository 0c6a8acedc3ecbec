// How the service answers an Error: the HTTP status each stable code maps to, and the one
// JSON shape every error takes: {"error": {"code": "...", "message": "...", "field": "..."}}.
// An internal error never carries its details to the client (they go to the log).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace atrium::server {

int HttpStatusOf(ErrorCode code);
nlohmann::json ErrorBody(const Error& error);

}  // namespace atrium::server
