#include "sim/traces.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_map.h"
#include "base/nesting.h"
#include "sim/internal/csv.h"

namespace atrium::sim {
namespace {

constexpr int64_t kHour = 3600;

Error Invalid(std::string_view source, int64_t line, std::string_view what) {
  return MakeError(ErrorCode::kTraceInvalid, fmt::format("{}:{}: {}", source, line, what));
}

// Shifts submissions so the earliest is 0 and orders jobs by submission.
void Normalize(TraceImport* import) {
  auto& jobs = import->workload.jobs;
  if (jobs.empty()) return;
  int64_t first = jobs.front().submit_s;
  for (const auto& job : jobs) first = std::min(first, job.submit_s);
  for (auto& job : jobs) job.submit_s -= first;
  std::stable_sort(jobs.begin(), jobs.end(), [](const auto& left, const auto& right) {
    return left.submit_s < right.submit_s;
  });
}

sched::JobSpec MakeSpec(std::string id, std::string grant, int64_t chips, int64_t submit_s,
                        int64_t duration_s) {
  return sched::JobSpec{.id = std::move(id),
                        .grant = std::move(grant),
                        .class_given = false,
                        .chips = chips,
                        .submit_s = submit_s,
                        .duration_s = duration_s,
                        .walltime_s = WalltimeFor(duration_s)};
}

// A time that is either integer seconds or "YYYY-MM-DD HH:MM:SS".
std::optional<int64_t> ParseTime(std::string_view text) {
  if (auto seconds = internal::ParseInt(text)) return seconds;
  if (auto real = internal::ParseDouble(text)) return static_cast<int64_t>(std::floor(*real));
  return internal::ParseDateTime(text);
}

}  // namespace

int64_t WalltimeFor(int64_t duration_s) {
  return std::max<int64_t>(kHour, (duration_s + kHour - 1) / kHour * kHour);
}

Result<TraceImport> ParsePhilly(std::string_view json_text, std::string_view source_name) {
  if (!JsonDepthWithin(json_text, kJsonDepthMax)) {
    return MakeError(ErrorCode::kTraceInvalid,
                     fmt::format("{}: nested deeper than {} levels", source_name, kJsonDepthMax));
  }
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& error) {
    return MakeError(ErrorCode::kTraceInvalid,
                     fmt::format("{}: byte {}: {}", source_name, error.byte, error.what()));
  } catch (const nlohmann::json::exception& error) {
    // A number beyond a double (1e966) is out_of_range, not parse_error (found by
    // tests/fuzz/public_trace_fuzzer).
    return MakeError(ErrorCode::kTraceInvalid, fmt::format("{}: {}", source_name, error.what()));
  }
  if (!root.is_array()) return Invalid(source_name, 1, "cluster_job_log must be a JSON array");
  TraceImport import;
  int64_t index = 0;
  // A field of the wrong type (an end_time that is an array, a gpus list that is a
  // number) makes nlohmann::json throw type_error from value(): the job is refused by
  // its number (found by tests/fuzz/public_trace_fuzzer).
  try {
    for (const nlohmann::json& job : root) {
      ++index;
      if (!job.is_object() || !job.contains("jobid") || !job.contains("attempts")) {
        return Invalid(source_name, 1, fmt::format("job {} lacks jobid or attempts", index));
      }
      const std::string id = job.value("jobid", "");
      const std::string grant = job.value("vc", job.value("user", "unknown"));
      const auto submit = ParseTime(job.value("submitted_time", ""));
      int64_t chips = 0;
      int64_t duration_s = 0;
      bool usable = submit.has_value() && job["attempts"].is_array() && !job["attempts"].empty();
      for (const nlohmann::json& attempt : job["attempts"]) {
        if (!usable) break;
        const auto start = ParseTime(attempt.value("start_time", ""));
        const auto end = ParseTime(attempt.value("end_time", ""));
        if (!start || !end || *end < *start) {
          usable = false;
          break;
        }
        duration_s += *end - *start;
        int64_t attempt_chips = 0;
        for (const nlohmann::json& detail : attempt.value("detail", nlohmann::json::array())) {
          attempt_chips +=
              static_cast<int64_t>(detail.value("gpus", nlohmann::json::array()).size());
        }
        chips = std::max(chips, attempt_chips);
      }
      if (!usable || chips == 0) {
        ++import.skipped;
        continue;
      }
      import.workload.jobs.push_back(MakeSpec(id, grant, chips, *submit, duration_s));
    }
  } catch (const nlohmann::json::exception& error) {
    return Invalid(source_name, 1, fmt::format("job {}: {}", index, error.what()));
  }
  Normalize(&import);
  return import;
}

Result<TraceImport> ParseHelios(std::string_view csv_text, std::string_view source_name) {
  TraceImport import;
  absl::flat_hash_map<std::string, size_t> at;
  std::vector<std::string_view> fields;
  const Status parsed =
      internal::ForEachLine(csv_text, [&](int64_t line, std::string_view row) -> Status {
        internal::SplitCsv(row, &fields);
        if (line == 1) {
          for (size_t col = 0; col < fields.size(); ++col) at[std::string(fields[col])] = col;
          for (const char* needed :
               {"job_id", "gpu_num", "submit_time", "start_time", "end_time"}) {
            if (!at.contains(needed)) {
              return Invalid(source_name, line,
                             fmt::format("column {} missing from the header", needed));
            }
          }
          if (!at.contains("vc") && !at.contains("user")) {
            return Invalid(source_name, line, "the header has neither vc nor user");
          }
          return OkStatus();
        }
        if (row.empty()) return OkStatus();
        if (fields.size() != at.size()) {
          return Invalid(source_name, line,
                         fmt::format("{} fields, the header has {}", fields.size(), at.size()));
        }
        auto field = [&](const char* name) { return fields[at[name]]; };
        const auto chips = internal::ParseInt(field("gpu_num"));
        if (!chips)
          return Invalid(source_name, line,
                         fmt::format("column gpu_num: '{}' is not an integer", field("gpu_num")));
        const auto submit = ParseTime(field("submit_time"));
        const auto start = ParseTime(field("start_time"));
        const auto end = ParseTime(field("end_time"));
        if (*chips <= 0 || !submit || !start || !end || *end < *start) {
          ++import.skipped;
          return OkStatus();
        }
        int64_t duration_s = *end - *start;
        if (at.contains("duration")) {
          if (const auto given = internal::ParseInt(field("duration")); given && *given >= 0)
            duration_s = *given;
        }
        const std::string grant(at.contains("vc") ? field("vc") : field("user"));
        import.workload.jobs.push_back(
            MakeSpec(std::string(field("job_id")), grant, *chips, *submit, duration_s));
        return OkStatus();
      });
  if (!parsed.ok()) return parsed.error();
  Normalize(&import);
  return import;
}

Result<TraceImport> ParsePai(std::string_view job_table, std::string_view task_table,
                             std::string_view source_name) {
  // pai_task_table: job_name,task_name,inst_num,status,start_time,end_time,plan_cpu,
  // plan_mem,plan_gpu,gpu_type; plan_gpu is in percent of one GPU per instance.
  struct Usage {
    int64_t gpu_percent = 0;
    int64_t start = INT64_MAX;
    int64_t end = -1;
  };
  absl::flat_hash_map<std::string, Usage> usage;
  std::vector<std::string_view> fields;
  const std::string tasks_source = fmt::format("{} (task table)", source_name);
  Status parsed =
      internal::ForEachLine(task_table, [&](int64_t line, std::string_view row) -> Status {
        internal::SplitCsv(row, &fields);
        if (row.empty() || (line == 1 && fields[0] == "job_name")) return OkStatus();
        if (fields.size() < 10)
          return Invalid(tasks_source, line, fmt::format("{} fields, expected 10", fields.size()));
        const auto inst = internal::ParseDouble(fields[2]);
        const auto gpu = internal::ParseDouble(fields[8]);
        if (!inst || !gpu) return OkStatus();  // tasks without a plan use no accelerator
        Usage& job = usage[std::string(fields[0])];
        // Both at most 1e12 (csv.h): bound the product and the sum, so neither overflows.
        const double share = std::clamp(*inst * *gpu, 0.0, 1e15);
        job.gpu_percent =
            std::min<int64_t>(job.gpu_percent + std::llround(share), int64_t{1} << 60);
        const auto start = internal::ParseDouble(fields[4]);
        const auto end = internal::ParseDouble(fields[5]);
        if (start && end && *end >= *start) {
          job.start = std::min(job.start, static_cast<int64_t>(*start));
          job.end = std::max(job.end, static_cast<int64_t>(*end));
        }
        return OkStatus();
      });
  if (!parsed.ok()) return parsed.error();
  // pai_job_table: job_name,inst_id,user,status,start_time,end_time.
  TraceImport import;
  parsed = internal::ForEachLine(job_table, [&](int64_t line, std::string_view row) -> Status {
    internal::SplitCsv(row, &fields);
    if (row.empty() || (line == 1 && fields[0] == "job_name")) return OkStatus();
    if (fields.size() < 6)
      return Invalid(source_name, line, fmt::format("{} fields, expected 6", fields.size()));
    const auto found = usage.find(std::string(fields[0]));
    const auto submit = internal::ParseDouble(fields[4]);
    if (found == usage.end() || found->second.gpu_percent <= 0 || found->second.end < 0 ||
        !submit) {
      ++import.skipped;
      return OkStatus();
    }
    const Usage& job = found->second;
    const int64_t chips = (job.gpu_percent + 99) / 100;
    import.workload.jobs.push_back(MakeSpec(std::string(fields[0]), std::string(fields[2]), chips,
                                            static_cast<int64_t>(*submit), job.end - job.start));
    return OkStatus();
  });
  if (!parsed.ok()) return parsed.error();
  Normalize(&import);
  return import;
}

Result<TraceImport> ReadPublicTrace(std::string_view format, const std::string& path,
                                    const std::string& second_path) {
  ATRIUM_ASSIGN_OR_RETURN(const std::string text, internal::ReadFile(path, kTraceBytesMax));
  if (format == "philly") return ParsePhilly(text, path);
  if (format == "helios") return ParseHelios(text, path);
  if (format == "pai") {
    if (second_path.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "the pai format needs the task table too");
    }
    ATRIUM_ASSIGN_OR_RETURN(const std::string tasks,
                            internal::ReadFile(second_path, kTraceBytesMax));
    return ParsePai(text, tasks, path);
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   fmt::format("unknown trace format '{}': atrium, philly, helios or pai", format),
                   "trace-format");
}

}  // namespace atrium::sim
