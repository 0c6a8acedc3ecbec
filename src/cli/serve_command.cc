// `atrium serve`: runs the service until SIGTERM or SIGINT (see server/server.h).
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <filesystem>
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
  int64_t threads = 0;
  int64_t body_bytes_max = 0;
  int64_t rate_per_token = -1;
  bool no_examples = false;
  bool access_log = false;
  bool routes_markdown = false;
  bool print_openapi = false;
  std::string clock;
  bool allow_test_clock = false;
};

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
  options.examples_dir = ATRIUM_EXAMPLES_ROOT;
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
  if (args.access_log) options.access_log = true;
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
                    "the cluster file an empty store loads (default: "
                    "examples/clusters/research-40k.toml, bookkeeping only; "
                    "examples/clusters/local.toml runs jobs here, docs/executors.md)");
  serve->add_flag("--access-log", args->access_log, "log each request to stderr");
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
