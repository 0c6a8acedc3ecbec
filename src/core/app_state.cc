#include "core/app_state.h"

#include <algorithm>
#include <array>
#include <set>

#include <openssl/sha.h>

#include "cluster/config.h"
#include "core/access.h"
#include "core/ops.h"
#include "program/loader.h"
#include "sched/policy.h"

namespace atrium::core {
namespace {

using nlohmann::json;

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kWalltimeMaxS = 30 * 24 * 3600;
constexpr size_t kTextMax = program::ProgramState::kTextBytesMax;
constexpr size_t kListMax = 1'000;

constexpr std::array<std::string_view, kRoleCount> kRoleNames = {
    "admin", "officer", "reviewer", "researcher", "student", "operator", "public"};

Error Invalid(std::string message, std::string field) {
  return Error{ErrorCode::kInvalidArgument, std::move(message), std::move(field)};
}

Error Forbidden(std::string message) {
  return Error{ErrorCode::kForbidden, std::move(message), ""};
}

// Typed, bounded access to a JSON object's fields, and a check that it has no others.
class Fields {
 public:
  Fields(const json& object, std::string prefix) : object_(object), prefix_(std::move(prefix)) {}

  Status Only(std::initializer_list<std::string_view> allowed) const {
    if (!object_.is_object()) return Invalid("expected an object", Name(""));
    for (const auto& [key, value] : object_.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        return Error{ErrorCode::kUnknownField, "unknown field " + Name(key), Name(key)};
      }
    }
    return OkStatus();
  }

  bool Has(const char* key) const { return object_.contains(key) && !object_.at(key).is_null(); }

  Result<std::string> Text(const char* key, size_t max_bytes = kTextMax,
                           bool required = true) const {
    if (!Has(key)) {
      if (required) return Invalid(Name(key) + " is required", Name(key));
      return std::string();
    }
    const json& value = object_.at(key);
    if (!value.is_string()) return Invalid(Name(key) + " must be a string", Name(key));
    std::string text = value.get<std::string>();
    if (text.size() > max_bytes) {
      return Error{ErrorCode::kTooLong,
                   Name(key) + " is longer than " + std::to_string(max_bytes) + " bytes",
                   Name(key)};
    }
    return text;
  }

  Result<std::string> Id(const char* key, bool slash = false, bool required = true) const {
    ATRIUM_ASSIGN_OR_RETURN(std::string id, Text(key, AppState::kIdBytesMax + 1, required));
    if (id.empty() && !required) return id;
    if (!ValidId(id, slash)) {
      return Error{ErrorCode::kInvalidId,
                   Name(key) + " must be 1-128 characters of letters, digits and . _ : @ -",
                   Name(key)};
    }
    return id;
  }

  Result<int64_t> Int(const char* key, int64_t min, int64_t max,
                      std::optional<int64_t> fallback = std::nullopt) const {
    if (!Has(key)) {
      if (fallback) return *fallback;
      return Invalid(Name(key) + " is required", Name(key));
    }
    const json& value = object_.at(key);
    if (!value.is_number_integer()) return Invalid(Name(key) + " must be an integer", Name(key));
    if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(max)) {
      return Error{ErrorCode::kOutOfRange, Name(key) + " is out of range", Name(key)};
    }
    const auto number = value.get<int64_t>();
    if (number < min || number > max) {
      return Error{
          ErrorCode::kOutOfRange,
          Name(key) + " must be between " + std::to_string(min) + " and " + std::to_string(max),
          Name(key)};
    }
    return number;
  }

  Result<bool> Bool(const char* key, bool fallback) const {
    if (!Has(key)) return fallback;
    if (!object_.at(key).is_boolean())
      return Invalid(Name(key) + " must be true or false", Name(key));
    return object_.at(key).get<bool>();
  }

  Result<Credits> Amount(const char* key, bool required = true) const {
    ATRIUM_ASSIGN_OR_RETURN(const std::string text, Text(key, 40, required));
    if (text.empty()) return Credits::Zero();
    auto parsed = Credits::Parse(text);
    if (!parsed.ok())
      return Invalid(Name(key) + " must be a decimal amount such as \"12.5\"", Name(key));
    if (parsed->is_negative()) return Invalid(Name(key) + " must not be negative", Name(key));
    return *parsed;
  }

  Result<std::vector<std::string>> Strings(const char* key, bool ids) const {
    std::vector<std::string> out;
    if (!Has(key)) return out;
    const json& value = object_.at(key);
    if (!value.is_array()) return Invalid(Name(key) + " must be an array of strings", Name(key));
    if (value.size() > kListMax) {
      return Error{ErrorCode::kTooLong, Name(key) + " has too many items", Name(key)};
    }
    for (const json& item : value) {
      if (!item.is_string()) return Invalid(Name(key) + " must be an array of strings", Name(key));
      std::string text = item.get<std::string>();
      if (ids ? !ValidId(text, false) : text.size() > kTextMax) {
        return Error{ErrorCode::kInvalidId, Name(key) + " holds an invalid item", Name(key)};
      }
      out.push_back(std::move(text));
    }
    return out;
  }

  const json& Object(const char* key) const { return object_.at(key); }
  std::string Name(std::string_view key) const {
    if (prefix_.empty()) return std::string(key);
    return key.empty() ? prefix_ : prefix_ + "." + std::string(key);
  }

 private:
  const json& object_;
  std::string prefix_;
};

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

Status RequireRole(const Actor& actor, std::initializer_list<Role> roles) {
  if (std::find(roles.begin(), roles.end(), actor.role) != roles.end()) return OkStatus();
  return Forbidden("the " + std::string(ToString(actor.role)) + " role may not do this");
}

// The first check of every op, before its actor is read: a known op, and no field the
// op table does not declare for it (nested objects are checked with the op's fields).
Status CheckShape(const std::string& op, const json& command) {
  const OpSpec* spec = FindOp(op);
  if (spec == nullptr) return Invalid("unknown op " + op, "op");
  for (const auto& [key, value] : command.items()) {
    if (key == "op" || key == "actor" || key == "idempotency_key") continue;
    const bool known = std::any_of(spec->fields.begin(), spec->fields.end(),
                                   [&](const FieldSpec& field) { return field.name == key; });
    if (!known) return Error{ErrorCode::kUnknownField, "unknown field " + key, key};
  }
  return OkStatus();
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

std::string SchedGrantName(const std::string& program, const std::string& grant) {
  return program + "/" + grant;
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

AppState::AppState() = default;
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
                                        .args = OpArgs(command, spec->fields)});
}

Status AppState::LoadCluster(const std::string& toml) {
  ATRIUM_ASSIGN_OR_RETURN(cluster::Cluster cluster, cluster::ParseClusterToml(toml, "cluster"));
  auto policy = sched::MakePolicy("backfill");
  if (!policy.ok()) return policy.error();
  cluster_ = std::make_unique<cluster::Cluster>(std::move(cluster));
  cluster_ledger_ = std::make_unique<ledger::Ledger>();
  scheduler_ = std::make_unique<sched::Scheduler>(*cluster_, *cluster_ledger_, std::move(*policy));
  node_states_.clear();
  for (const cluster::Node& node : cluster_->nodes()) node_states_.push_back(node.state);
  return OkStatus();
}

Status AppState::SyncGrant(const std::string& program_id, const std::string& grant_id,
                           int64_t now_us) {
  const program::ProgramState* program = FindProgram(program_id);
  const auto grant = program->grants().find(grant_id);
  const std::string name = SchedGrantName(program_id, grant_id);
  auto index = scheduler_->FindGrant(name);
  if (!index) {
    const auto job_class = [&] {
      const program::Track* track = program->FindTrack(grant->second.track);
      return track != nullptr && track->kind == program::TrackKind::kEducation
                 ? cluster::JobClass::kEducation
                 : cluster::JobClass::kResearch;
    }();
    ATRIUM_ASSIGN_OR_RETURN(const uint32_t added,
                            scheduler_->AddGrant(name, Credits::Zero(),
                                                 static_cast<double>(grant->second.awarded.micro()),
                                                 job_class, now_us / kMicrosPerSecond));
    index = added;
    sched_grants_.emplace(name, std::make_pair(program_id, grant_id));
  }
  // What the program lets the grant spend: nothing once frozen, expired or closed.
  const Credits target = grant->second.status == program::GrantStatus::kActive
                             ? program->AccountBalance(grant->second.account)
                             : Credits::Zero();
  const Id128 account = scheduler_->grants()[*index].account;
  const auto current = cluster_ledger_->FindAccount(account);
  const int64_t delta = target.micro() - current->balance().micro();
  if (delta == 0) return OkStatus();
  const ledger::TransferSpec sync{
      .id = next_sync_transfer_++,
      .debit_account_id = delta > 0 ? sched::SchedulerConfig{}.sponsor_account : account,
      .credit_account_id = delta > 0 ? account : sched::SchedulerConfig{}.sponsor_account,
      .amount = Credits::FromMicro(delta > 0 ? delta : -delta),
      .flags = static_cast<uint16_t>(delta > 0 ? 0 : ledger::kBalancingDebit)};
  // Only a balancing debit of an account whose credits are all held can move nothing; the
  // held jobs then keep their holds and nothing new is admitted, so a refusal is fine.
  (void)cluster_ledger_->CreateTransfers({&sync, 1}, now_us);
  return OkStatus();
}

void AppState::Schedule(int64_t now_us) {
  const int64_t now_s = now_us / kMicrosPerSecond;
  // Runs that reached their walltime end at their limit, not at now.
  while (!running_by_end_.empty() && running_by_end_.begin()->first <= now_s) {
    const auto [end_s, sched_id] = *running_by_end_.begin();
    running_by_end_.erase(running_by_end_.begin());
    scheduler_->Finish(sched_id, end_s, sched::RunEnd::kWalltime);
    ChargeJob(jobs_.at(job_by_sched_.at(sched_id)), now_us);
  }
  if (scheduler_->waiting_count() == 0) return;
  for (const auto& [name, grant] : sched_grants_)
    (void)SyncGrant(grant.first, grant.second, now_us);
  const sched::PassResult pass = scheduler_->Pass(now_s);
  for (const sched::JobId started : pass.started) {
    running_by_end_.emplace(scheduler_->job(started).expected_end_s(), started);
  }
}

void AppState::ChargeJob(JobRecord& record, int64_t now_us) {
  const sched::Job& job = scheduler_->job(record.sched_id);
  const int64_t due = job.charged.micro() - record.charged_recorded.micro();
  if (due <= 0) return;
  auto found = programs_.find(record.program);
  if (found == programs_.end()) return;
  // A grant frozen or closed while the job ran refuses the charge; it then stays in the
  // cluster's record of the job (charged) and shows as unbilled (charged - billed).
  if (found->second.RecordUsage(record.grant, Credits::FromMicro(due), now_us).ok()) {
    record.charged_recorded = job.charged;
  }
}

Result<json> AppState::SubmitJob(const json& command, const Actor& actor, int64_t now_us) {
  ATRIUM_TRY(RequireRole(actor, {Role::kAdmin, Role::kOfficer, Role::kResearcher, Role::kStudent}));
  if (!cluster_) return Error{ErrorCode::kInvalidState, "no cluster is loaded", ""};
  const Fields fields(command, "");
  JobRecord record;
  ATRIUM_ASSIGN_OR_RETURN(record.program, fields.Id("program"));
  ATRIUM_ASSIGN_OR_RETURN(record.grant, fields.Id("grant"));
  const program::ProgramState* program = FindProgram(record.program);
  if (program == nullptr)
    return Error{ErrorCode::kNotFound, "no program " + record.program, "program"};
  const auto grant = program->grants().find(record.grant);
  if (grant == program->grants().end() || !CanSeeGrant(actor, grant->second)) {
    return Error{ErrorCode::kNotFound, "no grant " + record.grant, "grant"};
  }
  if (grant->second.status != program::GrantStatus::kActive) {
    return Error{
        ErrorCode::kGrantNotActive,
        "grant " + record.grant + " is " + std::string(program::ToString(grant->second.status)),
        "grant"};
  }
  ATRIUM_ASSIGN_OR_RETURN(const int64_t chips, fields.Int("chips", 1, 1'000'000));
  ATRIUM_ASSIGN_OR_RETURN(const int64_t walltime_s, fields.Int("walltime_s", 1, kWalltimeMaxS));
  ATRIUM_ASSIGN_OR_RETURN(const std::string accelerator, fields.Id("accelerator", false, false));
  ATRIUM_ASSIGN_OR_RETURN(record.name, fields.Text("name", 200, false));
  ATRIUM_ASSIGN_OR_RETURN(record.argv, fields.Strings("argv", false));
  size_t argv_bytes = 0;
  for (const std::string& arg : record.argv) argv_bytes += arg.size();
  if (argv_bytes > kArgvBytesMax) {
    return Error{ErrorCode::kTooLong, "argv is longer than 16 KiB", "argv"};
  }
  const program::Track* track = program->FindTrack(grant->second.track);
  cluster::JobClass job_class = track != nullptr && track->kind == program::TrackKind::kEducation
                                    ? cluster::JobClass::kEducation
                                    : cluster::JobClass::kResearch;
  ATRIUM_ASSIGN_OR_RETURN(const std::string class_text, fields.Text("class", 32, false));
  if (!class_text.empty()) {
    auto parsed = cluster::ParseJobClass(class_text);
    if (!parsed.ok()) return Invalid("class must be research, education or preemptible", "class");
    // A grant's class sets its partition and priority; others may only step down to
    // preemptible.
    if (*parsed != job_class && *parsed != cluster::JobClass::kPreemptible && !IsStaff(actor)) {
      return Forbidden("this grant's jobs are " + std::string(cluster::ToString(job_class)) +
                       " (or preemptible)");
    }
    job_class = *parsed;
  }
  if (scheduler_->waiting_count() >= kWaitingJobsMax || scheduler_->job_count() >= kJobsMax) {
    return Error{ErrorCode::kLimitExceeded, "the job queue is full; retry later", ""};
  }
  if (auto shape = cluster_->Shape(accelerator, chips); !shape.ok()) {
    Error error = shape.error();
    error.field = error.code == ErrorCode::kUnknownAccelerator ? "accelerator" : "chips";
    return error;
  }
  if (Status partition = cluster_->CheckPartition(job_class, chips, walltime_s); !partition.ok()) {
    return partition.error();
  }
  record.id = "J" + std::to_string(next_job_);
  record.owner = actor.person;
  record.submitted_us = now_us;
  ATRIUM_TRY(SyncGrant(record.program, record.grant, now_us));
  const int64_t now_s = now_us / kMicrosPerSecond;
  record.sched_id =
      scheduler_->Submit(sched::JobSpec{.id = record.id,
                                        .grant = SchedGrantName(record.program, record.grant),
                                        .job_class = job_class,
                                        .accelerator = accelerator,
                                        .chips = chips,
                                        .submit_s = now_s,
                                        .duration_s = walltime_s,
                                        .walltime_s = walltime_s},
                         now_s);
  const sched::Job& job = scheduler_->job(record.sched_id);
  ATRIUM_CHECK(job.state != sched::JobState::kRejected, "a checked job was rejected");
  ++next_job_;
  const std::string id = record.id;
  job_by_sched_.emplace(record.sched_id, id);
  jobs_.emplace(id, std::move(record));
  // An empty queue gets its pass at once; a longer one waits for the clock's next tick
  // (one pass serves every job submitted meanwhile, as in Slurm's main scheduler).
  if (scheduler_->waiting_count() == 1) Schedule(now_us);
  return json{{"job", id},
              {"state", sched::ToString(scheduler_->job(jobs_.at(id).sched_id).state)}};
}

Result<json> AppState::FinishJob(const json& command, const Actor& actor, int64_t now_us) {
  const Fields fields(command, "");
  ATRIUM_ASSIGN_OR_RETURN(const std::string id, fields.Id("job"));
  const auto found = jobs_.find(id);
  if (found == jobs_.end() || !CanSeeJob(*this, actor, found->second)) {
    return Error{ErrorCode::kNotFound, "no job " + id, "job"};
  }
  JobRecord& record = found->second;
  const bool cancel = command.at("op") == "job_cancel";
  if (cancel) {
    const bool owner_or_pi = [&] {
      if (record.owner == actor.person && !actor.person.empty()) return true;
      const program::ProgramState* program = FindProgram(record.program);
      const auto grant = program->grants().find(record.grant);
      return grant != program->grants().end() && grant->second.pi == actor.person &&
             !actor.person.empty();
    }();
    if (!owner_or_pi && actor.role != Role::kAdmin && actor.role != Role::kOperator &&
        actor.role != Role::kOfficer) {
      return Forbidden("only the job's owner, its grant's PI, an operator or staff cancel it");
    }
  } else {
    ATRIUM_TRY(RequireRole(actor, {Role::kAdmin, Role::kOperator}));
  }
  const sched::Job& job = scheduler_->job(record.sched_id);
  const int64_t now_s = now_us / kMicrosPerSecond;
  // A run past its walltime has ended, whether or not a tick has recorded it yet.
  const bool running = job.state == sched::JobState::kRunning && job.expected_end_s() > now_s;
  if (cancel && !running && job.state != sched::JobState::kPending) {
    return Error{ErrorCode::kInvalidState, "job " + id + " has ended", "job"};
  }
  if (!cancel && !running) {
    return Error{ErrorCode::kInvalidState, "job " + id + " is not running", "job"};
  }
  if (running) running_by_end_.erase({job.expected_end_s(), record.sched_id});
  if (cancel) {
    ATRIUM_TRY(scheduler_->Cancel(record.sched_id, now_s));
    record.cancelled = true;
  } else {
    scheduler_->Finish(record.sched_id, now_s, sched::RunEnd::kCompleted);
  }
  ChargeJob(record, now_us);
  Schedule(now_us);
  const sched::Job& after = scheduler_->job(record.sched_id);
  return json{
      {"job", id}, {"state", sched::ToString(after.state)}, {"charged", after.charged.ToString()}};
}

bool AppState::TickDue(int64_t now_us) const {
  if (!scheduler_) return false;
  return !running_by_end_.empty() && running_by_end_.begin()->first <= now_us / kMicrosPerSecond;
}

}  // namespace atrium::core
