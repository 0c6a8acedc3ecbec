// ProgramState's datasets and storage (datasets.h; docs/datasets.md).
#include "program/datasets.h"

#include <algorithm>

#include "program/program_state.h"

namespace atrium::program {
namespace {

using nlohmann::json;

Status Refuse(ErrorCode code, std::string message, std::string field) {
  return MakeError(code, std::move(message), std::move(field));
}

bool GrantUsable(const Grant& grant) {
  return grant.status == GrantStatus::kActive || grant.status == GrantStatus::kFrozen;
}

// A month of `gib` at `price`, checked: the most one 30-day period accrues.
Result<Credits> MonthCost(int64_t gib, Credits price) {
  const __int128 micro = static_cast<__int128>(gib) * price.micro();
  if (micro > INT64_MAX) {
    return MakeError(ErrorCode::kOverflow, "a month of that storage costs more than credits hold",
                     "gib");
  }
  return Credits::FromMicro(static_cast<int64_t>(micro));
}

}  // namespace

std::string_view ToString(DatasetPolicy policy) {
  switch (policy) {
    case DatasetPolicy::kOpen:
      return "open";
    case DatasetPolicy::kApproval:
      return "approval";
    case DatasetPolicy::kRestricted:
      return "restricted";
  }
  return "open";
}

Result<DatasetPolicy> ParseDatasetPolicy(std::string_view text) {
  if (text == "open") return DatasetPolicy::kOpen;
  if (text == "approval") return DatasetPolicy::kApproval;
  if (text == "restricted") return DatasetPolicy::kRestricted;
  return MakeError(ErrorCode::kInvalidArgument, "policy must be open, approval or restricted",
                   "policy");
}

std::string_view ToString(AccessRequestState state) {
  switch (state) {
    case AccessRequestState::kPending:
      return "pending";
    case AccessRequestState::kApproved:
      return "approved";
    case AccessRequestState::kDenied:
      return "denied";
  }
  return "pending";
}

// ---- The catalog and access ------------------------------------------------------------

Status ProgramState::AddDataset(Dataset dataset, int64_t now_us) {
  if (datasets_.datasets.contains(dataset.id)) {
    return Refuse(ErrorCode::kAlreadyExists, "dataset " + dataset.id + " exists", "dataset");
  }
  if (datasets_.datasets.size() >= kDatasetsMax) {
    return Refuse(ErrorCode::kLimitExceeded, "the program's catalog is full", "dataset");
  }
  if (dataset.size_bytes < 0) {
    return Refuse(ErrorCode::kInvalidArgument, "size_bytes may not be negative", "size_bytes");
  }
  if (dataset.name.empty()) return Refuse(ErrorCode::kInvalidArgument, "name is empty", "name");
  if (dataset.location.empty()) {
    return Refuse(ErrorCode::kInvalidArgument, "location is empty", "location");
  }
  const bool restricted = dataset.policy == DatasetPolicy::kRestricted;
  if (restricted == dataset.agreement_version.empty()) {
    return Refuse(ErrorCode::kInvalidArgument,
                  restricted ? "a restricted dataset names the version of its agreement"
                             : "only restricted datasets have an agreement",
                  "agreement_version");
  }
  dataset.added_us = now_us;
  log_.Append(now_us, "dataset_added",
              {{"dataset", dataset.id},
               {"name", dataset.name},
               {"policy", ToString(dataset.policy)},
               {"size_bytes", dataset.size_bytes},
               {"license", dataset.license},
               {"agreement_version", dataset.agreement_version}});
  const std::string id = dataset.id;
  datasets_.datasets.emplace(id, std::move(dataset));
  return OkStatus();
}

Status ProgramState::UpdateDataset(const std::string& dataset_id, DatasetChanges changes,
                                   int64_t now_us) {
  const auto found = datasets_.datasets.find(dataset_id);
  if (found == datasets_.datasets.end()) {
    return Refuse(ErrorCode::kNotFound, "no dataset " + dataset_id, "dataset");
  }
  Dataset& dataset = found->second;
  if (changes.name && changes.name->empty()) {
    return Refuse(ErrorCode::kInvalidArgument, "name is empty", "name");
  }
  if (changes.location && changes.location->empty()) {
    return Refuse(ErrorCode::kInvalidArgument, "location is empty", "location");
  }
  if (changes.agreement_version) {
    if (dataset.policy != DatasetPolicy::kRestricted) {
      return Refuse(ErrorCode::kInvalidArgument, "only restricted datasets have an agreement",
                    "agreement_version");
    }
    if (changes.agreement_version->empty() ||
        *changes.agreement_version == dataset.agreement_version) {
      return Refuse(ErrorCode::kInvalidArgument, "give a new agreement version",
                    "agreement_version");
    }
  }
  json changed = json::array();
  const auto apply = [&](std::optional<std::string>& change, std::string& field, const char* name) {
    if (!change || *change == field) return;
    field = std::move(*change);
    changed.push_back(name);
  };
  apply(changes.name, dataset.name, "name");
  apply(changes.description, dataset.description, "description");
  apply(changes.license, dataset.license, "license");
  apply(changes.location, dataset.location, "location");
  apply(changes.agreement_version, dataset.agreement_version, "agreement_version");
  if (changed.empty()) {
    return Refuse(ErrorCode::kInvalidArgument, "nothing to change", "dataset");
  }
  log_.Append(now_us, "dataset_updated",
              {{"dataset", dataset_id},
               {"changed", changed},
               {"name", dataset.name},
               {"license", dataset.license},
               {"agreement_version", dataset.agreement_version}});
  return OkStatus();
}

Result<std::string> ProgramState::RequestDatasetAccess(const std::string& dataset_id,
                                                       const std::string& grant_id,
                                                       std::string requested_by, std::string reason,
                                                       int64_t now_us) {
  const auto dataset = datasets_.datasets.find(dataset_id);
  if (dataset == datasets_.datasets.end()) {
    return Refuse(ErrorCode::kNotFound, "no dataset " + dataset_id, "dataset");
  }
  const auto grant = grants_.find(grant_id);
  if (grant == grants_.end()) return Refuse(ErrorCode::kNotFound, "no grant " + grant_id, "grant");
  if (!GrantUsable(grant->second)) {
    return Refuse(ErrorCode::kGrantNotActive,
                  "the grant is " + std::string(ToString(grant->second.status)), "grant");
  }
  if (dataset->second.policy == DatasetPolicy::kOpen) {
    return Refuse(ErrorCode::kInvalidState, "an open dataset needs no request", "dataset");
  }
  if (reason.empty()) return Refuse(ErrorCode::kInvalidArgument, "give a reason", "reason");
  const auto key = std::make_pair(grant_id, dataset_id);
  const auto access = datasets_.access.find(key);
  if (access != datasets_.access.end() && access->second.active) {
    return Refuse(ErrorCode::kAlreadyExists, "the grant already has access", "dataset");
  }
  for (const auto& [id, request] : datasets_.requests) {
    if (request.state == AccessRequestState::kPending && request.grant == grant_id &&
        request.dataset == dataset_id) {
      return Refuse(ErrorCode::kAlreadyExists, "request " + id + " is waiting for a decision",
                    "dataset");
    }
  }
  if (datasets_.requests.size() >= kAccessRequestsMax) {
    return Refuse(ErrorCode::kLimitExceeded, "too many access requests", "dataset");
  }
  AccessRequest request{.id = "DR-" + std::to_string(datasets_.next_request),
                        .dataset = dataset_id,
                        .grant = grant_id,
                        .requested_by = std::move(requested_by),
                        .reason = std::move(reason),
                        .requested_us = now_us};
  ++datasets_.next_request;
  const std::string id = request.id;
  datasets_.requests.emplace(id, std::move(request));
  return id;
}

Status ProgramState::DecideDatasetAccess(const std::string& request_id, bool approve,
                                         std::string decided_by, std::string reason,
                                         int64_t now_us) {
  const auto found = datasets_.requests.find(request_id);
  if (found == datasets_.requests.end()) {
    return Refuse(ErrorCode::kNotFound, "no request " + request_id, "request");
  }
  AccessRequest& request = found->second;
  if (request.state != AccessRequestState::kPending) {
    return Refuse(ErrorCode::kInvalidState,
                  "request " + request_id + " is " + std::string(ToString(request.state)),
                  "request");
  }
  if (reason.empty()) return Refuse(ErrorCode::kInvalidArgument, "give a reason", "reason");
  const Grant& grant = grants_.at(request.grant);
  if (approve && !GrantUsable(grant)) {
    return Refuse(ErrorCode::kGrantNotActive, "the grant is " + std::string(ToString(grant.status)),
                  "request");
  }
  request.state = approve ? AccessRequestState::kApproved : AccessRequestState::kDenied;
  request.decided_by = std::move(decided_by);
  request.decision_reason = std::move(reason);
  request.decided_us = now_us;
  if (approve) {
    datasets_.access[{request.grant, request.dataset}] =
        DatasetAccess{.request = request.id, .active = true, .granted_us = now_us};
  }
  log_.Append(now_us, "dataset_access_decided",
              {{"request", request.id},
               {"dataset", request.dataset},
               {"grant", request.grant},
               {"decision", ToString(request.state)}});
  return OkStatus();
}

Status ProgramState::AcceptDatasetAgreement(const std::string& dataset_id,
                                            const std::string& grant_id,
                                            const std::string& agreement_version, int64_t now_us) {
  const auto dataset = datasets_.datasets.find(dataset_id);
  if (dataset == datasets_.datasets.end()) {
    return Refuse(ErrorCode::kNotFound, "no dataset " + dataset_id, "dataset");
  }
  const auto grant = grants_.find(grant_id);
  if (grant == grants_.end()) return Refuse(ErrorCode::kNotFound, "no grant " + grant_id, "grant");
  if (!GrantUsable(grant->second)) {
    return Refuse(ErrorCode::kGrantNotActive,
                  "the grant is " + std::string(ToString(grant->second.status)), "grant");
  }
  if (dataset->second.policy != DatasetPolicy::kRestricted) {
    return Refuse(ErrorCode::kInvalidState, "only restricted datasets have an agreement",
                  "dataset");
  }
  if (agreement_version != dataset->second.agreement_version) {
    return Refuse(ErrorCode::kInvalidArgument,
                  "the dataset's agreement is version " + dataset->second.agreement_version,
                  "agreement_version");
  }
  const auto key = std::make_pair(grant_id, dataset_id);
  const auto accepted = datasets_.agreements.find(key);
  if (accepted != datasets_.agreements.end() && accepted->second == agreement_version) {
    return Refuse(ErrorCode::kAlreadyExists, "the grant's PI accepted this agreement",
                  "agreement_version");
  }
  datasets_.agreements[key] = agreement_version;
  log_.Append(
      now_us, "dataset_agreement_accepted",
      {{"dataset", dataset_id}, {"grant", grant_id}, {"agreement_version", agreement_version}});
  return OkStatus();
}

Status ProgramState::RevokeDatasetAccess(const std::string& dataset_id, const std::string& grant_id,
                                         std::string reason, int64_t now_us) {
  if (!datasets_.datasets.contains(dataset_id)) {
    return Refuse(ErrorCode::kNotFound, "no dataset " + dataset_id, "dataset");
  }
  const auto access = datasets_.access.find({grant_id, dataset_id});
  if (access == datasets_.access.end() || !access->second.active) {
    return Refuse(ErrorCode::kInvalidState, "the grant has no access to revoke", "grant");
  }
  if (reason.empty()) return Refuse(ErrorCode::kInvalidArgument, "give a reason", "reason");
  access->second.active = false;
  access->second.revoked_us = now_us;
  access->second.revoke_reason = std::move(reason);
  log_.Append(now_us, "dataset_access_revoked", {{"dataset", dataset_id}, {"grant", grant_id}});
  return OkStatus();
}

Status ProgramState::CheckDatasetUse(const std::string& grant_id,
                                     const std::string& dataset_id) const {
  const auto dataset = datasets_.datasets.find(dataset_id);
  if (dataset == datasets_.datasets.end()) {
    return Refuse(ErrorCode::kNotFound, "no dataset " + dataset_id, "datasets");
  }
  if (dataset->second.policy == DatasetPolicy::kOpen) return OkStatus();
  const auto access = datasets_.access.find({grant_id, dataset_id});
  if (access == datasets_.access.end() || !access->second.active) {
    return Refuse(
        ErrorCode::kDatasetAccessDenied,
        "grant " + grant_id + " may not use dataset " + dataset_id + ": request access first",
        "datasets");
  }
  if (dataset->second.policy == DatasetPolicy::kRestricted) {
    const auto accepted = datasets_.agreements.find({grant_id, dataset_id});
    if (accepted == datasets_.agreements.end() ||
        accepted->second != dataset->second.agreement_version) {
      return Refuse(ErrorCode::kAgreementRequired,
                    "the grant's PI has not accepted version " + dataset->second.agreement_version +
                        " of the agreement of " + dataset_id,
                    "datasets");
    }
  }
  return OkStatus();
}

void ProgramState::NoteDatasetUse(const std::string& grant,
                                  const std::vector<std::string>& datasets) {
  for (const std::string& dataset : datasets) {
    DatasetUse& use = datasets_.uses[dataset];
    ++use.jobs;
    ++use.jobs_by_grant[grant];
  }
}

// ---- Storage ---------------------------------------------------------------------------

Status ProgramState::AccrueStorage(GrantStorage& storage, int64_t until_us) const {
  const int64_t elapsed_us = until_us - storage.accrued_to_us;
  if (elapsed_us <= 0) return OkStatus();
  // gib <= 2^30 and a price whose month at gib_max fits in int64 keep this below 2^128.
  const __int128 numerator = static_cast<__int128>(storage.gib) * elapsed_us *
                                 datasets_.storage_policy.price_per_gib_month.micro() +
                             storage.carry;
  const __int128 whole = numerator / kStorageMonthUs;
  if (whole > INT64_MAX) return MakeError(ErrorCode::kOverflow, "storage charge overflows", "gib");
  auto accrued = storage.accrued.CheckedAdd(Credits::FromMicro(static_cast<int64_t>(whole)));
  if (!accrued.ok()) return accrued.status();
  storage.accrued = *accrued;
  storage.carry = static_cast<int64_t>(numerator % kStorageMonthUs);
  storage.accrued_to_us = until_us;
  return OkStatus();
}

Status ProgramState::ChargeStorage(Grant& grant, GrantStorage& storage, int64_t now_us) {
  if (storage.accrued.is_zero()) return OkStatus();
  ATRIUM_TRY(TransferOrError({{.id = next_transfer_,
                               .debit_account_id = grant.account,
                               .credit_account_id = kClusterRevenueAccount,
                               .amount = storage.accrued,
                               .code = kCodeStorage}},
                             now_us));
  ++next_transfer_;
  auto charged = storage.charged.CheckedAdd(storage.accrued);
  ATRIUM_CHECK(charged.ok(), "storage charged overflows");
  storage.charged = *charged;
  storage.accrued = Credits::Zero();
  return OkStatus();
}

int64_t ProgramState::SettleGrantStorage(Grant& grant, GrantStorage& storage, int64_t now_us) {
  int64_t events = 0;
  while (storage.active &&
         storage.start_us + (storage.periods_settled + 1) * kStorageMonthUs <= now_us) {
    const int64_t boundary_us = storage.start_us + (storage.periods_settled + 1) * kStorageMonthUs;
    // Storage ends with its grant: nothing accrues past the grant's end.
    ATRIUM_CHECK(AccrueStorage(storage, std::min(boundary_us, grant.end_us)).ok(),
                 "storage accrual overflows");
    ++storage.periods_settled;
    ++events;
    // A sanctioned grant's account is frozen: the amount stays owed until a boundary after
    // it thaws (or its end); the storage is kept.
    if (grant.status == GrantStatus::kFrozen) continue;
    if (!ChargeStorage(grant, storage, now_us).ok()) {
      // Cannot pay: the amount stays owed and the storage lapses (docs/datasets.md).
      storage.gib = 0;
      storage.active = false;
      log_.Append(now_us, "storage_lapsed",
                  {{"grant", grant.id}, {"owed", storage.accrued.ToString()}});
      break;
    }
    if (storage.gib == 0 && storage.accrued.is_zero()) storage.active = false;
  }
  return events;
}

int64_t ProgramState::SettleStorage(int64_t now_us) {
  int64_t events = 0;
  for (auto& [grant_id, storage] : datasets_.storage) {
    events += SettleGrantStorage(grants_.at(grant_id), storage, now_us);
  }
  return events;
}

void ProgramState::EndStorage(Grant& grant, int64_t now_us) {
  const auto found = datasets_.storage.find(grant.id);
  if (found == datasets_.storage.end()) return;
  GrantStorage& storage = found->second;
  if (storage.active) {
    ATRIUM_CHECK(AccrueStorage(storage, std::min(now_us, grant.end_us)).ok(), "storage accrual");
  }
  storage.gib = 0;
  storage.active = false;
  // What the grant cannot pay stays recorded as owed.
  if (!ChargeStorage(grant, storage, now_us).ok()) {
    log_.Append(now_us, "storage_lapsed",
                {{"grant", grant.id}, {"owed", storage.accrued.ToString()}});
  }
}

Status ProgramState::SetStoragePolicy(StoragePolicy policy, int64_t now_us) {
  if (policy.price_per_gib_month.is_negative()) {
    return Refuse(ErrorCode::kInvalidArgument, "the price may not be negative",
                  "price_per_gib_month");
  }
  if (policy.gib_max < 0 || policy.gib_max > kStorageGibMax) {
    return Refuse(ErrorCode::kInvalidArgument, "gib_max must be 0 to 2^30", "gib_max");
  }
  int64_t gib_most = policy.gib_max;
  for (const auto& [grant, storage] : datasets_.storage) gib_most = std::max(gib_most, storage.gib);
  if (!MonthCost(gib_most, policy.price_per_gib_month).ok()) {
    return Refuse(ErrorCode::kOverflow, "a month of the largest storage would overflow credits",
                  "price_per_gib_month");
  }
  // What has accrued so far accrues at the old price.
  for (auto& [grant, storage] : datasets_.storage) {
    if (storage.active) {
      ATRIUM_CHECK(AccrueStorage(storage, std::min(now_us, grants_.at(grant).end_us)).ok(),
                   "storage accrual at a checked price");
    }
  }
  datasets_.storage_policy = policy;
  log_.Append(now_us, "storage_policy_set",
              {{"price_per_gib_month", policy.price_per_gib_month.ToString()},
               {"gib_max", policy.gib_max}});
  return OkStatus();
}

Status ProgramState::SetGrantStorage(const std::string& grant_id, int64_t gib, int64_t now_us) {
  const auto found = grants_.find(grant_id);
  if (found == grants_.end()) return Refuse(ErrorCode::kNotFound, "no grant " + grant_id, "grant");
  Grant& grant = found->second;
  GrantStorage current;
  if (const auto existing = datasets_.storage.find(grant_id); existing != datasets_.storage.end()) {
    current = existing->second;
  }
  const bool more = gib > current.gib;
  if (grant.status != GrantStatus::kActive && !(grant.status == GrantStatus::kFrozen && !more)) {
    return Refuse(ErrorCode::kGrantNotActive, "the grant is " + std::string(ToString(grant.status)),
                  "grant");
  }
  if (gib < 0) return Refuse(ErrorCode::kInvalidArgument, "gib may not be negative", "gib");
  if (more && gib > datasets_.storage_policy.gib_max) {
    return Refuse(ErrorCode::kLimitExceeded,
                  "the program keeps at most " + std::to_string(datasets_.storage_policy.gib_max) +
                      " GiB per grant",
                  "gib");
  }
  // The checks run on a copy accrued to now; the change settles the 30-day boundaries due
  // first, so each period is charged at its own levels.
  GrantStorage probe = current;
  const int64_t until_us = std::min(now_us, grant.end_us);
  if (probe.active) ATRIUM_TRY(AccrueStorage(probe, until_us));
  if (gib > 0) {
    // The grant must cover what it owes and a whole month at the new level.
    ATRIUM_ASSIGN_OR_RETURN(const Credits month,
                            MonthCost(gib, datasets_.storage_policy.price_per_gib_month));
    ATRIUM_ASSIGN_OR_RETURN(const Credits needed, month.CheckedAdd(probe.accrued));
    if (needed > AccountAvailable(grant.account)) {
      return Refuse(ErrorCode::kInsufficientCredits,
                    "the grant owes " + probe.accrued.ToString() + " and a month of " +
                        std::to_string(gib) + " GiB costs " + month.ToString() +
                        ", more than the " + AccountAvailable(grant.account).ToString() + " it has",
                    "gib");
    }
  }
  GrantStorage& storage = datasets_.storage[grant_id];
  SettleGrantStorage(grant, storage, now_us);
  if (storage.active) ATRIUM_CHECK(AccrueStorage(storage, until_us).ok(), "storage accrual");
  if (!storage.active && gib > 0) {
    // A new storage period: what is still owed from a lapsed one is paid first (checked
    // above to be affordable).
    ATRIUM_CHECK(ChargeStorage(grant, storage, now_us).ok(), "a checked storage charge");
    storage.active = true;
    storage.start_us = now_us;
    storage.accrued_to_us = now_us;
    storage.periods_settled = 0;
  }
  storage.gib = gib;
  return OkStatus();
}

}  // namespace atrium::program
