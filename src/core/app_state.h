// AppState: the state the service serves, beside the raw ledger: grant programs, the
// cluster and its job queue, API tokens and idempotency records. It changes only through
// AppCommand (a JSON document with an "op"), applied at the command's logical time, so
// the journal replays it exactly like every other command.
//
// Who may do what is decided here for every change (the command names its actor), so a
// refused change is refused the same way live and on replay; reads are filtered by the
// same predicates (access.h) in the service.
//
// Every op is all-or-nothing: it is checked completely before the first change, and a
// refused op answers an Error and changes nothing. An op that carries an idempotency key
// answers a retry with the first answer, without applying it again.
//
//   AppState app;
//   AppAnswer answer = app.Apply(R"({"op":"program_create","actor":{"role":"admin"},...})"_json,
//                                now_us);
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "cluster/cluster.h"
#include "ledger/ledger.h"
#include "program/program_state.h"
#include "sched/scheduler.h"

namespace atrium::core {

// Roles, from most to least trusted. The strings are the API's.
enum class Role : uint8_t {
  kAdmin,
  kOfficer,
  kReviewer,
  kResearcher,
  kStudent,
  kOperator,
  kPublic
};
inline constexpr int kRoleCount = 7;
std::string_view ToString(Role role);
Result<Role> ParseRole(std::string_view text);

// An id as the API accepts it: 1-128 bytes of letters, digits and . _ : @ - (and, where
// `slash` allows, / between segments, as in obligation ids), never a "." or ".." segment.
bool ValidId(std::string_view id, bool slash);

// Who asks: the token's role and the person it speaks for (program person id; empty for
// service accounts such as an operator's).
struct Actor {
  Role role = Role::kPublic;
  std::string person;
  std::string token;  // the token id (never the secret)
};

struct TokenRecord {
  std::string id;
  Role role = Role::kPublic;
  std::string person;
  std::string label;
  std::string salt_hex;
  std::string hash_hex;  // SHA-256(salt || secret), hex
  int64_t created_us = 0;
  std::string created_by;  // token id, or "bootstrap"
  bool revoked = false;
};

// A job as the service knows it: the scheduler's record plus who submitted it and what
// it runs.
struct JobRecord {
  std::string id;  // "J<n>"
  std::string program;
  std::string grant;
  std::string owner;  // person id of the submitter
  std::string name;
  std::vector<std::string> argv;
  sched::JobId sched_id = 0;
  bool cancelled = false;
  int64_t submitted_us = 0;
  Credits charged_recorded;  // usage already charged to the program's grant
};

// Orders job ids "J2" before "J10": shorter first, then by text (natural order for ids
// that share a prefix), so lists page in submission order.
struct ShortLexLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  }
};
using JobMap = std::map<std::string, JobRecord, ShortLexLess>;

// The answer to one op: ok with a JSON result, or an error. Stored whole for idempotent
// retries.
struct AppAnswer {
  Status status;
  nlohmann::json result;  // null on error
  bool changed = false;   // whether the state changed (then the command is journaled)
  bool replayed = false;  // a retry answered from the idempotency record
};

class AppState {
 public:
  // Bounds that keep every request's work and the state's memory finite.
  // Live tokens (revoked ones do not count); per person and role for non-admins.
  static constexpr size_t kTokensMax = 100'000;
  static constexpr size_t kTokensPerPersonMax = 50;
  // Token creations by one non-admin person (or service token) in any hour: a create and
  // revoke loop cannot churn the table or the journal.
  static constexpr size_t kTokenCreationsPerHourMax = 60;
  // A revoked token stays listed this long, then leaves the state.
  static constexpr int64_t kRevokedTokenKeepUs = 24LL * 3600 * 1'000'000;
  static constexpr size_t kIdempotencyMax = 1'000'000;
  static constexpr int64_t kIdempotencyKeepUs = 24LL * 3600 * 1'000'000;
  static constexpr size_t kWaitingJobsMax = 200'000;
  static constexpr size_t kJobsMax = 20'000'000;
  static constexpr size_t kIdBytesMax = 128;
  static constexpr size_t kArgvBytesMax = 16 * 1024;

  AppState();
  AppState(AppState&&) noexcept;
  AppState& operator=(AppState&&) noexcept;
  ~AppState();

  // Applies one op. `command` is the whole document: {"op", "actor", "idempotency_key"?,
  // ...the op's fields}. Never throws.
  AppAnswer Apply(const nlohmann::json& command, int64_t now_us);

  // Whether a Tick at now_us would change anything (a job past its walltime, a pending
  // job that could start, an obligation or grant past due). The service's clock asks
  // before it journals a tick.
  bool TickDue(int64_t now_us) const;

  // Reading.
  const std::map<std::string, program::ProgramState>& programs() const { return programs_; }
  const program::ProgramState* FindProgram(const std::string& id) const;
  const cluster::Cluster* cluster() const { return cluster_.get(); }
  const sched::Scheduler* scheduler() const { return scheduler_.get(); }
  const JobMap& jobs() const { return jobs_; }
  const std::map<std::string, TokenRecord>& tokens() const { return tokens_; }
  const TokenRecord* FindToken(const std::string& id) const;
  // The stored answer of an idempotency key of a token, if any.
  const AppAnswer* FindIdempotent(const std::string& token, const std::string& key) const;
  // Node states as set by drain/resume (index = cluster node).
  const std::vector<cluster::NodeState>& node_states() const { return node_states_; }
  int64_t last_now_us() const { return last_now_us_; }

  // Every op applied so far, in order (the snapshot form: decoding replays them).
  const std::vector<std::pair<int64_t, std::string>>& history() const { return history_; }

 private:
  // The op table's handlers (ops.cc) change the state below.
  friend class OpHandlers;
  // Finds the op in the table (ops.h), checks its roles and fields, runs its handler.
  Result<nlohmann::json> Dispatch(const std::string& op, const nlohmann::json& command,
                                  const Actor& actor, int64_t now_us);
  Result<program::ProgramState*> MutableProgram(const nlohmann::json& command);
  Result<nlohmann::json> SubmitJob(const nlohmann::json& command, const Actor& actor,
                                   int64_t now_us);
  Result<nlohmann::json> FinishJob(const nlohmann::json& command, const Actor& actor,
                                   int64_t now_us);
  Status LoadCluster(const std::string& toml);
  // Runs a scheduling pass and settles runs that hit their walltime.
  void Schedule(int64_t now_us);
  // Makes the scheduler's admission balance of a grant equal to what the program's
  // ledger says the grant may spend.
  Status SyncGrant(const std::string& program, const std::string& grant, int64_t now_us);
  // Charges what the job's runs cost so far to its program grant.
  void ChargeJob(JobRecord& record, int64_t now_us);

  std::map<std::string, program::ProgramState> programs_;
  std::unique_ptr<cluster::Cluster> cluster_;
  std::unique_ptr<ledger::Ledger> cluster_ledger_;  // the scheduler's admission holds
  std::unique_ptr<sched::Scheduler> scheduler_;
  std::vector<cluster::NodeState> node_states_;
  JobMap jobs_;
  std::map<sched::JobId, std::string> job_by_sched_;
  std::set<std::pair<int64_t, sched::JobId>> running_by_end_;  // (run end, job)
  // Scheduler grant name -> (program, grant).
  std::map<std::string, std::pair<std::string, std::string>> sched_grants_;
  uint64_t next_job_ = 1;
  uint64_t next_sync_transfer_ = 1;
  // Token ops are O(log n): the record by id, live counts by (person, role), each
  // non-admin creator's creation times in the last hour, revoked tokens by revocation time.
  void PurgeRevokedTokens(int64_t now_us);
  std::map<std::string, TokenRecord> tokens_;
  size_t live_tokens_ = 0;
  uint64_t tokens_created_ = 0;
  std::map<std::pair<std::string, Role>, size_t> live_by_person_;
  std::map<std::string, std::deque<int64_t>> creations_by_creator_;
  std::deque<std::pair<int64_t, std::string>> revoked_order_;
  std::map<std::pair<std::string, std::string>, AppAnswer> idempotency_;
  std::deque<std::pair<int64_t, std::pair<std::string, std::string>>> idempotency_order_;
  std::vector<std::pair<int64_t, std::string>> history_;
  int64_t last_now_us_ = 0;
};

}  // namespace atrium::core
