// The op table's part for training programs (docs/training.md): the catalog, enrolments,
// completions. A lab's jobs are submitted with job_submit's `lab` field (jobs.cc).
#include <algorithm>

#include "core/access.h"
#include "core/ops_internal.h"

namespace atrium::core {

using namespace ops_internal;  // NOLINT: the op table's shared helpers
using nlohmann::json;
using K = FieldKind;

namespace {

constexpr RoleSet kStaff = kStaffRoles;
constexpr RoleSet kInstructor = RoleIn(Role::kInstructor);
constexpr RoleSet kLearners = RoleIn(Role::kResearcher) | RoleIn(Role::kStudent);

bool Instructs(const program::TrainingItem& item, const Actor& actor) {
  return actor.role == Role::kInstructor && !actor.person.empty() &&
         std::find(item.instructors.begin(), item.instructors.end(), actor.person) !=
             item.instructors.end();
}

// The enrolment the request names, if the caller may see it: staff, the item's
// instructors and the learner themself (else not_found, as for one that does not exist).
Result<const program::Enrolment*> VisibleEnrolment(const program::ProgramState& program,
                                                   const OpRequest& request) {
  const std::string id = request.args.Text("enrolment");
  const auto found = program.training().enrolments.find(id);
  if (found != program.training().enrolments.end()) {
    const program::Enrolment& enrolment = found->second;
    const Actor& actor = request.actor;
    if (IsStaff(actor) || (!actor.person.empty() && enrolment.person == actor.person) ||
        Instructs(program.training().items.at(enrolment.item), actor)) {
      return &enrolment;
    }
  }
  return Error{ErrorCode::kNotFound, "no enrolment " + id, "enrolment"};
}

// Checked before anything changes: ending a finished enrolment is refused whole.
Status RequireEnrolled(const program::Enrolment& enrolment) {
  if (enrolment.state == program::EnrolmentState::kEnrolled) return OkStatus();
  return Error{
      ErrorCode::kInvalidState,
      "enrolment " + enrolment.id + " is " + std::string(program::ToString(enrolment.state)),
      "enrolment"};
}

json EnrolmentAnswer(const program::Enrolment& enrolment) {
  return {{"enrolment", enrolment.id},
          {"item", enrolment.item},
          {"state", program::ToString(enrolment.state)},
          {"credits", enrolment.credits.ToString()},
          {"certificate", enrolment.certificate}};
}

Result<program::TrainingLevel> ParseLevel(const std::string& text) {
  if (text.empty() || text == "introductory") return program::TrainingLevel::kIntroductory;
  if (text == "intermediate") return program::TrainingLevel::kIntermediate;
  return program::TrainingLevel::kAdvanced;  // the field's enum admits nothing else
}

}  // namespace

std::vector<OpSpec> OpHandlers::TrainingTable() {
  std::vector<OpSpec> ops;
  const std::vector<ResultField> enrolment_answer = {
      {"enrolment", "id", "E-<n>"},
      {"item", "id", ""},
      {"state", "string", "enrolled, completed or withdrawn"},
      {"credits", "amount", "the lab's credits the enrolment carries"},
      {"certificate", "id", "C-<hex> once completed (a public log entry)"}};
  ops.push_back(OpSpec{
      .name = "training_add",
      .summary = "Add a course or a self-paced lab to the program's training catalog",
      .roles = kStaff | kInstructor,
      .fields = {ProgramField(),
                 IdField("id", true, "the item's id"),
                 {.name = "kind",
                  .kind = K::kEnum,
                  .required = true,
                  .max_bytes = 8,
                  .values = {"course", "lab"}},
                 TextField("title", 500, true),
                 {.name = "level",
                  .kind = K::kEnum,
                  .help = "default introductory",
                  .max_bytes = 16,
                  .values = {"introductory", "intermediate", "advanced"}},
                 ListField("prerequisites", K::kIds, 100, false,
                           "items the learner must have completed"),
                 ListField("materials", K::kTexts, 100, false, "links"),
                 ListField("instructors", K::kIds, 100, false,
                           "person ids (an instructor adding the item is one)"),
                 IdField("track", false, "the track whose pool pays a lab's credits"),
                 {.name = "credits",
                  .kind = K::kAmount,
                  .help = "a lab's credits per enrolment, from the track's pool"},
                 {.name = "lab",
                  .kind = K::kObject,
                  .help = "a lab's job template: what its jobs run by default, and at most",
                  .fields = {IdField("accelerator", false, "default: the cluster's"),
                             IntField("chips", 1, 1'000'000, true, 0),
                             IntField("walltime_s", 1, kWalltimeMaxS, true, 0),
                             ListField("argv", K::kTexts, 100, false, "the command"),
                             TextField("image", 500, false, "the container image it expects")}}},
      .result = {{"item", "id", ""}, {"kind", "string", "course or lab"}},
      .route = {.method = "POST", .path = "/v1/programs/{program}/training", .success_status = 201},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        const OpArgs& args = request.args;
        program::TrainingItem item;
        item.id = args.Text("id");
        item.kind = args.Text("kind") == "lab" ? program::TrainingKind::kLab
                                               : program::TrainingKind::kCourse;
        item.title = args.Text("title");
        ATRIUM_ASSIGN_OR_RETURN(item.level, ParseLevel(args.Text("level")));
        item.prerequisites = args.Strings("prerequisites");
        item.materials = args.Strings("materials");
        item.instructors = args.Strings("instructors");
        if (request.actor.role == Role::kInstructor) {
          if (request.actor.person.empty()) {
            return Error{ErrorCode::kForbidden, "an instructor token speaks for a person", ""};
          }
          if (std::find(item.instructors.begin(), item.instructors.end(), request.actor.person) ==
              item.instructors.end()) {
            item.instructors.push_back(request.actor.person);
          }
        }
        item.track = args.Text("track");
        item.credits = args.Amount("credits");
        if (args.Has("lab")) {
          if (item.kind != program::TrainingKind::kLab) {
            return Error{ErrorCode::kInvalidArgument, "only a lab has a job template", "lab"};
          }
          const OpArgs lab = args.Object("lab");
          item.lab.accelerator = lab.Text("accelerator");
          item.lab.chips = lab.Int("chips");
          item.lab.walltime_s = lab.Int("walltime_s");
          item.lab.argv = lab.Strings("argv");
          item.lab.image = lab.Text("image");
        } else if (item.kind == program::TrainingKind::kLab) {
          return Error{ErrorCode::kInvalidArgument, "a lab needs its job template", "lab"};
        }
        const std::string id = item.id;
        const std::string kind(program::ToString(item.kind));
        ATRIUM_TRY(program->AddTrainingItem(std::move(item), request.now_us));
        return json{{"item", id}, {"kind", kind}};
      },
      .cli_group = "training",
      .cli_name = "add"});
  ops.push_back(OpSpec{
      .name = "training_enrol",
      .summary = "Enrol in a course or lab through a grant one belongs to (a lab's credits "
                 "move from its track's pool to the enrolment)",
      .roles = kStaff | kLearners,
      .fields = {ProgramField(), IdField("item", true),
                 IdField("grant", true,
                         "the grant (PI, member or course student) one learns under"),
                 IdField("person", false, "staff only: enrol this person (default: oneself)")},
      .result = enrolment_answer,
      .route = {.method = "POST",
                .path = "/v1/programs/{program}/training/{item}/enrol",
                .success_status = 201},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        const Actor& actor = request.actor;
        std::string person = request.args.Text("person");
        if (!person.empty() && person != actor.person && !IsStaff(actor)) {
          return Error{ErrorCode::kForbidden, "only staff enrol someone else", "person"};
        }
        if (person.empty()) person = actor.person;
        if (person.empty()) {
          return Error{ErrorCode::kInvalidArgument, "name the person to enrol", "person"};
        }
        // A grant the learner may not see is not_found, as in every other op.
        ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, VisibleGrant(*program, request));
        const std::string grant_id = grant->id;
        ATRIUM_ASSIGN_OR_RETURN(
            const program::Enrolment enrolment,
            program->Enrol(request.args.Text("item"), person, grant_id, request.now_us));
        return EnrolmentAnswer(enrolment);
      },
      .cli_group = "training",
      .cli_name = "enrol",
      .cli_positional = {"item"}});
  ops.push_back(OpSpec{
      .name = "training_complete",
      .summary = "Mark an enrolment completed (the item's instructor or staff); issues its "
                 "certificate in the public log",
      .roles = kStaff | kInstructor,
      .fields = {ProgramField(), IdField("enrolment", true)},
      .result = enrolment_answer,
      .route = {.method = "POST", .path = "/v1/programs/{program}/enrolments/{enrolment}/complete"},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        ATRIUM_ASSIGN_OR_RETURN(const program::Enrolment* visible,
                                VisibleEnrolment(*program, request));
        const Actor& actor = request.actor;
        if (!IsStaff(actor) && !Instructs(program->training().items.at(visible->item), actor)) {
          return Error{ErrorCode::kForbidden, "only the item's instructors or staff mark it", ""};
        }
        ATRIUM_TRY(RequireEnrolled(*visible));
        const program::Enrolment before = *visible;
        const std::string by =
            std::string(IsStaff(actor) ? "staff:" : "instructor:") + actor.person;
        // Its lab's jobs end first, so the credits they held return with the rest.
        app.EndEnrolmentJobs(program->definition().id, before, request.now_us);
        ATRIUM_ASSIGN_OR_RETURN(const program::Enrolment enrolment,
                                program->CompleteEnrolment(before.id, by, request.now_us));
        return EnrolmentAnswer(enrolment);
      },
      .cli_group = "training",
      .cli_name = "complete",
      .cli_positional = {"enrolment"}});
  ops.push_back(OpSpec{
      .name = "training_withdraw",
      .summary = "Withdraw an enrolment (the learner, the item's instructor or staff); a "
                 "lab's unspent credits return to its track",
      .roles = kStaff | kInstructor | kLearners,
      .fields = {ProgramField(), IdField("enrolment", true)},
      .result = enrolment_answer,
      .route = {.method = "POST", .path = "/v1/programs/{program}/enrolments/{enrolment}/withdraw"},
      .handler = [](AppState& app, const OpRequest& request) -> Result<json> {
        ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
        ATRIUM_ASSIGN_OR_RETURN(const program::Enrolment* visible,
                                VisibleEnrolment(*program, request));
        ATRIUM_TRY(RequireEnrolled(*visible));
        const program::Enrolment before = *visible;
        app.EndEnrolmentJobs(program->definition().id, before, request.now_us);
        ATRIUM_ASSIGN_OR_RETURN(const program::Enrolment enrolment,
                                program->WithdrawEnrolment(before.id, request.now_us));
        return EnrolmentAnswer(enrolment);
      },
      .cli_group = "training",
      .cli_name = "withdraw",
      .cli_positional = {"enrolment"}});
  return ops;
}

}  // namespace atrium::core
