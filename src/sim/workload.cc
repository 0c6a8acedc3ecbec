#include "sim/workload.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <fstream>

#include "sim/internal/csv.h"

namespace atrium::sim {
namespace {

constexpr std::array<std::string_view, 8> kTraceColumns = {
    "job_id", "submit_s", "chips", "duration_s", "walltime_s", "grant", "accelerator", "class"};

Error RowError(std::string_view source, int64_t line, std::string_view column,
               std::string_view message) {
  return MakeError(ErrorCode::kTraceInvalid,
                   fmt::format("{}:{}: column {}: {}", source, line, column, message),
                   std::string(column));
}

}  // namespace

Result<Workload> ParseTrace(std::string_view text, std::string_view source_name) {
  Workload workload;
  std::array<size_t, kTraceColumns.size()> at{};
  size_t column_count = 0;
  std::vector<std::string_view> fields;
  const Status parsed =
      internal::ForEachLine(text, [&](int64_t line, std::string_view row) -> Status {
        internal::SplitCsv(row, &fields);
        if (line == 1) {
          for (size_t col = 0; col < kTraceColumns.size(); ++col) {
            const auto found = std::find(fields.begin(), fields.end(), kTraceColumns[col]);
            if (found == fields.end()) {
              return RowError(source_name, line, kTraceColumns[col], "missing from the header");
            }
            at[col] = static_cast<size_t>(found - fields.begin());
          }
          column_count = fields.size();
          return OkStatus();
        }
        if (row.empty() || row == "\r") return OkStatus();
        if (fields.size() != column_count) {
          return RowError(source_name, line, "*",
                          fmt::format("{} fields, the header has {}", fields.size(), column_count));
        }
        if (workload.jobs.size() >= kTraceJobsMax) {
          return MakeError(ErrorCode::kLimitExceeded,
                           fmt::format("{}: more than {} jobs", source_name, kTraceJobsMax));
        }
        sched::JobSpec spec;
        spec.id = std::string(fields[at[0]]);
        if (spec.id.empty()) return RowError(source_name, line, "job_id", "is empty");
        int64_t* const numbers[] = {&spec.submit_s, &spec.chips, &spec.duration_s,
                                    &spec.walltime_s};
        for (size_t col = 1; col <= 4; ++col) {
          const auto value = internal::ParseInt(fields[at[col]]);
          if (!value) {
            return RowError(source_name, line, kTraceColumns[col],
                            fmt::format("'{}' is not an integer", fields[at[col]]));
          }
          *numbers[col - 1] = *value;
        }
        spec.grant = std::string(fields[at[5]]);
        if (spec.grant.empty()) return RowError(source_name, line, "grant", "is empty");
        spec.accelerator = std::string(fields[at[6]]);
        const auto job_class = cluster::ParseJobClass(fields[at[7]]);
        if (!job_class.ok()) return RowError(source_name, line, "class", job_class.error().message);
        spec.job_class = *job_class;
        spec.class_given = !fields[at[7]].empty();
        workload.jobs.push_back(std::move(spec));
        return OkStatus();
      });
  if (!parsed.ok()) return parsed.error();
  if (column_count == 0) return RowError(source_name, 1, "job_id", "the trace has no header");
  return workload;
}

Result<Workload> ReadTraceFile(const std::string& path) {
  ATRIUM_ASSIGN_OR_RETURN(const std::string text, internal::ReadFile(path, kTraceBytesMax));
  return ParseTrace(text, path);
}

std::string FormatTrace(const Workload& workload) {
  std::string out = "job_id,submit_s,chips,duration_s,walltime_s,grant,accelerator,class\n";
  for (const sched::JobSpec& job : workload.jobs) {
    fmt::format_to(std::back_inserter(out), "{},{},{},{},{},{},{},{}\n", job.id, job.submit_s,
                   job.chips, job.duration_s, job.walltime_s, job.grant, job.accelerator,
                   job.class_given ? cluster::ToString(job.job_class) : "");
  }
  return out;
}

Status WriteTraceFile(const Workload& workload, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string text = FormatTrace(workload);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) return MakeError(ErrorCode::kIoError, "cannot write " + path);
  return OkStatus();
}

Result<std::vector<GrantSpec>> ParseGrants(std::string_view text, std::string_view source_name) {
  std::vector<GrantSpec> grants;
  std::array<size_t, 3> at{};
  constexpr std::array<std::string_view, 3> kColumns = {"grant", "credits", "class"};
  std::vector<std::string_view> fields;
  const Status parsed =
      internal::ForEachLine(text, [&](int64_t line, std::string_view row) -> Status {
        internal::SplitCsv(row, &fields);
        if (line == 1) {
          for (size_t col = 0; col < kColumns.size(); ++col) {
            const auto found = std::find(fields.begin(), fields.end(), kColumns[col]);
            if (found == fields.end()) {
              return RowError(source_name, line, kColumns[col], "missing from the header");
            }
            at[col] = static_cast<size_t>(found - fields.begin());
          }
          return OkStatus();
        }
        if (row.empty() || row == "\r") return OkStatus();
        if (fields.size() < kColumns.size())
          return RowError(source_name, line, "*", "too few fields");
        GrantSpec grant{.name = std::string(fields[at[0]])};
        if (grant.name.empty()) return RowError(source_name, line, "grant", "is empty");
        const auto credits = Credits::Parse(fields[at[1]]);
        if (!credits.ok() || credits->is_negative()) {
          return RowError(source_name, line, "credits",
                          fmt::format("'{}' is not a non-negative amount", fields[at[1]]));
        }
        grant.credits = *credits;
        const auto job_class = cluster::ParseJobClass(fields[at[2]]);
        if (!job_class.ok()) return RowError(source_name, line, "class", job_class.error().message);
        grant.default_class = *job_class;
        grants.push_back(std::move(grant));
        return OkStatus();
      });
  if (!parsed.ok()) return parsed.error();
  return grants;
}

Result<std::vector<GrantSpec>> ReadGrantsFile(const std::string& path) {
  ATRIUM_ASSIGN_OR_RETURN(const std::string text, internal::ReadFile(path, 256 << 20));
  return ParseGrants(text, path);
}

}  // namespace atrium::sim
