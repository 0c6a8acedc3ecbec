#include "sched/fairshare.h"

#include <cmath>

#include "base/assert.h"

namespace atrium::sched {

uint32_t FairShare::AddGrant(double entitlement) {
  ATRIUM_ASSERT(entitlement >= 0, "negative entitlement");
  grants_.push_back(Grant{.entitlement = entitlement});
  entitlement_total_ += entitlement;
  return static_cast<uint32_t>(grants_.size() - 1);
}

void FairShare::Advance(Grant& grant, int64_t now_s) const {
  if (now_s <= grant.last_s) return;
  const auto elapsed = static_cast<double>(now_s - grant.last_s);
  // Use accrued during the interval is counted undecayed; intervals are short (a pass).
  grant.usage = grant.usage * std::exp2(-elapsed / half_life_s_) +
                static_cast<double>(grant.running_chips) * elapsed;
  grant.last_s = now_s;
}

void FairShare::Start(uint32_t grant, int64_t chips, int64_t now_s) {
  Advance(grants_[grant], now_s);
  grants_[grant].running_chips += chips;
}

void FairShare::Stop(uint32_t grant, int64_t chips, int64_t now_s) {
  Advance(grants_[grant], now_s);
  grants_[grant].running_chips -= chips;
  ATRIUM_ASSERT(grants_[grant].running_chips >= 0, "grant stopped more chips than it ran");
}

void FairShare::Tick(int64_t now_s) {
  double usage_total = 0;
  for (Grant& grant : grants_) {
    Advance(grant, now_s);
    usage_total += grant.usage;
  }
  for (Grant& grant : grants_) {
    const double share = entitlement_total_ > 0 ? grant.entitlement / entitlement_total_ : 0.0;
    const double used = usage_total > 0 ? grant.usage / usage_total : 0.0;
    grant.factor = share > 0 ? std::exp2(-used / share) : 0.0;
  }
}

}  // namespace atrium::sched
