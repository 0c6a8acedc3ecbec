// Datasets as allocatable resources (docs/datasets.md): a program's dataset book. It holds
// the catalog (what a dataset is, where executors find it, who may use it), the access
// requests and decisions, the grants' access, the agreements their PIs accepted, and the
// storage each grant keeps, charged per GiB-month through the ledger.
//
// The book is plain data, one member of ProgramState; ProgramState's dataset methods
// (declared in program_state.h, defined in datasets.cc) change it, deterministically and
// all-or-nothing like every other command of a program.
//
// Access policies:
//   open        every grant of the program may use it;
//   approval    a grant uses it once a data steward or program staff approves a request;
//   restricted  only grants that program staff name (by approving their request), and
//               only while the grant's PI has accepted the dataset's current agreement
//               (`agreement_version`; agreement_required otherwise).
// Access is revocable; a revoked grant asks again.
//
// Storage: the grant's PI (or staff) sets how many GiB the grant keeps, within the program's
// limit. It accrues gib x time x price_per_gib_month / kStorageMonthUs, exactly: the
// micro-credits are whole, and the remainder of the division is carried (`carry`), so the
// sum of all charges is floor(total GiB-microsecond-credits / month) whatever the changes.
// Every 30 days from the storage's start the accrued amount is charged (one transfer,
// kCodeStorage, grant -> cluster revenue); a grant that cannot pay keeps the amount as owed
// and its storage lapses to 0 GiB (docs/datasets.md, "Storage").
//
//   ATRIUM_TRY(program.AddDataset({.id = "imagenet-1k", ...}, now_us));
//   ATRIUM_ASSIGN_OR_RETURN(std::string request,
//                           program.RequestDatasetAccess("imagenet-1k", "G-P-001", pi, why,
//                           now_us));
//   ATRIUM_TRY(program.CheckDatasetUse("G-P-001", "imagenet-1k"));  // at admission
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/credits.h"
#include "base/error.h"

namespace atrium::program {

enum class DatasetPolicy : uint8_t { kOpen, kApproval, kRestricted };
std::string_view ToString(DatasetPolicy policy);
Result<DatasetPolicy> ParseDatasetPolicy(std::string_view text);

enum class AccessRequestState : uint8_t { kPending, kApproved, kDenied };
std::string_view ToString(AccessRequestState state);

struct Dataset {
  std::string id;
  std::string name;
  std::string description;
  int64_t size_bytes = 0;
  std::string license;   // an SPDX id or a short licence name
  std::string location;  // a path or URL executors expose to jobs
  DatasetPolicy policy = DatasetPolicy::kOpen;
  // Restricted datasets: the version of the data use agreement a grant's PI accepts.
  std::string agreement_version;
  int64_t added_us = 0;
};

// What dataset_update changes: the fields given (the id and the policy never change).
struct DatasetChanges {
  std::optional<std::string> name;
  std::optional<std::string> description;
  std::optional<std::string> license;
  std::optional<std::string> location;
  // Restricted datasets: a new version; every grant's PI accepts it again.
  std::optional<std::string> agreement_version;
};

// A grant's request to use a dataset, and its decision.
struct AccessRequest {
  std::string id;  // "DR-<n>"
  std::string dataset;
  std::string grant;
  std::string requested_by;  // person id
  std::string reason;
  AccessRequestState state = AccessRequestState::kPending;
  std::string decided_by;  // person id (or the role of a service account)
  std::string decision_reason;
  int64_t requested_us = 0;
  int64_t decided_us = 0;
};

// A grant's access to a dataset of policy approval or restricted (open ones need none).
struct DatasetAccess {
  std::string request;  // the approved request
  bool active = true;   // false once revoked
  int64_t granted_us = 0;
  int64_t revoked_us = 0;
  std::string revoke_reason;
};

// The storage a grant keeps, and what it has been charged.
struct GrantStorage {
  int64_t gib = 0;
  int64_t start_us = 0;         // when the current storage began (gib went above 0)
  int64_t accrued_to_us = 0;    // accrual is complete up to here
  int64_t periods_settled = 0;  // 30-day periods charged since start_us
  Credits accrued;              // owed and not yet charged (includes any unpaid amount)
  int64_t carry = 0;            // remainder of the division, in [0, kStorageMonthUs)
  Credits charged;              // charged in all, through the ledger
  bool active = false;          // accruing, with boundaries every 30 days from start_us
};

// The program's storage terms (storage_policy_set).
struct StoragePolicy {
  Credits price_per_gib_month;  // 0: storage is free (still recorded)
  int64_t gib_max = 0;          // per grant; 0: no storage offered
};

// Uses of a dataset by jobs, for the report.
struct DatasetUse {
  int64_t jobs = 0;
  std::map<std::string, int64_t> jobs_by_grant;
};

struct DatasetBook {
  std::map<std::string, Dataset> datasets;
  std::map<std::string, AccessRequest> requests;                          // by id
  std::map<std::pair<std::string, std::string>, DatasetAccess> access;    // (grant, dataset)
  std::map<std::pair<std::string, std::string>, std::string> agreements;  // -> version accepted
  std::map<std::string, GrantStorage> storage;                            // by grant
  std::map<std::string, DatasetUse> uses;                                 // by dataset
  StoragePolicy storage_policy;
  uint64_t next_request = 1;
};

// A storage month: 30 days, in microseconds.
inline constexpr int64_t kStorageMonthUs = int64_t{30} * 24 * 3600 * 1'000'000;
// Bounds.
inline constexpr size_t kDatasetsMax = 10'000;
inline constexpr size_t kAccessRequestsMax = 1'000'000;
inline constexpr int64_t kStorageGibMax = int64_t{1} << 30;  // 1 EiB: any program limit fits
inline constexpr size_t kDatasetsPerJobMax = 32;

}  // namespace atrium::program
