#include "server/server.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <shared_mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <httplib.h>
#include <toml++/toml.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "core/core.h"
#include "journal/committer.h"
#include "journal/journal.h"
#include "journal/open.h"
#include "server/api.h"
#include "server/http_error.h"
#include "server/metrics.h"
#include "server/openapi.h"
#include "server/static_assets.h"
#include "server/tokens.h"

namespace atrium::server {
namespace {

using nlohmann::json;

int64_t WallClockUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The path template as a regex and the names of its parameters.
std::pair<std::string, std::vector<std::string>> CompilePath(std::string_view path) {
  std::string regex;
  std::vector<std::string> names;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '{') {
      const size_t end = path.find('}', i);
      names.emplace_back(path.substr(i + 1, end - i - 1));
      regex += names.back() == "obligation" ? "(.+)" : "([^/]+)";
      i = end + 1;
    } else {
      if (path[i] == '.') regex += '\\';
      regex += path[i++];
    }
  }
  return {regex, names};
}

// A per-token token bucket: `rate` requests a second, bursts of up to one second's worth.
class RateLimiter {
 public:
  explicit RateLimiter(int64_t rate) : rate_(rate) {}
  bool Allow(const std::string& key) {
    if (rate_ <= 0) return true;
    const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    std::lock_guard lock(mutex_);
    if (buckets_.size() > kBucketsMax) buckets_.clear();  // bounded memory; a reset only forgives
    Bucket& bucket = buckets_[key];
    if (bucket.at_us == 0) bucket = {now, rate_ * 1'000'000};
    bucket.micro_tokens =
        std::min(rate_ * 1'000'000, bucket.micro_tokens + (now - bucket.at_us) * rate_);
    bucket.at_us = now;
    if (bucket.micro_tokens < 1'000'000) return false;
    bucket.micro_tokens -= 1'000'000;
    return true;
  }

 private:
  struct Bucket {
    int64_t at_us = 0;
    int64_t micro_tokens = 0;  // millionths of a request
  };
  static constexpr size_t kBucketsMax = 100'000;
  const int64_t rate_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

// Holds the store's single-writer lock for the life of the server.
class StoreLock {
 public:
  ~StoreLock() {
    if (fd_ >= 0) close(fd_);
  }
  Status AcquireFile(const std::string& path) {
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return MakeError(ErrorCode::kIoError, "cannot open lock file " + path);
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      return MakeError(ErrorCode::kLocked,
                       "another atrium serve is using this store (" + path + " is locked)");
    }
    return OkStatus();
  }
  Status AcquirePg(const std::string& url) {
    try {
      pg_ = std::make_unique<pqxx::connection>(url);
      pqxx::nontransaction tx(*pg_);
      // The key is a fixed number chosen for Atrium's journal.
      const bool got = tx.exec1("SELECT pg_try_advisory_lock(7305718390125)")[0].as<bool>();
      if (!got) {
        return MakeError(ErrorCode::kLocked,
                         "another atrium serve is using this PostgreSQL database");
      }
    } catch (const std::exception& e) {
      return MakeError(ErrorCode::kIoError, std::string("cannot lock the database: ") + e.what());
    }
    return OkStatus();
  }

 private:
  int fd_ = -1;
  std::unique_ptr<pqxx::connection> pg_;
};

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

Status ParseListen(const std::string& text, ServerOptions* options) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return MakeError(ErrorCode::kInvalidArgument, "--listen is ADDRESS:PORT", "listen");
  }
  int port = 0;
  const std::string digits = text.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 ||
      digits.find_first_not_of("0123456789") != std::string::npos ||
      (port = std::stoi(digits)) > 65535) {
    return MakeError(ErrorCode::kInvalidArgument, "--listen port must be 0 to 65535", "listen");
  }
  options->listen_host = text.substr(0, colon);
  options->port = port;
  return OkStatus();
}

Status LoadServerConfig(const std::string& path, ServerOptions* options) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return MakeError(ErrorCode::kConfigInvalid,
                     fmt::format("{}:{}: {}", path, e.source().begin.line, e.description()));
  }
  for (const auto& [key, value] : table) {
    const std::string name(key.str());
    auto bad = [&] {
      return MakeError(ErrorCode::kConfigInvalid, path + ": bad value for " + name, name);
    };
    if (name == "listen") {
      if (!value.is_string()) return bad();
      ATRIUM_TRY(ParseListen(*value.value<std::string>(), options));
    } else if (name == "data" || name == "db") {
      if (!value.is_string()) return bad();
      (name == "data" ? options->data_dir : options->db) = *value.value<std::string>();
    } else if (name == "body_bytes_max" || name == "threads" || name == "rate_per_token" ||
               name == "tick_interval_ms" || name == "queue_depth_max") {
      if (!value.is_integer() || *value.value<int64_t>() < 0) return bad();
      const int64_t number = *value.value<int64_t>();
      if (name == "body_bytes_max") options->body_bytes_max = static_cast<size_t>(number);
      if (name == "threads") options->threads = static_cast<size_t>(std::max<int64_t>(number, 2));
      if (name == "rate_per_token") options->rate_per_token = number;
      if (name == "tick_interval_ms") options->tick_interval_ms = std::max<int64_t>(number, 10);
      if (name == "queue_depth_max") options->queue_depth_max = static_cast<size_t>(number);
    } else if (name == "access_log") {
      if (!value.is_boolean()) return bad();
      options->access_log = *value.value<bool>();
    } else {
      return MakeError(ErrorCode::kConfigInvalid, path + ": unknown key " + name, name);
    }
  }
  return OkStatus();
}

struct Server::Impl {
  explicit Impl(ServerOptions opts) : options(std::move(opts)), limiter(options.rate_per_token) {}

  ServerOptions options;
  StoreLock store_lock;
  std::unique_ptr<journal::Committer> committer;
  httplib::Server http;
  Metrics metrics;
  RateLimiter limiter;
  std::string admin_token_path;
  std::string location;
  int bound_port = 0;

  // Tokens by id, mirrored from the state (every change goes through this process).
  std::shared_mutex tokens_mutex;
  std::unordered_map<std::string, core::TokenRecord> tokens;

  std::thread clock;
  std::mutex clock_mutex;
  std::condition_variable clock_wake;
  bool stopping = false;
  std::atomic<bool> ready = false;

  // ---- commands --------------------------------------------------------------------

  Result<core::AppAnswer> Submit(const json& command) {
    auto future =
        committer->Submit(core::AppCommand{.now_us = WallClockUs(), .json = command.dump()});
    Result<core::CommandResult> result = future.get();
    if (!result.ok()) return result.error();
    if (!result->app) return MakeError(ErrorCode::kInternal, "no answer");
    return std::move(*result->app);
  }

  static json ActorJson(const core::Actor& actor) {
    json out = {{"role", core::ToString(actor.role)}};
    if (!actor.person.empty()) out["person"] = actor.person;
    if (!actor.token.empty()) out["token"] = actor.token;
    return out;
  }

  void RememberToken(const core::TokenRecord& record) {
    std::unique_lock lock(tokens_mutex);
    tokens[record.id] = record;
  }

  // Loads the token mirror from the recovered state.
  void LoadTokens() {
    (void)committer->Read([&](const core::Core& core) {
      for (const auto& [id, record] : core.app().tokens()) tokens[id] = record;
    });
  }

  Status Bootstrap() {
    bool empty = false;
    ATRIUM_TRY(
        committer->Read([&](const core::Core& core) { empty = core.app().tokens().empty(); }));
    if (!empty) return OkStatus();
    const IssuedToken token = IssueToken();
    const core::Actor system{.role = core::Role::kAdmin, .person = "", .token = "bootstrap"};
    json create = {{"op", "token_create"},      {"actor", ActorJson(system)},
                   {"token_id", token.id},      {"salt", token.salt_hex},
                   {"hash", token.hash_hex},    {"role", "admin"},
                   {"label", "bootstrap admin"}};
    // The token file is written before the token is journaled, so a crash between the two
    // leaves a file that a restart replaces (the store is still empty then).
    std::filesystem::create_directories(options.data_dir);
    admin_token_path = (std::filesystem::path(options.data_dir) / "admin.token").string();
    {
      const int fd = open(admin_token_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0) return MakeError(ErrorCode::kIoError, "cannot write " + admin_token_path);
      fchmod(fd, 0600);
      const std::string text = token.text + "\n";
      const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
      fsync(fd);
      close(fd);
      if (!written) return MakeError(ErrorCode::kIoError, "cannot write " + admin_token_path);
    }
    ATRIUM_ASSIGN_OR_RETURN(core::AppAnswer created, Submit(create));
    ATRIUM_TRY(created.status);
    RememberToken(core::TokenRecord{.id = token.id,
                                    .role = core::Role::kAdmin,
                                    .salt_hex = token.salt_hex,
                                    .hash_hex = token.hash_hex});
    if (!options.bootstrap_examples || options.examples_dir.empty()) return OkStatus();
    const core::Actor admin{.role = core::Role::kAdmin, .person = "", .token = token.id};
    const std::string program = ReadText(options.examples_dir + "/programs/build-on-trainium.toml");
    const std::string cluster = ReadText(options.examples_dir + "/clusters/research-40k.toml");
    for (json command : {json{{"op", "program_create"}, {"toml", program}},
                         json{{"op", "cluster_load"}, {"toml", cluster}}}) {
      command["actor"] = ActorJson(admin);
      ATRIUM_ASSIGN_OR_RETURN(core::AppAnswer answer, Submit(command));
      ATRIUM_TRY(answer.status);
    }
    return OkStatus();
  }

  // ---- HTTP --------------------------------------------------------------------------

  static void Reply(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(), "application/json");
  }

  static void ReplyError(httplib::Response& res, const Error& error) {
    Reply(res, HttpStatusOf(error.code), ErrorBody(error));
  }

  // Who is asking: public without a token; 401 for a token that is malformed, unknown or
  // revoked.
  Result<core::Actor> Authenticate(const httplib::Request& req) {
    const std::string header = req.get_header_value("Authorization");
    if (header.empty()) return core::Actor{};
    constexpr std::string_view kBearer = "Bearer ";
    const auto parsed = header.compare(0, kBearer.size(), kBearer) == 0
                            ? ParseToken(std::string_view(header).substr(kBearer.size()))
                            : std::nullopt;
    const Error unauthenticated{ErrorCode::kUnauthenticated,
                                "the token is malformed, unknown or revoked", "Authorization"};
    if (!parsed) return unauthenticated;
    std::shared_lock lock(tokens_mutex);
    const auto found = tokens.find(parsed->id);
    if (found == tokens.end() || found->second.revoked ||
        !TokenMatches(found->second, parsed->secret)) {
      return unauthenticated;
    }
    return core::Actor{
        .role = found->second.role, .person = found->second.person, .token = found->second.id};
  }

  void Handle(const Route& route, const std::vector<std::string>& names,
              const httplib::Request& req, httplib::Response& res) {
    const auto started = std::chrono::steady_clock::now();
    HandleInner(route, names, req, res);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics.Observe(route.name, res.status, seconds);
  }

  void HandleInner(const Route& route, const std::vector<std::string>& names,
                   const httplib::Request& req, httplib::Response& res) {
    auto actor = Authenticate(req);
    if (!actor.ok()) return ReplyError(res, actor.error());
    if ((route.roles & RoleBit(actor->role)) == 0) {
      if (actor->role == core::Role::kPublic) {
        return ReplyError(
            res, Error{ErrorCode::kUnauthenticated,
                       "this route needs a token (Authorization: Bearer ...)", "Authorization"});
      }
      return ReplyError(
          res, Error{ErrorCode::kForbidden,
                     fmt::format("the {} role may not {}", core::ToString(actor->role), route.name),
                     ""});
    }
    if (!limiter.Allow(actor->token.empty() ? req.remote_addr : actor->token)) {
      res.set_header("Retry-After", "1");
      return ReplyError(res, Error{ErrorCode::kRateLimited, "too many requests; retry later", ""});
    }
    std::map<std::string, std::string> params;
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string value = req.matches[i + 1].str();
      if (!core::ValidId(value, names[i] == "obligation")) {
        return ReplyError(res, Error{ErrorCode::kInvalidPath,
                                     "invalid " + names[i] +
                                         ": 1-128 characters of letters, digits and . _ : @ -",
                                     names[i]});
      }
      params[names[i]] = value;
    }
    if (route.read != nullptr) return HandleRead(route, *actor, params, req, res);
    HandleChange(route, *actor, params, req, res);
  }

  void HandleRead(const Route& route, const core::Actor& actor,
                  const std::map<std::string, std::string>& params, const httplib::Request& req,
                  httplib::Response& res) {
    Result<json> answer = Error{ErrorCode::kInternal, "not read", ""};
    const Status read = committer->Read([&](const core::Core& core) {
      answer = route.read(ReadRequest{core.app(), actor, params, req.params});
    });
    if (!read.ok()) return ReplyError(res, read.error());
    if (!answer.ok()) return ReplyError(res, answer.error());
    Reply(res, 200, *answer);
  }

  void HandleChange(const Route& route, const core::Actor& actor,
                    const std::map<std::string, std::string>& params, const httplib::Request& req,
                    httplib::Response& res) {
    json body = json::object();
    if (!req.body.empty()) {
      body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
      if (body.is_discarded()) {
        return ReplyError(
            res, Error{ErrorCode::kParseError, "the body is not valid JSON (UTF-8, RFC 8259)", ""});
      }
      if (!body.is_object()) {
        return ReplyError(res, Error{ErrorCode::kParseError, "the body must be a JSON object", ""});
      }
    }
    json command = {{"op", route.op}, {"actor", ActorJson(actor)}};
    if (!route.body_field.empty()) {
      command[std::string(route.body_field)] = std::move(body);
    } else {
      for (auto& [key, value] : body.items()) {
        if (key == "op" || key == "actor" || key == "idempotency_key" || params.contains(key) ||
            (route.op == "token_create" && (key == "token_id" || key == "salt" || key == "hash"))) {
          return ReplyError(res, Error{ErrorCode::kUnknownField, "unknown field " + key, key});
        }
        command[key] = value;
      }
    }
    for (const auto& [name, value] : params) command[name] = value;
    const std::string key = req.get_header_value("Idempotency-Key");
    if (!key.empty()) {
      const bool printable = key.size() <= 255 && std::all_of(key.begin(), key.end(), [](char c) {
                               return c >= 0x21 && c <= 0x7e;
                             });
      if (!printable) {
        return ReplyError(
            res, Error{ErrorCode::kInvalidArgument,
                       "Idempotency-Key is 1-255 printable ASCII characters", "Idempotency-Key"});
      }
      command["idempotency_key"] = key;
    }
    std::optional<IssuedToken> issued;
    if (route.op == "token_create") {
      issued = IssueToken();
      command["token_id"] = issued->id;
      command["salt"] = issued->salt_hex;
      command["hash"] = issued->hash_hex;
      if (!command.contains("role")) command["role"] = core::ToString(actor.role);
      if (!command.contains("person") && !actor.person.empty()) command["person"] = actor.person;
    }
    auto answer = Submit(command);
    if (!answer.ok()) {
      if (answer.error().code == ErrorCode::kUnavailable) res.set_header("Retry-After", "1");
      return ReplyError(res, answer.error());
    }
    if (!answer->status.ok()) return ReplyError(res, answer->status.error());
    json result = answer->result;
    result.erase("_request");
    if (answer->replayed) res.set_header("Idempotent-Replayed", "true");
    if (route.op == "token_create" && !answer->replayed) {
      core::TokenRecord record{.id = issued->id,
                               .role = *core::ParseRole(result.at("role").get<std::string>()),
                               .person = result.value("person", std::string()),
                               .salt_hex = issued->salt_hex,
                               .hash_hex = issued->hash_hex};
      RememberToken(record);
      result["token"] = issued->text;  // shown once, never stored
    }
    if (route.op == "token_revoke" && !answer->replayed) {
      std::unique_lock lock(tokens_mutex);
      if (auto found = tokens.find(params.at("token_id")); found != tokens.end()) {
        found->second.revoked = true;
      }
    }
    Reply(res, route.success_status, result);
  }

  void RegisterRoutes() {
    for (const Route& route : Routes()) {
      auto [regex, names] = CompilePath(route.path);
      auto handler = [this, &route, names = names](const httplib::Request& req,
                                                   httplib::Response& res) {
        Handle(route, names, req, res);
      };
      if (route.method == "GET") http.Get(regex, handler);
      if (route.method == "POST") http.Post(regex, handler);
      if (route.method == "DELETE") http.Delete(regex, handler);
    }
    http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      Reply(res, 200, {{"status", "ok"}});
    });
    http.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      const Status read = committer->Read([](const core::Core&) {});
      if (!ready.load() || !read.ok()) {
        return ReplyError(res, Error{ErrorCode::kUnavailable, "not ready", ""});
      }
      Reply(res, 200, {{"status", "ready"}, {"durable_seq", committer->durable_seq()}});
    });
    http.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      auto actor = Authenticate(req);
      if (!actor.ok()) return ReplyError(res, actor.error());
      if (actor->role != core::Role::kAdmin && actor->role != core::Role::kOperator) {
        return ReplyError(res,
                          Error{actor->role == core::Role::kPublic ? ErrorCode::kUnauthenticated
                                                                   : ErrorCode::kForbidden,
                                "metrics are for admins and operators", ""});
      }
      int64_t busy = 0;
      int64_t waiting = 0;
      (void)committer->Read([&](const core::Core& core) {
        if (const sched::Scheduler* scheduler = core.app().scheduler()) {
          busy = scheduler->busy_chips();
          waiting = static_cast<int64_t>(scheduler->waiting_count());
        }
      });
      const journal::CommitterStats stats = committer->stats();
      res.set_content(metrics.Render(committer->queue_depth(), busy, waiting, stats),
                      "text/plain; version=0.0.4");
    });
    // The dashboard (static_assets.h): "/" and "/assets/...".
    if (!options.web_root.empty()) {
      assets = std::make_unique<StaticAssets>(options.web_root);
      auto serve = [this](const httplib::Request& req, httplib::Response& res) {
        // cpp-httplib compresses text answers itself (br or gzip, as the client accepts),
        // so the file is asked for uncompressed here.
        StaticResponse out =
            assets->Serve({req.method, req.path, "", req.get_header_value("If-None-Match")});
        for (auto& [name, value] : out.headers) res.set_header(name, value);
        res.status = out.status;
        res.body = std::move(out.body);
      };
      http.Get("/", serve);
      http.Get(R"(/assets/.+)", serve);
    }
    http.Get("/v1/openapi.json", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(openapi, "application/json");
    });
    // A path with a "." or ".." segment (after percent-decoding) never names a resource.
    http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
      const std::string& path = req.path;
      for (size_t start = 0; start <= path.size();) {
        size_t end = path.find('/', start);
        if (end == std::string::npos) end = path.size();
        const std::string_view segment(path.data() + start, end - start);
        if (segment == "." || segment == "..") {
          ReplyError(res, Error{ErrorCode::kInvalidPath, "the path has a \".\" or \"..\" segment",
                                "path"});
          return httplib::Server::HandlerResponse::Handled;
        }
        start = end + 1;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      ErrorCode code = ErrorCode::kNotFound;
      std::string message = "no such route";
      if (res.status == 413) {
        code = ErrorCode::kTooLarge;
        message = "the body is larger than the limit";
      } else if (res.status == 400) {
        code = ErrorCode::kParseError;
        message = "malformed HTTP request";
      } else if (res.status == 405) {
        code = ErrorCode::kNotFound;
        message = "no such method for this route";
      } else if (res.status >= 500) {
        code = ErrorCode::kInternal;
      }
      Reply(res, res.status, ErrorBody(Error{code, message, ""}));
    });
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          ReplyError(res, Error{ErrorCode::kInternal, "internal error", ""});
        });
  }

  std::string openapi;
  std::unique_ptr<StaticAssets> assets;

  void ClockLoop() {
    // A tick is journaled when a run reached its walltime, when jobs wait and something
    // was journaled since the last tick (a pass could now decide differently), and once a
    // minute for the program's deadlines. A queue stuck on credits adds one entry a
    // minute, not one a second.
    int64_t last_full_tick_us = 0;
    uint64_t seq_after_tick = 0;
    std::unique_lock lock(clock_mutex);
    while (!stopping) {
      clock_wake.wait_for(lock, std::chrono::milliseconds(options.tick_interval_ms));
      if (stopping) break;
      lock.unlock();
      const int64_t now = WallClockUs();
      bool due = false;
      (void)committer->Read([&](const core::Core& core) {
        const core::AppState& app = core.app();
        const bool waiting = app.scheduler() != nullptr && app.scheduler()->waiting_count() > 0;
        due = app.TickDue(now) || (waiting && committer->durable_seq() != seq_after_tick);
      });
      if (due || now - last_full_tick_us >= 60'000'000) {
        if (!due) last_full_tick_us = now;
        const core::Actor clock_actor{.role = core::Role::kAdmin, .person = "", .token = "clock"};
        (void)Submit(json{{"op", "tick"}, {"actor", ActorJson(clock_actor)}});
        seq_after_tick = committer->durable_seq();
      }
      lock.lock();
    }
  }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() {
  Stop();
  if (impl_->clock.joinable()) impl_->clock.join();
}

Status Server::Start() {
  Impl& s = *impl_;
  std::error_code ec;
  std::filesystem::create_directories(s.options.data_dir, ec);
  if (ec) return MakeError(ErrorCode::kIoError, "cannot create " + s.options.data_dir);
  const bool postgres =
      s.options.db.rfind("postgresql://", 0) == 0 || s.options.db.rfind("postgres://", 0) == 0;
  s.location = s.options.db.empty()
                   ? (std::filesystem::path(s.options.data_dir) / "atrium.db").string()
                   : s.options.db;
  if (postgres) {
    ATRIUM_TRY(s.store_lock.AcquirePg(s.location));
  } else {
    ATRIUM_TRY(s.store_lock.AcquireFile(s.location + ".lock"));
  }
  ATRIUM_ASSIGN_OR_RETURN(
      auto store, journal::OpenJournalStore(s.location, journal::OpenMode::kReadWriteCreate));
  ATRIUM_ASSIGN_OR_RETURN(auto durable, journal::DurableCore::Open(std::move(store), {}));
  s.committer = std::make_unique<journal::Committer>(
      std::move(durable), journal::CommitterOptions{.queue_depth_max = s.options.queue_depth_max});
  s.LoadTokens();
  ATRIUM_TRY(s.Bootstrap());
  s.openapi = OpenApiDocument().dump();

  const size_t threads = s.options.threads;
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.http.set_payload_max_length(s.options.body_bytes_max);
  s.http.set_keep_alive_max_count(100'000);
  s.http.set_tcp_nodelay(true);
  if (s.options.access_log) {
    s.http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      fmt::print(stderr, "{} {} {}\n", req.method, req.path, res.status);
    });
  }
  s.RegisterRoutes();
  // cpp-httplib listens with a backlog of 5: a burst of new connections (50 clients
  // connecting at once) overflows it, and the kernel then drops their first packets, which
  // come back only after a retransmission (hundreds of milliseconds). Keep the listening
  // socket and listen on it again with the system's largest backlog once bound.
  int listen_fd = -1;
  s.http.set_socket_options([&listen_fd](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_fd = sock;
  });
  if (s.options.port == 0) {
    s.bound_port = s.http.bind_to_any_port(s.options.listen_host);
    if (s.bound_port <= 0)
      return MakeError(ErrorCode::kIoError, "cannot bind " + s.options.listen_host);
  } else {
    if (!s.http.bind_to_port(s.options.listen_host, s.options.port)) {
      return MakeError(ErrorCode::kIoError, fmt::format("cannot listen on {}:{}",
                                                        s.options.listen_host, s.options.port));
    }
    s.bound_port = s.options.port;
  }
  if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);
  s.clock = std::thread([&s] { s.ClockLoop(); });
  s.ready = true;
  return OkStatus();
}

void Server::Run() {
  if (stopping()) return;
  impl_->http.listen_after_bind();
}

void Server::Stop() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.clock_mutex);
    s.stopping = true;
  }
  s.ready = false;
  s.clock_wake.notify_all();
  s.http.stop();  // a no-op until the server listens: the caller repeats it (see Run)
}

bool Server::stopping() const {
  std::lock_guard lock(impl_->clock_mutex);
  return impl_->stopping;
}

int Server::port() const { return impl_->bound_port; }
std::string Server::listen_url() const {
  return fmt::format("http://{}:{}", impl_->options.listen_host, impl_->bound_port);
}
const std::string& Server::admin_token_path() const { return impl_->admin_token_path; }
std::string Server::store_location() const { return impl_->location; }

}  // namespace atrium::server
