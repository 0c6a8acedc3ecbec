// `atrium simulate ...`: replay a workload (a trace or a synthetic one) on a cluster under
// a scheduling policy, through the same scheduler and ledger as production, and write
// jobs.csv, runs.csv and summary.json (docs/simulate.md). `--compare a,b,c` runs the same
// workload under several policies and prints a table of their summaries.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cluster/config.h"
#include "sched/policy.h"
#include "sim/metrics.h"
#include "sim/output.h"
#include "sim/simulator.h"
#include "sim/synthetic.h"
#include "sim/traces.h"
#include "sim/workload.h"

namespace atrium::cli {
namespace {

struct SimulateArgs {
  std::string cluster;
  std::string trace;
  std::string trace_format = "atrium";
  std::string pai_task_table;
  int64_t synthetic = -1;
  double load = 0.9;
  uint64_t seed = 1;
  int64_t synthetic_grants = 200;
  std::string out;
  std::string policy = std::string(sched::kDefaultPolicy);
  std::string grants;
  std::string compare;
  std::string export_trace;
  int64_t pass_interval_s = 10;
  bool no_progress = false;
  std::string synthetic_mix = "default";
  int reservations = -1;
  std::string capacity_reservations;  // a bookings CSV (sim/bookings.h)
  std::vector<sim::BookingSpec> bookings;
  int64_t backfill_test_max = -1;
  int64_t queue_depth_max = -1;
};

[[noreturn]] void Fail(const Error& error) {
  std::fprintf(stderr, "atrium simulate: %s\n", error.ToString().c_str());
  int code = kExitRefused;
  switch (error.code) {
    case ErrorCode::kIoError:
      code = kExitStorage;
      break;
    case ErrorCode::kParseError:
    case ErrorCode::kConfigInvalid:
    case ErrorCode::kTraceInvalid:
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnknownPolicy:
    case ErrorCode::kLimitExceeded:
      code = kExitUsage;
      break;
    default:
      break;
  }
  throw CLI::RuntimeError(code);
}

template <typename T>
T OrFail(Result<T> result) {
  if (!result.ok()) Fail(result.error());
  return std::move(result).value();
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const size_t end = comma == std::string::npos ? text.size() : comma;
    if (end > start) items.push_back(text.substr(start, end - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

sim::Workload LoadWorkload(const SimulateArgs& args, const cluster::Cluster& cluster) {
  if (args.synthetic >= 0) {
    return OrFail(sim::GenerateSynthetic(
        cluster, {.jobs = args.synthetic,
                  .load = args.load,
                  .seed = args.seed,
                  .grants = args.synthetic_grants,
                  .mix = OrFail(sim::ParseSyntheticMix(args.synthetic_mix))}));
  }
  if (args.trace_format == "atrium") return OrFail(sim::ReadTraceFile(args.trace));
  sim::TraceImport import =
      OrFail(sim::ReadPublicTrace(args.trace_format, args.trace, args.pai_task_table));
  std::fprintf(stderr, "atrium simulate: %zu jobs read from %s, %lld skipped\n",
               import.workload.jobs.size(), args.trace.c_str(),
               static_cast<long long>(import.skipped));
  return std::move(import.workload);
}

std::function<void(double)> ProgressBar(bool enabled, std::string label) {
  if (!enabled || isatty(STDERR_FILENO) == 0) return {};
  return [label = std::move(label)](double fraction) {
    constexpr int kWidth = 40;
    const int filled = static_cast<int>(fraction * kWidth);
    std::fprintf(stderr, "\r%s [%s%s] %3d%%", label.c_str(),
                 std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(kWidth - filled), ' ').c_str(),
                 static_cast<int>(fraction * 100));
    if (fraction >= 1.0) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
}

sim::Summary RunOne(const SimulateArgs& args, const cluster::Cluster& cluster,
                    sim::Workload workload, const std::vector<sim::GrantSpec>* grants,
                    const std::string& policy, const std::string& out_dir) {
  const auto started = std::chrono::steady_clock::now();
  std::unique_ptr<sim::OutputWriter> writer;
  if (!out_dir.empty()) writer = OrFail(sim::OutputWriter::Open(out_dir));
  sched::SchedulerConfig config;
  if (args.backfill_test_max >= 0)
    config.backfill_test_max = static_cast<size_t>(args.backfill_test_max);
  if (args.queue_depth_max >= 0) config.queue_depth_max = static_cast<size_t>(args.queue_depth_max);
  sim::Simulator simulator(cluster, {.policy = policy,
                                     .pass_interval_s = args.pass_interval_s,
                                     .scheduler = config,
                                     .reservations = args.reservations,
                                     .bookings = args.bookings,
                                     .progress = ProgressBar(!args.no_progress, policy)});
  if (Status ran = simulator.Run(std::move(workload), grants, writer.get()); !ran.ok()) {
    Fail(ran.error());
  }
  if (Status verified = simulator.ledger().Verify(); !verified.ok()) Fail(verified.error());
  sim::Summary summary = sim::Summarize(simulator);
  summary.sim_wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  summary.peak_rss_mb = sim::PeakRssMb();
  if (writer) {
    if (Status written = writer->Finish(simulator, summary); !written.ok()) Fail(written.error());
  }
  return summary;
}

void PrintTable(const std::vector<sim::Summary>& summaries) {
  std::printf("%-18s %8s %9s %6s %11s %11s %11s %10s %6s %16s %11s %9s %8s %8s\n", "policy", "jobs",
              "completed", "util", "wait_mean_s", "wait_p99_s", "jct_mean_s", "bsld_mean", "jain",
              "credits_charged", "wait_p50_s", "idle_fit", "skipped", "wall_s");
  for (const sim::Summary& s : summaries) {
    std::printf(
        "%-18s %8lld %9lld %6.3f %11.0f %11.0f %11.0f %10.2f %6.3f %16s %11.0f %9.5f %8lld %8.2f\n",
        s.policy.c_str(), static_cast<long long>(s.jobs), static_cast<long long>(s.completed),
        s.utilization, s.wait_mean_s, s.wait_p99_s, s.jct_mean_s, s.bounded_slowdown_mean,
        s.jain_index_grants, Credits::FromMicro(s.credits_charged_micro).ToString().c_str(),
        s.wait_p50_s, s.idle_fit_fraction, static_cast<long long>(s.oldest_fit_skipped_passes),
        s.sim_wall_s);
  }
}

void RunSimulate(const SimulateArgs& given) {
  SimulateArgs args = given;
  if (args.trace.empty() == (args.synthetic < 0)) {
    Fail(MakeError(ErrorCode::kInvalidArgument, "give exactly one of --trace and --synthetic"));
  }
  if (args.out.empty() && args.compare.empty()) {
    Fail(MakeError(ErrorCode::kInvalidArgument, "--out DIR is required (or --compare)"));
  }
  const cluster::Cluster cluster = OrFail(cluster::LoadClusterFile(args.cluster));
  std::optional<std::vector<sim::GrantSpec>> grants;
  if (!args.grants.empty()) grants = OrFail(sim::ReadGrantsFile(args.grants));
  std::vector<std::string> policies = {args.policy};
  if (!args.compare.empty()) policies = SplitList(args.compare);
  for (const std::string& policy : policies) (void)OrFail(sched::MakePolicy(policy));
  if (!args.capacity_reservations.empty()) {
    std::ifstream in(args.capacity_reservations, std::ios::binary);
    if (!in) {
      Fail(MakeError(ErrorCode::kIoError, "cannot read " + args.capacity_reservations,
                     "capacity_reservations"));
    }
    std::stringstream text;
    text << in.rdbuf();
    args.bookings = OrFail(sim::ParseBookingsCsv(text.str()));
  }
  const sim::Workload workload = LoadWorkload(args, cluster);
  if (!args.export_trace.empty()) {
    if (Status written = sim::WriteTraceFile(workload, args.export_trace); !written.ok()) {
      Fail(written.error());
    }
  }
  std::vector<sim::Summary> summaries;
  for (const std::string& policy : policies) {
    std::string out_dir = args.out;
    if (!out_dir.empty() && !args.compare.empty()) out_dir += "/" + policy;
    summaries.push_back(
        RunOne(args, cluster, workload, grants ? &*grants : nullptr, policy, out_dir));
  }
  PrintTable(summaries);
}

}  // namespace

void RegisterSimulateCommands(CLI::App& app) {
  auto args = std::make_shared<SimulateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "simulate", "Replay a workload on a cluster under a scheduling policy (virtual time)");
  cmd->add_option("--cluster", args->cluster, "Cluster description (TOML)")->required();
  cmd->add_option("--trace", args->trace, "Workload trace (see --trace-format)");
  cmd->add_option("--trace-format", args->trace_format,
                  "atrium (the trace CSV contract), philly, helios or pai");
  cmd->add_option("--pai-task-table", args->pai_task_table,
                  "For --trace-format pai: pai_task_table.csv (--trace is pai_job_table.csv)");
  cmd->add_option("--synthetic", args->synthetic, "Generate this many synthetic jobs instead");
  cmd->add_option("--load", args->load, "Synthetic offered load (default 0.9)");
  cmd->add_option("--seed", args->seed, "Synthetic generator seed (default 1)");
  cmd->add_option("--synthetic-grants", args->synthetic_grants,
                  "Grants in the synthetic workload (default 200)");
  cmd->add_option("--out", args->out, "Output directory: jobs.csv, runs.csv, summary.json");
  cmd->add_option("--policy", args->policy,
                  "fifo, backfill (default), fairshare, fairshare+preempt, conservative");
  cmd->add_option("--grants", args->grants, "Grant budgets: CSV grant,credits,class");
  cmd->add_option("--compare", args->compare,
                  "Comma-separated policies: run each and print a table (outputs in DIR/POLICY)");
  cmd->add_option("--export-trace", args->export_trace, "Also write the workload as a trace CSV");
  cmd->add_option(
      "--pass-interval", args->pass_interval_s,
      "Seconds of virtual time between scheduling passes (default 10; 0 = every event)");
  cmd->add_option("--synthetic-mix", args->synthetic_mix,
                  "default, or long-queue (bursts above full load, mostly single chips)");
  cmd->add_option("--capacity-reservations,--bookings", args->capacity_reservations,
                  "Capacity reservations to book during the run: CSV grant,accelerator,nodes,"
                  "chips,start_s,end_s,booked_at_s,one_group (docs/reservations.md)");
  cmd->add_option("--reservations", args->reservations,
                  "Reservations per pool for backfill policies (default: the policy's; 1 = EASY)");
  cmd->add_option("--backfill-test-max", args->backfill_test_max,
                  "Jobs per pool and pass refused for a reservation before the pass moves on "
                  "(like Slurm's bf_max_job_test; default 500)");
  cmd->add_option("--queue-depth-max", args->queue_depth_max,
                  "Jobs per pool and pass examined at most (like Slurm's default_queue_depth; "
                  "default 0 = no bound)");
  cmd->add_flag("--no-progress", args->no_progress, "No progress bar");
  cmd->callback([args] { RunSimulate(*args); });
}

}  // namespace atrium::cli
