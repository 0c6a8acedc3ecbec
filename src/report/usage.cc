#include "report/usage.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "base/credits.h"
#include "sched/scheduler.h"

namespace atrium::report {
namespace {

using nlohmann::json;

constexpr int kDimensions = kUsageGroupCount - 1;

Error Invalid(std::string message, std::string field) {
  return Error{ErrorCode::kInvalidArgument, std::move(message), std::move(field)};
}

// Digits only, no sign, at most 18 of them (no overflow).
bool ParseDigits(std::string_view text, int64_t* value) {
  if (text.empty() || text.size() > 18) return false;
  int64_t out = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  *value = out;
  return true;
}

// Unix seconds, or "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS]Z".
bool ParseTime(std::string_view text, int64_t* unix_s) {
  if (ParseDigits(text, unix_s)) return true;
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 10 || text[4] != '-' || text[7] != '-' ||
      !ParseDigits(text.substr(0, 4), &year) || !ParseDigits(text.substr(5, 2), &month) ||
      !ParseDigits(text.substr(8, 2), &day)) {
    return false;
  }
  std::string_view rest = text.substr(10);
  if (!rest.empty()) {
    if (rest.back() != 'Z') return false;
    rest.remove_suffix(1);
    if (rest.size() != 6 && rest.size() != 9) return false;
    if (rest[0] != 'T' || rest[3] != ':' || !ParseDigits(rest.substr(1, 2), &hour) ||
        !ParseDigits(rest.substr(4, 2), &minute)) {
      return false;
    }
    if (rest.size() == 9 && (rest[6] != ':' || !ParseDigits(rest.substr(7, 2), &second))) {
      return false;
    }
    if (hour > 23 || minute > 59 || second > 59) return false;
  }
  const std::chrono::year_month_day date{std::chrono::year(static_cast<int>(year)),
                                         std::chrono::month(static_cast<unsigned>(month)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (year < 1970 || !date.ok()) return false;
  const int64_t days = std::chrono::sys_days(date).time_since_epoch().count();
  *unix_s = days * 86'400 + hour * 3'600 + minute * 60 + second;
  return true;
}

bool ParseStep(std::string_view text, int64_t* step_s) {
  if (text == "hour") text = "1h";
  if (text == "day") text = "1d";
  if (text == "week") text = "1w";
  int64_t unit = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3'600;
        break;
      case 'd':
        unit = 86'400;
        break;
      case 'w':
        unit = int64_t{7} * 86'400;
        break;
      default:
        unit = 0;
        break;
    }
    if (unit != 0) text.remove_suffix(1);
    if (unit == 0) unit = 1;
  }
  int64_t count = 0;
  if (!ParseDigits(text, &count) || count > 1'000'000'000) return false;
  *step_s = count * unit;
  return true;
}

Result<UsageGroup> ParseGroup(std::string_view text) {
  for (int group = 0; group < kUsageGroupCount; ++group) {
    if (ToString(static_cast<UsageGroup>(group)) == text) return static_cast<UsageGroup>(group);
  }
  return Invalid("group_by is one of grant, institution, field, accelerator, partition, none",
                 "group_by");
}

// Nearest-rank percentile; sorts part of `values`.
int64_t Percentile(std::vector<int32_t>& values, int percent) {
  if (values.empty()) return 0;
  const size_t rank = (values.size() * static_cast<size_t>(percent) + 99) / 100;
  const size_t index = rank == 0 ? 0 : rank - 1;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return values[index];
}

double ChipHours(int64_t chip_seconds) { return static_cast<double>(chip_seconds) / 3600.0; }

// What a step or a group sums.
struct Cell {
  int64_t chip_seconds = 0;
  int64_t cost_micro = 0;
  int64_t jobs = 0;
  int64_t wait_sum_s = 0;
  std::vector<int32_t> waits_s;
};

Status AddCost(Cell& cell, int64_t micro) {
  ATRIUM_ASSIGN_OR_RETURN(
      const Credits sum, Credits::FromMicro(cell.cost_micro).CheckedAdd(Credits::FromMicro(micro)));
  cell.cost_micro = sum.micro();
  return OkStatus();
}

json CellJson(Cell& cell) {
  const double wait_mean =
      cell.jobs == 0 ? 0.0 : static_cast<double>(cell.wait_sum_s) / static_cast<double>(cell.jobs);
  return {{"chip_hours", ChipHours(cell.chip_seconds)},
          {"chip_seconds", cell.chip_seconds},
          {"credits", Credits::FromMicro(cell.cost_micro).ToString()},
          {"jobs", cell.jobs},
          {"wait_mean_s", wait_mean},
          {"wait_p95_s", Percentile(cell.waits_s, 95)}};
}

}  // namespace

std::string_view ToString(UsageGroup group) {
  switch (group) {
    case UsageGroup::kNone:
      return "none";
    case UsageGroup::kGrant:
      return "grant";
    case UsageGroup::kInstitution:
      return "institution";
    case UsageGroup::kField:
      return "field";
    case UsageGroup::kAccelerator:
      return "accelerator";
    case UsageGroup::kPartition:
      return "partition";
  }
  return "none";
}

std::string FormatUtc(int64_t unix_s) {
  const int64_t days = unix_s >= 0 ? unix_s / 86'400 : (unix_s - 86'399) / 86'400;
  const int64_t rest = unix_s - days * 86'400;
  const std::chrono::year_month_day date{
      std::chrono::sys_days(std::chrono::days(static_cast<int32_t>(days)))};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(date.year()),
                     static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                     rest / 3600, rest / 60 % 60, rest % 60);
}

Result<UsageQuery> ParseUsageQuery(const std::multimap<std::string, std::string>& params,
                                   int64_t now_s) {
  UsageQuery query;
  std::string from, to;
  bool has_from = false, has_to = false;
  for (const auto& [key, value] : params) {
    if (params.count(key) > 1) return Invalid("parameter " + key + " is given twice", key);
    if (key == "from") {
      has_from = true;
      if (!ParseTime(value, &query.from_s)) {
        return Invalid("from is unix seconds or an ISO 8601 UTC date (2026-11-01)", key);
      }
    } else if (key == "to") {
      has_to = true;
      if (!ParseTime(value, &query.to_s)) {
        return Invalid("to is unix seconds or an ISO 8601 UTC date (2026-11-01)", key);
      }
    } else if (key == "step") {
      if (!ParseStep(value, &query.step_s) || query.step_s < kUsageStepMinS) {
        return Invalid("step is at least 60 seconds: 3600, 1h, 1d, 1w, hour, day or week", key);
      }
    } else if (key == "group_by") {
      ATRIUM_ASSIGN_OR_RETURN(query.group_by, ParseGroup(value));
    } else if (key == "series") {
      int64_t series = 0;
      if (!ParseDigits(value, &series) || series > static_cast<int64_t>(kUsageSeriesMax)) {
        return Invalid(fmt::format("series is 0 to {}", kUsageSeriesMax), key);
      }
      query.series_max = static_cast<size_t>(series);
    } else {
      return Invalid(
          "unknown parameter " + key + " (from, to, step, group_by and series are known)", key);
    }
  }
  if (!has_to) query.to_s = (std::max<int64_t>(now_s, 0) / query.step_s + 1) * query.step_s;
  if (!has_from) query.from_s = std::max<int64_t>(0, query.to_s - kUsageDefaultRangeS);
  if (query.to_s <= query.from_s) return Invalid("to must be after from", "to");
  if ((query.to_s - query.from_s + query.step_s - 1) / query.step_s > kUsageStepsMax) {
    return Invalid(
        fmt::format("at most {} steps: a longer step or a shorter range", kUsageStepsMax), "step");
  }
  return query;
}

uint32_t UsageIndex::InternLabel(int dimension, const std::string& label) {
  auto& ids = ids_[dimension];
  const auto found = ids.find(label);
  if (found != ids.end()) return found->second;
  const auto id = static_cast<uint32_t>(names_[dimension].size());
  names_[dimension].push_back(label);
  ids.emplace(label, id);
  return id;
}

UsageIndex::Run UsageIndex::Intern(const UsageRunInput& run) {
  Run out{};
  const std::string* labels[kDimensions] = {&run.grant, &run.institution, &run.field,
                                            &run.accelerator, &run.partition};
  for (int dimension = 0; dimension < kDimensions; ++dimension) {
    out.labels[dimension] = InternLabel(dimension, *labels[dimension]);
  }
  out.chips = static_cast<int32_t>(std::clamp<int64_t>(run.chips, 0, INT32_MAX));
  out.submit_s = run.submit_s;
  out.start_s = run.start_s;
  out.end_s = std::max(run.start_s, run.end_s);
  out.cost_micro = run.cost_micro;
  out.first_run = run.first_run;
  return out;
}

void UsageIndex::Add(const UsageRunInput& run) {
  const Run interned = Intern(run);
  const int64_t day = interned.start_s >= 0 ? interned.start_s / kBucketS : -1;
  buckets_[day].push_back(interned);
  longest_run_s_ = std::max(longest_run_s_, interned.end_s - interned.start_s);
  ++run_count_;
}

Result<json> UsageIndex::Report(const UsageQuery& query,
                                const std::vector<UsageRunInput>& extra) const {
  ATRIUM_ASSERT(query.step_s > 0 && query.to_s > query.from_s, "a checked query");
  // Extra runs are interned into a copy of the label tables only when a label is new.
  std::vector<std::string> extra_names;
  std::map<std::string, uint32_t, std::less<>> extra_ids;
  const int dimension = static_cast<int>(query.group_by) - 1;
  const size_t known = dimension >= 0 ? names_[dimension].size() : 1;
  auto label_of = [&](const UsageRunInput& run) -> uint32_t {
    if (dimension < 0) return 0;
    const std::string* labels[kDimensions] = {&run.grant, &run.institution, &run.field,
                                              &run.accelerator, &run.partition};
    const std::string& label = *labels[dimension];
    if (const auto found = ids_[dimension].find(label); found != ids_[dimension].end()) {
      return found->second;
    }
    if (const auto found = extra_ids.find(label); found != extra_ids.end()) return found->second;
    const auto id = static_cast<uint32_t>(known + extra_names.size());
    extra_names.push_back(label);
    extra_ids.emplace(label, id);
    return id;
  };

  const int64_t steps = (query.to_s - query.from_s + query.step_s - 1) / query.step_s;
  std::vector<Cell> by_step(static_cast<size_t>(steps));
  std::vector<Cell> by_group;
  // Per-step chip-seconds of every group, as one flat array (group-major); only kept for
  // as many groups as exist, which is bounded by the labels.
  std::vector<int64_t> group_step_seconds;

  auto count = [&](const Run& run, uint32_t group) -> Status {
    if (dimension >= 0 && group >= by_group.size()) {
      by_group.resize(group + 1);
      group_step_seconds.resize(static_cast<size_t>(group + 1) * static_cast<size_t>(steps), 0);
    }
    Cell* group_cell = dimension >= 0 ? &by_group[group] : nullptr;
    // Chip-seconds, split by overlap.
    const int64_t lo = std::max(run.start_s, query.from_s);
    const int64_t hi = std::min(run.end_s, query.to_s);
    if (lo < hi) {
      int64_t step = (lo - query.from_s) / query.step_s;
      int64_t at = lo;
      while (at < hi) {
        const int64_t step_end = std::min(hi, query.from_s + (step + 1) * query.step_s);
        const int64_t chip_seconds = (step_end - at) * run.chips;
        by_step[static_cast<size_t>(step)].chip_seconds += chip_seconds;
        if (group_cell != nullptr) {
          group_cell->chip_seconds += chip_seconds;
          group_step_seconds[static_cast<size_t>(group) * static_cast<size_t>(steps) +
                             static_cast<size_t>(step)] += chip_seconds;
        }
        at = step_end;
        ++step;
      }
    }
    // Credits where the run ended.
    if (run.cost_micro != 0 && run.end_s >= query.from_s && run.end_s < query.to_s) {
      const auto step = static_cast<size_t>((run.end_s - query.from_s) / query.step_s);
      ATRIUM_TRY(AddCost(by_step[step], run.cost_micro));
      if (group_cell != nullptr) ATRIUM_TRY(AddCost(*group_cell, run.cost_micro));
    }
    // The job and its wait where it first started.
    if (run.first_run && run.start_s >= query.from_s && run.start_s < query.to_s) {
      const auto step = static_cast<size_t>((run.start_s - query.from_s) / query.step_s);
      const auto wait_s =
          static_cast<int32_t>(std::clamp<int64_t>(run.start_s - run.submit_s, 0, INT32_MAX));
      for (Cell* cell : {&by_step[step], group_cell}) {
        if (cell == nullptr) continue;
        ++cell->jobs;
        cell->wait_sum_s += wait_s;
        cell->waits_s.push_back(wait_s);
      }
    }
    return OkStatus();
  };

  // Runs that may reach the range started at most longest_run_s_ before it.
  const int64_t first_day = (query.from_s - longest_run_s_) / kBucketS - 1;
  for (auto bucket = buckets_.lower_bound(first_day);
       bucket != buckets_.end() && bucket->first * kBucketS < query.to_s; ++bucket) {
    for (const Run& run : bucket->second) {
      if (run.start_s >= query.to_s || (run.end_s < query.from_s)) continue;
      ATRIUM_TRY(count(run, dimension >= 0 ? run.labels[dimension] : 0));
    }
  }
  for (const UsageRunInput& input : extra) {
    Run run{};
    run.chips = static_cast<int32_t>(std::clamp<int64_t>(input.chips, 0, INT32_MAX));
    run.submit_s = input.submit_s;
    run.start_s = input.start_s;
    run.end_s = std::max(input.start_s, input.end_s);
    run.cost_micro = input.cost_micro;
    run.first_run = input.first_run;
    if (run.start_s >= query.to_s || run.end_s < query.from_s) continue;
    ATRIUM_TRY(count(run, label_of(input)));
  }

  json steps_json = json::array();
  Cell total;
  const double capacity = static_cast<double>(chips_total_) * static_cast<double>(query.step_s);
  for (int64_t step = 0; step < steps; ++step) {
    Cell& cell = by_step[static_cast<size_t>(step)];
    total.chip_seconds += cell.chip_seconds;
    ATRIUM_TRY(AddCost(total, cell.cost_micro));
    total.jobs += cell.jobs;
    total.wait_sum_s += cell.wait_sum_s;
    total.waits_s.insert(total.waits_s.end(), cell.waits_s.begin(), cell.waits_s.end());
    const int64_t start_s = query.from_s + step * query.step_s;
    const int64_t length_s = std::min(query.step_s, query.to_s - start_s);
    json row = CellJson(cell);
    row["start"] = start_s;
    row["utilisation"] =
        capacity <= 0 ? 0.0
                      : static_cast<double>(cell.chip_seconds) /
                            (static_cast<double>(chips_total_) * static_cast<double>(length_s));
    steps_json.push_back(std::move(row));
  }

  json groups_json = json::array();
  if (dimension >= 0) {
    std::vector<uint32_t> order;
    for (uint32_t group = 0; group < by_group.size(); ++group) {
      if (by_group[group].chip_seconds != 0 || by_group[group].jobs != 0 ||
          by_group[group].cost_micro != 0) {
        order.push_back(group);
      }
    }
    auto name_of = [&](uint32_t group) -> const std::string& {
      return group < known ? names_[dimension][group] : extra_names[group - known];
    };
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      if (by_group[a].chip_seconds != by_group[b].chip_seconds) {
        return by_group[a].chip_seconds > by_group[b].chip_seconds;
      }
      return name_of(a) < name_of(b);
    });
    const bool truncated = order.size() > kUsageGroupsMax;
    if (truncated) order.resize(kUsageGroupsMax);
    for (size_t rank = 0; rank < order.size(); ++rank) {
      const uint32_t group = order[rank];
      json row = CellJson(by_group[group]);
      row["key"] = name_of(group).empty() ? "(none)" : name_of(group);
      if (rank < query.series_max) {
        json series = json::array();
        for (int64_t step = 0; step < steps; ++step) {
          series.push_back(
              ChipHours(group_step_seconds[static_cast<size_t>(group) * static_cast<size_t>(steps) +
                                           static_cast<size_t>(step)]));
        }
        row["chip_hours_by_step"] = std::move(series);
      }
      groups_json.push_back(std::move(row));
    }
    if (truncated) groups_json.back()["truncated_after"] = kUsageGroupsMax;
  }

  json totals = CellJson(total);
  const double range_capacity =
      static_cast<double>(chips_total_) * static_cast<double>(query.to_s - query.from_s);
  totals["utilisation"] =
      range_capacity <= 0 ? 0.0 : static_cast<double>(total.chip_seconds) / range_capacity;
  return json{{"from", query.from_s},
              {"to", query.to_s},
              {"from_utc", FormatUtc(query.from_s)},
              {"to_utc", FormatUtc(query.to_s)},
              {"step_s", query.step_s},
              {"group_by", ToString(query.group_by)},
              {"chips_total", chips_total_},
              {"totals", std::move(totals)},
              {"steps", std::move(steps_json)},
              {"groups", std::move(groups_json)}};
}

void AppendJobRuns(const sched::Scheduler& scheduler, const sched::Job& job, int64_t now_s,
                   UsageRunInput labels, std::vector<UsageRunInput>* out) {
  (void)scheduler;
  if (job.first_start_s < 0) return;
  labels.chips = job.shape.chips;
  labels.submit_s = job.submit_s;
  const bool running = job.state == sched::JobState::kRunning;
  // The last run, when the scheduler still knows where it ended.
  int64_t last_start_s = -1;
  int64_t last_end_s = -1;
  if (running) {
    last_start_s = job.run_start_s;
    last_end_s = std::max(job.run_start_s, std::min(now_s, job.expected_end_s()));
  } else if (job.end_s >= job.run_start_s && job.run_start_s >= 0 &&
             job.end_s - job.run_start_s <= job.ran_s) {
    last_start_s = job.run_start_s;
    last_end_s = job.end_s;
  }
  const int64_t last_s = last_start_s >= 0 && !running ? last_end_s - last_start_s : 0;
  const int64_t earlier_s = job.ran_s - last_s;
  const bool last_is_first = last_start_s == job.first_start_s && earlier_s == 0;
  if (!last_is_first && (earlier_s > 0 || last_start_s < 0)) {
    UsageRunInput run = labels;
    run.start_s = job.first_start_s;
    run.end_s = job.first_start_s + std::max<int64_t>(earlier_s, 0);
    run.first_run = true;
    // Credits posted so far fall where the runs that posted them ended.
    run.cost_micro = running || last_start_s < 0 ? job.charged.micro() : 0;
    out->push_back(std::move(run));
  }
  if (last_start_s >= 0) {
    UsageRunInput run = std::move(labels);
    run.start_s = last_start_s;
    run.end_s = last_end_s;
    run.first_run = last_is_first;
    run.cost_micro = running ? 0 : job.charged.micro();
    out->push_back(std::move(run));
  }
}

UsageIndex UsageFromScheduler(const sched::Scheduler& scheduler) {
  const cluster::Cluster& cluster = scheduler.cluster();
  int64_t chips_total = 0;
  for (const cluster::Pool& pool : cluster.pools()) {
    chips_total += static_cast<int64_t>(pool.node_count) * pool.chips_per_node;
  }
  UsageIndex index(chips_total);
  std::vector<UsageRunInput> runs;
  for (sched::JobId id = 0; id < scheduler.job_count(); ++id) {
    const sched::Job& job = scheduler.job(id);
    if (job.first_start_s < 0) continue;
    UsageRunInput labels;
    labels.grant = scheduler.grants()[job.grant].name;
    const cluster::Pool& pool = cluster.pools()[job.shape.pool];
    labels.accelerator = cluster.accelerators()[pool.accelerator].name;
    for (const cluster::Partition& partition : cluster.partitions()) {
      if (std::find(partition.classes.begin(), partition.classes.end(), job.job_class) !=
          partition.classes.end()) {
        labels.partition = partition.name;
        break;
      }
    }
    runs.clear();
    AppendJobRuns(scheduler, job, job.end_s >= 0 ? job.end_s : job.run_start_s, labels, &runs);
    for (const UsageRunInput& run : runs) index.Add(run);
  }
  return index;
}

Status WriteSimulationUsage(const sched::Scheduler& scheduler, const std::string& path) {
  const UsageIndex index = UsageFromScheduler(scheduler);
  int64_t from_s = INT64_MAX;
  int64_t to_s = 0;
  for (sched::JobId id = 0; id < scheduler.job_count(); ++id) {
    const sched::Job& job = scheduler.job(id);
    if (job.first_start_s < 0) continue;
    from_s = std::min(from_s, job.submit_s);
    to_s = std::max(to_s, std::max(job.end_s, job.run_start_s) + 1);
  }
  if (from_s == INT64_MAX) from_s = to_s = 0;
  UsageQuery query;
  query.step_s = to_s - from_s < int64_t{2} * 86'400 ? 3'600 : 86'400;
  query.from_s = from_s / query.step_s * query.step_s;
  query.to_s = std::max(query.from_s + query.step_s,
                        (to_s + query.step_s - 1) / query.step_s * query.step_s);
  while ((query.to_s - query.from_s) / query.step_s > kUsageStepsMax) query.step_s *= 7;
  query.to_s = (query.to_s + query.step_s - 1) / query.step_s * query.step_s;
  query.group_by = UsageGroup::kGrant;
  ATRIUM_ASSIGN_OR_RETURN(const json report, index.Report(query, {}));
  const std::string partial = path + ".partial";
  {
    std::ofstream file(partial, std::ios::binary | std::ios::trunc);
    file << report.dump(2) << "\n";
    file.close();
    if (!file) return MakeError(ErrorCode::kIoError, "cannot write " + partial);
  }
  std::error_code error;
  std::filesystem::rename(partial, path, error);
  if (error) return MakeError(ErrorCode::kIoError, "cannot move " + path + " into place");
  return OkStatus();
}

}  // namespace atrium::report
