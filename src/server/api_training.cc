// The API's reads of training programs (docs/training.md): the catalog (public), the
// enrolments (staff all, an instructor those of their items, a learner their own) and the
// certificates (public: the log entry that proves one).
#include <algorithm>

#include "server/api_internal.h"

namespace atrium::server {
namespace {

using namespace api_internal;  // NOLINT: the reads' shared helpers

json ItemView(const program::ProgramState& program, const program::TrainingItem& item) {
  int64_t enrolled = 0;
  int64_t completed = 0;
  for (const auto& [id, enrolment] : program.training().enrolments) {
    if (enrolment.item != item.id) continue;
    if (enrolment.state == program::EnrolmentState::kEnrolled) ++enrolled;
    if (enrolment.state == program::EnrolmentState::kCompleted) ++completed;
  }
  json view = {{"id", item.id},
               {"kind", program::ToString(item.kind)},
               {"title", item.title},
               {"level", program::ToString(item.level)},
               {"prerequisites", item.prerequisites},
               {"materials", item.materials},
               {"instructors", item.instructors.size()},
               {"track", item.track},
               {"credits", item.credits.ToString()},
               {"enrolled", enrolled},
               {"completed", completed}};
  if (item.kind == program::TrainingKind::kLab) {
    view["lab"] = {{"accelerator", item.lab.accelerator},
                   {"chips", item.lab.chips},
                   {"walltime_s", item.lab.walltime_s},
                   {"argv", item.lab.argv},
                   {"image", item.lab.image}};
  }
  return view;
}

Result<json> ListTraining(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const std::string kind = QueryValue(request, "kind");
  return ListMap(
      program->training().items, page,
      [&](const program::TrainingItem& item) {
        return kind.empty() || program::ToString(item.kind) == kind;
      },
      [&](const program::TrainingItem& item) { return ItemView(*program, item); });
}

Result<json> GetTraining(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  const std::string& id = request.params.at("item");
  const auto found = program->training().items.find(id);
  if (found == program->training().items.end()) {
    return Error{ErrorCode::kNotFound, "no training item " + id, "item"};
  }
  return ItemView(*program, found->second);
}

bool CanSeeEnrolment(const program::ProgramState& program, const core::Actor& actor,
                     const program::Enrolment& enrolment) {
  if (core::IsStaff(actor)) return true;
  if (actor.person.empty()) return false;
  if (enrolment.person == actor.person) return true;
  const program::TrainingItem& item = program.training().items.at(enrolment.item);
  return actor.role == Role::kInstructor &&
         std::find(item.instructors.begin(), item.instructors.end(), actor.person) !=
             item.instructors.end();
}

json EnrolmentView(const program::ProgramState& program, const program::Enrolment& enrolment) {
  json view = {{"id", enrolment.id},
               {"item", enrolment.item},
               {"person", enrolment.person},
               {"grant", enrolment.grant},
               {"state", program::ToString(enrolment.state)},
               {"credits", enrolment.credits.ToString()},
               {"spent", enrolment.spent.ToString()},
               {"returned", enrolment.returned.ToString()},
               {"held", program.EnrolmentHeld(enrolment).ToString()},
               {"enrolled_us", enrolment.enrolled_us},
               {"ended_us", enrolment.ended_us},
               {"completed_by", enrolment.completed_by},
               {"certificate", enrolment.certificate}};
  if (enrolment.account != 0) {
    view["left"] = program.AccountBalance(enrolment.account).ToString();
  }
  return view;
}

Result<json> ListEnrolments(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const std::string item = QueryValue(request, "item");
  const std::string person = QueryValue(request, "person");
  const std::string state = QueryValue(request, "state");
  return ListMap(
      program->training().enrolments, page,
      [&](const program::Enrolment& enrolment) {
        return CanSeeEnrolment(*program, request.actor, enrolment) &&
               (item.empty() || enrolment.item == item) &&
               (person.empty() || enrolment.person == person) &&
               (state.empty() || program::ToString(enrolment.state) == state);
      },
      [&](const program::Enrolment& enrolment) { return EnrolmentView(*program, enrolment); });
}

// The certificate's entry of the public log: its sequence number and hash place it in the
// chain that `atrium audit verify` checks.
Result<json> GetCertificate(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  const std::string& id = request.params.at("certificate");
  const auto found = program->training().by_certificate.find(id);
  if (found != program->training().by_certificate.end()) {
    const program::Enrolment& enrolment = program->training().enrolments.at(found->second);
    const program::LogEntry& entry =
        program->log().entries().at(static_cast<size_t>(enrolment.certificate_seq - 1));
    return json{{"certificate", id},
                {"seq", entry.seq},
                {"at_us", entry.at_us},
                {"hash", entry.hash},
                {"prev", entry.prev},
                {"data", entry.data},
                {"log_head", program->log().head()}};
  }
  return Error{ErrorCode::kNotFound, "no certificate " + id, "certificate"};
}

}  // namespace

std::vector<Route> TrainingReadRoutes() {
  return {
      {"GET",
       "/v1/programs/{program}/training",
       "training_list",
       kAll,
       {},
       {},
       200,
       ListTraining,
       "The training catalog: courses and labs, with enrolled and completed counts; ?kind="},
      {"GET",
       "/v1/programs/{program}/training/{item}",
       "training_show",
       kAll,
       {},
       {},
       200,
       GetTraining,
       "A course or lab"},
      {"GET",
       "/v1/programs/{program}/enrolments",
       "enrolment_list",
       kSignedIn,
       {},
       {},
       200,
       ListEnrolments,
       "Enrolments and progress (staff: all; an instructor: their items'; a learner: their "
       "own); ?item= ?person= ?state="},
      {"GET",
       "/v1/programs/{program}/certificates/{certificate}",
       "certificate_show",
       kAll,
       {},
       {},
       200,
       GetCertificate,
       "A certificate of completion: its entry of the public log"},
  };
}

}  // namespace atrium::server
