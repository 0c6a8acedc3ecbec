// The scheduler's snapshot codec: a decoded scheduler (with a decoded copy of its
// ledger) encodes to the same bytes and then decides exactly as the original under the
// same further calls; truncated or altered bytes are refused or decode to a scheduler
// that is well-formed, never a crash.
#include <gtest/gtest.h>

#include <random>

#include "sched/scheduler.h"

namespace atrium::sched {
namespace {

using cluster::JobClass;

// Two pools: 8 Trainium nodes of 16 chips in 2 groups, 4 GPU nodes of 8 (any size).
cluster::Cluster TwoPools() {
  cluster::ClusterBuilder builder("two");
  const uint32_t trn =
      builder.AddAccelerator({.name = "trn1", .price_per_chip_hour = *Credits::Parse("1.34375")});
  const uint32_t gpu =
      builder.AddAccelerator({.name = "h100", .price_per_chip_hour = *Credits::Parse("4.10")});
  const uint32_t trn_type = builder.AddNodeType(
      {.name = "trn", .accelerator = trn, .chips = 16, .allocation_sizes = {1, 4, 8}});
  const uint32_t gpu_type = builder.AddNodeType({.name = "gpu", .accelerator = gpu, .chips = 8});
  EXPECT_TRUE(builder.AddPool("trn", trn_type, 8, 4, 1).ok());
  EXPECT_TRUE(builder.AddPool("gpu", gpu_type, 4, 1, 4).ok());
  return *std::move(builder).Build();
}

// One random step on `sched`, drawn from `rng`; returns a text of what it answered.
std::string Step(Scheduler& sched, std::mt19937_64& rng, int64_t* now_s, int* next_job) {
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  *now_s += uniform(0, 600);
  std::string out;
  switch (uniform(0, 9)) {
    case 0:
    case 1:
    case 2: {
      const bool gpu = uniform(0, 2) == 0;
      const int64_t sizes[] = {1, 4, 8, 16, 32, 64};
      const JobId id = sched.Submit({.id = "j" + std::to_string((*next_job)++),
                                     .grant = "g" + std::to_string(uniform(0, 3)),
                                     .job_class = static_cast<JobClass>(uniform(0, 2)),
                                     .accelerator = gpu ? "h100" : "trn1",
                                     .chips = gpu ? uniform(1, 8) : sizes[uniform(0, 5)],
                                     .submit_s = *now_s,
                                     .duration_s = 100,
                                     .walltime_s = uniform(60, 20'000)},
                                    *now_s);
      out = "submit " + std::to_string(id) + " " + std::string(ToString(sched.job(id).state));
      break;
    }
    case 3:
    case 4:
    case 5: {
      const PassResult pass = sched.Pass(*now_s);
      out = "pass";
      for (const JobId id : pass.started) out += " s" + std::to_string(id);
      for (const PreemptNotice& notice : pass.preempted) {
        out += " p" + std::to_string(notice.job) + "@" + std::to_string(notice.at_s);
      }
      out += " w" + std::to_string(pass.wake_at_s) + " i" + std::to_string(pass.idle_fit_chips);
      break;
    }
    case 6:
    case 7: {
      // End a running job within its run.
      if (sched.job_count() == 0) break;
      const auto id = static_cast<JobId>(uniform(0, static_cast<int64_t>(sched.job_count()) - 1));
      const Job& job = sched.job(id);
      if (job.state != JobState::kRunning) break;
      const int64_t end_s = std::max(job.run_start_s, std::min(*now_s, job.expected_end_s()));
      const RunEnd how = end_s == job.preempt_at_s ? RunEnd::kPreempted : RunEnd::kCompleted;
      sched.Finish(id, end_s, how);
      out = "finish " + std::to_string(id) + " " + std::string(ToString(sched.job(id).state));
      break;
    }
    case 8: {
      if (sched.job_count() == 0) break;
      const auto id = static_cast<JobId>(uniform(0, static_cast<int64_t>(sched.job_count()) - 1));
      out = "cancel " + std::to_string(sched.Cancel(id, *now_s).ok());
      break;
    }
    case 9: {
      const auto node = static_cast<uint32_t>(uniform(0, 11));
      const auto state = static_cast<cluster::NodeState>(uniform(0, 2));
      out = "node " + std::to_string(sched.SetNodeState(node, state).ok());
      break;
    }
  }
  return out;
}

std::unique_ptr<Scheduler> Build(const cluster::Cluster& cluster, ledger::Ledger& ledger,
                                 std::string_view policy) {
  auto sched = std::make_unique<Scheduler>(cluster, ledger, *MakePolicy(policy),
                                           SchedulerConfig{.preempt_wait_s = 1800});
  for (int grant = 0; grant < 4; ++grant) {
    EXPECT_TRUE(sched
                    ->AddGrant("g" + std::to_string(grant), Credits::FromWhole(200'000 >> grant),
                               1.0 + grant, static_cast<JobClass>(grant % 3), 0)
                    .ok());
  }
  return sched;
}

class SchedulerCodec : public ::testing::TestWithParam<std::string> {};

TEST_P(SchedulerCodec, DecodedSchedulerDecidesLikeTheOriginal) {
  const cluster::Cluster cluster = TwoPools();
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ledger::Ledger ledger;
    auto sched = Build(cluster, ledger, GetParam());
    std::mt19937_64 rng(seed);
    int64_t now_s = 0;
    int next_job = 0;
    for (int step = 0; step < 300; ++step) Step(*sched, rng, &now_s, &next_job);

    std::string bytes;
    sched->Encode(&bytes);
    std::string ledger_bytes;
    ledger.Encode(&ledger_bytes);
    auto ledger_copy = ledger::Ledger::Decode(ledger_bytes);
    ASSERT_TRUE(ledger_copy.ok());
    auto decoded = Scheduler::Decode(bytes, cluster, *ledger_copy);
    ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
    std::string again;
    (*decoded)->Encode(&again);
    ASSERT_EQ(again, bytes);
    // The reservation caches are not in the bytes: rebuilt, they equal a recompute.
    EXPECT_TRUE((*decoded)->CachesConsistent());

    // The same further steps give the same answers and the same state.
    std::mt19937_64 rng_a(seed * 77);
    std::mt19937_64 rng_b(seed * 77);
    int64_t now_a = now_s;
    int64_t now_b = now_s;
    int next_a = next_job;
    int next_b = next_job;
    for (int step = 0; step < 300; ++step) {
      ASSERT_EQ(Step(*sched, rng_a, &now_a, &next_a), Step(**decoded, rng_b, &now_b, &next_b))
          << "step " << step;
    }
    std::string live_end;
    sched->Encode(&live_end);
    std::string decoded_end;
    (*decoded)->Encode(&decoded_end);
    EXPECT_EQ(live_end, decoded_end);
    EXPECT_TRUE(sched->CachesConsistent());
    EXPECT_TRUE((*decoded)->CachesConsistent());
    std::string ledger_a;
    ledger.Encode(&ledger_a);
    std::string ledger_b;
    ledger_copy->Encode(&ledger_b);
    EXPECT_EQ(ledger_a, ledger_b);
    EXPECT_GT(sched->stats().passes, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, SchedulerCodec,
                         ::testing::Values("fifo", "backfill", "conservative", "fairshare",
                                           "fairshare+preempt"),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::replace(name.begin(), name.end(), '+', '_');
                           return name;
                         });

TEST(SchedulerCodecBytes, TruncatedOrAlteredBytesAreRefusedOrWellFormed) {
  const cluster::Cluster cluster = TwoPools();
  ledger::Ledger ledger;
  auto sched = Build(cluster, ledger, "fairshare+preempt");
  std::mt19937_64 rng(9);
  int64_t now_s = 0;
  int next_job = 0;
  for (int step = 0; step < 200; ++step) Step(*sched, rng, &now_s, &next_job);
  std::string bytes;
  sched->Encode(&bytes);
  for (size_t size = 0; size < bytes.size(); size += 1 + size / 16) {
    ledger::Ledger scratch;
    auto decoded = Scheduler::Decode(std::string_view(bytes).substr(0, size), cluster, scratch);
    ASSERT_FALSE(decoded.ok()) << "a prefix of " << size << " bytes decoded";
    EXPECT_EQ(decoded.code(), ErrorCode::kCorruption);
  }
  // Altered bytes: refused, or decoded into a scheduler that encodes again.
  for (int trial = 0; trial < 400; ++trial) {
    std::string altered = bytes;
    const size_t at = std::uniform_int_distribution<size_t>(0, altered.size() - 1)(rng);
    altered[at] = static_cast<char>(altered[at] ^ (1 << (trial % 8)));
    ledger::Ledger scratch;
    auto decoded = Scheduler::Decode(altered, cluster, scratch);
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.code(), ErrorCode::kCorruption);
      continue;
    }
    std::string out;
    (*decoded)->Encode(&out);
    EXPECT_FALSE(out.empty());
  }
  // Another version is refused by name.
  std::string other = bytes;
  other[4] = 9;
  ledger::Ledger scratch;
  auto refused = Scheduler::Decode(other, cluster, scratch);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("unsupported version"), std::string::npos);
}

}  // namespace
}  // namespace atrium::sched
