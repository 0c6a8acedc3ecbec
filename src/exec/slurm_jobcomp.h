// The jobcomp/filetxt record (Slurm's JobCompType=jobcomp/filetxt, written to JobCompLoc):
// one line per ended job, appended by slurmctld when the job ends, kept after Slurm has
// purged the job from its memory (MinJobAge). The Slurm executor reads it for a run it
// submitted that squeue no longer lists, so a run that ended while the service was down
// and was purged is settled with its real end rather than as lost.
//
// A line, as Slurm 22.05 writes it (one line; times are slurmctld's local time, 1 s):
//   JobId=12 UserId=root(0) GroupId=root(0) Name=atrium-J3-1 JobState=COMPLETED
//   Partition=atrium TimeLimit=2 StartTime=2024-05-01T10:00:01 EndTime=2024-05-01T10:00:03
//   NodeList=sn1 NodeCnt=1 ProcCnt=1 WorkDir=/data/jobs/J3 ReservationName= Tres=cpu=1
//   Account= QOS= WcKey= Cluster=unknown SubmitTime=... EligibleTime=...
//   DerivedExitCode=0:0 ExitCode=0:0
// ExitCode is EXIT:SIGNAL of the batch script's wait status.
//
//   JobcompLog log("/var/log/slurm/jobcomp.log");
//   log.CatchUp(keep);                      // what slurmctld appended since the last call
//   if (auto record = log.Take(slurm_id)) ...
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace atrium::exec {

// One ended job of the jobcomp record: what the executor needs of it.
struct JobcompRecord {
  int64_t id = 0;
  std::string name;
  std::string state;    // COMPLETED, FAILED, TIMEOUT, CANCELLED, NODE_FAIL ...
  int64_t start_s = 0;  // 0: "Unknown" (never started)
  int64_t end_s = 0;
  int exit_code = 0;  // ExitCode's EXIT
  int signal = 0;     // ExitCode's SIGNAL
  std::string work_dir;
  std::string nodes;
  // The wait status squeue would report (exit_code << 8, or the signal).
  int64_t WaitStatus() const;
};

// Parses one line (without its newline). Times are read in this process's time zone, as
// slurmctld wrote them in its own: the service must run in slurmctld's TZ. kParseError if
// the line lacks JobId, Name, JobState, EndTime or ExitCode, or a value is malformed.
Result<JobcompRecord> ParseJobcompLine(std::string_view line);

// Reads JobCompLoc incrementally and keeps the records a caller wants, by Slurm job id.
// Bounded: at most records_max records are kept (the oldest ids are dropped first), and a
// line longer than kJobcompLineBytesMax is skipped.
inline constexpr size_t kJobcompLineBytesMax = 64 * 1024;
// A restart settles at most this many purged runs from the record; older ones beyond it
// end lost. Each kept record is ~200 B, so this is a few MB at most.
inline constexpr size_t kJobcompRecordsMaxDefault = 16'384;

class JobcompLog {
 public:
  explicit JobcompLog(std::string path, size_t records_max = kJobcompRecordsMaxDefault);
  // Reads the lines appended since the last call (all of them the first time, and again
  // from the start when the file was rotated: it is shorter than what was read, or another
  // file); keeps each parsed record that `keep` accepts. A file that cannot be opened
  // changes nothing. Returns the number of records kept by this call.
  size_t CatchUp(const std::function<bool(const JobcompRecord&)>& keep);
  // The kept record of a Slurm job id, removed from the log's memory.
  std::optional<JobcompRecord> Take(int64_t slurm_id);
  size_t kept() const { return records_.size(); }

 private:
  std::string path_;
  size_t records_max_;
  uint64_t offset_ = 0;  // bytes of whole lines read
  uint64_t inode_ = 0;
  std::map<int64_t, JobcompRecord> records_;
};

}  // namespace atrium::exec
