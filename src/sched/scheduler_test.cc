#include "sched/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace atrium::sched {
namespace {

using cluster::JobClass;

// 4 nodes of 16 Trainium chips in one group (64 chips), at 1.34375 per chip-hour.
cluster::Cluster SmallCluster() {
  cluster::ClusterBuilder builder("small");
  const uint32_t accel =
      builder.AddAccelerator({.name = "trn1", .price_per_chip_hour = *Credits::Parse("1.34375")});
  const uint32_t type = builder.AddNodeType(
      {.name = "trn", .accelerator = accel, .chips = 16, .allocation_sizes = {1, 4, 8}});
  EXPECT_TRUE(builder.AddPool("trn", type, 4, 4, 1).ok());
  builder.AddPartition(
      {.name = "education", .classes = {JobClass::kEducation}, .chips_per_job_max = 16});
  return *std::move(builder).Build();
}

class SchedulerTest : public ::testing::Test {
 protected:
  void Init(std::string_view policy, Credits credits = Credits::FromWhole(100000)) {
    sched_ = std::make_unique<Scheduler>(cluster_, ledger_, *MakePolicy(policy));
    ASSERT_TRUE(sched_->AddGrant("g1", credits, 1.0, JobClass::kResearch, 0).ok());
    ASSERT_TRUE(
        sched_->AddGrant("rich", Credits::FromWhole(100000), 1.0, JobClass::kResearch, 0).ok());
  }
  JobId Submit(std::string id, int64_t chips, int64_t walltime_s, int64_t now_s = 0,
               JobClass job_class = JobClass::kResearch, std::string grant = "g1") {
    return sched_->Submit({.id = std::move(id),
                           .grant = std::move(grant),
                           .job_class = job_class,
                           .chips = chips,
                           .submit_s = now_s,
                           .duration_s = walltime_s,
                           .walltime_s = walltime_s},
                          now_s);
  }
  bool Started(const PassResult& pass, JobId id) {
    return std::find(pass.started.begin(), pass.started.end(), id) != pass.started.end();
  }
  Credits GrantAvailable(std::string_view grant) {
    return ledger_.FindAccount(sched_->grants()[*sched_->FindGrant(grant)].account)->available();
  }

  cluster::Cluster cluster_ = SmallCluster();
  ledger::Ledger ledger_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(SchedulerTest, GangStartHoldsWorstCaseAndSettlesActualUse) {
  Init("fairshare", Credits::FromWhole(1000));
  const JobId job = Submit("j1", 32, 3600);
  const PassResult pass = sched_->Pass(0);
  ASSERT_TRUE(Started(pass, job));
  ASSERT_EQ(sched_->job(job).placement.size(), 2u);  // two whole nodes
  for (const Alloc& alloc : sched_->job(job).placement) EXPECT_EQ(alloc.mask, 0xFFFFu);
  // Hold: 32 chips x 1 h x 1.34375 = 43 credits.
  EXPECT_EQ(GrantAvailable("g1"), Credits::FromWhole(1000 - 43));
  sched_->Finish(job, 1800, RunEnd::kCompleted);
  EXPECT_EQ(sched_->job(job).charged, *Credits::Parse("21.5"));
  EXPECT_EQ(GrantAvailable("g1"), *Credits::Parse("978.5"));
  EXPECT_EQ(sched_->job(job).state, JobState::kCompleted);
  EXPECT_EQ(sched_->busy_chips(), 0);
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(SchedulerTest, AGrantThatCannotPayWaitsWithoutBlockingOthers) {
  Init("fifo", Credits::FromWhole(1));
  const JobId poor = Submit("poor", 16, 3600, 0);
  const JobId other = Submit("other", 16, 3600, 1, JobClass::kResearch, "rich");
  const PassResult pass = sched_->Pass(1);
  EXPECT_FALSE(Started(pass, poor));
  EXPECT_TRUE(Started(pass, other));
  EXPECT_EQ(sched_->job(poor).reason, ErrorCode::kInsufficientCredits);
  EXPECT_EQ(sched_->job(poor).state, JobState::kPending);
}

// Node-hours: j0 holds 3 nodes until 1000; the 4-node job waits for 1000.
TEST_F(SchedulerTest, BackfillUsesReservedNodesOnlyUntilTheReservation) {
  Init("backfill");
  const JobId running = Submit("j0", 48, 1000, 0);
  ASSERT_TRUE(Started(sched_->Pass(0), running));
  const JobId big = Submit("big", 64, 100, 1);
  const JobId short_job = Submit("short", 16, 500, 2);
  const JobId long_job = Submit("long", 16, 2000, 3);
  const PassResult pass = sched_->Pass(3);
  EXPECT_FALSE(Started(pass, big));
  EXPECT_TRUE(Started(pass, short_job));  // ends by 503 <= 1000
  EXPECT_FALSE(Started(pass, long_job));  // would run past 1000 on a reserved node
  ASSERT_EQ(sched_->reservation_log().size(), 1u);
  EXPECT_EQ(sched_->reservation_log()[0].job, big);
  EXPECT_EQ(sched_->reservation_log()[0].start_s, 1000);
  sched_->Finish(short_job, 503, RunEnd::kCompleted);
  EXPECT_FALSE(Started(sched_->Pass(503), long_job));
  sched_->Finish(running, 1000, RunEnd::kCompleted);
  const PassResult at_reservation = sched_->Pass(1000);
  EXPECT_TRUE(Started(at_reservation, big));
  EXPECT_FALSE(Started(at_reservation, long_job));
}

TEST_F(SchedulerTest, FifoLetsNothingPassABlockedJob) {
  Init("fifo");
  const JobId running = Submit("j0", 48, 1000, 0);
  ASSERT_TRUE(Started(sched_->Pass(0), running));
  Submit("big", 64, 100, 1);
  const JobId short_job = Submit("short", 16, 500, 2);
  EXPECT_FALSE(Started(sched_->Pass(2), short_job));
  EXPECT_TRUE(sched_->reservation_log().empty());
}

TEST_F(SchedulerTest, StarvingResearchPreemptsAndPreemptedJobPaysOnlyForItsRun) {
  Init("fairshare+preempt");
  const JobId victim = Submit("p", 64, 36000, 0, JobClass::kPreemptible);
  ASSERT_TRUE(Started(sched_->Pass(0), victim));
  const JobId research = Submit("r", 16, 3600, 10);
  const PassResult early = sched_->Pass(10);
  EXPECT_TRUE(early.preempted.empty());
  EXPECT_EQ(early.wake_at_s, 10 + SchedulerConfig{}.preempt_wait_s);
  const int64_t starving_s = early.wake_at_s;
  const PassResult late = sched_->Pass(starving_s);
  ASSERT_EQ(late.preempted.size(), 1u);
  EXPECT_EQ(late.preempted[0].job, victim);
  const int64_t taken_s = starving_s + SchedulerConfig{}.preempt_grace_s;
  EXPECT_EQ(late.preempted[0].at_s, taken_s);
  sched_->Finish(victim, taken_s, RunEnd::kPreempted);
  EXPECT_EQ(sched_->job(victim).state, JobState::kPending);
  EXPECT_EQ(sched_->job(victim).charged, *UsageCost(64, taken_s, *Credits::Parse("1.34375")));
  const PassResult after = sched_->Pass(taken_s);
  EXPECT_TRUE(Started(after, research));
  EXPECT_FALSE(Started(after, victim));  // 48 chips left; it needs 64
  EXPECT_TRUE(ledger_.Verify().ok());
}

TEST_F(SchedulerTest, RejectsBadJobsWithReasons) {
  Init("fairshare");
  const struct {
    JobSpec spec;
    ErrorCode code;
  } cases[] = {
      {{.id = "a", .grant = "nobody", .chips = 1, .walltime_s = 60}, ErrorCode::kUnknownGrant},
      {{.id = "b", .grant = "g1", .accelerator = "h100", .chips = 1, .walltime_s = 60},
       ErrorCode::kUnknownAccelerator},
      {{.id = "c", .grant = "g1", .chips = 80, .walltime_s = 60}, ErrorCode::kJobTooLarge},
      {{.id = "d", .grant = "g1", .chips = 3, .walltime_s = 60}, ErrorCode::kInvalidAllocationSize},
      {{.id = "e", .grant = "g1", .chips = -4, .walltime_s = 60}, ErrorCode::kInvalidArgument},
      {{.id = "f", .grant = "g1", .chips = 4, .walltime_s = 0}, ErrorCode::kInvalidArgument},
      {{.id = "g", .grant = "g1", .job_class = JobClass::kEducation, .chips = 32, .walltime_s = 60},
       ErrorCode::kPartitionLimit},
  };
  for (const auto& bad : cases) {
    const JobId id = sched_->Submit(bad.spec, 0);
    EXPECT_EQ(sched_->job(id).state, JobState::kRejected) << bad.spec.id;
    EXPECT_EQ(sched_->job(id).reason, bad.code) << bad.spec.id;
    EXPECT_FALSE(sched_->rejection_text(id).empty());
  }
  EXPECT_EQ(sched_->waiting_count(), 0u);
}

TEST_F(SchedulerTest, NodesThatAreNotUpTakeNoWork) {
  Init("backfill");
  ASSERT_TRUE(sched_->SetNodeState(0, cluster::NodeState::kDown).ok());
  ASSERT_TRUE(sched_->SetNodeState(1, cluster::NodeState::kDraining).ok());
  const JobId wide = Submit("wide", 48, 60);
  const JobId pair = Submit("pair", 32, 60);
  const PassResult pass = sched_->Pass(0);
  EXPECT_FALSE(Started(pass, wide));
  ASSERT_TRUE(Started(pass, pair));
  for (const Alloc& alloc : sched_->job(pair).placement) EXPECT_GE(alloc.node, 2u);
  ASSERT_TRUE(sched_->SetNodeState(0, cluster::NodeState::kUp).ok());
  sched_->Finish(pair, 60, RunEnd::kCompleted);
  EXPECT_TRUE(Started(sched_->Pass(60), wide));
}

TEST_F(SchedulerTest, FairShareFavoursTheGrantThatUsedLess) {
  Init("fairshare");
  // g1 uses the whole cluster for a day; then both grants submit one full-cluster job.
  const JobId hog = Submit("hog", 64, 86400, 0);
  ASSERT_TRUE(Started(sched_->Pass(0), hog));
  sched_->Finish(hog, 86400, RunEnd::kCompleted);
  const JobId mine = Submit("mine", 64, 60, 86400);
  const JobId theirs = Submit("theirs", 64, 60, 86400, JobClass::kResearch, "rich");
  const PassResult pass = sched_->Pass(86400);
  EXPECT_TRUE(Started(pass, theirs));
  EXPECT_FALSE(Started(pass, mine));
}

TEST(SchedulerPoolsTest, FifoBlocksOnlyThePoolOfTheBlockedJob) {
  cluster::ClusterBuilder builder("two");
  const uint32_t trn =
      builder.AddAccelerator({.name = "trn1", .price_per_chip_hour = Credits::FromWhole(1)});
  const uint32_t gpu =
      builder.AddAccelerator({.name = "h100", .price_per_chip_hour = Credits::FromWhole(4)});
  ASSERT_TRUE(builder
                  .AddPool("trn",
                           builder.AddNodeType({.name = "t", .accelerator = trn, .chips = 16}), 2,
                           2, 1)
                  .ok());
  ASSERT_TRUE(builder
                  .AddPool("gpu",
                           builder.AddNodeType({.name = "g", .accelerator = gpu, .chips = 8}), 2, 1,
                           2)
                  .ok());
  const cluster::Cluster cluster = *std::move(builder).Build();
  ledger::Ledger ledger;
  Scheduler sched(cluster, ledger, *MakePolicy("fifo"));
  ASSERT_TRUE(sched.AddGrant("g", Credits::FromWhole(100000), 1, JobClass::kResearch, 0).ok());
  auto submit = [&](std::string id, std::string accelerator, int64_t chips, int64_t now_s) {
    return sched.Submit({.id = std::move(id),
                         .grant = "g",
                         .accelerator = std::move(accelerator),
                         .chips = chips,
                         .submit_s = now_s,
                         .duration_s = 100,
                         .walltime_s = 100},
                        now_s);
  };
  const JobId holder = submit("holder", "trn1", 16, 0);
  const JobId blocked = submit("blocked", "trn1", 32, 1);
  const JobId small_trn = submit("small-trn", "trn1", 1, 2);
  const JobId gpu_job = submit("gpu", "h100", 12, 3);  // 12 GPUs: not a whole number of nodes
  const JobId gpu_ok = submit("gpu-ok", "h100", 16, 4);
  const PassResult pass = sched.Pass(5);
  auto started = [&](JobId id) {
    return std::find(pass.started.begin(), pass.started.end(), id) != pass.started.end();
  };
  EXPECT_TRUE(started(holder));
  EXPECT_FALSE(started(blocked));
  EXPECT_FALSE(started(small_trn));  // behind the blocked job in its pool
  EXPECT_EQ(sched.job(gpu_job).reason, ErrorCode::kInvalidAllocationSize);
  EXPECT_TRUE(started(gpu_ok));  // another pool: not blocked
  EXPECT_EQ(sched.job(gpu_ok).placement.size(), 2u);
}

// The reservations' cache (each node's unit times) against a recompute from the jobs and
// masks, after every pass and run end of seeded random workloads with starts, ends,
// preemptions and nodes going down and up.
TEST(SchedulerCacheTest, UnitTimesEqualARecomputeUnderChurn) {
  cluster::ClusterBuilder builder("sixteen");
  const uint32_t accel =
      builder.AddAccelerator({.name = "trn1", .price_per_chip_hour = Credits::FromWhole(1)});
  const uint32_t type = builder.AddNodeType(
      {.name = "trn", .accelerator = accel, .chips = 16, .allocation_sizes = {1, 4, 8}});
  ASSERT_TRUE(builder.AddPool("trn", type, 16, 4, 4).ok());
  const cluster::Cluster cluster = *std::move(builder).Build();
  for (const char* policy : {"backfill", "conservative", "fairshare+preempt"}) {
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      ledger::Ledger ledger;
      Scheduler sched(cluster, ledger, *MakePolicy(policy),
                      {.preempt_wait_s = 600, .preempt_grace_s = 60});
      for (const char* grant : {"a", "b", "c"}) {
        ASSERT_TRUE(
            sched.AddGrant(grant, Credits::FromWhole(10'000'000), 1, JobClass::kResearch, 0).ok());
      }
      std::mt19937_64 rng(seed);
      struct End {
        JobId job;
        uint32_t run;
        RunEnd how;
      };
      std::multimap<int64_t, End> ends;
      for (int64_t now_s = 0; now_s < 40'000; now_s += 30) {
        while (!ends.empty() && ends.begin()->first <= now_s) {
          const auto [at_s, end] = *ends.begin();
          ends.erase(ends.begin());
          const Job& job = sched.job(end.job);
          if (job.state != JobState::kRunning || job.runs != end.run) continue;  // stale
          if (end.how == RunEnd::kPreempted ? job.preempt_at_s != at_s
                                            : at_s > job.expected_end_s()) {
            continue;
          }
          sched.Finish(end.job, at_s, end.how);
          ASSERT_TRUE(sched.CachesConsistent()) << policy << " seed " << seed << " at " << at_s;
        }
        if (rng() % 50 == 0) {
          const auto node = static_cast<uint32_t>(rng() % 16);
          ASSERT_TRUE(sched
                          .SetNodeState(node, rng() % 2 == 0 ? cluster::NodeState::kDown
                                                             : cluster::NodeState::kUp)
                          .ok());
        }
        for (uint64_t count = rng() % 4; count > 0; --count) {
          static constexpr int64_t kChips[] = {1, 1, 1, 4, 8, 16, 32, 64, 128};
          const int64_t walltime_s = 300 + static_cast<int64_t>(rng() % 7200);
          sched.Submit(
              {.id = "j",
               .grant = std::string(1, static_cast<char>('a' + rng() % 3)),
               .job_class = rng() % 3 == 0 ? JobClass::kPreemptible : JobClass::kResearch,
               .chips = kChips[rng() % std::size(kChips)],
               .submit_s = now_s,
               .duration_s = static_cast<int64_t>(rng() % static_cast<uint64_t>(walltime_s)),
               .walltime_s = walltime_s},
              now_s);
        }
        const PassResult pass = sched.Pass(now_s);
        ASSERT_TRUE(sched.CachesConsistent()) << policy << " seed " << seed << " at " << now_s;
        for (const JobId id : pass.started) {
          const Job& job = sched.job(id);
          const int64_t left_s = std::max<int64_t>(0, job.duration_s - job.ran_s);
          ends.emplace(now_s + std::min(left_s, job.run_limit_s),
                       End{id, job.runs,
                           left_s <= job.run_limit_s ? RunEnd::kCompleted : RunEnd::kWalltime});
        }
        for (const PreemptNotice& notice : pass.preempted) {
          ends.emplace(notice.at_s,
                       End{notice.job, sched.job(notice.job).runs, RunEnd::kPreempted});
        }
      }
      EXPECT_GT(sched.stats().reservations, 0) << policy;
      if (std::string_view(policy) == "fairshare+preempt") {
        int64_t preempted = 0;
        for (JobId id = 0; id < sched.job_count(); ++id) {
          preempted += sched.job(id).runs > 1 ? 1 : 0;
        }
        EXPECT_GT(preempted, 0) << "seed " << seed;
      }
    }
  }
}

// A preemption attempt counts at most preempt_candidates_max running jobs: a starving job
// that needs more of them asks nobody to yield and gets a reservation instead.
TEST(SchedulerPreemptTest, CandidatesPerAttemptAreBounded) {
  const cluster::Cluster cluster = SmallCluster();
  for (const size_t candidates_max : {size_t{8}, size_t{16}, size_t{0}}) {
    ledger::Ledger ledger;
    Scheduler sched(cluster, ledger, *MakePolicy("fairshare+preempt"),
                    {.preempt_candidates_max = candidates_max});
    ASSERT_TRUE(sched.AddGrant("g", Credits::FromWhole(100000), 1, JobClass::kResearch, 0).ok());
    // 64 single-chip preemptible jobs fill the 4 nodes; a 16-chip research job starves.
    for (int idx = 0; idx < 64; ++idx) {
      sched.Submit({.id = "p" + std::to_string(idx),
                    .grant = "g",
                    .job_class = JobClass::kPreemptible,
                    .chips = 1,
                    .duration_s = 36000,
                    .walltime_s = 36000},
                   0);
    }
    ASSERT_EQ(sched.Pass(0).started.size(), 64u);
    const JobId research = sched.Submit(
        {.id = "r", .grant = "g", .chips = 16, .submit_s = 1, .duration_s = 60, .walltime_s = 60},
        1);
    const PassResult pass = sched.Pass(1 + SchedulerConfig{}.preempt_wait_s);
    if (candidates_max == 8) {
      EXPECT_TRUE(pass.preempted.empty());  // a node's 16 chips need 16 candidates
      EXPECT_GE(sched.job(research).reservation, 0);
    } else {
      EXPECT_EQ(pass.preempted.size(), 16u) << candidates_max;  // one node's worth
    }
    // At the next pass, within the grace period, only a preemption under way keeps its
    // own reservation ahead of the pool's (EASY) one: a failed attempt leaves the starving
    // job to take the pool's reservation, and a later blocked job gets none.
    const int64_t next_s = 11 + SchedulerConfig{}.preempt_wait_s;
    sched.Submit({.id = "b",
                  .grant = "g",
                  .chips = 16,
                  .submit_s = next_s,
                  .duration_s = 60,
                  .walltime_s = 60},
                 next_s);
    const int64_t made_before = sched.stats().reservations;
    const PassResult next = sched.Pass(next_s);
    EXPECT_TRUE(next.preempted.empty());
    EXPECT_EQ(sched.job(research).preempt_under_way, candidates_max != 8) << candidates_max;
    EXPECT_EQ(sched.stats().reservations - made_before, candidates_max == 8 ? 1 : 2)
        << candidates_max;
  }
}

// Under preemption, a near reservation (a preemption under way) refuses a class's long
// jobs: the pass walks only the class's jobs short enough to end by it, not every long
// one in turn.
TEST(SchedulerPreemptTest, LongJobsRefusedByANearReservationAreSkippedTogether) {
  const cluster::Cluster cluster = SmallCluster();
  ledger::Ledger ledger;
  Scheduler sched(cluster, ledger, *MakePolicy("fairshare+preempt"));
  ASSERT_TRUE(sched.AddGrant("g", Credits::FromWhole(1000000), 1, JobClass::kResearch, 0).ok());
  auto submit = [&](std::string id, int64_t chips, int64_t walltime_s, int64_t now_s,
                    JobClass job_class) {
    return sched.Submit({.id = std::move(id),
                         .grant = "g",
                         .job_class = job_class,
                         .chips = chips,
                         .submit_s = now_s,
                         .duration_s = walltime_s,
                         .walltime_s = walltime_s},
                        now_s);
  };
  // Three nodes run preemptible work for 10 h; a 2-node research job starves.
  for (int idx = 0; idx < 3; ++idx) {
    submit("p" + std::to_string(idx), 16, 36000, 0, JobClass::kPreemptible);
  }
  ASSERT_EQ(sched.Pass(0).started.size(), 3u);
  const JobId starving = submit("r", 32, 600, 1, JobClass::kResearch);
  EXPECT_TRUE(sched.Pass(1).started.empty());
  // When it may preempt, 100 one-node jobs of an hour and one of 5 minutes arrive.
  const int64_t now_s = 1 + SchedulerConfig{}.preempt_wait_s;
  std::vector<JobId> long_jobs;
  long_jobs.reserve(100);
  for (int idx = 0; idx < 100; ++idx) {
    long_jobs.push_back(submit("l" + std::to_string(idx), 16, 3600, now_s, JobClass::kResearch));
  }
  const JobId short_job = submit("s", 16, 300, now_s, JobClass::kResearch);
  const int64_t examined_before = sched.stats().jobs_examined;
  const PassResult pass = sched.Pass(now_s);
  ASSERT_EQ(pass.preempted.size(), 1u);
  EXPECT_TRUE(sched.job(starving).preempt_under_way);
  // The free node is the reservation's at now + grace: only the 5-minute job may use it.
  ASSERT_EQ(pass.started.size(), 1u);
  EXPECT_EQ(pass.started[0], short_job);
  for (const JobId id : long_jobs) EXPECT_EQ(sched.job(id).state, JobState::kPending);
  // Examined: the starving job, the first long job (refused: it takes the pool's EASY
  // reservation, and its class is narrowed to its short jobs) and the short one.
  EXPECT_EQ(sched.stats().jobs_examined - examined_before, 3);
  EXPECT_EQ(sched.stats().backfill_refused, 1);
}

}  // namespace
}  // namespace atrium::sched
