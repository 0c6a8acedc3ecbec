// ProgramState's snapshot codec: every member, field by field, in a fixed order, with
// maps in key order (so the bytes are deterministic). JSON values (log data, sealed
// content) are stored as their text, depth-checked before parsing. Every count is checked
// against the bytes left, every enum against its range: hostile bytes give kCorruption.
//
// Each struct's fields are listed ONCE, in its Fields() overload below, and that list
// drives both writing and reading. To add a field to a struct: append it to the struct's
// Fields() (and, for a new enum type, add its In::get line with its last value); to add a
// member to ProgramState: a line in EncodeState and the same in DecodeState. Then bump
// kProgramVersion and Core::kSnapshotVersion (docs/snapshots.md, "Adding a field").
#include <bit>
#include <concepts>
#include <set>
#include <string_view>

#include "base/bytes.h"
#include "base/nesting.h"
#include "program/program_state.h"

namespace atrium::program {
namespace {

constexpr uint32_t kProgramMagic = 0x47525053;  // "SPRG"
// 1: snap branch (own ledger inside). 2: the ledger of record is encoded by Core; the
// program keeps its id-space ordinal (and its ledger only when it owns one).
// 3: governance (overrides, appeals). 4: training (catalog, enrolments), the dataset book
// (datasets.h) and capacity reservation limits.
constexpr uint32_t kProgramVersion = 4;

// V is T or const T: one Fields() serves writing (const) and reading.
template <class V, class T>
concept Is = std::same_as<std::remove_const_t<V>, T>;

// ---- The fields of each struct, in encoding order ------------------------------------

template <class Io, Is<Criterion> V>
void Fields(Io& io, V& v) {
  io(v.name, v.weight, v.score_min, v.score_max);
}
template <class Io, Is<FairnessFloor> V>
void Fields(Io& io, V& v) {
  io(v.name, v.topics, v.institution_types, v.share_bp, v.tracks);
}
template <class Io, Is<TrancheRule> V>
void Fields(Io& io, V& v) {
  io(v.share_bp, v.condition);
}
template <class Io, Is<Track> V>
void Fields(Io& io, V& v) {
  io(v.id, v.name, v.kind, v.budget, v.award_cap, v.institution_cap);
  io(v.eligibility.pi_roles, v.eligibility.institution_types, v.eligibility.one_proposal_per_pi);
  io(v.partial_floor_bp, v.partial_step_bp, v.tranches);
}
template <class Io, Is<CallDefinition> V>
void Fields(Io& io, V& v) {
  io(v.id, v.track, v.opens_us, v.closes_us, v.review_deadline_us, v.decision_us,
     v.reviewers_per_proposal);
}
template <class Io, Is<ProgramDefinition> V>
void Fields(Io& io, V& v) {
  io(v.id, v.name, v.currency, v.total_budget, v.price_per_chip_hour);
  io(v.rubric, v.topics, v.fairness_floors, v.tracks, v.calls);
  io(v.obligations.progress_report_months, v.obligations.final_report, v.obligations.paper,
     v.obligations.repository, v.obligations.final_grace_months, v.obligations.freeze_when_overdue);
  io(v.award_policy);
  io(v.governance);
  io(v.reservations);
}
template <class Io, Is<ReservationRules> V>
void Fields(Io& io, V& v) {
  io(v.enabled, v.max_chips, v.max_hours, v.max_ahead_days, v.max_share_bp, v.cancel_fee_bp);
}
template <class Io, Is<OverrideRules> V>
void Fields(Io& io, V& v) {
  io(v.max_per_call, v.max_budget_bp, v.reasons, v.allow_strategic);
}
template <class Io, Is<AppealRules> V>
void Fields(Io& io, V& v) {
  io(v.window_days, v.grounds, v.reviewers, v.reserve);
}
template <class Io, Is<SponsorTie> V>
void Fields(Io& io, V& v) {
  io(v.institution, v.person, v.kind);
}
template <class Io, Is<GovernanceRules> V>
void Fields(Io& io, V& v) {
  io(v.overrides, v.appeals, v.sponsor_ties);
}
template <class Io, Is<SponsorOverride> V>
void Fields(Io& io, V& v) {
  io(v.id, v.call, v.proposal, v.kind, v.reason, v.text, v.sponsor, v.moved, v.at_us);
}
template <class Io, Is<Appeal> V>
void Fields(Io& io, V& v) {
  io(v.id, v.proposal, v.call, v.ground, v.text, v.filed_by, v.reviewers, v.state, v.reason,
     v.grant, v.filed_us, v.decided_us);
}
template <class Io, Is<LabTemplate> V>
void Fields(Io& io, V& v) {
  io(v.accelerator, v.chips, v.walltime_s, v.argv, v.image);
}
template <class Io, Is<TrainingItem> V>
void Fields(Io& io, V& v) {
  io(v.id, v.kind, v.title, v.level, v.prerequisites, v.materials, v.instructors, v.track);
  io(v.credits, v.lab, v.added_us);
}
template <class Io, Is<Enrolment> V>
void Fields(Io& io, V& v) {
  io(v.id, v.item, v.person, v.grant, v.state, v.account, v.credits, v.spent, v.returned);
  io(v.enrolled_us, v.ended_us, v.completed_by, v.certificate, v.certificate_seq);
}
template <class Io, Is<TrainingBook> V>
void Fields(Io& io, V& v) {
  io(v.items, v.enrolments, v.by_learner, v.by_certificate, v.returns_due, v.next_enrolment);
}
template <class Io, Is<Institution> V>
void Fields(Io& io, V& v) {
  io(v.id, v.name, v.type, v.country);
}
template <class Io, Is<Person> V>
void Fields(Io& io, V& v) {
  io(v.id, v.name, v.institution, v.role, v.expertise, v.collaborators, v.reviewer);
}
template <class Io, Is<ChipHours> V>
void Fields(Io& io, V& v) {
  io(v.accelerator, v.chip_hours);
}
template <class Io, Is<Proposal> V>
void Fields(Io& io, V& v) {
  auto& in = v.input;
  io(in.id, in.call, in.pi, in.co_investigators, in.title, in.abstract, in.topics, in.requested,
     in.chip_hours, in.duration_months, in.open_source_plan);
  io(v.institution, v.requested, v.status, v.submitted_us);
}
template <class Io, Is<Conflict> V>
void Fields(Io& io, V& v) {
  io(v.reviewer, v.proposal, v.reason, v.note);
}
template <class Io, Is<Assignment> V>
void Fields(Io& io, V& v) {
  io(v.reviewer, v.proposal, v.explanation);
}
template <class Io, Is<Review> V>
void Fields(Io& io, V& v) {
  io(v.reviewer, v.proposal, v.scores, v.comment, v.submitted_us, v.raw, v.normalized);
}
template <class Io, Is<ProposalOutcome> V>
void Fields(Io& io, V& v) {
  io(v.proposal, v.rank, v.merit, v.requested, v.awarded, v.rationale, v.explanation);
  io(v.base_awarded, v.overrides);
}
template <class Io, Is<FloorOutcome> V>
void Fields(Io& io, V& v) {
  io(v.name, v.share_bp_required, v.share_bp_enforced, v.share_bp_achieved, v.met);
}
template <class Io, Is<Decision> V>
void Fields(Io& io, V& v) {
  io(v.call, v.policy, v.optimal, v.objective, v.bound, v.gap, v.total_awarded, v.outcomes,
     v.floors, v.committed, v.drafted_us, v.committed_us);
}
template <class Io, Is<Tranche> V>
void Fields(Io& io, V& v) {
  io(v.amount, v.condition, v.released, v.hold_transfer);
}
template <class Io, Is<Grant> V>
void Fields(Io& io, V& v) {
  io(v.id, v.proposal, v.call, v.track, v.pi, v.institution, v.members, v.awarded, v.spent,
     v.returned, v.start_us, v.end_us, v.status, v.account, v.tranches, v.students);
}
template <class Io, Is<Obligation> V>
void Fields(Io& io, V& v) {
  io(v.id, v.grant, v.kind, v.sequence, v.due_us, v.state, v.reference, v.license, v.was_overdue);
}
template <class Io, Is<Dataset> V>
void Fields(Io& io, V& v) {
  io(v.id, v.name, v.description, v.size_bytes, v.license, v.location, v.policy,
     v.agreement_version, v.added_us);
}
template <class Io, Is<AccessRequest> V>
void Fields(Io& io, V& v) {
  io(v.id, v.dataset, v.grant, v.requested_by, v.reason, v.state, v.decided_by, v.decision_reason,
     v.requested_us, v.decided_us);
}
template <class Io, Is<DatasetAccess> V>
void Fields(Io& io, V& v) {
  io(v.request, v.active, v.granted_us, v.revoked_us, v.revoke_reason);
}
template <class Io, Is<GrantStorage> V>
void Fields(Io& io, V& v) {
  io(v.gib, v.start_us, v.accrued_to_us, v.periods_settled, v.accrued, v.carry, v.charged,
     v.active);
}
template <class Io, Is<StoragePolicy> V>
void Fields(Io& io, V& v) {
  io(v.price_per_gib_month, v.gib_max);
}
template <class Io, Is<DatasetUse> V>
void Fields(Io& io, V& v) {
  io(v.jobs, v.jobs_by_grant);
}
template <class Io, Is<DatasetBook> V>
void Fields(Io& io, V& v) {
  io(v.datasets, v.requests, v.access, v.agreements, v.storage, v.uses, v.storage_policy,
     v.next_request);
}
template <class Io, Is<LogEntry> V>
void Fields(Io& io, V& v) {
  io(v.seq, v.at_us, v.type, v.data, v.prev, v.hash);
}

// ---- Writing ------------------------------------------------------------------------

struct Out {
  ByteWriter w;

  void put(const std::string& v) { w.PutBytes(v); }
  void put(int64_t v) { w.PutZigzag(v); }
  void put(int v) { w.PutZigzag(v); }
  void put(uint64_t v) { w.PutVarint<uint64_t>(v); }
  void put(bool v) { w.Put<uint8_t>(v ? 1 : 0); }
  void put(double v) { w.Put<uint64_t>(std::bit_cast<uint64_t>(v)); }
  void put(Credits v) { w.PutZigzag(v.micro()); }
  void put(const nlohmann::json& v) { w.PutBytes(v.dump()); }
  void put(const LogData& v) { w.PutBytes(v.text()); }
  template <class E>
  requires std::is_enum_v<E>
  void put(E v) { w.Put<uint8_t>(static_cast<uint8_t>(v)); }
  template <class T>
  void put(const std::vector<T>& v) {
    w.Put<uint32_t>(static_cast<uint32_t>(v.size()));
    for (const T& item : v) put(item);
  }
  template <class K, class V>
  void put(const std::map<K, V>& m) {
    w.Put<uint32_t>(static_cast<uint32_t>(m.size()));
    for (const auto& [key, value] : m) {
      put(key);
      put(value);
    }
  }
  template <class T>
  void put(const std::set<T>& v) {
    w.Put<uint32_t>(static_cast<uint32_t>(v.size()));
    for (const T& item : v) put(item);
  }
  template <class A, class B>
  void put(const std::pair<A, B>& p) {
    put(p.first);
    put(p.second);
  }
  // A struct: its Fields().
  template <class T>
  requires std::is_class_v<T>
  void put(const T& v) { Fields(*this, v); }
  template <class... T>
  void operator()(const T&... fields) {
    (put(fields), ...);
  }
};

// ---- Reading ------------------------------------------------------------------------

// Each get reads one value into `v`; a failure marks the reader (checked at the end).
struct In {
  ByteReader r;

  void get(std::string& v) { v = std::string(r.GetBytes()); }
  void get(int64_t& v) { v = r.GetZigzag(); }
  void get(int& v) {
    const int64_t wide = r.GetZigzag();
    if (wide < INT32_MIN || wide > INT32_MAX) r.Fail();
    v = static_cast<int>(wide);
  }
  void get(uint64_t& v) { v = r.GetVarint<uint64_t>(); }
  void get(bool& v) {
    const auto byte = r.Get<uint8_t>();
    if (byte > 1) r.Fail();
    v = byte != 0;
  }
  void get(double& v) { v = std::bit_cast<double>(r.Get<uint64_t>()); }
  void get(Credits& v) { v = Credits::FromMicro(r.GetZigzag()); }
  void get(nlohmann::json& v) {
    const std::string_view text = r.GetBytes();
    if (!r.ok()) return;
    if (!JsonDepthWithin(text, kJsonDepthMax)) {
      r.Fail();
      return;
    }
    v = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded()) r.Fail();
  }
  // A log entry's data stays text: checked to be JSON (SAX, no tree built), not parsed.
  void get(LogData& v) {
    const std::string_view text = r.GetBytes();
    if (!r.ok()) return;
    if (!JsonDepthWithin(text, kJsonDepthMax) || !nlohmann::json::accept(text)) {
      r.Fail();
      return;
    }
    v = LogData::FromCanonical(std::string(text));
  }
  // An enum whose values run 0..last. A new enum type needs its line here.
  template <class E>
  void get_enum(E& v, E last) {
    const auto byte = r.Get<uint8_t>();
    if (byte > static_cast<uint8_t>(last)) r.Fail();
    v = static_cast<E>(byte);
  }
  void get(TrackKind& v) { get_enum(v, TrackKind::kEducation); }
  void get(ProposalStatus& v) { get_enum(v, ProposalStatus::kDeclined); }
  void get(ConflictReason& v) { get_enum(v, ConflictReason::kDeclared); }
  void get(Rationale& v) { get_enum(v, Rationale::kDisplacedByOverride); }
  void get(OverrideKind& v) { get_enum(v, OverrideKind::kAdd); }
  void get(AppealState& v) { get_enum(v, AppealState::kRejected); }
  void get(GrantStatus& v) { get_enum(v, GrantStatus::kClosed); }
  void get(ObligationKind& v) { get_enum(v, ObligationKind::kRepository); }
  void get(ObligationState& v) { get_enum(v, ObligationState::kOverdue); }
  void get(CallState& v) { get_enum(v, CallState::kDecided); }
  void get(TrainingKind& v) { get_enum(v, TrainingKind::kLab); }
  void get(TrainingLevel& v) { get_enum(v, TrainingLevel::kAdvanced); }
  void get(EnrolmentState& v) { get_enum(v, EnrolmentState::kWithdrawn); }
  void get(DatasetPolicy& v) { get_enum(v, DatasetPolicy::kRestricted); }
  void get(AccessRequestState& v) { get_enum(v, AccessRequestState::kDenied); }

  template <class T>
  void get(std::vector<T>& v) {
    v.clear();
    const uint32_t count = r.GetCount(1);
    v.reserve(count);
    for (uint32_t i = 0; i < count && r.ok(); ++i) get(v.emplace_back());
  }
  template <class K, class V>
  void get(std::map<K, V>& m) {
    m.clear();
    const uint32_t count = r.GetCount(1);
    for (uint32_t i = 0; i < count && r.ok(); ++i) {
      K key{};
      get(key);
      V value{};
      get(value);
      // Keys come in strictly increasing order, as Encode wrote them.
      if (!m.empty() && !(m.rbegin()->first < key)) r.Fail();
      m.emplace_hint(m.end(), std::move(key), std::move(value));
    }
  }
  template <class T>
  void get(std::set<T>& v) {
    v.clear();
    const uint32_t count = r.GetCount(1);
    for (uint32_t i = 0; i < count && r.ok(); ++i) {
      T item{};
      get(item);
      // Strictly increasing, as Encode wrote them.
      if (!v.empty() && !(*v.rbegin() < item)) r.Fail();
      v.emplace_hint(v.end(), std::move(item));
    }
  }
  template <class A, class B>
  void get(std::pair<A, B>& p) {
    get(p.first);
    get(p.second);
  }
  template <class T>
  requires std::is_class_v<T>
  void get(T& v) { Fields(*this, v); }
  template <class... T>
  void operator()(T&... fields) {
    (get(fields), ...);
  }
};

}  // namespace

// Seals are private to ProgramState: their fields are listed here and in DecodeState.
void ProgramState::EncodeState(std::string* out) const {
  Out o{ByteWriter(out)};
  o.w.Put<uint32_t>(kProgramMagic);
  o.w.Put<uint32_t>(kProgramVersion);
  o(definition_, institutions_, people_, call_states_, proposals_, declared_conflicts_);
  o(conflicts_, assignments_, reviews_, decisions_, grants_, obligations_, institution_awarded_);
  o(log_.entries_, seal_secret_);
  o.w.Put<uint32_t>(static_cast<uint32_t>(proposal_seals_.size()));
  for (const auto& [id, seal] : proposal_seals_) {
    o(id, seal.ref, seal.call, seal.version, seal.committed_in, seal.content);
  }
  o.w.Put<uint32_t>(static_cast<uint32_t>(review_seals_.size()));
  for (const auto& [key, seal] : review_seals_) {
    o(key, seal.ref, seal.call, seal.version, seal.committed_in, seal.content);
  }
  o(next_account_, next_transfer_, ordinal_);
  o(overrides_, appeals_);
  o(training_);
  o(datasets_);
  // New members go here (and at the same place in DecodeState).
  //
  // The ledger: a program in the ledger of record (the service) leaves it to Core; one
  // that owns its ledger (offline tools, tests) carries it, length-prefixed, last.
  o.w.Put<uint8_t>(owned_ledger_ != nullptr ? 1 : 0);
  if (owned_ledger_ != nullptr) {
    std::string ledger_bytes;
    owned_ledger_->Encode(&ledger_bytes);
    o.w.Put<uint64_t>(ledger_bytes.size());
    out->append(ledger_bytes);
  }
}

Result<ProgramState> ProgramState::DecodeState(std::string_view bytes, ledger::Ledger* ledger) {
  In in{ByteReader(bytes)};
  const auto magic = in.r.Get<uint32_t>();
  const auto version = in.r.Get<uint32_t>();
  if (!in.r.ok() || magic != kProgramMagic) {
    return MakeError(ErrorCode::kCorruption, "program snapshot: bad magic");
  }
  if (version != kProgramVersion) {
    return MakeError(ErrorCode::kCorruption,
                     "program snapshot: unsupported version " + std::to_string(version));
  }
  ProgramState state;
  in(state.definition_, state.institutions_, state.people_, state.call_states_, state.proposals_,
     state.declared_conflicts_);
  in(state.conflicts_, state.assignments_, state.reviews_, state.decisions_, state.grants_,
     state.obligations_, state.institution_awarded_);
  in(state.log_.entries_, state.seal_secret_);
  auto get_seals = [&](auto& seals) {
    const uint32_t count = in.r.GetCount(4);
    for (uint32_t i = 0; i < count && in.r.ok(); ++i) {
      typename std::remove_reference_t<decltype(seals)>::key_type key;
      Seal seal;
      in(key, seal.ref, seal.call, seal.version, seal.committed_in, seal.content);
      if (!seals.empty() && !(seals.rbegin()->first < key)) in.r.Fail();
      seals.emplace_hint(seals.end(), std::move(key), std::move(seal));
    }
  };
  get_seals(state.proposal_seals_);
  get_seals(state.review_seals_);
  in(state.next_account_, state.next_transfer_, state.ordinal_);
  in(state.overrides_, state.appeals_);
  in(state.training_);
  in(state.datasets_);
  const auto owns = in.r.Get<uint8_t>();
  if (!in.r.ok() || owns > 1 || state.ordinal_ == 0 || (state.ordinal_ & kNamespaceBit) != 0) {
    return MakeError(ErrorCode::kCorruption, "program snapshot: malformed");
  }
  if (owns == 1) {
    const auto ledger_size = in.r.Get<uint64_t>();
    if (!in.r.ok() || ledger_size != static_cast<uint64_t>(bytes.size()) - in.r.position()) {
      return MakeError(ErrorCode::kCorruption, "program snapshot: bad ledger length");
    }
    ATRIUM_ASSIGN_OR_RETURN(ledger::Ledger owned,
                            ledger::Ledger::Decode(bytes.substr(in.r.position())));
    state.owned_ledger_ = std::make_unique<ledger::Ledger>(std::move(owned));
    state.ledger_ = state.owned_ledger_.get();
  } else {
    if (!in.r.at_end())
      return MakeError(ErrorCode::kCorruption, "program snapshot: trailing bytes");
    if (ledger == nullptr) {
      return MakeError(ErrorCode::kCorruption,
                       "program snapshot: its accounts are in a ledger of record not given");
    }
    state.ledger_ = ledger;
  }
  state.RebuildIndexes();
  return state;
}

}  // namespace atrium::program
