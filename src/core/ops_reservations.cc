// The op table's part for capacity reservations (docs/reservations.md): a grant's PI or
// member (or staff) books whole nodes for a window within the program's limits, and
// cancels; operators book maintenance. The bookings live in the scheduler
// (sched/capacity_reservation.h); here are the program's limits, who may do what, the
// charges noted in the grants' spent, and the reads' helpers (core/reservations.h).
#include "core/access.h"
#include "core/app_state_fields.h"
#include "core/ops_internal.h"
#include "core/reservations.h"

namespace atrium::core {

using nlohmann::json;
using namespace ops_internal;  // NOLINT: the table's helpers

namespace {

constexpr int64_t kSecondsPerHour = 3600;
constexpr int64_t kSecondsPerDay = int64_t{24} * 3600;
constexpr int64_t kBasisPoints = 10'000;
// Windows start and end within this many seconds of the epoch (year 2200).
constexpr int64_t kTimeSMax = 7'258'118'400;

std::string BookingId(uint32_t index) { return "R" + std::to_string(index + 1); }

Error Limit(std::string message, std::string field) {
  return Error{ErrorCode::kReservationLimit, std::move(message), std::move(field)};
}

}  // namespace

std::optional<uint32_t> FindBooking(const AppState& app, std::string_view id) {
  if (app.scheduler() == nullptr || id.size() < 2 || id.size() > 11 || id[0] != 'R') {
    return std::nullopt;
  }
  uint64_t number = 0;
  for (const char c : id.substr(1)) {
    if (c < '0' || c > '9') return std::nullopt;
    number = number * 10 + static_cast<uint64_t>(c - '0');
  }
  if (number == 0 || number > app.scheduler()->bookings().size() || id[1] == '0') {
    return std::nullopt;
  }
  return static_cast<uint32_t>(number - 1);
}

SchedGrant BookingOwner(const AppState& app, const sched::CapacityBooking& booking) {
  if (booking.grant < 0) return {};
  const std::string& name = app.scheduler()->grants()[static_cast<size_t>(booking.grant)].name;
  const auto found = app.sched_grants().find(name);
  return found == app.sched_grants().end() ? SchedGrant{} : found->second;
}

bool CanSeeBooking(const AppState& app, const Actor& actor, const sched::CapacityBooking& booking) {
  if (IsStaff(actor) || actor.role == Role::kOperator) return true;
  if (actor.role != Role::kResearcher || booking.grant < 0) return false;
  const SchedGrant owner = BookingOwner(app, booking);
  const program::ProgramState* program = app.FindProgram(owner.program);
  if (program == nullptr) return false;
  const auto grant = program->grants().find(owner.grant);
  return grant != program->grants().end() && CanSeeGrant(actor, grant->second);
}

json BookingJson(const AppState& app, const sched::CapacityBooking& booking, bool anonymous) {
  const cluster::Cluster& cluster = *app.cluster();
  const cluster::Pool& pool = cluster.pools()[booking.pool];
  json out = {{"pool", pool.name},
              {"accelerator", cluster.accelerators()[pool.accelerator].name},
              {"node_count", booking.nodes.size()},
              {"chips", booking.chips(pool.chips_per_node)},
              {"start_s", booking.start_s},
              {"end_s", booking.end_s},
              {"kind", booking.grant < 0 ? "maintenance" : "booking"},
              {"state", sched::ToString(booking.state)}};
  if (anonymous) return out;
  const SchedGrant owner = BookingOwner(app, booking);
  json nodes = json::array();
  for (const uint32_t node : booking.nodes) nodes.push_back(cluster.nodes()[node].name);
  out["reservation"] = booking.id;
  out["program"] = owner.program.empty() ? json(nullptr) : json(owner.program);
  out["grant"] = owner.grant.empty() ? json(nullptr) : json(owner.grant);
  out["nodes"] = std::move(nodes);
  out["booked_by"] = booking.booked_by;
  out["note"] = booking.note;
  out["booked_at_s"] = booking.booked_at_s;
  out["closed_at_s"] = booking.closed_at_s < 0 ? json(nullptr) : json(booking.closed_at_s);
  out["price"] = booking.price.ToString();
  out["charged"] = booking.charged.ToString();
  out["used_chip_hours"] = static_cast<double>(booking.used_chip_s) / kSecondsPerHour;
  out["lent_chip_hours"] = static_cast<double>(booking.lent_chip_s) / kSecondsPerHour;
  return out;
}

void AppState::NoteBookingCharges() {
  for (const sched::BookingCharge& charge : scheduler_->TakeBookingCharges()) {
    const SchedGrant owner = BookingOwner(*this, scheduler_->bookings()[charge.booking]);
    const auto program = programs_.find(owner.program);
    ATRIUM_CHECK(program != programs_.end(), "a booking's program exists");
    ATRIUM_CHECK(program->second.NoteJobCharge(owner.grant, charge.amount).ok(),
                 "a booking's grant exists");
  }
}

void AppState::NoteYieldNotices() {
  for (const sched::PreemptNotice& notice : scheduler_->TakeYieldNotices()) {
    const sched::Job& job = scheduler_->job(notice.job);
    // Re-keyed under its new end (as a preemption's notice is, in Schedule).
    for (auto it = running_by_end_.begin(); it != running_by_end_.end(); ++it) {
      if (it->second == notice.job) {
        running_by_end_.erase(it);
        break;
      }
    }
    running_by_end_.emplace(RunDeadlineS(job), notice.job);
  }
}

void AppState::StopGrantBookings(const std::string& program, const std::string& grant,
                                 int64_t now_us) {
  const int64_t now_s = now_us / internal::kMicrosPerSecond;
  for (uint32_t index = 0; index < scheduler_->bookings().size(); ++index) {
    const sched::CapacityBooking& booking = scheduler_->bookings()[index];
    if (!booking.live()) continue;
    const SchedGrant owner = BookingOwner(*this, booking);
    if (owner.program != program || owner.grant != grant || !owner.student.empty()) continue;
    // The grant ends: an unstarted booking is released in full (no fee).
    (void)scheduler_->CancelBooking(index, now_s, 0);
  }
  NoteBookingCharges();
}

namespace {

struct Window {
  int64_t start_s = 0;
  int64_t end_s = 0;
};

Result<Window> WindowOf(const OpRequest& request) {
  const int64_t now_s = request.now_us / internal::kMicrosPerSecond;
  Window window{request.args.Int("start_s"), request.args.Int("end_s")};
  if (window.start_s < now_s) {
    return Error{ErrorCode::kInvalidArgument, "the window must not start in the past", "start_s"};
  }
  if (window.end_s <= window.start_s) {
    return Error{ErrorCode::kInvalidArgument, "the window must end after it starts", "end_s"};
  }
  return window;
}

}  // namespace

namespace {

Result<json> Booked(AppState& app, uint32_t index) {
  json out = BookingJson(app, app.scheduler()->bookings()[index], false);
  return json{{"reservation", out["reservation"]}, {"state", out["state"]},
              {"node_count", out["node_count"]},   {"price", out["price"]},
              {"start_s", out["start_s"]},         {"end_s", out["end_s"]}};
}

}  // namespace

Result<json> OpHandlers::ReservationBook(AppState& app, const OpRequest& request) {
  if (!app.cluster_) return Error{ErrorCode::kInvalidState, "no cluster is loaded", ""};
  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
  ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, VisibleGrant(*program, request));
  const Actor& actor = request.actor;
  if (!IsStaff(actor) &&
      !(actor.role == Role::kResearcher && BelongsToGrant(*grant, actor.person) &&
        !grant->students.contains(actor.person))) {
    return internal::Forbidden("only the grant's PI, its members or program staff book for it");
  }
  if (grant->status != program::GrantStatus::kActive) {
    return Error{ErrorCode::kGrantNotActive,
                 "grant " + grant->id + " is " + std::string(program::ToString(grant->status)),
                 "grant"};
  }
  const int64_t chips = request.args.Int("chips");
  const int64_t nodes = request.args.Int("nodes");
  if ((chips > 0) == (nodes > 0)) {
    return Error{ErrorCode::kInvalidArgument, "give chips or nodes (one of them)", "chips"};
  }
  ATRIUM_ASSIGN_OR_RETURN(const Window window, WindowOf(request));
  const std::string accelerator = request.args.Text("accelerator");
  auto shape = app.cluster_->Shape(accelerator, 1);
  if (!shape.ok()) {
    Error error = shape.error();
    error.field = "accelerator";
    return error;
  }
  const cluster::Pool& pool = app.cluster_->pools()[shape->pool];
  const int64_t node_count =
      nodes > 0 ? nodes : (chips + pool.chips_per_node - 1) / pool.chips_per_node;
  const int64_t booked_chips = node_count * pool.chips_per_node;
  const std::string size_field = nodes > 0 ? "nodes" : "chips";

  // The program's limits.
  const program::ReservationRules& rules = program->definition().reservations;
  const int64_t now_s = request.now_us / internal::kMicrosPerSecond;
  if (!rules.enabled) {
    return Limit("program " + program->definition().id +
                     " has no [reservations] table: its grants book nothing",
                 "program");
  }
  if (rules.max_chips > 0 && booked_chips > rules.max_chips) {
    return Limit(std::to_string(booked_chips) + " chips (whole nodes) exceed the program's " +
                     std::to_string(rules.max_chips),
                 size_field);
  }
  if (rules.max_hours > 0 && window.end_s - window.start_s > rules.max_hours * kSecondsPerHour) {
    return Limit(
        "the window is longer than the program's " + std::to_string(rules.max_hours) + " hours",
        "end_s");
  }
  if (rules.max_ahead_days > 0 && window.start_s - now_s > rules.max_ahead_days * kSecondsPerDay) {
    return Limit(
        "the window starts more than " + std::to_string(rules.max_ahead_days) + " days ahead",
        "start_s");
  }
  // The grant's share of the pool in any window that overlaps this one (counted over
  // every booking of the grant that overlaps it: an upper bound, so a grant never holds
  // more at once).
  __int128 held = booked_chips;
  for (const sched::CapacityBooking& other : app.scheduler_->bookings()) {
    if (!other.live() || other.pool != shape->pool || other.end_s <= window.start_s ||
        window.end_s <= other.start_s) {
      continue;
    }
    const SchedGrant owner = BookingOwner(app, other);
    if (owner.program == program->definition().id && owner.grant == grant->id) {
      held += other.chips(pool.chips_per_node);
    }
  }
  const __int128 pool_chips = app.cluster_->pool_chips(shape->pool);
  if (held * kBasisPoints > pool_chips * rules.max_share_bp) {
    return Limit("the grant would hold more than " + std::to_string(rules.max_share_bp) +
                     " basis points of pool " + pool.name + " booked at once",
                 size_field);
  }
  // Credits, from the grant's account in the ledger of record.
  const Credits price_per_chip_hour =
      app.cluster_->accelerators()[pool.accelerator].price_per_chip_hour;
  ATRIUM_ASSIGN_OR_RETURN(
      const Credits price,
      UsageCost(booked_chips, window.end_s - window.start_s, price_per_chip_hour));
  const auto account = app.ledger().FindAccount(program->AccountId(grant->account));
  if (!account || account->available() < price) {
    return Error{ErrorCode::kInsufficientCredits,
                 "the booking costs " + price.ToString() + "; the grant has " +
                     (account ? account->available() : Credits::Zero()).ToString() + " available",
                 "grant"};
  }
  const std::string sched_name = internal::SchedGrantName(program->definition().id, grant->id);
  sched::BookingRequest booking{.grant = sched_name,
                                .accelerator = accelerator,
                                .chips = chips,
                                .nodes = nodes,
                                .one_group = request.args.Bool("one_group"),
                                .start_s = window.start_s,
                                .end_s = window.end_s,
                                .booked_by = actor.person};
  const std::string id = BookingId(static_cast<uint32_t>(app.scheduler_->bookings().size()));
  ATRIUM_TRY(app.scheduler_->Book(id, booking, now_s, true).status());
  // Every check passed: register the grant with the scheduler (if new) and book.
  ATRIUM_TRY(app.EnsureSchedGrant(program->definition().id, grant->id, "").status());
  ATRIUM_ASSIGN_OR_RETURN(const uint32_t index, app.scheduler_->Book(id, booking, now_s));
  app.NoteBookingCharges();
  return Booked(app, index);
}

Result<json> OpHandlers::ReservationCancel(AppState& app, const OpRequest& request) {
  if (!app.cluster_) return Error{ErrorCode::kInvalidState, "no cluster is loaded", ""};
  ATRIUM_ASSIGN_OR_RETURN(program::ProgramState * program, Program(app, request));
  ATRIUM_ASSIGN_OR_RETURN(const program::Grant* grant, VisibleGrant(*program, request));
  const std::string id = request.args.Text("reservation");
  const auto index = FindBooking(app, id);
  const SchedGrant owner =
      index ? BookingOwner(app, app.scheduler_->bookings()[*index]) : SchedGrant{};
  if (!index || owner.program != program->definition().id || owner.grant != grant->id) {
    return Error{ErrorCode::kNotFound, "no reservation " + id + " of grant " + grant->id,
                 "reservation"};
  }
  const Actor& actor = request.actor;
  if (!IsStaff(actor) &&
      !(actor.role == Role::kResearcher && BelongsToGrant(*grant, actor.person) &&
        !grant->students.contains(actor.person))) {
    return internal::Forbidden("only the grant's PI, its members or program staff cancel");
  }
  const int64_t now_s = request.now_us / internal::kMicrosPerSecond;
  ATRIUM_ASSIGN_OR_RETURN(const Credits fee,
                          app.scheduler_->CancelBooking(
                              *index, now_s, program->definition().reservations.cancel_fee_bp));
  app.NoteBookingCharges();
  app.Schedule(request.now_us);  // the nodes are everyone's again
  const sched::CapacityBooking& booking = app.scheduler_->bookings()[*index];
  return json{{"reservation", id},
              {"state", sched::ToString(booking.state)},
              {"fee", fee.ToString()},
              {"charged", booking.charged.ToString()}};
}

Result<json> OpHandlers::MaintenanceBook(AppState& app, const OpRequest& request) {
  if (!app.cluster_) return Error{ErrorCode::kInvalidState, "no cluster is loaded", ""};
  ATRIUM_ASSIGN_OR_RETURN(const Window window, WindowOf(request));
  sched::BookingRequest booking{
      .accelerator = request.args.Text("accelerator"),
      .nodes = request.args.Int("node_count"),
      .one_group = request.args.Bool("one_group"),
      .force = request.args.Bool("force"),
      .start_s = window.start_s,
      .end_s = window.end_s,
      .booked_by = request.actor.person.empty() ? request.actor.token : request.actor.person,
      .note = request.args.Text("reason")};
  for (const std::string& name : request.args.Strings("nodes")) {
    const auto node = app.cluster_->FindNode(name);
    if (!node) return Error{ErrorCode::kNotFound, "no node " + name, "nodes"};
    booking.node_list.push_back(*node);
  }
  if (booking.node_list.empty() == (booking.nodes == 0)) {
    return Error{ErrorCode::kInvalidArgument, "give nodes or node_count (one of them)", "nodes"};
  }
  if (booking.force && booking.node_list.empty()) {
    return Error{ErrorCode::kInvalidArgument, "force takes named nodes", "force"};
  }
  const int64_t now_s = request.now_us / internal::kMicrosPerSecond;
  const std::string id = BookingId(static_cast<uint32_t>(app.scheduler_->bookings().size()));
  ATRIUM_ASSIGN_OR_RETURN(const uint32_t index, app.scheduler_->Book(id, booking, now_s));
  app.NoteBookingCharges();
  app.NoteYieldNotices();
  return Booked(app, index);
}

Result<json> OpHandlers::MaintenanceCancel(AppState& app, const OpRequest& request) {
  if (!app.cluster_) return Error{ErrorCode::kInvalidState, "no cluster is loaded", ""};
  const std::string id = request.args.Text("reservation");
  const auto index = FindBooking(app, id);
  if (!index || app.scheduler_->bookings()[*index].grant >= 0) {
    return Error{ErrorCode::kNotFound, "no maintenance " + id, "reservation"};
  }
  const int64_t now_s = request.now_us / internal::kMicrosPerSecond;
  ATRIUM_TRY(app.scheduler_->CancelBooking(*index, now_s, 0).status());
  app.NoteBookingCharges();
  app.Schedule(request.now_us);
  return json{{"reservation", id},
              {"state", sched::ToString(app.scheduler_->bookings()[*index].state)},
              {"fee", Credits::Zero().ToString()},
              {"charged", Credits::Zero().ToString()}};
}

std::vector<OpSpec> OpHandlers::ReservationTable() {
  using K = FieldKind;
  constexpr RoleSet kStaff = kStaffRoles;
  constexpr RoleSet kOps = RoleIn(Role::kAdmin) | RoleIn(Role::kOperator);
  constexpr RoleSet kResearcher = RoleIn(Role::kResearcher);
  const std::vector<FieldSpec> window = {
      IntField("start_s", 0, kTimeSMax, true, 0, "the window's start (Unix seconds)"),
      IntField("end_s", 0, kTimeSMax, true, 0, "the window's end (Unix seconds, exclusive)"),
      {.name = "one_group", .kind = K::kBool, .help = "all nodes inside one topology group"},
      IdField("accelerator", false, "accelerator type (default: the cluster's)")};
  const std::vector<ResultField> booked = {
      {"reservation", "id", "R<n>"},
      {"state", "string", "booked or active"},
      {"node_count", "integer", "whole nodes booked"},
      {"price", "amount", "held at booking, charged at the start (0 for maintenance)"},
      {"start_s", "integer", ""},
      {"end_s", "integer", ""}};
  const std::vector<ResultField> cancelled = {
      {"reservation", "id", ""},
      {"state", "string", "cancelled (before the start) or ended"},
      {"fee", "amount", "kept by this cancellation"},
      {"charged", "amount", "charged for the booking in all"}};
  std::vector<OpSpec> ops;
  std::vector<FieldSpec> book_fields = {
      ProgramField(), IdField("grant", true, "the grant that pays"),
      IntField("chips", 0, 1'000'000'000, false, 0, "chips, rounded up to whole nodes"),
      IntField("nodes", 0, 1'000'000, false, 0, "or a count of whole nodes")};
  book_fields.insert(book_fields.end(), window.begin(), window.end());
  ops.push_back(OpSpec{
      .name = "reservation_book",
      .summary = "Book whole nodes for a window, paid by a grant (its PI, a member or staff)",
      .roles = kStaff | kResearcher,
      .fields = std::move(book_fields),
      .result = booked,
      .route = {.method = "POST",
                .path = "/v1/programs/{program}/grants/{grant}/reservations",
                .success_status = 201},
      .handler = ReservationBook,
      .cli_group = "reservation",
      .cli_name = "book",
      .cli_positional = {"grant"}});
  ops.push_back(OpSpec{
      .name = "reservation_cancel",
      .summary = "Cancel a booking (before its start: the hold is released less the program's "
                 "fee; after it: the nodes return, the charge stays)",
      .roles = kStaff | kResearcher,
      .fields = {ProgramField(), IdField("grant", true), IdField("reservation", true, "R<n>")},
      .result = cancelled,
      .route = {.method = "POST",
                .path = "/v1/programs/{program}/grants/{grant}/reservations/{reservation}/cancel"},
      .handler = ReservationCancel,
      .cli_group = "reservation",
      .cli_name = "cancel",
      .cli_positional = {"grant", "reservation"}});
  std::vector<FieldSpec> maintenance_fields = {
      ListField("nodes", K::kIds, kListMax, false, "node names (or node_count)"),
      IntField("node_count", 0, 1'000'000, false, 0, "or a count of whole nodes"),
      {.name = "force",
       .kind = K::kBool,
       .help = "named nodes whose runs pass the start: they yield at the start"},
      TextField("reason", 500, false, "why (shown with the booking)")};
  maintenance_fields.insert(maintenance_fields.end(), window.begin(), window.end());
  ops.push_back(
      OpSpec{.name = "maintenance_book",
             .summary = "Book nodes for maintenance: empty for the window, no charge",
             .roles = kOps,
             .fields = std::move(maintenance_fields),
             .result = booked,
             .route = {.method = "POST", .path = "/v1/cluster/maintenance", .success_status = 201},
             .handler = MaintenanceBook,
             .cli_group = "maintenance",
             .cli_name = "book"});
  ops.push_back(
      OpSpec{.name = "maintenance_cancel",
             .summary = "Cancel a maintenance booking: the nodes return at once",
             .roles = kOps,
             .fields = {IdField("reservation", true, "R<n>")},
             .result = cancelled,
             .route = {.method = "POST", .path = "/v1/cluster/maintenance/{reservation}/cancel"},
             .handler = MaintenanceCancel,
             .cli_group = "maintenance",
             .cli_name = "cancel",
             .cli_positional = {"reservation"}});
  return ops;
}

}  // namespace atrium::core
