// AppState: the state the service serves: the ledger of record, grant programs, the
// cluster and its job queue, API tokens and idempotency records. It changes only through
// AppCommand (a JSON document with an "op"), applied at the command's logical time, so
// the journal replays it exactly like every other command.
//
// Who may do what is decided here for every change (the command names its actor), so a
// refused change is refused the same way live and on replay; reads are filtered by the
// same predicates (access.h) in the service.
//
// One ledger of record (ledger()): raw `atrium ledger` accounts (ids with the top bit
// clear), every program's accounts in its own id space (ProgramState::AccountId), and the
// scheduler's holds. A job's scheduler grant IS its program grant's account (or, for a
// student of a course, the student's sub-account): admission places a hold of the job's
// worst case there, the run's end posts what it ran and releases the rest, so a run is
// charged exactly once and `available` is right everywhere. What freeze, close, expiry and
// student allocation do to open holds: docs/program.md, "Holds of running jobs".
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
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_map.h"
#include "base/error.h"
#include "base/interned.h"
#include "base/packed_strings.h"
#include "base/segmented_vector.h"
#include "cluster/cluster.h"
#include "core/app_state_idempotency.h"
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
  kPublic,
  // Governance (docs/governance.md): vetoes or adds on a draft decision, in public.
  // Last, so the numbers of the older roles do not change.
  kSponsor,
  // Training programs (docs/training.md): see enrolments and progress of their courses and
  // labs, and mark completions.
  kInstructor,
  // Datasets (docs/datasets.md): decide access requests to datasets on approval.
  kDataSteward
};
inline constexpr int kRoleCount = 10;
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
// it runs. Kept compact (a million finished jobs stay resident): the ids it names are
// interned in the state's Interner, and its own id is its number.
// A job's texts, unpacked (JobRecord::texts).
struct JobTexts {
  std::string name;
  std::vector<std::string> argv;
  std::vector<std::string> datasets;
};

struct JobRecord {
  uint32_t number = 0;        // the id is "J<number>"; numbers run 1, 2, ... in submission order
  uint32_t reported_run = 0;  // the run (1, 2, ... as sched::Job::runs) an executor reported on
  Interned program;
  Interned grant;
  Interned owner;    // person id of the submitter
  Interned student;  // a course's student whose allocation the job draws on, if any
  // A lab's job (docs/training.md): the enrolment it belongs to; with the lab's credits it
  // draws on the enrolment's account, and its success completes the enrolment.
  Interned enrolment;
  // What an executor reported of the job's last run (docs/executors.md); -1 / 0 / ""
  // until it reports. `end_state` overrides the scheduler's state where it says more:
  // "failed" (nonzero exit or a signal), "node_failed" (the run was lost), "preempted".
  Interned end_state;
  // The job's name, its command and the datasets it reads (docs/datasets.md: admitted only
  // if its grant may use each; executors expose those still usable when a run starts),
  // packed in one string: [name, dataset..., "", arg...] (dataset ids are never empty).
  // A short job's texts fit the string's inline buffer.
  PackedStrings texts;
  int64_t submitted_us = 0;
  int64_t run_started_us = -1;
  int64_t run_ended_us = -1;
  sched::JobId sched_id = 0;
  int32_t exit_code = -1;
  int32_t term_signal = 0;
  bool cancelled = false;

  std::string id() const { return "J" + std::to_string(number); }
  JobTexts UnpackTexts() const;
  std::string name() const { return UnpackTexts().name; }
  std::vector<std::string> argv() const { return UnpackTexts().argv; }
  std::vector<std::string> datasets() const { return UnpackTexts().datasets; }
  void SetTexts(const std::string& name, const std::vector<std::string>& argv,
                const std::vector<std::string>& datasets);
};

// The number of a job id "J<n>" (n from 1 to 4294967295 without leading zeros), or 0.
uint32_t JobNumberOf(std::string_view id);

// A scheduler grant: the program grant (and, for a student's jobs, the student) whose
// ledger account it is.
struct SchedGrant {
  std::string program;
  std::string grant;
  std::string student;
  std::string enrolment;  // a lab enrolment's credits (then `student` is empty)
};

// Orders job ids "J2" before "J10": shorter first, then by text (natural order for ids
// that share a prefix), so lists page in submission order.
struct ShortLexLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  }
};

// Every job record, by number (job "J<n>" is the n-th), in segments that never move: a
// record's address is stable, and there is no map node or id string per job. Iterating
// gives the records in submission order (ShortLexLess order of their ids).
class JobBook {
 public:
  class const_iterator {
   public:
    const JobRecord& operator*() const { return (*records_)[at_]; }
    const JobRecord* operator->() const { return &(*records_)[at_]; }
    const_iterator& operator++() {
      ++at_;
      return *this;
    }
    bool operator==(const const_iterator& other) const { return at_ == other.at_; }

   private:
    friend class JobBook;
    const_iterator(const SegmentedVector<JobRecord, 16384>* records, size_t at)
        : records_(records), at_(at) {}
    const SegmentedVector<JobRecord, 16384>* records_;
    size_t at_;
  };

  size_t size() const { return records_.size(); }
  bool empty() const { return records_.empty(); }
  const_iterator begin() const { return {&records_, 0}; }
  const_iterator end() const { return {&records_, records_.size()}; }
  // The first job whose id comes after `id` in ShortLexLess order (a page cursor; any text).
  const_iterator upper_bound(std::string_view id) const;
  // The job with this id, or null.
  const JobRecord* Find(std::string_view id) const;
  JobRecord* Find(std::string_view id) {
    return const_cast<JobRecord*>(std::as_const(*this).Find(id));
  }
  // The job with this id, which exists (checked).
  const JobRecord& at(std::string_view id) const;
  JobRecord& at(std::string_view id) { return const_cast<JobRecord&>(std::as_const(*this).at(id)); }
  // Adds the next job: its number must be size() + 1 (checked).
  JobRecord& Append(JobRecord record);

 private:
  SegmentedVector<JobRecord, 16384> records_;
};

// The ids of a set of jobs in submission order (an index of the jobs of a grant or of an
// owner), kept as their numbers (id "J<n>"): 4 bytes a job, not a set node's 80. Reads
// like a std::set<std::string, ShortLexLess> (begin, end, upper_bound, iterating gives
// the id text).
class JobIdList {
 public:
  class const_iterator {
   public:
    const_iterator() = default;
    const std::string& operator*() const { return text_; }
    const std::string* operator->() const { return &text_; }
    const_iterator& operator++() {
      ++at_;
      Set();
      return *this;
    }
    bool operator==(const const_iterator& other) const { return at_ == other.at_; }

   private:
    friend class JobIdList;
    const_iterator(const uint32_t* at, const uint32_t* end) : at_(at), end_(end) { Set(); }
    void Set() {
      if (at_ != end_) text_ = "J" + std::to_string(*at_);
    }
    const uint32_t* at_ = nullptr;
    const uint32_t* end_ = nullptr;
    std::string text_;
  };
  const_iterator begin() const { return {numbers_.data(), numbers_.data() + numbers_.size()}; }
  const_iterator end() const {
    const uint32_t* last = numbers_.data() + numbers_.size();
    return {last, last};
  }
  // The first id after `id` in ShortLexLess order.
  const_iterator upper_bound(const std::string& id) const;
  size_t size() const { return numbers_.size(); }
  bool empty() const { return numbers_.empty(); }
  // Adds job number n, which is above every number in the list.
  void Append(uint32_t number) { numbers_.push_back(number); }

 private:
  std::vector<uint32_t> numbers_;
};

// The answer to one op: ok with a JSON result, or an error. A changed op's answer is
// stored (as its JSON text) for idempotent retries.
struct AppAnswer {
  Status status;
  nlohmann::json result;  // null on error
  bool changed = false;   // whether the state changed (then the command is journaled)
  bool replayed = false;  // a retry answered from the idempotency record
  // The command as it is to be journaled when the op added results to it (the solver's
  // answers of a draft: OpRequest::journaled); empty: the command as given.
  std::string journal_json;
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

  // Why a pending job waits, as squeue shows it: grant_frozen, student_limit,
  // insufficient_credits, node_drained, capacity_reservation (fits the pool's up nodes but
  // not those outside capacity reservations), resources (first in line, waiting for chips),
  // reservation (fits the free chips but would delay a reservation, or waits for the next
  // pass), priority (jobs ahead of it); empty for a job that is not pending.
  std::string_view WaitReason(const JobRecord& record) const;

  // Reading.
  const std::map<std::string, program::ProgramState>& programs() const { return programs_; }
  const program::ProgramState* FindProgram(const std::string& id) const;
  // The ledger of record (shared by the raw ledger commands, the programs and the
  // scheduler); its address never changes.
  const ledger::Ledger& ledger() const { return *ledger_; }
  ledger::Ledger& mutable_ledger() { return *ledger_; }
  // The scheduling policy of the loaded cluster ("" before cluster_load).
  const std::string& policy_name() const { return policy_name_; }
  const std::map<std::string, SchedGrant>& sched_grants() const { return sched_grants_; }
  // Job ids of a program grant / of an owner, in submission order.
  const JobIdList* JobsOfGrant(const std::string& program, const std::string& grant) const;
  const JobIdList* JobsOfOwner(const std::string& owner) const;
  // The jobs pending (or running) now, in submission order: what `?state=pending` and
  // `?state=running` list, without walking the finished ones.
  JobIdList ActiveJobs(sched::JobState state) const;
  const cluster::Cluster* cluster() const { return cluster_.get(); }
  const sched::Scheduler* scheduler() const { return scheduler_.get(); }
  const JobBook& jobs() const { return jobs_; }
  const std::map<std::string, TokenRecord>& tokens() const { return tokens_; }
  const TokenRecord* FindToken(const std::string& id) const;
  // The stored answer of an idempotency key of a token, if any (kept as its JSON text,
  // parsed again here). Its result carries "_request", the fingerprint of the request.
  std::optional<AppAnswer> FindIdempotent(const std::string& token, const std::string& key) const;
  // The number of idempotency records kept.
  size_t idempotency_count() const { return idempotency_.size(); }
  // Node states as set by drain/resume (index = cluster node).
  const std::vector<cluster::NodeState>& node_states() const { return node_states_; }
  int64_t last_now_us() const { return last_now_us_; }

  // Snapshots (app_state_codec.cc): the whole state as deterministic bytes (programs,
  // cluster, scheduler, jobs, tokens, idempotency records); the ledger of record is not
  // in them (Core encodes it once). Decode takes the decoded ledger, which it moves into
  // the state before the programs and the scheduler are pointed at it; it refuses
  // malformed bytes with kCorruption. No op history is kept. Decode must not read the
  // ledger's contents (only keep its address): a restart decodes with an empty ledger
  // while another thread decodes the real one, moved in afterwards (Core::AttachLedger).
  void Encode(std::string* out) const;
  static Result<AppState> Decode(std::string_view bytes, ledger::Ledger ledger);

  // The job's state as the API shows it: the executor's end state where it said more
  // ("failed", "node_failed"), else the scheduler's.
  std::string_view JobStateText(const JobRecord& record) const;
  // Every running run as (deadline in seconds, scheduler job): the deadline is the run's
  // walltime end, plus kExecutorGraceS for a pool whose executor reports ends itself.
  const std::set<std::pair<int64_t, sched::JobId>>& running_runs() const { return running_by_end_; }
  // How long after a run's walltime end the core waits for a reporting executor (which
  // sends SIGTERM at the limit and SIGKILL after its grace) before its tick ends the run
  // itself, as killed_at_walltime (a lost executor).
  static constexpr int64_t kExecutorGraceS = 120;

 private:
  // The op table's handlers (ops.cc) change the state below.
  friend class OpHandlers;
  // Finds the op in the table (ops.h), checks its roles and fields, runs its handler.
  // `journaled` collects the fields the handler adds to the command as journaled.
  Result<nlohmann::json> Dispatch(const std::string& op, const nlohmann::json& command,
                                  const Actor& actor, int64_t now_us, nlohmann::json* journaled);
  Result<program::ProgramState*> MutableProgram(const nlohmann::json& command);
  Result<nlohmann::json> SubmitJob(const nlohmann::json& command, const Actor& actor,
                                   int64_t now_us);
  Result<nlohmann::json> FinishJob(const nlohmann::json& command, const Actor& actor,
                                   int64_t now_us);
  Status LoadCluster(const std::string& toml, const std::string& policy);
  // The executor ops (jobs.cc): job_run_started, job_run_ended.
  Result<nlohmann::json> RunStarted(const nlohmann::json& command, int64_t now_us);
  Result<nlohmann::json> RunEnded(const nlohmann::json& command, int64_t now_us);
  // A run's key in running_by_end_ (see running_runs()).
  int64_t RunDeadlineS(const sched::Job& job) const;
  // Runs a scheduling pass and settles runs that hit their walltime.
  void Schedule(int64_t now_us);
  // The scheduler grant of a program grant (or of a student's allocation in it),
  // registered on first use with the existing ledger account: nothing is minted.
  Result<uint32_t> EnsureSchedGrant(const std::string& program, const std::string& grant,
                                    const std::string& student,
                                    const program::Enrolment* enrolment = nullptr);
  // Adds what the job's runs were charged since `before` to its program grant's spent.
  void NoteCharge(const JobRecord& record, Credits before);
  // Ends every job of a grant before it closes or expires: pending ones are cancelled,
  // running ones end now and are charged for what they ran.
  void StopGrantJobs(const std::string& program, const std::string& grant, int64_t now_us);
  // Ends one job as StopGrantJobs does.
  void StopJob(JobRecord& record, int64_t now_s);
  // Before an enrolment ends (completed or withdrawn): its lab's pending and running jobs
  // end now, so its credits settle and return at once.
  void EndEnrolmentJobs(const std::string& program, const program::Enrolment& enrolment,
                        int64_t now_us);
  // A lab job's success completes its enrolment (and issues the certificate).
  void CompleteLab(const JobRecord& record, int64_t now_us);
  // grant_close: stops the grant's jobs, then returns its unspent credits.
  Status CloseGrant(program::ProgramState& program, const std::string& grant, int64_t now_us);
  // Capacity reservations (ops_reservations.cc): the posts on bookings' holds added to
  // their grants' spent; runs told to yield by forced maintenance re-keyed; a grant's
  // live bookings cancelled (no fee) when it closes or expires.
  void NoteBookingCharges();
  void NoteYieldNotices();
  void StopGrantBookings(const std::string& program, const std::string& grant, int64_t now_us);
  // tick's program part: stops the jobs of grants past their end, then ticks each program.
  int64_t TickPrograms(int64_t now_us);

  std::map<std::string, program::ProgramState> programs_;
  std::unique_ptr<cluster::Cluster> cluster_;
  std::string cluster_toml_;  // the text cluster_ was parsed from (snapshots keep it)
  std::unique_ptr<sched::Scheduler> scheduler_;
  std::vector<cluster::NodeState> node_states_;
  JobBook jobs_;
  // The ids the job records name (programs, grants, people, end states), once each.
  Interner interner_;
  // The record of each scheduler job (index = sched::JobId; the scheduler numbers jobs
  // densely from 0, and JobBook records do not move): 8 bytes a job.
  std::vector<JobRecord*> job_by_sched_;
  std::set<std::pair<int64_t, sched::JobId>> running_by_end_;  // (run end, job)
  // Scheduler grant name -> program grant (and student).
  std::map<std::string, SchedGrant> sched_grants_;
  std::string policy_name_;
  // Indexes of jobs_ for filtered lists and grant ends: "program/grant" -> ids; owner -> ids.
  // Keyed by interned values (hashed by identity: no string built or compared per job).
  struct InternedPairHash {
    size_t operator()(const std::pair<Interned, Interned>& key) const {
      return key.first.hash() * 31 + key.second.hash();
    }
  };
  struct InternedHash {
    size_t operator()(const Interned& key) const { return key.hash(); }
  };
  absl::flat_hash_map<std::pair<Interned, Interned>, JobIdList, InternedPairHash> jobs_by_grant_;
  absl::flat_hash_map<Interned, JobIdList, InternedHash> jobs_by_owner_;
  // Adds a new record (the highest number so far) to job_by_sched_ and the lists above.
  void IndexJob(JobRecord& record);
  uint64_t next_job_ = 1;
  // The ledger of record, on the heap so that the programs and the scheduler keep their
  // pointers into it when the state moves; the next program's id space.
  std::unique_ptr<ledger::Ledger> ledger_;
  uint64_t next_program_ordinal_ = 1;
  // Token ops are O(log n): the record by id, live counts by (person, role), each
  // non-admin creator's creation times in the last hour, revoked tokens by revocation time.
  void PurgeRevokedTokens(int64_t now_us);
  std::map<std::string, TokenRecord> tokens_;
  size_t live_tokens_ = 0;
  uint64_t tokens_created_ = 0;
  std::map<std::pair<std::string, Role>, size_t> live_by_person_;
  std::map<std::string, std::deque<int64_t>> creations_by_creator_;
  std::deque<std::pair<int64_t, std::string>> revoked_order_;
  // (token, key) -> the first answer's JSON text, oldest first (app_state_idempotency.h).
  IdempotencyRecords idempotency_;
  int64_t last_now_us_ = 0;
};

}  // namespace atrium::core
