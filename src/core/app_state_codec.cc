// AppState's snapshot codec: the service's state itself, never its op history. Programs
// and the scheduler use their own codecs (program_codec.cc, scheduler_codec.cc), the
// cluster is kept as the TOML text it was loaded from and parsed again; the ledger of
// record is not here (Core encodes it once, and Decode is handed it). Maps are written in
// key order, so the bytes are deterministic; derived indexes (job_by_sched_,
// jobs_by_grant_, jobs_by_owner_) are rebuilt. Every count is bounded by the bytes left
// and every reference is checked: hostile bytes give kCorruption.
//
// To add a field to JobRecord: append it to PutJob and GetJob; to TokenRecord: to
// TokenFields (one line; the same list writes and reads). To add a member to AppState: a line in
// Encode and the same at the same place in Decode. Then bump kAppVersion and Core::kSnapshotVersion
// (docs/snapshots.md, "Adding a field").
#include <cstdint>
#include <string_view>

#include "base/bytes.h"
#include "base/nesting.h"
#include "cluster/config.h"
#include "core/app_state.h"
#include "core/app_state_fields.h"

namespace atrium::core {
namespace {

constexpr uint32_t kAppMagic = 0x50504153;  // "SAPP"
// 1: snap branch (cluster ledger of its own). 2: one ledger of record (encoded by Core),
// program ordinals, the policy name, students of jobs, SchedGrant triples.
// 3: the executor's report of a job's run. 4: lab jobs' enrolments (docs/training.md)
// and the datasets a job reads.
constexpr uint32_t kAppVersion = 4;

Error Corrupt(std::string_view what) {
  return MakeError(ErrorCode::kCorruption, "app snapshot: " + std::string(what));
}

// Appends a u64 length and then what `encode` writes, patching the length in place (no
// copy of what may be hundreds of megabytes).
template <class F>
void PutSized(std::string* out, F&& encode) {
  const size_t at = out->size();
  ByteWriter(out).Put<uint64_t>(0);
  encode(out);
  std::string length;
  ByteWriter(&length).Put<uint64_t>(out->size() - at - sizeof(uint64_t));
  out->replace(at, length.size(), length);
}

// Reads what PutSized wrote.
std::string_view GetSized(ByteReader& reader) { return reader.GetRaw(reader.Get<uint64_t>()); }

void PutStatus(ByteWriter& writer, const Status& status) {
  writer.Put<uint8_t>(status.ok() ? 1 : 0);
  if (status.ok()) return;
  writer.PutBytes(ToString(status.error().code));
  writer.PutBytes(status.error().message);
  writer.PutBytes(status.error().field);
}

bool GetStatus(ByteReader& reader, Status* status) {
  const auto ok = reader.Get<uint8_t>();
  if (ok == 1) {
    *status = OkStatus();
    return reader.ok();
  }
  Error error;
  const bool known = ErrorCodeFromString(reader.GetBytes(), &error.code);
  error.message = std::string(reader.GetBytes());
  error.field = std::string(reader.GetBytes());
  *status = std::move(error);
  return ok == 0 && known && reader.ok();
}

bool GetRole(ByteReader& reader, Role* role) {
  const auto raw = reader.Get<uint8_t>();
  *role = static_cast<Role>(raw);
  return reader.ok() && raw < kRoleCount;
}

// Writes or reads plain fields (string, bool, integers, vectors of strings); used by the
// records' field lists below.
struct Out {
  ByteWriter& w;
  void put(const std::string& v) { w.PutBytes(v); }
  void put(const Interned& v) { w.PutBytes(v.str()); }
  void put(const PackedStrings& v) { put(v.Unpack()); }
  void put(bool v) { w.Put<uint8_t>(v ? 1 : 0); }
  void put(int64_t v) { w.PutZigzag(v); }
  void put(uint64_t v) { w.PutVarint<uint64_t>(v); }
  void put(uint32_t v) { w.PutVarint<uint32_t>(v); }
  void put(Role v) { w.Put<uint8_t>(static_cast<uint8_t>(v)); }
  void put(const std::vector<std::string>& v) {
    w.Put<uint32_t>(static_cast<uint32_t>(v.size()));
    for (const std::string& item : v) put(item);
  }
  template <class... T>
  void operator()(const T&... fields) {
    (put(fields), ...);
  }
};
struct In {
  ByteReader& r;
  Interner* interner = nullptr;  // where the records' ids are interned
  void get(std::string& v) { v = std::string(r.GetBytes()); }
  void get(Interned& v) { v = interner->Intern(r.GetBytes()); }
  void get(PackedStrings& v) {
    std::vector<std::string> items;
    get(items);
    v = PackedStrings(items);
  }
  void get(bool& v) {
    const auto byte = r.Get<uint8_t>();
    if (byte > 1) r.Fail();
    v = byte == 1;
  }
  void get(int64_t& v) { v = r.GetZigzag(); }
  void get(uint64_t& v) { v = r.GetVarint<uint64_t>(); }
  void get(uint32_t& v) { v = r.GetVarint<uint32_t>(); }
  void get(Role& v) {
    if (!GetRole(r, &v)) r.Fail();
  }
  void get(std::vector<std::string>& v) {
    v.resize(r.GetCount(4));
    for (std::string& item : v) get(item);
  }
  template <class... T>
  void operator()(T&... fields) {
    (get(fields), ...);
  }
};

// A job record's fields, in encoding order. The texts (name, argv, datasets) are kept
// packed in the record (JobRecord::texts) and written as separate fields.
void PutJob(Out& o, const JobRecord& job) {
  const JobTexts texts = job.UnpackTexts();
  o(job.program, job.grant, job.owner, texts.name, texts.argv, job.sched_id, job.cancelled,
    job.submitted_us, job.student, job.reported_run, job.run_started_us, job.run_ended_us,
    int64_t{job.exit_code}, int64_t{job.term_signal}, job.end_state, job.enrolment, texts.datasets);
}
bool GetJob(In& in, JobRecord& job) {
  JobTexts texts;
  int64_t exit_code = 0;
  int64_t term_signal = 0;
  in(job.program, job.grant, job.owner, texts.name, texts.argv, job.sched_id, job.cancelled,
     job.submitted_us, job.student, job.reported_run, job.run_started_us, job.run_ended_us,
     exit_code, term_signal, job.end_state, job.enrolment, texts.datasets);
  // The bounds of job_run_ended's fields.
  if (exit_code < -1 || exit_code > 255 || term_signal < 0 || term_signal > 64) return false;
  for (const std::string& dataset : texts.datasets) {
    if (dataset.empty()) return false;
  }
  job.exit_code = static_cast<int32_t>(exit_code);
  job.term_signal = static_cast<int32_t>(term_signal);
  job.SetTexts(texts.name, texts.argv, texts.datasets);
  return true;
}
template <class Io, class V>
void TokenFields(Io& io, V& token) {
  io(token.id, token.role, token.person, token.label, token.salt_hex, token.hash_hex,
     token.created_us, token.created_by, token.revoked);
}

}  // namespace

void AppState::Encode(std::string* out) const {
  ByteWriter writer(out);
  Out o{writer};
  writer.Put<uint32_t>(kAppMagic);
  writer.Put<uint32_t>(kAppVersion);
  o(last_now_us_, next_job_, next_program_ordinal_, policy_name_);
  // New scalar members go here (and at the same place in Decode).

  writer.Put<uint32_t>(static_cast<uint32_t>(programs_.size()));
  // (No structured binding here: clang 14, the fuzz build, rejects capturing one.)
  for (const auto& entry : programs_) {
    writer.PutBytes(entry.first);
    const program::ProgramState& program = entry.second;
    PutSized(out, [&program](std::string* into) { program.EncodeState(into); });
  }

  // The cluster and its scheduler (whose holds are in the ledger of record).
  writer.Put<uint8_t>(cluster_ != nullptr ? 1 : 0);
  if (cluster_ != nullptr) {
    writer.PutBytes(cluster_toml_);
    PutSized(out, [&](std::string* into) { scheduler_->Encode(into); });
    writer.Put<uint32_t>(static_cast<uint32_t>(node_states_.size()));
    for (const cluster::NodeState state : node_states_) {
      writer.Put<uint8_t>(static_cast<uint8_t>(state));
    }
  }
  writer.Put<uint32_t>(static_cast<uint32_t>(sched_grants_.size()));
  for (const auto& [name, grant] : sched_grants_)
    o(name, grant.program, grant.grant, grant.student, grant.enrolment);

  // Jobs, in id order.
  writer.Put<uint32_t>(static_cast<uint32_t>(jobs_.size()));
  for (const JobRecord& job : jobs_) {
    o(job.id());
    PutJob(o, job);
  }
  writer.Put<uint32_t>(static_cast<uint32_t>(running_by_end_.size()));
  for (const auto& [end_s, sched_id] : running_by_end_) o(end_s, sched_id);

  // Tokens.
  o(static_cast<uint64_t>(live_tokens_), tokens_created_);
  writer.Put<uint32_t>(static_cast<uint32_t>(tokens_.size()));
  for (const auto& [id, token] : tokens_) TokenFields(o, token);
  writer.Put<uint32_t>(static_cast<uint32_t>(live_by_person_.size()));
  for (const auto& [key, count] : live_by_person_) o(key.first, key.second, uint64_t{count});
  writer.Put<uint32_t>(static_cast<uint32_t>(creations_by_creator_.size()));
  for (const auto& [creator, times] : creations_by_creator_) {
    writer.PutBytes(creator);
    writer.Put<uint32_t>(static_cast<uint32_t>(times.size()));
    for (const int64_t at_us : times) writer.PutZigzag(at_us);
  }
  writer.Put<uint32_t>(static_cast<uint32_t>(revoked_order_.size()));
  for (const auto& [at_us, id] : revoked_order_) o(at_us, id);

  // Idempotency records, in the order they leave.
  // (An answer is stored only for an op that succeeded and changed the state: status ok,
  // flags "changed". The answer's JSON text is written as it is kept.)
  writer.Put<uint32_t>(static_cast<uint32_t>(idempotency_.size()));
  idempotency_.ForEach(
      [&](int64_t at_us, std::string_view token, std::string_view key, std::string_view answer) {
        o(at_us, std::string(token), std::string(key));
        PutStatus(writer, OkStatus());
        writer.PutBytes(answer);
        writer.Put<uint8_t>(1);
      });
}

Result<AppState> AppState::Decode(std::string_view bytes, ledger::Ledger ledger) {
  ByteReader reader(bytes);
  if (reader.Get<uint32_t>() != kAppMagic || !reader.ok()) return Corrupt("bad magic");
  if (const auto version = reader.Get<uint32_t>(); version != kAppVersion) {
    return MakeError(ErrorCode::kCorruption,
                     "app snapshot: unsupported version " + std::to_string(version));
  }
  AppState app;
  In in{reader, &app.interner_};
  // The ledger first: the programs and the scheduler point into it (its address is
  // stable, app.ledger_ is on the heap).
  *app.ledger_ = std::move(ledger);
  in(app.last_now_us_, app.next_job_, app.next_program_ordinal_, app.policy_name_);

  const uint32_t program_count = reader.GetCount(12);
  for (uint32_t i = 0; i < program_count; ++i) {
    std::string id(reader.GetBytes());
    const std::string_view part = GetSized(reader);
    if (!reader.ok()) return Corrupt("bad program");
    auto program = program::ProgramState::DecodeState(part, app.ledger_.get());
    if (!program.ok()) return program.error();
    if (program->ordinal() >= app.next_program_ordinal_) return Corrupt("bad program ordinal");
    if (!app.programs_.empty() && !(app.programs_.rbegin()->first < id)) {
      return Corrupt("programs out of order");
    }
    app.programs_.emplace_hint(app.programs_.end(), std::move(id), std::move(*program));
  }

  const auto has_cluster = reader.Get<uint8_t>();
  if (!reader.ok() || has_cluster > 1) return Corrupt("bad cluster flag");
  if (has_cluster == 1) {
    app.cluster_toml_ = std::string(reader.GetBytes());
    const std::string_view sched_bytes = GetSized(reader);
    if (!reader.ok()) return Corrupt("bad cluster");
    auto cluster = cluster::ParseClusterToml(app.cluster_toml_, "cluster");
    if (!cluster.ok()) return Corrupt("the cluster no longer parses: " + cluster.error().message);
    app.cluster_ = std::make_unique<cluster::Cluster>(std::move(*cluster));
    ATRIUM_ASSIGN_OR_RETURN(app.scheduler_,
                            sched::Scheduler::Decode(sched_bytes, *app.cluster_, *app.ledger_));
    const uint32_t node_count = reader.GetCount(1);
    if (node_count != app.cluster_->nodes().size()) return Corrupt("bad node states");
    for (uint32_t node = 0; node < node_count; ++node) {
      const auto state = reader.Get<uint8_t>();
      if (state > static_cast<uint8_t>(cluster::NodeState::kDraining)) {
        return Corrupt("bad node state");
      }
      app.node_states_.push_back(static_cast<cluster::NodeState>(state));
    }
  }
  const uint32_t sched_grant_count = reader.GetCount(16);
  for (uint32_t i = 0; i < sched_grant_count && reader.ok(); ++i) {
    std::string name;
    SchedGrant grant;
    in(name, grant.program, grant.grant, grant.student, grant.enrolment);
    if (!reader.ok() || app.scheduler_ == nullptr || !app.scheduler_->FindGrant(name)) {
      return Corrupt("bad scheduler grant");
    }
    if (!app.sched_grants_.empty() && !(app.sched_grants_.rbegin()->first < name)) {
      return Corrupt("grants out of order");
    }
    app.sched_grants_.emplace_hint(app.sched_grants_.end(), std::move(name), std::move(grant));
  }

  const uint32_t job_count = reader.GetCount(4 * 8 + 4);
  if (job_count > 0 && app.scheduler_ == nullptr) return Corrupt("jobs without a cluster");
  for (uint32_t i = 0; i < job_count && reader.ok(); ++i) {
    JobRecord job;
    std::string id;
    in(id);
    const bool fields_ok = GetJob(in, job);
    if (!reader.ok() || !fields_ok || job.sched_id >= app.scheduler_->job_count())
      return Corrupt("bad job");
    if (job.sched_id < app.job_by_sched_.size() && app.job_by_sched_[job.sched_id] != nullptr) {
      return Corrupt("bad job");
    }
    // Ids are "J1", "J2", ... in order, below next_job_: a record's place is its number.
    job.number = JobNumberOf(id);
    if (job.number != app.jobs_.size() + 1 || job.number >= app.next_job_) {
      return Corrupt("bad job id");
    }
    app.IndexJob(app.jobs_.Append(std::move(job)));
  }
  if (reader.ok() && app.next_job_ != app.jobs_.size() + 1) return Corrupt("bad next job number");
  const uint32_t running_count = reader.GetCount(2);
  for (uint32_t i = 0; i < running_count && reader.ok(); ++i) {
    int64_t end_s = 0;
    sched::JobId sched_id = 0;
    in(end_s, sched_id);
    if (sched_id >= app.job_by_sched_.size() || app.job_by_sched_[sched_id] == nullptr) {
      return Corrupt("bad running job");
    }
    app.running_by_end_.emplace_hint(app.running_by_end_.end(), end_s, sched_id);
  }

  uint64_t live_tokens = 0;
  in(live_tokens, app.tokens_created_);
  app.live_tokens_ = static_cast<size_t>(live_tokens);
  const uint32_t token_count = reader.GetCount(4 * 7 + 4);
  for (uint32_t i = 0; i < token_count && reader.ok(); ++i) {
    TokenRecord token;
    TokenFields(in, token);
    if (!reader.ok()) return Corrupt("bad token");
    if (!app.tokens_.empty() && !(app.tokens_.rbegin()->first < token.id)) {
      return Corrupt("tokens out of order");
    }
    std::string id = token.id;
    app.tokens_.emplace_hint(app.tokens_.end(), std::move(id), std::move(token));
  }
  const uint32_t person_count = reader.GetCount(6);
  for (uint32_t i = 0; i < person_count && reader.ok(); ++i) {
    std::string person;
    Role role = Role::kPublic;
    uint64_t count = 0;
    in(person, role, count);
    if (!reader.ok()) return Corrupt("bad token count");
    app.live_by_person_[{std::move(person), role}] = static_cast<size_t>(count);
  }
  const uint32_t creator_count = reader.GetCount(8);
  for (uint32_t i = 0; i < creator_count && reader.ok(); ++i) {
    std::deque<int64_t>& times = app.creations_by_creator_[std::string(reader.GetBytes())];
    const uint32_t time_count = reader.GetCount(1);
    for (uint32_t t = 0; t < time_count; ++t) times.push_back(reader.GetZigzag());
  }
  const uint32_t revoked_count = reader.GetCount(5);
  for (uint32_t i = 0; i < revoked_count && reader.ok(); ++i) {
    int64_t at_us = 0;
    std::string id;
    in(at_us, id);
    app.revoked_order_.emplace_back(at_us, std::move(id));
  }

  const uint32_t idempotent_count = reader.GetCount(15);
  if (idempotent_count > kIdempotencyMax) return Corrupt("too many idempotency records");
  int64_t last_at_us = INT64_MIN;
  for (uint32_t i = 0; i < idempotent_count && reader.ok(); ++i) {
    int64_t at_us = 0;
    std::string token;
    std::string key;
    in(at_us, token, key);
    Status status;
    if (!GetStatus(reader, &status) || !status.ok()) return Corrupt("bad idempotency record");
    // The answer is kept as the text it was stored as (so decode then encode gives the
    // same bytes), once checked to be a JSON object.
    const std::string_view text = reader.GetBytes();
    nlohmann::json answer;
    if (!reader.ok() || !JsonDepthWithin(text, kJsonDepthMax) ||
        (answer = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false),
         !answer.is_object())) {
      return Corrupt("bad idempotency record");
    }
    const auto flags = reader.Get<uint8_t>();
    if (!reader.ok() || flags != 1 || at_us < last_at_us || key.empty() || key.size() > 255) {
      return Corrupt("bad idempotency record");
    }
    last_at_us = at_us;
    if (!app.idempotency_.Add(at_us, token, key, text)) {
      return Corrupt("duplicate idempotency record");
    }
  }
  if (!reader.ok() || !reader.at_end()) return Corrupt("malformed or trailing bytes");
  return app;
}

}  // namespace atrium::core
