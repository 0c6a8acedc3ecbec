#include "sim/traces.h"

#include <gtest/gtest.h>

#include "sim/internal/csv.h"

namespace atrium::sim {
namespace {

std::string Data(const char* name) {
  return std::string(ATRIUM_SOURCE_DIR) + "/src/sim/testdata/" + name;
}

struct Expected {
  std::string id;
  std::string grant;
  int64_t chips;
  int64_t submit_s;
  int64_t duration_s;
  int64_t walltime_s;
};

void ExpectJobs(const TraceImport& import, const std::vector<Expected>& expected) {
  ASSERT_EQ(import.workload.jobs.size(), expected.size());
  for (size_t idx = 0; idx < expected.size(); ++idx) {
    const sched::JobSpec& job = import.workload.jobs[idx];
    EXPECT_EQ(job.id, expected[idx].id);
    EXPECT_EQ(job.grant, expected[idx].grant) << job.id;
    EXPECT_EQ(job.chips, expected[idx].chips) << job.id;
    EXPECT_EQ(job.submit_s, expected[idx].submit_s) << job.id;
    EXPECT_EQ(job.duration_s, expected[idx].duration_s) << job.id;
    EXPECT_EQ(job.walltime_s, expected[idx].walltime_s) << job.id;
    EXPECT_TRUE(job.accelerator.empty());
    EXPECT_FALSE(job.class_given);
  }
}

TEST(TracesTest, PhillyExcerpt) {
  const auto import = ReadPublicTrace("philly", Data("philly_cluster_job_log.json"), "");
  ASSERT_TRUE(import.ok()) << import.error().ToString();
  EXPECT_EQ(import->skipped, 2);  // no attempts; an attempt without an end
  ExpectJobs(*import, {{"application_1506638472019_10243", "103959", 1, 0, 30, 3600},
                       {"application_1506638472019_10238", "6214e9", 4, 60, 4630, 7200},
                       // Two attempts: their run times add up; the widest attempt counts.
                       {"application_1506638472019_10240", "ee9e8c", 8, 179, 6600, 7200}});
}

TEST(TracesTest, HeliosExcerpt) {
  const auto import = ReadPublicTrace("helios", Data("helios_cluster_log.csv"), "");
  ASSERT_TRUE(import.ok()) << import.error().ToString();
  EXPECT_EQ(import->skipped, 2);  // a CPU-only job; a job that never started
  ExpectJobs(*import, {{"dT5wZ8pF", "vcHm1", 2, 0, 30, 3600},
                       {"4sKeGmdQ", "vc7Bz", 8, 60, 7200, 7200},
                       {"bQ9kT2mW", "vcKp2", 16, 173, 1800, 3600}});
}

TEST(TracesTest, PaiExcerpt) {
  const auto import = ReadPublicTrace("pai", Data("pai_job_table.csv"), Data("pai_task_table.csv"));
  ASSERT_TRUE(import.ok()) << import.error().ToString();
  EXPECT_EQ(import->skipped, 2);  // no GPU planned; a task without an end
  ExpectJobs(*import, {{"8d2c5e3f1a9b0c7d6e4f", "u_11ab", 1, 0, 590, 3600},
                       {"4b4a1d7e9f7c2e0a8b6c", "u_7f31", 2, 60, 3590, 3600}});
}

TEST(TracesTest, MalformedInputNamesTheLine) {
  const auto helios = ParseHelios(
      "job_id,user,gpu_num,submit_time,start_time,end_time\nj1,u,eight,0,1,2\n", "h.csv");
  ASSERT_FALSE(helios.ok());
  EXPECT_EQ(helios.code(), ErrorCode::kTraceInvalid);
  EXPECT_NE(helios.error().message.find("h.csv:2"), std::string::npos) << helios.error().message;
  const auto no_gpu_column = ParseHelios("job_id,user,submit_time\n", "h.csv");
  EXPECT_NE(no_gpu_column.error().message.find("gpu_num"), std::string::npos);
  EXPECT_EQ(ParsePhilly("{\"not\": \"an array\"}", "p.json").code(), ErrorCode::kTraceInvalid);
  EXPECT_EQ(ParsePhilly("[{]", "p.json").code(), ErrorCode::kTraceInvalid);
  // Fields of the wrong type are refused with the job's number, not thrown (the fuzzer
  // found an end_time that was an array); the second job's vc is a number.
  const auto wrong_type = ParsePhilly(
      R"([{"jobid": "a", "vc": "v", "submitted_time": "2017-10-03 03:00:30",
           "attempts": [{"start_time": "2017-10-03 02:53:09", "end_time": [{"gpus": ["g"]}]}]}])",
      "p.json");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.code(), ErrorCode::kTraceInvalid);
  EXPECT_NE(wrong_type.error().message.find("job 1"), std::string::npos)
      << wrong_type.error().message;
  const auto vc_number = ParsePhilly(
      R"([{"jobid": "a", "vc": "v", "attempts": []}, {"jobid": "b", "vc": 7, "attempts": []}])",
      "p.json");
  ASSERT_FALSE(vc_number.ok());
  EXPECT_NE(vc_number.error().message.find("job 2"), std::string::npos)
      << vc_number.error().message;
  EXPECT_EQ(
      ParsePhilly(R"([{"jobid": "a", "submitted_time": "2017-10-03 03:00:30", "attempts": [7]}])",
                  "p.json")
          .code(),
      ErrorCode::kTraceInvalid);
  EXPECT_EQ(ParsePai("a,b\n", "", "pai").code(), ErrorCode::kTraceInvalid);
  EXPECT_EQ(ReadPublicTrace("slurm", Data("helios_cluster_log.csv"), "").code(),
            ErrorCode::kInvalidArgument);
}

TEST(TracesTest, DateTimesAreUtcSecondsSinceTheEpoch) {
  EXPECT_EQ(internal::ParseDateTime("1970-01-01 00:00:00"), 0);
  EXPECT_EQ(internal::ParseDateTime("2020-04-01 00:00:07"), 1585699207);
  EXPECT_EQ(internal::ParseDateTime("2000-03-01 12:00:00"), 951912000);
  EXPECT_FALSE(internal::ParseDateTime("None").has_value());
  EXPECT_EQ(WalltimeFor(0), 3600);
  EXPECT_EQ(WalltimeFor(3601), 7200);
}

}  // namespace
}  // namespace atrium::sim
