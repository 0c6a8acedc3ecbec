#include "server/http_transport.h"

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "journal/mutex.h"
#include "server/http_error.h"
#include "server/log.h"

namespace atrium::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string_view AsView(beast::string_view text) { return {text.data(), text.size()}; }

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX -> the byte (a malformed escape stays as it is); "+" -> " " in queries.
std::string PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
        HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else if (plus_is_space && text[i] == '+') {
      out += ' ';
    } else {
      out += text[i];
    }
  }
  return out;
}

std::multimap<std::string, std::string> ParseQuery(std::string_view text) {
  std::multimap<std::string, std::string> query;
  while (!text.empty()) {
    const size_t amp = text.find('&');
    const std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    query.emplace(
        PercentDecode(pair.substr(0, eq), true),
        eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1), true));
  }
  return query;
}

// 16 hex digits, random per process and counted per request: unique within a log.
std::string NewRequestId() {
  static const uint64_t base = [] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }();
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{:016x}", base + counter.fetch_add(1, std::memory_order_relaxed));
}

HttpAnswer ErrorAnswer(int status, ErrorCode code, std::string message) {
  HttpAnswer answer;
  answer.status = status;
  answer.error_code = std::string(ToString(code));
  answer.body = ErrorBody(Error{code, std::move(message), ""}).dump();
  return answer;
}

}  // namespace

std::string_view HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (IEquals(key, name)) return value;
  }
  return {};
}

class Session;

struct HttpTransport::Impl {
  Impl(TransportOptions opts, HttpHandler handle, LoopHandler loop_handle)
      : options(opts),
        handler(std::move(handle)),
        on_loop(std::move(loop_handle)),
        workers(options.workers) {}

  TransportOptions options;
  HttpHandler handler;
  LoopHandler on_loop;
  // Connection counts and the sessions Stop must reach (sessions end on any thread).
  mutable journal::Mutex mutex;
  size_t open ABSL_GUARDED_BY(mutex) = 0;
  std::unordered_map<std::string, size_t> per_address ABSL_GUARDED_BY(mutex);
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions ABSL_GUARDED_BY(mutex);
  std::atomic<bool> stopping{false};
  std::atomic<bool> stop_posted{false};
  std::atomic<bool> running{false};
  int bound_port = 0;

  net::io_context ioc{2};
  // The acceptor, its timers and Stop run on one strand; each connection on its own.
  net::strand<net::io_context::executor_type> accept_strand = net::make_strand(ioc);
  tcp::acceptor acceptor{accept_strand};
  net::steady_timer retry_accept{accept_strand};
  net::steady_timer stop_deadline{accept_strand};
  net::thread_pool workers;  // declared last: joined before the loop is destroyed

  void Accept();
  void Admit(tcp::socket socket);
  void Release(Session* session, const std::string& address) {
    journal::MutexLock lock(&mutex);
    --open;
    if (auto found = per_address.find(address);
        found != per_address.end() && --found->second == 0) {
      per_address.erase(found);
    }
    sessions.erase(session);
    // The last connection gone after Stop: nothing is left to wait for.
    if (stopping && open == 0 && running) {
      net::post(accept_strand, [this] { stop_deadline.cancel(); });
    }
  }
  void StopOnLoop();
};

struct Responder::State {
  std::shared_ptr<Session> session;
  net::executor_work_guard<net::io_context::executor_type> work;  // the loop runs until then
  std::string method;
  std::string path;
  std::string request_id;
};

// One connection: reads a request, hands it to a worker, writes the answer, and again
// while the client keeps the connection alive. Every step runs on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpTransport::Impl* server, tcp::socket socket, std::string address)
      : server_(server), stream_(std::move(socket)), address_(std::move(address)) {}
  ~Session() {
    // Nothing may escape a destructor; a failure to count the close (out of memory) only
    // leaves the connection counted.
    try {
      server_->Release(this, address_);
    } catch (...) {  // NOLINT(bugprone-empty-catch)
    }
  }

  void Start() { WaitForRequest(); }

  // Stop: a connection waiting for a request closes now; one in a handler after its answer.
  void StopIfIdle() {
    stopping_ = true;
    if (!busy_) stream_.cancel();
  }

  net::any_io_executor executor() { return stream_.get_executor(); }

  // An answer from another thread (a Responder): written on the connection's strand.
  static void PostMake(std::shared_ptr<Session> self, absl::AnyInvocable<HttpAnswer()> make,
                       std::string method, std::string path, std::string request_id) {
    auto executor = self->executor();
    net::post(executor, [self = std::move(self), make = std::move(make), method = std::move(method),
                         path = std::move(path), id = std::move(request_id)]() mutable {
      HttpAnswer answer;
      try {
        answer = make();
      } catch (const std::exception& e) {
        LogEvent(LogLevel::kError, "internal_error", {{"request_id", id}, {"detail", e.what()}});
        answer = ErrorAnswer(500, ErrorCode::kInternal, "internal error");
      }
      self->Write(std::move(answer), method, path, id);
    });
  }

  static void PostAnswer(std::shared_ptr<Session> self, HttpAnswer answer, std::string method,
                         std::string path, std::string request_id) {
    auto executor = self->executor();
    net::post(executor,
              [self = std::move(self), answer = std::move(answer), method = std::move(method),
               path = std::move(path), id = std::move(request_id)]() mutable {
                self->Write(std::move(answer), method, path, id);
              });
  }

 private:
  using Parser = http::request_parser<http::string_body>;
  const TransportOptions& options() const { return server_->options; }

  // Waits for the first byte of the next request (the idle timeout), unless the client
  // already sent it (pipelining).
  void WaitForRequest() {
    if (stopping_ || server_->stopping) return Close();
    if (buffer_.size() > 0) return ReadHeader();
    stream_.expires_after(std::chrono::milliseconds(options().idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                              self->buffer_.commit(bytes);
                              if (ec && bytes == 0) return self->Close();
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(options().header_bytes_max));
    parser_->body_limit(static_cast<uint64_t>(options().body_bytes_max));
    stream_.expires_after(std::chrono::milliseconds(options().header_timeout_ms));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // Refuses what a complete header already shows to be wrong.
  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto& header = parser_->get();
    size_t count = 0;
    size_t content_lengths = 0;
    for (const auto& field : header) {
      ++count;
      if (field.name() == http::field::content_length) ++content_lengths;
    }
    if (count > options().header_count_max) {
      return Refuse(431, ErrorCode::kTooLarge,
                    fmt::format("more than {} header fields", options().header_count_max));
    }
    if (header.target().size() > options().target_bytes_max) {
      return Refuse(
          414, ErrorCode::kTooLarge,
          fmt::format("the request target is longer than {} bytes", options().target_bytes_max));
    }
    if (content_lengths > 1 ||
        (content_lengths == 1 && header[http::field::content_length].find_first_not_of(
                                     "0123456789") != beast::string_view::npos)) {
      return Refuse(400, ErrorCode::kParseError,
                    "malformed HTTP request: one Content-Length of digits only");
    }
    if (header.version() != 10 && header.version() != 11) {
      return Refuse(400, ErrorCode::kParseError, "malformed HTTP request: HTTP/1.0 or 1.1 only");
    }
    if (IEquals(AsView(header[http::field::expect]), "100-continue") && !parser_->is_done()) {
      auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                        header.version());
      stream_.expires_after(std::chrono::milliseconds(options().write_timeout_ms));
      return http::async_write(
          stream_, *interim,
          [self = shared_from_this(), interim](beast::error_code write_ec, size_t) {
            if (write_ec) return self->Close();
            self->ReadBody();
          });
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnRequest();
    stream_.expires_after(std::chrono::milliseconds(options().request_timeout_ms));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->OnRequest();
                     });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::header_limit) {
      return Refuse(431, ErrorCode::kTooLarge,
                    fmt::format("the header is larger than {} bytes", options().header_bytes_max));
    }
    if (ec == http::error::body_limit) {
      return Refuse(413, ErrorCode::kTooLarge, "the body is larger than the limit");
    }
    if (ec == beast::error::timeout || ec == http::error::end_of_stream ||
        ec == http::error::partial_message || ec == net::error::operation_aborted ||
        ec.category() == net::error::get_system_category() ||
        ec.category() == net::error::get_misc_category()) {
      return Close();  // the client went away, was too slow, or the server stops
    }
    Refuse(400, ErrorCode::kParseError, "malformed HTTP request: " + ec.message());
  }

  void OnRequest() {
    busy_ = true;
    stream_.expires_never();
    started_ = Clock::now();
    http::request<http::string_body> message = parser_->release();
    parser_.reset();
    keep_alive_ = message.keep_alive();
    head_ = message.method() == http::verb::head;
    HttpRequest request;
    request.method = head_ ? "GET" : std::string(message.method_string());
    request.target = std::string(message.target());
    const size_t question = request.target.find('?');
    request.path = PercentDecode(std::string_view(request.target).substr(0, question), false);
    if (question != std::string::npos) {
      std::string_view query = std::string_view(request.target).substr(question + 1);
      query = query.substr(0, query.find('#'));
      request.query = ParseQuery(query);
    }
    request.headers.reserve(16);
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(message.body());
    request.remote_addr = address_;
    request.request_id = NewRequestId();
    if (server_->on_loop) {
      std::optional<HttpAnswer> answer;
      bool deferred = false;
      const DeferFn defer = [&]() -> Responder {
        deferred = true;
        return Responder(std::make_unique<Responder::State>(
            Responder::State{shared_from_this(), net::make_work_guard(server_->ioc), request.method,
                             request.path, request.request_id}));
      };
      try {
        answer = server_->on_loop(request, defer);
      } catch (const std::exception& e) {
        LogEvent(LogLevel::kError, "internal_error",
                 {{"request_id", request.request_id}, {"detail", e.what()}});
        // A Responder already taken answers 500 itself when it is dropped.
        if (!deferred) answer = ErrorAnswer(500, ErrorCode::kInternal, "internal error");
      }
      if (deferred) return;
      if (answer)
        return Write(std::move(*answer), request.method, request.path, request.request_id);
    }
    // The handler may wait for the journal: it runs on a worker, never on the loop. The
    // work guard keeps the loop running until the answer is written.
    net::post(server_->workers, [self = shared_from_this(), request = std::move(request),
                                 work = net::make_work_guard(server_->ioc)]() mutable {
      HttpAnswer answer;
      try {
        answer = self->server_->handler(request);
      } catch (const std::exception& e) {
        LogEvent(LogLevel::kError, "internal_error",
                 {{"request_id", request.request_id}, {"detail", e.what()}});
        answer = ErrorAnswer(500, ErrorCode::kInternal, "internal error");
      }
      auto executor = self->executor();
      net::post(executor, [self = std::move(self), answer = std::move(answer),
                           method = std::move(request.method), path = std::move(request.path),
                           id = std::move(request.request_id)]() mutable {
        self->Write(std::move(answer), method, path, id);
      });
    });
  }

  // An answer to a request the transport refuses; the connection closes after it.
  void Refuse(int status, ErrorCode code, std::string message) {
    busy_ = true;
    keep_alive_ = false;
    head_ = false;
    started_ = Clock::now();
    const std::string method =
        parser_ && parser_->is_header_done() ? std::string(parser_->get().method_string()) : "";
    Write(ErrorAnswer(status, code, std::move(message)), method, "", NewRequestId());
  }

  void Write(HttpAnswer answer, const std::string& method, const std::string& path,
             const std::string& request_id) {
    if (server_->options.access_log || answer.status >= 500) {
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
      nlohmann::json fields = {{"request_id", request_id}, {"remote", address_},
                               {"method", method},         {"path", path},
                               {"status", answer.status},  {"ms", std::round(ms * 1000) / 1000}};
      if (!answer.operation.empty()) fields["operation"] = answer.operation;
      if (!answer.error_code.empty()) fields["code"] = answer.error_code;
      if (!answer.detail.empty()) fields["detail"] = answer.detail;
      LogEvent(answer.status >= 500 ? LogLevel::kError : LogLevel::kInfo, "request", fields);
    }
    const bool keep = keep_alive_ && !stopping_ && !server_->stopping;
    response_.emplace(static_cast<http::status>(answer.status), 11);
    if (!answer.content_type.empty()) {
      response_->set(http::field::content_type, answer.content_type);
    }
    for (const auto& [name, value] : answer.headers) response_->insert(name, value);
    response_->set("X-Request-Id", request_id);
    response_->keep_alive(keep);
    const size_t length = answer.body.size();
    response_->body() = std::move(answer.body);
    response_->prepare_payload();
    if (head_) {
      response_->body().clear();
      response_->content_length(length);
    }
    stream_.expires_after(std::chrono::milliseconds(options().write_timeout_ms));
    http::async_write(stream_, *response_,
                      [self = shared_from_this(), keep](beast::error_code ec, size_t) {
                        self->response_.reset();
                        self->busy_ = false;
                        if (ec) return self->Close();
                        if (!keep) return self->LingerThenClose();
                        self->WaitForRequest();
                      });
  }

  // After an answer that ends the connection: stop sending, then read and drop what the
  // client still sends (up to 1 MiB, 0.5 s) before closing, so that closing with unread
  // bytes does not reset the connection and destroy the answer on its way.
  void LingerThenClose() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    buffer_.consume(buffer_.size());
    stream_.expires_after(std::chrono::milliseconds(500));
    Drain();
  }
  void Drain() {
    stream_.async_read_some(buffer_.prepare(16384),
                            [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                              self->drained_ += bytes;
                              if (ec || self->drained_ > (1 << 20)) return self->Close();
                              self->Drain();
                            });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  HttpTransport::Impl* server_;
  beast::tcp_stream stream_;
  std::string address_;
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  std::optional<http::response<http::string_body>> response_;
  Clock::time_point started_;
  bool keep_alive_ = false;
  bool head_ = false;
  bool busy_ = false;
  bool stopping_ = false;
  size_t drained_ = 0;
};

Responder::Responder(std::unique_ptr<State> state) : state_(std::move(state)) {}
Responder::Responder(Responder&& other) noexcept = default;

Responder::~Responder() {
  if (!state_) return;
  // Nothing may escape a destructor; out of memory here leaves the connection to its
  // write timeout.
  try {
    Answer(ErrorAnswer(500, ErrorCode::kInternal, "internal error"));
  } catch (...) {  // NOLINT(bugprone-empty-catch)
  }
}

void Responder::Answer(HttpAnswer answer) {
  if (!state_) return;
  std::unique_ptr<State> state = std::move(state_);
  Session::PostAnswer(std::move(state->session), std::move(answer), std::move(state->method),
                      std::move(state->path), std::move(state->request_id));
  // The work guard goes with `state`, after the answer is queued on the loop.
}

void Responder::AnswerWith(absl::AnyInvocable<HttpAnswer()> make) {
  if (!state_) return;
  std::unique_ptr<State> state = std::move(state_);
  Session::PostMake(std::move(state->session), std::move(make), std::move(state->method),
                    std::move(state->path), std::move(state->request_id));
}

void HttpTransport::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (!acceptor.is_open() || stopping) return;
    if (ec) {
      // Out of descriptors (EMFILE): wait a little instead of spinning on the backlog.
      LogEvent(LogLevel::kWarn, "accept_failed", {{"detail", ec.message()}});
      retry_accept.expires_after(std::chrono::milliseconds(100));
      retry_accept.async_wait([this](beast::error_code) { Accept(); });
      return;
    }
    Admit(std::move(socket));
    Accept();
  });
}

void HttpTransport::Impl::Admit(tcp::socket socket) {
  beast::error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return;
  std::string address = remote.address().to_string();
  bool admitted = false;
  {
    journal::MutexLock lock(&mutex);
    size_t& from_address = per_address[address];
    if (open < options.connections_max && from_address < options.connections_per_address_max) {
      ++open;
      ++from_address;
      admitted = true;
    } else if (from_address == 0) {
      per_address.erase(address);
    }
  }
  if (!admitted) {
    // Best effort, without waiting: a fresh socket's send buffer takes this at once.
    static const std::string kBusy = [] {
      const std::string body =
          ErrorBody(Error{ErrorCode::kUnavailable, "too many connections; retry later", ""}).dump();
      return fmt::format(
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Content-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{}",
          body.size(), body);
    }();
    ::send(socket.native_handle(), kBusy.data(), kBusy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  auto session = std::make_shared<Session>(this, std::move(socket), std::move(address));
  {
    journal::MutexLock lock(&mutex);
    sessions.emplace(session.get(), session);
  }
  net::dispatch(session->executor(), [session] { session->Start(); });
}

void HttpTransport::Impl::StopOnLoop() {
  beast::error_code ec;
  acceptor.close(ec);
  retry_accept.cancel();
  std::vector<std::shared_ptr<Session>> live;
  {
    journal::MutexLock lock(&mutex);
    for (auto& [raw, weak] : sessions) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) {
    net::post(session->executor(), [session] { session->StopIfIdle(); });
  }
  if (live.empty()) return;
  // Answers in flight get a few seconds; then the loop stops regardless.
  stop_deadline.expires_after(std::chrono::seconds(5));
  stop_deadline.async_wait([this](beast::error_code timer_ec) {
    if (!timer_ec) ioc.stop();
  });
}

HttpTransport::HttpTransport(TransportOptions options, HttpHandler handler, LoopHandler on_loop)
    : impl_(std::make_shared<Impl>(options, std::move(handler), std::move(on_loop))) {}

HttpTransport::~HttpTransport() {
  try {
    Stop();
    impl_->workers.join();
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing may escape a destructor
  }
}

Status HttpTransport::Listen(const std::string& host, int port) {
  Impl& s = *impl_;
  beast::error_code ec;
  const auto address = net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return MakeError(ErrorCode::kInvalidArgument, "cannot listen on " + host, "listen");
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  // The system's largest backlog: a burst of new connections must not overflow it.
  if (!ec) s.acceptor.listen(SOMAXCONN, ec);
  if (ec) {
    return MakeError(ErrorCode::kIoError,
                     fmt::format("cannot listen on {}:{}: {}", host, port, ec.message()));
  }
  s.bound_port = s.acceptor.local_endpoint().port();
  s.Accept();
  return OkStatus();
}

int HttpTransport::port() const { return impl_->bound_port; }

void HttpTransport::Run() {
  // Two loop threads: reading and writing sockets is cheap, but a burst of thousands of
  // slow clients' bytes should not delay others behind one thread.
  impl_->running = true;
  std::thread second([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  second.join();
  impl_->running = false;
  impl_->workers.join();
}

void HttpTransport::Stop() {
  Impl& s = *impl_;
  s.stopping = true;
  if (s.stop_posted.exchange(true)) return;
  net::post(s.accept_strand, [&s] { s.StopOnLoop(); });
}

size_t HttpTransport::connections() const {
  journal::MutexLock lock(&impl_->mutex);
  return impl_->open;
}

}  // namespace atrium::server
