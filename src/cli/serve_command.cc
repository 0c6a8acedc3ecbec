// `atrium serve`: runs the service until SIGTERM or SIGINT (see server/server.h).
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "server/api.h"
#include "server/openapi.h"
#include "server/server.h"
#include "server/static_assets.h"

namespace atrium::cli {
namespace {

struct ServeArgs {
  std::string config;
  std::string data;
  std::string listen;
  std::string db;
  std::string web_root;
  std::string bootstrap_cluster;
  int64_t local_chips = 16;
  int64_t job_memory_mib = 0;
  int64_t job_cpu_percent = 0;
  std::string job_cgroup_parent;
  int64_t threads = 0;
  int64_t body_bytes_max = 0;
  int64_t rate_per_token = -1;
  bool no_examples = false;
  bool access_log = false;
  std::string snapshot_encode;
  std::optional<uint64_t> snapshot_entries;
  std::optional<uint64_t> snapshot_state_bytes_per_entry;
  bool routes_markdown = false;
  bool print_openapi = false;
  std::string clock;
  bool allow_test_clock = false;
};

// This machine's accelerators: /dev/neuronN (AWS Trainium/Inferentia, one chip each) or
// /dev/nvidiaN (NVIDIA GPUs); none found: `logical` logical chips.
struct LocalDevices {
  std::string accelerator = "trn1";
  std::string vendor = "AWS";
  int64_t cores_per_chip = 2;
  std::string price = "1.34375";
  int64_t chips = 0;
  bool logical = true;
};

LocalDevices FindLocalDevices(int64_t logical) {
  int64_t neuron = 0;
  int64_t nvidia = 0;
  // "PREFIX" followed by one or more digits and nothing else.
  auto numbered = [](const std::string& name, std::string_view prefix) {
    return name.size() > prefix.size() && name.starts_with(prefix) &&
           name.find_first_not_of("0123456789", prefix.size()) == std::string::npos;
  };
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev", ec)) {
    const std::string name = entry.path().filename().string();
    if (numbered(name, "neuron")) ++neuron;
    if (numbered(name, "nvidia")) ++nvidia;
  }
  LocalDevices devices;
  if (neuron > 0) {
    devices.chips = neuron;
    devices.logical = false;
  } else if (nvidia > 0) {
    devices = LocalDevices{.accelerator = "gpu",
                           .vendor = "NVIDIA",
                           .cores_per_chip = 1,
                           .price = "4.10",
                           .chips = nvidia,
                           .logical = false};
  } else {
    devices.chips = logical;
  }
  devices.chips = std::min<int64_t>(devices.chips, 64);  // one node's chips are one mask
  return devices;
}

// The cluster a fresh store loads by default: this machine as one node run by the local
// executor (examples/clusters/local.toml is the same with 16 logical chips).
std::string LocalClusterToml(const LocalDevices& devices) {
  std::string sizes;
  for (int64_t size = 1; size < devices.chips; size *= 2) {
    sizes += (sizes.empty() ? "" : ", ") + std::to_string(size);
  }
  return fmt::format(
      "# Written by `atrium serve` on a fresh store: this machine, {} {} chips ({}).\n"
      "name = \"local\"\n"
      "default_accelerator = \"{}\"\n\n"
      "[accelerators.{}]\n"
      "vendor = \"{}\"\n"
      "cores_per_chip = {}\n"
      "price_per_chip_hour = \"{}\"\n\n"
      "[node_types.local]\n"
      "accelerator = \"{}\"\n"
      "chips = {}\n"
      "allocation_sizes = [{}]\n\n"
      "[[pools]]\n"
      "name = \"local\"\n"
      "node_type = \"local\"\n"
      "nodes = 1\n"
      "executor = \"local\"\n"
      "kill_grace_s = 10\n\n"
      "[partitions.research]\n"
      "classes = [\"research\", \"preemptible\"]\n"
      "walltime_max_s = 1209600\n\n"
      "[partitions.education]\n"
      "classes = [\"education\"]\n"
      "walltime_max_s = 172800\n",
      devices.chips, devices.accelerator,
      devices.logical ? "logical: no Neuron or NVIDIA device found" : "found in /dev",
      devices.accelerator, devices.accelerator, devices.vendor, devices.cores_per_chip,
      devices.price, devices.accelerator, devices.chips, sizes);
}

int Serve(const ServeArgs& args) {
  if (args.routes_markdown) {
    fmt::print("{}", server::RoutesMarkdown());
    return kExitOk;
  }
  if (args.print_openapi) {
    fmt::print("{}\n", server::OpenApiDocument().dump(2));
    return kExitOk;
  }
  server::ServerOptions options;
  // The installed examples (<binary dir>/../share/atrium/examples, CMake's install rules)
  // when there are some, else the source tree this binary was built from.
  std::error_code self_error;
  const std::filesystem::path installed_examples =
      std::filesystem::read_symlink("/proc/self/exe", self_error).parent_path().parent_path() /
      "share/atrium/examples";
  options.examples_dir =
      !self_error && std::filesystem::exists(installed_examples / "programs", self_error)
          ? installed_examples.string()
          : std::string(ATRIUM_EXAMPLES_ROOT);
  auto fail = [](const Error& error, int code) {
    fmt::print(stderr, "atrium serve: {}\n", error.ToString());
    return code;
  };
  if (!args.config.empty()) {
    if (Status loaded = server::LoadServerConfig(args.config, &options); !loaded.ok()) {
      return fail(loaded.error(), kExitUsage);
    }
  }
  if (!args.data.empty()) options.data_dir = args.data;
  if (!args.db.empty()) options.db = args.db;
  if (!args.listen.empty()) {
    if (Status parsed = server::ParseListen(args.listen, &options); !parsed.ok()) {
      return fail(parsed.error(), kExitUsage);
    }
  }
  if (args.threads > 0) options.threads = static_cast<size_t>(args.threads);
  if (args.body_bytes_max > 0) options.body_bytes_max = static_cast<size_t>(args.body_bytes_max);
  if (args.rate_per_token >= 0) options.rate_per_token = args.rate_per_token;
  if (args.no_examples) options.bootstrap_examples = false;
  if (!args.bootstrap_cluster.empty()) options.bootstrap_cluster = args.bootstrap_cluster;
  if (args.local_chips < 1 || args.local_chips > 64) {
    return fail(Error{ErrorCode::kInvalidArgument, "--local-chips is 1 to 64", "local-chips"},
                kExitUsage);
  }
  if (args.job_memory_mib < 0 || args.job_cpu_percent < 0) {
    return fail(Error{ErrorCode::kInvalidArgument, "job limits are not negative", "job-memory"},
                kExitUsage);
  }
  options.local_executor.memory_bytes_max = args.job_memory_mib * 1024 * 1024;
  options.local_executor.cpu_percent_max = args.job_cpu_percent;
  if (!args.job_cgroup_parent.empty())
    options.local_executor.cgroup_parent = args.job_cgroup_parent;
  if (options.bootstrap_cluster.empty() && options.bootstrap_examples) {
    // A fresh store loads this machine as its cluster, so a submitted job really runs.
    const std::string path =
        (std::filesystem::path(options.data_dir) / "local-cluster.toml").string();
    std::error_code ec;
    std::filesystem::create_directories(options.data_dir, ec);
    std::ofstream(path, std::ios::trunc) << LocalClusterToml(FindLocalDevices(args.local_chips));
    options.bootstrap_cluster = path;
  }
  if (args.access_log) options.access_log = true;
  if (!args.snapshot_encode.empty()) options.snapshot_encode = args.snapshot_encode;
  if (args.snapshot_entries) options.snapshot_entries = *args.snapshot_entries;
  if (args.snapshot_state_bytes_per_entry) {
    options.snapshot_state_bytes_per_entry = *args.snapshot_state_bytes_per_entry;
  }
  if (!args.clock.empty()) options.clock = args.clock;
  options.allow_test_clock = args.allow_test_clock;
  std::error_code exe_error;
  options.web_root = !args.web_root.empty()
                         ? args.web_root
                         : server::FindWebRoot(
                               std::filesystem::read_symlink("/proc/self/exe", exe_error).string());

  // Every thread inherits a mask that blocks SIGTERM and SIGINT; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Each connection is a descriptor: raise the soft limit to the hard one, so thousands
  // of idle or slow clients meet the server's own connection caps, not EMFILE.
  if (rlimit limit{}; getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }

  server::Server server(options);
  if (Status started = server.Start(); !started.ok()) {
    return fail(started.error(), kExitStorage);
  }
  if (!server.admin_token_path().empty()) {
    fmt::print("atrium serve: admin token written to {} (mode 0600)\n", server.admin_token_path());
  }
  fmt::print("atrium serve: journal in {}\n", server.store_location().rfind("postgres", 0) == 0
                                                  ? std::string("PostgreSQL")
                                                  : server.store_location());
  fmt::print("atrium serve: {}\n",
             options.web_root.empty()
                 ? std::string("no dashboard (web/public not found; --web-root)")
                 : "dashboard from " + options.web_root);
  if (options.clock == "manual") {
    fmt::print(
        "atrium serve: WARNING: manual test clock (POST /testing/clock moves it); "
        "not for production\n");
  }
  // Last: tests and scripts wait for this line.
  fmt::print("atrium serve: listening on {}\n", server.listen_url());
  std::fflush(stdout);
  std::atomic<bool> run_ended = false;
  std::thread waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    if (!run_ended.load()) fmt::print("atrium serve: stopping (signal {})\n", received);
    // Stop until Run has returned: a signal that came before the server began listening
    // would otherwise be lost.
    while (!run_ended.load()) {
      server.Stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  server.Run();
  run_ended = true;
  // Run ends after Stop; wake the waiter if something else ended it.
  // NOLINTNEXTLINE(bugprone-bad-signal-to-kill-thread): wakes its sigwait, ends nothing
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  fmt::print("atrium serve: stopped\n");
  return kExitOk;
}

}  // namespace

void RegisterServeCommand(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* serve = app.add_subcommand("serve", "Run the Atrium service (HTTP API)");
  serve->add_option("--config", args->config, "TOML file of options");
  serve->add_option("--data", args->data, "data directory (default ./atrium-data)");
  serve->add_option("--listen", args->listen, "ADDRESS:PORT (default 127.0.0.1:8080; port 0: any)");
  serve->add_option("--db", args->db, "journal: a SQLite file or a postgresql:// URL");
  serve->add_option("--threads", args->threads, "handler worker threads (default 64)");
  serve->add_option("--body-limit", args->body_bytes_max, "largest request body, bytes (1 MiB)");
  serve->add_option("--rate-limit", args->rate_per_token, "requests/s per token (0: none)");
  serve->add_option("--web-root", args->web_root,
                    "the dashboard's files (default: $ATRIUM_WEB_ROOT, or web/public found from "
                    "the binary)");
  serve->add_flag("--no-examples", args->no_examples,
                  "do not load the example program and cluster");
  serve->add_option("--bootstrap-cluster", args->bootstrap_cluster,
                    "the cluster file an empty store loads (default: this machine as one node "
                    "run by the local executor, written to DATA/local-cluster.toml; "
                    "examples/clusters/research-40k.toml is bookkeeping only, docs/executors.md)");
  serve->add_option("--local-chips", args->local_chips,
                    "logical chips of the default local cluster when no Neuron or NVIDIA device "
                    "is found (1-64, default 16)");
  serve->add_option("--job-memory-mib", args->job_memory_mib,
                    "memory limit of each local run, MiB (cgroup v2 memory.max, else "
                    "RLIMIT_AS; 0: none)");
  serve->add_option("--job-cpu-percent", args->job_cpu_percent,
                    "CPU limit of each local run, percent of one CPU (cgroup v2 cpu.max only; "
                    "0: none)");
  serve->add_option("--job-cgroup-parent", args->job_cgroup_parent,
                    "cgroup v2 directory for the runs' cgroups (default: found; none: rlimits)");
  serve->add_flag("--access-log", args->access_log, "log each request to stderr");
  serve
      ->add_option("--snapshot-encode", args->snapshot_encode,
                   "where state snapshots are encoded: child (default: a forked process, "
                   "the apply thread pauses for the fork only) or apply_thread")
      ->check(CLI::IsMember({"child", "apply_thread"}));
  serve->add_option("--snapshot-entries", args->snapshot_entries,
                    "a snapshot is due after at least this many journal entries (default "
                    "100000; 0: never by count, docs/snapshots.md)");
  serve->add_option("--snapshot-state-bytes-per-entry", args->snapshot_state_bytes_per_entry,
                    "the entry count grows to the last snapshot's bytes over this (default "
                    "4096; 0: fixed)");
  serve->add_option("--clock", args->clock,
                    "system (default), or manual: a test clock moved by POST /testing/clock, "
                    "refused without --allow-test-clock (docs/service.md)");
  serve->add_flag("--allow-test-clock", args->allow_test_clock,
                  "allow --clock manual (tests only; never in production)");
  serve->add_flag("--routes-markdown", args->routes_markdown, "print the route x role table");
  serve->add_flag("--print-openapi", args->print_openapi, "print the OpenAPI document");
  serve->callback([args] {
    const int code = Serve(*args);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace atrium::cli
