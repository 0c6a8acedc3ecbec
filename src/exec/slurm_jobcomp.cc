#include "exec/slurm_jobcomp.h"

#include <sys/stat.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace atrium::exec {

namespace {

// The keys of a line, in the order Slurm 22.05 writes them (jobcomp_filetxt.c's
// JOB_FORMAT). The array and heterogeneous-job pairs appear only for such jobs.
constexpr std::array<std::string_view, 27> kKeys = {
    "JobId",        "UserId",          "GroupId",      "Name",       "JobState",    "Partition",
    "TimeLimit",    "StartTime",       "EndTime",      "NodeList",   "NodeCnt",     "ProcCnt",
    "WorkDir",      "ReservationName", "Tres",         "Account",    "QOS",         "WcKey",
    "Cluster",      "SubmitTime",      "EligibleTime", "ArrayJobId", "ArrayTaskId", "HetJobId",
    "HetJobOffset", "DerivedExitCode", "ExitCode"};

bool ParseInt(std::string_view text, int64_t* out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// "2024-05-01T10:00:03" in this process's time zone; "Unknown": 0.
bool ParseTime(std::string_view text, int64_t* out) {
  if (text == "Unknown" || text == "unknown" || text == "None") {
    *out = 0;
    return true;
  }
  if (text.size() != 19 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':') {
    return false;
  }
  int64_t parts[6];
  const size_t starts[6] = {0, 5, 8, 11, 14, 17};
  const size_t lengths[6] = {4, 2, 2, 2, 2, 2};
  for (size_t i = 0; i < 6; ++i) {
    if (!ParseInt(text.substr(starts[i], lengths[i]), &parts[i])) return false;
  }
  std::tm tm{};
  tm.tm_year = static_cast<int>(parts[0] - 1900);
  tm.tm_mon = static_cast<int>(parts[1] - 1);
  tm.tm_mday = static_cast<int>(parts[2]);
  tm.tm_hour = static_cast<int>(parts[3]);
  tm.tm_min = static_cast<int>(parts[4]);
  tm.tm_sec = static_cast<int>(parts[5]);
  tm.tm_isdst = -1;  // as localtime_r gave it to slurmctld
  const std::time_t t = std::mktime(&tm);
  if (t == static_cast<std::time_t>(-1)) return false;
  *out = static_cast<int64_t>(t);
  return true;
}

}  // namespace

int64_t JobcompRecord::WaitStatus() const {
  return signal != 0 ? int64_t{signal & 0x7f} : int64_t{(exit_code & 0xff) << 8};
}

Result<JobcompRecord> ParseJobcompLine(std::string_view line) {
  // Each key's value runs from its `Key=` to the next key's ` Key=`, found in order, so a
  // value that holds spaces (a work directory) is read whole.
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  size_t cursor = 0;
  size_t value_start = std::string_view::npos;
  std::string_view current;
  for (const std::string_view key : kKeys) {
    const std::string marker =
        fields.empty() && current.empty() ? std::string(key) + "=" : " " + std::string(key) + "=";
    const size_t at = line.find(marker, cursor);
    if (current.empty()) {
      if (at != 0) return MakeError(ErrorCode::kParseError, "jobcomp: a line must begin JobId=");
    } else if (at == std::string_view::npos) {
      continue;  // an optional key (ArrayJobId ...) this line does not have
    } else {
      fields.emplace_back(current, line.substr(value_start, at - value_start));
    }
    current = key;
    value_start = at + marker.size();
    cursor = value_start;
  }
  if (current.empty()) return MakeError(ErrorCode::kParseError, "jobcomp: empty line");
  std::string_view last = line.substr(value_start);
  while (!last.empty() && (last.back() == ' ' || last.back() == '\r')) last.remove_suffix(1);
  fields.emplace_back(current, last);

  JobcompRecord record;
  bool have_name = false, have_state = false, have_end = false, have_exit = false;
  for (const auto& [key, value] : fields) {
    if (key == "JobId") {
      if (!ParseInt(value, &record.id) || record.id <= 0) {
        return MakeError(ErrorCode::kParseError, fmt::format("jobcomp: JobId '{}'", value));
      }
    } else if (key == "Name") {
      record.name = value;
      have_name = true;
    } else if (key == "JobState") {
      record.state = value;
      have_state = !value.empty();
    } else if (key == "StartTime" || key == "EndTime") {
      int64_t* out = key == "StartTime" ? &record.start_s : &record.end_s;
      if (!ParseTime(value, out)) {
        return MakeError(ErrorCode::kParseError, fmt::format("jobcomp: {} '{}'", key, value));
      }
      if (key == "EndTime") have_end = true;
    } else if (key == "NodeList") {
      record.nodes = value;
    } else if (key == "WorkDir") {
      record.work_dir = value;
    } else if (key == "ExitCode") {
      const size_t colon = value.find(':');
      int64_t exit_code = 0, signal = 0;
      if (colon == std::string_view::npos || !ParseInt(value.substr(0, colon), &exit_code) ||
          !ParseInt(value.substr(colon + 1), &signal) || exit_code < 0 || exit_code > 255 ||
          signal < 0 || signal > 127) {
        return MakeError(ErrorCode::kParseError, fmt::format("jobcomp: ExitCode '{}'", value));
      }
      record.exit_code = static_cast<int>(exit_code);
      record.signal = static_cast<int>(signal);
      have_exit = true;
    }
  }
  if (!have_name || !have_state || !have_end || !have_exit) {
    return MakeError(ErrorCode::kParseError,
                     "jobcomp: a line needs Name, JobState, EndTime and ExitCode");
  }
  return record;
}

JobcompLog::JobcompLog(std::string path, size_t records_max)
    : path_(std::move(path)), records_max_(records_max) {}

size_t JobcompLog::CatchUp(const std::function<bool(const JobcompRecord&)>& keep) {
  struct stat info {};
  if (path_.empty() || stat(path_.c_str(), &info) != 0) return 0;
  const auto size = static_cast<uint64_t>(info.st_size);
  if (static_cast<uint64_t>(info.st_ino) != inode_ || size < offset_) {
    inode_ = static_cast<uint64_t>(info.st_ino);  // rotated: another file, read it all
    offset_ = 0;
  }
  if (size == offset_) return 0;
  std::ifstream in(path_, std::ios::binary);
  if (!in) return 0;
  in.seekg(static_cast<std::streamoff>(offset_));
  size_t kept = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline yet: slurmctld is writing it; read it next time
    offset_ += line.size() + 1;
    if (line.size() > kJobcompLineBytesMax) continue;
    Result<JobcompRecord> record = ParseJobcompLine(line);
    if (!record.ok() || !keep(*record)) continue;
    records_[record->id] = std::move(*record);
    ++kept;
    while (records_.size() > records_max_) records_.erase(records_.begin());
  }
  return kept;
}

std::optional<JobcompRecord> JobcompLog::Take(int64_t slurm_id) {
  const auto found = records_.find(slurm_id);
  if (found == records_.end()) return std::nullopt;
  JobcompRecord record = std::move(found->second);
  records_.erase(found);
  return record;
}

}  // namespace atrium::exec
