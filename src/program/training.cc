// ProgramState's training programs (training.h, docs/training.md).
#include <algorithm>

#include "program/program_state.h"

namespace atrium::program {
namespace {

using nlohmann::json;

bool Contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

}  // namespace

std::string_view ToString(TrainingKind kind) {
  return kind == TrainingKind::kLab ? "lab" : "course";
}

std::string_view ToString(TrainingLevel level) {
  switch (level) {
    case TrainingLevel::kIntroductory:
      return "introductory";
    case TrainingLevel::kIntermediate:
      return "intermediate";
    case TrainingLevel::kAdvanced:
      return "advanced";
  }
  return "introductory";
}

std::string_view ToString(EnrolmentState state) {
  switch (state) {
    case EnrolmentState::kEnrolled:
      return "enrolled";
    case EnrolmentState::kCompleted:
      return "completed";
    case EnrolmentState::kWithdrawn:
      return "withdrawn";
  }
  return "enrolled";
}

Status ProgramState::AddTrainingItem(TrainingItem item, int64_t now_us) {
  if (training_.items.count(item.id) > 0) {
    return MakeError(ErrorCode::kAlreadyExists, "training item " + item.id + " exists", "id");
  }
  if (training_.items.size() >= kTrainingItemsMax) {
    return MakeError(ErrorCode::kLimitExceeded, "the training catalog is full", "id");
  }
  if (item.title.empty()) return MakeError(ErrorCode::kInvalidArgument, "a title", "title");
  for (const std::string& prerequisite : item.prerequisites) {
    // Only items already in the catalog: the prerequisites form no cycle.
    if (training_.items.count(prerequisite) == 0 || prerequisite == item.id) {
      return MakeError(ErrorCode::kNotFound, "no training item " + prerequisite, "prerequisites");
    }
  }
  for (const std::string& person : item.instructors) {
    if (people_.count(person) == 0) {
      return MakeError(ErrorCode::kNotFound, "no person " + person, "instructors");
    }
  }
  if (item.credits.is_negative()) {
    return MakeError(ErrorCode::kInvalidArgument, "credits must not be negative", "credits");
  }
  if (item.kind == TrainingKind::kCourse) {
    if (!item.credits.is_zero() || item.lab.chips != 0 || !item.lab.argv.empty()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a course has no credits and no job template (a lab has)", "kind");
    }
  } else if (item.lab.chips <= 0 || item.lab.walltime_s <= 0) {
    return MakeError(ErrorCode::kInvalidArgument, "a lab's template needs chips and walltime_s",
                     item.lab.chips <= 0 ? "chips" : "walltime_s");
  }
  if (!item.credits.is_zero() || !item.track.empty()) {
    if (FindTrack(item.track) == nullptr) {
      return MakeError(ErrorCode::kNotFound, "no track " + item.track + " to fund the lab",
                       "track");
    }
  }
  item.added_us = now_us;
  json data = {{"item", item.id},
               {"kind", ToString(item.kind)},
               {"title", item.title},
               {"level", ToString(item.level)},
               {"prerequisites", item.prerequisites},
               {"track", item.track},
               {"credits", item.credits.ToString()}};
  log_.Append(now_us, "training_added", data);
  const std::string id = item.id;
  training_.items.emplace(id, std::move(item));
  return OkStatus();
}

const Enrolment* ProgramState::FindEnrolment(const std::string& person,
                                             const std::string& item) const {
  const auto found = training_.by_learner.find({person, item});
  if (found == training_.by_learner.end()) return nullptr;
  return &training_.enrolments.at(found->second);
}

bool ProgramState::MayLearnUnder(const std::string& person, const Grant& grant) const {
  return grant.pi == person || Contains(grant.members, person) || grant.students.count(person) > 0;
}

Result<Enrolment> ProgramState::Enrol(const std::string& item_id, const std::string& person,
                                      const std::string& grant_id, int64_t now_us) {
  const auto item = training_.items.find(item_id);
  if (item == training_.items.end()) {
    return MakeError(ErrorCode::kNotFound, "no training item " + item_id, "item");
  }
  if (people_.count(person) == 0) return MakeError(ErrorCode::kNotFound, "no person", "person");
  const auto grant = grants_.find(grant_id);
  if (grant == grants_.end()) {
    return MakeError(ErrorCode::kNotFound, "no grant " + grant_id, "grant");
  }
  if (!MayLearnUnder(person, grant->second)) {
    return MakeError(ErrorCode::kForbidden,
                     "only the grant's PI, members and course students enrol through it", "grant");
  }
  if (grant->second.status != GrantStatus::kActive) {
    return MakeError(ErrorCode::kGrantNotActive, "grant " + grant_id + " is not active", "grant");
  }
  if (const Enrolment* existing = FindEnrolment(person, item_id)) {
    if (existing->state != EnrolmentState::kWithdrawn) {
      return MakeError(
          ErrorCode::kAlreadyExists,
          "already " + std::string(ToString(existing->state)) + " (" + existing->id + ")", "item");
    }
  }
  for (const std::string& prerequisite : item->second.prerequisites) {
    const Enrolment* done = FindEnrolment(person, prerequisite);
    if (done == nullptr || done->state != EnrolmentState::kCompleted) {
      return MakeError(ErrorCode::kPrerequisiteMissing, "complete " + prerequisite + " first",
                       "item");
    }
  }
  if (training_.enrolments.size() >= kEnrolmentsMax) {
    return MakeError(ErrorCode::kLimitExceeded, "the program's enrolments are full", "item");
  }
  const Credits credits = item->second.credits;
  const uint64_t pool = credits.is_zero() ? 0 : TrackPoolAccount(item->second.track);
  // Checked before the first change: a refused enrolment changes nothing.
  if (!credits.is_zero() && credits > AccountAvailable(pool)) {
    return MakeError(ErrorCode::kInsufficientCredits,
                     "the training budget (track " + item->second.track + ") has less than " +
                         credits.ToString() + " left",
                     "item");
  }
  Enrolment enrolment;
  enrolment.id = "E-" + std::to_string(training_.next_enrolment);
  enrolment.item = item_id;
  enrolment.person = person;
  enrolment.grant = grant_id;
  enrolment.enrolled_us = now_us;
  if (!credits.is_zero()) {
    enrolment.account = next_account_;
    ATRIUM_TRY(CreateAccountsOrError({{.id = enrolment.account,
                                       .kind = ledger::AccountKind::kGrant,
                                       .flags = ledger::kDebitsMustNotExceedCredits,
                                       .user_data = pool}},
                                     now_us));
    ++next_account_;
    ATRIUM_TRY(TransferOrError({{.id = next_transfer_,
                                 .debit_account_id = pool,
                                 .credit_account_id = enrolment.account,
                                 .amount = credits,
                                 .code = kCodeTraining}},
                               now_us));
    ++next_transfer_;
    enrolment.credits = credits;
  }
  ++training_.next_enrolment;
  training_.by_learner[{person, item_id}] = enrolment.id;
  training_.enrolments.emplace(enrolment.id, enrolment);
  return enrolment;
}

Credits ProgramState::EnrolmentHeld(const Enrolment& enrolment) const {
  if (enrolment.account == 0) return Credits::Zero();
  const auto found = ledger_->FindAccount(AccountId(enrolment.account));
  return found ? found->debits_pending : Credits::Zero();
}

void ProgramState::ReturnTrainingCredits(Enrolment& enrolment, int64_t now_us) {
  if (enrolment.account == 0) return;
  if (!EnrolmentHeld(enrolment).is_zero()) {
    training_.returns_due.insert(enrolment.id);  // a job still holds some: at a later tick
    return;
  }
  training_.returns_due.erase(enrolment.id);
  const Credits left = AccountBalance(enrolment.account);
  if (left <= Credits::Zero()) return;
  const Status moved = TransferOrError(
      {{.id = next_transfer_,
        .debit_account_id = enrolment.account,
        .credit_account_id = TrackPoolAccount(training_.items.at(enrolment.item).track),
        .amount = left,
        .code = kCodeTraining}},
      now_us);
  ATRIUM_CHECK(moved.ok(), "returning an ended enrolment's credits");
  ++next_transfer_;
  enrolment.returned = *enrolment.returned.CheckedAdd(left);
}

Result<Enrolment> ProgramState::CompleteEnrolment(const std::string& enrolment_id,
                                                  std::string completed_by, int64_t now_us) {
  const auto found = training_.enrolments.find(enrolment_id);
  if (found == training_.enrolments.end()) {
    return MakeError(ErrorCode::kNotFound, "no enrolment " + enrolment_id, "enrolment");
  }
  Enrolment& enrolment = found->second;
  if (enrolment.state != EnrolmentState::kEnrolled) {
    return MakeError(ErrorCode::kInvalidState,
                     "enrolment " + enrolment_id + " is " + std::string(ToString(enrolment.state)),
                     "enrolment");
  }
  const TrainingItem& item = training_.items.at(enrolment.item);
  enrolment.state = EnrolmentState::kCompleted;
  enrolment.ended_us = now_us;
  enrolment.completed_by = std::move(completed_by);
  enrolment.certificate = "C-" + SecretHex("certificate\n" + enrolment.id).substr(0, 20);
  const LogEntry& entry = log_.Append(now_us, "certificate_issued",
                                      {{"certificate", enrolment.certificate},
                                       {"item", item.id},
                                       {"kind", ToString(item.kind)},
                                       {"title", item.title},
                                       {"level", ToString(item.level)},
                                       {"holder", CertificateHolder(enrolment.person)},
                                       {"completed_us", now_us}});
  enrolment.certificate_seq = entry.seq;
  training_.by_certificate[enrolment.certificate] = enrolment.id;
  ReturnTrainingCredits(enrolment, now_us);
  return enrolment;
}

std::string ProgramState::CertificateHolder(const std::string& person) const {
  return SecretHex("holder\n" + person).substr(0, 24);
}

Result<Enrolment> ProgramState::WithdrawEnrolment(const std::string& enrolment_id, int64_t now_us) {
  const auto found = training_.enrolments.find(enrolment_id);
  if (found == training_.enrolments.end()) {
    return MakeError(ErrorCode::kNotFound, "no enrolment " + enrolment_id, "enrolment");
  }
  Enrolment& enrolment = found->second;
  if (enrolment.state != EnrolmentState::kEnrolled) {
    return MakeError(ErrorCode::kInvalidState,
                     "enrolment " + enrolment_id + " is " + std::string(ToString(enrolment.state)),
                     "enrolment");
  }
  enrolment.state = EnrolmentState::kWithdrawn;
  enrolment.ended_us = now_us;
  ReturnTrainingCredits(enrolment, now_us);
  return enrolment;
}

Status ProgramState::NoteTrainingCharge(const std::string& enrolment_id, Credits amount) {
  const auto found = training_.enrolments.find(enrolment_id);
  if (found == training_.enrolments.end()) {
    return MakeError(ErrorCode::kNotFound, "no enrolment " + enrolment_id, "enrolment");
  }
  ATRIUM_ASSIGN_OR_RETURN(found->second.spent, found->second.spent.CheckedAdd(amount));
  return OkStatus();
}

int64_t ProgramState::TickTraining(int64_t now_us) {
  int64_t events = 0;
  // Ended enrolments whose last job has settled since.
  for (auto it = training_.returns_due.begin(); it != training_.returns_due.end();) {
    Enrolment& enrolment = training_.enrolments.at(*it++);
    if (!EnrolmentHeld(enrolment).is_zero()) continue;
    ReturnTrainingCredits(enrolment, now_us);
    ++events;
  }
  return events;
}

}  // namespace atrium::program
