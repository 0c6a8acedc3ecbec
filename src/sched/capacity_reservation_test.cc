// Capacity reservations in the scheduler: choosing nodes, the hold and its post,
// cancellation, refusals, draining before a window, owner-only inside it, and a seeded
// randomized run that checks the rules at every pass (and a snapshot in the middle).
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "sched/scheduler.h"

namespace atrium::sched {
namespace {

using cluster::JobClass;

// 8 nodes of 16 chips in two groups of 4, at 1 credit per chip-hour.
cluster::Cluster BookingCluster() {
  cluster::ClusterBuilder builder("book");
  const uint32_t accel =
      builder.AddAccelerator({.name = "trn1", .price_per_chip_hour = Credits::FromWhole(1)});
  const uint32_t type = builder.AddNodeType(
      {.name = "trn", .accelerator = accel, .chips = 16, .allocation_sizes = {1, 4, 8}});
  EXPECT_TRUE(builder.AddPool("trn", type, 8, 4, 2).ok());
  return *std::move(builder).Build();
}

class BookingTest : public ::testing::Test {
 protected:
  void Init(std::string_view policy = "backfill", Credits owner = Credits::FromWhole(10000)) {
    sched_ = std::make_unique<Scheduler>(cluster_, ledger_, *MakePolicy(policy));
    ASSERT_TRUE(sched_->AddGrant("owner", owner, 1.0, JobClass::kResearch, 0).ok());
    ASSERT_TRUE(
        sched_->AddGrant("other", Credits::FromWhole(100000), 1.0, JobClass::kResearch, 0).ok());
  }
  JobId Submit(std::string id, std::string grant, int64_t chips, int64_t walltime_s, int64_t now_s,
               JobClass job_class = JobClass::kResearch) {
    return sched_->Submit({.id = std::move(id),
                           .grant = std::move(grant),
                           .job_class = job_class,
                           .chips = chips,
                           .submit_s = now_s,
                           .duration_s = walltime_s,
                           .walltime_s = walltime_s},
                          now_s);
  }
  Result<uint32_t> Book(std::string grant, int64_t nodes, int64_t start_s, int64_t end_s,
                        int64_t now_s, bool one_group = false) {
    return sched_->Book("b" + std::to_string(sched_->bookings().size()),
                        {.grant = std::move(grant),
                         .nodes = nodes,
                         .one_group = one_group,
                         .start_s = start_s,
                         .end_s = end_s},
                        now_s);
  }
  Credits Available(std::string_view grant) {
    return ledger_.FindAccount(sched_->grants()[*sched_->FindGrant(grant)].account)->available();
  }
  Credits Pending(std::string_view grant) {
    return ledger_.FindAccount(sched_->grants()[*sched_->FindGrant(grant)].account)->debits_pending;
  }
  bool OnBooked(JobId id, uint32_t booking) {
    const auto& nodes = sched_->bookings()[booking].nodes;
    for (const Alloc& alloc : sched_->job(id).placement) {
      if (std::find(nodes.begin(), nodes.end(), alloc.node) != nodes.end()) return true;
    }
    return false;
  }

  cluster::Cluster cluster_ = BookingCluster();
  ledger::Ledger ledger_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(BookingTest, BookingHoldsThePriceAndChargesItAtTheStart) {
  Init();
  // 40 chips round up to 3 nodes = 48 chips for 2 h = 96 credits.
  auto booked =
      sched_->Book("b0", {.grant = "owner", .chips = 40, .start_s = 3600, .end_s = 3 * 3600}, 0);
  ASSERT_TRUE(booked.ok()) << booked.error().message;
  const CapacityBooking& booking = sched_->bookings()[*booked];
  EXPECT_EQ(booking.nodes.size(), 3u);
  EXPECT_EQ(booking.price, Credits::FromWhole(96));
  EXPECT_EQ(booking.state, BookingState::kBooked);
  // Three nodes in one group (it fits one).
  for (const uint32_t node : booking.nodes) {
    EXPECT_EQ(cluster_.nodes()[node].group, cluster_.nodes()[booking.nodes[0]].group);
  }
  EXPECT_EQ(Available("owner"), Credits::FromWhole(10000 - 96));
  EXPECT_EQ(Pending("owner"), Credits::FromWhole(96));
  EXPECT_EQ(sched_->NextBookingEventS(), 3600);
  sched_->Pass(3599);
  EXPECT_EQ(sched_->bookings()[*booked].state, BookingState::kBooked);
  EXPECT_TRUE(sched_->TakeBookingCharges().empty());
  sched_->Pass(3600);
  EXPECT_EQ(sched_->bookings()[*booked].state, BookingState::kActive);
  EXPECT_EQ(sched_->bookings()[*booked].charged, Credits::FromWhole(96));
  const auto charges = sched_->TakeBookingCharges();
  ASSERT_EQ(charges.size(), 1u);
  EXPECT_EQ(charges[0].amount, Credits::FromWhole(96));
  EXPECT_EQ(Pending("owner"), Credits::Zero());
  EXPECT_EQ(Available("owner"), Credits::FromWhole(10000 - 96));
  EXPECT_EQ(sched_->NextBookingEventS(), 3 * 3600);
  sched_->Pass(3 * 3600);
  EXPECT_EQ(sched_->bookings()[*booked].state, BookingState::kEnded);
  EXPECT_EQ(sched_->NextBookingEventS(), -1);
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(BookingTest, CancellationBeforeTheStartVoidsOrKeepsTheFee) {
  Init();
  auto first = Book("owner", 2, 3600, 7200, 0);  // 32 credits
  auto second = Book("owner", 2, 3600, 7200, 0);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(Available("owner"), Credits::FromWhole(10000 - 64));
  auto fee = sched_->CancelBooking(*first, 10, 0);
  ASSERT_TRUE(fee.ok());
  EXPECT_EQ(*fee, Credits::Zero());
  EXPECT_EQ(sched_->bookings()[*first].state, BookingState::kCancelled);
  EXPECT_EQ(Available("owner"), Credits::FromWhole(10000 - 32));
  // 12.5% of 32 = 4 credits kept; the rest released.
  fee = sched_->CancelBooking(*second, 20, 1250);
  ASSERT_TRUE(fee.ok());
  EXPECT_EQ(*fee, Credits::FromWhole(4));
  EXPECT_EQ(sched_->bookings()[*second].charged, Credits::FromWhole(4));
  EXPECT_EQ(Available("owner"), Credits::FromWhole(10000 - 4));
  EXPECT_EQ(Pending("owner"), Credits::Zero());
  const auto charges = sched_->TakeBookingCharges();
  ASSERT_EQ(charges.size(), 1u);
  EXPECT_EQ(charges[0].amount, Credits::FromWhole(4));
  EXPECT_EQ(sched_->CancelBooking(*second, 30, 0).error().code, ErrorCode::kInvalidState);
  // The nodes are everyone's again: a whole-pool job starts.
  const JobId big = Submit("big", "other", 128, 100000, 30);
  const PassResult pass = sched_->Pass(30);
  EXPECT_EQ(pass.started, std::vector<JobId>{big});
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(BookingTest, CancellationAfterTheStartKeepsTheChargeAndFreesTheNodes) {
  Init();
  auto booked = Book("owner", 8, 100, 10000, 0);
  ASSERT_TRUE(booked.ok());
  sched_->Pass(100);
  const JobId foreign = Submit("f", "other", 16, 600, 200);
  EXPECT_TRUE(sched_->Pass(200).started.empty());
  EXPECT_TRUE(sched_->WaitsForBookedNodes(foreign));
  auto fee = sched_->CancelBooking(*booked, 300, 5000);
  ASSERT_TRUE(fee.ok());
  EXPECT_EQ(*fee, Credits::Zero());  // nothing more: the price was charged at the start
  EXPECT_EQ(sched_->bookings()[*booked].charged, Credits::FromWhole(8 * 16 * 9900 / 3600));
  EXPECT_EQ(sched_->bookings()[*booked].state, BookingState::kEnded);
  EXPECT_EQ(sched_->Pass(300).started, std::vector<JobId>{foreign});
}

TEST_F(BookingTest, Refusals) {
  Init("backfill", Credits::FromWhole(50));
  // Two bookings of 4 nodes each fill the pool for [1000, 2000).
  ASSERT_TRUE(Book("", 4, 1000, 2000, 0).ok());  // maintenance: free
  ASSERT_TRUE(Book("other", 4, 1000, 2000, 0).ok());
  EXPECT_EQ(Book("other", 1, 1500, 2500, 0).error().code, ErrorCode::kNoCapacity);
  // Back to back is fine (the window is half-open).
  EXPECT_TRUE(Book("other", 8, 2000, 2100, 0).ok());
  // 1 node for 4 h = 64 credits > 50.
  EXPECT_EQ(Book("owner", 1, 10000, 10000 + 4 * 3600, 0).error().code,
            ErrorCode::kInsufficientCredits);
  EXPECT_EQ(Book("nobody", 1, 10000, 20000, 0).error().code, ErrorCode::kUnknownGrant);
  EXPECT_EQ(Book("owner", 1, 10, 20, 100).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(Book("owner", 1, 200, 200, 100).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(Book("owner", 9, 10000, 10100, 0).error().code, ErrorCode::kNoCapacity);
  EXPECT_EQ(Book("owner", 5, 10000, 10100, 0, true).error().code, ErrorCode::kNoCapacity);
  EXPECT_EQ(
      sched_->Book("x", {.grant = "owner", .chips = 16, .nodes = 1, .start_s = 1, .end_s = 2}, 0)
          .error()
          .code,
      ErrorCode::kInvalidArgument);
  EXPECT_EQ(
      sched_->Book("x", {.accelerator = "nope", .nodes = 1, .start_s = 10000, .end_s = 10100}, 0)
          .error()
          .code,
      ErrorCode::kUnknownAccelerator);
  // A node whose run passes the start cannot be booked for it.
  const JobId running = Submit("r", "other", 128, 5000, 0);
  ASSERT_EQ(sched_->Pass(0).started.size(), 0u);  // the pool is booked at 1000
  (void)running;
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(BookingTest, NodesDrainBeforeTheWindowAndOnlyTheOwnerRunsInside) {
  Init();
  auto booked = Book("owner", 2, 1000, 5000, 0, true);
  ASSERT_TRUE(booked.ok());
  // 7 nodes wanted by a job that would pass the start: only the 6 unbooked nodes exist
  // for it, so it waits; a short job (ends by 1000) runs on the booked nodes.
  const JobId wide = Submit("wide", "other", 7 * 16, 3000, 0);
  const JobId fill = Submit("fill", "other", 6 * 16, 3000, 0);
  const JobId shorty = Submit("short", "other", 32, 900, 0);
  const JobId late = Submit("late", "other", 16, 2000, 0);
  PassResult pass = sched_->Pass(0);
  EXPECT_FALSE(std::count(pass.started.begin(), pass.started.end(), wide));
  EXPECT_TRUE(std::count(pass.started.begin(), pass.started.end(), fill));
  ASSERT_TRUE(std::count(pass.started.begin(), pass.started.end(), shorty));
  EXPECT_TRUE(OnBooked(shorty, *booked));
  EXPECT_FALSE(std::count(pass.started.begin(), pass.started.end(), late));
  EXPECT_TRUE(sched_->WaitsForBookedNodes(wide));
  sched_->Finish(shorty, 900, RunEnd::kCompleted);
  EXPECT_GT(sched_->job(shorty).charged, Credits::Zero());  // before the window: paid
  EXPECT_EQ(sched_->bookings()[*booked].lent_chip_s, 32 * 900);
  const JobId mine = Submit("mine", "owner", 32, 2000, 950);
  pass = sched_->Pass(950);
  EXPECT_TRUE(pass.started.empty());  // the main nodes are full, the window not open
  const Credits before = Available("owner");
  pass = sched_->Pass(1000);
  EXPECT_EQ(pass.started, std::vector<JobId>{mine});
  EXPECT_TRUE(OnBooked(mine, *booked));
  EXPECT_EQ(Available("owner"), before);  // no hold inside its booking
  sched_->Finish(mine, 2000, RunEnd::kCompleted);
  EXPECT_EQ(sched_->job(mine).charged, Credits::Zero());
  EXPECT_EQ(sched_->bookings()[*booked].used_chip_s, 32 * 1000);
  // Inside the window the idle booked nodes take no foreign job.
  pass = sched_->Pass(2000);
  EXPECT_TRUE(pass.started.empty());
  // The owner's job prefers its booked nodes even when main nodes are free.
  sched_->Finish(fill, 3000, RunEnd::kCompleted);
  const JobId mine2 = Submit("mine2", "owner", 16, 1000, 3000);
  pass = sched_->Pass(3000);
  EXPECT_TRUE(std::count(pass.started.begin(), pass.started.end(), mine2));
  EXPECT_TRUE(std::count(pass.started.begin(), pass.started.end(), late));
  EXPECT_TRUE(OnBooked(mine2, *booked));
  EXPECT_FALSE(OnBooked(late, *booked));
  EXPECT_EQ(sched_->job(wide).state, JobState::kPending);
  // A job of the owner that would outlast the window runs outside it, paid.
  const JobId long_mine = Submit("long", "owner", 16, 5000, 3000);
  pass = sched_->Pass(3000);
  ASSERT_EQ(pass.started, std::vector<JobId>{long_mine});
  EXPECT_FALSE(OnBooked(long_mine, *booked));
  EXPECT_GT(sched_->HeldBy(long_mine), Credits::Zero());
  sched_->Finish(mine2, 4000, RunEnd::kCompleted);
  sched_->Finish(late, 5000, RunEnd::kCompleted);
  sched_->Finish(long_mine, 5000, RunEnd::kCompleted);
  // The window is over: the nodes return; the 7-node job starts.
  pass = sched_->Pass(5000);
  EXPECT_EQ(pass.started, std::vector<JobId>{wide});
  EXPECT_TRUE(sched_->CachesConsistent());
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(BookingTest, MaintenanceKeepsTheNodesEmptyAndForcedMaintenanceAsksRunsToYield) {
  Init();
  const JobId busy = Submit("busy", "other", 128, 10000, 0);
  ASSERT_EQ(sched_->Pass(0).started, std::vector<JobId>{busy});
  // Without force, nodes whose runs pass the start are refused.
  auto refused = sched_->Book("m0", {.node_list = {0, 1}, .start_s = 600, .end_s = 1200}, 0);
  EXPECT_EQ(refused.error().code, ErrorCode::kNoCapacity);
  auto forced =
      sched_->Book("m1", {.node_list = {0, 1}, .force = true, .start_s = 600, .end_s = 1200}, 0);
  ASSERT_TRUE(forced.ok()) << forced.error().message;
  EXPECT_EQ(sched_->bookings()[*forced].price, Credits::Zero());
  const auto notices = sched_->TakeYieldNotices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].job, busy);
  EXPECT_EQ(notices[0].at_s, 600);
  sched_->Finish(busy, 600, RunEnd::kPreempted);
  // In the window: nobody on nodes 0 and 1, not even a 14-node... the requeued job waits.
  const JobId small = Submit("small", "owner", 16, 100, 600);
  const PassResult pass = sched_->Pass(600);
  EXPECT_TRUE(std::count(pass.started.begin(), pass.started.end(), small));
  EXPECT_FALSE(OnBooked(small, *forced));
  EXPECT_EQ(sched_->job(busy).state, JobState::kPending);
  EXPECT_EQ(sched_->BookingAt(0, 700), static_cast<int32_t>(*forced));
  EXPECT_EQ(sched_->BookingAt(0, 1200), -1);
  sched_->Finish(small, 700, RunEnd::kCompleted);
  EXPECT_TRUE(sched_->Pass(1199).started.empty());
  EXPECT_EQ(sched_->Pass(1200).started, std::vector<JobId>{busy});
  EXPECT_TRUE(ledger_.Verify().ok());
}

// A seeded random run: jobs of three grants and classes, bookings and maintenance made
// along the way, under each policy. At every pass: no run overlaps a window on its nodes
// unless it is the owner's run inside the window; the nodes of a starting window are free
// of others' runs; each booking's charge is its price once started. Halfway, the
// scheduler is snapshotted and the copy must decide exactly as the original.
TEST_F(BookingTest, RandomRunsNeverBreakABooking) {
  int64_t used_chip_s = 0;
  int64_t lent_chip_s = 0;
  int64_t bookings = 0;
  for (const std::string policy : {"backfill", "conservative", "fairshare+preempt", "fifo"}) {
    for (uint32_t seed = 1; seed <= 6; ++seed) {
      SCOPED_TRACE(policy + " seed " + std::to_string(seed));
      ledger_ = ledger::Ledger();
      Init(policy, Credits::FromWhole(1'000'000));
      std::mt19937_64 rng(seed);
      const auto pick = [&](int64_t low, int64_t high) {
        return std::uniform_int_distribution<int64_t>(low, high)(rng);
      };
      constexpr int64_t kStepS = 60;
      const std::string grants[] = {"owner", "other"};
      std::map<JobId, int64_t> run_end;  // running job -> when its run really ends
      std::map<JobId, int64_t> duration;
      int jobs = 0;
      for (int64_t now = 0; now <= 40'000; now += kStepS) {
        // Runs that end by now, in time order (ends are multiples of the step).
        for (auto it = run_end.begin(); it != run_end.end();) {
          const Job& job = sched_->job(it->first);
          const int64_t end = std::min(it->second, job.expected_end_s());
          if (end <= now) {
            const RunEnd how = end == it->second ? RunEnd::kCompleted
                               : job.preempt_at_s >= 0 && end == job.preempt_at_s
                                   ? RunEnd::kPreempted
                                   : RunEnd::kWalltime;
            sched_->Finish(it->first, end, how);
            it = run_end.erase(it);
          } else {
            ++it;
          }
        }
        for (int count = static_cast<int>(pick(0, 2)); count > 0 && jobs < 400; --count) {
          const int64_t sizes[] = {1, 4, 8, 16, 32, 48, 64, 128};
          const int64_t walltime = kStepS * pick(1, 60);
          const auto job_class = pick(0, 3) == 0 ? JobClass::kPreemptible : JobClass::kResearch;
          const JobId id = Submit("j" + std::to_string(jobs++), grants[pick(0, 1)],
                                  sizes[pick(0, 7)], walltime, now, job_class);
          duration[id] = kStepS * pick(1, walltime / kStepS);
        }
        if (pick(0, 20) == 0) {
          const int64_t start = now + kStepS * pick(0, 100);
          const int64_t end = start + kStepS * pick(1, 80);
          const bool maintenance = pick(0, 4) == 0;
          (void)Book(maintenance ? "" : "owner", pick(1, 4), start, end, now, pick(0, 1) == 0);
        }
        if (pick(0, 60) == 0) {
          for (uint32_t b = 0; b < sched_->bookings().size(); ++b) {
            if (sched_->bookings()[b].live() && pick(0, 1) == 0) {
              ASSERT_TRUE(sched_->CancelBooking(b, now, 2500).ok());
              break;
            }
          }
        }
        const PassResult pass = sched_->Pass(now);
        for (const JobId id : pass.started) {
          const Job& job = sched_->job(id);
          run_end[id] = now + std::min(duration[id] - job.ran_s, job.run_limit_s);
        }
        for (const PreemptNotice& notice : sched_->TakeYieldNotices()) {
          ASSERT_TRUE(run_end.contains(notice.job));
        }
        // The rules, for every running job on every node it holds.
        for (const auto& [id, end] : run_end) {
          const Job& job = sched_->job(id);
          ASSERT_EQ(job.state, JobState::kRunning);
          for (const Alloc& alloc : job.placement) {
            for (uint32_t b = 0; b < sched_->bookings().size(); ++b) {
              const CapacityBooking& booking = sched_->bookings()[b];
              if (booking.state == BookingState::kCancelled) continue;
              if (std::find(booking.nodes.begin(), booking.nodes.end(), alloc.node) ==
                  booking.nodes.end()) {
                continue;
              }
              // The window as it stands (an early end by cancellation shortens it).
              const int64_t window_end =
                  booking.closed_at_s >= 0 ? booking.closed_at_s : booking.end_s;
              const bool overlaps =
                  job.run_start_s < window_end && booking.start_s < job.expected_end_s();
              if (!overlaps) continue;
              // Forced maintenance cuts a run at its start; a run that yields ends then.
              if (job.expected_end_s() <= booking.start_s) continue;
              const bool owners_run =
                  booking.grant >= 0 && static_cast<int32_t>(job.grant) == booking.grant &&
                  job.run_start_s >= booking.start_s && job.booking == static_cast<int32_t>(b);
              ASSERT_TRUE(owners_run)
                  << "job " << job.id << " [" << job.run_start_s << ", " << job.expected_end_s()
                  << ") on node " << alloc.node << " in booking " << booking.id << " ["
                  << booking.start_s << ", " << booking.end_s << ") at " << now;
              ASSERT_LE(job.expected_end_s(), booking.end_s);
            }
          }
        }
        for (const CapacityBooking& booking : sched_->bookings()) {
          if (booking.state == BookingState::kActive || booking.state == BookingState::kEnded) {
            ASSERT_EQ(booking.charged, booking.price);
          }
        }
        if (now == 20'040) {
          std::string bytes;
          sched_->Encode(&bytes);
          auto copy = Scheduler::Decode(bytes, cluster_, ledger_);
          ASSERT_TRUE(copy.ok()) << copy.error().message;
          std::string again;
          (*copy)->Encode(&again);
          ASSERT_EQ(bytes, again);
        }
      }
      EXPECT_TRUE(sched_->CachesConsistent());
      EXPECT_TRUE(ledger_.Verify().ok());
      for (const CapacityBooking& booking : sched_->bookings()) {
        used_chip_s += booking.used_chip_s;
        lent_chip_s += booking.lent_chip_s;
        bookings += 1;
      }
    }
  }
  // The run exercised what it checks: bookings, owners' runs inside them, others' before.
  EXPECT_GT(bookings, 50);
  EXPECT_GT(used_chip_s, 0);
  EXPECT_GT(lent_chip_s, 0);
}

}  // namespace
}  // namespace atrium::sched
