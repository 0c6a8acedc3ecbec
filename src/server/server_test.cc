// The server in-process, under concurrent load from many clients at once: reads, writes,
// token creation, use and revocation, the rate limiter, metrics scrapes and the test
// clock, all on one Server. Its point is the `tsan` preset (scripts/test.sh): every piece
// of shared state the server keeps (the token table, the rate limiter's buckets, the
// metrics, the stopping flag, the committer's read gate) is exercised from several
// threads, so ThreadSanitizer sees any access that is not ordered by a lock.
#include "server/server.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "journal/journal.h"
#include "journal/open.h"
#include "server/http_transport.h"

namespace atrium::server {
namespace {

using nlohmann::json;

constexpr const char* kPerson = "0000-0002-0260-0005";

class InProcessServer {
 public:
  explicit InProcessServer(const std::filesystem::path& dir) {
    ServerOptions options;
    options.port = 0;
    options.data_dir = dir.string();
    options.bootstrap_examples = false;
    options.threads = 4;
    options.rate_per_token = 100;  // low, so the limiter refuses some of what follows
    options.tick_interval_ms = 10;
    options.clock = "manual";
    options.allow_test_clock = true;
    server_ = std::make_unique<Server>(options);
  }
  ~InProcessServer() { Stop(); }
  bool Start() {
    if (!server_->Start().ok()) return false;
    runner_ = std::thread([this] { server_->Run(); });
    // Only the first start of a store writes its admin token (to a file).
    if (server_->admin_token_path().empty()) return true;
    std::ifstream in(server_->admin_token_path());
    std::getline(in, admin_token_);
    return !admin_token_.empty();
  }
  void Stop() {
    if (!runner_.joinable()) return;
    server_->Stop();
    runner_.join();
  }
  int port() const { return server_->port(); }
  const std::string& admin_token() const { return admin_token_; }
  Server& server() { return *server_; }

 private:
  std::unique_ptr<Server> server_;
  std::thread runner_;
  std::string admin_token_;
};

struct Answer {
  int status = 0;
  json body;
};

Answer Call(httplib::Client& client, const std::string& method, const std::string& path,
            const std::string& token, const json& body = json::object()) {
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  httplib::Result result = method == "GET" ? client.Get(path, headers)
                           : method == "POST"
                               ? client.Post(path, headers, body.dump(), "application/json")
                               : client.Delete(path, headers);
  if (!result) return {};
  return {result->status, json::parse(result->body, nullptr, false)};
}

class ServerConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("atrium-server-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(ServerConcurrencyTest, ReadsWritesTokensLimiterMetricsAndClockAtOnce) {
  InProcessServer service(dir_);
  ASSERT_TRUE(service.Start());
  const std::string url = "http://127.0.0.1:" + std::to_string(service.port());
  const std::string admin = service.admin_token();

  std::atomic<bool> stop = false;
  std::atomic<int> server_errors = 0;
  std::atomic<int> limited = 0;
  std::atomic<int> hammer_ok = 0;
  std::atomic<int> revoked_accepted = 0;
  std::atomic<int> reads_ok = 0;
  std::mutex made_mutex;
  std::set<std::string> made;  // tokens created and not revoked
  auto note = [&](const Answer& answer) {
    if (answer.status == 0 || answer.status >= 500) ++server_errors;
    if (answer.status == 429) ++limited;
  };
  std::vector<std::thread> clients;
  clients.reserve(6);
  // Writers: each creates tokens with its own admin-made token, uses them, revokes some.
  for (int writer = 0; writer < 2; ++writer) {
    clients.emplace_back([&] {
      httplib::Client client(url);
      const Answer own =
          Call(client, "POST", "/v1/tokens", admin, {{"role", "researcher"}, {"person", kPerson}});
      note(own);
      const std::string token = own.body.value("token", "");
      for (int i = 0; !stop && i < 40; ++i) {
        const Answer created = Call(client, "POST", "/v1/tokens", token, {{"role", "researcher"}});
        note(created);
        if (created.status != 201) continue;
        const std::string secret = created.body.value("token", "");
        const std::string id = created.body.value("token_id", "");
        note(Call(client, "GET", "/v1/me", secret));
        if (i % 2 == 0) {
          note(Call(client, "DELETE", "/v1/tokens/" + id, secret));
          const Answer after = Call(client, "GET", "/v1/me", secret);
          if (after.status == 200) ++revoked_accepted;
        } else {
          std::lock_guard lock(made_mutex);
          made.insert(id);
        }
      }
    });
  }
  // Readers: lists and probes while the writes go on.
  for (int reader = 0; reader < 2; ++reader) {
    clients.emplace_back([&] {
      httplib::Client client(url);
      // Its own admin token: the limiter counts per token.
      const Answer own = Call(client, "POST", "/v1/tokens", admin, {{"role", "admin"}});
      note(own);
      const std::string token = own.body.value("token", "");
      while (!stop) {
        for (const char* path : {"/v1/me", "/v1/tokens?limit=5", "/readyz"}) {
          const Answer answer = Call(client, "GET", path, token);
          note(answer);
          if (answer.status == 200) ++reads_ok;
        }
      }
    });
  }
  // One token far beyond its rate: the limiter must refuse some.
  clients.emplace_back([&] {
    httplib::Client client(url);
    const Answer own =
        Call(client, "POST", "/v1/tokens", admin, {{"role", "researcher"}, {"person", kPerson}});
    const std::string token = own.body.value("token", "");
    for (int i = 0; !stop && i < 400; ++i) {
      const Answer answer = Call(client, "GET", "/v1/me", token);
      note(answer);
      if (answer.status == 200) ++hammer_ok;
    }
  });
  // Metrics scrapes and the test clock.
  clients.emplace_back([&] {
    httplib::Client client(url);
    while (!stop) {
      note(Call(client, "GET", "/metrics", admin));
      note(Call(client, "POST", "/testing/clock", admin, {{"advance_s", 61}}));
    }
  });
  // Until the writers and the hammer are done, then the rest stop.
  for (size_t i = 0; i < 2; ++i) clients[i].join();
  clients[4].join();
  stop = true;
  for (size_t i = 0; i < clients.size(); ++i) {
    if (clients[i].joinable()) clients[i].join();
  }
  EXPECT_EQ(server_errors.load(), 0);
  EXPECT_EQ(revoked_accepted.load(), 0) << "a revoked token was accepted";
  EXPECT_GT(limited.load(), 0) << "the rate limiter refused nothing";
  EXPECT_GE(hammer_ok.load(), 100);  // a second's burst at least
  EXPECT_GT(reads_ok.load(), 0);
  // Every token made and kept is listed (read-your-writes after the acknowledgements).
  httplib::Client client(url);
  std::set<std::string> listed;
  for (std::string after;;) {
    const Answer page = Call(
        client, "GET", "/v1/tokens?limit=1000" + (after.empty() ? "" : "&after=" + after), admin);
    ASSERT_EQ(page.status, 200);
    for (const json& token : page.body["items"]) listed.insert(token["id"].get<std::string>());
    if (page.body["next"].is_null()) break;
    after = page.body["next"].get<std::string>();
  }
  for (const std::string& id : made) EXPECT_TRUE(listed.contains(id)) << id;
  service.Stop();
  EXPECT_TRUE(service.server().stopping());
}

// Capacity reservations over HTTP (docs/reservations.md): each new route's roles and bad
// input, refused with its code and status; the public sees only anonymous busy windows.
TEST_F(ServerConcurrencyTest, ReservationRoutesCheckRolesAndInput) {
  InProcessServer service(dir_);
  ASSERT_TRUE(service.Start());
  httplib::Client client("http://127.0.0.1:" + std::to_string(service.port()));
  const std::string admin = service.admin_token();
  const auto token = [&](const std::string& role, const std::string& person) {
    json body = {{"role", role}};
    if (!person.empty()) body["person"] = person;
    return Call(client, "POST", "/v1/tokens", admin, body).body.value("token", "");
  };
  const std::string operator_token = token("operator", "");
  const std::string researcher = token("researcher", kPerson);
  const std::string reviewer = token("reviewer", kPerson);
  constexpr int64_t kStart = 4'000'000'000;  // 2096: after the manual clock's now
  const json maintenance = {
      {"node_count", 1}, {"start_s", kStart}, {"end_s", kStart + 3600}, {"reason", "firmware"}};
  // No cluster yet.
  EXPECT_EQ(Call(client, "POST", "/v1/cluster/maintenance", operator_token, maintenance).status,
            409);
  ASSERT_EQ(Call(client, "POST", "/v1/cluster", admin, {{"toml", R"(name = "c"
default_accelerator = "trn1"
[accelerators.trn1]
price_per_chip_hour = "1"
[node_types.trn]
accelerator = "trn1"
chips = 16
[[pools]]
name = "trn"
node_type = "trn"
nodes = 4
nodes_per_group = 2
groups_per_block = 2
[partitions.research]
classes = ["research", "preemptible", "education"]
)"}}).status,
            201);
  // Roles.
  EXPECT_EQ(Call(client, "POST", "/v1/cluster/maintenance", researcher, maintenance).status, 403);
  EXPECT_EQ(Call(client, "POST", "/v1/cluster/maintenance", "", maintenance).status, 401);
  EXPECT_EQ(Call(client, "POST", "/v1/programs/p/grants/g/reservations", reviewer,
                 {{"nodes", 1}, {"start_s", kStart}, {"end_s", kStart + 60}})
                .status,
            403);
  EXPECT_EQ(Call(client, "GET", "/v1/reservations/R1", "").status, 401);
  // Bad input: refused with its code, nothing booked.
  const auto refused = [&](const Answer& answer, int status, const std::string& code) {
    EXPECT_EQ(answer.status, status) << answer.body.dump();
    EXPECT_EQ(answer.body["error"]["code"], code) << answer.body.dump();
  };
  json bad = maintenance;
  bad["start_s"] = "soon";
  refused(Call(client, "POST", "/v1/cluster/maintenance", operator_token, bad), 422,
          "invalid_argument");
  bad = maintenance;
  bad["start_s"] = -5;
  refused(Call(client, "POST", "/v1/cluster/maintenance", operator_token, bad), 422,
          "out_of_range");
  bad = maintenance;
  bad["wizard"] = true;
  refused(Call(client, "POST", "/v1/cluster/maintenance", operator_token, bad), 422,
          "unknown_field");
  bad = maintenance;
  bad.erase("end_s");
  refused(Call(client, "POST", "/v1/cluster/maintenance", operator_token, bad), 422,
          "invalid_argument");
  bad = maintenance;
  bad["end_s"] = kStart;
  refused(Call(client, "POST", "/v1/cluster/maintenance", operator_token, bad), 422,
          "invalid_argument");
  bad = maintenance;
  bad["nodes"] = {"no-such-node"};
  bad.erase("node_count");
  refused(Call(client, "POST", "/v1/cluster/maintenance", operator_token, bad), 404, "not_found");
  bad = maintenance;
  bad["node_count"] = 5;
  refused(Call(client, "POST", "/v1/cluster/maintenance", operator_token, bad), 409, "no_capacity");
  refused(Call(client, "POST", "/v1/programs/p/grants/g/reservations", researcher,
               {{"nodes", 1}, {"start_s", kStart}, {"end_s", kStart + 60}}),
          404, "not_found");
  refused(Call(client, "POST", "/v1/cluster/maintenance/R1/cancel", operator_token), 404,
          "not_found");
  refused(Call(client, "GET", "/v1/reservations/R1", operator_token), 404, "not_found");
  refused(Call(client, "GET", "/v1/reservations?state=soon", operator_token), 422,
          "invalid_argument");
  refused(Call(client, "GET", "/v1/reservations/a%20b", operator_token), 400, "invalid_path");
  // A good one: in full for operators, anonymous for the public, hidden from researchers'
  // direct reads.
  const Answer booked =
      Call(client, "POST", "/v1/cluster/maintenance", operator_token, maintenance);
  ASSERT_EQ(booked.status, 201) << booked.body.dump();
  EXPECT_EQ(booked.body["reservation"], "R1");
  const Answer full = Call(client, "GET", "/v1/reservations/R1", operator_token);
  ASSERT_EQ(full.status, 200);
  EXPECT_EQ(full.body["note"], "firmware");
  EXPECT_EQ(full.body["nodes"].size(), 1u);
  const Answer calendar = Call(client, "GET", "/v1/reservations", "");
  ASSERT_EQ(calendar.status, 200);
  ASSERT_EQ(calendar.body["items"].size(), 1u);
  EXPECT_EQ(calendar.body["items"][0]["kind"], "maintenance");
  EXPECT_FALSE(calendar.body["items"][0].contains("nodes"));
  EXPECT_FALSE(calendar.body["items"][0].contains("note"));
  EXPECT_EQ(Call(client, "GET", "/v1/reservations/R1", researcher).status, 404);
  EXPECT_EQ(Call(client, "POST", "/v1/cluster/maintenance/R1/cancel", operator_token).status, 200);
  refused(Call(client, "POST", "/v1/cluster/maintenance/R1/cancel", operator_token), 409,
          "invalid_state");
  EXPECT_EQ(Call(client, "GET", "/v1/reservations", "").body["items"].size(), 0u);
  service.Stop();
}

// Issue 14: a 500 says "see the service log", so the log must hold it: one JSON line per
// event, with the request id the answer carries in X-Request-Id, the cause (never sent to
// the client), also when the handler throws and when the access log is off.
TEST(TransportLogTest, EveryInternalErrorIsLoggedWithItsRequestId) {
  TransportOptions options;
  options.workers = 2;
  options.access_log = false;
  HttpTransport transport(options, [](const HttpRequest& request) -> HttpAnswer {
    if (request.path == "/throw") throw std::runtime_error("the handler broke: disk on fire");
    HttpAnswer answer;
    answer.status = request.path == "/fail" ? 500 : 200;
    answer.body = R"({"ok":true})";
    answer.error_code = request.path == "/fail" ? "internal" : "";
    answer.detail = request.path == "/fail" ? "journal append failed: EIO" : "";
    return answer;
  });
  ASSERT_TRUE(transport.Listen("127.0.0.1", 0).ok());
  std::thread runner([&] { transport.Run(); });
  ::testing::internal::CaptureStderr();
  httplib::Client client("127.0.0.1", transport.port());
  const httplib::Result thrown = client.Get("/throw");
  const httplib::Result failed = client.Get("/fail");
  const httplib::Result fine = client.Get("/fine");
  transport.Stop();
  runner.join();
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(thrown && failed && fine);
  EXPECT_EQ(thrown->status, 500);
  EXPECT_EQ(failed->status, 500);
  EXPECT_EQ(fine->status, 200);
  EXPECT_EQ(thrown->body.find("disk on fire"), std::string::npos) << "a cause reached the client";
  EXPECT_EQ(failed->body.find("EIO"), std::string::npos) << "a cause reached the client";
  const std::string thrown_id = thrown->get_header_value("X-Request-Id");
  const std::string failed_id = failed->get_header_value("X-Request-Id");
  const std::string fine_id = fine->get_header_value("X-Request-Id");
  ASSERT_EQ(thrown_id.size(), 16U);
  ASSERT_EQ(failed_id.size(), 16U);
  ASSERT_NE(thrown_id, failed_id);
  std::map<std::string, std::vector<json>> by_id;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    const json event = json::parse(line, nullptr, false);
    ASSERT_TRUE(event.is_object()) << "not one JSON object: " << line;
    EXPECT_TRUE(event.contains("ts") && event.contains("level") && event.contains("event"));
    if (event.contains("request_id")) by_id[event["request_id"]].push_back(event);
  }
  // The thrown request: its cause and its answer, both at level error.
  bool thrown_cause = false;
  bool thrown_answer = false;
  for (const json& event : by_id[thrown_id]) {
    EXPECT_EQ(event["level"], "error") << event;
    if (event["event"] == "internal_error") {
      thrown_cause = event.value("detail", "").find("disk on fire") != std::string::npos;
    }
    if (event["event"] == "request") thrown_answer = event["status"] == 500;
  }
  EXPECT_TRUE(thrown_cause) << log;
  EXPECT_TRUE(thrown_answer) << log;
  // The answered 500: one line with the status, the path, the code and the cause.
  ASSERT_EQ(by_id[failed_id].size(), 1U) << log;
  const json& logged = by_id[failed_id][0];
  EXPECT_EQ(logged["level"], "error");
  EXPECT_EQ(logged["status"], 500);
  EXPECT_EQ(logged["path"], "/fail");
  EXPECT_EQ(logged["code"], "internal");
  EXPECT_EQ(logged["detail"], "journal append failed: EIO");
  // Without the access log a 200 leaves no line.
  EXPECT_TRUE(by_id[fine_id].empty()) << log;
}

// A deferred answer given from another thread (as the journal's write thread does) with
// AnswerWith is built on one of the transport's loop threads, not the giver's; a maker that
// throws answers 500 and logs its cause with the request id; a Responder dropped
// unanswered answers 500.
TEST(TransportLogTest, DeferredAnswersAreBuiltOnTheLoop) {
  TransportOptions options;
  options.workers = 2;
  std::mutex mutex;
  std::vector<std::thread> givers;
  std::set<std::thread::id> loop_threads;
  std::set<std::thread::id> giver_threads;
  std::set<std::thread::id> maker_threads;
  const LoopHandler on_loop = [&](const HttpRequest& request,
                                  const DeferFn& defer) -> std::optional<HttpAnswer> {
    {
      std::lock_guard lock(mutex);
      loop_threads.insert(std::this_thread::get_id());
    }
    Responder respond = defer();
    const std::string path = request.path;
    std::lock_guard lock(mutex);
    givers.emplace_back([&, path, respond = std::move(respond)]() mutable {
      {
        std::lock_guard inner(mutex);
        giver_threads.insert(std::this_thread::get_id());
      }
      if (path == "/dropped") return;  // dropped unanswered
      respond.AnswerWith([&, path]() -> HttpAnswer {
        {
          std::lock_guard inner(mutex);
          maker_threads.insert(std::this_thread::get_id());
        }
        if (path == "/throw") throw std::runtime_error("the maker broke: no JSON today");
        HttpAnswer answer;
        answer.status = 201;
        answer.body = R"({"built":"on the loop"})";
        return answer;
      });
    });
    return std::nullopt;
  };
  HttpTransport transport(
      options, [](const HttpRequest&) { return HttpAnswer{.status = 299}; }, on_loop);
  ASSERT_TRUE(transport.Listen("127.0.0.1", 0).ok());
  std::thread runner([&] { transport.Run(); });
  ::testing::internal::CaptureStderr();
  httplib::Client client("127.0.0.1", transport.port());
  const httplib::Result built = client.Post("/built", "{}", "application/json");
  const httplib::Result thrown = client.Post("/throw", "{}", "application/json");
  const httplib::Result dropped = client.Post("/dropped", "{}", "application/json");
  transport.Stop();
  runner.join();
  for (std::thread& giver : givers) giver.join();
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(built && thrown && dropped);
  EXPECT_EQ(built->status, 201);
  EXPECT_EQ(built->body, R"({"built":"on the loop"})");
  EXPECT_EQ(thrown->status, 500);
  EXPECT_EQ(thrown->body.find("no JSON today"), std::string::npos) << "a cause reached the client";
  EXPECT_EQ(dropped->status, 500);
  // Both makers ran on the transport's loop threads (two serve every connection), never
  // on the threads that gave the answers.
  ASSERT_FALSE(maker_threads.empty());
  std::set<std::thread::id> loop_or_maker = loop_threads;
  loop_or_maker.insert(maker_threads.begin(), maker_threads.end());
  EXPECT_LE(loop_or_maker.size(), 2U) << "an answer was built off the loop threads";
  for (const std::thread::id maker : maker_threads) {
    EXPECT_EQ(giver_threads.count(maker), 0U) << "an answer was built by its giver";
    EXPECT_NE(maker, std::this_thread::get_id());
  }
  const std::string thrown_id = thrown->get_header_value("X-Request-Id");
  bool cause_logged = false;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    const json event = json::parse(line, nullptr, false);
    if (event.is_object() && event.value("request_id", "") == thrown_id &&
        event.value("event", "") == "internal_error") {
      cause_logged = event.value("detail", "").find("no JSON today") != std::string::npos;
    }
  }
  EXPECT_TRUE(cause_logged) << log;
}

// Datasets over HTTP (docs/datasets.md): the new routes' roles and bad input, each refused
// with its code and nothing changed; the public sees the catalog without the location of
// data that is not open.
TEST_F(ServerConcurrencyTest, DatasetRoutesRefuseBadInputAndWrongRoles) {
  InProcessServer service(dir_);
  ASSERT_TRUE(service.Start());
  httplib::Client client("http://127.0.0.1:" + std::to_string(service.port()));
  const std::string admin = service.admin_token();
  const auto token = [&](const std::string& role, const std::string& person) {
    json body = {{"role", role}};
    if (!person.empty()) body["person"] = person;
    return Call(client, "POST", "/v1/tokens", admin, body).body.value("token", "");
  };
  const std::string steward = token("data_steward", "");
  const std::string researcher = token("researcher", kPerson);
  const std::string reviewer = token("reviewer", kPerson);
  const std::string toml = R"([program]
id = "dp"
name = "Datasets over HTTP"
total_budget = 1000
[[program.rubric]]
name = "merit"
weight = 1
[[track]]
id = "research"
budget = 1000
)";
  ASSERT_EQ(Call(client, "POST", "/v1/programs", admin, {{"toml", toml}}).status, 201);
  const std::string base = "/v1/programs/dp";
  const json dataset = {{"dataset", "genomes"}, {"name", "Genomes"},
                        {"size_bytes", 1024},   {"location", "/data/genomes"},
                        {"policy", "approval"}, {"license", "CC-BY-4.0"}};
  ASSERT_EQ(Call(client, "POST", base + "/datasets", steward, dataset).status, 201);

  const json catalog = Call(client, "GET", base + "/datasets", admin).body;
  auto expect = [&](const Answer& answer, int status, const std::string& code) {
    EXPECT_EQ(answer.status, status) << answer.body;
    ASSERT_TRUE(answer.body.is_object() && answer.body.contains("error")) << answer.body;
    EXPECT_EQ(answer.body["error"]["code"], code) << answer.body;
  };
  json unknown = dataset;
  unknown["dataset"] = "other";
  unknown["owner"] = "me";
  expect(Call(client, "POST", base + "/datasets", admin, unknown), 422, "unknown_field");
  json bad_id = dataset;
  bad_id["dataset"] = "a b";
  expect(Call(client, "POST", base + "/datasets", admin, bad_id), 422, "invalid_id");
  json bad_policy = dataset;
  bad_policy["dataset"] = "other";
  bad_policy["policy"] = "secret";
  expect(Call(client, "POST", base + "/datasets", admin, bad_policy), 422, "invalid_argument");
  expect(Call(client, "POST", base + "/datasets", steward, dataset), 409, "already_exists");
  expect(Call(client, "POST", base + "/datasets", researcher, unknown), 403, "forbidden");
  expect(Call(client, "POST", base + "/datasets", "", dataset), 401, "unauthenticated");
  expect(Call(client, "POST", base + "/datasets/genomes/requests", researcher,
              {{"grant", "G-none"}, {"reason", "why"}}),
         404, "not_found");
  expect(Call(client, "POST", base + "/datasets/genomes/requests", reviewer,
              {{"grant", "G-none"}, {"reason", "why"}}),
         403, "forbidden");
  expect(Call(client, "POST", base + "/dataset-requests/DR-1/decide", steward,
              {{"decision", "approve"}, {"reason", "ok"}}),
         404, "not_found");
  expect(Call(client, "POST", base + "/dataset-requests/DR-1/decide", researcher,
              {{"decision", "approve"}, {"reason", "ok"}}),
         403, "forbidden");
  expect(Call(client, "POST", base + "/datasets/genomes/revoke", steward,
              {{"grant", "G-none"}, {"reason", "r"}}),
         404, "not_found");
  expect(Call(client, "POST", base + "/storage-policy", steward,
              {{"price_per_gib_month", "1"}, {"gib_max", 1}}),
         403, "forbidden");
  expect(Call(client, "POST", base + "/storage-policy", admin,
              {{"price_per_gib_month", "1.0000001"}, {"gib_max", 1}}),
         422, "invalid_argument");
  expect(Call(client, "POST", base + "/grants/G-none/storage", researcher, {{"gib", -1}}), 422,
         "out_of_range");
  expect(Call(client, "POST", base + "/grants/G-none/storage", researcher, {{"gib", 1}}), 404,
         "not_found");
  expect(Call(client, "GET", base + "/datasets/nope", ""), 404, "not_found");
  expect(Call(client, "GET", base + "/dataset-requests", ""), 401, "unauthenticated");
  expect(Call(client, "GET", base + "/dataset-requests", reviewer), 403, "forbidden");
  expect(Call(client, "GET", base + "/grants/G-none/storage", researcher), 404, "not_found");
  // Nothing changed; the public sees the catalog but not where data on approval lives.
  EXPECT_EQ(Call(client, "GET", base + "/datasets", admin).body, catalog);
  ASSERT_EQ(catalog["items"].size(), 1u);
  EXPECT_EQ(catalog["items"][0]["location"], "/data/genomes");
  const Answer open = Call(client, "GET", base + "/datasets/genomes", "");
  EXPECT_EQ(open.status, 200);
  EXPECT_EQ(open.body["policy"], "approval");
  EXPECT_FALSE(open.body.contains("location"));
  EXPECT_EQ(Call(client, "GET", base + "/dataset-requests", steward).body["items"].size(), 0u);
}

// The example program, padded past the size the event loop parses (16 KiB), so its
// creation goes through a worker while the institutions below are answered from the loop.
std::string PaddedProgramToml() {
  std::ifstream in(std::string(ATRIUM_SOURCE_DIR) + "/examples/programs/build-on-trainium.toml");
  std::stringstream text;
  text << in.rdbuf();
  std::string toml = text.str();
  while (toml.size() < 20 * 1024) toml += "# padding past the loop's body limit\n";
  return toml;
}

json Institution(const std::string& id) {
  return {{"id", id}, {"name", id}, {"type", "r1"}, {"country", "US"}};
}

// Changes are answered from the event loop once their command is durable, with no worker
// waiting: each is counted once in the metrics, and every change acknowledged before a
// Stop that cuts into a stream of them is there after the restart.
TEST_F(ServerConcurrencyTest, ChangesAnsweredFromTheLoopAreCountedAndSurviveAStop) {
  constexpr int kClients = 4;
  constexpr int kEach = 25;
  std::mutex acked_mutex;
  std::set<std::string> acked;
  std::string admin;  // the store's bootstrap admin, written to a file on the first start
  {
    InProcessServer service(dir_);
    ASSERT_TRUE(service.Start());
    const std::string url = "http://127.0.0.1:" + std::to_string(service.port());
    httplib::Client admin_client(url);
    admin = service.admin_token();
    const std::string toml = PaddedProgramToml();
    ASSERT_GT(toml.size(), 16u * 1024);
    const Answer created = Call(admin_client, "POST", "/v1/programs", admin, {{"toml", toml}});
    ASSERT_EQ(created.status, 201) << created.body;
    // One token each: the limiter counts per token.
    std::vector<std::string> tokens;
    for (int i = 0; i < kClients; ++i) {
      tokens.push_back(Call(admin_client, "POST", "/v1/tokens", admin, {{"role", "admin"}})
                           .body.value("token", ""));
      ASSERT_FALSE(tokens.back().empty());
    }

    // Concurrent changes, each answered once with its own result.
    std::atomic<int> wrong = 0;
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        httplib::Client client(url);
        for (int i = 0; i < kEach; ++i) {
          const std::string id = "i" + std::to_string(c) + "-" + std::to_string(i);
          const Answer answer =
              Call(client, "POST", "/v1/programs/build-on-trainium-2026/institutions",
                   tokens[static_cast<size_t>(c)], Institution(id));
          if (answer.status != 201 || answer.body.value("institution", "") != id) ++wrong;
        }
        // The same id again is refused: its first answer was durable state, not a guess.
        const std::string first = "i" + std::to_string(c) + "-0";
        if (Call(client, "POST", "/v1/programs/build-on-trainium-2026/institutions",
                 tokens[static_cast<size_t>(c)], Institution(first))
                .status != 409) {
          ++wrong;
        }
      });
    }
    for (std::thread& client : clients) client.join();
    clients.clear();
    EXPECT_EQ(wrong.load(), 0);
    httplib::Headers auth = {{"Authorization", "Bearer " + admin}};
    const httplib::Result metrics = admin_client.Get("/metrics", auth);
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("atrium_http_requests_total{operation=\"institution_add\",status="
                                 "\"201\"} " +
                                 std::to_string(kClients * kEach) + "\n"),
              std::string::npos)
        << metrics->body;
    EXPECT_NE(metrics->body.find(
                  "atrium_http_requests_total{operation=\"institution_add\",status=\"409\"} " +
                  std::to_string(kClients) + "\n"),
              std::string::npos);

    // A stream of changes, and a Stop in the middle of it.
    std::atomic<bool> done = false;
    std::atomic<int> answered = 0;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        httplib::Client client(url);
        for (int i = 0; !done && i < 100000; ++i) {
          const std::string id = "s" + std::to_string(c) + "-" + std::to_string(i);
          const Answer answer =
              Call(client, "POST", "/v1/programs/build-on-trainium-2026/institutions",
                   tokens[static_cast<size_t>(c)], Institution(id));
          if (answer.status == 201) {
            std::lock_guard lock(acked_mutex);
            acked.insert(id);
            ++answered;
          } else if (answer.status == 0) {
            return;  // the service is gone
          } else if (answer.status != 429 && answer.status != 503) {
            ++wrong;
          }
        }
      });
    }
    while (answered < 40) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    service.Stop();
    done = true;
    for (std::thread& client : clients) client.join();
    EXPECT_EQ(wrong.load(), 0);
  }
  ASSERT_GE(acked.size(), 40u);
  InProcessServer again(dir_);
  ASSERT_TRUE(again.Start());
  httplib::Client client("http://127.0.0.1:" + std::to_string(again.port()));
  int missing = 0;
  for (const std::string& id : acked) {
    if (Call(client, "POST", "/v1/programs/build-on-trainium-2026/institutions", admin,
             Institution(id))
            .status != 409) {
      ++missing;
    }
  }
  EXPECT_EQ(missing, 0) << "acknowledged changes lost in a Stop";
}

// A damaged snapshot does not keep the service down: it starts from the journal alone, with
// every acknowledged change, and says so in /metrics (docs/journal.md, "Recovery").
TEST_F(ServerConcurrencyTest, ADamagedSnapshotIsPassedOverAtStart) {
  constexpr int kInstitutions = 10;
  std::string admin;
  {
    InProcessServer service(dir_);
    ASSERT_TRUE(service.Start());
    admin = service.admin_token();
    httplib::Client client("http://127.0.0.1:" + std::to_string(service.port()));
    ASSERT_EQ(Call(client, "POST", "/v1/programs", admin, {{"toml", PaddedProgramToml()}}).status,
              201);
    for (int i = 0; i < kInstitutions; ++i) {
      ASSERT_EQ(Call(client, "POST", "/v1/programs/build-on-trainium-2026/institutions", admin,
                     Institution("d" + std::to_string(i)))
                    .status,
                201);
    }
  }
  const std::string db = (dir_ / "atrium.db").string();
  {
    auto store = journal::OpenJournalStore(db, journal::OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    auto durable = journal::DurableCore::Open(std::move(*store));
    ASSERT_TRUE(durable.ok()) << durable.error().ToString();
    ASSERT_TRUE((*durable)->Snapshot().ok());
  }
  {
    sqlite3* handle = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(handle,
                           "UPDATE snapshot_chunks SET data = substr(data, 1, 30) || x'01' ||"
                           " substr(data, 32)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    EXPECT_GT(sqlite3_changes(handle), 0);
    sqlite3_close(handle);
  }
  InProcessServer again(dir_);
  ASSERT_TRUE(again.Start());
  httplib::Client client("http://127.0.0.1:" + std::to_string(again.port()));
  for (int i = 0; i < kInstitutions; ++i) {
    EXPECT_EQ(Call(client, "POST", "/v1/programs/build-on-trainium-2026/institutions", admin,
                   Institution("d" + std::to_string(i)))
                  .status,
              409);
  }
  const httplib::Result metrics =
      client.Get("/metrics", httplib::Headers{{"Authorization", "Bearer " + admin}});
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("atrium_journal_snapshots_passed_over 1\n"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("atrium_journal_recovered_from_seq 0\n"), std::string::npos);
}

TEST(ServerConfigTest, SnapshotPolicyIsReadFromTheConfigFileAndChecked) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("atrium-config-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "serve.toml").string();
  ServerOptions options;
  EXPECT_EQ(options.snapshot_entries, journal::Options{}.snapshot_entries);
  EXPECT_EQ(options.snapshot_state_bytes_per_entry,
            journal::Options{}.snapshot_state_bytes_per_entry);
  std::ofstream(path) << "snapshot_entries = 250000\nsnapshot_state_bytes_per_entry = 0\n";
  ASSERT_TRUE(LoadServerConfig(path, &options).ok());
  EXPECT_EQ(options.snapshot_entries, 250'000U);
  EXPECT_EQ(options.snapshot_state_bytes_per_entry, 0U);
  for (const char* bad : {"snapshot_entries = -1\n", "snapshot_state_bytes_per_entry = \"1k\"\n",
                          "snapshot_entries = 1.5\n"}) {
    std::ofstream(path, std::ios::trunc) << bad;
    const Status loaded = LoadServerConfig(path, &options);
    EXPECT_EQ(loaded.code(), ErrorCode::kConfigInvalid) << bad;
    EXPECT_EQ(options.snapshot_entries, 250'000U) << bad;
    EXPECT_EQ(options.snapshot_state_bytes_per_entry, 0U) << bad;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace atrium::server
