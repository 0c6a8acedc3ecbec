// The service's HTTP/1.1 transport: an event-driven server on Boost.Beast/Asio. One event
// loop thread reads and writes every connection (no thread per socket); handlers run on a
// small worker pool, so a handler that waits for an fsync never blocks the loop.
//
// What it bounds, so that no client can crash or starve the others:
//   - time: a connection idle between requests is closed after idle_timeout_ms; once a
//     request's first byte arrived its whole header must arrive within header_timeout_ms
//     (slowloris), its body within request_timeout_ms; an answer must be taken within
//     write_timeout_ms;
//   - size: header bytes (request line included) and header count answer 431 too_large,
//     a request target longer than target_bytes_max 414 too_large, a body over
//     body_bytes_max 413 too_large;
//   - framing: more than one Content-Length, a malformed one, or Content-Length with
//     Transfer-Encoding answer 400 parse_error (RFC 9112 section 6.3) and close;
//   - connections: at most connections_max open, connections_per_address_max per client
//     address; beyond them a connection gets 503 unavailable and is closed.
// Every answer carries X-Request-Id, the id the request's log lines carry.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "base/error.h"

namespace atrium::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ... (HEAD arrives as GET; the body is dropped)
  std::string target;  // as sent: "/v1/jobs?limit=5"
  std::string path;    // percent-decoded path
  std::multimap<std::string, std::string> query;  // decoded ("+" is a space)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_addr;
  std::string request_id;

  // The first header of that name (case-insensitive), "" if none.
  std::string_view header(std::string_view name) const;
};

struct HttpAnswer {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // For the access log: the API operation, and the error code of an error answer.
  std::string operation;
  std::string error_code;
  std::string detail;  // logged with the request id, never sent (a 500's cause)
};

using HttpHandler = std::function<HttpAnswer(const HttpRequest&)>;

// A request's answer given later, from any thread: Answer is called at most once. A
// Responder dropped unanswered (a handler that threw after taking it) answers 500, so
// no connection waits forever.
class Responder {
 public:
  struct State;
  Responder() = default;
  explicit Responder(std::unique_ptr<State> state);
  Responder(Responder&& other) noexcept;
  // Not assignable: replacing an unanswered Responder would have to answer it, which may
  // throw (it allocates) where a move may not.
  Responder& operator=(Responder&& other) = delete;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  void Answer(HttpAnswer answer);
  // Answers with what `make` returns, called on one of the loop threads (the
  // connection's strand) instead of the caller's thread: a completion on the journal's
  // write thread hands the work of building the answer (JSON, compression, metrics) on
  // rather than delaying the next group. If `make` throws, the error is logged with the
  // request id and the answer is 500. If the transport stops first, `make` is dropped
  // uncalled.
  void AnswerWith(absl::AnyInvocable<HttpAnswer()> make);

 private:
  std::unique_ptr<State> state_;
};

// Optional: runs on the event loop before a request goes to a worker, and must never
// block. It answers what it can answer at once (a read whose state is readable now) and
// returns nullopt for the rest, which then go to a worker as if it had not run. It
// saves a read two thread hand-offs, which on two cores cost more than the read.
// A handler that can start work without waiting and be told its outcome later (a change
// submitted to the journal with a completion) calls `defer` for the request's Responder
// and returns nullopt: the request then waits for that Responder, no thread waits for
// it, and it never goes to a worker.
using DeferFn = std::function<Responder()>;
using LoopHandler =
    std::function<std::optional<HttpAnswer>(const HttpRequest&, const DeferFn& defer)>;

struct TransportOptions {
  size_t workers = 32;
  size_t body_bytes_max = 1 << 20;
  size_t header_bytes_max = size_t{64} * 1024;
  size_t header_count_max = 100;
  size_t target_bytes_max = size_t{8} * 1024;
  int64_t header_timeout_ms = 10'000;
  int64_t request_timeout_ms = 30'000;
  int64_t idle_timeout_ms = 60'000;
  int64_t write_timeout_ms = 30'000;
  size_t connections_max = 20'000;
  size_t connections_per_address_max = 1'024;
  bool access_log = false;  // one JSON line per request (method, path, status, time)
};

class HttpTransport {
 public:
  HttpTransport(TransportOptions options, HttpHandler handler, LoopHandler on_loop = nullptr);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Binds and listens (backlog SOMAXCONN); port 0 picks a free port.
  Status Listen(const std::string& host, int port);
  int port() const;
  // Serves until Stop: then stops accepting, lets answers in flight finish, closes idle
  // connections and returns (at most a few seconds later).
  void Run();
  // Safe from any thread, any number of times, also before Run.
  void Stop();

  // Open connections now (for tests and metrics).
  size_t connections() const;

 private:
  friend class Session;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace atrium::server
