// The service: `atrium serve`. One process holds the core in memory behind the
// Committer (group commit, durable before acknowledged) and answers the JSON API of
// api.h over HTTP (cpp-httplib), with token authentication, idempotent retries,
// Prometheus metrics and health probes. The transport (http_transport.h) is event-driven
// (Boost.Beast): no thread per connection, and every read, header, body and connection
// count bounded; handlers run on a small worker pool.
//
// Lifecycle: Start opens the store for writing, which takes its single-writer lock
// (journal/open.h: flocks on the resolved SQLite file, a PostgreSQL advisory lock; a
// second instance is refused with kLocked),
// recovers the journal, bootstraps an empty store (admin token written to a 0600 file,
// the example program and cluster), and binds. Run serves until Stop (SIGTERM):
// in-flight requests finish, the committer flushes, the store closes.
//
//   Server server(options);
//   ATRIUM_TRY(server.Start());   // prints nothing; see listen_url(), admin_token_path()
//   server.Run();                 // until Stop() from a signal thread
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/error.h"
#include "exec/local_executor.h"
#include "journal/journal.h"
#include "server/http_transport.h"

namespace atrium::server {

struct ServerOptions {
  std::string listen_host = "127.0.0.1";
  int port = 8080;  // 0: any free port (see port())
  std::string data_dir = "atrium-data";
  std::string db;                   // "": <data_dir>/atrium.db; or a postgresql:// URL
  size_t body_bytes_max = 1 << 20;  // larger request bodies answer 413 too_large
  // Handler worker threads (connections need none). A write holds its worker until it is
  // durable, so fewer workers than concurrent writers make a write wait a whole group
  // commit for a worker before it joins a group (POST p99 in bench-service.sh).
  size_t threads = 64;
  int64_t rate_per_token = 20'000;   // requests per second per token (429 beyond); 0: none
  size_t queue_depth_max = 65'536;   // commands waiting for the journal (503 beyond)
  int64_t tick_interval_ms = 1'000;  // how often the clock looks for due work
  bool bootstrap_examples = true;    // an empty store gets the example program and cluster
  std::string examples_dir;          // where the examples are (programs/, clusters/)
  // The cluster file an empty store loads ("": examples_dir/clusters/research-40k.toml,
  // bookkeeping only). `atrium serve` sets it to DATA/local-cluster.toml, this machine run
  // by the local executor, unless --bootstrap-cluster names another (docs/executors.md).
  std::string bootstrap_cluster;
  // The local executor's limits and supervisor (jobs_dir is <data_dir>/jobs, set by Start).
  exec::LocalExecutorOptions local_executor;
  bool access_log = false;  // one JSON line per request on stderr (never a secret)
  // Where state snapshots are encoded: "child" (a forked process; the apply thread pauses
  // for the fork only; falls back to the apply thread where fork fails) or "apply_thread".
  std::string snapshot_encode = "child";
  // The snapshot policy's entry count (journal::Options, docs/snapshots.md): a snapshot
  // is due after the larger of snapshot_entries and the last snapshot's size over
  // snapshot_state_bytes_per_entry (0: fixed at snapshot_entries).
  uint64_t snapshot_entries = journal::Options{}.snapshot_entries;
  uint64_t snapshot_state_bytes_per_entry = journal::Options{}.snapshot_state_bytes_per_entry;
  // Timeouts, header and connection limits (workers, body_bytes_max and access_log are
  // taken from the fields above).
  TransportOptions transport;
  std::string web_root;  // the dashboard's files (static_assets.h); "": none
  // Where the time of every command comes from (clock.h): "system", or "manual", a test
  // clock that stands still until an admin moves it with POST /testing/clock. "manual" is
  // refused unless allow_test_clock is set too (`--clock manual --allow-test-clock`);
  // neither can be set from a configuration file.
  std::string clock = "system";
  bool allow_test_clock = false;
};

// Reads a TOML configuration file whose keys are the options' names (listen = "h:p",
// data, db, body_bytes_max, threads, rate_per_token, tick_interval_ms, access_log, and
// the transport's header_bytes_max, header_count_max, target_bytes_max,
// header_timeout_ms, request_timeout_ms, idle_timeout_ms, write_timeout_ms,
// connections_max, connections_per_address_max);
// options given on the command line are applied after it.
Status LoadServerConfig(const std::string& path, ServerOptions* options);
// "host:port" -> options; kInvalidArgument if malformed.
Status ParseListen(const std::string& text, ServerOptions* options);

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status Start();
  // Serves until Stop; then drains and closes.
  void Run();
  // Safe from any thread, any number of times. A Stop that comes before Run has begun
  // listening must be repeated until Run returns (serve_command.cc does).
  void Stop();
  bool stopping() const;

  int port() const;
  std::string listen_url() const;
  // The admin token file written when the store was empty ("" if it was not).
  const std::string& admin_token_path() const;
  std::string store_location() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace atrium::server
