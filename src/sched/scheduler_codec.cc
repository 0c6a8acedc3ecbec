// The scheduler's snapshot codec. What is written is the state that decides: grants and
// their fair-share use, every job record, node states, the order of the waiting list and
// of the shape classes and their groups (indexes that jobs refer to), reservations kept
// between passes, counters, and the order of the node indexes' free lists (which picks
// among equally good placements). Everything else (class and group maps, heads, the
// age and limit sets, running_by_end, preemptible sets, masks, busy chips, and the
// reservations' unit-time caches via RebuildCaches) is rebuilt.
//
// To add a field: Job fields in the "Jobs" blocks of Encode and Decode (same position in
// both), config fields after preempt_candidates_max; then bump kSchedVersion and
// Core::kSnapshotVersion (docs/snapshots.md, "Adding a field").
// Decoding checks every index and count before use: hostile bytes give kCorruption.
#include <bit>

#include "base/bytes.h"
#include "sched/scheduler.h"

namespace atrium::sched {
namespace {

constexpr uint32_t kSchedMagic = 0x44484353;  // "SCHD"
// 1: snap branch. 2: a grant's revenue account, the hold and charge codes, the
// preemption candidate bound; the reservation caches are not stored (RebuildCaches).
// 3: a job's preemption under way, a pool's firm promises in order.
// 4: capacity reservations (bookings, their node indexes' order, a job's booking), their
// config.
constexpr uint32_t kSchedVersion = 4;

void PutDouble(ByteWriter& writer, double value) {
  writer.Put<uint64_t>(std::bit_cast<uint64_t>(value));
}
double GetDouble(ByteReader& reader) { return std::bit_cast<double>(reader.Get<uint64_t>()); }

void PutShape(ByteWriter& writer, const cluster::JobShape& shape) {
  writer.PutVarint<uint32_t>(shape.pool);
  writer.PutZigzag(shape.chips);
  writer.PutZigzag(shape.sub_node_chips);
  writer.PutVarint<uint32_t>(shape.whole_nodes);
}
cluster::JobShape GetShape(ByteReader& reader) {
  cluster::JobShape shape;
  shape.pool = reader.GetVarint<uint32_t>();
  shape.chips = reader.GetZigzag();
  shape.sub_node_chips = static_cast<int>(reader.GetZigzag());
  shape.whole_nodes = reader.GetVarint<uint32_t>();
  return shape;
}
bool SameShape(const cluster::JobShape& a, const cluster::JobShape& b) {
  return a.pool == b.pool && a.chips == b.chips && a.sub_node_chips == b.sub_node_chips &&
         a.whole_nodes == b.whole_nodes;
}

Error Corrupt(std::string_view what) {
  return MakeError(ErrorCode::kCorruption, "scheduler snapshot: " + std::string(what));
}

}  // namespace

// ---- NodeIndex order ------------------------------------------------------------------

void NodeIndex::EncodeOrder(ByteWriter& writer) const {
  writer.Put<uint32_t>(static_cast<uint32_t>(heads_.size()));
  for (const int32_t head : heads_) {
    uint32_t length = 0;
    for (int32_t local = head; local != kNone; local = next_[static_cast<size_t>(local)]) ++length;
    writer.PutVarint<uint32_t>(length);
    for (int32_t local = head; local != kNone; local = next_[static_cast<size_t>(local)]) {
      writer.PutVarint<uint32_t>(static_cast<uint32_t>(local));
    }
  }
  writer.Put<uint32_t>(static_cast<uint32_t>(group_heads_.size()));
  for (const int32_t head : group_heads_) {
    uint32_t length = 0;
    for (int32_t local = head; local != kNone; local = group_next_[static_cast<size_t>(local)]) {
      ++length;
    }
    writer.PutVarint<uint32_t>(length);
    for (int32_t local = head; local != kNone; local = group_next_[static_cast<size_t>(local)]) {
      writer.PutVarint<uint32_t>(static_cast<uint32_t>(local));
    }
  }
}

bool NodeIndex::DecodeOrder(ByteReader& reader) {
  // Node buckets: every member exactly once, in the bucket it is filed in.
  if (reader.Get<uint32_t>() != heads_.size() || !reader.ok()) return false;
  std::vector<uint8_t> seen(member_.size(), 0);
  uint32_t linked = 0;
  for (size_t bucket = 0; bucket < heads_.size(); ++bucket) {
    const auto length = reader.GetVarint<uint32_t>();
    if (!reader.ok() || length > member_.size()) return false;
    int32_t previous = kNone;
    for (uint32_t i = 0; i < length; ++i) {
      const auto local = reader.GetVarint<uint32_t>();
      if (!reader.ok() || local >= member_.size() || member_[local] == 0 || seen[local] != 0 ||
          bucket_of_[local] != bucket) {
        return false;
      }
      seen[local] = 1;
      ++linked;
      prev_[local] = previous;
      next_[local] = kNone;
      if (previous == kNone) {
        heads_[bucket] = static_cast<int32_t>(local);
      } else {
        next_[static_cast<size_t>(previous)] = static_cast<int32_t>(local);
      }
      previous = static_cast<int32_t>(local);
    }
    if (length == 0) heads_[bucket] = kNone;
  }
  if (linked != member_count_) return false;
  // Group lists: every group exactly once, under its count of wholly free nodes.
  if (reader.Get<uint32_t>() != group_heads_.size() || !reader.ok()) return false;
  std::vector<uint8_t> group_seen(group_free_.size(), 0);
  size_t groups_linked = 0;
  for (size_t count = 0; count < group_heads_.size(); ++count) {
    const auto length = reader.GetVarint<uint32_t>();
    if (!reader.ok() || length > group_free_.size()) return false;
    int32_t previous = kNone;
    for (uint32_t i = 0; i < length; ++i) {
      const auto local = reader.GetVarint<uint32_t>();
      if (!reader.ok() || local >= group_free_.size() || group_seen[local] != 0 ||
          group_free_[local] != count) {
        return false;
      }
      group_seen[local] = 1;
      ++groups_linked;
      group_prev_[local] = previous;
      group_next_[local] = kNone;
      if (previous == kNone) {
        group_heads_[count] = static_cast<int32_t>(local);
      } else {
        group_next_[static_cast<size_t>(previous)] = static_cast<int32_t>(local);
      }
      previous = static_cast<int32_t>(local);
    }
    if (length == 0) group_heads_[count] = kNone;
  }
  return groups_linked == group_free_.size();
}

// ---- Scheduler ----------------------------------------------------------------------

void Scheduler::Encode(std::string* out) const {
  ByteWriter writer(out);
  writer.Put<uint32_t>(kSchedMagic);
  writer.Put<uint32_t>(kSchedVersion);
  // What it was built with.
  writer.PutBytes(policy_.name);
  writer.Put<uint8_t>(policy_.backfill ? 1 : 0);
  writer.PutZigzag(policy_.reservations_max);
  writer.Put<uint8_t>(policy_.preemption ? 1 : 0);
  writer.PutZigzag(config_.preempt_wait_s);
  writer.PutZigzag(config_.preempt_grace_s);
  writer.PutZigzag(config_.preempt_attempts_per_pass);
  PutDouble(writer, config_.fair_share_half_life_s);
  writer.PutVarint<Id128>(config_.sponsor_account);
  writer.PutVarint<Id128>(config_.revenue_account);
  writer.PutVarint<Id128>(config_.grant_account_base);
  writer.PutVarint<Id128>(config_.transfer_id_base);
  writer.PutVarint<uint32_t>(config_.hold_code);
  writer.PutVarint<uint32_t>(config_.charge_code);
  writer.PutVarint<uint64_t>(config_.jobs_max);
  writer.PutZigzag(config_.priority_recompute_s);
  writer.PutVarint<uint64_t>(config_.backfill_test_max);
  writer.PutVarint<uint64_t>(config_.queue_depth_max);
  writer.PutVarint<uint64_t>(config_.preempt_scan_max);
  writer.PutVarint<uint64_t>(config_.preempt_candidates_max);
  writer.PutVarint<uint32_t>(config_.booking_code);
  writer.PutVarint<uint64_t>(config_.bookings_live_max);
  writer.PutVarint<uint64_t>(config_.booking_scan_max);
  // New SchedulerConfig fields go here (and at the same place in Decode).
  writer.PutVarint<uint32_t>(static_cast<uint32_t>(cluster_->nodes().size()));
  writer.PutVarint<uint32_t>(static_cast<uint32_t>(cluster_->pools().size()));

  // Counters.
  writer.PutVarint<uint64_t>(pass_count_);
  writer.PutZigzag(priority_time_s_);
  writer.Put<uint8_t>(priorities_computed_ ? 1 : 0);
  writer.Put<uint8_t>(system_accounts_ ? 1 : 0);
  writer.PutVarint<Id128>(next_transfer_id_);
  for (const int64_t stat :
       {stats_.passes, stats_.pools_skipped, stats_.jobs_examined, stats_.backfill_refused,
        stats_.bound_hits, stats_.reservations, stats_.priority_recomputes}) {
    writer.PutZigzag(stat);
  }

  // Grants and their fair-share state.
  writer.Put<uint32_t>(static_cast<uint32_t>(grants_.size()));
  for (size_t grant = 0; grant < grants_.size(); ++grant) {
    writer.PutBytes(grants_[grant].name);
    writer.PutVarint<Id128>(grants_[grant].account);
    writer.PutVarint<Id128>(grants_[grant].revenue_account);
    writer.Put<uint8_t>(static_cast<uint8_t>(grants_[grant].default_class));
    const FairShare::Grant& share = fair_share_.grants_[grant];
    PutDouble(writer, share.entitlement);
    PutDouble(writer, share.usage);
    writer.PutZigzag(share.last_s);
    writer.PutZigzag(share.running_chips);
    PutDouble(writer, share.factor);
  }
  PutDouble(writer, fair_share_.entitlement_total_);

  // Node states.
  for (const cluster::NodeState state : node_state_)
    writer.Put<uint8_t>(static_cast<uint8_t>(state));

  // Jobs.
  writer.Put<uint32_t>(static_cast<uint32_t>(jobs_.size()));
  for (JobId id = 0; id < jobs_.size(); ++id) {
    const Job& job = jobs_[id];
    writer.PutBytes(job.id);
    writer.PutVarint<uint32_t>(job.grant);
    writer.Put<uint8_t>(static_cast<uint8_t>(job.job_class));
    PutShape(writer, job.shape);
    writer.PutZigzag(job.submit_s);
    writer.PutZigzag(job.duration_s);
    writer.PutZigzag(job.walltime_s);
    writer.Put<uint8_t>(static_cast<uint8_t>(job.state));
    writer.PutBytes(ToString(job.reason));
    writer.PutBytes(rejection_text(id));
    writer.PutZigzag(job.first_start_s);
    writer.PutZigzag(job.end_s);
    writer.PutZigzag(job.ran_s);
    writer.PutVarint<uint32_t>(job.runs);
    writer.PutZigzag(job.charged.micro());
    writer.PutZigzag(job.run_start_s);
    writer.PutZigzag(job.run_limit_s);
    writer.PutZigzag(job.preempt_at_s);
    writer.PutVarint<Id128>(job.hold_id);
    writer.Put<uint32_t>(static_cast<uint32_t>(job.placement.size()));
    for (const Alloc& alloc : job.placement) {
      writer.PutVarint<uint32_t>(alloc.node);
      writer.PutVarint<uint64_t>(alloc.mask);
    }
    writer.PutVarint<uint32_t>(job.shape_class + 1);  // UINT32_MAX -> 0
    writer.PutVarint<uint32_t>(job.group + 1);
    writer.PutZigzag(job.reservation);
    writer.Put<uint8_t>(static_cast<uint8_t>(job.ahead));
    writer.PutZigzag(job.preempt_retry_s);
    writer.Put<uint8_t>(job.preempt_under_way ? 1 : 0);
    writer.PutZigzag(job.booking);
    writer.Put<uint8_t>(job.booking_owner ? 1 : 0);
  }

  // The waiting list (its order decides swap-removal positions).
  writer.Put<uint32_t>(static_cast<uint32_t>(waiting_.size()));
  for (const JobId id : waiting_) writer.PutVarint<uint32_t>(id);

  // Shape classes and their groups, in creation order.
  writer.Put<uint32_t>(static_cast<uint32_t>(classes_.size()));
  for (const ShapeClass& shape_class : classes_) {
    PutShape(writer, shape_class.shape);
    writer.Put<uint32_t>(static_cast<uint32_t>(shape_class.groups.size()));
    for (const Group& group : shape_class.groups) {
      writer.PutVarint<uint32_t>(group.grant);
      writer.Put<uint8_t>(static_cast<uint8_t>(group.job_class));
    }
  }

  // Capacity reservations, and the order of the live ones' node indexes.
  writer.Put<uint32_t>(static_cast<uint32_t>(bookings_.size()));
  for (const CapacityBooking& booking : bookings_) {
    writer.PutBytes(booking.id);
    writer.PutBytes(booking.booked_by);
    writer.PutBytes(booking.note);
    writer.PutZigzag(booking.grant);
    writer.PutVarint<uint32_t>(booking.pool);
    writer.Put<uint32_t>(static_cast<uint32_t>(booking.nodes.size()));
    for (const uint32_t node : booking.nodes) writer.PutVarint<uint32_t>(node);
    writer.PutZigzag(booking.start_s);
    writer.PutZigzag(booking.end_s);
    writer.PutZigzag(booking.booked_at_s);
    writer.PutZigzag(booking.closed_at_s);
    writer.Put<uint8_t>(static_cast<uint8_t>(booking.state));
    writer.PutZigzag(booking.price.micro());
    writer.PutZigzag(booking.charged.micro());
    writer.PutVarint<Id128>(booking.hold_id);
    writer.PutZigzag(booking.used_chip_s);
    writer.PutZigzag(booking.lent_chip_s);
  }
  for (const auto& index : booking_index_) {
    if (index != nullptr) index->EncodeOrder(writer);
  }

  // Per pool: what the next pass reads, and the free lists' order.
  for (const PoolState& pool : pools_) {
    writer.Put<uint8_t>(static_cast<uint8_t>((pool.changed ? 1 : 0) | (pool.credit_waits ? 2 : 0)));
    writer.PutZigzag(pool.preempt_attempts);
    writer.PutZigzag(pool.idle_fit_chips);
    writer.Put<uint32_t>(static_cast<uint32_t>(pool.reservations.size()));
    for (const Reservation& reservation : pool.reservations) {
      writer.PutVarint<uint32_t>(reservation.job);
      writer.PutZigzag(reservation.start_s);
      PutShape(writer, reservation.shape);
      writer.PutZigzag(reservation.slack);
      writer.Put<uint8_t>(reservation.active ? 1 : 0);
    }
    // Firm reservations (conservative): the order the promises were made in.
    writer.Put<uint32_t>(static_cast<uint32_t>(pool.promised.size()));
    for (const JobId id : pool.promised) writer.PutVarint<uint32_t>(id);
    pool.main->EncodeOrder(writer);
  }

  // Jobs on each node, in order (releases walk them).
  for (const std::vector<JobId>& on_node : node_jobs_) {
    writer.PutVarint<uint32_t>(static_cast<uint32_t>(on_node.size()));
    for (const JobId id : on_node) writer.PutVarint<uint32_t>(id);
  }

  writer.Put<uint32_t>(static_cast<uint32_t>(reserved_now_.size()));
  for (const JobId id : reserved_now_) writer.PutVarint<uint32_t>(id);
  writer.Put<uint32_t>(static_cast<uint32_t>(reservation_log_.size()));
  for (const ReservationRecord& record : reservation_log_) {
    writer.PutVarint<uint32_t>(record.job);
    writer.PutZigzag(record.made_at_s);
    writer.PutZigzag(record.start_s);
  }
}

Result<std::unique_ptr<Scheduler>> Scheduler::Decode(std::string_view bytes,
                                                     const cluster::Cluster& cluster,
                                                     ledger::Ledger& ledger) {
  ByteReader reader(bytes);
  if (reader.Get<uint32_t>() != kSchedMagic || !reader.ok()) return Corrupt("bad magic");
  if (const auto version = reader.Get<uint32_t>(); version != kSchedVersion) {
    return MakeError(ErrorCode::kCorruption,
                     "scheduler snapshot: unsupported version " + std::to_string(version));
  }
  auto policy = MakePolicy(reader.GetBytes());
  if (!reader.ok() || !policy.ok()) return Corrupt("bad policy");
  policy->backfill = reader.Get<uint8_t>() != 0;
  const int64_t reservations_max = reader.GetZigzag();
  if (reservations_max < 0 || reservations_max > kReservationsMax) return Corrupt("bad policy");
  policy->reservations_max = static_cast<int>(reservations_max);
  policy->preemption = reader.Get<uint8_t>() != 0;
  SchedulerConfig config;
  config.preempt_wait_s = reader.GetZigzag();
  config.preempt_grace_s = reader.GetZigzag();
  config.preempt_attempts_per_pass = static_cast<int>(reader.GetZigzag());
  config.fair_share_half_life_s = GetDouble(reader);
  config.sponsor_account = reader.GetVarint<Id128>();
  config.revenue_account = reader.GetVarint<Id128>();
  config.grant_account_base = reader.GetVarint<Id128>();
  config.transfer_id_base = reader.GetVarint<Id128>();
  const auto hold_code = reader.GetVarint<uint32_t>();
  const auto charge_code = reader.GetVarint<uint32_t>();
  if (hold_code > UINT16_MAX || charge_code > UINT16_MAX) return Corrupt("bad config");
  config.hold_code = static_cast<uint16_t>(hold_code);
  config.charge_code = static_cast<uint16_t>(charge_code);
  config.jobs_max = reader.GetVarint<uint64_t>();
  config.priority_recompute_s = reader.GetZigzag();
  config.backfill_test_max = reader.GetVarint<uint64_t>();
  config.queue_depth_max = reader.GetVarint<uint64_t>();
  config.preempt_scan_max = reader.GetVarint<uint64_t>();
  config.preempt_candidates_max = reader.GetVarint<uint64_t>();
  const auto booking_code = reader.GetVarint<uint32_t>();
  if (booking_code > UINT16_MAX) return Corrupt("bad config");
  config.booking_code = static_cast<uint16_t>(booking_code);
  config.bookings_live_max = reader.GetVarint<uint64_t>();
  config.booking_scan_max = reader.GetVarint<uint64_t>();
  if (!reader.ok() || !(config.fair_share_half_life_s > 0)) return Corrupt("bad config");
  if (reader.GetVarint<uint32_t>() != cluster.nodes().size() ||
      reader.GetVarint<uint32_t>() != cluster.pools().size() || !reader.ok()) {
    return Corrupt("taken on another cluster");
  }
  auto sched = std::make_unique<Scheduler>(cluster, ledger, std::move(*policy), config);
  Scheduler& s = *sched;

  s.pass_count_ = reader.GetVarint<uint64_t>();
  s.priority_time_s_ = reader.GetZigzag();
  s.priorities_computed_ = reader.Get<uint8_t>() != 0;
  s.system_accounts_ = reader.Get<uint8_t>() != 0;
  s.next_transfer_id_ = reader.GetVarint<Id128>();
  for (int64_t* stat : {&s.stats_.passes, &s.stats_.pools_skipped, &s.stats_.jobs_examined,
                        &s.stats_.backfill_refused, &s.stats_.bound_hits, &s.stats_.reservations,
                        &s.stats_.priority_recomputes}) {
    *stat = reader.GetZigzag();
  }

  // Grants.
  const uint32_t grant_count = reader.GetCount(4 + 1 + 1 + 8 * 3 + 2);
  for (uint32_t grant = 0; grant < grant_count && reader.ok(); ++grant) {
    std::string name(reader.GetBytes());
    const auto account = reader.GetVarint<Id128>();
    const auto revenue_account = reader.GetVarint<Id128>();
    const auto default_class = reader.Get<uint8_t>();
    FairShare::Grant share;
    share.entitlement = GetDouble(reader);
    share.usage = GetDouble(reader);
    share.last_s = reader.GetZigzag();
    share.running_chips = reader.GetZigzag();
    share.factor = GetDouble(reader);
    if (!reader.ok() || default_class >= cluster::kJobClassCount ||
        !s.grant_index_.emplace(name, grant).second) {
      return Corrupt("bad grant");
    }
    s.grants_.push_back(GrantInfo{std::move(name), account, revenue_account,
                                  static_cast<cluster::JobClass>(default_class)});
    s.available_.push_back(Credits::Zero());
    s.available_pass_.push_back(0);
    s.fair_share_.grants_.push_back(share);
  }
  s.fair_share_.entitlement_total_ = GetDouble(reader);
  if (!reader.ok()) return Corrupt("bad grants");

  // Node states (the constructor filed the cluster's; set the snapshot's).
  for (uint32_t node = 0; node < s.node_state_.size(); ++node) {
    const auto state = reader.Get<uint8_t>();
    if (!reader.ok() || state > static_cast<uint8_t>(cluster::NodeState::kDraining)) {
      return Corrupt("bad node state");
    }
    ATRIUM_TRY(s.SetNodeState(node, static_cast<cluster::NodeState>(state)));
  }

  // Jobs.
  const uint32_t job_count = reader.GetCount(40);
  if (job_count > config.jobs_max) return Corrupt("too many jobs");
  s.jobs_.resize(job_count);
  std::vector<uint32_t> allocs_on_node(cluster.nodes().size(), 0);
  for (JobId id = 0; id < job_count; ++id) {
    Job& job = s.jobs_[id];
    job.id = std::string(reader.GetBytes());
    job.grant = reader.GetVarint<uint32_t>();
    const auto job_class = reader.Get<uint8_t>();
    job.shape = GetShape(reader);
    job.submit_s = reader.GetZigzag();
    job.duration_s = reader.GetZigzag();
    job.walltime_s = reader.GetZigzag();
    const auto state = reader.Get<uint8_t>();
    const bool reason_ok = ErrorCodeFromString(reader.GetBytes(), &job.reason);
    if (const std::string_view text = reader.GetBytes(); !text.empty()) {
      s.rejection_texts_[id] = std::string(text);
    }
    job.first_start_s = reader.GetZigzag();
    job.end_s = reader.GetZigzag();
    job.ran_s = reader.GetZigzag();
    job.runs = reader.GetVarint<uint32_t>();
    job.charged = Credits::FromMicro(reader.GetZigzag());
    job.run_start_s = reader.GetZigzag();
    job.run_limit_s = reader.GetZigzag();
    job.preempt_at_s = reader.GetZigzag();
    job.hold_id = reader.GetVarint<Id128>();
    job.placement.resize(reader.GetCount(2));
    for (Alloc& alloc : job.placement) {
      alloc.node = reader.GetVarint<uint32_t>();
      alloc.mask = reader.GetVarint<uint64_t>();
    }
    job.shape_class = reader.GetVarint<uint32_t>() - 1;
    job.group = reader.GetVarint<uint32_t>() - 1;
    const int64_t reservation = reader.GetZigzag();
    const auto ahead = reader.Get<uint8_t>();
    job.preempt_retry_s = reader.GetZigzag();
    job.preempt_under_way = reader.Get<uint8_t>() != 0;
    const int64_t booking = reader.GetZigzag();
    job.booking_owner = reader.Get<uint8_t>() != 0;
    if (booking < -1 || booking > INT32_MAX) return Corrupt("bad job " + std::to_string(id));
    job.booking = static_cast<int32_t>(booking);
    job.waiting_pos = UINT32_MAX;
    if (!reader.ok() || !reason_ok || job_class >= cluster::kJobClassCount ||
        state > static_cast<uint8_t>(JobState::kCancelled) ||
        ahead > static_cast<uint8_t>(StartedAhead::kCredits) || reservation < -1 ||
        reservation > kReservationsMax) {
      return Corrupt("bad job " + std::to_string(id));
    }
    job.job_class = static_cast<cluster::JobClass>(job_class);
    job.state = static_cast<JobState>(state);
    job.ahead = static_cast<StartedAhead>(ahead);
    job.reservation = static_cast<int32_t>(reservation);
    if (job.state == JobState::kRejected) continue;
    // An admitted job: its shape is one this cluster makes, its grant is known.
    if (job.grant >= s.grants_.size() || job.shape.pool >= cluster.pools().size()) {
      return Corrupt("bad job " + std::to_string(id));
    }
    const auto shape = cluster.Shape(
        cluster.accelerators()[cluster.pools()[job.shape.pool].accelerator].name, job.shape.chips);
    if (!shape.ok() || !SameShape(*shape, job.shape) || job.walltime_s < 1 || job.ran_s < 0 ||
        job.ran_s > job.walltime_s) {
      return Corrupt("bad job " + std::to_string(id));
    }
    if (job.state != JobState::kPending &&
        (job.shape_class != UINT32_MAX || job.reservation >= 0)) {
      return Corrupt("bad job " + std::to_string(id));
    }
    // A job not running holds no chips (a requeued job keeps its last placement).
    if (job.state != JobState::kRunning) continue;
    // A running job: its chips are taken from its nodes.
    if (job.run_limit_s < 1 || job.placement.empty()) return Corrupt("bad running job");
    int64_t chips = 0;
    for (size_t i = 0; i < job.placement.size(); ++i) {
      const Alloc& alloc = job.placement[i];
      if (alloc.node >= cluster.nodes().size() ||
          cluster.nodes()[alloc.node].pool != job.shape.pool || alloc.mask == 0 ||
          (s.masks_[alloc.node] & alloc.mask) != alloc.mask) {
        return Corrupt("bad placement of job " + std::to_string(id));
      }
      for (size_t j = 0; j < i; ++j) {
        if (job.placement[j].node == alloc.node) return Corrupt("bad placement");
      }
      s.masks_[alloc.node] &= ~alloc.mask;
      if (s.holder_[alloc.node] != nullptr) s.holder_[alloc.node]->Update(alloc.node);
      ++allocs_on_node[alloc.node];
      chips += std::popcount(alloc.mask);
    }
    if (chips != job.shape.chips) return Corrupt("bad placement of job " + std::to_string(id));
    s.busy_chips_ += job.shape.chips;
    PoolState& pool = s.pools_[job.shape.pool];
    pool.running_by_end.emplace(job.expected_end_s(), id);
    if (s.policy_.preemption && job.job_class != cluster::JobClass::kResearch &&
        job.preempt_at_s < 0) {
      pool.preemptible.insert(PreemptKeyOf(job, id));
    }
  }

  // Waiting list.
  const uint32_t waiting_count = reader.GetCount(1);
  s.waiting_.reserve(waiting_count);
  for (uint32_t pos = 0; pos < waiting_count; ++pos) {
    const auto id = reader.GetVarint<uint32_t>();
    if (!reader.ok() || id >= job_count || s.jobs_[id].state != JobState::kPending ||
        s.jobs_[id].waiting_pos != UINT32_MAX) {
      return Corrupt("bad waiting list");
    }
    s.jobs_[id].waiting_pos = pos;
    s.waiting_.push_back(id);
  }
  for (const Job& job : s.jobs_) {
    if (job.state == JobState::kPending && job.waiting_pos == UINT32_MAX) {
      return Corrupt("a pending job is not waiting");
    }
  }

  // Shape classes and groups.
  const uint32_t class_count = reader.GetCount(8);
  for (uint32_t index = 0; index < class_count; ++index) {
    ShapeClass& shape_class = s.classes_.emplace_back();
    shape_class.shape = GetShape(reader);
    if (!reader.ok() || shape_class.shape.pool >= s.pools_.size()) return Corrupt("bad class");
    PoolState& pool = s.pools_[shape_class.shape.pool];
    const uint64_t class_key = (static_cast<uint64_t>(shape_class.shape.whole_nodes) << 32) |
                               static_cast<uint32_t>(shape_class.shape.sub_node_chips);
    if (!pool.class_of.emplace(class_key, index).second) return Corrupt("bad class");
    pool.classes.push_back(index);
    const uint32_t group_count = reader.GetCount(2);
    for (uint32_t g = 0; g < group_count; ++g) {
      Group& group = shape_class.groups.emplace_back();
      group.grant = reader.GetVarint<uint32_t>();
      const auto job_class = reader.Get<uint8_t>();
      if (!reader.ok() || job_class >= cluster::kJobClassCount) return Corrupt("bad group");
      group.job_class = static_cast<cluster::JobClass>(job_class);
      const uint64_t group_key =
          s.fifo_order_ ? 0 : (static_cast<uint64_t>(group.grant) << 8) | job_class;
      if (!shape_class.group_of.emplace(group_key, g).second) return Corrupt("bad group");
    }
  }
  // The waiting jobs into their queues.
  for (const JobId id : s.waiting_) {
    Job& job = s.jobs_[id];
    if (job.shape_class >= s.classes_.size()) return Corrupt("bad queue of a waiting job");
    ShapeClass& shape_class = s.classes_[job.shape_class];
    if (!SameShape(shape_class.shape, job.shape) || job.group >= shape_class.groups.size()) {
      return Corrupt("bad queue of a waiting job");
    }
    Group& group = shape_class.groups[job.group];
    if (!s.fifo_order_ && (group.grant != job.grant || group.job_class != job.job_class)) {
      return Corrupt("bad group of a waiting job");
    }
    const AgeKey age{job.submit_s, id};
    group.jobs.insert(age);
    shape_class.by_age.insert(age);
    shape_class.by_limit.insert({s.RunLimitOf(job), age});
    if (s.policy_.preemption && job.job_class == cluster::JobClass::kResearch) {
      s.research_by_age_.insert(age);
    }
  }
  for (Job& job : s.jobs_) {
    if (job.state != JobState::kPending && job.shape_class != UINT32_MAX) {
      return Corrupt("a job not waiting is queued");
    }
  }
  for (ShapeClass& shape_class : s.classes_) {
    for (uint32_t group = 0; group < shape_class.groups.size(); ++group) {
      s.UpdateHead(shape_class, group);
    }
  }

  // Capacity reservations: the live ones take their nodes from the main index.
  const uint32_t booking_count = reader.GetCount(16);
  for (uint32_t index = 0; index < booking_count && reader.ok(); ++index) {
    CapacityBooking& booking = s.bookings_.emplace_back();
    booking.id = std::string(reader.GetBytes());
    booking.booked_by = std::string(reader.GetBytes());
    booking.note = std::string(reader.GetBytes());
    const int64_t grant = reader.GetZigzag();
    booking.pool = reader.GetVarint<uint32_t>();
    booking.nodes.resize(reader.GetCount(1));
    for (uint32_t& node : booking.nodes) node = reader.GetVarint<uint32_t>();
    booking.start_s = reader.GetZigzag();
    booking.end_s = reader.GetZigzag();
    booking.booked_at_s = reader.GetZigzag();
    booking.closed_at_s = reader.GetZigzag();
    const auto state = reader.Get<uint8_t>();
    booking.price = Credits::FromMicro(reader.GetZigzag());
    booking.charged = Credits::FromMicro(reader.GetZigzag());
    booking.hold_id = reader.GetVarint<Id128>();
    booking.used_chip_s = reader.GetZigzag();
    booking.lent_chip_s = reader.GetZigzag();
    if (!reader.ok() || grant < -1 || grant >= static_cast<int64_t>(s.grants_.size()) ||
        booking.pool >= cluster.pools().size() ||
        state > static_cast<uint8_t>(BookingState::kCancelled) || booking.nodes.empty() ||
        booking.end_s <= booking.start_s) {
      return Corrupt("bad booking " + std::to_string(index));
    }
    booking.grant = static_cast<int32_t>(grant);
    booking.state = static_cast<BookingState>(state);
    for (size_t i = 0; i < booking.nodes.size(); ++i) {
      const uint32_t node = booking.nodes[i];
      if (node >= cluster.nodes().size() || cluster.nodes()[node].pool != booking.pool ||
          (i > 0 && node <= booking.nodes[i - 1])) {
        return Corrupt("bad nodes of booking " + std::to_string(index));
      }
    }
    s.booking_index_.push_back(
        booking.live() ? std::make_unique<NodeIndex>(cluster, booking.pool, &s.masks_) : nullptr);
  }
  if (!reader.ok()) return Corrupt("bad bookings");
  for (uint32_t index = 0; index < booking_count; ++index) {
    const CapacityBooking& booking = s.bookings_[index];
    if (!booking.live()) continue;
    for (const uint32_t node : booking.nodes) {
      auto& live = s.node_bookings_[node];
      for (const uint32_t other : live) {
        const CapacityBooking& b = s.bookings_[other];
        if (b.start_s < booking.end_s && booking.start_s < b.end_s) {
          return Corrupt("overlapping bookings on a node");
        }
      }
      live.insert(std::upper_bound(live.begin(), live.end(), index,
                                   [&](uint32_t left, uint32_t right) {
                                     return s.bookings_[left].start_s < s.bookings_[right].start_s;
                                   }),
                  index);
    }
    s.booking_events_.emplace(
        booking.state == BookingState::kBooked ? booking.start_s : booking.end_s, index);
  }
  for (uint32_t node = 0; node < s.node_bookings_.size(); ++node) {
    if (!s.node_bookings_[node].empty()) s.RehomeNode(node);
  }
  for (const auto& index : s.booking_index_) {
    if (index != nullptr && !index->DecodeOrder(reader)) return Corrupt("bad booking index order");
  }
  for (JobId id = 0; id < job_count; ++id) {
    const Job& job = s.jobs_[id];
    if (job.booking >= 0 &&
        (job.state != JobState::kRunning ||
         static_cast<size_t>(job.booking) >= s.bookings_.size() ||
         s.bookings_[static_cast<size_t>(job.booking)].pool != job.shape.pool)) {
      return Corrupt("bad booking of job " + std::to_string(id));
    }
  }

  // Pools.
  for (PoolState& pool : s.pools_) {
    const auto flags = reader.Get<uint8_t>();
    pool.changed = (flags & 1) != 0;
    pool.credit_waits = (flags & 2) != 0;
    pool.preempt_attempts = static_cast<int>(reader.GetZigzag());
    pool.idle_fit_chips = reader.GetZigzag();
    const uint32_t reservation_count = reader.GetCount(6);
    if (reservation_count > kReservationsMax) return Corrupt("bad reservations");
    for (uint32_t slot = 0; slot < reservation_count; ++slot) {
      Reservation& reservation = pool.reservations.emplace_back();
      reservation.job = reader.GetVarint<uint32_t>();
      reservation.start_s = reader.GetZigzag();
      reservation.shape = GetShape(reader);
      reservation.slack = reader.GetZigzag();
      reservation.active = reader.Get<uint8_t>() != 0;
      if (!reader.ok() || reservation.job >= job_count ||
          reservation.shape.pool != static_cast<uint32_t>(&pool - s.pools_.data())) {
        return Corrupt("bad reservation");
      }
    }
    const uint32_t promised_count = reader.GetCount(1);
    pool.promised.reserve(promised_count);
    for (uint32_t slot = 0; slot < promised_count; ++slot) {
      const JobId id = reader.GetVarint<uint32_t>();
      if (!reader.ok() || id >= job_count) return Corrupt("bad promise");
      pool.promised.push_back(id);
    }
    if (!pool.main->DecodeOrder(reader)) return Corrupt("bad node index order");
  }
  for (JobId id = 0; id < job_count; ++id) {
    const Job& job = s.jobs_[id];
    if (job.reservation < 0) continue;
    const PoolState& pool = s.pools_[job.shape.pool];
    if (static_cast<size_t>(job.reservation) >= pool.reservations.size() ||
        pool.reservations[static_cast<size_t>(job.reservation)].job != id) {
      return Corrupt("bad reservation of job " + std::to_string(id));
    }
  }

  // Jobs on nodes: exactly the running placements.
  for (uint32_t node = 0; node < s.node_jobs_.size(); ++node) {
    const auto count = reader.GetVarint<uint32_t>();
    if (!reader.ok() || count != allocs_on_node[node]) return Corrupt("bad jobs on a node");
    for (uint32_t i = 0; i < count; ++i) {
      const auto id = reader.GetVarint<uint32_t>();
      if (!reader.ok() || id >= job_count || s.jobs_[id].state != JobState::kRunning) {
        return Corrupt("bad jobs on a node");
      }
      const auto& placement = s.jobs_[id].placement;
      const auto& on_node = s.node_jobs_[node];
      if (std::find(on_node.begin(), on_node.end(), id) != on_node.end() ||
          std::none_of(placement.begin(), placement.end(),
                       [node](const Alloc& alloc) { return alloc.node == node; })) {
        return Corrupt("bad jobs on a node");
      }
      s.node_jobs_[node].push_back(id);
    }
  }

  const uint32_t reserved_count = reader.GetCount(1);
  for (uint32_t i = 0; i < reserved_count; ++i) {
    const auto id = reader.GetVarint<uint32_t>();
    if (id >= job_count) return Corrupt("bad reserved job");
    s.reserved_now_.push_back(id);
  }
  const uint32_t log_count = reader.GetCount(3);
  s.reservation_log_.reserve(log_count);
  for (uint32_t i = 0; i < log_count; ++i) {
    ReservationRecord record;
    record.job = reader.GetVarint<uint32_t>();
    record.made_at_s = reader.GetZigzag();
    record.start_s = reader.GetZigzag();
    s.reservation_log_.push_back(record);
  }
  if (!reader.ok() || !reader.at_end()) return Corrupt("malformed or trailing bytes");
  // The reservations' caches (unit times) are derived from the jobs and masks restored
  // above: every node stale, refreshed lazily by the next reservation.
  s.RebuildCaches();
  return sched;
}

}  // namespace atrium::sched
