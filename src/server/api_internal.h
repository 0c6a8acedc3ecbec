// What the files of the API's reads share (api.cc and api_*.cc): the role masks, paging
// and the lookups of a route's program and grant. Not for use outside src/server.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "core/access.h"
#include "program/program_state.h"
#include "server/api.h"

namespace atrium::server::api_internal {

using core::Role;
using nlohmann::json;

constexpr RoleMask kAll = (RoleMask{1} << core::kRoleCount) - 1;
constexpr RoleMask kSignedIn = kAll & ~RoleBit(Role::kPublic);
constexpr RoleMask kStaff = RoleBit(Role::kAdmin) | RoleBit(Role::kOfficer);
constexpr RoleMask kResearchers = RoleBit(Role::kResearcher);
constexpr RoleMask kReviewers = RoleBit(Role::kReviewer);
constexpr RoleMask kStudents = RoleBit(Role::kStudent);

// ---- paging ------------------------------------------------------------------------

struct Page {
  size_t limit = kPageDefault;
  std::string after;
};

inline std::string QueryValue(const ReadRequest& request, const std::string& key) {
  const auto found = request.query.find(key);
  return found == request.query.end() ? std::string() : found->second;
}

inline Result<Page> PageOf(const ReadRequest& request) {
  Page page;
  const std::string limit = QueryValue(request, "limit");
  if (!limit.empty()) {
    size_t value = 0;
    for (const char c : limit) {
      if (c < '0' || c > '9' || value > kPageMax) {
        return Error{ErrorCode::kInvalidArgument, "limit must be 1 to 1000", "limit"};
      }
      value = value * 10 + static_cast<size_t>(c - '0');
    }
    if (value < 1 || value > kPageMax) {
      return Error{ErrorCode::kInvalidArgument, "limit must be 1 to 1000", "limit"};
    }
    page.limit = value;
  }
  page.after = QueryValue(request, "after");
  if (page.after.size() > 256) return Error{ErrorCode::kInvalidArgument, "bad cursor", "after"};
  return page;
}

// A page of a map ordered by key: the cursor is the last key shown.
template <class Map, class Keep, class View>
json ListMap(const Map& map, const Page& page, Keep keep, View view) {
  json items = json::array();
  auto it = page.after.empty() ? map.begin() : map.upper_bound(page.after);
  std::string last;
  bool more = false;
  for (; it != map.end(); ++it) {
    if (!keep(it->second)) continue;
    if (items.size() == page.limit) {
      more = true;
      break;
    }
    items.push_back(view(it->second));
    last = it->first;
  }
  return {{"items", std::move(items)}, {"next", more ? json(last) : json(nullptr)}};
}

// A page of a vector: the cursor is the index after the last item shown.
template <class Vector, class Keep, class View>
Result<json> ListVector(const Vector& vector, const Page& page, Keep keep, View view) {
  size_t start = 0;
  if (!page.after.empty()) {
    for (const char c : page.after) {
      if (c < '0' || c > '9' || start > vector.size()) {
        return Error{ErrorCode::kInvalidArgument, "bad cursor", "after"};
      }
      start = start * 10 + static_cast<size_t>(c - '0');
    }
  }
  json items = json::array();
  bool more = false;
  size_t next = start;
  for (size_t i = start; i < vector.size(); ++i) {
    if (!keep(vector[i])) continue;
    if (items.size() == page.limit) {
      more = true;
      break;
    }
    items.push_back(view(vector[i]));
    next = i + 1;
  }
  return json{{"items", std::move(items)},
              {"next", more ? json(std::to_string(next)) : json(nullptr)}};
}

// ---- lookups -----------------------------------------------------------------------

inline Result<const program::ProgramState*> ProgramOf(const ReadRequest& request) {
  const std::string& id = request.params.at("program");
  const program::ProgramState* program = request.app.FindProgram(id);
  if (program == nullptr) return Error{ErrorCode::kNotFound, "no program " + id, "program"};
  return program;
}

inline Result<const program::Grant*> GrantOf(const ReadRequest& request,
                                             const program::ProgramState& program) {
  const std::string& id = request.params.at("grant");
  const auto found = program.grants().find(id);
  if (found == program.grants().end() || !core::CanSeeGrant(request.actor, found->second)) {
    return Error{ErrorCode::kNotFound, "no grant " + id, "grant"};
  }
  return &found->second;
}

}  // namespace atrium::server::api_internal

namespace atrium::server {

// The reads of capabilities kept in files of their own (api_*.cc), added to Routes().
std::vector<Route> ReservationReadRoutes();
std::vector<Route> TrainingReadRoutes();
std::vector<Route> DatasetReadRoutes();

}  // namespace atrium::server
