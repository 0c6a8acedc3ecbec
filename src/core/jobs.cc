// AppState's jobs: loading the cluster, submitting, finishing and cancelling jobs, and
// the scheduling passes that start them (app_state.h).
#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>

#include "cluster/config.h"
#include "core/access.h"
#include "core/app_state.h"
#include "core/app_state_fields.h"
#include "sched/policy.h"

namespace atrium::core {

using namespace internal;  // NOLINT: the op helpers

Status AppState::LoadCluster(const std::string& toml, const std::string& policy_field) {
  ATRIUM_ASSIGN_OR_RETURN(cluster::Cluster cluster, cluster::ParseClusterToml(toml, "cluster"));
  // The policy: the op's field, else the cluster file's `policy`, else simulate's default.
  std::string name = policy_field;
  if (name.empty()) {
    ATRIUM_ASSIGN_OR_RETURN(name, cluster::ParseClusterPolicy(toml, "cluster"));
  }
  if (name.empty()) name = std::string(sched::kDefaultPolicy);
  auto policy = sched::MakePolicy(name);
  if (!policy.ok()) {
    Error error = policy.error();
    error.field = "policy";
    return error;
  }
  cluster_ = std::make_unique<cluster::Cluster>(std::move(cluster));
  cluster_toml_ = toml;
  // The scheduler works in the ledger of record: its transfers (holds and their posts) in
  // the cluster's id space, coded as usage like every charge to a grant.
  sched::SchedulerConfig config;
  config.transfer_id_base = program::NamespacedId(0, 1);
  config.hold_code = program::kCodeUsage;
  config.charge_code = program::kCodeUsage;
  config.booking_code = program::kCodeReservation;
  scheduler_ = std::make_unique<sched::Scheduler>(*cluster_, *ledger_, std::move(*policy), config);
  policy_name_ = name;
  node_states_.clear();
  for (const cluster::Node& node : cluster_->nodes()) node_states_.push_back(node.state);
  return OkStatus();
}

Result<uint32_t> AppState::EnsureSchedGrant(const std::string& program_id,
                                            const std::string& grant_id, const std::string& student,
                                            const program::Enrolment* enrolment) {
  std::string name = SchedGrantName(program_id, grant_id);
  if (!student.empty()) name += "/" + student;
  if (enrolment != nullptr) name += "/lab:" + enrolment->id;
  if (auto index = scheduler_->FindGrant(name)) return *index;
  const program::ProgramState* program = FindProgram(program_id);
  const program::Grant& grant = program->grants().at(grant_id);
  const program::Track* track = program->FindTrack(grant.track);
  const auto job_class =
      enrolment != nullptr || (track != nullptr && track->kind == program::TrackKind::kEducation)
          ? cluster::JobClass::kEducation
          : cluster::JobClass::kResearch;
  const uint64_t account = enrolment != nullptr ? enrolment->account
                           : student.empty()    ? grant.account
                                                : grant.students.at(student);
  ATRIUM_ASSIGN_OR_RETURN(
      const uint32_t index,
      scheduler_->AddGrantAccount(name, program->AccountId(account),
                                  program->AccountId(program::kClusterRevenueAccount),
                                  static_cast<double>(grant.awarded.micro()), job_class));
  sched_grants_.emplace(
      name, SchedGrant{program_id, grant_id, student, enrolment != nullptr ? enrolment->id : ""});
  return index;
}

void AppState::NoteCharge(const JobRecord& record, Credits before) {
  const Credits charged = scheduler_->job(record.sched_id).charged;
  const auto delta = charged.CheckedSub(before);
  ATRIUM_CHECK(delta.ok() && !delta->is_negative(), "a job's charge only grows");
  if (delta->is_zero()) return;
  const auto program = programs_.find(record.program);
  ATRIUM_CHECK(program != programs_.end(), "a job's program exists");
  if (!record.enrolment.empty() &&
      program->second.training().enrolments.at(record.enrolment).account != 0) {
    ATRIUM_CHECK(program->second.NoteTrainingCharge(record.enrolment, *delta).ok(),
                 "a lab job's enrolment exists");
    return;
  }
  ATRIUM_CHECK(program->second.NoteJobCharge(record.grant, *delta).ok(), "a job's grant exists");
}

void AppState::Schedule(int64_t now_us) {
  const int64_t now_s = now_us / kMicrosPerSecond;
  // Runs that reached their walltime end at their limit, not at now.
  while (!running_by_end_.empty() && running_by_end_.begin()->first <= now_s) {
    const sched::JobId sched_id = running_by_end_.begin()->second;
    running_by_end_.erase(running_by_end_.begin());
    const JobRecord& record = *job_by_sched_.at(sched_id);
    const Credits before = scheduler_->job(sched_id).charged;
    // At its limit (a reporting executor's grace is only how long the core waited), or
    // when a preemption took its chips.
    const sched::Job& job = scheduler_->job(sched_id);
    const bool preempted =
        job.preempt_at_s >= 0 && job.preempt_at_s < job.run_start_s + job.run_limit_s;
    scheduler_->Finish(sched_id, job.expected_end_s(),
                       preempted ? sched::RunEnd::kPreempted : sched::RunEnd::kWalltime);
    NoteCharge(record, before);
  }
  // Capacity reservations' windows that start or end by now (a pass does it too).
  scheduler_->AdvanceBookings(now_s);
  NoteBookingCharges();
  if (scheduler_->waiting_count() == 0) return;
  const sched::PassResult pass = scheduler_->Pass(now_s);
  for (const sched::JobId started : pass.started) {
    running_by_end_.emplace(RunDeadlineS(scheduler_->job(started)), started);
  }
  // A run asked to yield now ends by its preemption time: re-keyed, so that its end (the
  // executor's report, a cancel, the tick) finds it under RunDeadlineS.
  for (const sched::PreemptNotice& notice : pass.preempted) {
    const sched::Job& job = scheduler_->job(notice.job);
    const bool reports = cluster_->pools()[job.shape.pool].executor != cluster::Executor::kNone;
    const int64_t by_walltime = job.run_start_s + job.run_limit_s + (reports ? kExecutorGraceS : 0);
    if (running_by_end_.erase({by_walltime, notice.job}) > 0) {
      running_by_end_.emplace(RunDeadlineS(job), notice.job);
    }
  }
}

void AppState::StopGrantJobs(const std::string& program, const std::string& grant, int64_t now_us) {
  if (!scheduler_) return;
  StopGrantBookings(program, grant, now_us);
  const JobIdList* jobs = JobsOfGrant(program, grant);
  if (jobs == nullptr) return;
  const int64_t now_s = now_us / kMicrosPerSecond;
  for (const std::string& id : *jobs) StopJob(jobs_.at(id), now_s);
}

void AppState::StopJob(JobRecord& record, int64_t now_s) {
  const sched::Job& job = scheduler_->job(record.sched_id);
  const Credits before = job.charged;
  if (job.state == sched::JobState::kRunning) {
    running_by_end_.erase({RunDeadlineS(job), record.sched_id});
    if (job.expected_end_s() <= now_s) {
      // Past its walltime already (no tick has recorded it yet): it ended then.
      scheduler_->Finish(record.sched_id, job.expected_end_s(), sched::RunEnd::kWalltime);
    } else {
      ATRIUM_CHECK(scheduler_->Cancel(record.sched_id, now_s).ok(), "cancel a running job");
      record.cancelled = true;
    }
  } else if (job.state == sched::JobState::kPending) {
    ATRIUM_CHECK(scheduler_->Cancel(record.sched_id, now_s).ok(), "cancel a pending job");
    record.cancelled = true;
  }
  NoteCharge(record, before);
}

void AppState::EndEnrolmentJobs(const std::string& program, const program::Enrolment& enrolment,
                                int64_t now_us) {
  if (!scheduler_) return;
  const JobIdList* owned = JobsOfOwner(enrolment.person);
  if (owned == nullptr) return;
  const int64_t now_s = now_us / kMicrosPerSecond;
  bool stopped = false;
  for (const std::string& id : *owned) {
    JobRecord& record = jobs_.at(id);
    if (record.enrolment != enrolment.id || record.program != program) continue;
    const sched::JobState state = scheduler_->job(record.sched_id).state;
    if (state != sched::JobState::kRunning && state != sched::JobState::kPending) continue;
    StopJob(record, now_s);
    stopped = true;
  }
  if (stopped) Schedule(now_us);
}

void AppState::CompleteLab(const JobRecord& record, int64_t now_us) {
  if (record.enrolment.empty()) return;
  const auto program = programs_.find(record.program);
  if (program == programs_.end()) return;
  const program::Enrolment& enrolment = program->second.training().enrolments.at(record.enrolment);
  if (enrolment.state != program::EnrolmentState::kEnrolled) return;
  // The lab's other jobs end with it (its credits return at once).
  EndEnrolmentJobs(record.program, enrolment, now_us);
  ATRIUM_CHECK(
      program->second.CompleteEnrolment(record.enrolment, "job:" + record.id(), now_us).ok(),
      "completing an enrolled lab");
}

Status AppState::CloseGrant(program::ProgramState& program, const std::string& grant_id,
                            int64_t now_us) {
  const auto found = program.grants().find(grant_id);
  if (found == program.grants().end()) {
    return Error{ErrorCode::kNotFound, "no grant " + grant_id, "grant"};
  }
  if (found->second.status == program::GrantStatus::kExpired ||
      found->second.status == program::GrantStatus::kClosed) {
    return Error{ErrorCode::kGrantNotActive, "the grant is already over", "grant"};
  }
  StopGrantJobs(program.definition().id, grant_id, now_us);
  ATRIUM_CHECK(program.CloseGrant(grant_id, now_us).ok(), "closing a grant with no holds");
  if (scheduler_) Schedule(now_us);  // the stopped jobs' chips are free
  return OkStatus();
}

int64_t AppState::TickPrograms(int64_t now_us) {
  int64_t events = 0;
  for (auto& [id, program] : programs_) {
    for (const std::string& grant : program.GrantsEndingBy(now_us)) {
      StopGrantJobs(id, grant, now_us);
    }
    events += program.Tick(now_us);
  }
  return events;
}

std::string_view AppState::WaitReason(const JobRecord& record) const {
  if (!scheduler_) return "";
  const sched::Job& job = scheduler_->job(record.sched_id);
  if (job.state != sched::JobState::kPending) return "";
  if (const program::ProgramState* program = FindProgram(record.program)) {
    const auto grant = program->grants().find(record.grant);
    if (grant != program->grants().end() && grant->second.status == program::GrantStatus::kFrozen) {
      return "grant_frozen";
    }
  }
  if (job.reason == ErrorCode::kInsufficientCredits) {
    // A student's or a lab's own allocation is what runs short, not the grant.
    const bool own_allocation =
        !record.student.empty() ||
        scheduler_->grants()[job.grant].name.find("/lab:") != std::string::npos;
    return own_allocation ? "student_limit" : "insufficient_credits";
  }
  if (!scheduler_->FitsUpNodes(record.sched_id)) return "node_drained";
  if (scheduler_->WaitsForBookedNodes(record.sched_id)) return "capacity_reservation";
  if (job.reservation >= 0) return "resources";
  if (scheduler_->FitsFreeChips(record.sched_id)) return "reservation";
  return "priority";
}

JobIdList::const_iterator JobIdList::upper_bound(const std::string& id) const {
  const auto found = std::upper_bound(numbers_.begin(), numbers_.end(), id,
                                      [](const std::string& text, uint32_t number) {
                                        return ShortLexLess()(text, "J" + std::to_string(number));
                                      });
  return {numbers_.data() + (found - numbers_.begin()), numbers_.data() + numbers_.size()};
}

JobTexts JobRecord::UnpackTexts() const {
  std::vector<std::string> items = texts.Unpack();
  JobTexts out;
  if (items.empty()) return out;
  out.name = std::move(items[0]);
  const auto separator = std::find(items.begin() + 1, items.end(), "");
  out.datasets.assign(std::make_move_iterator(items.begin() + 1),
                      std::make_move_iterator(separator));
  if (separator != items.end()) {
    out.argv.assign(std::make_move_iterator(separator + 1), std::make_move_iterator(items.end()));
  }
  return out;
}

void JobRecord::SetTexts(const std::string& name, const std::vector<std::string>& argv,
                         const std::vector<std::string>& datasets) {
  std::vector<std::string> items;
  items.reserve(2 + datasets.size() + argv.size());
  items.push_back(name);
  for (const std::string& dataset : datasets) {
    ATRIUM_CHECK(!dataset.empty(), "a dataset id is never empty");
    items.push_back(dataset);
  }
  items.emplace_back();
  items.insert(items.end(), argv.begin(), argv.end());
  texts = PackedStrings(items);
}

uint32_t JobNumberOf(std::string_view id) {
  if (id.size() < 2 || id.size() > 11 || id[0] != 'J' || id[1] == '0') return 0;
  uint64_t number = 0;
  const auto [end, error] = std::from_chars(id.data() + 1, id.data() + id.size(), number);
  if (error != std::errc() || end != id.data() + id.size() || number > UINT32_MAX) return 0;
  return static_cast<uint32_t>(number);
}

JobBook::const_iterator JobBook::upper_bound(std::string_view id) const {
  // Ids in ShortLexLess order are the numbers in order: the first number whose id is
  // above `id`, by binary search.
  size_t low = 0;
  size_t high = records_.size();
  while (low < high) {
    const size_t mid = low + (high - low) / 2;
    if (ShortLexLess()(id, "J" + std::to_string(mid + 1))) {
      high = mid;
    } else {
      low = mid + 1;
    }
  }
  return {&records_, low};
}

const JobRecord* JobBook::Find(std::string_view id) const {
  const uint32_t number = JobNumberOf(id);
  return number == 0 || number > records_.size() ? nullptr : &records_[number - 1];
}

const JobRecord& JobBook::at(std::string_view id) const {
  const JobRecord* record = Find(id);
  ATRIUM_CHECK(record != nullptr, "a job the state names exists");
  return *record;
}

JobRecord& JobBook::Append(JobRecord record) {
  ATRIUM_CHECK(record.number == records_.size() + 1, "job numbers run 1, 2, ...");
  return records_.push_back(std::move(record));
}

const JobIdList* AppState::JobsOfGrant(const std::string& program, const std::string& grant) const {
  const Interned program_id = interner_.Find(program);
  const Interned grant_id = interner_.Find(grant);
  if (program_id.empty() || grant_id.empty()) return nullptr;
  const auto found = jobs_by_grant_.find(std::pair(program_id, grant_id));
  return found == jobs_by_grant_.end() ? nullptr : &found->second;
}

const JobIdList* AppState::JobsOfOwner(const std::string& owner) const {
  const Interned owner_id = interner_.Find(owner);
  if (owner_id.empty() && !owner.empty()) return nullptr;
  const auto found = jobs_by_owner_.find(owner_id);
  return found == jobs_by_owner_.end() ? nullptr : &found->second;
}

JobIdList AppState::ActiveJobs(sched::JobState state) const {
  std::vector<uint32_t> numbers;
  const auto add = [&](sched::JobId sched_id) {
    if (sched_id >= job_by_sched_.size() || job_by_sched_[sched_id] == nullptr) return;
    numbers.push_back(job_by_sched_[sched_id]->number);
  };
  if (state == sched::JobState::kPending) {
    for (const sched::JobId sched_id : scheduler_->waiting()) add(sched_id);
  } else if (state == sched::JobState::kRunning) {
    scheduler_->ForEachRunning(add);
  }
  std::sort(numbers.begin(), numbers.end());
  JobIdList list;
  for (const uint32_t number : numbers) list.Append(number);
  return list;
}

void AppState::IndexJob(JobRecord& record) {
  if (job_by_sched_.size() <= record.sched_id) job_by_sched_.resize(record.sched_id + size_t{1});
  job_by_sched_[record.sched_id] = &record;
  // Numbers are next_job_ when submitted: rising.
  jobs_by_grant_[std::pair(record.program, record.grant)].Append(record.number);
  jobs_by_owner_[record.owner].Append(record.number);
}

namespace {

// The datasets a job declares (docs/datasets.md): a few, distinct, each one its grant may
// use now (dataset_access_denied, agreement_required; field "datasets").
Status CheckJobDatasets(const program::ProgramState& program, const std::string& grant,
                        const std::vector<std::string>& datasets) {
  if (datasets.size() > program::kDatasetsPerJobMax) {
    return Error{ErrorCode::kTooLong, "a job reads at most 32 datasets", "datasets"};
  }
  for (size_t idx = 0; idx < datasets.size(); ++idx) {
    if (std::find(datasets.begin(), datasets.begin() + static_cast<std::ptrdiff_t>(idx),
                  datasets[idx]) != datasets.begin() + static_cast<std::ptrdiff_t>(idx)) {
      return Invalid("dataset " + datasets[idx] + " is named twice", "datasets");
    }
    ATRIUM_TRY(program.CheckDatasetUse(grant, datasets[idx]));
  }
  return OkStatus();
}

}  // namespace

Result<json> AppState::SubmitJob(const json& command, const Actor& actor, int64_t now_us) {
  ATRIUM_TRY(RequireRole(actor, {Role::kAdmin, Role::kOfficer, Role::kResearcher, Role::kStudent}));
  if (!cluster_) return Error{ErrorCode::kInvalidState, "no cluster is loaded", ""};
  const Fields fields(command, "");
  // The record's ids are interned only once every check passed (an interner keeps what it
  // is given): until then they are plain strings.
  JobRecord record;
  ATRIUM_ASSIGN_OR_RETURN(const std::string program_id, fields.Id("program"));
  const program::ProgramState* program = FindProgram(program_id);
  if (program == nullptr) return Error{ErrorCode::kNotFound, "no program " + program_id, "program"};
  // A lab's job (docs/training.md): the learner's enrolment in the lab names the grant,
  // and the lab's template gives the defaults and the most the job may ask.
  ATRIUM_ASSIGN_OR_RETURN(const std::string lab, fields.Id("lab", false, false));
  const program::Enrolment* enrolment = nullptr;
  const program::TrainingItem* lab_item = nullptr;
  if (!lab.empty()) {
    const auto item = program->training().items.find(lab);
    if (item == program->training().items.end() ||
        item->second.kind != program::TrainingKind::kLab) {
      return Error{ErrorCode::kNotFound, "no lab " + lab, "lab"};
    }
    lab_item = &item->second;
    enrolment = program->FindEnrolment(actor.person, lab);
    if (enrolment == nullptr || enrolment->state != program::EnrolmentState::kEnrolled) {
      return Error{ErrorCode::kNotEnrolled, "you are not enrolled in lab " + lab, "lab"};
    }
  }
  ATRIUM_ASSIGN_OR_RETURN(std::string grant_id, fields.Id("grant", false, enrolment == nullptr));
  if (enrolment != nullptr) {
    if (grant_id.empty()) grant_id = enrolment->grant;
    if (grant_id != enrolment->grant) {
      return Invalid("lab " + lab + " is taken through grant " + enrolment->grant, "grant");
    }
  }
  const auto grant = program->grants().find(grant_id);
  if (grant == program->grants().end() || !CanSeeGrant(actor, grant->second)) {
    return Error{ErrorCode::kNotFound, "no grant " + grant_id, "grant"};
  }
  // A frozen (sanctioned) grant takes jobs, which wait (reason grant_frozen) until it
  // thaws; an expired or closed one takes none.
  if (grant->second.status != program::GrantStatus::kActive &&
      grant->second.status != program::GrantStatus::kFrozen) {
    return Error{
        ErrorCode::kGrantNotActive,
        "grant " + grant_id + " is " + std::string(program::ToString(grant->second.status)),
        "grant"};
  }
  const auto template_int = [&](int64_t value) {
    return lab_item != nullptr ? std::optional<int64_t>(value) : std::nullopt;
  };
  ATRIUM_ASSIGN_OR_RETURN(
      const int64_t chips,
      fields.Int("chips", 1, 1'000'000, template_int(lab_item ? lab_item->lab.chips : 0)));
  ATRIUM_ASSIGN_OR_RETURN(const int64_t walltime_s,
                          fields.Int("walltime_s", 1, kWalltimeMaxS,
                                     template_int(lab_item ? lab_item->lab.walltime_s : 0)));
  ATRIUM_ASSIGN_OR_RETURN(std::string accelerator, fields.Id("accelerator", false, false));
  ATRIUM_ASSIGN_OR_RETURN(const std::string name, fields.Text("name", 200, false));
  ATRIUM_ASSIGN_OR_RETURN(std::vector<std::string> argv, fields.Strings("argv", false));
  if (lab_item != nullptr) {
    if (chips > lab_item->lab.chips) {
      return Invalid(
          "lab " + lab + " runs on at most " + std::to_string(lab_item->lab.chips) + " chips",
          "chips");
    }
    if (walltime_s > lab_item->lab.walltime_s) {
      return Invalid(
          "lab " + lab + " runs for at most " + std::to_string(lab_item->lab.walltime_s) + " s",
          "walltime_s");
    }
    if (accelerator.empty()) accelerator = lab_item->lab.accelerator;
    if (argv.empty()) argv = lab_item->lab.argv;
  }
  size_t argv_bytes = 0;
  for (const std::string& arg : argv) argv_bytes += arg.size();
  if (argv_bytes > kArgvBytesMax) {
    return Error{ErrorCode::kTooLong, "argv is longer than 16 KiB", "argv"};
  }
  ATRIUM_ASSIGN_OR_RETURN(const std::vector<std::string> datasets,
                          fields.Strings("datasets", true));
  ATRIUM_TRY(CheckJobDatasets(*program, grant_id, datasets));
  record.SetTexts(name, argv, datasets);
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
  } else if (lab_item != nullptr) {
    job_class = cluster::JobClass::kEducation;  // labs are teaching: the education partition
  }
  if (scheduler_->waiting_count() >= static_cast<size_t>(cluster_->jobs_waiting_max()) ||
      scheduler_->job_count() >= kJobsMax) {
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
  // A course's student runs on their own allocation (a sub-account of the course): a job
  // whose worst case exceeds what is left of it could never start and is refused, and a
  // student with no allocation on a course runs nothing on it.
  const bool course = job_class == cluster::JobClass::kEducation ||
                      (track != nullptr && track->kind == program::TrackKind::kEducation);
  const auto student = grant->second.students.find(actor.person);
  std::string student_id;
  if (enrolment != nullptr && enrolment->account != 0) {
    // A lab with credits runs on the enrolment's allocation, as a student on theirs.
    const cluster::JobShape shape = *cluster_->Shape(accelerator, chips);  // checked above
    const Credits price =
        cluster_->accelerators()[cluster_->pools()[shape.pool].accelerator].price_per_chip_hour;
    ATRIUM_ASSIGN_OR_RETURN(const Credits worst, UsageCost(chips, walltime_s, price));
    const Credits left = program->AccountBalance(enrolment->account);
    if (worst > left) {
      return Error{ErrorCode::kStudentLimit,
                   "the job may cost " + worst.ToString() + " but the lab's credits have " +
                       left.ToString() + " left",
                   "walltime_s"};
    }
  } else if (student != grant->second.students.end() && !actor.person.empty()) {
    student_id = actor.person;
    const cluster::JobShape shape = *cluster_->Shape(accelerator, chips);  // checked above
    const Credits price =
        cluster_->accelerators()[cluster_->pools()[shape.pool].accelerator].price_per_chip_hour;
    ATRIUM_ASSIGN_OR_RETURN(const Credits worst, UsageCost(chips, walltime_s, price));
    const Credits left = program->AccountBalance(student->second);
    if (worst > left) {
      return Error{ErrorCode::kStudentLimit,
                   "the job may cost " + worst.ToString() + " but your allocation has " +
                       left.ToString() + " left",
                   "walltime_s"};
    }
  } else if (actor.role == Role::kStudent && course) {
    return Error{ErrorCode::kStudentLimit,
                 "you have no allocation on grant " + grant_id + "; ask its instructor", "grant"};
  }
  ATRIUM_ASSIGN_OR_RETURN(
      const uint32_t sched_grant,
      EnsureSchedGrant(program_id, grant_id, student_id,
                       enrolment != nullptr && enrolment->account != 0 ? enrolment : nullptr));
  ATRIUM_CHECK(next_job_ == jobs_.size() + 1 && next_job_ <= UINT32_MAX, "job numbers are dense");
  record.number = static_cast<uint32_t>(next_job_);
  const std::string id = record.id();
  record.program = interner_.Intern(program_id);
  record.grant = interner_.Intern(grant_id);
  record.owner = interner_.Intern(actor.person);
  record.student = interner_.Intern(student_id);
  if (enrolment != nullptr) record.enrolment = interner_.Intern(enrolment->id);
  record.submitted_us = now_us;
  const int64_t now_s = now_us / kMicrosPerSecond;
  record.sched_id =
      scheduler_->Submit(sched::JobSpec{.id = id,
                                        .grant = scheduler_->grants()[sched_grant].name,
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
  programs_.at(record.program).NoteDatasetUse(record.grant, datasets);
  IndexJob(jobs_.Append(std::move(record)));
  // An empty queue gets its pass at once; a longer one waits for the clock's next tick
  // (one pass serves every job submitted meanwhile, as in Slurm's main scheduler).
  if (scheduler_->waiting_count() == 1) Schedule(now_us);
  return json{{"job", id},
              {"state", sched::ToString(scheduler_->job(jobs_.at(id).sched_id).state)}};
}

Result<json> AppState::FinishJob(const json& command, const Actor& actor, int64_t now_us) {
  const Fields fields(command, "");
  ATRIUM_ASSIGN_OR_RETURN(const std::string id, fields.Id("job"));
  JobRecord* found = jobs_.Find(id);
  if (found == nullptr || !CanSeeJob(*this, actor, *found)) {
    return Error{ErrorCode::kNotFound, "no job " + id, "job"};
  }
  JobRecord& record = *found;
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
  if (running) running_by_end_.erase({RunDeadlineS(job), record.sched_id});
  const Credits before = job.charged;
  if (cancel) {
    ATRIUM_TRY(scheduler_->Cancel(record.sched_id, now_s));
    record.cancelled = true;
  } else {
    scheduler_->Finish(record.sched_id, now_s, sched::RunEnd::kCompleted);
  }
  NoteCharge(record, before);
  if (!cancel) CompleteLab(record, now_us);
  Schedule(now_us);
  const sched::Job& after = scheduler_->job(record.sched_id);
  return json{
      {"job", id}, {"state", sched::ToString(after.state)}, {"charged", after.charged.ToString()}};
}

int64_t AppState::RunDeadlineS(const sched::Job& job) const {
  const bool reports = cluster_->pools()[job.shape.pool].executor != cluster::Executor::kNone;
  return job.expected_end_s() + (reports ? kExecutorGraceS : 0);
}

std::string_view AppState::JobStateText(const JobRecord& record) const {
  const sched::JobState state = scheduler_->job(record.sched_id).state;
  if (!record.end_state.empty() && state != sched::JobState::kRunning &&
      state != sched::JobState::kPending) {
    return record.end_state;
  }
  return sched::ToString(state);
}

namespace {

// The run a report names, if it is the job's current run and still running.
Result<JobRecord*> ReportedRun(JobBook& jobs, const sched::Scheduler& scheduler,
                               const json& command) {
  const Fields fields(command, "");
  ATRIUM_ASSIGN_OR_RETURN(const std::string id, fields.Id("job"));
  JobRecord* found = jobs.Find(id);
  if (found == nullptr) return Error{ErrorCode::kNotFound, "no job " + id, "job"};
  ATRIUM_ASSIGN_OR_RETURN(const int64_t run, fields.Int("run", 1, UINT32_MAX));
  const sched::Job& job = scheduler.job(found->sched_id);
  if (job.state != sched::JobState::kRunning || job.runs != static_cast<uint64_t>(run)) {
    return Error{ErrorCode::kInvalidState,
                 "run " + std::to_string(run) + " of job " + id + " is not running (settled)",
                 "run"};
  }
  return found;
}

}  // namespace

Result<json> AppState::RunStarted(const json& command, int64_t /*now_us*/) {
  if (!scheduler_) return Error{ErrorCode::kInvalidState, "no cluster is loaded", ""};
  ATRIUM_ASSIGN_OR_RETURN(JobRecord * record, ReportedRun(jobs_, *scheduler_, command));
  const Fields fields(command, "");
  ATRIUM_ASSIGN_OR_RETURN(const int64_t started_us,
                          fields.Int("started_at_us", 0, std::numeric_limits<int64_t>::max()));
  record->reported_run = scheduler_->job(record->sched_id).runs;
  record->run_started_us = started_us;
  record->run_ended_us = -1;
  record->exit_code = -1;
  record->term_signal = 0;
  record->end_state = Interned();
  return json{{"job", record->id()}, {"run", record->reported_run}, {"state", "running"}};
}

Result<json> AppState::RunEnded(const json& command, int64_t now_us) {
  if (!scheduler_) return Error{ErrorCode::kInvalidState, "no cluster is loaded", ""};
  ATRIUM_ASSIGN_OR_RETURN(JobRecord * record, ReportedRun(jobs_, *scheduler_, command));
  const Fields fields(command, "");
  constexpr int64_t kTimeMax = std::numeric_limits<int64_t>::max() / 2;
  ATRIUM_ASSIGN_OR_RETURN(const int64_t started_us, fields.Int("started_at_us", 0, kTimeMax));
  ATRIUM_ASSIGN_OR_RETURN(const int64_t ended_us, fields.Int("ended_at_us", 0, kTimeMax));
  ATRIUM_ASSIGN_OR_RETURN(const int64_t exit_code, fields.Int("exit_code", -1, 255));
  ATRIUM_ASSIGN_OR_RETURN(const int64_t signal, fields.Int("signal", 0, 64));
  ATRIUM_ASSIGN_OR_RETURN(const std::string how, fields.Text("how", 16));
  if (how != "exited" && how != "walltime" && how != "preempted" && how != "lost") {
    return Invalid("how must be exited, walltime, preempted or lost", "how");
  }
  if (ended_us < started_us) return Invalid("ended_at_us is before started_at_us", "ended_at_us");
  const sched::JobId sched_id = record->sched_id;
  const sched::Job& job = scheduler_->job(sched_id);
  // The charge is the measured run time, rounded up to the second (the scheduler's unit),
  // never beyond the run's limit nor past the logical now.
  const int64_t now_s = now_us / kMicrosPerSecond;
  const int64_t measured_s = (ended_us - started_us + kMicrosPerSecond - 1) / kMicrosPerSecond;
  const int64_t latest_s = std::min(now_s, job.run_start_s + job.run_limit_s);
  const int64_t end_s = std::clamp(job.run_start_s + measured_s, job.run_start_s,
                                   std::max(latest_s, job.run_start_s));
  running_by_end_.erase({RunDeadlineS(job), sched_id});
  const Credits before = job.charged;
  sched::RunEnd end = sched::RunEnd::kCompleted;
  std::string end_state;
  if (how == "walltime") {
    end = sched::RunEnd::kWalltime;
  } else if (how == "preempted") {
    end = sched::RunEnd::kPreempted;
    end_state = "preempted";
  } else if (how == "lost") {
    end_state = "node_failed";
  } else if (exit_code != 0 || signal != 0) {
    end_state = "failed";
  }
  scheduler_->Finish(sched_id, end_s, end);
  record->reported_run = scheduler_->job(sched_id).runs;
  record->run_started_us = started_us;
  record->run_ended_us = ended_us;
  record->exit_code = static_cast<int32_t>(exit_code);  // bounded above: -1..255
  record->term_signal = static_cast<int32_t>(signal);   // 0..64
  record->end_state = interner_.Intern(end_state);
  NoteCharge(*record, before);
  if (how == "exited" && exit_code == 0 && signal == 0) CompleteLab(*record, now_us);
  Schedule(now_us);
  const sched::Job& after = scheduler_->job(sched_id);
  return json{{"job", record->id()},
              {"state", JobStateText(*record)},
              {"charged", after.charged.ToString()}};
}

bool AppState::TickDue(int64_t now_us) const {
  if (!scheduler_) return false;
  const int64_t booking_event_s = scheduler_->NextBookingEventS();
  if (booking_event_s >= 0 && booking_event_s <= now_us / kMicrosPerSecond) return true;
  return !running_by_end_.empty() && running_by_end_.begin()->first <= now_us / kMicrosPerSecond;
}

}  // namespace atrium::core
