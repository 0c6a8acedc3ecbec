// The API's reads of datasets (docs/datasets.md, docs/api-roles.md): the catalog (public;
// a dataset's location only to staff, data stewards, and for open datasets), access
// requests (stewards and staff see all, a researcher those of their grants), what a grant
// may use, and the storage it keeps.
#include "server/api_internal.h"

namespace atrium::server {
namespace {

using namespace api_internal;  // NOLINT: the API's own helpers

constexpr RoleMask kSteward = RoleBit(Role::kDataSteward);

bool SeesLocations(const core::Actor& actor) {
  return core::IsStaff(actor) || actor.role == Role::kDataSteward;
}

json DatasetView(const program::ProgramState& program, const program::Dataset& dataset,
                 const core::Actor& actor) {
  const program::DatasetBook& book = program.dataset_book();
  const auto use = book.uses.find(dataset.id);
  json view = {{"id", dataset.id},
               {"name", dataset.name},
               {"description", dataset.description},
               {"size_bytes", dataset.size_bytes},
               {"license", dataset.license},
               {"policy", program::ToString(dataset.policy)},
               {"agreement_version", dataset.agreement_version},
               {"added_us", dataset.added_us},
               {"jobs", use == book.uses.end() ? 0 : use->second.jobs},
               {"grants", use == book.uses.end() ? 0 : use->second.jobs_by_grant.size()}};
  if (dataset.policy == program::DatasetPolicy::kOpen || SeesLocations(actor)) {
    view["location"] = dataset.location;
  }
  return view;
}

json RequestView(const program::AccessRequest& request) {
  return {{"id", request.id},
          {"dataset", request.dataset},
          {"grant", request.grant},
          {"requested_by", request.requested_by},
          {"reason", request.reason},
          {"state", program::ToString(request.state)},
          {"decided_by", request.decided_by},
          {"decision_reason", request.decision_reason},
          {"requested_us", request.requested_us},
          {"decided_us", request.decided_us}};
}

Result<json> ListDatasets(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const std::string policy = QueryValue(request, "policy");
  return ListMap(
      program->dataset_book().datasets, page,
      [&](const program::Dataset& dataset) {
        return policy.empty() || program::ToString(dataset.policy) == policy;
      },
      [&](const program::Dataset& dataset) {
        return DatasetView(*program, dataset, request.actor);
      });
}

Result<json> ShowDataset(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  const auto found = program->dataset_book().datasets.find(request.params.at("dataset"));
  if (found == program->dataset_book().datasets.end()) {
    return Error{ErrorCode::kNotFound, "no such dataset", "dataset"};
  }
  return DatasetView(*program, found->second, request.actor);
}

Result<json> ListRequests(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  const std::string state = QueryValue(request, "state");
  const std::string dataset = QueryValue(request, "dataset");
  const std::string grant = QueryValue(request, "grant");
  const bool all = SeesLocations(request.actor);
  return ListMap(
      program->dataset_book().requests, page,
      [&](const program::AccessRequest& item) {
        if (!all) {
          const auto owner = program->grants().find(item.grant);
          if (owner == program->grants().end() ||
              !core::CanSeeGrant(request.actor, owner->second)) {
            return false;
          }
        }
        return (state.empty() || program::ToString(item.state) == state) &&
               (dataset.empty() || item.dataset == dataset) &&
               (grant.empty() || item.grant == grant);
      },
      RequestView);
}

// Every dataset of the catalog with whether the grant may use it now, and if not, why.
Result<json> GrantDatasets(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, GrantOf(request, *program));
  ATRIUM_ASSIGN_OR_RETURN(const Page page, PageOf(request));
  return ListMap(
      program->dataset_book().datasets, page, [](const program::Dataset&) { return true; },
      [&](const program::Dataset& dataset) {
        const Status use = program->CheckDatasetUse(grant->id, dataset.id);
        json view = {{"dataset", dataset.id},
                     {"policy", program::ToString(dataset.policy)},
                     {"usable", use.ok()},
                     {"refusal", use.ok() ? json(nullptr) : json(ToString(use.error().code))}};
        if (use.ok()) view["location"] = dataset.location;
        return view;
      });
}

Result<json> GrantStorage(const ReadRequest& request) {
  ATRIUM_ASSIGN_OR_RETURN(const program::ProgramState* program, ProgramOf(request));
  ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, GrantOf(request, *program));
  const program::DatasetBook& book = program->dataset_book();
  program::GrantStorage storage;
  if (const auto found = book.storage.find(grant->id); found != book.storage.end()) {
    storage = found->second;
  }
  return json{{"grant", grant->id},
              {"gib", storage.gib},
              {"active", storage.active},
              {"start_us", storage.start_us},
              {"periods_settled", storage.periods_settled},
              {"owed", storage.accrued.ToString()},
              {"charged", storage.charged.ToString()},
              {"price_per_gib_month", book.storage_policy.price_per_gib_month.ToString()},
              {"gib_max", book.storage_policy.gib_max}};
}

}  // namespace

std::vector<Route> DatasetReadRoutes() {
  return {
      {"GET",
       "/v1/programs/{program}/datasets",
       "dataset_list",
       kAll,
       {},
       {},
       200,
       ListDatasets,
       "The dataset catalog, with how many grants and jobs used each; filter ?policy="},
      {"GET",
       "/v1/programs/{program}/datasets/{dataset}",
       "dataset_show",
       kAll,
       {},
       {},
       200,
       ShowDataset,
       "A dataset"},
      {"GET",
       "/v1/programs/{program}/dataset-requests",
       "dataset_request_list",
       kStaff | kSteward | kResearchers,
       {},
       {},
       200,
       ListRequests,
       "Access requests one may see, filter ?state= ?dataset= ?grant="},
      {"GET",
       "/v1/programs/{program}/grants/{grant}/datasets",
       "grant_datasets",
       kStaff | kResearchers | kStudents,
       {},
       {},
       200,
       GrantDatasets,
       "The catalog as a grant may use it now (usable, or the refusal's code)"},
      {"GET",
       "/v1/programs/{program}/grants/{grant}/storage",
       "storage_show",
       kStaff | kResearchers | kStudents,
       {},
       {},
       200,
       GrantStorage,
       "The storage a grant keeps, what it owes and was charged, and the program's terms"},
  };
}

}  // namespace atrium::server
