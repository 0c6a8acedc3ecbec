#include "server/server.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include "absl/functional/any_invocable.h"

#include "base/nesting.h"
#include "cluster/config.h"
#include "core/core.h"
#include "core/ops.h"
#include "journal/committer.h"
#include "journal/journal.h"
#include "journal/mutex.h"
#include "journal/open.h"
#include "sched/policy.h"
#include "server/api.h"
#include "server/clock.h"
#include "server/exec_runner.h"
#include "server/http_error.h"
#include "server/http_transport.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/openapi.h"
#include "server/static_assets.h"
#include "server/tokens.h"

namespace atrium::server {
namespace {

using nlohmann::json;

// Matches a path against a template ("/v1/jobs/{job}"): a parameter is one or more
// characters without "/" ("{obligation}" may hold "/"). Appends the parameters' values.
// Values are views into `path` (nothing is allocated while routes are tried).
bool MatchPath(std::string_view pattern, std::string_view path,
               std::vector<std::string_view>* values) {
  while (!pattern.empty()) {
    if (pattern[0] != '{') {
      if (path.empty() || path[0] != pattern[0]) return false;
      pattern.remove_prefix(1);
      path.remove_prefix(1);
      continue;
    }
    const size_t close = pattern.find('}');
    const bool slash = pattern.substr(1, close - 1) == "obligation";
    pattern.remove_prefix(close + 1);
    // The longest value first (a later literal may also occur inside the value).
    size_t longest = 0;
    while (longest < path.size() && (slash || path[longest] != '/')) ++longest;
    // A value without "/" followed by "/" or the end can only be the longest.
    const size_t shortest = !slash && (pattern.empty() || pattern[0] == '/') ? longest : 1;
    for (size_t length = longest; length >= shortest && length >= 1; --length) {
      values->emplace_back(path.substr(0, length));
      if (MatchPath(pattern, path.substr(length), values)) return true;
      values->pop_back();
    }
    return false;
  }
  return path.empty();
}

// A per-token token bucket: `rate` requests a second, bursts of up to one second's worth.
// Intervals are measured on the monotonic clock (never the service's Clock: a test that
// advances the day must not refill every bucket).
class RateLimiter {
 public:
  explicit RateLimiter(int64_t rate) : rate_(rate) {}
  bool Allow(const std::string& key) ABSL_LOCKS_EXCLUDED(mutex_) {
    if (rate_ <= 0) return true;
    const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    journal::MutexLock lock(&mutex_);
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
  journal::Mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mutex_);
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

// The transport's numeric options by configuration key; nullptr for another key.
static int64_t* TransportField(TransportOptions& t, const std::string& name) {
  static_assert(sizeof(size_t) == sizeof(int64_t));
  if (name == "header_bytes_max") return reinterpret_cast<int64_t*>(&t.header_bytes_max);
  if (name == "header_count_max") return reinterpret_cast<int64_t*>(&t.header_count_max);
  if (name == "target_bytes_max") return reinterpret_cast<int64_t*>(&t.target_bytes_max);
  if (name == "connections_max") return reinterpret_cast<int64_t*>(&t.connections_max);
  if (name == "connections_per_address_max") {
    return reinterpret_cast<int64_t*>(&t.connections_per_address_max);
  }
  if (name == "header_timeout_ms") return &t.header_timeout_ms;
  if (name == "request_timeout_ms") return &t.request_timeout_ms;
  if (name == "idle_timeout_ms") return &t.idle_timeout_ms;
  if (name == "write_timeout_ms") return &t.write_timeout_ms;
  return nullptr;
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
      return MakeError(ErrorCode::kConfigInvalid, fmt::format("{}: bad value for {}", path, name),
                       name);
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
    } else if (auto* field = TransportField(options->transport, name)) {
      if (!value.is_integer() || *value.value<int64_t>() <= 0) return bad();
      *field = *value.value<int64_t>();
    } else if (name == "access_log") {
      if (!value.is_boolean()) return bad();
      options->access_log = *value.value<bool>();
    } else if (name == "snapshot_entries" || name == "snapshot_state_bytes_per_entry") {
      if (!value.is_integer() || *value.value<int64_t>() < 0) return bad();
      const auto number = static_cast<uint64_t>(*value.value<int64_t>());
      (name == "snapshot_entries" ? options->snapshot_entries
                                  : options->snapshot_state_bytes_per_entry) = number;
    } else if (name == "snapshot_encode") {
      const std::optional<std::string> where = value.value<std::string>();
      if (!where || (*where != "child" && *where != "apply_thread")) return bad();
      options->snapshot_encode = *where;
    } else {
      return MakeError(ErrorCode::kConfigInvalid, fmt::format("{}: unknown key {}", path, name),
                       name);
    }
  }
  return OkStatus();
}

struct Server::Impl {
  explicit Impl(ServerOptions opts) : options(std::move(opts)), limiter(options.rate_per_token) {
    if (!options.web_root.empty()) assets = std::make_unique<StaticAssets>(options.web_root);
  }
  ~Impl() {
    // Commands still in the journal's pipeline answer through the transport's Responders
    // (changes deferred on the loop): the runner stops submitting, then the committer
    // drains, while the transport still exists. Their answers are built on the loop
    // (Responder::AnswerWith), which has stopped by now (Server::Run returned): the makers
    // are dropped uncalled with the transport, so none touches this object.
    exec.reset();
    committer.reset();
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  ServerOptions options;
  std::unique_ptr<journal::Committer> committer;
  std::unique_ptr<HttpTransport> http;
  Metrics metrics;
  RateLimiter limiter;
  std::string admin_token_path;
  std::string location;
  int bound_port = 0;

  // Tokens by id, mirrored from the state (every change goes through this process).
  journal::SharedMutex tokens_mutex;
  std::unordered_map<std::string, core::TokenRecord> tokens ABSL_GUARDED_BY(tokens_mutex);

  // Where the time of every command comes from (clock.h); manual_clock is set, and the
  // /testing/clock route exists, only with options.clock == "manual".
  std::shared_ptr<const Clock> clock_source = std::make_shared<SystemClock>();
  std::shared_ptr<ManualClock> manual_clock;

  std::thread clock;
  mutable journal::Mutex clock_mutex;
  journal::CondVar clock_wake;
  bool stopping ABSL_GUARDED_BY(clock_mutex) = false;
  std::atomic<bool> ready = false;

  // One look at due work at a time (the clock thread, or /testing/clock).
  journal::Mutex tick_mutex;
  int64_t last_full_tick_us ABSL_GUARDED_BY(tick_mutex) = 0;
  uint64_t seq_after_tick ABSL_GUARDED_BY(tick_mutex) = 0;

  // ---- commands --------------------------------------------------------------------

  Result<core::AppAnswer> Submit(const json& command) {
    auto future = committer->Submit(core::AppCommand{.now_us = clock_source->NowUs(),
                                                     .json = WithResolvedPolicy(command).dump()});
    return AppAnswerOf(future.get());
  }

  // Submit without waiting: `done` runs on the committer's write thread once the command
  // is durable (or refused), and must hand its answer on without blocking.
  void SubmitThen(const json& command, absl::AnyInvocable<void(Result<core::AppAnswer>)> done) {
    committer->Submit(core::AppCommand{.now_us = clock_source->NowUs(),
                                       .json = WithResolvedPolicy(command).dump()},
                      [done = std::move(done)](Result<core::CommandResult> result) mutable {
                        done(AppAnswerOf(std::move(result)));
                      });
  }

  static Result<core::AppAnswer> AppAnswerOf(Result<core::CommandResult> result) {
    if (!result.ok()) return result.error();
    if (!result->app) return MakeError(ErrorCode::kInternal, "no answer");
    return std::move(*result->app);
  }

  // A draft or a sponsor's override is solved here, on the request's thread with no lock
  // held (docs/journal.md, "Results, not requests to recompute"): the call's problems come
  // from one consistent read of the state, their answers go into the command as
  // `solver_answers`, and the apply thread only checks each answer against the problem it
  // builds and records the outcome. If the call changed in between (the apply refuses the
  // answers with kInvariantViolated on `solver_answers`), it is solved once more, then
  // left to the apply thread.
  Result<core::AppAnswer> SubmitSolved(const json& command) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::optional<json> solved = WithSolverAnswers(command);
      if (!solved) break;
      Result<core::AppAnswer> answer = Submit(*solved);
      const bool stale = answer.ok() && !answer->status.ok() &&
                         answer->status.error().code == ErrorCode::kInvariantViolated &&
                         answer->status.error().field == "solver_answers";
      if (!stale) {
        if (answer.ok() && answer->status.ok()) metrics.CountSolve(/*off_apply_thread=*/true);
        return answer;
      }
    }
    Result<core::AppAnswer> answer = Submit(command);
    if (answer.ok() && answer->status.ok()) metrics.CountSolve(/*off_apply_thread=*/false);
    return answer;
  }

  // The command with the answers to its problems, or nothing when they cannot be built
  // here (the apply then refuses the command with its own error, or solves).
  std::optional<json> WithSolverAnswers(const json& command) const {
    const auto text = [&](const char* field) {
      const auto found = command.find(field);
      return found != command.end() && found->is_string() ? found->get<std::string>()
                                                          : std::string();
    };
    const std::string op = text("op");
    const std::string call = text("call");
    if (call.empty()) return std::nullopt;
    std::vector<program::AwardProblem> problems;
    std::string policy;
    (void)committer->Read([&](const core::Core& core) {
      const program::ProgramState* program = core.app().FindProgram(text("program"));
      if (program == nullptr) return;
      Result<std::vector<program::AwardProblem>> built = Error{ErrorCode::kInvalidArgument, "", ""};
      if (op == "decision_draft") {
        built = program->DraftProblems(call);
        policy = text("policy");
        if (policy.empty()) policy = program->definition().award_policy;
      } else {
        const std::string kind = text("kind");
        if (kind != "veto" && kind != "add") return;
        built = program->OverrideProblems(
            call, text("proposal"),
            kind == "veto" ? program::OverrideKind::kVeto : program::OverrideKind::kAdd);
        if (built.ok()) policy = program->decisions().at(call).policy;
      }
      if (built.ok()) problems = std::move(*built);
    });
    if (problems.empty()) return std::nullopt;
    auto solver = program::MakeAwardPolicy(policy, {});
    if (!solver.ok()) return std::nullopt;
    program::SolverTape tape;
    for (const program::AwardProblem& problem : problems) {
      if (!program::SolveOnTape(**solver, problem, &tape).ok()) return std::nullopt;
    }
    json solved = command;
    solved["solver_answers"] = core::SolverAnswersJson(tape);
    return solved;
  }

  // A `cluster_load` is journaled with the policy it resolves to (its field, else the
  // cluster file's, else the default), so a replay under a later default still schedules
  // as the service did.
  static json WithResolvedPolicy(const json& command) {
    if (command.value("op", "") != "cluster_load" || command.contains("policy") ||
        !command.contains("toml") || !command.at("toml").is_string()) {
      return command;
    }
    const auto policy =
        cluster::ParseClusterPolicy(command.at("toml").get<std::string>(), "cluster");
    if (!policy.ok()) return command;  // the core refuses the file with its own error
    json resolved = command;
    resolved["policy"] = policy->empty() ? std::string(sched::kDefaultPolicy) : *policy;
    return resolved;
  }

  static json ActorJson(const core::Actor& actor) {
    json out = {{"role", core::ToString(actor.role)}};
    if (!actor.person.empty()) out["person"] = actor.person;
    if (!actor.token.empty()) out["token"] = actor.token;
    return out;
  }

  void RememberToken(const core::TokenRecord& record) ABSL_LOCKS_EXCLUDED(tokens_mutex) {
    journal::WriterLock lock(&tokens_mutex);
    tokens[record.id] = record;
  }

  // Loads the token mirror from the recovered state.
  void LoadTokens() ABSL_LOCKS_EXCLUDED(tokens_mutex) {
    std::unordered_map<std::string, core::TokenRecord> live;
    (void)committer->Read([&](const core::Core& core) {
      for (const auto& [id, record] : core.app().tokens()) {
        if (!record.revoked) live[id] = record;
      }
    });
    journal::WriterLock lock(&tokens_mutex);
    tokens = std::move(live);
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
    const std::string cluster = ReadText(options.bootstrap_cluster.empty()
                                             ? options.examples_dir + "/clusters/research-40k.toml"
                                             : options.bootstrap_cluster);
    for (json command :
         {json{{"op", "program_create"}, {"toml", program}, {"seal_secret", NewSealSecret()}},
          json{{"op", "cluster_load"}, {"toml", cluster}}}) {
      command["actor"] = ActorJson(admin);
      ATRIUM_ASSIGN_OR_RETURN(core::AppAnswer answer, Submit(command));
      ATRIUM_TRY(answer.status);
    }
    return OkStatus();
  }

  // ---- HTTP --------------------------------------------------------------------------

  static HttpAnswer Reply(int status, const json& body) {
    HttpAnswer answer;
    answer.status = status;
    answer.body = body.dump();
    return answer;
  }

  // An error answer; a 500's cause goes to the log (with the request id), never to the
  // client.
  static HttpAnswer ReplyError(const Error& error) {
    HttpAnswer answer = Reply(HttpStatusOf(error.code), ErrorBody(error));
    answer.error_code = std::string(ToString(error.code));
    if (answer.status == 500) answer.detail = error.ToString();
    return answer;
  }

  // Who is asking: public without a token; 401 for a token that is malformed, unknown or
  // revoked.
  Result<core::Actor> Authenticate(const HttpRequest& req) ABSL_LOCKS_EXCLUDED(tokens_mutex) {
    const std::string_view header = req.header("Authorization");
    if (header.empty()) return core::Actor{};
    constexpr std::string_view kBearer = "Bearer ";
    const auto parsed = header.substr(0, kBearer.size()) == kBearer
                            ? ParseToken(header.substr(kBearer.size()))
                            : std::nullopt;
    const Error unauthenticated{ErrorCode::kUnauthenticated,
                                "the token is malformed, unknown or revoked", "Authorization"};
    if (!parsed) return unauthenticated;
    journal::ReaderLock lock(&tokens_mutex);
    const auto found = tokens.find(parsed->id);
    if (found == tokens.end() || found->second.revoked ||
        !TokenMatches(found->second, parsed->secret)) {
      return unauthenticated;
    }
    return core::Actor{
        .role = found->second.role, .person = found->second.person, .token = found->second.id};
  }

  // The API's routes with the names of their path parameters, in template order.
  struct CompiledRoute {
    const Route* route;
    std::vector<std::string> names;
  };
  std::vector<CompiledRoute> routes;

  void CompileRoutes() {
    for (const Route& route : Routes()) {
      std::vector<std::string> names;
      for (size_t open = route.path.find('{'); open != std::string_view::npos;
           open = route.path.find('{', open + 1)) {
        names.emplace_back(route.path.substr(open + 1, route.path.find('}', open) - open - 1));
      }
      routes.push_back(CompiledRoute{&route, std::move(names)});
    }
  }

  // Reads of one resource, cheap enough to answer on the event loop (never a list, a
  // report or a what-if, which may take milliseconds and would hold up other sockets).
  static bool QuickRead(const Route& route) {
    static constexpr std::array<std::string_view, 6> kQuick = {
        "grant_balance", "grant_show", "job_show", "call_show", "proposal_show", "program_show"};
    return route.read != nullptr &&
           std::find(kQuick.begin(), kQuick.end(), route.name) != kQuick.end();
  }

  // Every request comes here on a worker thread (the transport's handler).
  HttpAnswer Dispatch(const HttpRequest& req) { return *Answer(req, /*on_loop=*/false); }

  // The transport's loop handler: /healthz, quick reads whose state is readable now, and
  // changes that only submit a command (deferred: answered when it is durable, with no
  // thread waiting for it); nullopt for everything else, which then comes to Dispatch on
  // a worker.
  std::optional<HttpAnswer> DispatchOnLoop(const HttpRequest& req, const DeferFn& defer) {
    if (req.method == "GET") return Answer(req, /*on_loop=*/true);
    if (req.body.size() > kLoopBodyBytesMax) return std::nullopt;
    return Answer(req, /*on_loop=*/true, &defer);
  }

  // A change's body is parsed on the loop only up to this size (a job submission is a
  // few hundred bytes; a program's definition can be a megabyte, parsed on a worker).
  static constexpr size_t kLoopBodyBytesMax = size_t{16} * 1024;

  // Changes answered on the loop: every op whose handling here ends with submitting its
  // command. Drafts and overrides solve first (CBC, on a worker); token creation and
  // revocation change the service's token cache after the answer.
  static bool LoopChange(const Route& route) {
    return route.read == nullptr && route.op != "decision_draft" &&
           route.op != "decision_override" && route.op != "token_create" &&
           route.op != "token_revoke";
  }

  // Fixed answers first, then the API's routes; what matches nothing is 404. On the loop
  // (on_loop) nothing may wait: what would is left for a worker (nullopt).
  std::optional<HttpAnswer> Answer(const HttpRequest& req, bool on_loop,
                                   const DeferFn* defer = nullptr) {
    // A path with a "." or ".." segment (after percent-decoding) never names a resource.
    for (size_t start = 0; start <= req.path.size();) {
      size_t end = req.path.find('/', start);
      if (end == std::string::npos) end = req.path.size();
      const std::string_view segment(req.path.data() + start, end - start);
      if (segment == "." || segment == "..") {
        return ReplyError(
            Error{ErrorCode::kInvalidPath, "the path has a \".\" or \"..\" segment", "path"});
      }
      start = end + 1;
    }
    if (manual_clock && req.path == "/testing/clock" &&
        (req.method == "GET" || req.method == "POST")) {
      if (on_loop) return std::nullopt;
      return TestClockAnswer(req);
    }
    if (req.method == "GET") {
      if (req.path == "/healthz") {
        static const std::string kOk = json{{"status", "ok"}}.dump();
        HttpAnswer answer;
        answer.body = kOk;
        return answer;
      }
      if (on_loop && (req.path == "/readyz" || req.path == "/metrics")) return std::nullopt;
      if (req.path == "/readyz") return Ready();
      if (req.path == "/metrics") return MetricsAnswer(req);
      if (req.path == "/v1/openapi.json") {
        HttpAnswer answer;
        answer.body = openapi;
        return answer;
      }
      // The dashboard (static_assets.h): "/" and "/assets/...".
      if (assets && StaticAssets::Handles(req.path)) {
        if (on_loop) return std::nullopt;
        return AssetAnswer(req);
      }
    }
    std::vector<std::string_view> match;
    for (const CompiledRoute& compiled : routes) {
      if (compiled.route->method != req.method) continue;
      match.clear();
      if (!MatchPath(compiled.route->path, req.path, &match)) continue;
      const bool deferrable = defer != nullptr && LoopChange(*compiled.route);
      if (on_loop && !QuickRead(*compiled.route) && !deferrable) return std::nullopt;
      const auto started = std::chrono::steady_clock::now();
      std::optional<HttpAnswer> maybe = HandleRoute(*compiled.route, compiled.names, match, req,
                                                    on_loop, deferrable ? defer : nullptr);
      if (!maybe) return std::nullopt;
      HttpAnswer& answer = *maybe;
      answer.operation = std::string(compiled.route->name);
      CompressIfAccepted(req, &answer);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      metrics.Observe(compiled.route->name, answer.status, seconds);
      return maybe;
    }
    return ReplyError(Error{ErrorCode::kNotFound, "no such route", ""});
  }

  HttpAnswer Ready() {
    const Status read = committer->Read([](const core::Core&) {});
    if (!ready.load() || !read.ok()) {
      return ReplyError(Error{ErrorCode::kUnavailable, "not ready", ""});
    }
    return Reply(200, {{"status", "ready"}, {"durable_seq", committer->durable_seq()}});
  }

  // API answers of at least kGzipBytesMin are sent gzip-compressed (a fast level) to
  // clients that accept it: a page of 1,000 proposals is about 320 KB of JSON.
  static constexpr size_t kGzipBytesMin = 1024;
  static void CompressIfAccepted(const HttpRequest& req, HttpAnswer* answer) {
    CompressIfAccepted(req.header("Accept-Encoding"), answer);
  }
  static void CompressIfAccepted(std::string_view accept_encoding, HttpAnswer* answer) {
    if (answer->body.size() < kGzipBytesMin || !AcceptsGzip(accept_encoding)) return;
    std::string packed = Gzip(answer->body, 1);
    if (packed.empty() || packed.size() >= answer->body.size()) return;
    answer->body = std::move(packed);
    answer->headers.emplace_back("Content-Encoding", "gzip");
    answer->headers.emplace_back("Vary", "Accept-Encoding");
  }

  // A file of the dashboard; gzip where the client accepts it (the transport does not
  // compress).
  HttpAnswer AssetAnswer(const HttpRequest& req) {
    StaticResponse out = assets->Serve(
        {req.method, req.path, req.header("Accept-Encoding"), req.header("If-None-Match")});
    HttpAnswer answer;
    answer.status = out.status;
    answer.content_type.clear();
    for (auto& [name, value] : out.headers) {
      if (name == "Content-Type") {
        answer.content_type = value;
      } else {
        answer.headers.emplace_back(name, value);
      }
    }
    answer.body = std::move(out.body);
    answer.operation = "dashboard";
    return answer;
  }

  HttpAnswer MetricsAnswer(const HttpRequest& req) {
    auto actor = Authenticate(req);
    if (!actor.ok()) return ReplyError(actor.error());
    if (actor->role != core::Role::kAdmin && actor->role != core::Role::kOperator) {
      return ReplyError(Error{
          actor->role == core::Role::kPublic ? ErrorCode::kUnauthenticated : ErrorCode::kForbidden,
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
    HttpAnswer answer;
    answer.content_type = "text/plain; version=0.0.4";
    answer.body = metrics.Render(committer->queue_depth(), busy, waiting, committer->stats()) +
                  fmt::format(
                      "# HELP atrium_http_connections Open HTTP connections.\n"
                      "# TYPE atrium_http_connections gauge\n"
                      "atrium_http_connections {}\n",
                      http->connections());
    return answer;
  }

  // nullopt only on the loop, for a read that would have to wait for its window.
  std::optional<HttpAnswer> HandleRoute(const Route& route, const std::vector<std::string>& names,
                                        const std::vector<std::string_view>& match,
                                        const HttpRequest& req, bool on_loop,
                                        const DeferFn* defer = nullptr) {
    auto actor = Authenticate(req);
    if (!actor.ok()) return ReplyError(actor.error());
    if ((route.roles & RoleBit(actor->role)) == 0) {
      if (actor->role == core::Role::kPublic) {
        return ReplyError(Error{ErrorCode::kUnauthenticated,
                                "this route needs a token (Authorization: Bearer ...)",
                                "Authorization"});
      }
      return ReplyError(Error{
          ErrorCode::kForbidden,
          fmt::format("the {} role may not {}", core::ToString(actor->role), route.name), ""});
    }
    const std::string& limit_key = actor->token.empty() ? req.remote_addr : actor->token;
    const auto rate_limited = [] {
      HttpAnswer answer =
          ReplyError(Error{ErrorCode::kRateLimited, "too many requests; retry later", ""});
      answer.headers.emplace_back("Retry-After", "1");
      return answer;
    };
    // On the loop the limiter is asked after the read, so that a read passed on to a
    // worker (its state was not readable) is counted once, there. A change on the loop
    // never goes to a worker: it is counted now.
    if ((!on_loop || defer != nullptr) && !limiter.Allow(limit_key)) return rate_limited();
    std::map<std::string, std::string> params;
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string_view value = match[i];
      if (!core::ValidId(value, names[i] == "obligation")) {
        return ReplyError(
            Error{ErrorCode::kInvalidPath,
                  "invalid " + names[i] + ": 1-128 characters of letters, digits and . _ : @ -",
                  names[i]});
      }
      params[names[i]] = value;
    }
    if (route.read != nullptr) {
      std::optional<HttpAnswer> answer = HandleRead(route, *actor, params, req, on_loop);
      if (on_loop && answer && !limiter.Allow(limit_key)) return rate_limited();
      return answer;
    }
    return HandleChange(route, *actor, params, req, defer);
  }

  // On the loop, only if the state is readable now (nullopt otherwise).
  std::optional<HttpAnswer> HandleRead(const Route& route, const core::Actor& actor,
                                       const std::map<std::string, std::string>& params,
                                       const HttpRequest& req, bool on_loop) {
    Result<json> answer = Error{ErrorCode::kInternal, "not read", ""};
    const auto read_fn = [&](const core::Core& core) {
      answer = route.read(ReadRequest{core.app(), actor, params, req.query, options.data_dir});
    };
    if (on_loop) {
      const Result<bool> done = committer->TryRead(read_fn);
      if (!done.ok()) return ReplyError(done.error());
      if (!*done) return std::nullopt;
    } else if (const Status read = committer->Read(read_fn); !read.ok()) {
      return ReplyError(read.error());
    }
    if (!answer.ok()) return ReplyError(answer.error());
    return Reply(200, *answer);
  }

  // With `defer` (on the loop): submits the command and answers through the request's
  // Responder once it is durable; returns nullopt then, unless refused before submitting.
  std::optional<HttpAnswer> HandleChange(const Route& route, const core::Actor& actor,
                                         const std::map<std::string, std::string>& params,
                                         const HttpRequest& req, const DeferFn* defer = nullptr) {
    json body = json::object();
    if (!req.body.empty()) {
      // Bounded before the parser recurses: a deep document would overflow its stack.
      if (!JsonDepthWithin(req.body, kJsonDepthMax)) {
        return ReplyError(Error{ErrorCode::kParseError,
                                fmt::format("the body nests deeper than {} levels", kJsonDepthMax),
                                ""});
      }
      body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
      if (body.is_discarded()) {
        return ReplyError(
            Error{ErrorCode::kParseError, "the body is not valid JSON (UTF-8, RFC 8259)", ""});
      }
      if (!body.is_object()) {
        return ReplyError(Error{ErrorCode::kParseError, "the body must be a JSON object", ""});
      }
    }
    json command = {{"op", route.op}, {"actor", ActorJson(actor)}};
    if (!route.body_field.empty()) {
      command[std::string(route.body_field)] = std::move(body);
    } else {
      // Drawn fields (a token's secret, a program's seal secret, a draft's solver answers)
      // are set by the service, never by a client.
      const core::OpSpec* spec = core::FindOp(route.op);
      const auto drawn = [spec](const std::string& key) {
        return spec != nullptr && std::any_of(spec->fields.begin(), spec->fields.end(),
                                              [&](const core::FieldSpec& field) {
                                                return field.drawn && field.name == key;
                                              });
      };
      for (auto& [key, value] : body.items()) {
        if (key == "op" || key == "actor" || key == "idempotency_key" || params.contains(key) ||
            drawn(key)) {
          return ReplyError(Error{ErrorCode::kUnknownField, "unknown field " + key, key});
        }
        command[key] = value;
      }
    }
    for (const auto& [name, value] : params) command[name] = value;
    const std::string key(req.header("Idempotency-Key"));
    if (!key.empty()) {
      const bool printable = key.size() <= 255 && std::all_of(key.begin(), key.end(), [](char c) {
                               return c >= 0x21 && c <= 0x7e;
                             });
      if (!printable) {
        return ReplyError(Error{ErrorCode::kInvalidArgument,
                                "Idempotency-Key is 1-255 printable ASCII characters",
                                "Idempotency-Key"});
      }
      command["idempotency_key"] = key;
    }
    // The key of the public log's sealed reviews: drawn here, from the system's random
    // source, never chosen by a client (who could then open the seals early).
    if (route.op == "program_create") command["seal_secret"] = NewSealSecret();
    std::optional<IssuedToken> issued;
    if (route.op == "token_create") {
      issued = IssueToken();
      command["token_id"] = issued->id;
      command["salt"] = issued->salt_hex;
      command["hash"] = issued->hash_hex;
      if (!command.contains("role")) command["role"] = core::ToString(actor.role);
      if (!command.contains("person") && !actor.person.empty()) command["person"] = actor.person;
    }
    if (defer != nullptr) {
      const std::string accept_encoding(req.header("Accept-Encoding"));
      SubmitThen(command, [this, route = &route, respond = (*defer)(), accept_encoding,
                           started = std::chrono::steady_clock::now()](
                              Result<core::AppAnswer> answer) mutable {
        // This runs on the committer's write thread, which nothing may throw into and
        // whose next group waits for it: the answer is built on the connection's loop
        // thread. A failure to hand it on is logged, and `respond`, dropped unanswered,
        // answers 500. The transport stops before the server is destroyed, so `this`
        // outlives every call of the maker (Server::Impl::~Impl).
        try {
          respond.AnswerWith([this, route, answer = std::move(answer), accept_encoding,
                              started]() mutable {
            // (No token route comes here: the path's parameters are not needed.)
            HttpAnswer reply = ChangeReply(*route, {}, std::move(answer), std::nullopt);
            reply.operation = std::string(route->name);
            CompressIfAccepted(accept_encoding, &reply);
            metrics.Observe(
                route->name, reply.status,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
            return reply;
          });
        } catch (const std::exception& e) {
          LogEvent(LogLevel::kError, "internal_error",
                   {{"operation", std::string(route->name)}, {"detail", e.what()}});
        }
      });
      return std::nullopt;
    }
    auto answer = route.op == "decision_draft" || route.op == "decision_override"
                      ? SubmitSolved(command)
                      : Submit(command);
    return ChangeReply(route, params, std::move(answer), issued);
  }

  // The answer to a change from its command's outcome.
  HttpAnswer ChangeReply(const Route& route, const std::map<std::string, std::string>& params,
                         Result<core::AppAnswer> answer, const std::optional<IssuedToken>& issued) {
    if (!answer.ok()) {
      HttpAnswer refused = ReplyError(answer.error());
      if (answer.error().code == ErrorCode::kUnavailable) {
        refused.headers.emplace_back("Retry-After", "1");
      }
      return refused;
    }
    if (!answer->status.ok()) return ReplyError(answer->status.error());
    json result = answer->result;
    result.erase("_request");
    HttpAnswer reply;
    if (answer->replayed) reply.headers.emplace_back("Idempotent-Replayed", "true");
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
      journal::WriterLock lock(&tokens_mutex);
      tokens.erase(params.at("token_id"));  // a revoked token authenticates nothing
    }
    reply.status = route.success_status;
    reply.body = result.dump();
    return reply;
  }

  std::string openapi;
  std::unique_ptr<StaticAssets> assets;
  // Carries out runs on `executor = "local"` pools (exec_runner.h); last, so it stops
  // before the committer it submits to.
  std::unique_ptr<ExecRunner> exec;

  // Journals a tick if work is due at `now_us`: a run reached its walltime, jobs wait and
  // something was journaled since the last tick (a pass could now decide differently),
  // or a minute passed (the program's deadlines). A queue stuck on credits adds one entry
  // a minute, not one a second. Returns whether a tick was journaled.
  bool TickIfDue(int64_t now_us) ABSL_LOCKS_EXCLUDED(tick_mutex) {
    journal::MutexLock lock(&tick_mutex);
    bool due = false;
    (void)committer->Read([&](const core::Core& core) {
      const core::AppState& app = core.app();
      const bool waiting = app.scheduler() != nullptr && app.scheduler()->waiting_count() > 0;
      due = app.TickDue(now_us) || (waiting && committer->durable_seq() != seq_after_tick);
    });
    if (!due && now_us - last_full_tick_us < 60'000'000) return false;
    if (!due) last_full_tick_us = now_us;
    const core::Actor clock_actor{.role = core::Role::kAdmin, .person = "", .token = "clock"};
    (void)Submit(json{{"op", "tick"}, {"actor", ActorJson(clock_actor)}});
    seq_after_tick = committer->durable_seq();
    return true;
  }

  bool Stopping() const ABSL_LOCKS_EXCLUDED(clock_mutex) {
    journal::MutexLock lock(&clock_mutex);
    return stopping;
  }

  // Looks for due work every tick_interval_ms. The tick itself is applied on the
  // committer's apply thread; this thread only reads (a read holds no lock that a write
  // waits for, see journal/committer.h).
  void ClockLoop() ABSL_LOCKS_EXCLUDED(clock_mutex) {
    for (;;) {
      {
        journal::MutexLock lock(&clock_mutex);
        if (stopping) break;
        clock_wake.WaitFor(&clock_mutex, options.tick_interval_ms);
        if (stopping) break;
      }
      (void)TickIfDue(clock_source->NowUs());
    }
  }

  // The test clock (clock.h; only with --clock manual --allow-test-clock), admins only:
  // GET /testing/clock answers the time; POST /testing/clock {"advance_s": N} or
  // {"advance_us": N} moves it forward and journals the tick that is then due, answering
  // once it is durable, so a test sees the effect of the time it skipped at once.
  HttpAnswer TestClockAnswer(const HttpRequest& req) {
    auto actor = Authenticate(req);
    if (!actor.ok()) return ReplyError(actor.error());
    if (actor->role != core::Role::kAdmin) {
      return ReplyError(Error{
          actor->role == core::Role::kPublic ? ErrorCode::kUnauthenticated : ErrorCode::kForbidden,
          "the test clock is for admins", ""});
    }
    bool ticked = false;
    if (req.method == "POST") {
      const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
      if (!body.is_object() || body.size() != 1 ||
          !(body.contains("advance_s") || body.contains("advance_us"))) {
        return ReplyError(Error{ErrorCode::kInvalidArgument,
                                "the body is {\"advance_s\": N} or {\"advance_us\": N}",
                                "advance_s"});
      }
      const bool seconds = body.contains("advance_s");
      const json& amount = seconds ? body["advance_s"] : body["advance_us"];
      constexpr int64_t kAdvanceUsMax = int64_t{10} * 366 * 86'400 * 1'000'000;  // ten years
      const int64_t unit = seconds ? 1'000'000 : 1;
      if (!amount.is_number_integer() || amount.get<int64_t>() < 0 ||
          amount.get<int64_t>() > kAdvanceUsMax / unit) {
        return ReplyError(Error{ErrorCode::kInvalidArgument,
                                "advance by a whole number from 0 to ten years",
                                seconds ? "advance_s" : "advance_us"});
      }
      ticked = TickIfDue(manual_clock->Advance(amount.get<int64_t>() * unit));
    }
    return Reply(200, {{"clock", "manual"},
                       {"now_us", manual_clock->NowUs()},
                       {"ticked", ticked},
                       {"durable_seq", committer->durable_seq()}});
  }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() {
  Stop();
  if (impl_->clock.joinable()) impl_->clock.join();
}

Status Server::Start() {
  Impl& s = *impl_;
  if (s.options.clock != "system" && s.options.clock != "manual") {
    return MakeError(ErrorCode::kInvalidArgument, "--clock is system or manual", "clock");
  }
  if (s.options.clock == "manual" && !s.options.allow_test_clock) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--clock manual is a test clock that anyone with an admin token can move; "
                     "it needs --allow-test-clock as well, and never runs in production",
                     "clock");
  }
  std::error_code ec;
  std::filesystem::create_directories(s.options.data_dir, ec);
  if (ec) return MakeError(ErrorCode::kIoError, "cannot create " + s.options.data_dir);
  s.location = s.options.db.empty()
                   ? (std::filesystem::path(s.options.data_dir) / "atrium.db").string()
                   : s.options.db;
  // Opening for writing takes the store's single-writer lock (journal/open.h): a second
  // instance, or `atrium ledger --db` on this store, is refused with kLocked.
  ATRIUM_ASSIGN_OR_RETURN(
      auto store, journal::OpenJournalStore(s.location, journal::OpenMode::kReadWriteCreate));
  ATRIUM_ASSIGN_OR_RETURN(
      auto durable,
      journal::DurableCore::Open(std::move(store),
                                 journal::Options{.snapshot_entries = s.options.snapshot_entries,
                                                  .snapshot_state_bytes_per_entry =
                                                      s.options.snapshot_state_bytes_per_entry}));
  s.metrics.SetRecovery(durable->recovered_from_seq(), durable->skipped_snapshots().size());
  for (const journal::DurableCore::SkippedSnapshot& skipped : durable->skipped_snapshots()) {
    LogEvent(LogLevel::kWarn, "snapshot_passed_over",
             {{"snapshot_seq", skipped.seq},
              {"reason", skipped.reason},
              {"recovered_from_seq", durable->recovered_from_seq()}});
  }
  if (s.options.clock == "manual") {
    // A test clock starts at the later of now and the store's last command, so time never
    // runs backwards in the journal across restarts.
    s.manual_clock = std::make_shared<ManualClock>(
        std::max(SystemClock().NowUs(), durable->core().app().last_now_us()));
    s.clock_source = s.manual_clock;
  }
  s.committer = std::make_unique<journal::Committer>(
      std::move(durable),
      journal::CommitterOptions{.queue_depth_max = s.options.queue_depth_max,
                                .snapshot_in_child = s.options.snapshot_encode != "apply_thread"});
  s.LoadTokens();
  ATRIUM_TRY(s.Bootstrap());
  // Before the clock ticks: runs that ended while the service was down are settled first.
  ::atrium::exec::LocalExecutorOptions local = s.options.local_executor;
  // Absolute: Slurm records the output paths as given, and the runner knows its own runs
  // by them (SlurmExecutor::Owns).
  local.jobs_dir =
      (std::filesystem::absolute(s.options.data_dir) / "jobs").lexically_normal().string();
  s.exec = std::make_unique<ExecRunner>(*s.committer, s.clock_source, std::move(local));
  s.exec->Start();
  s.openapi = OpenApiDocument().dump();
  s.CompileRoutes();

  TransportOptions transport = s.options.transport;
  transport.workers = s.options.threads;
  transport.body_bytes_max = s.options.body_bytes_max;
  transport.access_log = s.options.access_log;
  s.http = std::make_unique<HttpTransport>(
      transport, [&s](const HttpRequest& request) { return s.Dispatch(request); },
      [&s](const HttpRequest& request, const DeferFn& defer) {
        return s.DispatchOnLoop(request, defer);
      });
  ATRIUM_TRY(s.http->Listen(s.options.listen_host, s.options.port));
  s.bound_port = s.http->port();
  s.clock = std::thread([&s] { s.ClockLoop(); });
  s.ready = true;
  LogEvent(LogLevel::kInfo, "started",
           {{"listen", fmt::format("{}:{}", s.options.listen_host, s.bound_port)},
            {"workers", transport.workers},
            {"clock", s.options.clock},
            {"durable_seq", s.committer->durable_seq()}});
  return OkStatus();
}

void Server::Run() { impl_->http->Run(); }

void Server::Stop() {
  Impl& s = *impl_;
  {
    journal::MutexLock lock(&s.clock_mutex);
    s.stopping = true;
  }
  s.ready = false;
  s.clock_wake.SignalAll();
  if (s.exec) s.exec->Stop();
  if (s.http) s.http->Stop();
}

bool Server::stopping() const { return impl_->Stopping(); }

int Server::port() const { return impl_->bound_port; }
std::string Server::listen_url() const {
  return fmt::format("http://{}:{}", impl_->options.listen_host, impl_->bound_port);
}
const std::string& Server::admin_token_path() const { return impl_->admin_token_path; }
std::string Server::store_location() const { return impl_->location; }

}  // namespace atrium::server
