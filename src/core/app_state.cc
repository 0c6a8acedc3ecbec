#include "core/app_state.h"

#include <algorithm>
#include <array>
#include <set>

#include <openssl/sha.h>

#include "cluster/config.h"
#include "core/access.h"
#include "core/app_state_fields.h"
#include "core/ops.h"
#include "program/loader.h"
#include "sched/policy.h"

namespace atrium::core {

using namespace internal;  // NOLINT: the op helpers

namespace {

constexpr std::array<std::string_view, kRoleCount> kRoleNames = {
    "admin",    "officer", "reviewer", "researcher", "student",
    "operator", "public",  "sponsor",  "instructor", "data_steward"};

Result<Actor> ParseActor(const json& command) {
  if (!command.contains("actor") || !command.at("actor").is_object()) {
    return Invalid("the command names no actor", "actor");
  }
  const Fields fields(command.at("actor"), "actor");
  ATRIUM_TRY(fields.Only({"role", "person", "token"}));
  ATRIUM_ASSIGN_OR_RETURN(const std::string role_text, fields.Text("role", 32));
  ATRIUM_ASSIGN_OR_RETURN(const Role role, ParseRole(role_text));
  Actor actor{.role = role};
  ATRIUM_ASSIGN_OR_RETURN(actor.person, fields.Id("person", false, false));
  ATRIUM_ASSIGN_OR_RETURN(actor.token, fields.Id("token", false, false));
  return actor;
}

// The first check of every op, before its actor is read: a known op, and no field the
// op table does not declare for it (nested objects are checked with the op's fields).
Status CheckShape(const std::string& op, const json& command) {
  const OpSpec* spec = FindOp(op);
  if (spec == nullptr) return Invalid("unknown op " + op, "op");
  for (const auto& item : command.items()) {
    // A named key, not a structured binding: clang 14 (the fuzz build) cannot capture one.
    const std::string& key = item.key();
    if (key == "op" || key == "actor" || key == "idempotency_key") continue;
    const bool known = std::any_of(spec->fields.begin(), spec->fields.end(),
                                   [&](const FieldSpec& field) { return field.name == key; });
    if (!known) return Error{ErrorCode::kUnknownField, "unknown field " + key, key};
  }
  return OkStatus();
}

// What makes two requests the same for an Idempotency-Key: the command without the
// fields the service draws afresh for every request (a new token's id, salt and hash; a
// new program's seal secret) and those an op journals with its results (a draft's solver
// answers): every drawn field of the op.
std::string Fingerprint(const json& command) {
  json copy = command;
  if (const OpSpec* spec = FindOp(copy.value("op", ""))) {
    for (const FieldSpec& field : spec->fields) {
      if (field.drawn) copy.erase(std::string(field.name));
    }
  }
  const std::string text = copy.dump();
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (const unsigned char byte : digest) {
    hex.push_back(kHex[byte >> 4]);
    hex.push_back(kHex[byte & 15]);
  }
  return hex;
}

}  // namespace

// An id: 1..128 bytes of letters, digits and . _ : @ - (and / between segments where
// `slash` allows it, as in obligation ids), never a "." or ".." segment.
bool ValidId(std::string_view id, bool slash) {
  if (id.empty() || id.size() > AppState::kIdBytesMax) return false;
  size_t segment_start = 0;
  for (size_t i = 0; i <= id.size(); ++i) {
    if (i == id.size() || id[i] == '/') {
      if (i < id.size() && !slash) return false;
      const std::string_view segment = id.substr(segment_start, i - segment_start);
      if (segment.empty() || segment == "." || segment == "..") return false;
      segment_start = i + 1;
      continue;
    }
    const char c = id[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string_view ToString(Role role) { return kRoleNames[static_cast<size_t>(role)]; }

Result<Role> ParseRole(std::string_view text) {
  for (size_t i = 0; i < kRoleNames.size(); ++i) {
    if (kRoleNames[i] == text) return static_cast<Role>(i);
  }
  return Invalid("role must be one of admin, officer, reviewer, researcher, student, operator",
                 "role");
}

AppState::AppState() : ledger_(std::make_unique<ledger::Ledger>()) {}
AppState::AppState(AppState&&) noexcept = default;
AppState& AppState::operator=(AppState&&) noexcept = default;
AppState::~AppState() = default;

const program::ProgramState* AppState::FindProgram(const std::string& id) const {
  const auto found = programs_.find(id);
  return found == programs_.end() ? nullptr : &found->second;
}

void AppState::PurgeRevokedTokens(int64_t now_us) {
  while (!revoked_order_.empty() && revoked_order_.front().first <= now_us - kRevokedTokenKeepUs) {
    tokens_.erase(revoked_order_.front().second);
    revoked_order_.pop_front();
  }
  // Creators idle for an hour have nothing left to count.
  if (creations_by_creator_.size() > 1024 && tokens_created_ % 1024 == 0) {
    std::erase_if(creations_by_creator_, [&](const auto& entry) {
      return entry.second.empty() || entry.second.back() <= now_us - 3'600'000'000LL;
    });
  }
}

const TokenRecord* AppState::FindToken(const std::string& id) const {
  const auto found = tokens_.find(id);
  return found == tokens_.end() ? nullptr : &found->second;
}

std::optional<AppAnswer> AppState::FindIdempotent(const std::string& token,
                                                  const std::string& key) const {
  const std::optional<std::string_view> text = idempotency_.Find(token, key);
  if (!text) return std::nullopt;
  // Stored by Apply from a dump (or checked by Decode): it parses.
  AppAnswer answer;
  answer.result = json::parse(*text);
  answer.changed = true;
  return answer;
}

AppAnswer AppState::Apply(const json& command, int64_t now_us) {
  AppAnswer answer;
  auto fail = [&](Error error) {
    answer.status = std::move(error);
    answer.result = nullptr;
    return answer;
  };
  if (!command.is_object()) return fail(Invalid("a command is a JSON object", ""));
  if (!command.contains("op") || !command.at("op").is_string()) {
    return fail(Invalid("the command has no op", "op"));
  }
  const std::string op = command.at("op").get<std::string>();
  if (Status shape = CheckShape(op, command); !shape.ok()) return fail(shape.error());
  auto actor = ParseActor(command);
  if (!actor.ok()) return fail(actor.error());
  if (now_us < last_now_us_) now_us = last_now_us_;  // logical time never runs backwards

  std::string key;
  if (command.contains("idempotency_key")) {
    if (!command.at("idempotency_key").is_string()) {
      return fail(Invalid("idempotency_key must be a string", "idempotency_key"));
    }
    key = command.at("idempotency_key").get<std::string>();
    if (key.empty() || key.size() > 255) {
      return fail(Invalid("an Idempotency-Key has 1 to 255 characters", "idempotency_key"));
    }
    if (const std::optional<AppAnswer> first = FindIdempotent(actor->token, key)) {
      AppAnswer again = *first;
      again.changed = false;
      again.replayed = true;
      const auto request = Fingerprint(command);
      if (first->result.is_object() && first->result.contains("_request") &&
          first->result.at("_request") != request) {
        return fail(Error{ErrorCode::kIdempotencyKeyReused,
                          "this Idempotency-Key was used for a different request",
                          "idempotency_key"});
      }
      return again;
    }
  }

  json journaled = json::object();
  Result<json> result = [&]() -> Result<json> {
    try {
      return Dispatch(op, command, *actor, now_us, &journaled);
    } catch (const std::exception& e) {
      // Reached only by a defect (every field is checked before use). The op may have
      // changed part of the state, which the journal would not replay: stop here, and
      // let the restart recover exactly what was acknowledged.
      ::atrium::internal::AssertFail("no exception", e.what(), __FILE__, __LINE__);
    }
  }();
  if (!result.ok()) return fail(result.error());
  answer.result = std::move(*result);
  answer.changed = true;
  if (op == "tick") {
    answer.changed = answer.result.value("changed", false);
  }
  if (answer.changed && !journaled.empty()) {
    json as_journaled = command;
    for (auto& [field, value] : journaled.items()) as_journaled[field] = std::move(value);
    answer.journal_json = as_journaled.dump();
  }
  if (answer.changed) {
    last_now_us_ = now_us;
    if (!key.empty()) {
      // Stored as text: a JSON tree of the same answer takes five times its bytes.
      json stored = answer.result;
      stored["_request"] = Fingerprint(command);
      idempotency_.Add(now_us, actor->token, key, stored.dump());
    }
    // Keys are kept for a day (a retry comes within minutes), and at most
    // kIdempotencyMax of them: the oldest go first.
    idempotency_.DropOlderThan(now_us - kIdempotencyKeepUs, kIdempotencyMax);
  }
  return answer;
}

Result<program::ProgramState*> AppState::MutableProgram(const json& command) {
  ATRIUM_ASSIGN_OR_RETURN(const std::string id, Fields(command, "").Id("program"));
  const auto found = programs_.find(id);
  if (found == programs_.end()) {
    return Error{ErrorCode::kNotFound, "no program " + id, "program"};
  }
  return &found->second;
}

Result<json> AppState::Dispatch(const std::string& op, const json& command, const Actor& actor,
                                int64_t now_us, json* journaled) {
  const OpSpec* spec = FindOp(op);
  if (spec == nullptr) return Invalid("unknown op " + op, "op");
  if ((spec->roles & RoleIn(actor.role)) == 0) {
    return Forbidden("the " + std::string(ToString(actor.role)) + " role may not do this");
  }
  if (!spec->checks_own_fields) {
    ATRIUM_TRY(ValidateFields(spec->fields, command, "", /*top_level=*/true));
  }
  return spec->handler(*this, OpRequest{.command = command,
                                        .actor = actor,
                                        .now_us = now_us,
                                        .args = OpArgs(command, spec->fields),
                                        .journaled = journaled});
}

}  // namespace atrium::core
