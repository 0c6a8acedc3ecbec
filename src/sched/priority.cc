#include "sched/priority.h"

#include <algorithm>

namespace atrium::sched {

double FifoPriority::Priority(const Job& job, const FairShare& /*fair_share*/,
                              int64_t /*now_s*/) const {
  return -static_cast<double>(job.submit_s);
}

double FairSharePriority::Priority(const Job& job, const FairShare& fair_share,
                                   int64_t now_s) const {
  const double age = std::min(1.0, static_cast<double>(std::max<int64_t>(0, now_s - job.submit_s)) /
                                       static_cast<double>(weights_.age_full_s));
  double class_factor = 0;
  switch (job.job_class) {
    case cluster::JobClass::kResearch:
      class_factor = 1.0;
      break;
    case cluster::JobClass::kEducation:
      class_factor = 0.5;
      break;
    case cluster::JobClass::kPreemptible:
      class_factor = 0.0;
      break;
  }
  return weights_.fair_share * fair_share.Factor(job.grant) + weights_.age * age +
         weights_.job_class * class_factor;
}

}  // namespace atrium::sched
