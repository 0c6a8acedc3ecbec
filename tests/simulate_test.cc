// End-to-end properties of a simulated run, checked from its outputs: runs.csv and
// jobs.csv as written, and the ledger the run drove.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "cluster/config.h"
#include "sim/metrics.h"
#include "sim/output.h"
#include "sim/simulator.h"
#include "sim/synthetic.h"

namespace atrium {
namespace {

using Row = std::map<std::string, std::string>;

std::vector<Row> ReadCsv(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::vector<std::string> header;
  std::vector<Row> rows;
  auto split = [](const std::string& text) {
    std::vector<std::string> fields;
    std::stringstream stream(text);
    std::string field;
    while (std::getline(stream, field, ',')) fields.push_back(field);
    if (!text.empty() && text.back() == ',') fields.emplace_back();
    return fields;
  };
  if (!std::getline(in, line)) return rows;
  header = split(line);
  while (std::getline(in, line)) {
    const auto fields = split(line);
    EXPECT_EQ(fields.size(), header.size()) << line;
    Row row;
    for (size_t idx = 0; idx < std::min(fields.size(), header.size()); ++idx)
      row[header[idx]] = fields[idx];
    rows.push_back(std::move(row));
  }
  return rows;
}

// "node:chips;node:chips" -> pairs.
std::vector<std::pair<std::string, int64_t>> ParsePlacement(const std::string& text) {
  std::vector<std::pair<std::string, int64_t>> pairs;
  std::stringstream stream(text);
  std::string pair;
  while (std::getline(stream, pair, ';')) {
    const size_t colon = pair.find(':');
    pairs.emplace_back(pair.substr(0, colon), std::stoll(pair.substr(colon + 1)));
  }
  return pairs;
}

cluster::Cluster Mixed() {
  auto cluster =
      cluster::LoadClusterFile(std::string(ATRIUM_SOURCE_DIR) + "/examples/clusters/mixed.toml");
  EXPECT_TRUE(cluster.ok());
  return *std::move(cluster);
}

// An overloaded mix on the mixed cluster: Trainium jobs from the generator, every tenth
// job moved to the GPUs, and a few bad jobs.
sim::Workload MixedWorkload(const cluster::Cluster& cluster) {
  auto workload = *sim::GenerateSynthetic(
      cluster, {.jobs = 1500, .load = 1.3, .seed = 11, .grants = 12, .duration_median_s = 600});
  const int64_t gpu_sizes[] = {1, 2, 3, 8, 16};
  for (size_t idx = 0; idx < workload.jobs.size(); idx += 10) {
    workload.jobs[idx].accelerator = "h100";
    workload.jobs[idx].chips = gpu_sizes[(idx / 10) % 5];
  }
  workload.jobs[5].chips = -4;
  workload.jobs[15].chips = 100000;
  workload.jobs[25].accelerator = "tpu-v9";
  workload.jobs[35].chips = 3;  // not a Trainium allocation size
  return workload;
}

struct RunOutput {
  std::unique_ptr<sim::Simulator> sim;
  std::vector<Row> runs;
  std::vector<Row> jobs;
};

RunOutput Simulate(const cluster::Cluster& cluster, sim::Workload workload,
                   const std::string& policy, const std::string& dir,
                   std::vector<sim::BookingSpec> bookings = {}) {
  RunOutput out;
  sim::SimOptions options{.policy = policy, .pass_interval_s = 10};
  options.bookings = std::move(bookings);
  options.scheduler.preempt_wait_s = 300;  // this short workload rarely starves anyone longer
  out.sim = std::make_unique<sim::Simulator>(cluster, options);
  auto writer = sim::OutputWriter::Open(dir);
  EXPECT_TRUE(writer.ok());
  EXPECT_TRUE(out.sim->Run(std::move(workload), nullptr, writer->get()).ok());
  EXPECT_TRUE((*writer)->Finish(*out.sim, sim::Summarize(*out.sim)).ok());
  out.runs = ReadCsv(dir + "/runs.csv");
  out.jobs = ReadCsv(dir + "/jobs.csv");
  return out;
}

class SimulateTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SimulateTest, RunsCsvKeepsTheClustersInvariants) {
  const cluster::Cluster cluster = Mixed();
  const std::string dir = ::testing::TempDir() + "/atrium_sim_" + GetParam();
  RunOutput out = Simulate(cluster, MixedWorkload(cluster), GetParam(), dir);
  ASSERT_EQ(out.jobs.size(), 1500u);
  std::map<std::string, Row> jobs;
  for (const Row& job : out.jobs) jobs[job.at("job_id")] = job;
  ASSERT_FALSE(out.runs.empty());
  struct Change {
    int64_t time_s;
    int64_t chips;  // + at start, - at end
  };
  std::map<std::string, std::vector<Change>> per_node;
  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> per_job;
  for (const Row& run : out.runs) {
    const Row& job = jobs.at(run.at("job_id"));
    const int64_t start_s = std::stoll(run.at("start_s"));
    const int64_t end_s = std::stoll(run.at("end_s"));
    const int64_t chips = std::stoll(job.at("chips"));
    ASSERT_LE(start_s, end_s);
    ASSERT_GE(start_s, std::stoll(job.at("submit_s"))) << "started before it was submitted";
    int64_t placed = 0;
    for (const auto& [node_name, node_chips] : ParsePlacement(run.at("placement"))) {
      const auto node = cluster.FindNode(node_name);
      ASSERT_TRUE(node.has_value()) << node_name;
      ASSERT_EQ(cluster.nodes()[*node].state, cluster::NodeState::kUp) << node_name;
      const int node_size = cluster.pools()[cluster.nodes()[*node].pool].chips_per_node;
      if (chips >= node_size) {
        ASSERT_EQ(node_chips, node_size) << "a gang of whole nodes";
      }
      placed += node_chips;
      // The whole gang starts and ends together: one start and end for all its chips.
      per_node[node_name].push_back({start_s, node_chips});
      per_node[node_name].push_back({end_s, -node_chips});
    }
    ASSERT_EQ(placed, chips) << run.at("job_id");
    per_job[run.at("job_id")].emplace_back(start_s, end_s);
  }
  for (auto& [node_name, changes] : per_node) {
    std::sort(changes.begin(), changes.end(), [](const Change& a, const Change& b) {
      return a.time_s != b.time_s ? a.time_s < b.time_s : a.chips < b.chips;  // ends first
    });
    const int node_size =
        cluster.pools()[cluster.nodes()[*cluster.FindNode(node_name)].pool].chips_per_node;
    int64_t held = 0;
    for (const Change& change : changes) {
      held += change.chips;
      ASSERT_LE(held, node_size) << node_name << " over-committed at " << change.time_s;
      ASSERT_GE(held, 0);
    }
  }
  for (const auto& [job_id, runs] : per_job) {
    for (size_t idx = 1; idx < runs.size(); ++idx)
      ASSERT_LE(runs[idx - 1].second, runs[idx].first) << job_id;
  }
  // The bad jobs are in jobs.csv, rejected, with their reasons.
  for (const char* id : {"s0000005", "s0000015", "s0000025", "s0000035"}) {
    EXPECT_EQ(jobs.at(id).at("state"), "rejected") << id;
    EXPECT_FALSE(jobs.at(id).at("reason").empty()) << id;
  }
  EXPECT_NE(jobs.at("s0000015").at("reason").find("job_too_large"), std::string::npos);
  EXPECT_NE(jobs.at("s0000025").at("reason").find("unknown_accelerator"), std::string::npos);
  EXPECT_NE(jobs.at("s0000035").at("reason").find("invalid_allocation_size"), std::string::npos);
  // Every policy had work to do: jobs waited, and under preemption some yielded.
  const sim::Summary summary = sim::Summarize(*out.sim);
  EXPECT_GT(summary.wait_p99_s, 0);
  if (GetParam() == "fairshare+preempt") {
    EXPECT_GT(summary.preemptions, 0);
    int64_t preempted_rows = 0;
    for (const Row& run : out.runs) preempted_rows += run.at("ended_by") == "preempted" ? 1 : 0;
    EXPECT_EQ(preempted_rows, summary.preemptions);
  }
  EXPECT_TRUE(std::filesystem::exists(dir + "/summary.json"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/runs.csv.partial"));
}

TEST_P(SimulateTest, LedgerConservesCreditsAndChargesExactlyWhatRan) {
  const cluster::Cluster cluster = Mixed();
  const std::string dir = ::testing::TempDir() + "/atrium_ledger_" + GetParam();
  RunOutput out = Simulate(cluster, MixedWorkload(cluster), GetParam(), dir);
  const ledger::Ledger& ledger = out.sim->ledger();
  ASSERT_TRUE(ledger.Verify().ok());
  __int128 sum = 0;
  ledger.ForEachAccount([&](const ledger::Account& account) {
    sum += account.balance().micro();
    EXPECT_TRUE(account.debits_pending.is_zero()) << "a hold was left open";
  });
  EXPECT_EQ(sum, 0);
  std::map<std::string, Row> jobs;
  for (const Row& job : out.jobs) jobs[job.at("job_id")] = job;
  std::map<std::string, int64_t> expected_job;
  std::map<std::string, int64_t> expected_grant;
  int64_t expected_total = 0;
  for (const Row& run : out.runs) {
    const Row& job = jobs.at(run.at("job_id"));
    const Credits price =
        cluster.accelerators()[*cluster.FindAccelerator(job.at("accelerator"))].price_per_chip_hour;
    const auto cost = UsageCost(std::stoll(job.at("chips")),
                                std::stoll(run.at("end_s")) - std::stoll(run.at("start_s")), price);
    ASSERT_TRUE(cost.ok());
    expected_job[job.at("job_id")] += cost->micro();
    expected_grant[job.at("grant")] += cost->micro();
    expected_total += cost->micro();
  }
  const sched::Scheduler& sched = out.sim->scheduler();
  for (sched::JobId id = 0; id < sched.job_count(); ++id) {
    const auto found = expected_job.find(sched.job(id).id);
    EXPECT_EQ(sched.job(id).charged.micro(), found == expected_job.end() ? 0 : found->second)
        << sched.job(id).id;
  }
  for (const sched::GrantInfo& grant : sched.grants()) {
    EXPECT_EQ(ledger.FindAccount(grant.account)->debits_posted.micro(), expected_grant[grant.name])
        << grant.name;
  }
  EXPECT_EQ(ledger.FindAccount(sched::SchedulerConfig{}.revenue_account)->credits_posted.micro(),
            expected_total);
  EXPECT_EQ(sim::Summarize(*out.sim).credits_charged_micro, expected_total);
}

// Capacity reservations in the simulator (docs/reservations.md): seeded random bookings and
// maintenance over a random workload, under every policy (preemption included). runs.csv
// keeps the cluster's invariants (no node over-committed, gangs of whole nodes, no run
// before its submission, a job's runs one after another), the ledger conserves credits
// with no hold left open, and no run of anyone but a booking's owner touches its nodes
// inside its window (maintenance: nobody's); the owners' runs there end by its end.
TEST_P(SimulateTest, RandomRunsWithCapacityReservations) {
  const cluster::Cluster cluster = Mixed();
  int64_t owner_runs_total = 0;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto workload = *sim::GenerateSynthetic(
        cluster, {.jobs = 500, .load = 1.2, .seed = seed, .grants = 6, .duration_median_s = 900});
    std::vector<std::string> grants;
    for (const sched::JobSpec& job : workload.jobs) {
      if (std::find(grants.begin(), grants.end(), job.grant) == grants.end()) {
        grants.push_back(job.grant);
      }
    }
    const int64_t horizon_s = workload.jobs.back().submit_s;
    std::mt19937_64 rng(seed);
    const auto pick = [&](int64_t low, int64_t high) {
      return std::uniform_int_distribution<int64_t>(low, high)(rng);
    };
    std::vector<sim::BookingSpec> bookings;
    for (int count = 0; count < 25; ++count) {
      sim::BookingSpec spec;
      spec.booked_at_s = pick(0, horizon_s);
      spec.request.start_s = spec.booked_at_s + pick(0, 4 * 3600);
      spec.request.end_s = spec.request.start_s + pick(600, 3 * 3600);
      spec.request.grant =
          pick(0, 4) == 0
              ? ""
              : grants[static_cast<size_t>(pick(0, static_cast<int64_t>(grants.size()) - 1))];
      spec.request.accelerator = pick(0, 5) == 0 ? "h100" : "trn1";
      spec.request.nodes = pick(1, 3);
      spec.request.one_group = pick(0, 1) == 1;
      bookings.push_back(std::move(spec));
    }
    std::string dir =
        ::testing::TempDir() + "/atrium_book_" + std::to_string(seed) + "_" + GetParam();
    std::replace(dir.begin(), dir.end(), '+', '_');
    RunOutput out = Simulate(cluster, std::move(workload), GetParam(), dir, bookings);
    const sched::Scheduler& sched = out.sim->scheduler();
    ASSERT_GT(sched.bookings().size(), 10u);
    std::map<std::string, Row> jobs;
    for (const Row& job : out.jobs) jobs[job.at("job_id")] = job;
    std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> per_node;  // (time, +-chips)
    std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> per_job;
    int64_t owner_runs_inside = 0;
    for (const Row& run : out.runs) {
      const Row& job = jobs.at(run.at("job_id"));
      const int64_t start_s = std::stoll(run.at("start_s"));
      const int64_t end_s = std::stoll(run.at("end_s"));
      const int64_t chips = std::stoll(job.at("chips"));
      ASSERT_LE(start_s, end_s);
      ASSERT_GE(start_s, std::stoll(job.at("submit_s")));
      int64_t placed = 0;
      for (const auto& [node_name, node_chips] : ParsePlacement(run.at("placement"))) {
        const auto node = cluster.FindNode(node_name);
        ASSERT_TRUE(node.has_value()) << node_name;
        const int node_size = cluster.pools()[cluster.nodes()[*node].pool].chips_per_node;
        if (chips >= node_size) {
          ASSERT_EQ(node_chips, node_size);
        }
        placed += node_chips;
        per_node[node_name].emplace_back(start_s, node_chips);
        per_node[node_name].emplace_back(end_s, -node_chips);
        for (const sched::CapacityBooking& booking : sched.bookings()) {
          if (booking.state == sched::BookingState::kCancelled ||
              std::find(booking.nodes.begin(), booking.nodes.end(), *node) == booking.nodes.end()) {
            continue;
          }
          const int64_t window_end = booking.closed_at_s >= 0 ? booking.closed_at_s : booking.end_s;
          if (start_s >= window_end || booking.start_s >= end_s) continue;
          const bool owner =
              booking.grant >= 0 &&
              sched.grants()[static_cast<size_t>(booking.grant)].name == job.at("grant");
          ASSERT_TRUE(owner && start_s >= booking.start_s && end_s <= booking.end_s)
              << "run of " << run.at("job_id") << " [" << start_s << ", " << end_s << ") on "
              << node_name << " inside booking " << booking.id << " [" << booking.start_s << ", "
              << booking.end_s << ")";
          ++owner_runs_inside;
        }
      }
      ASSERT_EQ(placed, chips) << run.at("job_id");
      per_job[run.at("job_id")].emplace_back(start_s, end_s);
    }
    for (auto& [node_name, changes] : per_node) {
      std::sort(changes.begin(), changes.end());  // at one time, ends (negative) first
      const int node_size =
          cluster.pools()[cluster.nodes()[*cluster.FindNode(node_name)].pool].chips_per_node;
      int64_t held = 0;
      for (const auto& [time_s, delta] : changes) {
        held += delta;
        ASSERT_LE(held, node_size) << node_name << " over-committed at " << time_s;
        ASSERT_GE(held, 0);
      }
    }
    for (auto& [job_id, runs] : per_job) {
      std::sort(runs.begin(), runs.end());
      for (size_t idx = 1; idx < runs.size(); ++idx) {
        ASSERT_LE(runs[idx - 1].second, runs[idx].first) << job_id;
      }
    }
    // The ledger: conserved, every booking's hold posted at its start, none left open.
    const ledger::Ledger& ledger = out.sim->ledger();
    ASSERT_TRUE(ledger.Verify().ok());
    ledger.ForEachAccount([&](const ledger::Account& account) {
      EXPECT_TRUE(account.debits_pending.is_zero()) << "a hold was left open";
    });
    for (const sched::CapacityBooking& booking : sched.bookings()) {
      EXPECT_EQ(booking.state, sched::BookingState::kEnded) << booking.id;
      EXPECT_EQ(booking.charged, booking.price) << booking.id;
    }
    const sim::Summary summary = sim::Summarize(*out.sim);
    ASSERT_TRUE(summary.capacity_reservations.any);
    EXPECT_EQ(summary.capacity_reservations.made, static_cast<int64_t>(sched.bookings().size()));
    EXPECT_EQ(summary.ToJson()["capacity_reservations"]["made"],
              static_cast<int64_t>(sched.bookings().size()));
    owner_runs_total += owner_runs_inside;
  }
  EXPECT_GT(owner_runs_total, 0) << "no owner ran inside a booking: the test checks nothing";
}

INSTANTIATE_TEST_SUITE_P(Policies, SimulateTest,
                         ::testing::Values("fifo", "backfill", "fairshare", "fairshare+preempt"),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::replace(name.begin(), name.end(), '+', '_');
                           return name;
                         });

// Reservations and backfill, with walltimes exact (duration == walltime) so that the
// reserved start is a promise that can be checked.
cluster::Cluster EightNodes() {
  cluster::ClusterBuilder builder("eight");
  const uint32_t accel =
      builder.AddAccelerator({.name = "trn1", .price_per_chip_hour = *Credits::Parse("1.34375")});
  const uint32_t type = builder.AddNodeType(
      {.name = "trn", .accelerator = accel, .chips = 16, .allocation_sizes = {1, 4, 8}});
  EXPECT_TRUE(builder.AddPool("trn", type, 8, 4, 1).ok());
  return *std::move(builder).Build();
}

sched::JobSpec Exact(std::string id, int64_t submit_s, int64_t chips, int64_t walltime_s) {
  return {.id = std::move(id),
          .grant = "g",
          .chips = chips,
          .submit_s = submit_s,
          .duration_s = walltime_s,
          .walltime_s = walltime_s};
}

int64_t StartOf(const sim::Simulator& sim, const std::string& id) {
  for (sched::JobId job = 0; job < sim.scheduler().job_count(); ++job) {
    if (sim.scheduler().job(job).id == id) return sim.scheduler().job(job).first_start_s;
  }
  return -1;
}

TEST(ReservationTest, BackfillNeverDelaysTheReservedJobHandBuilt) {
  const cluster::Cluster cluster = EightNodes();
  for (const char* policy : {"backfill", "fairshare"}) {
    // Without backfill candidates: the 128-chip job starts when the 6-node job ends.
    sim::Workload alone;
    alone.jobs = {Exact("wide", 0, 96, 1000), Exact("big", 1, 128, 500)};
    sim::Simulator base(cluster, {.policy = policy, .pass_interval_s = 0});
    ASSERT_TRUE(base.Run(alone, nullptr, nullptr).ok());
    ASSERT_EQ(StartOf(base, "big"), 1000);
    // With a stream of small jobs, some short enough to fit before 1000, some not.
    sim::Workload busy = alone;
    for (int idx = 0; idx < 40; ++idx) {
      busy.jobs.push_back(Exact("small" + std::to_string(idx), 2 + idx * 20,
                                idx % 3 == 0 ? 16 : (idx % 3 == 1 ? 8 : 1), 100 + idx * 37));
    }
    sim::Simulator sim(cluster, {.policy = policy, .pass_interval_s = 0});
    ASSERT_TRUE(sim.Run(busy, nullptr, nullptr).ok());
    EXPECT_EQ(StartOf(sim, "big"), 1000) << policy;
    // Backfill did happen: some small job ran on the idle nodes before 1000.
    int64_t backfilled = 0;
    for (int idx = 0; idx < 40; ++idx) {
      backfilled += StartOf(sim, "small" + std::to_string(idx)) < 1000 ? 1 : 0;
    }
    EXPECT_GT(backfilled, 0) << policy;
  }
}

TEST(ReservationTest, NoReservationIsEverDelayedRandomScenarios) {
  const cluster::Cluster cluster = EightNodes();
  const int64_t sizes[] = {1, 4, 8, 16, 32, 64, 128};
  for (uint64_t seed = 1; seed <= 25; ++seed) {
    std::mt19937_64 rng(seed);
    sim::Workload workload;
    for (int idx = 0; idx < 80; ++idx) {
      workload.jobs.push_back(Exact("j" + std::to_string(idx), static_cast<int64_t>(rng() % 20000),
                                    sizes[rng() % 7], 100 + static_cast<int64_t>(rng() % 5000)));
    }
    for (const char* policy : {"backfill", "fairshare"}) {
      sim::Simulator sim(cluster, {.policy = policy, .pass_interval_s = 0});
      ASSERT_TRUE(sim.Run(workload, nullptr, nullptr).ok());
      const sched::Scheduler& sched = sim.scheduler();
      for (const sched::ReservationRecord& reservation : sched.reservation_log()) {
        const sched::Job& job = sched.job(reservation.job);
        ASSERT_GE(job.first_start_s, 0);
        ASSERT_LE(job.first_start_s, reservation.start_s)
            << "seed " << seed << " policy " << policy << " job " << job.id << " reserved at "
            << reservation.made_at_s;
      }
      ASSERT_FALSE(sched.reservation_log().empty()) << "seed " << seed << ": scenario too easy";
    }
  }
}

TEST(BadInputTest, AFailedRunLeavesNoFinishedOutputs) {
  const cluster::Cluster cluster = EightNodes();
  const std::string dir = ::testing::TempDir() + "/atrium_failed_run";
  std::filesystem::remove_all(dir);
  auto writer = sim::OutputWriter::Open(dir);
  ASSERT_TRUE(writer.ok());
  sim::Simulator sim(cluster, {.policy = "lottery"});
  sim::Workload workload;
  workload.jobs = {Exact("a", 0, 1, 10)};
  EXPECT_EQ(sim.Run(workload, nullptr, writer->get()).code(), ErrorCode::kUnknownPolicy);
  for (const char* name : {"jobs.csv", "runs.csv", "summary.json"}) {
    EXPECT_FALSE(std::filesystem::exists(dir + "/" + name)) << name;
  }
}

}  // namespace
}  // namespace atrium
