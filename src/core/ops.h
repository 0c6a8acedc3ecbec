// The op table: every change the core accepts, declared once. Each op names its summary,
// the roles that pass its first check, its fields (typed and bounded, required or with a
// default, nested objects with their own fields), the shape of its answer, its HTTP
// route (if it has one) and its handler. That one declaration drives:
//   - request validation in AppState::Apply (unknown field, missing field, wrong type,
//     out of range: ErrorCode and `field` as the API documents them),
//   - AppState::Dispatch (a lookup here, then the handler),
//   - the POST/DELETE routes of the API (server/api.cc) and so docs/api-roles.md,
//   - the OpenAPI request and response schemas (server/openapi.cc),
//   - the CLI client's flags and --help (cli/client_command.cc) and the offline
//     `atrium program` commands, which submit the same ops to an embedded durable core.
//
// The roles are only a first check: handlers then check the resource (a reviewer sees
// only the proposals assigned to them, ...), answering not_found for what the caller may
// not see.
//
//   const OpSpec* spec = FindOp("call_open");
//   ATRIUM_TRY(ValidateFields(spec->fields, command, ""));
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "core/app_state.h"

namespace atrium::core {

using RoleSet = uint32_t;
constexpr RoleSet RoleIn(Role role) { return RoleSet{1} << static_cast<int>(role); }
inline constexpr RoleSet kAnyRole = (RoleSet{1} << kRoleCount) - 1;
inline constexpr RoleSet kSignedInRoles = kAnyRole & ~RoleIn(Role::kPublic);
inline constexpr RoleSet kStaffRoles = RoleIn(Role::kAdmin) | RoleIn(Role::kOfficer);

enum class FieldKind : uint8_t {
  kId,          // ValidId, no slash
  kPath,        // ValidId with / between segments (obligation ids)
  kText,        // a string of at most max_bytes
  kEnum,        // one of `values`
  kInt,         // an integer in [min, max]
  kAmount,      // a non-negative decimal string of credits ("12.5")
  kBool,        // true or false
  kIds,         // an array of ids, at most max_items
  kTexts,       // an array of strings of at most 64 KiB each, at most max_items
  kInts,        // an array of integers, at most max_items (scores)
  kObject,      // an object with its own `fields`
  kObjectList,  // an array of such objects, at most max_items
};
// The JSON Schema / human name of a kind ("id", "integer", "array of ids", ...).
std::string_view ToString(FieldKind kind);

struct FieldSpec {
  std::string_view name;
  FieldKind kind = FieldKind::kText;
  bool required = false;
  std::string_view help;
  size_t max_bytes = 0;  // kText, kEnum
  int64_t min = 0;       // kInt
  int64_t max = 0;       // kInt
  size_t max_items = 0;  // lists
  // The default of an optional kInt or kBool (else: absent means empty / zero / false).
  int64_t default_int = 0;
  std::vector<std::string_view> values;  // kEnum
  std::vector<FieldSpec> fields;         // kObject, kObjectList
  // Filled in by the service for every request (a token's id, salt and hash; a program's
  // seal secret): never sent by a client, so neither OpenAPI nor the CLI offers it.
  bool drawn = false;
  // A flag given as a file's text (a TOML definition) in the CLI.
  bool from_file = false;
};

// A field of an op's answer.
struct ResultField {
  std::string_view name;
  std::string_view type;  // "string", "integer", "boolean", "amount", "id"
  std::string_view help;
};

// How the API reaches an op (none for the clock's tick and offline-only ops).
struct OpRoute {
  std::string_view method;  // "POST" or "DELETE"; empty: no route
  std::string_view path;    // "/v1/programs/{program}/calls/{call}/open"
  // The request body is one object that becomes this field ("proposal").
  std::string_view body_field;
  int success_status = 200;
};

// What a handler gets: the whole command (validated against the op's fields), who asks
// and the logical time. `args` reads validated fields with their declared defaults.
class OpArgs {
 public:
  OpArgs(const nlohmann::json& object, std::span<const FieldSpec> fields)
      : object_(object), fields_(fields) {}
  bool Has(std::string_view name) const;
  std::string Text(std::string_view name) const;  // "" when absent
  int64_t Int(std::string_view name) const;       // its default when absent
  bool Bool(std::string_view name) const;
  Credits Amount(std::string_view name) const;  // zero when absent
  std::vector<std::string> Strings(std::string_view name) const;
  std::vector<int64_t> Ints(std::string_view name) const;
  OpArgs Object(std::string_view name) const;
  // The items of a kObjectList, each with its fields.
  std::vector<OpArgs> Objects(std::string_view name) const;
  const nlohmann::json& raw() const { return object_; }

 private:
  const FieldSpec* Find(std::string_view name) const;
  const nlohmann::json& object_;
  std::span<const FieldSpec> fields_;
};

struct OpRequest {
  const nlohmann::json& command;
  const Actor& actor;
  int64_t now_us;
  OpArgs args;
  // Fields the handler adds to the command as journaled (results it computed, such as the
  // solver's answers, so a replay applies them instead of computing again); none when the
  // caller journals nothing.
  nlohmann::json* journaled = nullptr;
};

using OpHandler = Result<nlohmann::json> (*)(AppState& app, const OpRequest& request);

struct OpSpec {
  std::string_view name;
  std::string_view summary;
  RoleSet roles = 0;
  std::vector<FieldSpec> fields;
  std::vector<ResultField> result;
  OpRoute route;
  OpHandler handler = nullptr;
  // The handler reads and checks its fields itself, in an order of its own (the job ops:
  // AppState::SubmitJob looks up the grant before it reads chips, so an unknown grant is
  // not_found whatever the rest says). Dispatch then checks only for unknown fields; the
  // declared fields still drive routes, OpenAPI and the CLI, and must match the handler's.
  bool checks_own_fields = false;
  // The CLI client's command ("call open"): group and name; empty name: a top-level one.
  std::string_view cli_group;
  std::string_view cli_name;
  // Path parameters the CLI takes as positional arguments (besides {program}).
  std::vector<std::string_view> cli_positional;
};

// Every op, in a stable order.
const std::vector<OpSpec>& Ops();
// nullptr for an unknown op.
const OpSpec* FindOp(std::string_view name);

// A tape's answers as a command's `solver_answers` field (decision_draft and
// decision_override; docs/journal.md "Results, not requests to recompute").
nlohmann::json SolverAnswersJson(const program::SolverTape& tape);

// The fields an op accepts besides op, actor and idempotency_key; nullptr for an unknown
// op.
const std::vector<FieldSpec>* OpFieldSpecs(std::string_view op);

// Checks `object` against `fields`: no unknown field, every required one present, every
// one of its kind and within its bounds. `prefix` names nested fields ("proposal").
// `top_level` skips op, actor and idempotency_key.
Status ValidateFields(std::span<const FieldSpec> fields, const nlohmann::json& object,
                      const std::string& prefix, bool top_level = false);

// The JSON Schema of a field list (OpenAPI): typed, bounded, required listed.
nlohmann::json FieldsSchema(std::span<const FieldSpec> fields, bool skip_drawn = true);
// The JSON Schema of an op's answer.
nlohmann::json ResultSchema(const OpSpec& spec);

// The op reference as Markdown: one section per op with its fields and answer
// (docs/api-ops.md, and the CLI's help text).
std::string OpsMarkdown();
// A field's line of help: kind, bounds, default ("integer 1-1000000, required").
std::string FieldHelp(const FieldSpec& field);

}  // namespace atrium::core
