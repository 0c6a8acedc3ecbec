// Priority policies: how the waiting jobs are ordered at each pass. A policy is a plain
// class behind this small interface, built by name in policy.cc. Higher runs first; ties
// go to the earlier submission, then the lower job id, so the order is total and the
// scheduler deterministic.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "sched/fairshare.h"
#include "sched/job.h"

namespace atrium::sched {

class PriorityPolicy {
 public:
  virtual ~PriorityPolicy() = default;
  virtual std::string_view name() const = 0;
  virtual double Priority(const Job& job, const FairShare& fair_share, int64_t now_s) const = 0;
};

// First come, first served: the earlier submission first.
class FifoPriority final : public PriorityPolicy {
 public:
  std::string_view name() const override { return "fifo"; }
  double Priority(const Job& job, const FairShare& fair_share, int64_t now_s) const override;
};

// Weighted sum of the grant's fair-share factor, the job's age and its class, after
// Slurm's multifactor plugin. The weights are tunables with their reasons.
struct FairShareWeights {
  // Fair share dominates: a grant far above its share waits behind one below it.
  double fair_share = 10000;
  // Age breaks the tie between grants and, given time, lifts any job: a job waiting
  // age_full_s gains a tenth of the fair-share range, so nothing starves forever.
  double age = 1000;
  int64_t age_full_s = int64_t{7} * 24 * 3600;
  // Research before education before preemptible, by a little less than age's range.
  double job_class = 500;
};

class FairSharePriority final : public PriorityPolicy {
 public:
  explicit FairSharePriority(FairShareWeights weights = {}) : weights_(weights) {}
  std::string_view name() const override { return "fairshare"; }
  double Priority(const Job& job, const FairShare& fair_share, int64_t now_s) const override;

 private:
  FairShareWeights weights_;
};

}  // namespace atrium::sched
