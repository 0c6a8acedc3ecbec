#include "core/app_state.h"

#include <algorithm>
#include <array>
#include <set>

#include <openssl/sha.h>

#include "cluster/config.h"
#include "core/access.h"
#include "core/app_state_fields.h"
#include "program/loader.h"
#include "sched/policy.h"

namespace atrium::core {

using namespace internal;  // NOLINT: the op helpers

namespace {

constexpr std::array<std::string_view, kRoleCount> kRoleNames = {
    "admin", "officer", "reviewer", "researcher", "student", "operator", "public"};

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

// The ops, with the fields each accepts besides op, actor and idempotency_key.
struct OpShape {
  std::string_view op;
  std::vector<std::string_view> fields;
};

const std::vector<OpShape>& OpShapes() {
  static const std::vector<OpShape> shapes = {
      {"token_create", {"token_id", "salt", "hash", "role", "person", "label"}},
      {"token_revoke", {"token_id"}},
      {"program_create", {"toml", "seal_secret"}},
      {"cluster_load", {"toml", "policy"}},
      {"institution_add", {"program", "institution"}},
      {"person_add", {"program", "person"}},
      {"call_open", {"program", "call"}},
      {"call_close", {"program", "call"}},
      {"call_assign", {"program", "call"}},
      {"decision_draft", {"program", "call", "policy"}},
      {"decision_commit", {"program", "call"}},
      {"proposal_submit", {"program", "proposal"}},
      {"proposal_withdraw", {"program", "proposal"}},
      {"conflict_declare", {"program", "proposal", "reviewer", "note"}},
      {"review_submit", {"program", "proposal", "scores", "comment"}},
      {"grant_member_add", {"program", "grant", "person"}},
      {"grant_close", {"program", "grant"}},
      {"student_allocate", {"program", "grant", "student", "amount"}},
      {"obligation_submit", {"program", "obligation", "reference", "license"}},
      {"obligation_review", {"program", "obligation", "accept"}},
      {"job_submit",
       {"program", "grant", "chips", "walltime_s", "accelerator", "class", "name", "argv"}},
      {"job_cancel", {"job"}},
      {"job_finish", {"job"}},
      {"node_drain", {"node"}},
      {"node_resume", {"node"}},
      {"tick", {}},
  };
  return shapes;
}

}  // namespace

const std::vector<std::string_view>* OpFields(std::string_view op) {
  for (const OpShape& shape : OpShapes()) {
    if (shape.op == op) return &shape.fields;
  }
  return nullptr;
}

namespace {

Status CheckShape(const std::string& op, const json& command) {
  for (const OpShape& shape : OpShapes()) {
    if (shape.op != op) continue;
    for (const auto& [key, value] : command.items()) {
      if (key == "op" || key == "actor" || key == "idempotency_key") continue;
      if (std::find(shape.fields.begin(), shape.fields.end(), key) == shape.fields.end()) {
        return Error{ErrorCode::kUnknownField, "unknown field " + key, key};
      }
    }
    return OkStatus();
  }
  return Invalid("unknown op " + op, "op");
}

// What makes two requests the same for an Idempotency-Key: the command without the
// fields the service draws afresh for every request (a new token's id, salt and hash; a
// new program's seal secret).
std::string Fingerprint(const json& command) {
  json copy = command;
  for (const char* drawn : {"token_id", "salt", "hash"}) {
    if (copy.value("op", "") == "token_create") copy.erase(drawn);
  }
  if (copy.value("op", "") == "program_create") copy.erase("seal_secret");
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

const AppAnswer* AppState::FindIdempotent(const std::string& token, const std::string& key) const {
  const auto found = idempotency_.find({token, key});
  return found == idempotency_.end() ? nullptr : &found->second;
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
    if (const AppAnswer* first = FindIdempotent(actor->token, key)) {
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

  Result<json> result = [&]() -> Result<json> {
    try {
      return Dispatch(op, command, *actor, now_us);
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
  if (answer.changed) {
    last_now_us_ = now_us;
    history_.emplace_back(now_us, command.dump());
    if (!key.empty()) {
      AppAnswer stored = answer;
      stored.result["_request"] = Fingerprint(command);
      idempotency_.emplace(std::make_pair(actor->token, key), std::move(stored));
      idempotency_order_.emplace_back(now_us, std::make_pair(actor->token, key));
    }
    // Keys are kept for a day (a retry comes within minutes), and at most
    // kIdempotencyMax of them: the oldest go first.
    while (!idempotency_order_.empty() &&
           (idempotency_order_.front().first < now_us - kIdempotencyKeepUs ||
            idempotency_order_.size() > kIdempotencyMax)) {
      idempotency_.erase(idempotency_order_.front().second);
      idempotency_order_.pop_front();
    }
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
                                int64_t now_us) {
  const Fields fields(command, "");

  if (op == "token_create") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string id, fields.Id("token_id"));
    ATRIUM_ASSIGN_OR_RETURN(const std::string role_text, fields.Text("role", 32));
    ATRIUM_ASSIGN_OR_RETURN(const Role role, ParseRole(role_text));
    ATRIUM_ASSIGN_OR_RETURN(const std::string person, fields.Id("person", false, false));
    ATRIUM_ASSIGN_OR_RETURN(const std::string label, fields.Text("label", 200, false));
    ATRIUM_ASSIGN_OR_RETURN(const std::string salt, fields.Text("salt", 64));
    ATRIUM_ASSIGN_OR_RETURN(const std::string hash, fields.Text("hash", 64));
    if (role == Role::kPublic) return Invalid("a token cannot have the public role", "role");
    const bool bootstrap = tokens_created_ == 0 && role == Role::kAdmin;
    if (!bootstrap && actor.role != Role::kAdmin &&
        (role != actor.role || person != actor.person)) {
      return Forbidden("only an admin creates tokens for other roles or people");
    }
    if (salt.size() != 32 || hash.size() != 64) {
      return Invalid("a token record holds a 16-byte salt and a SHA-256 hash, in hex", "hash");
    }
    PurgeRevokedTokens(now_us);
    if (tokens_.contains(id)) return Error{ErrorCode::kAlreadyExists, "token exists", "token_id"};
    std::deque<int64_t>* creations = nullptr;
    if (actor.role != Role::kAdmin && !bootstrap) {
      const auto live = live_by_person_.find({person, role});
      if (live != live_by_person_.end() && live->second >= kTokensPerPersonMax) {
        return Error{ErrorCode::kLimitExceeded,
                     "at most " + std::to_string(kTokensPerPersonMax) +
                         " live tokens per person and role; revoke one first",
                     "role"};
      }
      creations = &creations_by_creator_[actor.person.empty() ? actor.token : actor.person];
      while (!creations->empty() && creations->front() <= now_us - 3'600'000'000LL) {
        creations->pop_front();
      }
      if (creations->size() >= kTokenCreationsPerHourMax) {
        return Error{ErrorCode::kRateLimited,
                     "at most " + std::to_string(kTokenCreationsPerHourMax) +
                         " token creations per person an hour; retry later",
                     ""};
      }
    }
    if (live_tokens_ >= kTokensMax) {
      return Error{ErrorCode::kLimitExceeded, "too many live tokens", ""};
    }
    if (creations != nullptr) creations->push_back(now_us);
    ++live_tokens_;
    ++tokens_created_;
    ++live_by_person_[{person, role}];
    tokens_.emplace(id, TokenRecord{.id = id,
                                    .role = role,
                                    .person = person,
                                    .label = label,
                                    .salt_hex = salt,
                                    .hash_hex = hash,
                                    .created_us = now_us,
                                    .created_by = bootstrap ? "bootstrap" : actor.token});
    return json{{"token_id", id}, {"role", ToString(role)}, {"person", person}};
  }
  if (op == "token_revoke") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string id, fields.Id("token_id"));
    const auto found = tokens_.find(id);
    if (found == tokens_.end()) return Error{ErrorCode::kNotFound, "no token " + id, "token_id"};
    // Its owner: the token itself, or any token of the same role and person (a lost
    // token is revoked from another one).
    const bool owner =
        actor.token == id || (!actor.person.empty() && found->second.person == actor.person &&
                              found->second.role == actor.role);
    if (actor.role != Role::kAdmin && !owner) {
      return Forbidden("only an admin revokes another's token");
    }
    if (found->second.revoked) return Error{ErrorCode::kInvalidState, "token already revoked", ""};
    found->second.revoked = true;
    --live_tokens_;
    const auto live = live_by_person_.find({found->second.person, found->second.role});
    if (live != live_by_person_.end() && --live->second == 0) live_by_person_.erase(live);
    revoked_order_.emplace_back(now_us, id);
    PurgeRevokedTokens(now_us);
    return json{{"token_id", id}, {"revoked", true}};
  }
  if (op == "program_create") {
    ATRIUM_TRY(RequireStaff(actor));
    ATRIUM_ASSIGN_OR_RETURN(const std::string toml, fields.Text("toml", 1 << 20));
    ATRIUM_ASSIGN_OR_RETURN(program::ProgramDefinition definition,
                            program::ParseProgramToml(toml, now_us));
    if (!ValidId(definition.id, false)) return Error{ErrorCode::kInvalidId, "bad program id", "id"};
    if (programs_.contains(definition.id)) {
      return Error{ErrorCode::kAlreadyExists, "program " + definition.id + " exists", "id"};
    }
    // The key of the public log's sealed reviews, drawn by the shell (docs/program.md).
    ATRIUM_ASSIGN_OR_RETURN(std::string seal_secret, fields.Text("seal_secret", 128, false));
    if (!seal_secret.empty() && seal_secret.size() < 32) {
      return Invalid("seal_secret must hold at least 32 characters", "seal_secret");
    }
    const std::string id = definition.id;
    ATRIUM_ASSIGN_OR_RETURN(
        program::ProgramState state,
        program::ProgramState::Create(std::move(definition), now_us, std::move(seal_secret),
                                      ledger_.get(), next_program_ordinal_));
    ++next_program_ordinal_;
    programs_.emplace(id, std::move(state));
    return json{{"program", id}};
  }
  if (op == "cluster_load") {
    ATRIUM_TRY(RequireRole(actor, {Role::kAdmin}));
    ATRIUM_ASSIGN_OR_RETURN(const std::string toml, fields.Text("toml", 1 << 20));
    if (cluster_) return Error{ErrorCode::kAlreadyExists, "the cluster is loaded", "toml"};
    ATRIUM_ASSIGN_OR_RETURN(const std::string policy, fields.Text("policy", 64, false));
    ATRIUM_TRY(LoadCluster(toml, policy));
    return json{{"cluster", cluster_->name()},
                {"nodes", cluster_->nodes().size()},
                {"policy", policy_name_}};
  }
  if (op == "tick") {
    ATRIUM_TRY(RequireRole(actor, {Role::kAdmin}));
    const int64_t events = TickPrograms(now_us);
    bool pass = false;
    if (scheduler_ && (scheduler_->waiting_count() > 0 || TickDue(now_us))) {
      Schedule(now_us);
      pass = true;
    }
    return json{{"changed", events > 0 || pass}, {"program_events", events}};
  }
  if (op == "job_submit") return SubmitJob(command, actor, now_us);
  if (op == "job_cancel" || op == "job_finish") return FinishJob(command, actor, now_us);
  if (op == "node_drain" || op == "node_resume") {
    ATRIUM_TRY(RequireRole(actor, {Role::kAdmin, Role::kOperator}));
    if (!cluster_) return Error{ErrorCode::kInvalidState, "no cluster is loaded", ""};
    ATRIUM_ASSIGN_OR_RETURN(const std::string name, fields.Id("node"));
    const auto node = cluster_->FindNode(name);
    if (!node) return Error{ErrorCode::kNotFound, "no node " + name, "node"};
    const auto state = op == "node_drain" ? cluster::NodeState::kDraining : cluster::NodeState::kUp;
    if (node_states_[*node] == state) {
      return Error{ErrorCode::kInvalidState,
                   "node " + name + " is already " + std::string(cluster::ToString(state)), "node"};
    }
    ATRIUM_TRY(scheduler_->SetNodeState(*node, state));
    node_states_[*node] = state;
    if (state == cluster::NodeState::kUp) Schedule(now_us);
    return json{{"node", name}, {"state", cluster::ToString(state)}};
  }

  // Program ops.
  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, MutableProgram(command));
  program::ProgramState& state = *program;
  if (op == "institution_add") {
    ATRIUM_TRY(RequireStaff(actor));
    if (!fields.Has("institution")) return Invalid("institution is required", "institution");
    const Fields in(fields.Object("institution"), "institution");
    ATRIUM_TRY(in.Only({"id", "name", "type", "country"}));
    program::Institution institution;
    ATRIUM_ASSIGN_OR_RETURN(institution.id, in.Id("id"));
    ATRIUM_ASSIGN_OR_RETURN(institution.name, in.Text("name", 500));
    ATRIUM_ASSIGN_OR_RETURN(institution.type, in.Text("type", 64));
    ATRIUM_ASSIGN_OR_RETURN(institution.country, in.Text("country", 2));
    const std::string id = institution.id;
    ATRIUM_TRY(state.AddInstitution(std::move(institution), now_us));
    return json{{"institution", id}};
  }
  if (op == "person_add") {
    ATRIUM_TRY(RequireStaff(actor));
    if (!fields.Has("person")) return Invalid("person is required", "person");
    const Fields in(fields.Object("person"), "person");
    ATRIUM_TRY(
        in.Only({"id", "name", "institution", "role", "expertise", "collaborators", "reviewer"}));
    program::Person person;
    ATRIUM_ASSIGN_OR_RETURN(person.id, in.Id("id"));
    ATRIUM_ASSIGN_OR_RETURN(person.name, in.Text("name", 500));
    ATRIUM_ASSIGN_OR_RETURN(person.institution, in.Id("institution"));
    ATRIUM_ASSIGN_OR_RETURN(person.role, in.Text("role", 64));
    ATRIUM_ASSIGN_OR_RETURN(person.expertise, in.Strings("expertise", false));
    ATRIUM_ASSIGN_OR_RETURN(person.collaborators, in.Strings("collaborators", true));
    ATRIUM_ASSIGN_OR_RETURN(person.reviewer, in.Bool("reviewer", false));
    const std::string id = person.id;
    ATRIUM_TRY(state.AddPerson(std::move(person), now_us));
    return json{{"person", id}};
  }
  if (op == "call_open" || op == "call_close" || op == "call_assign" || op == "decision_draft" ||
      op == "decision_commit") {
    ATRIUM_TRY(RequireStaff(actor));
    ATRIUM_ASSIGN_OR_RETURN(const std::string call, fields.Id("call"));
    if (state.FindCall(call) == nullptr)
      return Error{ErrorCode::kNotFound, "no call " + call, "call"};
    if (op == "call_open") ATRIUM_TRY(state.OpenCall(call, now_us));
    if (op == "call_close") ATRIUM_TRY(state.CloseCall(call, now_us));
    if (op == "call_assign") {
      ATRIUM_ASSIGN_OR_RETURN(const program::AssignmentStats stats,
                              state.AssignReviewers(call, now_us));
      return json{{"call", call},
                  {"reviewer_load_min", stats.load_min},
                  {"reviewer_load_max", stats.load_max},
                  {"with_expertise", stats.with_expertise}};
    }
    if (op == "decision_draft") {
      ATRIUM_ASSIGN_OR_RETURN(const std::string policy, fields.Text("policy", 16, false));
      ATRIUM_ASSIGN_OR_RETURN(const program::Decision decision,
                              state.DraftDecision(call, now_us, policy));
      return json{{"call", call},
                  {"policy", decision.policy},
                  {"optimal", decision.optimal},
                  {"total_awarded", decision.total_awarded.ToString()}};
    }
    if (op == "decision_commit") ATRIUM_TRY(state.CommitDecision(call, now_us));
    return json{{"call", call}, {"state", program::ToString(state.call_state(call))}};
  }
  if (op == "proposal_submit") {
    ATRIUM_TRY(RequireRole(actor, {Role::kAdmin, Role::kOfficer, Role::kResearcher}));
    if (!fields.Has("proposal")) return Invalid("proposal is required", "proposal");
    const Fields in(fields.Object("proposal"), "proposal");
    ATRIUM_TRY(in.Only({"id", "call", "pi", "co_investigators", "title", "abstract", "topics",
                        "requested", "chip_hours", "duration_months", "open_source_plan"}));
    program::ProposalInput input;
    ATRIUM_ASSIGN_OR_RETURN(input.id, in.Id("id"));
    ATRIUM_ASSIGN_OR_RETURN(input.call, in.Id("call"));
    ATRIUM_ASSIGN_OR_RETURN(input.pi, in.Id("pi", false, actor.role != Role::kResearcher));
    if (input.pi.empty()) input.pi = actor.person;
    if (actor.role == Role::kResearcher && input.pi != actor.person) {
      return Forbidden("a researcher submits proposals as their own PI");
    }
    ATRIUM_ASSIGN_OR_RETURN(input.co_investigators, in.Strings("co_investigators", true));
    ATRIUM_ASSIGN_OR_RETURN(input.title, in.Text("title", 500));
    ATRIUM_ASSIGN_OR_RETURN(input.abstract, in.Text("abstract"));
    ATRIUM_ASSIGN_OR_RETURN(input.topics, in.Strings("topics", false));
    ATRIUM_ASSIGN_OR_RETURN(input.requested, in.Amount("requested", false));
    if (in.Has("chip_hours")) {
      const json& list = in.Object("chip_hours");
      if (!list.is_array() || list.size() > 16) {
        return Invalid("proposal.chip_hours is an array of at most 16 requests",
                       "proposal.chip_hours");
      }
      for (const json& item : list) {
        const Fields ch(item, "proposal.chip_hours");
        ATRIUM_TRY(ch.Only({"accelerator", "chip_hours"}));
        program::ChipHours request;
        ATRIUM_ASSIGN_OR_RETURN(request.accelerator, ch.Id("accelerator"));
        ATRIUM_ASSIGN_OR_RETURN(request.chip_hours, ch.Int("chip_hours", 1, 1'000'000'000));
        input.chip_hours.push_back(std::move(request));
      }
    }
    ATRIUM_ASSIGN_OR_RETURN(input.duration_months, in.Int("duration_months", 1, 120, 12));
    ATRIUM_ASSIGN_OR_RETURN(input.open_source_plan, in.Text("open_source_plan", kTextMax, false));
    if (const auto existing = state.proposals().find(input.id);
        existing != state.proposals().end() && actor.role == Role::kResearcher &&
        existing->second.input.pi != actor.person) {
      return Forbidden("only its PI edits a proposal");
    }
    const std::string id = input.id;
    ATRIUM_TRY(state.SubmitProposal(std::move(input), now_us));
    const program::Proposal& stored = state.proposals().at(id);
    return json{{"proposal", id},
                {"status", program::ToString(stored.status)},
                {"requested", stored.requested.ToString()}};
  }
  if (op == "proposal_withdraw") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string id, fields.Id("proposal"));
    const auto found = state.proposals().find(id);
    if (found == state.proposals().end() || !CanSeeProposal(state, actor, found->second)) {
      return Error{ErrorCode::kNotFound, "no proposal " + id, "proposal"};
    }
    if (!IsStaff(actor) && found->second.input.pi != actor.person) {
      return Forbidden("only its PI or program staff withdraw a proposal");
    }
    ATRIUM_TRY(state.WithdrawProposal(id, now_us));
    return json{{"proposal", id}, {"status", "withdrawn"}};
  }
  if (op == "conflict_declare") {
    ATRIUM_TRY(RequireRole(actor, {Role::kAdmin, Role::kOfficer, Role::kReviewer}));
    ATRIUM_ASSIGN_OR_RETURN(const std::string proposal, fields.Id("proposal"));
    ATRIUM_ASSIGN_OR_RETURN(std::string reviewer,
                            fields.Id("reviewer", false, actor.role != Role::kReviewer));
    if (reviewer.empty()) reviewer = actor.person;
    if (actor.role == Role::kReviewer && reviewer != actor.person) {
      return Forbidden("a reviewer declares their own conflicts");
    }
    ATRIUM_ASSIGN_OR_RETURN(std::string note, fields.Text("note", 2000, false));
    if (!state.proposals().contains(proposal)) {
      return Error{ErrorCode::kNotFound, "no proposal " + proposal, "proposal"};
    }
    ATRIUM_TRY(state.DeclareConflict(reviewer, proposal, std::move(note), now_us));
    return json{{"proposal", proposal}, {"reviewer", reviewer}};
  }
  if (op == "review_submit") {
    ATRIUM_TRY(RequireRole(actor, {Role::kReviewer}));
    ATRIUM_ASSIGN_OR_RETURN(const std::string proposal, fields.Id("proposal"));
    if (!fields.Has("scores") || !fields.Object("scores").is_array() ||
        fields.Object("scores").size() > 64) {
      return Invalid("scores is an array of integers, one per rubric criterion", "scores");
    }
    std::vector<int64_t> scores;
    for (const json& score : fields.Object("scores")) {
      if (!score.is_number_integer()) return Invalid("scores are integers", "scores");
      scores.push_back(score.get<int64_t>());
    }
    ATRIUM_ASSIGN_OR_RETURN(std::string comment, fields.Text("comment", kTextMax, false));
    const auto found = state.proposals().find(proposal);
    if (found == state.proposals().end() || !CanSeeProposal(state, actor, found->second)) {
      return Error{ErrorCode::kNotFound, "no proposal " + proposal + " assigned to you",
                   "proposal"};
    }
    ATRIUM_TRY(
        state.SubmitReview(actor.person, proposal, std::move(scores), std::move(comment), now_us));
    return json{{"proposal", proposal}, {"reviewer", actor.person}};
  }
  if (op == "grant_member_add" || op == "grant_close" || op == "student_allocate") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string grant_id, fields.Id("grant"));
    const auto found = state.grants().find(grant_id);
    if (found == state.grants().end() || !CanSeeGrant(actor, found->second)) {
      return Error{ErrorCode::kNotFound, "no grant " + grant_id, "grant"};
    }
    const bool pi = actor.role == Role::kResearcher && found->second.pi == actor.person;
    if (op == "grant_close") {
      ATRIUM_TRY(RequireStaff(actor));
      ATRIUM_TRY(CloseGrant(state, grant_id, now_us));
      return json{{"grant", grant_id}, {"status", "closed"}};
    }
    if (!IsStaff(actor) && !pi) return Forbidden("only the grant's PI or program staff do this");
    if (op == "grant_member_add") {
      ATRIUM_ASSIGN_OR_RETURN(const std::string person, fields.Id("person"));
      ATRIUM_TRY(state.AddGrantMember(grant_id, person, now_us));
      return json{{"grant", grant_id}, {"member", person}};
    }
    ATRIUM_ASSIGN_OR_RETURN(const std::string student, fields.Id("student"));
    ATRIUM_ASSIGN_OR_RETURN(const Credits amount, fields.Amount("amount"));
    ATRIUM_TRY(state.AllocateToStudent(grant_id, student, amount, now_us));
    return json{{"grant", grant_id}, {"student", student}, {"amount", amount.ToString()}};
  }
  if (op == "obligation_submit" || op == "obligation_review") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string id, fields.Id("obligation", true));
    const auto found = state.obligations().find(id);
    const auto grant = found == state.obligations().end()
                           ? state.grants().end()
                           : state.grants().find(found->second.grant);
    if (grant == state.grants().end() || !CanSeeGrant(actor, grant->second)) {
      return Error{ErrorCode::kNotFound, "no obligation " + id, "obligation"};
    }
    if (op == "obligation_review") {
      ATRIUM_TRY(RequireStaff(actor));
      ATRIUM_ASSIGN_OR_RETURN(const bool accept, fields.Bool("accept", false));
      ATRIUM_TRY(state.ReviewObligation(id, accept, now_us));
    } else {
      if (!IsStaff(actor) &&
          !(actor.role == Role::kResearcher && grant->second.pi == actor.person)) {
        return Forbidden("only the grant's PI or program staff submit its obligations");
      }
      ATRIUM_ASSIGN_OR_RETURN(std::string reference, fields.Text("reference", 2000));
      ATRIUM_ASSIGN_OR_RETURN(std::string license, fields.Text("license", 64, false));
      ATRIUM_TRY(state.SubmitObligation(id, std::move(reference), std::move(license), now_us));
    }
    return json{{"obligation", id}, {"state", program::ToString(state.obligations().at(id).state)}};
  }
  return Invalid("unknown op " + op, "op");
}

}  // namespace atrium::core
