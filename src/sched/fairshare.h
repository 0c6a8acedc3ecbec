// FairShare: each grant's entitlement (a share of the cluster, from its awarded credits)
// against its use, with exponential decay so that old use is forgiven. Use is counted in
// chip-seconds while jobs run (lazily: a grant is brought up to date when its running
// chips change or at a scheduling pass). The factor follows Slurm's classic formula,
// 2^(-usage_share / entitlement_share): 1 for an idle grant, 0.5 for a grant that used
// exactly its share, towards 0 for one far above it.
//
// Deterministic: it reads no clock; floating point is fine here (it orders jobs, it never
// touches money).
#pragma once

#include <cstdint>
#include <vector>

namespace atrium::sched {

class FairShare {
 public:
  explicit FairShare(double half_life_s) : half_life_s_(half_life_s) {}

  uint32_t AddGrant(double entitlement);
  void Start(uint32_t grant, int64_t chips, int64_t now_s);
  void Stop(uint32_t grant, int64_t chips, int64_t now_s);
  // Brings every grant's decayed use up to now and recomputes the factors.
  void Tick(int64_t now_s);
  double Factor(uint32_t grant) const { return grants_[grant].factor; }
  double Usage(uint32_t grant) const { return grants_[grant].usage; }

 private:
  friend class Scheduler;  // its snapshot codec (scheduler_codec.cc)
  struct Grant {
    double entitlement = 0;
    double usage = 0;  // decayed chip-seconds
    int64_t last_s = 0;
    int64_t running_chips = 0;
    double factor = 1;
  };
  void Advance(Grant& grant, int64_t now_s) const;

  double half_life_s_;
  std::vector<Grant> grants_;
  double entitlement_total_ = 0;
};

}  // namespace atrium::sched
