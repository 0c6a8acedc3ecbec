// An independent reference for the scheduler's backfilling: a plain FCFS + EASY
// simulator written from the textbook rule (Mu'alem & Feitelson 2001), kept simple enough
// to be obviously right, like tests/ledger_model_test.cc is for the ledger. Workloads are
// whole-node gangs on a flat pool, where "fits" is a count of free nodes for both.
//
// On seeded random workloads it checks that the scheduler (through the simulator, a pass
// at every event):
//   - makes valid schedules (no chip used twice, no start before submission);
//   - with one reservation (backfill, and fairshare with one grant), starts every job at
//     exactly the reference's time;
//   - never leaves an interval in which a waiting job fits the free nodes, would not
//     delay the reservation, and is not started;
// and, for conservative, that schedules are valid and no reservation is broken.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cluster/cluster.h"
#include "sim/simulator.h"

namespace atrium {
namespace {

constexpr int kChipsPerNode = 16;

struct RefJob {
  int64_t submit_s = 0;
  int64_t nodes = 0;
  int64_t walltime_s = 0;
  int64_t duration_s = 0;
  int64_t start_s = -1;
  int64_t end_s() const { return start_s + std::min(duration_s, walltime_s); }
};

// The reference: FCFS queue; at each event time, ends, then arrivals, then one EASY pass.
void RunEasyReference(int64_t nodes_total, std::vector<RefJob>& jobs) {
  std::vector<size_t> order(jobs.size());
  for (size_t idx = 0; idx < jobs.size(); ++idx) order[idx] = idx;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return jobs[a].submit_s < jobs[b].submit_s; });
  std::vector<size_t> queue;  // waiting, in FCFS order
  std::vector<size_t> running;
  size_t next = 0;
  while (next < order.size() || !queue.empty() || !running.empty()) {
    int64_t now = INT64_MAX;
    if (next < order.size()) now = jobs[order[next]].submit_s;
    for (size_t r : running) now = std::min(now, jobs[r].end_s());
    std::erase_if(running, [&](size_t r) { return jobs[r].end_s() <= now; });
    while (next < order.size() && jobs[order[next]].submit_s == now) queue.push_back(order[next++]);
    int64_t free = nodes_total;
    for (size_t r : running) free -= jobs[r].nodes;
    // Start jobs in order while they fit.
    size_t pos = 0;
    while (pos < queue.size() && jobs[queue[pos]].nodes <= free) {
      jobs[queue[pos]].start_s = now;
      free -= jobs[queue[pos]].nodes;
      running.push_back(queue[pos]);
      ++pos;
    }
    queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(pos));
    if (queue.empty()) continue;
    // The head waits: its shadow time, and the nodes it leaves spare then.
    const RefJob& head = jobs[queue.front()];
    std::vector<std::pair<int64_t, int64_t>> ends;  // (expected end, nodes)
    for (size_t r : running) ends.emplace_back(jobs[r].start_s + jobs[r].walltime_s, jobs[r].nodes);
    std::sort(ends.begin(), ends.end());
    int64_t avail = free;
    int64_t shadow = -1;
    for (size_t idx = 0; idx < ends.size(); ++idx) {
      avail += ends[idx].second;
      if (avail >= head.nodes &&
          (idx + 1 == ends.size() || ends[idx + 1].first != ends[idx].first)) {
        shadow = ends[idx].first;
        break;
      }
    }
    ASSERT_GE(shadow, 0) << "a job larger than the cluster";
    int64_t extra = avail - head.nodes;
    // Backfill: any later job that fits now and ends by the shadow or fits in the extra.
    std::vector<size_t> still = {queue.front()};
    for (size_t idx = 1; idx < queue.size(); ++idx) {
      RefJob& job = jobs[queue[idx]];
      const bool ends_by_shadow = now + job.walltime_s <= shadow;
      if (job.nodes <= free && (ends_by_shadow || job.nodes <= extra)) {
        job.start_s = now;
        free -= job.nodes;
        if (!ends_by_shadow) extra -= job.nodes;
        running.push_back(queue[idx]);
      } else {
        still.push_back(queue[idx]);
      }
    }
    queue = std::move(still);
  }
}

cluster::Cluster FlatPool(int nodes) {
  cluster::ClusterBuilder builder("flat");
  const uint32_t accel =
      builder.AddAccelerator({.name = "trn1", .price_per_chip_hour = Credits::FromWhole(1)});
  const uint32_t type = builder.AddNodeType(
      {.name = "trn", .accelerator = accel, .chips = kChipsPerNode, .allocation_sizes = {1, 4, 8}});
  EXPECT_TRUE(
      builder
          .AddPool("trn", type, static_cast<uint32_t>(nodes), 4, static_cast<uint32_t>(nodes / 4))
          .ok());
  return *std::move(builder).Build();
}

// Bursty arrivals of whole-node gangs, mostly one node, with walltimes that overstate the
// run time for most jobs (so that reservations move earlier) and a few exact ones.
std::vector<RefJob> RandomJobs(uint64_t seed, int count, int nodes_total) {
  std::mt19937_64 rng(seed);
  std::vector<RefJob> jobs;
  int64_t now = 0;
  for (int idx = 0; idx < count; ++idx) {
    now += static_cast<int64_t>(rng() % (idx % 50 < 25 ? 60 : 900));
    RefJob job;
    job.submit_s = now;
    const uint64_t draw = rng() % 100;
    job.nodes = draw < 60   ? 1
                : draw < 85 ? 2
                : draw < 95 ? 4
                            : 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(nodes_total));
    job.duration_s = 60 + static_cast<int64_t>(rng() % 7200);
    const uint64_t kind = rng() % 10;
    job.walltime_s = kind < 2   ? job.duration_s
                     : kind < 3 ? std::max<int64_t>(60, job.duration_s / 2)  // killed
                                : job.duration_s + static_cast<int64_t>(rng() % 7200);
    jobs.push_back(job);
  }
  return jobs;
}

sim::Workload ToWorkload(const std::vector<RefJob>& jobs) {
  sim::Workload workload;
  for (size_t idx = 0; idx < jobs.size(); ++idx) {
    workload.jobs.push_back({.id = "j" + std::to_string(idx),
                             .grant = "g",
                             .chips = jobs[idx].nodes * kChipsPerNode,
                             .submit_s = jobs[idx].submit_s,
                             .duration_s = jobs[idx].duration_s,
                             .walltime_s = jobs[idx].walltime_s});
  }
  return workload;
}

// Chips never used twice and no start before submission, from the scheduler's records.
void ExpectValid(const sched::Scheduler& sched) {
  std::map<uint32_t, std::vector<std::tuple<int64_t, int64_t, uint64_t>>> by_node;
  for (sched::JobId id = 0; id < sched.job_count(); ++id) {
    const sched::Job& job = sched.job(id);
    ASSERT_NE(job.state, sched::JobState::kRejected) << job.id;
    ASSERT_GE(job.first_start_s, job.submit_s) << job.id;
    int64_t chips = 0;
    for (const sched::Alloc& alloc : job.placement) {
      by_node[alloc.node].emplace_back(job.run_start_s, job.end_s, alloc.mask);
      chips += std::popcount(alloc.mask);
    }
    ASSERT_EQ(chips, job.shape.chips) << job.id;
  }
  for (auto& [node, uses] : by_node) {
    for (size_t a = 0; a < uses.size(); ++a) {
      for (size_t b = a + 1; b < uses.size(); ++b) {
        const bool overlap = std::get<0>(uses[a]) < std::get<1>(uses[b]) &&
                             std::get<0>(uses[b]) < std::get<1>(uses[a]);
        ASSERT_FALSE(overlap && (std::get<2>(uses[a]) & std::get<2>(uses[b])) != 0)
            << "node " << node << " chips used twice";
      }
    }
  }
}

// After every event, no waiting job could start under EASY's rule: it fits the free nodes
// and ends by the head's shadow time or fits the nodes the head leaves spare.
void ExpectNoIdleFit(const std::vector<RefJob>& jobs, const sched::Scheduler& sched,
                     int nodes_total) {
  std::set<int64_t> times;
  for (sched::JobId id = 0; id < sched.job_count(); ++id) {
    times.insert(sched.job(id).submit_s);
    times.insert(sched.job(id).end_s);
  }
  for (const int64_t now : times) {
    int64_t free = nodes_total;
    std::vector<std::pair<int64_t, int64_t>> ends;
    std::vector<sched::JobId> waiting;
    for (sched::JobId id = 0; id < sched.job_count(); ++id) {
      const sched::Job& job = sched.job(id);
      if (job.first_start_s <= now && now < job.end_s) {
        free -= jobs[id].nodes;
        ends.emplace_back(job.first_start_s + jobs[id].walltime_s, jobs[id].nodes);
      } else if (job.submit_s <= now && now < job.first_start_s) {
        waiting.push_back(id);
      }
    }
    std::sort(waiting.begin(), waiting.end(), [&](sched::JobId a, sched::JobId b) {
      return std::make_pair(jobs[a].submit_s, a) < std::make_pair(jobs[b].submit_s, b);
    });
    if (waiting.empty()) continue;
    const RefJob& head = jobs[waiting.front()];
    ASSERT_GT(head.nodes, free) << "at " << now << " the first waiting job fits and waits";
    std::sort(ends.begin(), ends.end());
    int64_t avail = free;
    int64_t shadow = -1;
    for (size_t idx = 0; idx < ends.size(); ++idx) {
      avail += ends[idx].second;
      if (avail >= head.nodes &&
          (idx + 1 == ends.size() || ends[idx + 1].first != ends[idx].first)) {
        shadow = ends[idx].first;
        break;
      }
    }
    const int64_t extra = avail - head.nodes;
    for (size_t idx = 1; idx < waiting.size(); ++idx) {
      const RefJob& job = jobs[waiting[idx]];
      const bool startable =
          job.nodes <= free && (now + job.walltime_s <= shadow || job.nodes <= extra);
      ASSERT_FALSE(startable) << "at " << now << " job j" << waiting[idx]
                              << " fits, delays no reservation, and waits";
    }
  }
}

class EasyReferenceTest : public ::testing::TestWithParam<const char*> {};

TEST_P(EasyReferenceTest, OneReservationStartsEveryJobWhenEasyDoes) {
  int64_t backfilled = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    const int nodes_total = seed % 2 == 0 ? 16 : 32;
    const cluster::Cluster cluster = FlatPool(nodes_total);
    std::vector<RefJob> jobs = RandomJobs(seed, 400, nodes_total);
    sim::SimOptions options{.policy = GetParam(), .pass_interval_s = 0};
    options.scheduler.backfill_test_max = 1'000'000;
    sim::Simulator sim(cluster, options);
    ASSERT_TRUE(sim.Run(ToWorkload(jobs), nullptr, nullptr).ok());
    RunEasyReference(nodes_total, jobs);
    const sched::Scheduler& sched = sim.scheduler();
    ASSERT_EQ(sched.job_count(), jobs.size());
    ExpectValid(sched);
    for (sched::JobId id = 0; id < sched.job_count(); ++id) {
      ASSERT_EQ(sched.job(id).first_start_s, jobs[id].start_s)
          << GetParam() << " seed " << seed << " job j" << id << " submitted " << jobs[id].submit_s
          << " nodes " << jobs[id].nodes;
      if (sched.job(id).ahead == sched::StartedAhead::kReservation) ++backfilled;
    }
    ExpectNoIdleFit(jobs, sched, nodes_total);
  }
  EXPECT_GT(backfilled, 0) << "the workloads never exercised backfill";
}

INSTANTIATE_TEST_SUITE_P(Policies, EasyReferenceTest, ::testing::Values("backfill", "fairshare"));

// Conservative: valid schedules, reservations made for more than the first blocked job.
TEST(ConservativeTest, ValidSchedulesWithManyReservations) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    const cluster::Cluster cluster = FlatPool(16);
    std::vector<RefJob> jobs = RandomJobs(seed, 300, 16);
    sim::Simulator sim(cluster, {.policy = "conservative", .pass_interval_s = 0});
    ASSERT_TRUE(sim.Run(ToWorkload(jobs), nullptr, nullptr).ok());
    ExpectValid(sim.scheduler());
    sim::Simulator easy(cluster, {.policy = "backfill", .pass_interval_s = 0});
    ASSERT_TRUE(easy.Run(ToWorkload(jobs), nullptr, nullptr).ok());
    EXPECT_GT(sim.scheduler().stats().reservations, easy.scheduler().stats().reservations)
        << "seed " << seed;
  }
}

// Conservative's promises are firm: runs never end late here and no node fails, so a job
// never starts later than the start first promised to it, and once promised it keeps a
// reservation at every pass until it starts (the log records a job again only when it
// got a reservation after a pass without one).
TEST(ConservativeTest, PromisedStartsNeverSlip) {
  int64_t promised = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    const int nodes_total = seed % 2 == 0 ? 16 : 32;
    const cluster::Cluster cluster = FlatPool(nodes_total);
    std::vector<RefJob> jobs = RandomJobs(seed, 300, nodes_total);
    sim::Simulator sim(cluster, {.policy = "conservative", .pass_interval_s = 0});
    ASSERT_TRUE(sim.Run(ToWorkload(jobs), nullptr, nullptr).ok());
    const sched::Scheduler& sched = sim.scheduler();
    ExpectValid(sched);
    std::map<sched::JobId, int64_t> first_promise;
    for (const sched::ReservationRecord& record : sched.reservation_log()) {
      ASSERT_TRUE(first_promise.emplace(record.job, record.start_s).second)
          << "seed " << seed << " job j" << record.job << " lost its reservation before starting";
      ASSERT_GT(record.start_s, record.made_at_s);
    }
    for (const auto& [id, start_s] : first_promise) {
      EXPECT_LE(sched.job(id).first_start_s, start_s)
          << "seed " << seed << " job j" << id << " started after its promise";
      ++promised;
    }
  }
  EXPECT_GT(promised, 1000) << "the workloads made too few promises to tell";
}

}  // namespace
}  // namespace atrium
