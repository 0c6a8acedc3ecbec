// What the files of the op table share (ops.cc and ops_*.cc): the field builders, the
// bounds every op uses, the grant lookups and OpHandlers, AppState's friend through which
// handlers reach the state they change. Not for use outside src/core.
#pragma once

#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "core/app_state.h"
#include "core/ops.h"
#include "program/program_state.h"

namespace atrium::core::ops_internal {

inline constexpr size_t kTextMax = program::ProgramState::kTextBytesMax;
inline constexpr size_t kListMax = 1'000;
inline constexpr size_t kTomlBytesMax = size_t{1} << 20;
inline constexpr int64_t kWalltimeMaxS = 30 * 24 * 3600;
// Rows of one import: a university's whole staff list, small enough to check and apply in
// one journal entry.
inline constexpr size_t kImportRowsMax = 10'000;

inline FieldSpec IdField(std::string_view name, bool required, std::string_view help = {}) {
  return {.name = name, .kind = FieldKind::kId, .required = required, .help = help};
}
inline FieldSpec TextField(std::string_view name, size_t max_bytes, bool required,
                           std::string_view help = {}) {
  return {.name = name,
          .kind = FieldKind::kText,
          .required = required,
          .help = help,
          .max_bytes = max_bytes};
}
inline FieldSpec IntField(std::string_view name, int64_t min, int64_t max, bool required,
                          int64_t default_int, std::string_view help = {}) {
  return {.name = name,
          .kind = FieldKind::kInt,
          .required = required,
          .help = help,
          .min = min,
          .max = max,
          .default_int = default_int};
}
inline FieldSpec ListField(std::string_view name, FieldKind kind, size_t max_items, bool required,
                           std::string_view help = {}) {
  return {.name = name, .kind = kind, .required = required, .help = help, .max_items = max_items};
}
inline FieldSpec Drawn(FieldSpec spec) {
  spec.drawn = true;
  return spec;
}
inline FieldSpec FromFile(FieldSpec spec) {
  spec.from_file = true;
  return spec;
}

inline FieldSpec ProgramField() { return IdField("program", true, "the program's id"); }

inline std::vector<FieldSpec> InstitutionFields() {
  return {IdField("id", true), TextField("name", 500, true),
          TextField("type", 64, true, "e.g. university, lab, nonprofit"),
          TextField("country", 2, true, "ISO 3166 alpha-2 code")};
}

inline std::vector<FieldSpec> PersonFields() {
  return {IdField("id", true, "ORCID-style: 0000-0002-1825-0097"),
          TextField("name", 500, true),
          IdField("institution", true, "a registered institution's id"),
          TextField("role", 64, true, "faculty, postdoc, student, staff"),
          ListField("expertise", FieldKind::kTexts, kListMax, false, "topics"),
          ListField("collaborators", FieldKind::kIds, kListMax, false, "person ids"),
          {.name = "reviewer",
           .kind = FieldKind::kBool,
           .help = "may be assigned proposals to review"}};
}

// The grant the request names, if the caller may see it (else not_found, as for a grant
// that does not exist).
Result<const program::Grant*> VisibleGrant(const program::ProgramState& program,
                                           const OpRequest& request);
// Forbidden unless the actor is program staff or the grant's PI.
Status RequirePiOrStaff(const program::Grant& grant, const Actor& actor);
// The grant of the obligation the request names, if the caller may see it.
Result<const program::Grant*> ObligationGrant(const program::ProgramState& program,
                                              const OpRequest& request);

}  // namespace atrium::core::ops_internal

namespace atrium::core {

// The handlers: AppState's friend, so they reach the state they change.
class OpHandlers {
 public:
  static std::vector<OpSpec> Table();
  // The tables of capabilities kept in files of their own (ops_*.cc), appended to Table()
  // in this order.
  static std::vector<OpSpec> ReservationTable();
  static std::vector<OpSpec> TrainingTable();
  static std::vector<OpSpec> DatasetTable();

  static Result<program::ProgramState*> Program(AppState& app, const OpRequest& request) {
    return app.MutableProgram(request.command);
  }

  static Result<nlohmann::json> TokenCreate(AppState& app, const OpRequest& request);
  static Result<nlohmann::json> TokenRevoke(AppState& app, const OpRequest& request);
  static Result<nlohmann::json> NodeState(AppState& app, const OpRequest& request,
                                          cluster::NodeState state);
  static Result<nlohmann::json> PeopleImport(AppState& app, const OpRequest& request);
  // Capacity reservations (ops_reservations.cc).
  static Result<nlohmann::json> ReservationBook(AppState& app, const OpRequest& request);
  static Result<nlohmann::json> ReservationCancel(AppState& app, const OpRequest& request);
  static Result<nlohmann::json> MaintenanceBook(AppState& app, const OpRequest& request);
  static Result<nlohmann::json> MaintenanceCancel(AppState& app, const OpRequest& request);
};

}  // namespace atrium::core
