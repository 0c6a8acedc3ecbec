#include "server/openapi.h"

#include <string>
#include <vector>

#include "core/ops.h"
#include "server/api.h"

namespace atrium::server {
namespace {

using nlohmann::json;

json ErrorResponse(const char* description) {
  return {
      {"description", description},
      {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
}

}  // namespace

json OpenApiDocument() {
  json paths = json::object();
  for (const Route& route : Routes()) {
    json operation = {{"operationId", route.name}, {"summary", route.summary}};
    json roles = json::array();
    for (int role = 0; role < core::kRoleCount; ++role) {
      if ((route.roles & RoleBit(static_cast<core::Role>(role))) != 0) {
        roles.push_back(core::ToString(static_cast<core::Role>(role)));
      }
    }
    operation["x-atrium-roles"] = roles;
    if ((route.roles & RoleBit(core::Role::kPublic)) == 0) {
      operation["security"] = json::array({{{"bearer", json::array()}}});
    }
    json parameters = json::array();
    const std::string path(route.path);
    std::vector<std::string> names;
    for (size_t i = path.find('{'); i != std::string::npos; i = path.find('{', i + 1)) {
      names.push_back(path.substr(i + 1, path.find('}', i) - i - 1));
      parameters.push_back({{"name", names.back()},
                            {"in", "path"},
                            {"required", true},
                            {"schema", {{"type", "string"}, {"maxLength", 128}}}});
    }
    if (route.read != nullptr && route.method == "GET") {
      // Lists page with ?limit= and ?after=; the usage report has its own parameters.
      const std::vector<const char*> query =
          route.name == "usage_report"
              ? std::vector<const char*>{"from", "to", "step", "group_by", "series"}
              : std::vector<const char*>{"limit", "after"};
      for (const char* name : query) {
        parameters.push_back({{"name", name},
                              {"in", "query"},
                              {"required", false},
                              {"schema", {{"type", "string"}}}});
      }
    }
    if (!parameters.empty()) operation["parameters"] = parameters;
    json ok_schema = {{"type", "object"}};
    if (const core::OpSpec* spec = route.read == nullptr ? core::FindOp(route.op) : nullptr) {
      // The body: the op's fields but those in the path and those the server draws.
      std::vector<core::FieldSpec> body_fields;
      for (const core::FieldSpec& field : spec->fields) {
        if (field.drawn) continue;
        if (std::find(names.begin(), names.end(), field.name) != names.end()) continue;
        body_fields.push_back(field);
      }
      json schema = core::FieldsSchema(body_fields);
      bool required = schema.contains("required");
      if (!route.body_field.empty()) {
        schema = schema["properties"][std::string(route.body_field)];
        required = true;
      }
      operation["requestBody"] = {{"required", required},
                                  {"content", {{"application/json", {{"schema", schema}}}}}};
      operation["parameters"].push_back({{"name", "Idempotency-Key"},
                                         {"in", "header"},
                                         {"required", false},
                                         {"schema", {{"type", "string"}, {"maxLength", 255}}}});
      ok_schema = core::ResultSchema(*spec);
    }
    operation["responses"] = {
        {std::to_string(route.success_status),
         {{"description", "ok"}, {"content", {{"application/json", {{"schema", ok_schema}}}}}}},
        {"400", ErrorResponse("malformed request: bad JSON, invalid UTF-8, JSON nested deeper "
                              "than 64 levels, invalid id, conflicting Content-Length or "
                              "Transfer-Encoding")},
        {"401", ErrorResponse("no valid token")},
        {"403", ErrorResponse("the role may not do this")},
        {"404", ErrorResponse("no such resource, or not visible to the caller")},
        {"409", ErrorResponse("conflicts with the current state")},
        {"413", ErrorResponse("body larger than the limit (1 MiB by default)")},
        {"414", ErrorResponse("request target longer than 8 KiB")},
        {"422", ErrorResponse("invalid field: wrong type, out of range, unknown field")},
        {"429", ErrorResponse("rate limited, or token creations over the hourly quota")},
        {"431", ErrorResponse("header fields over 64 KiB or more than 100 of them")},
        {"503", ErrorResponse("journal queue full, store unavailable or too many connections; "
                              "see Retry-After")}};
    std::string method = std::string(route.method);
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    paths[path][method] = std::move(operation);
  }
  return {{"openapi", "3.0.3"},
          {"info",
           {{"title", "Atrium API"},
            {"version", "1"},
            {"description",
             "Research-compute grant programs and the shared accelerator cluster. Amounts are "
             "decimal strings of credits with at most six decimals; times are microseconds "
             "since 1970 (*_us) or seconds (*_s). Lists return {items, next}: pass next as "
             "?after= for the following page."}}},
          {"paths", std::move(paths)},
          {"components",
           {{"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}},
            {"schemas",
             {{"Error",
               {{"type", "object"},
                {"required", json::array({"error"})},
                {"properties",
                 {{"error",
                   {{"type", "object"},
                    {"required", json::array({"code", "message"})},
                    {"properties",
                     {{"code", {{"type", "string"}}},
                      {"message", {{"type", "string"}}},
                      {"field", {{"type", "string"}}}}}}}}}}}}}}}};
}

}  // namespace atrium::server
