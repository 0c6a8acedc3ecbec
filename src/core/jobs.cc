// AppState's jobs: loading the cluster, submitting, finishing and cancelling jobs, and
// the scheduling passes that start them (app_state.h).
#include <algorithm>

#include "cluster/config.h"
#include "core/access.h"
#include "core/app_state.h"
#include "core/app_state_fields.h"
#include "sched/policy.h"

namespace atrium::core {

using namespace internal;  // NOLINT: the op helpers

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
