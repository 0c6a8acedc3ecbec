// The op table's part for datasets as allocatable resources (docs/datasets.md): the
// catalog, access requests and their decisions, data use agreements, revocation, and the
// storage a grant keeps. The state's rules are ProgramState's (program/datasets.h); the
// handlers here check who asks: a data steward or staff decide (staff alone for restricted
// datasets), a grant's PI or member asks, its PI accepts agreements and sets storage.
#include "core/access.h"
#include "core/app_state_fields.h"
#include "core/ops_internal.h"

namespace atrium::core {
namespace {

using nlohmann::json;
using namespace ops_internal;  // NOLINT: the table's own helpers
using internal::Forbidden;

constexpr RoleSet kStaff = kStaffRoles;
constexpr RoleSet kSteward = RoleIn(Role::kDataSteward);
constexpr RoleSet kResearcher = RoleIn(Role::kResearcher);

// Who decided, as the request records it: the person, else the service account's role.
std::string DecidedBy(const Actor& actor) {
  return actor.person.empty() ? std::string(ToString(actor.role)) : actor.person;
}

json RequestView(const program::AccessRequest& request) {
  return {{"request", request.id},
          {"dataset", request.dataset},
          {"grant", request.grant},
          {"state", program::ToString(request.state)}};
}

// The dataset the request names (the catalog is public: no visibility rule).
Result<const program::Dataset*> NamedDataset(const program::ProgramState& program,
                                             const OpRequest& request) {
  const std::string id = request.args.Text("dataset");
  const auto found = program.dataset_book().datasets.find(id);
  if (found == program.dataset_book().datasets.end()) {
    return Error{ErrorCode::kNotFound, "no dataset " + id, "dataset"};
  }
  return &found->second;
}

Result<json> DatasetAdd(AppState& app, const OpRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, OpHandlers::Program(app, request));
  const OpArgs& args = request.args;
  ATRIUM_ASSIGN_OR_RETURN(const program::DatasetPolicy policy,
                          program::ParseDatasetPolicy(args.Text("policy")));
  program::Dataset dataset{.id = args.Text("dataset"),
                           .name = args.Text("name"),
                           .description = args.Text("description"),
                           .size_bytes = args.Int("size_bytes"),
                           .license = args.Text("license"),
                           .location = args.Text("location"),
                           .policy = policy,
                           .agreement_version = args.Text("agreement_version")};
  const std::string id = dataset.id;
  ATRIUM_TRY(program->AddDataset(std::move(dataset), request.now_us));
  return json{{"dataset", id}, {"policy", program::ToString(policy)}};
}

Result<json> DatasetUpdate(AppState& app, const OpRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, OpHandlers::Program(app, request));
  ATRIUM_ASSIGN_OR_RETURN(const program::Dataset* dataset, NamedDataset(*program, request));
  const OpArgs& args = request.args;
  if (args.Has("agreement_version") && !IsStaff(request.actor)) {
    return Forbidden("only program staff change the agreement of a restricted dataset");
  }
  program::DatasetChanges changes;
  const auto take = [&](std::optional<std::string>& change, std::string_view name) {
    if (args.Has(name)) change = args.Text(name);
  };
  take(changes.name, "name");
  take(changes.description, "description");
  take(changes.license, "license");
  take(changes.location, "location");
  take(changes.agreement_version, "agreement_version");
  const std::string id = dataset->id;
  ATRIUM_TRY(program->UpdateDataset(id, std::move(changes), request.now_us));
  const program::Dataset& updated = program->dataset_book().datasets.at(id);
  return json{{"dataset", id}, {"agreement_version", updated.agreement_version}};
}

Result<json> AccessRequestOp(AppState& app, const OpRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, OpHandlers::Program(app, request));
  ATRIUM_ASSIGN_OR_RETURN(const program::Dataset* dataset, NamedDataset(*program, request));
  // A researcher sees only the grants they belong to (the PI or a member).
  ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, VisibleGrant(*program, request));
  ATRIUM_ASSIGN_OR_RETURN(
      const std::string id,
      program->RequestDatasetAccess(dataset->id, grant->id, DecidedBy(request.actor),
                                    request.args.Text("reason"), request.now_us));
  return RequestView(program->dataset_book().requests.at(id));
}

Result<json> AccessDecide(AppState& app, const OpRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, OpHandlers::Program(app, request));
  const std::string id = request.args.Text("request");
  const auto found = program->dataset_book().requests.find(id);
  if (found == program->dataset_book().requests.end()) {
    return Error{ErrorCode::kNotFound, "no request " + id, "request"};
  }
  const program::Dataset& dataset = program->dataset_book().datasets.at(found->second.dataset);
  if (dataset.policy == program::DatasetPolicy::kRestricted && !IsStaff(request.actor)) {
    return Forbidden("only program staff name the grants of a restricted dataset");
  }
  ATRIUM_TRY(program->DecideDatasetAccess(id, request.args.Text("decision") == "approve",
                                          DecidedBy(request.actor), request.args.Text("reason"),
                                          request.now_us));
  return RequestView(program->dataset_book().requests.at(id));
}

Result<json> AgreementAccept(AppState& app, const OpRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, OpHandlers::Program(app, request));
  ATRIUM_ASSIGN_OR_RETURN(const program::Dataset* dataset, NamedDataset(*program, request));
  ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, VisibleGrant(*program, request));
  if (grant->pi != request.actor.person) {
    return Forbidden("only the grant's PI accepts a data use agreement for it");
  }
  const std::string version = request.args.Text("agreement_version");
  ATRIUM_TRY(program->AcceptDatasetAgreement(dataset->id, grant->id, version, request.now_us));
  return json{{"dataset", dataset->id}, {"grant", grant->id}, {"agreement_version", version}};
}

Result<json> AccessRevoke(AppState& app, const OpRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, OpHandlers::Program(app, request));
  ATRIUM_ASSIGN_OR_RETURN(const program::Dataset* dataset, NamedDataset(*program, request));
  // Stewards see no grants (CanSeeGrant) but decide on them: the grant is looked up as is.
  const std::string grant = request.args.Text("grant");
  if (!program->grants().contains(grant)) {
    return Error{ErrorCode::kNotFound, "no grant " + grant, "grant"};
  }
  ATRIUM_TRY(program->RevokeDatasetAccess(dataset->id, grant, request.args.Text("reason"),
                                          request.now_us));
  return json{{"dataset", dataset->id}, {"grant", grant}, {"active", false}};
}

Result<json> StorageSet(AppState& app, const OpRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, OpHandlers::Program(app, request));
  ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, VisibleGrant(*program, request));
  ATRIUM_TRY(RequirePiOrStaff(*grant, request.actor));
  const std::string id = grant->id;
  const int64_t gib = request.args.Int("gib");
  ATRIUM_TRY(program->SetGrantStorage(id, gib, request.now_us));
  const program::GrantStorage& storage = program->dataset_book().storage.at(id);
  return json{{"grant", id}, {"gib", storage.gib}, {"owed", storage.accrued.ToString()}};
}

Result<json> StoragePolicySet(AppState& app, const OpRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, OpHandlers::Program(app, request));
  const program::StoragePolicy policy{
      .price_per_gib_month = request.args.Amount("price_per_gib_month"),
      .gib_max = request.args.Int("gib_max")};
  ATRIUM_TRY(program->SetStoragePolicy(policy, request.now_us));
  return json{{"price_per_gib_month", policy.price_per_gib_month.ToString()},
              {"gib_max", policy.gib_max}};
}

}  // namespace

std::vector<OpSpec> OpHandlers::DatasetTable() {
  using K = FieldKind;
  const std::vector<ResultField> request_result = {
      {"request", "id", "DR-<n>"},
      {"dataset", "id", ""},
      {"grant", "id", ""},
      {"state", "string", "pending, approved, denied"}};
  std::vector<OpSpec> ops;
  ops.push_back(OpSpec{
      .name = "dataset_add",
      .summary = "Add a dataset to the program's catalog (staff or a data steward)",
      .roles = kStaff | kSteward,
      .fields = {ProgramField(),
                 IdField("dataset", true, "the dataset's id"),
                 TextField("name", 200, true),
                 TextField("description", kTextMax, false),
                 IntField("size_bytes", 0, int64_t{1} << 62, true, 0, "its size in bytes"),
                 TextField("license", 64, false, "SPDX id or licence name"),
                 TextField("location", 2000, true, "the path or URL executors expose to jobs"),
                 {.name = "policy",
                  .kind = K::kEnum,
                  .required = true,
                  .help = "open, approval (a data steward or staff decide), restricted (grants "
                          "staff name, with an agreement)",
                  .max_bytes = 16,
                  .values = {"open", "approval", "restricted"}},
                 TextField("agreement_version", 64, false,
                           "restricted only: the version of the data use agreement")},
      .result = {{"dataset", "id", ""}, {"policy", "string", ""}},
      .route = {.method = "POST", .path = "/v1/programs/{program}/datasets", .success_status = 201},
      .handler = &DatasetAdd,
      .cli_group = "dataset",
      .cli_name = "add"});
  ops.push_back(OpSpec{
      .name = "dataset_access_request",
      .summary = "Ask for a grant's access to a dataset on approval or restricted (its PI or "
                 "a member)",
      .roles = kStaff | kResearcher,
      .fields = {ProgramField(), IdField("dataset", true), IdField("grant", true),
                 TextField("reason", 4000, true, "what the grant uses it for")},
      .result = request_result,
      .route = {.method = "POST",
                .path = "/v1/programs/{program}/datasets/{dataset}/requests",
                .success_status = 201},
      .handler = &AccessRequestOp,
      .cli_group = "dataset",
      .cli_name = "request",
      .cli_positional = {"dataset"}});
  ops.push_back(OpSpec{
      .name = "dataset_access_decide",
      .summary = "Approve or deny an access request, with a reason (a data steward or staff; "
                 "staff alone for restricted datasets)",
      .roles = kStaff | kSteward,
      .fields = {ProgramField(),
                 IdField("request", true, "DR-<n>"),
                 {.name = "decision",
                  .kind = K::kEnum,
                  .required = true,
                  .max_bytes = 16,
                  .values = {"approve", "deny"}},
                 TextField("reason", 4000, true)},
      .result = request_result,
      .route = {.method = "POST",
                .path = "/v1/programs/{program}/dataset-requests/{request}/decide"},
      .handler = &AccessDecide,
      .cli_group = "dataset",
      .cli_name = "decide",
      .cli_positional = {"request"}});
  ops.push_back(OpSpec{
      .name = "dataset_agreement_accept",
      .summary = "Accept a restricted dataset's data use agreement for a grant (its PI)",
      .roles = kResearcher,
      .fields = {ProgramField(), IdField("dataset", true), IdField("grant", true),
                 TextField("agreement_version", 64, true, "the version accepted")},
      .result = {{"dataset", "id", ""}, {"grant", "id", ""}, {"agreement_version", "string", ""}},
      .route = {.method = "POST", .path = "/v1/programs/{program}/datasets/{dataset}/agreement"},
      .handler = &AgreementAccept,
      .cli_group = "dataset",
      .cli_name = "accept-agreement",
      .cli_positional = {"dataset"}});
  ops.push_back(OpSpec{
      .name = "dataset_access_revoke",
      .summary = "Revoke a grant's access to a dataset, with a reason (a data steward or staff)",
      .roles = kStaff | kSteward,
      .fields = {ProgramField(), IdField("dataset", true), IdField("grant", true),
                 TextField("reason", 4000, true)},
      .result = {{"dataset", "id", ""}, {"grant", "id", ""}, {"active", "boolean", ""}},
      .route = {.method = "POST", .path = "/v1/programs/{program}/datasets/{dataset}/revoke"},
      .handler = &AccessRevoke,
      .cli_group = "dataset",
      .cli_name = "revoke",
      .cli_positional = {"dataset"}});
  ops.push_back(OpSpec{
      .name = "storage_set",
      .summary = "Set the storage a grant keeps, in GiB, charged per GiB-month (its PI or staff)",
      .roles = kStaff | kResearcher,
      .fields = {ProgramField(), IdField("grant", true),
                 IntField("gib", 0, program::kStorageGibMax, true, 0,
                          "GiB kept (0 ends the storage at the next 30-day boundary)")},
      .result = {{"grant", "id", ""},
                 {"gib", "integer", ""},
                 {"owed", "amount", "accrued since the last charge"}},
      .route = {.method = "POST", .path = "/v1/programs/{program}/grants/{grant}/storage"},
      .handler = &StorageSet,
      .cli_group = "storage",
      .cli_name = "set",
      .cli_positional = {"grant"}});
  ops.push_back(OpSpec{
      .name = "storage_policy_set",
      .summary = "Set the program's storage price per GiB-month and its limit per grant (staff)",
      .roles = kStaff,
      .fields = {ProgramField(),
                 {.name = "price_per_gib_month",
                  .kind = K::kAmount,
                  .required = true,
                  .help = "credits per GiB kept 30 days"},
                 IntField("gib_max", 0, program::kStorageGibMax, true, 0,
                          "GiB a grant may keep (0: no storage)")},
      .result = {{"price_per_gib_month", "amount", ""}, {"gib_max", "integer", ""}},
      .route = {.method = "POST", .path = "/v1/programs/{program}/storage-policy"},
      .handler = &StoragePolicySet,
      .cli_group = "storage",
      .cli_name = "policy"});
  ops.push_back(OpSpec{
      .name = "dataset_update",
      .summary = "Change a dataset's name, description, licence, location or (staff, restricted "
                 "datasets) agreement version; its PIs accept a new version again",
      .roles = kStaff | kSteward,
      .fields = {ProgramField(), IdField("dataset", true), TextField("name", 200, false),
                 TextField("description", kTextMax, false),
                 TextField("license", 64, false, "SPDX id or licence name"),
                 TextField("location", 2000, false, "the path or URL executors expose to jobs"),
                 TextField("agreement_version", 64, false,
                           "restricted only: a new version of the data use agreement")},
      .result = {{"dataset", "id", ""}, {"agreement_version", "string", ""}},
      .route = {.method = "POST", .path = "/v1/programs/{program}/datasets/{dataset}"},
      .handler = &DatasetUpdate,
      .cli_group = "dataset",
      .cli_name = "update",
      .cli_positional = {"dataset"}});
  return ops;
}

}  // namespace atrium::core
