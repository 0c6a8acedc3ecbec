#include "core/ops.h"
#include "core/ops_internal.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include <fmt/format.h>

#include "core/access.h"
#include "program/loader.h"
#include "program/synthetic.h"
#include "program/validate.h"

namespace atrium::core {

using nlohmann::json;

namespace {

Error Invalid(std::string message, std::string field) {
  return Error{ErrorCode::kInvalidArgument, std::move(message), std::move(field)};
}

Error Forbidden(std::string message) {
  return Error{ErrorCode::kForbidden, std::move(message), ""};
}

bool Present(const json& object, std::string_view name) {
  const auto found = object.find(name);
  return found != object.end() && !found->is_null();
}

std::string Join(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

Status CheckText(const json& value, const std::string& name, size_t max_bytes) {
  if (!value.is_string()) return Invalid(name + " must be a string", name);
  if (value.get_ref<const std::string&>().size() > max_bytes) {
    return Error{ErrorCode::kTooLong,
                 name + " is longer than " + std::to_string(max_bytes) + " bytes", name};
  }
  return OkStatus();
}

Status CheckValue(const FieldSpec& spec, const json& value, const std::string& name);

Status CheckObject(std::span<const FieldSpec> fields, const json& value, const std::string& name) {
  if (!value.is_object()) return Invalid("expected an object", name);
  return ValidateFields(fields, value, name);
}

Status CheckValue(const FieldSpec& spec, const json& value, const std::string& name) {
  switch (spec.kind) {
    case FieldKind::kId:
    case FieldKind::kPath: {
      ATRIUM_TRY(CheckText(value, name, AppState::kIdBytesMax + 1));
      // An optional id given as "" is absent (clients send empty strings for "none").
      if (!spec.required && value.get_ref<const std::string&>().empty()) return OkStatus();
      if (!ValidId(value.get_ref<const std::string&>(), spec.kind == FieldKind::kPath)) {
        return Error{ErrorCode::kInvalidId,
                     name + " must be 1-128 characters of letters, digits and . _ : @ -" +
                         (spec.kind == FieldKind::kPath ? " (and / between segments)" : ""),
                     name};
      }
      return OkStatus();
    }
    case FieldKind::kText:
      return CheckText(value, name, spec.max_bytes);
    case FieldKind::kEnum: {
      ATRIUM_TRY(CheckText(value, name, spec.max_bytes));
      const auto& text = value.get_ref<const std::string&>();
      if (!spec.required && text.empty()) return OkStatus();
      if (std::find(spec.values.begin(), spec.values.end(), text) == spec.values.end()) {
        std::string list;
        for (const std::string_view option : spec.values) {
          list += (list.empty() ? "" : ", ") + std::string(option);
        }
        return Invalid(name + " must be one of " + list, name);
      }
      return OkStatus();
    }
    case FieldKind::kInt: {
      if (!value.is_number_integer()) return Invalid(name + " must be an integer", name);
      if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(spec.max)) {
        return Error{ErrorCode::kOutOfRange, name + " is out of range", name};
      }
      const auto number = value.get<int64_t>();
      if (number < spec.min || number > spec.max) {
        return Error{ErrorCode::kOutOfRange,
                     fmt::format("{} must be between {} and {}", name, spec.min, spec.max), name};
      }
      return OkStatus();
    }
    case FieldKind::kAmount: {
      ATRIUM_TRY(CheckText(value, name, 40));
      const auto& text = value.get_ref<const std::string&>();
      if (text.empty() && !spec.required) return OkStatus();
      auto parsed = Credits::Parse(text);
      if (!parsed.ok()) return Invalid(name + " must be a decimal amount such as \"12.5\"", name);
      if (parsed->is_negative()) return Invalid(name + " must not be negative", name);
      return OkStatus();
    }
    case FieldKind::kBool:
      if (!value.is_boolean()) return Invalid(name + " must be true or false", name);
      return OkStatus();
    case FieldKind::kIds:
    case FieldKind::kTexts: {
      if (!value.is_array()) return Invalid(name + " must be an array of strings", name);
      if (value.size() > spec.max_items) {
        return Error{ErrorCode::kTooLong, name + " has too many items", name};
      }
      for (const json& item : value) {
        if (!item.is_string()) return Invalid(name + " must be an array of strings", name);
        const auto& text = item.get_ref<const std::string&>();
        if (spec.kind == FieldKind::kIds ? !ValidId(text, false)
                                         : text.size() > program::ProgramState::kTextBytesMax) {
          return Error{ErrorCode::kInvalidId, name + " holds an invalid item", name};
        }
      }
      return OkStatus();
    }
    case FieldKind::kInts:
      if (!value.is_array() || value.size() > spec.max_items) {
        return Invalid(fmt::format("{} is an array of at most {} integers", name, spec.max_items),
                       name);
      }
      for (const json& item : value) {
        if (!item.is_number_integer()) return Invalid(name + " holds integers only", name);
      }
      return OkStatus();
    case FieldKind::kObject:
      return CheckObject(spec.fields, value, name);
    case FieldKind::kObjectList: {
      if (!value.is_array() || value.size() > spec.max_items) {
        return Invalid(fmt::format("{} is an array of at most {} objects", name, spec.max_items),
                       name);
      }
      // Long lists (imports) name the item that failed; short ones (a proposal's
      // chip_hours) keep the list's name, as the API always did.
      const bool indexed = spec.max_items > 16;
      for (size_t item_idx = 0; item_idx < value.size(); ++item_idx) {
        ATRIUM_TRY(CheckObject(spec.fields, value[item_idx],
                               indexed ? fmt::format("{}[{}]", name, item_idx) : name));
      }
      return OkStatus();
    }
  }
  return Invalid(name + " has an unknown kind", name);
}

}  // namespace

std::string_view ToString(FieldKind kind) {
  switch (kind) {
    case FieldKind::kId:
      return "id";
    case FieldKind::kPath:
      return "path id";
    case FieldKind::kText:
      return "text";
    case FieldKind::kEnum:
      return "one of";
    case FieldKind::kInt:
      return "integer";
    case FieldKind::kAmount:
      return "amount";
    case FieldKind::kBool:
      return "boolean";
    case FieldKind::kIds:
      return "array of ids";
    case FieldKind::kTexts:
      return "array of strings";
    case FieldKind::kInts:
      return "array of integers";
    case FieldKind::kObject:
      return "object";
    case FieldKind::kObjectList:
      return "array of objects";
  }
  return "?";
}

Status ValidateFields(std::span<const FieldSpec> fields, const json& object,
                      const std::string& prefix, bool top_level) {
  if (!object.is_object()) return Invalid("expected an object", prefix);
  for (const auto& item : object.items()) {
    // Named, not a structured binding: clang 14 (the fuzz build) cannot capture one.
    const std::string& key = item.key();
    if (top_level && (key == "op" || key == "actor" || key == "idempotency_key")) continue;
    const bool known = std::any_of(fields.begin(), fields.end(),
                                   [&](const FieldSpec& spec) { return spec.name == key; });
    if (!known) {
      const std::string name = Join(prefix, key);
      return Error{ErrorCode::kUnknownField, "unknown field " + name, name};
    }
  }
  for (const FieldSpec& spec : fields) {
    const std::string name = Join(prefix, spec.name);
    if (!Present(object, spec.name)) {
      if (spec.required) return Invalid(name + " is required", name);
      continue;
    }
    ATRIUM_TRY(CheckValue(spec, object.at(spec.name), name));
  }
  return OkStatus();
}

// ---- OpArgs ----------------------------------------------------------------------------

const FieldSpec* OpArgs::Find(std::string_view name) const {
  for (const FieldSpec& spec : fields_) {
    if (spec.name == name) return &spec;
  }
  ATRIUM_CHECK(false, "a handler read a field its op does not declare");
  return nullptr;
}

bool OpArgs::Has(std::string_view name) const { return Present(object_, name); }

std::string OpArgs::Text(std::string_view name) const {
  (void)Find(name);
  return Has(name) ? object_.at(name).get<std::string>() : std::string();
}

int64_t OpArgs::Int(std::string_view name) const {
  const FieldSpec* spec = Find(name);
  return Has(name) ? object_.at(name).get<int64_t>() : spec->default_int;
}

bool OpArgs::Bool(std::string_view name) const {
  const FieldSpec* spec = Find(name);
  return Has(name) ? object_.at(name).get<bool>() : spec->default_int != 0;
}

Credits OpArgs::Amount(std::string_view name) const {
  const std::string text = Text(name);
  if (text.empty()) return Credits::Zero();
  auto parsed = Credits::Parse(text);
  ATRIUM_CHECK(parsed.ok(), "a validated amount did not parse");
  return *parsed;
}

std::vector<std::string> OpArgs::Strings(std::string_view name) const {
  (void)Find(name);
  std::vector<std::string> out;
  if (Has(name)) {
    for (const json& item : object_.at(name)) out.push_back(item.get<std::string>());
  }
  return out;
}

std::vector<int64_t> OpArgs::Ints(std::string_view name) const {
  (void)Find(name);
  std::vector<int64_t> out;
  if (Has(name)) {
    for (const json& item : object_.at(name)) out.push_back(item.get<int64_t>());
  }
  return out;
}

OpArgs OpArgs::Object(std::string_view name) const {
  return OpArgs(object_.at(name), Find(name)->fields);
}

std::vector<OpArgs> OpArgs::Objects(std::string_view name) const {
  const FieldSpec* spec = Find(name);
  std::vector<OpArgs> out;
  if (Has(name)) {
    for (const json& item : object_.at(name)) out.emplace_back(item, spec->fields);
  }
  return out;
}

// ---- schemas and docs ------------------------------------------------------------------

json FieldsSchema(std::span<const FieldSpec> fields, bool skip_drawn) {
  json properties = json::object();
  json required = json::array();
  for (const FieldSpec& spec : fields) {
    if (skip_drawn && spec.drawn) continue;
    json schema;
    switch (spec.kind) {
      case FieldKind::kId:
      case FieldKind::kPath:
        schema = {{"type", "string"},
                  {"minLength", 1},
                  {"maxLength", AppState::kIdBytesMax},
                  {"pattern",
                   spec.kind == FieldKind::kPath ? "^[A-Za-z0-9._:@/-]+$" : "^[A-Za-z0-9._:@-]+$"}};
        break;
      case FieldKind::kText:
        schema = {{"type", "string"}, {"maxLength", spec.max_bytes}};
        break;
      case FieldKind::kEnum:
        schema = {{"type", "string"}, {"enum", spec.values}};
        break;
      case FieldKind::kInt:
        schema = {{"type", "integer"}, {"minimum", spec.min}, {"maximum", spec.max}};
        if (!spec.required) schema["default"] = spec.default_int;
        break;
      case FieldKind::kAmount:
        schema = {{"type", "string"},
                  {"pattern", "^[0-9]+(\\.[0-9]{1,6})?$"},
                  {"description", "credits, a decimal with at most six decimals"}};
        break;
      case FieldKind::kBool:
        schema = {{"type", "boolean"}};
        if (!spec.required) schema["default"] = spec.default_int != 0;
        break;
      case FieldKind::kIds:
        schema = {{"type", "array"},
                  {"maxItems", spec.max_items},
                  {"items", {{"type", "string"}, {"maxLength", AppState::kIdBytesMax}}}};
        break;
      case FieldKind::kTexts:
        schema = {{"type", "array"}, {"maxItems", spec.max_items}, {"items", {{"type", "string"}}}};
        break;
      case FieldKind::kInts:
        schema = {
            {"type", "array"}, {"maxItems", spec.max_items}, {"items", {{"type", "integer"}}}};
        break;
      case FieldKind::kObject:
        schema = FieldsSchema(spec.fields, skip_drawn);
        break;
      case FieldKind::kObjectList:
        schema = {{"type", "array"},
                  {"maxItems", spec.max_items},
                  {"items", FieldsSchema(spec.fields, skip_drawn)}};
        break;
    }
    if (!spec.help.empty()) {
      schema["description"] =
          schema.contains("description")
              ? std::string(spec.help) + "; " + schema["description"].get<std::string>()
              : std::string(spec.help);
    }
    properties[std::string(spec.name)] = std::move(schema);
    if (spec.required) required.push_back(spec.name);
  }
  json out = {{"type", "object"}, {"properties", properties}, {"additionalProperties", false}};
  if (!required.empty()) out["required"] = required;
  return out;
}

json ResultSchema(const OpSpec& spec) {
  json properties = json::object();
  json required = json::array();
  for (const ResultField& field : spec.result) {
    json schema;
    if (field.type == "integer") {
      schema = {{"type", "integer"}};
    } else if (field.type == "boolean") {
      schema = {{"type", "boolean"}};
    } else if (field.type == "amount") {
      schema = {{"type", "string"}, {"pattern", "^-?[0-9]+(\\.[0-9]{1,6})?$"}};
    } else {
      schema = {{"type", "string"}};
    }
    if (!field.help.empty()) schema["description"] = field.help;
    properties[std::string(field.name)] = std::move(schema);
    required.push_back(field.name);
  }
  return {{"type", "object"}, {"properties", properties}, {"required", required}};
}

std::string FieldHelp(const FieldSpec& spec) {
  std::string out(ToString(spec.kind));
  switch (spec.kind) {
    case FieldKind::kText:
      out += fmt::format(", at most {} bytes", spec.max_bytes);
      break;
    case FieldKind::kEnum: {
      std::string list;
      for (const std::string_view value : spec.values) {
        list += (list.empty() ? " " : ", ") + std::string(value);
      }
      out += list;
      break;
    }
    case FieldKind::kInt:
      out += fmt::format(" {}..{}", spec.min, spec.max);
      if (!spec.required) out += fmt::format(", default {}", spec.default_int);
      break;
    case FieldKind::kAmount:
      out += " (credits, e.g. \"12.5\")";
      break;
    case FieldKind::kBool:
      if (!spec.required) out += fmt::format(", default {}", spec.default_int != 0);
      break;
    case FieldKind::kIds:
    case FieldKind::kTexts:
    case FieldKind::kInts:
    case FieldKind::kObjectList:
      out += fmt::format(", at most {}", spec.max_items);
      break;
    default:
      break;
  }
  if (spec.required) out += ", required";
  if (!spec.help.empty()) out += ": " + std::string(spec.help);
  return out;
}

namespace {

void FieldsMarkdown(std::span<const FieldSpec> fields, const std::string& indent,
                    std::string* out) {
  for (const FieldSpec& spec : fields) {
    if (spec.drawn) continue;
    *out += fmt::format("{}- `{}`: {}\n", indent, spec.name, FieldHelp(spec));
    if (!spec.fields.empty()) FieldsMarkdown(spec.fields, indent + "  ", out);
  }
}

}  // namespace

std::string OpsMarkdown() {
  std::string out;
  for (const OpSpec& spec : Ops()) {
    out += fmt::format("### `{}`\n\n{}.\n\n", spec.name, spec.summary);
    if (!spec.route.method.empty()) {
      out += fmt::format("`{} {}`", spec.route.method, spec.route.path);
      if (!spec.route.body_field.empty()) {
        out += fmt::format(" (the body is the `{}` object itself)", spec.route.body_field);
      }
      out += "; ";
    } else {
      out += "No HTTP route (the core's own, or offline `atrium program`); ";
    }
    std::string roles;
    for (int role = 0; role < kRoleCount; ++role) {
      if ((spec.roles & RoleIn(static_cast<Role>(role))) != 0) {
        roles += (roles.empty() ? "" : ", ") + std::string(ToString(static_cast<Role>(role)));
      }
    }
    out += "roles: " + roles + ".\n\n";
    if (spec.fields.empty()) {
      out += "Fields: none.\n";
    } else {
      out += "Fields:\n";
      FieldsMarkdown(spec.fields, "", &out);
    }
    out += "\nAnswer:";
    for (const ResultField& field : spec.result) {
      out += fmt::format(" `{}` ({})", field.name, field.type);
    }
    out += "\n\n";
  }
  return out;
}

}  // namespace atrium::core

// ---- the table -------------------------------------------------------------------------

namespace atrium::core {
namespace ops_internal {

// The grant the request names, if the caller may see it (else not_found, as for a grant
// that does not exist).
Result<const program::Grant*> VisibleGrant(const program::ProgramState& program,
                                           const OpRequest& request) {
  const std::string id = request.args.Text("grant");
  const auto found = program.grants().find(id);
  if (found == program.grants().end() || !CanSeeGrant(request.actor, found->second)) {
    return Error{ErrorCode::kNotFound, "no grant " + id, "grant"};
  }
  return &found->second;
}

Status RequirePiOrStaff(const program::Grant& grant, const Actor& actor) {
  const bool pi = actor.role == Role::kResearcher && grant.pi == actor.person;
  if (!IsStaff(actor) && !pi) return Forbidden("only the grant's PI or program staff do this");
  return OkStatus();
}

// The grant of the obligation the request names, if the caller may see it.
Result<const program::Grant*> ObligationGrant(const program::ProgramState& program,
                                              const OpRequest& request) {
  const std::string id = request.args.Text("obligation");
  const auto found = program.obligations().find(id);
  const auto grant = found == program.obligations().end()
                         ? program.grants().end()
                         : program.grants().find(found->second.grant);
  if (grant == program.grants().end() || !CanSeeGrant(request.actor, grant->second)) {
    return Error{ErrorCode::kNotFound, "no obligation " + id, "obligation"};
  }
  return &grant->second;
}

}  // namespace ops_internal

using namespace ops_internal;  // NOLINT: the table's own helpers

Result<json> OpHandlers::TokenCreate(AppState& app, const OpRequest& request) {
  const OpArgs& args = request.args;
  const Actor& actor = request.actor;
  const int64_t now_us = request.now_us;
  const std::string id = args.Text("token_id");
  if (!args.Has("role")) return Invalid("role is required", "role");
  ATRIUM_ASSIGN_OR_RETURN(const Role role, ParseRole(args.Text("role")));
  const std::string person = args.Text("person");
  const std::string label = args.Text("label");
  const std::string salt = args.Text("salt");
  const std::string hash = args.Text("hash");
  if (role == Role::kPublic) return Invalid("a token cannot have the public role", "role");
  const bool bootstrap = app.tokens_created_ == 0 && role == Role::kAdmin;
  if (!bootstrap && actor.role != Role::kAdmin && (role != actor.role || person != actor.person)) {
    return Forbidden("only an admin creates tokens for other roles or people");
  }
  if (salt.size() != 32 || hash.size() != 64) {
    return Invalid("a token record holds a 16-byte salt and a SHA-256 hash, in hex", "hash");
  }
  // Every check reads only: a refused create changes nothing (the journal leaves it out,
  // so replay must not see a change either). A revoked token past its keep time counts
  // as gone (the purge below removes it).
  if (const auto found = app.tokens_.find(id); found != app.tokens_.end()) {
    const bool purgeable =
        found->second.revoked &&
        std::any_of(app.revoked_order_.begin(), app.revoked_order_.end(), [&](const auto& entry) {
          return entry.second == id && entry.first <= now_us - AppState::kRevokedTokenKeepUs;
        });
    if (!purgeable) return Error{ErrorCode::kAlreadyExists, "token exists", "token_id"};
  }
  const std::string creator = actor.person.empty() ? actor.token : actor.person;
  const bool counted = actor.role != Role::kAdmin && !bootstrap;
  if (counted) {
    const auto live = app.live_by_person_.find({person, role});
    if (live != app.live_by_person_.end() && live->second >= AppState::kTokensPerPersonMax) {
      return Error{ErrorCode::kLimitExceeded,
                   "at most " + std::to_string(AppState::kTokensPerPersonMax) +
                       " live tokens per person and role; revoke one first",
                   "role"};
    }
    // Creations in the last hour (the times are in order).
    const auto times = app.creations_by_creator_.find(creator);
    const size_t recent =
        times == app.creations_by_creator_.end()
            ? 0
            : static_cast<size_t>(times->second.end() - std::upper_bound(times->second.begin(),
                                                                         times->second.end(),
                                                                         now_us - 3'600'000'000LL));
    if (recent >= AppState::kTokenCreationsPerHourMax) {
      return Error{ErrorCode::kRateLimited,
                   "at most " + std::to_string(AppState::kTokenCreationsPerHourMax) +
                       " token creations per person an hour; retry later",
                   ""};
    }
  }
  if (app.live_tokens_ >= AppState::kTokensMax) {
    return Error{ErrorCode::kLimitExceeded, "too many live tokens", ""};
  }
  app.PurgeRevokedTokens(now_us);
  if (counted) {
    std::deque<int64_t>& creations = app.creations_by_creator_[creator];
    while (!creations.empty() && creations.front() <= now_us - 3'600'000'000LL) {
      creations.pop_front();
    }
    creations.push_back(now_us);
  }
  ++app.live_tokens_;
  ++app.tokens_created_;
  ++app.live_by_person_[{person, role}];
  app.tokens_.emplace(id, TokenRecord{.id = id,
                                      .role = role,
                                      .person = person,
                                      .label = label,
                                      .salt_hex = salt,
                                      .hash_hex = hash,
                                      .created_us = now_us,
                                      .created_by = bootstrap ? "bootstrap" : actor.token});
  return json{{"token_id", id}, {"role", ToString(role)}, {"person", person}};
}

Result<json> OpHandlers::TokenRevoke(AppState& app, const OpRequest& request) {
  const Actor& actor = request.actor;
  const std::string id = request.args.Text("token_id");
  const auto found = app.tokens_.find(id);
  if (found == app.tokens_.end()) return Error{ErrorCode::kNotFound, "no token " + id, "token_id"};
  // Its owner: the token itself, or any token of the same role and person (a lost token
  // is revoked from another one).
  const bool owner =
      actor.token == id || (!actor.person.empty() && found->second.person == actor.person &&
                            found->second.role == actor.role);
  if (actor.role != Role::kAdmin && !owner) {
    return Forbidden("only an admin revokes another's token");
  }
  if (found->second.revoked) return Error{ErrorCode::kInvalidState, "token already revoked", ""};
  found->second.revoked = true;
  --app.live_tokens_;
  const auto live = app.live_by_person_.find({found->second.person, found->second.role});
  if (live != app.live_by_person_.end() && --live->second == 0) app.live_by_person_.erase(live);
  app.revoked_order_.emplace_back(request.now_us, id);
  app.PurgeRevokedTokens(request.now_us);
  return json{{"token_id", id}, {"revoked", true}};
}

Result<json> OpHandlers::NodeState(AppState& app, const OpRequest& request,
                                   cluster::NodeState state) {
  if (!app.cluster_) return Error{ErrorCode::kInvalidState, "no cluster is loaded", ""};
  const std::string name = request.args.Text("node");
  const auto node = app.cluster_->FindNode(name);
  if (!node) return Error{ErrorCode::kNotFound, "no node " + name, "node"};
  if (app.node_states_[*node] == state) {
    return Error{ErrorCode::kInvalidState,
                 "node " + name + " is already " + std::string(cluster::ToString(state)), "node"};
  }
  ATRIUM_TRY(app.scheduler_->SetNodeState(*node, state));
  app.node_states_[*node] = state;
  if (state == cluster::NodeState::kUp) app.Schedule(request.now_us);
  return json{{"node", name}, {"state", cluster::ToString(state)}};
}

namespace {

// The solver answers a command carries (drawn: set when it first applied, never by a
// client), or an empty tape that records the answers of this first apply.
Result<program::SolverTape> TapeOf(const OpRequest& request) {
  program::SolverTape tape;
  if (!request.args.Has("solver_answers")) return tape;
  tape.replaying = true;
  for (const OpArgs& item : request.args.Objects("solver_answers")) {
    program::SolverTapeEntry& entry = tape.entries.emplace_back();
    entry.problem_sha256 = item.Text("problem_sha256");
    entry.solution.policy = item.Text("policy");
    entry.solution.optimal = item.Bool("optimal");
    entry.solution.note = item.Text("note");
    for (const int64_t micro : item.Ints("awarded_micro")) {
      if (micro < 0) return Invalid("an award is never negative", "solver_answers");
      entry.solution.awarded.push_back(Credits::FromMicro(micro));
    }
    for (auto [name, into] : {std::pair{"objective", &entry.solution.objective},
                              std::pair{"bound", &entry.solution.bound}}) {
      const std::string text = item.Text(name);
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *into);
      if (error != std::errc() || end != text.data() + text.size()) {
        return Invalid(std::string("solver_answers.") + name + " is not a number",
                       "solver_answers");
      }
    }
  }
  return tape;
}

// Journals a first apply's solver answers with its command, so a replay takes them
// instead of solving again.
void JournalTape(const program::SolverTape& tape, const OpRequest& request) {
  if (tape.replaying || tape.entries.empty() || request.journaled == nullptr) return;
  (*request.journaled)["solver_answers"] = SolverAnswersJson(tape);
}

FieldSpec SolverAnswersField() {
  return Drawn({.name = "solver_answers",
                .kind = FieldKind::kObjectList,
                .help = "the solver's answers, journaled with the command by the service",
                .max_items = 4,
                .fields = {TextField("problem_sha256", 64, true),
                           TextField("policy", 16, true),
                           ListField("awarded_micro", FieldKind::kInts,
                                     program::ProgramState::kProposalsMax, true),
                           TextField("objective", 40, true),
                           TextField("bound", 40, true),
                           {.name = "optimal", .kind = FieldKind::kBool},
                           TextField("note", 1000, false)}});
}

}  // namespace

// Objective and bound as their shortest exact decimal text: parsed back, they are the
// same bits.
json SolverAnswersJson(const program::SolverTape& tape) {
  json answers = json::array();
  for (const program::SolverTapeEntry& entry : tape.entries) {
    json awarded = json::array();
    for (Credits amount : entry.solution.awarded) awarded.push_back(amount.micro());
    answers.push_back({{"problem_sha256", entry.problem_sha256},
                       {"policy", entry.solution.policy},
                       {"awarded_micro", std::move(awarded)},
                       {"objective", fmt::format("{}", entry.solution.objective)},
                       {"bound", fmt::format("{}", entry.solution.bound)},
                       {"optimal", entry.solution.optimal},
                       {"note", entry.solution.note}});
  }
  return answers;
}

namespace {

program::Institution ToInstitution(const OpArgs& in) {
  return {.id = in.Text("id"),
          .name = in.Text("name"),
          .type = in.Text("type"),
          .country = in.Text("country")};
}

program::Person ToPerson(const OpArgs& in) {
  return {.id = in.Text("id"),
          .name = in.Text("name"),
          .institution = in.Text("institution"),
          .role = in.Text("role"),
          .expertise = in.Strings("expertise"),
          .collaborators = in.Strings("collaborators"),
          .reviewer = in.Bool("reviewer")};
}

}  // namespace

// All or nothing: every row is checked against the program (and the rows before it)
// before the first is added, so a refused file adds nobody.
Result<json> OpHandlers::PeopleImport(AppState& app, const OpRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
  const std::vector<OpArgs> institutions = request.args.Objects("institutions");
  const std::vector<OpArgs> people = request.args.Objects("people");
  std::set<std::string> new_institutions;
  for (size_t row = 0; row < institutions.size(); ++row) {
    const std::string id = institutions[row].Text("id");
    const std::string field = fmt::format("institutions[{}].id", row);
    if (program->institutions().contains(id) || !new_institutions.insert(id).second) {
      return Error{ErrorCode::kAlreadyExists, "institution " + id + " exists", field};
    }
  }
  if (program->institutions().size() + new_institutions.size() >
      program::ProgramState::kPeopleMax) {
    return Error{ErrorCode::kLimitExceeded, "too many institutions", "institutions"};
  }
  std::set<std::string> new_people;
  for (size_t row = 0; row < people.size(); ++row) {
    const std::string id = people[row].Text("id");
    const std::string prefix = fmt::format("people[{}]", row);
    if (Status orcid = program::ValidateOrcid(id); !orcid.ok()) {
      Error error = orcid.error();
      error.field = prefix + ".id";
      return error;
    }
    if (program->people().contains(id) || !new_people.insert(id).second) {
      return Error{ErrorCode::kAlreadyExists, "person " + id + " exists", prefix + ".id"};
    }
    const std::string institution = people[row].Text("institution");
    if (!program->institutions().contains(institution) && !new_institutions.contains(institution)) {
      return Error{ErrorCode::kNotFound, "unknown institution " + institution,
                   prefix + ".institution"};
    }
  }
  if (program->people().size() + new_people.size() > program::ProgramState::kPeopleMax) {
    return Error{ErrorCode::kLimitExceeded, "too many people", "people"};
  }
  for (const OpArgs& in : institutions) {
    const Status added = program->AddInstitution(ToInstitution(in), request.now_us);
    ATRIUM_CHECK(added.ok(), "a checked institution was refused");
  }
  for (const OpArgs& in : people) {
    const Status added = program->AddPerson(ToPerson(in), request.now_us);
    ATRIUM_CHECK(added.ok(), "a checked person was refused");
  }
  return json{{"institutions", institutions.size()}, {"people", people.size()}};
}

std::vector<OpSpec> OpHandlers::Table() {
  constexpr RoleSet kStaff = kStaffRoles;
  constexpr RoleSet kAdmin = RoleIn(Role::kAdmin);
  constexpr RoleSet kOps = RoleIn(Role::kAdmin) | RoleIn(Role::kOperator);
  constexpr RoleSet kResearcher = RoleIn(Role::kResearcher);
  constexpr RoleSet kReviewer = RoleIn(Role::kReviewer);
  constexpr RoleSet kStudent = RoleIn(Role::kStudent);
  constexpr RoleSet kOperator = RoleIn(Role::kOperator);
  using K = FieldKind;

  const auto call_op = [](std::string_view name, std::string_view summary, std::string_view verb,
                          std::string_view cli_name, OpHandler handler,
                          std::vector<ResultField> result) {
    return OpSpec{
        .name = name,
        .summary = summary,
        .roles = kStaff,
        .fields = {ProgramField(), IdField("call", true)},
        .result = std::move(result),
        .route = {.method = "POST", .path = verb, .body_field = {}, .success_status = 200},
        .handler = handler,
        .cli_group = "call",
        .cli_name = cli_name,
        .cli_positional = {"call"}};
  };
  const std::vector<ResultField> call_state = {
      {"call", "id", ""}, {"state", "string", "scheduled, open, closed, decided"}};

  std::vector<OpSpec> ops;
  ops.push_back(OpSpec{
      .name = "token_create",
      .summary = "Create a token (an admin for anyone, others for themselves); the secret is "
                 "shown once",
      .roles = kSignedInRoles,
      .fields = {Drawn(IdField("token_id", true)),
                 {.name = "role",
                  .kind = K::kEnum,
                  .help = "the token's role (default: the caller's)",
                  .max_bytes = 32,
                  .values = {"admin", "officer", "reviewer", "researcher", "student", "operator",
                             "sponsor", "instructor", "data_steward"}},
                 IdField("person", false, "the person the token speaks for (default: the caller)"),
                 TextField("label", 200, false, "a note for whoever lists tokens"),
                 Drawn(TextField("salt", 64, true)),
                 Drawn(TextField("hash", 64, true))},
      .result = {{"token_id", "id", ""},
                 {"role", "string", ""},
                 {"person", "string", ""},
                 {"token", "string", "the secret, shown once (HTTP only)"}},
      .route = {.method = "POST", .path = "/v1/tokens", .success_status = 201},
      .handler = &OpHandlers::TokenCreate,
      .cli_group = "token",
      .cli_name = "create"});
  ops.push_back(OpSpec{.name = "token_revoke",
                       .summary = "Revoke a token (an admin, or its owner)",
                       .roles = kSignedInRoles,
                       .fields = {IdField("token_id", true)},
                       .result = {{"token_id", "id", ""}, {"revoked", "boolean", ""}},
                       .route = {.method = "DELETE", .path = "/v1/tokens/{token_id}"},
                       .handler = &OpHandlers::TokenRevoke,
                       .cli_group = "token",
                       .cli_name = "revoke",
                       .cli_positional = {"token_id"}});
  ops.push_back(OpSpec{
      .name = "program_create",
      .summary = "Create a program from its TOML definition",
      .roles = kStaff,
      .fields = {FromFile(TextField("toml", kTomlBytesMax, true,
                                    "the program definition (docs/program.md), TOML text")),
                 Drawn(TextField("seal_secret", 128, false))},
      .result = {{"program", "id", ""}},
      .route = {.method = "POST", .path = "/v1/programs", .success_status = 201},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(
            program::ProgramDefinition definition,
            program::ParseProgramToml(request.args.Text("toml"), request.now_us));
        if (!ValidId(definition.id, false)) {
          return Error{ErrorCode::kInvalidId, "bad program id", "id"};
        }
        if (app.programs_.contains(definition.id)) {
          return Error{ErrorCode::kAlreadyExists, "program " + definition.id + " exists", "id"};
        }
        // The key of the public log's sealed reviews, drawn by the shell
        // (docs/program.md).
        std::string seal_secret = request.args.Text("seal_secret");
        if (!seal_secret.empty() && seal_secret.size() < 32) {
          return Invalid("seal_secret must hold at least 32 characters", "seal_secret");
        }
        const std::string id = definition.id;
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState state,
                                program::ProgramState::Create(
                                    std::move(definition), request.now_us, std::move(seal_secret),
                                    app.ledger_.get(), app.next_program_ordinal_));
        ++app.next_program_ordinal_;
        app.programs_.emplace(id, std::move(state));
        return json{{"program", id}};
      },
      .cli_group = "programs",
      .cli_name = "create"});
  ops.push_back(OpSpec{
      .name = "cluster_load",
      .summary = "Load the cluster description (TOML), once",
      .roles = kAdmin,
      .fields = {FromFile(
                     TextField("toml", kTomlBytesMax, true, "the cluster (docs/cluster.md), TOML")),
                 TextField("policy", 64, false,
                           "scheduling policy: fifo, backfill, conservative, fairshare (default: "
                           "the cluster file's, else backfill)")},
      .result = {{"cluster", "string", ""}, {"nodes", "integer", ""}, {"policy", "string", ""}},
      .route = {.method = "POST", .path = "/v1/cluster", .success_status = 201},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        if (app.cluster_) return Error{ErrorCode::kAlreadyExists, "the cluster is loaded", "toml"};
        ATRIUM_TRY(app.LoadCluster(request.args.Text("toml"), request.args.Text("policy")));
        return json{{"cluster", app.cluster_->name()},
                    {"nodes", app.cluster_->nodes().size()},
                    {"policy", app.policy_name_}};
      },
      .cli_group = "cluster",
      .cli_name = "load"});
  ops.push_back(OpSpec{
      .name = "tick",
      .summary = "Let time pass: walltime ends, a scheduling pass, obligations and grants past "
                 "due (the service's clock)",
      .roles = kAdmin,
      .fields = {},
      .result = {{"changed", "boolean", ""}, {"program_events", "integer", ""}},
      .route = {},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        const int64_t events = app.TickPrograms(request.now_us);
        bool pass = false;
        if (app.scheduler_ &&
            (app.scheduler_->waiting_count() > 0 || app.TickDue(request.now_us))) {
          app.Schedule(request.now_us);
          pass = true;
        }
        return json{{"changed", events > 0 || pass}, {"program_events", events}};
      }});

  ops.push_back(
      OpSpec{.name = "job_submit",
             .summary = "Submit a job charged to a grant",
             .roles = kStaff | kResearcher | kStudent,
             .fields = {ProgramField(),
                        IdField("grant", false,
                                "the grant that pays (required unless `lab`: the enrolment's)"),
                        IntField("chips", 1, 1'000'000, false, 0,
                                 "accelerator chips (required unless `lab`: its template's)"),
                        IntField("walltime_s", 1, kWalltimeMaxS, false, 0,
                                 "limit in seconds (the CLI takes 90s, 30m, 2h, 1d; required "
                                 "unless `lab`)"),
                        IdField("accelerator", false, "accelerator type (default: the cluster's)"),
                        {.name = "class",
                         .kind = K::kEnum,
                         .help = "default: the grant's track (research or education)",
                         .max_bytes = 32,
                         .values = {"research", "education", "preemptible"}},
                        TextField("name", 200, false),
                        ListField("argv", K::kTexts, kListMax, false,
                                  "the command to run (at most 16 KiB in all)"),
                        IdField("lab", false,
                                "a lab one is enrolled in (docs/training.md): the job draws on "
                                "the enrolment's credits, its template gives the defaults and "
                                "the most it may ask, and its success completes the lab"),
                        ListField("datasets", K::kIds, program::kDatasetsPerJobMax, false,
                                  "dataset ids the job reads (docs/datasets.md)")},
             .result = {{"job", "id", "J<n>"}, {"state", "string", "pending, running, ..."}},
             .route = {.method = "POST", .path = "/v1/jobs", .success_status = 201},
             .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
               return app.SubmitJob(request.command, request.actor, request.now_us);
             },
             .checks_own_fields = true,
             .cli_group = "job",
             .cli_name = "submit"});
  const auto finish = [](AppState& app, const OpRequest& request) -> Result<json> {
    return app.FinishJob(request.command, request.actor, request.now_us);
  };
  const std::vector<ResultField> job_end = {
      {"job", "id", ""}, {"state", "string", ""}, {"charged", "amount", "credits charged"}};
  ops.push_back(OpSpec{.name = "job_cancel",
                       .summary = "Cancel a job (its owner, its grant's PI, an operator or staff)",
                       .roles = kStaff | kResearcher | kStudent | kOperator,
                       .fields = {IdField("job", true)},
                       .result = job_end,
                       .route = {.method = "POST", .path = "/v1/jobs/{job}/cancel"},
                       .handler = finish,
                       .checks_own_fields = true,
                       .cli_group = "job",
                       .cli_name = "cancel",
                       .cli_positional = {"job"}});
  ops.push_back(OpSpec{.name = "job_finish",
                       .summary = "Report a running job's end (the executor)",
                       .roles = kOps,
                       .fields = {IdField("job", true)},
                       .result = job_end,
                       .route = {.method = "POST", .path = "/v1/jobs/{job}/finish"},
                       .handler = finish,
                       .checks_own_fields = true,
                       .cli_group = "job",
                       .cli_name = "finish",
                       .cli_positional = {"job"}});
  // The executor's reports (docs/executors.md): internal, no route; the service's exec
  // runner submits them as admin.
  constexpr int64_t kTimeUsMax = std::numeric_limits<int64_t>::max() / 2;
  ops.push_back(OpSpec{
      .name = "job_run_started",
      .summary = "An executor launched a job's run (internal)",
      .roles = kAdmin,
      .fields = {IdField("job", true), IntField("run", 1, UINT32_MAX, true, 0, "sched run number"),
                 IntField("started_at_us", 0, kTimeUsMax, true, 0, "when the process started")},
      .result = {{"job", "id", ""}, {"run", "integer", ""}, {"state", "string", ""}},
      .route = {},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        return app.RunStarted(request.command, request.now_us);
      }});
  ops.push_back(OpSpec{
      .name = "job_run_ended",
      .summary = "An executor's run ended: exit code, signal, measured times (internal)",
      .roles = kAdmin,
      .fields = {IdField("job", true),
                 IntField("run", 1, UINT32_MAX, true, 0, "sched run number"),
                 IntField("started_at_us", 0, kTimeUsMax, true, 0, "when the process started"),
                 IntField("ended_at_us", 0, kTimeUsMax, true, 0, "when it ended"),
                 IntField("exit_code", -1, 255, true, 0, "-1 when killed by a signal"),
                 IntField("signal", 0, 64, true, 0, "the signal that ended it, 0 if none"),
                 {.name = "how",
                  .kind = K::kEnum,
                  .required = true,
                  .help = "exited (by itself), walltime, preempted, lost (no trace of it)",
                  .max_bytes = 16,
                  .values = {"exited", "walltime", "preempted", "lost"}}},
      .result = job_end,
      .route = {},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        return app.RunEnded(request.command, request.now_us);
      }});
  const std::vector<ResultField> node_result = {{"node", "id", ""}, {"state", "string", ""}};
  ops.push_back(OpSpec{.name = "node_drain",
                       .summary = "Drain a node: no new work",
                       .roles = kOps,
                       .fields = {IdField("node", true)},
                       .result = node_result,
                       .route = {.method = "POST", .path = "/v1/cluster/nodes/{node}/drain"},
                       .handler =
                           [](AppState& app, const OpRequest& request) {
                             return NodeState(app, request, cluster::NodeState::kDraining);
                           },
                       .cli_group = "node",
                       .cli_name = "drain",
                       .cli_positional = {"node"}});
  ops.push_back(OpSpec{.name = "node_resume",
                       .summary = "Return a node to service",
                       .roles = kOps,
                       .fields = {IdField("node", true)},
                       .result = node_result,
                       .route = {.method = "POST", .path = "/v1/cluster/nodes/{node}/resume"},
                       .handler =
                           [](AppState& app, const OpRequest& request) {
                             return NodeState(app, request, cluster::NodeState::kUp);
                           },
                       .cli_group = "node",
                       .cli_name = "resume",
                       .cli_positional = {"node"}});

  // Program ops.
  ops.push_back(
      OpSpec{.name = "institution_add",
             .summary = "Register an institution",
             .roles = kStaff,
             .fields = {ProgramField(),
                        {.name = "institution",
                         .kind = K::kObject,
                         .required = true,
                         .fields = InstitutionFields()}},
             .result = {{"institution", "id", ""}},
             .route = {.method = "POST",
                       .path = "/v1/programs/{program}/institutions",
                       .body_field = "institution",
                       .success_status = 201},
             .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
               ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
               program::Institution institution = ToInstitution(request.args.Object("institution"));
               const std::string id = institution.id;
               ATRIUM_TRY(program->AddInstitution(std::move(institution), request.now_us));
               return json{{"institution", id}};
             },
             .cli_group = "institution",
             .cli_name = "add"});
  ops.push_back(OpSpec{
      .name = "person_add",
      .summary = "Register a person (researcher, reviewer, student)",
      .roles = kStaff,
      .fields =
          {ProgramField(),
           {.name = "person", .kind = K::kObject, .required = true, .fields = PersonFields()}},
      .result = {{"person", "id", ""}},
      .route = {.method = "POST",
                .path = "/v1/programs/{program}/people",
                .body_field = "person",
                .success_status = 201},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        program::Person person = ToPerson(request.args.Object("person"));
        const std::string id = person.id;
        ATRIUM_TRY(program->AddPerson(std::move(person), request.now_us));
        return json{{"person", id}};
      },
      .cli_group = "person",
      .cli_name = "add"});
  ops.push_back(OpSpec{
      .name = "people_import",
      .summary = "Register many institutions and people at once, all or nothing (CSV import)",
      .roles = kStaff,
      .fields = {ProgramField(),
                 {.name = "institutions",
                  .kind = K::kObjectList,
                  .help = "institutions, as institution_add takes them",
                  .max_items = kImportRowsMax,
                  .fields = InstitutionFields()},
                 {.name = "people",
                  .kind = K::kObjectList,
                  .help = "people (and reviewers), as person_add takes them",
                  .max_items = kImportRowsMax,
                  .fields = PersonFields()}},
      .result = {{"institutions", "integer", "institutions added"},
                 {"people", "integer", "people added"}},
      .route = {.method = "POST",
                .path = "/v1/programs/{program}/people/import",
                .success_status = 201},
      .handler = &OpHandlers::PeopleImport});

  ops.push_back(call_op(
      "call_open", "Open a call for proposals", "/v1/programs/{program}/calls/{call}/open", "open",
      [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        const std::string call = request.args.Text("call");
        if (program->FindCall(call) == nullptr) {
          return Error{ErrorCode::kNotFound, "no call " + call, "call"};
        }
        ATRIUM_TRY(program->OpenCall(call, request.now_us));
        return json{{"call", call}, {"state", program::ToString(program->call_state(call))}};
      },
      call_state));
  ops.push_back(call_op(
      "call_close", "Close a call", "/v1/programs/{program}/calls/{call}/close", "close",
      [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        const std::string call = request.args.Text("call");
        if (program->FindCall(call) == nullptr) {
          return Error{ErrorCode::kNotFound, "no call " + call, "call"};
        }
        ATRIUM_TRY(program->CloseCall(call, request.now_us));
        return json{{"call", call}, {"state", program::ToString(program->call_state(call))}};
      },
      call_state));
  ops.push_back(
      call_op("call_assign", "Find conflicts and assign reviewers",
              "/v1/programs/{program}/calls/{call}/assign", "assign",
              [](AppState& app, const OpRequest& request) -> Result<json> {
                ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
                const std::string call = request.args.Text("call");
                if (program->FindCall(call) == nullptr) {
                  return Error{ErrorCode::kNotFound, "no call " + call, "call"};
                }
                ATRIUM_ASSIGN_OR_RETURN(const program::AssignmentStats stats,
                                        program->AssignReviewers(call, request.now_us));
                return json{{"call", call},
                            {"reviewer_load_min", stats.load_min},
                            {"reviewer_load_max", stats.load_max},
                            {"with_expertise", stats.with_expertise}};
              },
              {{"call", "id", ""},
               {"reviewer_load_min", "integer", ""},
               {"reviewer_load_max", "integer", ""},
               {"with_expertise", "integer", "assignments that match a reviewer's expertise"}}));
  {
    OpSpec draft =
        call_op("decision_draft", "Draft the awards (optimal under budgets and caps)",
                "/v1/programs/{program}/calls/{call}/decision/draft", "draft",
                [](AppState& app, const OpRequest& request) -> Result<json> {
                  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
                  const std::string call = request.args.Text("call");
                  if (program->FindCall(call) == nullptr) {
                    return Error{ErrorCode::kNotFound, "no call " + call, "call"};
                  }
                  ATRIUM_ASSIGN_OR_RETURN(program::SolverTape tape, TapeOf(request));
                  ATRIUM_ASSIGN_OR_RETURN(
                      const program::Decision decision,
                      program->DraftDecision(call, request.now_us, request.args.Text("policy"),
                                             {.tape = &tape}));
                  JournalTape(tape, request);
                  return json{{"call", call},
                              {"policy", decision.policy},
                              {"optimal", decision.optimal},
                              {"total_awarded", decision.total_awarded.ToString()}};
                },
                {{"call", "id", ""},
                 {"policy", "string", ""},
                 {"optimal", "boolean", ""},
                 {"total_awarded", "amount", ""}});
    draft.fields.push_back(
        TextField("policy", 16, false, "mip or greedy (default: the program's)"));
    draft.fields.push_back(SolverAnswersField());
    draft.cli_group = "decision";
    ops.push_back(std::move(draft));
  }
  {
    OpSpec commit = call_op(
        "decision_commit", "Commit the draft: grants are created and funded",
        "/v1/programs/{program}/calls/{call}/decision/commit", "commit",
        [](AppState& app, const OpRequest& request) -> Result<json> {
          ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
          const std::string call = request.args.Text("call");
          if (program->FindCall(call) == nullptr) {
            return Error{ErrorCode::kNotFound, "no call " + call, "call"};
          }
          ATRIUM_TRY(program->CommitDecision(call, request.now_us));
          return json{{"call", call}, {"state", program::ToString(program->call_state(call))}};
        },
        call_state);
    commit.cli_group = "decision";
    ops.push_back(std::move(commit));
  }
  // Governance (docs/governance.md): the sponsor's overrides and applicants' appeals.
  ops.push_back(OpSpec{
      .name = "decision_override",
      .summary = "A sponsor's veto or addition on a drafted decision, with a published reason "
                 "code and a public text; the draft is re-solved",
      .roles = RoleIn(Role::kSponsor) | kAdmin,
      .fields = {ProgramField(),
                 IdField("call", true),
                 IdField("proposal", true),
                 {.name = "kind",
                  .kind = K::kEnum,
                  .required = true,
                  .help = "veto a funded proposal or add a declined one",
                  .max_bytes = 8,
                  .values = {"veto", "add"}},
                 TextField("reason", 64, true, "one of the program's published reason codes"),
                 TextField("text", 4000, true, "the public explanation"),
                 SolverAnswersField()},
      .result = {{"override", "id", "<call>:override-N"},
                 {"kind", "string", ""},
                 {"proposal", "id", ""},
                 {"moved", "amount", "the award vetoed or the request added"},
                 {"total_awarded", "amount", "the re-solved draft's total"}},
      .route = {.method = "POST",
                .path = "/v1/programs/{program}/calls/{call}/decision/overrides",
                .success_status = 201},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        const std::string call = request.args.Text("call");
        if (program->FindCall(call) == nullptr) {
          return Error{ErrorCode::kNotFound, "no call " + call, "call"};
        }
        const program::OverrideKind kind = request.args.Text("kind") == "veto"
                                               ? program::OverrideKind::kVeto
                                               : program::OverrideKind::kAdd;
        ATRIUM_ASSIGN_OR_RETURN(program::SolverTape tape, TapeOf(request));
        ATRIUM_ASSIGN_OR_RETURN(
            const program::SponsorOverride made,
            program->OverrideDecision(call, request.args.Text("proposal"), kind,
                                      request.args.Text("reason"), request.args.Text("text"),
                                      request.actor.person, request.now_us, &tape));
        JournalTape(tape, request);
        return json{{"override", made.id},
                    {"kind", program::ToString(made.kind)},
                    {"proposal", made.proposal},
                    {"moved", made.moved.ToString()},
                    {"total_awarded", program->decisions().at(call).total_awarded.ToString()}};
      },
      .cli_group = "decision",
      .cli_name = "override",
      .cli_positional = {"call"}});
  ops.push_back(OpSpec{
      .name = "appeal_file",
      .summary = "Appeal a declined proposal within the program's window, on a published ground",
      .roles = kStaff | kResearcher,
      .fields = {ProgramField(), IdField("proposal", true),
                 TextField("ground", 64, true, "one of the program's published grounds"),
                 TextField("text", kTextMax, false, "the applicant's case")},
      .result = {{"appeal", "id", "A-<proposal>"},
                 {"proposal", "id", ""},
                 {"reviewers", "integer", "reviewers assigned (new to it, unconflicted)"}},
      .route = {.method = "POST",
                .path = "/v1/programs/{program}/proposals/{proposal}/appeal",
                .success_status = 201},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        const std::string id = request.args.Text("proposal");
        const auto found = program->proposals().find(id);
        if (found == program->proposals().end() ||
            !CanSeeProposal(*program, request.actor, found->second)) {
          return Error{ErrorCode::kNotFound, "no proposal " + id, "proposal"};
        }
        ATRIUM_ASSIGN_OR_RETURN(
            const program::Appeal appeal,
            program->FileAppeal(id, request.args.Text("ground"), request.args.Text("text"),
                                request.actor.person, request.now_us));
        return json{{"appeal", appeal.id},
                    {"proposal", appeal.proposal},
                    {"reviewers", appeal.reviewers.size()}};
      },
      .cli_group = "appeal",
      .cli_name = "file",
      .cli_positional = {"proposal"}});
  ops.push_back(OpSpec{
      .name = "appeal_decide",
      .summary = "Decide an appeal with a reason; an upheld one is funded from the appeals "
                 "reserve",
      .roles = kStaff,
      .fields = {ProgramField(),
                 IdField("appeal", true),
                 {.name = "outcome",
                  .kind = K::kEnum,
                  .required = true,
                  .max_bytes = 8,
                  .values = {"upheld", "rejected"}},
                 TextField("reason", 4000, true, "the officer's public reason")},
      .result = {{"appeal", "id", ""},
                 {"state", "string", "upheld or rejected"},
                 {"grant", "id", "the grant an upheld appeal funds (empty: none)"}},
      .route = {.method = "POST", .path = "/v1/programs/{program}/appeals/{appeal}/decide"},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        ATRIUM_ASSIGN_OR_RETURN(const program::Appeal appeal,
                                program->DecideAppeal(request.args.Text("appeal"),
                                                      request.args.Text("outcome") == "upheld",
                                                      request.args.Text("reason"), request.now_us));
        return json{{"appeal", appeal.id},
                    {"state", program::ToString(appeal.state)},
                    {"grant", appeal.grant}};
      },
      .cli_group = "appeal",
      .cli_name = "decide",
      .cli_positional = {"appeal"}});
  ops.push_back(OpSpec{
      .name = "proposal_submit",
      .summary = "Submit or edit a proposal",
      .roles = kStaff | kResearcher,
      .fields = {ProgramField(),
                 {.name = "proposal",
                  .kind = K::kObject,
                  .required = true,
                  .fields = {IdField("id", true),
                             IdField("call", true),
                             IdField("pi", false, "required for staff; a researcher is the PI"),
                             ListField("co_investigators", K::kIds, kListMax, false, "person ids"),
                             TextField("title", 500, true),
                             TextField("abstract", kTextMax, true),
                             ListField("topics", K::kTexts, kListMax, false),
                             {.name = "requested",
                              .kind = K::kAmount,
                              .help = "credits (or give chip_hours)"},
                             {.name = "chip_hours",
                              .kind = K::kObjectList,
                              .help = "chip-hours per accelerator, priced by the program",
                              .max_items = 16,
                              .fields = {IdField("accelerator", true),
                                         IntField("chip_hours", 1, 1'000'000'000, true, 0)}},
                             IntField("duration_months", 1, 120, false, 12),
                             TextField("open_source_plan", kTextMax, false)}}},
      .result = {{"proposal", "id", ""}, {"status", "string", ""}, {"requested", "amount", ""}},
      .route = {.method = "POST",
                .path = "/v1/programs/{program}/proposals",
                .body_field = "proposal",
                .success_status = 201},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        const Actor& actor = request.actor;
        const OpArgs in = request.args.Object("proposal");
        program::ProposalInput input;
        input.id = in.Text("id");
        input.call = in.Text("call");
        input.pi = in.Text("pi");
        if (input.pi.empty()) {
          if (actor.role != Role::kResearcher) {
            return Invalid("proposal.pi is required", "proposal.pi");
          }
          input.pi = actor.person;
        }
        if (actor.role == Role::kResearcher && input.pi != actor.person) {
          return Forbidden("a researcher submits proposals as their own PI");
        }
        input.co_investigators = in.Strings("co_investigators");
        input.title = in.Text("title");
        input.abstract = in.Text("abstract");
        input.topics = in.Strings("topics");
        input.requested = in.Amount("requested");
        for (const OpArgs& item : in.Objects("chip_hours")) {
          input.chip_hours.push_back(
              {.accelerator = item.Text("accelerator"), .chip_hours = item.Int("chip_hours")});
        }
        input.duration_months = in.Int("duration_months");
        input.open_source_plan = in.Text("open_source_plan");
        if (const auto existing = program->proposals().find(input.id);
            existing != program->proposals().end() && actor.role == Role::kResearcher &&
            existing->second.input.pi != actor.person) {
          return Forbidden("only its PI edits a proposal");
        }
        const std::string id = input.id;
        ATRIUM_TRY(program->SubmitProposal(std::move(input), request.now_us));
        const program::Proposal& stored = program->proposals().at(id);
        return json{{"proposal", id},
                    {"status", program::ToString(stored.status)},
                    {"requested", stored.requested.ToString()}};
      },
      .cli_group = "proposal",
      .cli_name = "submit"});
  ops.push_back(OpSpec{
      .name = "proposal_withdraw",
      .summary = "Withdraw a proposal",
      .roles = kStaff | kResearcher,
      .fields = {ProgramField(), IdField("proposal", true)},
      .result = {{"proposal", "id", ""}, {"status", "string", ""}},
      .route = {.method = "POST", .path = "/v1/programs/{program}/proposals/{proposal}/withdraw"},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        const std::string id = request.args.Text("proposal");
        const auto found = program->proposals().find(id);
        if (found == program->proposals().end() ||
            !CanSeeProposal(*program, request.actor, found->second)) {
          return Error{ErrorCode::kNotFound, "no proposal " + id, "proposal"};
        }
        if (!IsStaff(request.actor) && found->second.input.pi != request.actor.person) {
          return Forbidden("only its PI or program staff withdraw a proposal");
        }
        ATRIUM_TRY(program->WithdrawProposal(id, request.now_us));
        return json{{"proposal", id}, {"status", "withdrawn"}};
      },
      .cli_group = "proposal",
      .cli_name = "withdraw",
      .cli_positional = {"proposal"}});
  ops.push_back(OpSpec{
      .name = "conflict_declare",
      .summary = "Declare a conflict of interest",
      .roles = kStaff | kReviewer,
      .fields = {ProgramField(), IdField("proposal", true),
                 IdField("reviewer", false, "required for staff; a reviewer declares their own"),
                 TextField("note", 2000, false, "why")},
      .result = {{"proposal", "id", ""}, {"reviewer", "id", ""}},
      .route = {.method = "POST",
                .path = "/v1/programs/{program}/conflicts",
                .success_status = 201},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        const Actor& actor = request.actor;
        const std::string proposal = request.args.Text("proposal");
        std::string reviewer = request.args.Text("reviewer");
        if (reviewer.empty()) {
          if (actor.role != Role::kReviewer) return Invalid("reviewer is required", "reviewer");
          reviewer = actor.person;
        }
        if (actor.role == Role::kReviewer && reviewer != actor.person) {
          return Forbidden("a reviewer declares their own conflicts");
        }
        if (!program->proposals().contains(proposal)) {
          return Error{ErrorCode::kNotFound, "no proposal " + proposal, "proposal"};
        }
        ATRIUM_TRY(program->DeclareConflict(reviewer, proposal, request.args.Text("note"),
                                            request.now_us));
        return json{{"proposal", proposal}, {"reviewer", reviewer}};
      },
      .cli_group = "conflict",
      .cli_name = "declare"});
  ops.push_back(OpSpec{
      .name = "review_submit",
      .summary = "Submit a review of an assigned proposal",
      .roles = kReviewer,
      .fields = {ProgramField(), IdField("proposal", true),
                 ListField("scores", K::kInts, 64, true, "one integer per rubric criterion"),
                 TextField("comment", kTextMax, false)},
      .result = {{"proposal", "id", ""}, {"reviewer", "id", ""}},
      .route = {.method = "POST", .path = "/v1/programs/{program}/reviews", .success_status = 201},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        const Actor& actor = request.actor;
        const std::string proposal = request.args.Text("proposal");
        const auto found = program->proposals().find(proposal);
        if (found == program->proposals().end() ||
            !CanSeeProposal(*program, actor, found->second)) {
          return Error{ErrorCode::kNotFound, "no proposal " + proposal + " assigned to you",
                       "proposal"};
        }
        ATRIUM_TRY(program->SubmitReview(actor.person, proposal, request.args.Ints("scores"),
                                         request.args.Text("comment"), request.now_us));
        return json{{"proposal", proposal}, {"reviewer", actor.person}};
      },
      .cli_group = "review",
      .cli_name = "submit"});
  ops.push_back(OpSpec{
      .name = "reviews_simulate",
      .summary = "Fill every open assignment of a call with simulated scores (demos and "
                 "rehearsals; seeded, so replay is exact)",
      .roles = kAdmin,
      .fields = {ProgramField(), IdField("call", true),
                 IntField("seed", 0, int64_t{1} << 53, false, 1)},
      .result = {{"call", "id", ""}},
      .route = {},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        const std::string call = request.args.Text("call");
        if (program->FindCall(call) == nullptr) {
          return Error{ErrorCode::kNotFound, "no call " + call, "call"};
        }
        ATRIUM_TRY(program::SimulateReviews(
            *program, call, static_cast<uint64_t>(request.args.Int("seed")), request.now_us));
        return json{{"call", call}};
      }});

  // Grant ops: the grant must be visible; staff, or (members, students) its PI.
  const auto grant_op = [](std::string_view name, std::string_view summary, RoleSet roles,
                           std::string_view path, int status, std::string_view cli_name,
                           std::vector<FieldSpec> extra, std::vector<ResultField> result,
                           OpHandler handler) {
    OpSpec spec{.name = name,
                .summary = summary,
                .roles = roles,
                .fields = {ProgramField(), IdField("grant", true)},
                .result = std::move(result),
                .route = {.method = "POST", .path = path, .success_status = status},
                .handler = handler,
                .cli_group = "grant",
                .cli_name = cli_name,
                .cli_positional = {"grant"}};
    for (FieldSpec& field : extra) spec.fields.push_back(std::move(field));
    return spec;
  };
  ops.push_back(grant_op(
      "grant_member_add", "Add a member (the PI or staff)", kStaff | kResearcher,
      "/v1/programs/{program}/grants/{grant}/members", 201, "add-member", {IdField("person", true)},
      {{"grant", "id", ""}, {"member", "id", ""}},
      [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, VisibleGrant(*program, request));
        ATRIUM_TRY(RequirePiOrStaff(*grant, request.actor));
        const std::string person = request.args.Text("person");
        ATRIUM_TRY(program->AddGrantMember(grant->id, person, request.now_us));
        return json{{"grant", grant->id}, {"member", person}};
      }));
  ops.push_back(grant_op(
      "student_allocate", "Give a student part of a course's credits", kStaff | kResearcher,
      "/v1/programs/{program}/grants/{grant}/students", 201, "allocate",
      {IdField("student", true), {.name = "amount", .kind = K::kAmount, .required = true}},
      {{"grant", "id", ""}, {"student", "id", ""}, {"amount", "amount", ""}},
      [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, VisibleGrant(*program, request));
        ATRIUM_TRY(RequirePiOrStaff(*grant, request.actor));
        const std::string student = request.args.Text("student");
        const Credits amount = request.args.Amount("amount");
        const std::string id = grant->id;
        ATRIUM_TRY(program->AllocateToStudent(id, student, amount, request.now_us));
        return json{{"grant", id}, {"student", student}, {"amount", amount.ToString()}};
      }));
  ops.push_back(grant_op(
      "grant_close", "Close a grant, returning what is unspent", kStaff,
      "/v1/programs/{program}/grants/{grant}/close", 200, "close", {},
      {{"grant", "id", ""}, {"status", "string", ""}},
      [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, VisibleGrant(*program, request));
        const std::string id = grant->id;
        ATRIUM_TRY(app.CloseGrant(*program, id, request.now_us));
        return json{{"grant", id}, {"status", "closed"}};
      }));
  {
    OpSpec usage = grant_op(
        "usage_record", "Charge use made outside the cluster to a grant (offline programs)", kAdmin,
        "", 200, "", {{.name = "amount", .kind = K::kAmount, .required = true}},
        {{"grant", "id", ""}, {"amount", "amount", ""}},
        [](AppState& app, const OpRequest& request) -> Result<json> {
          ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
          ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, VisibleGrant(*program, request));
          const std::string id = grant->id;
          const Credits amount = request.args.Amount("amount");
          ATRIUM_TRY(program->RecordUsage(id, amount, request.now_us));
          return json{{"grant", id}, {"amount", amount.ToString()}};
        });
    usage.route = {};
    usage.cli_group = {};
    usage.cli_positional = {};
    ops.push_back(std::move(usage));
  }
  ops.push_back(OpSpec{
      .name = "obligation_submit",
      .summary = "Submit evidence (DOI, arXiv id, repository and license)",
      .roles = kStaff | kResearcher,
      .fields =
          {ProgramField(),
           {.name = "obligation", .kind = K::kPath, .required = true, .help = "e.g. G-P-001/paper"},
           TextField("reference", 2000, true, "DOI, arXiv id, repository URL or report"),
           TextField("license", 64, false, "OSI license id (repositories)")},
      .result = {{"obligation", "id", ""}, {"state", "string", ""}},
      .route = {.method = "POST", .path = "/v1/programs/{program}/obligations/{obligation}/submit"},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, ObligationGrant(*program, request));
        if (!IsStaff(request.actor) &&
            !(request.actor.role == Role::kResearcher && grant->pi == request.actor.person)) {
          return Forbidden("only the grant's PI or program staff submit its obligations");
        }
        const std::string id = request.args.Text("obligation");
        ATRIUM_TRY(program->SubmitObligation(id, request.args.Text("reference"),
                                             request.args.Text("license"), request.now_us));
        return json{{"obligation", id},
                    {"state", program::ToString(program->obligations().at(id).state)}};
      },
      .cli_group = "obligation",
      .cli_name = "submit",
      .cli_positional = {"obligation"}});
  ops.push_back(OpSpec{
      .name = "obligation_review",
      .summary = "Accept or reject evidence",
      .roles = kStaff,
      .fields = {ProgramField(),
                 {.name = "obligation", .kind = K::kPath, .required = true},
                 {.name = "accept", .kind = K::kBool, .help = "accept (default: reject)"}},
      .result = {{"obligation", "id", ""}, {"state", "string", ""}},
      .route = {.method = "POST", .path = "/v1/programs/{program}/obligations/{obligation}/review"},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        ATRIUM_TRY(ObligationGrant(*program, request).status());
        const std::string id = request.args.Text("obligation");
        ATRIUM_TRY(program->ReviewObligation(id, request.args.Bool("accept"), request.now_us));
        return json{{"obligation", id},
                    {"state", program::ToString(program->obligations().at(id).state)}};
      },
      .cli_group = "obligation",
      .cli_name = "review",
      .cli_positional = {"obligation"}});
  for (auto* table :
       {&OpHandlers::ReservationTable, &OpHandlers::TrainingTable, &OpHandlers::DatasetTable}) {
    for (OpSpec& spec : table()) ops.push_back(std::move(spec));
  }
  return ops;
}

const std::vector<OpSpec>& Ops() {
  static const std::vector<OpSpec> ops = OpHandlers::Table();
  return ops;
}

const OpSpec* FindOp(std::string_view name) {
  for (const OpSpec& spec : Ops()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

const std::vector<FieldSpec>* OpFieldSpecs(std::string_view op) {
  const OpSpec* spec = FindOp(op);
  return spec == nullptr ? nullptr : &spec->fields;
}

}  // namespace atrium::core
