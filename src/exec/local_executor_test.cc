// The local executor's job environment (LocalExecutor::JobEnvironment): the datasets a run
// may read reach it as ATRIUM_DATASET_<ID> (the id upper-cased, other bytes as _) and the
// ATRIUM_DATASETS list; a run without datasets gets neither.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "exec/local_executor.h"

namespace atrium::exec {
namespace {

bool Has(const std::vector<std::string>& env, const std::string& entry) {
  return std::find(env.begin(), env.end(), entry) != env.end();
}

size_t CountPrefix(const std::vector<std::string>& env, const std::string& prefix) {
  return static_cast<size_t>(std::count_if(
      env.begin(), env.end(), [&](const std::string& entry) { return entry.starts_with(prefix); }));
}

TEST(LocalExecutorEnvironment, DatasetsBecomeVariables) {
  RunSpec spec{.job = "J7", .run = 1, .argv = {"true"}, .grant = "p1/G-P1", .chips = 1};
  spec.datasets = {{"imagenet-1k", "/data/imagenet"}, {"ehr.v2:cohort", "s3://bucket/ehr"}};
  const std::vector<std::string> env = LocalExecutor::JobEnvironment(spec);
  EXPECT_TRUE(Has(env, "ATRIUM_DATASET_IMAGENET_1K=/data/imagenet"));
  EXPECT_TRUE(Has(env, "ATRIUM_DATASET_EHR_V2_COHORT=s3://bucket/ehr"));
  // The list in id order (the spec's map), ids as given.
  EXPECT_TRUE(Has(env, "ATRIUM_DATASETS=ehr.v2:cohort,imagenet-1k"));
  EXPECT_EQ(CountPrefix(env, "ATRIUM_DATASET_"), 2u);
  EXPECT_TRUE(Has(env, "ATRIUM_GRANT=p1/G-P1"));
}

TEST(LocalExecutorEnvironment, NoDatasetsNoVariables) {
  RunSpec spec{.job = "J8", .run = 1, .argv = {"true"}, .grant = "p1/G-P1", .chips = 1};
  const std::vector<std::string> env = LocalExecutor::JobEnvironment(spec);
  EXPECT_EQ(CountPrefix(env, "ATRIUM_DATASET"), 0u);
}

}  // namespace
}  // namespace atrium::exec
