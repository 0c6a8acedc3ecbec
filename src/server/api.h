// The API's routes as data: method, path template, the roles that pass the route's
// check, and either the state change it asks for (an AppState op) or the read that
// answers it. The server registers them, docs/api-roles.md is printed from them
// (`atrium serve --routes-markdown`), and the role test walks that document.
//
// A route's roles are only its first check: the op or the read then checks the resource
// (a reviewer sees only the proposals assigned to them, a researcher only their own
// grants, ...), answering 404 for what the caller may not see.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "core/app_state.h"

namespace atrium::server {

using RoleMask = uint32_t;
constexpr RoleMask RoleBit(core::Role role) { return RoleMask{1} << static_cast<int>(role); }

struct ReadRequest {
  const core::AppState& app;
  const core::Actor& actor;
  const std::map<std::string, std::string>& params;  // path parameters, checked ids
  const std::multimap<std::string, std::string>& query;
  // The service's data directory (the job logs route reads DATA/jobs/<job>/...).
  std::string_view data_dir = {};
};
using ReadFn = Result<nlohmann::json> (*)(const ReadRequest&);

struct Route {
  std::string_view method;  // GET, POST, DELETE
  std::string_view path;    // "/v1/programs/{program}/calls/{call}/open"
  std::string_view name;    // the operation id (OpenAPI, metrics)
  RoleMask roles = 0;
  // A change: the AppState op; path parameters become fields of the same name.
  std::string_view op;
  // A change whose body is one object that goes under this field ("proposal").
  std::string_view body_field;
  int success_status = 200;
  // A read.
  ReadFn read = nullptr;
  std::string_view summary;
};

const std::vector<Route>& Routes();

// The route x role table, as Markdown (docs/api-roles.md).
std::string RoutesMarkdown();

// Pagination and filters shared by every list: ?limit= (1..1000, default 100) and
// ?after=<cursor from the previous page's "next">.
inline constexpr size_t kPageDefault = 100;
inline constexpr size_t kPageMax = 1000;

}  // namespace atrium::server
