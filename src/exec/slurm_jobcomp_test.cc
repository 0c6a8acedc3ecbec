// The jobcomp/filetxt record's parser and reader (slurm_jobcomp.h), on lines written the
// way Slurm 22.05's jobcomp_filetxt plugin writes them (its JOB_FORMAT, with the strings
// of /usr/lib/x86_64-linux-gnu/slurm-wlm/jobcomp_filetxt.so). tests/slurm_test.cc reads
// the lines a real slurmctld writes.
#include "exec/slurm_jobcomp.h"

#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace atrium::exec {
namespace {

namespace fs = std::filesystem;

// A line as slurmctld writes it (without the newline).
std::string Line(const std::string& id, const std::string& name, const std::string& state,
                 const std::string& start, const std::string& end, const std::string& work_dir,
                 const std::string& exit_code, const std::string& extra = "") {
  return "JobId=" + id + " UserId=root(0) GroupId=root(0) Name=" + name + " JobState=" + state +
         " Partition=atrium TimeLimit=2 StartTime=" + start + " EndTime=" + end +
         " NodeList=sn3 NodeCnt=1 ProcCnt=1 WorkDir=" + work_dir +
         " ReservationName= Tres=cpu=1,mem=300M,node=1,billing=1,gres/gpu=1 Account= QOS= "
         "WcKey= Cluster=unknown SubmitTime=2024-05-01T10:00:00 "
         "EligibleTime=2024-05-01T10:00:00" +
         extra + " DerivedExitCode=0:0 ExitCode=" + exit_code;
}

int64_t Local(int year, int month, int day, int hour, int minute, int second) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  tm.tm_isdst = -1;
  return static_cast<int64_t>(std::mktime(&tm));
}

TEST(JobcompTest, ParsesTheLinesSlurmWrites) {
  const auto done = ParseJobcompLine(Line("12", "atrium-J3-1", "COMPLETED", "2024-05-01T10:00:01",
                                          "2024-05-01T10:00:03", "/data/jobs/J3", "0:0"));
  ASSERT_TRUE(done.ok()) << done.error().ToString();
  EXPECT_EQ(done->id, 12);
  EXPECT_EQ(done->name, "atrium-J3-1");
  EXPECT_EQ(done->state, "COMPLETED");
  EXPECT_EQ(done->start_s, Local(2024, 5, 1, 10, 0, 1));
  EXPECT_EQ(done->end_s, Local(2024, 5, 1, 10, 0, 3));
  EXPECT_EQ(done->work_dir, "/data/jobs/J3");
  EXPECT_EQ(done->nodes, "sn3");
  EXPECT_EQ(done->WaitStatus(), 0);

  // Exit 3: the wait status squeue reports (3 << 8).
  const auto failed = ParseJobcompLine(Line("13", "atrium-J4-2", "FAILED", "2024-05-01T10:00:01",
                                            "2024-05-01T10:00:02", "/data/jobs/J4", "3:0"));
  ASSERT_TRUE(failed.ok()) << failed.error().ToString();
  EXPECT_EQ(failed->exit_code, 3);
  EXPECT_EQ(failed->signal, 0);
  EXPECT_EQ(failed->WaitStatus(), 768);

  // Killed by a signal; an array task (extra keys); a work directory with spaces.
  const auto killed = ParseJobcompLine(Line("14", "atrium-J5-1", "CANCELLED", "2024-12-31T23:59:59",
                                            "2025-01-01T00:00:09", "/data/my jobs/J5", "0:9",
                                            " ArrayJobId=14 ArrayTaskId=2"));
  ASSERT_TRUE(killed.ok()) << killed.error().ToString();
  EXPECT_EQ(killed->signal, 9);
  EXPECT_EQ(killed->WaitStatus(), 9);
  EXPECT_EQ(killed->work_dir, "/data/my jobs/J5");
  EXPECT_EQ(killed->end_s - killed->start_s, 10);

  // Cancelled while pending: never started.
  const auto pending = ParseJobcompLine(Line("15", "atrium-J6-1", "CANCELLED", "Unknown",
                                             "2024-05-01T10:00:02", "/data/jobs/J6", "0:0"));
  ASSERT_TRUE(pending.ok()) << pending.error().ToString();
  EXPECT_EQ(pending->start_s, 0);
}

TEST(JobcompTest, RefusesWhatIsNotARecord) {
  const std::string good = Line("12", "atrium-J3-1", "COMPLETED", "2024-05-01T10:00:01",
                                "2024-05-01T10:00:03", "/data/jobs/J3", "0:0");
  ASSERT_TRUE(ParseJobcompLine(good).ok());
  for (const std::string& bad : {
           std::string(), std::string("garbage"),
           " " + good,                                                      // not at JobId
           Line("x", "n", "COMPLETED", "Unknown", "Unknown", "/d", "0:0"),  // JobId
           Line("0", "n", "COMPLETED", "Unknown", "Unknown", "/d", "0:0"),
           Line("1", "n", "COMPLETED", "2024-05-01 10:00:01", "Unknown", "/d", "0:0"),
           Line("1", "n", "COMPLETED", "Unknown", "2024-13-01T10", "/d", "0:0"),
           Line("1", "n", "COMPLETED", "Unknown", "Unknown", "/d", "0"),
           Line("1", "n", "COMPLETED", "Unknown", "Unknown", "/d", "0:x"),
           Line("1", "n", "COMPLETED", "Unknown", "Unknown", "/d", "256:0"),
           Line("1", "n", "", "Unknown", "Unknown", "/d", "0:0"),  // no state
           good.substr(0, good.find(" ExitCode=")),                // no exit
       }) {
    EXPECT_EQ(ParseJobcompLine(bad).code(), ErrorCode::kParseError) << bad;
  }
}

TEST(JobcompTest, ReadsWhatIsAppendedKeepsWhatIsWantedAndFollowsRotation) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("jobcomp-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "jobcomp.log").string();
  const auto append = [&](const std::string& text) {
    std::ofstream out(path, std::ios::app);
    out << text;
  };
  const auto ours = [](const JobcompRecord& record) { return record.name.starts_with("atrium-"); };
  JobcompLog log(path, /*records_max=*/2);
  EXPECT_EQ(log.CatchUp(ours), 0u);  // no file yet
  append(Line("1", "atrium-J1-1", "COMPLETED", "Unknown", "2024-05-01T10:00:03", "/d/J1", "0:0") +
         "\n" + Line("2", "other", "COMPLETED", "Unknown", "2024-05-01T10:00:03", "/d", "0:0") +
         "\nnot a record\n" +
         // Being written: no newline yet, so not read until it has one.
         Line("3", "atrium-J3-1", "FAILED", "Unknown", "2024-05-01T10:00:04", "/d/J3", "1:0"));
  EXPECT_EQ(log.CatchUp(ours), 1u);
  EXPECT_FALSE(log.Take(2).has_value());  // not wanted
  EXPECT_FALSE(log.Take(3).has_value());  // not whole yet
  append("\n");
  EXPECT_EQ(log.CatchUp(ours), 1u);
  ASSERT_TRUE(log.Take(3).has_value());
  EXPECT_FALSE(log.Take(3).has_value());  // taken once
  // Bounded: the oldest ids go first.
  for (const char* id : {"4", "5", "6"}) {
    append(Line(id, "atrium-J9-1", "COMPLETED", "Unknown", "2024-05-01T10:00:03", "/d/J9", "0:0") +
           "\n");
  }
  EXPECT_EQ(log.CatchUp(ours), 3u);
  EXPECT_EQ(log.kept(), 2u);
  EXPECT_FALSE(log.Take(1).has_value());
  EXPECT_FALSE(log.Take(4).has_value());
  EXPECT_TRUE(log.Take(6).has_value());
  // Rotated (a new, shorter file): read from its start.
  fs::remove(path);
  append(Line("7", "atrium-J7-1", "TIMEOUT", "Unknown", "2024-05-01T10:00:03", "/d/J7", "0:15") +
         "\n");
  EXPECT_EQ(log.CatchUp(ours), 1u);
  const auto rotated = log.Take(7);
  ASSERT_TRUE(rotated.has_value());
  EXPECT_EQ(rotated->state, "TIMEOUT");
  EXPECT_EQ(rotated->signal, 15);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace atrium::exec
