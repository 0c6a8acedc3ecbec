// The service end to end: a real `atrium serve` on loopback, driven over HTTP and through
// the `atrium` CLI client. Every test runs twice: on the embedded SQLite journal
// (service_test) and on a real PostgreSQL server started by the CTest fixture
// (service_pg_test, ATRIUM_SERVICE_TEST_PG).
//
//   - a whole program cycle through the CLI client: program, call, proposals, conflicts,
//     reviews, decision, grants, jobs charged to grants, obligations, report, public log;
//   - the route x role table of docs/api-roles.md, every route for every role;
//   - bad input of every kind, each with its documented answer, the journal unchanged;
//   - idempotent retries, also across a restart;
//   - SIGKILL during a stream of writes, 12 times: every acknowledged write survives and
//     the ledgers verify;
//   - a second instance on the same store is refused; SIGTERM stops cleanly.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "process.h"
#include "service_process.h"

namespace atrium {
namespace {

using nlohmann::json;
using testing::ServiceProcess;

// People from examples/programs/demo (ORCID-style ids with valid check digits).
constexpr const char* kPi1 = "0000-0002-0260-0005";        // northfield, faculty
constexpr const char* kPi2 = "0000-0002-0260-0013";        // lakeshore, faculty
constexpr const char* kReviewerA = "0000-0002-0260-0021";  // cascadia
constexpr const char* kReviewerB = "0000-0002-0260-003X";  // thames
constexpr const char* kReviewerC = "0000-0002-0260-0056";  // deccan
constexpr const char* kStudent = "0000-0002-0260-0099";    // riverside-hbcu, postdoc

std::string IsoUtc(std::chrono::system_clock::time_point at) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// A small program whose call is open at `now` (the service's clock) and closes
// `closes_in` later.
std::string ProgramToml(std::chrono::system_clock::time_point now, std::chrono::seconds closes_in,
                        const std::string& governance = "", int64_t track_budget = 1000000) {
  std::ostringstream out;
  out << R"([program]
id = "svc-test"
name = "Service test program"
currency = "USD"
total_budget = 1000000
award_policy = "greedy"
topics = ["ml-systems", "compilers"]
[program.prices]
trn1 = "1.34375"
[[program.rubric]]
name = "merit"
weight = 1
min = 1
max = 5
[program.obligations]
progress_report_months = []
final_report = false
paper = true
repository = false
final_grace_months = 3
freeze_when_overdue = true
)" << governance
      << R"([[track]]
id = "research"
name = "Research"
kind = "research"
)"
      << "budget = " << track_budget << R"(
award_cap = 100000
institution_cap = 500000
pi_roles = ["faculty"]
[[call]]
id = "c1"
track = "research"
)";
  out << "opens = \"" << IsoUtc(now - std::chrono::hours(1)) << "\"\n";
  out << "closes = \"" << IsoUtc(now + closes_in) << "\"\n";
  out << "review_deadline = \"" << IsoUtc(now + std::chrono::hours(1)) << "\"\n";
  out << "decision = \"" << IsoUtc(now + std::chrono::hours(2)) << "\"\n";
  out << "reviewers_per_proposal = 2\n";
  return out.str();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

struct Reply {
  int status = 0;
  json body;
  std::string raw;
  httplib::Headers headers;
};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("atrium-service-" + std::to_string(getpid()) + "-" + name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
#ifdef ATRIUM_SERVICE_TEST_PG
    const char* url = std::getenv("ATRIUM_TEST_PG_URL");
    ASSERT_NE(url, nullptr) << "ATRIUM_TEST_PG_URL must name the test PostgreSQL server";
    admin_url_ = url;
    database_ = "atrium_svc_" + std::to_string(getpid()) + "_" + std::to_string(++counter_);
    pqxx::connection connection(admin_url_);
    pqxx::nontransaction(connection).exec0("CREATE DATABASE " + database_);
    db_ = admin_url_.substr(0, admin_url_.rfind('/') + 1) + database_;
#endif
  }

  void TearDown() override {
    service_.reset();
    for (auto& extra : extra_) extra.reset();
#ifdef ATRIUM_SERVICE_TEST_PG
    if (!database_.empty()) {
      pqxx::connection connection(admin_url_);
      pqxx::nontransaction(connection)
          .exec0("DROP DATABASE IF EXISTS " + database_ + " WITH (FORCE)");
    }
#endif
    std::filesystem::remove_all(dir_);
  }

  std::vector<std::string> ServeArgs(bool examples = false) const {
    std::vector<std::string> args = {"--data", (dir_ / "data").string()};
    if (!db_.empty()) args.insert(args.end(), {"--db", db_});
    if (!examples) args.push_back("--no-examples");
    // The service's time is the test's to move (POST /testing/clock): no test sleeps
    // until a deadline passes.
    args.insert(args.end(), {"--threads", "16", "--clock", "manual", "--allow-test-clock"});
    return args;
  }

  void StartService(bool examples = false) {
    service_ = std::make_unique<ServiceProcess>();
    ASSERT_TRUE(service_->Start(ATRIUM_BINARY, ServeArgs(examples))) << service_->output();
    if (!service_->token_file().empty())
      admin_token_ = testing::ReadFirstLine(service_->token_file());
    ASSERT_FALSE(admin_token_.empty()) << service_->output();
  }

  Reply Call(const std::string& method, const std::string& path, const std::string& token,
             const std::string& body = "", httplib::Headers headers = {}) {
    httplib::Client client(service_->url());
    client.set_read_timeout(30);
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    httplib::Result result = method == "GET" ? client.Get(path, headers)
                             : method == "POST"
                                 ? client.Post(path, headers, body, "application/json")
                                 : client.Delete(path, headers, body, "application/json");
    Reply reply;
    if (!result) {
      ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(result.error());
      return reply;
    }
    reply.status = result->status;
    reply.raw = result->body;
    reply.headers = result->headers;
    reply.body = json::parse(result->body, nullptr, false);
    return reply;
  }
  Reply Post(const std::string& path, const std::string& token, const json& body,
             httplib::Headers headers = {}) {
    return Call("POST", path, token, body.dump(), std::move(headers));
  }
  Reply Get(const std::string& path, const std::string& token) { return Call("GET", path, token); }

  std::string MakeToken(const std::string& role, const std::string& person) {
    const Reply reply = Post("/v1/tokens", admin_token_, {{"role", role}, {"person", person}});
    EXPECT_EQ(reply.status, 201) << reply.raw;
    return reply.body.value("token", std::string());
  }

  // The service's clock (a manual clock: it moves only when Advance moves it).
  std::chrono::system_clock::time_point ServiceNow() {
    const Reply reply = Get("/testing/clock", admin_token_);
    EXPECT_EQ(reply.status, 200) << reply.raw;
    return std::chrono::system_clock::time_point(
        std::chrono::microseconds(reply.body.value("now_us", int64_t{0})));
  }
  // Moves the service's clock forward; returns once the tick then due is durable.
  void Advance(std::chrono::microseconds delta) {
    const Reply reply = Post("/testing/clock", admin_token_, {{"advance_us", delta.count()}});
    ASSERT_EQ(reply.status, 200) << reply.raw;
  }

  // The journal's last durable entry, as /readyz reports it.
  uint64_t DurableSeq() {
    const Reply reply = Get("/readyz", "");
    EXPECT_EQ(reply.status, 200) << reply.raw;
    return reply.body.value("durable_seq", uint64_t{0});
  }

  // `atrium <args> --server URL --token-file F --json`, parsed.
  json Cli(const std::vector<std::string>& args, const std::string& token, int expect_exit = 0) {
    const std::string token_file = (dir_ / ("cli-token-" + std::to_string(++cli_calls_))).string();
    WriteAll(token_file, token + "\n");
    std::vector<std::string> argv = {ATRIUM_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    // The shared options go before a "--" that starts the job's own command.
    auto at = std::find(argv.begin(), argv.end(), "--");
    std::vector<std::string> shared = {"--server", service_->url(), "--json"};
    if (!token.empty()) shared.insert(shared.end(), {"--token-file", token_file});
    argv.insert(at, shared.begin(), shared.end());
    const testing::ProcessResult run = testing::Run(argv);
    std::string joined;
    for (const std::string& arg : args) joined += arg + " ";
    EXPECT_EQ(run.exit_code, expect_exit) << joined << "\n" << run.out << run.err;
    return json::parse(run.out, nullptr, false);
  }

  // Program, people, cluster; a call that closes `closes_in` from now (the service's
  // clock); proposals of two PIs. Returns after the call is open and the proposals are in.
  void SetUpProgram(std::chrono::seconds closes_in = std::chrono::seconds(60)) {
    const std::string toml = (dir_ / "program.toml").string();
    const auto now = ServiceNow();
    closes_at_ = now + closes_in;
    WriteAll(toml, ProgramToml(now, closes_in, governance_, track_budget_));
    officer_ = MakeToken("officer", "");
    Cli({"programs", "create", "--file", toml}, officer_);
    Cli({"cluster", "load", "--file",
         std::string(ATRIUM_SOURCE_DIR) + "/examples/clusters/mixed.toml"},
        admin_token_);
    const std::vector<std::tuple<const char*, const char*, const char*>> institutions = {
        {"northfield", "r1", "US"}, {"lakeshore", "r1", "US"},
        {"cascadia", "r1", "CA"},   {"thames", "r1", "GB"},
        {"deccan", "r2", "IN"},     {"riverside-hbcu", "minority_serving", "US"}};
    for (const auto& [id, type, country] : institutions) {
      const Reply reply = Post("/v1/programs/svc-test/institutions", officer_,
                               {{"id", id}, {"name", id}, {"type", type}, {"country", country}});
      ASSERT_EQ(reply.status, 201) << reply.raw;
    }
    const std::vector<std::tuple<const char*, const char*, const char*, bool>> people = {
        {kPi1, "northfield", "faculty", false},    {kPi2, "lakeshore", "faculty", false},
        {kReviewerA, "cascadia", "faculty", true}, {kReviewerB, "thames", "faculty", true},
        {kReviewerC, "deccan", "faculty", true},   {kStudent, "riverside-hbcu", "postdoc", false}};
    for (const auto& [id, institution, role, reviewer] : people) {
      const Reply reply = Post("/v1/programs/svc-test/people", officer_,
                               {{"id", id},
                                {"name", std::string("Person ") + id},
                                {"institution", institution},
                                {"role", role},
                                {"expertise", {"ml-systems", "compilers"}},
                                {"reviewer", reviewer}});
      ASSERT_EQ(reply.status, 201) << reply.raw;
    }
    Cli({"call", "open", "c1", "--program", "svc-test"}, officer_);
    pi1_ = MakeToken("researcher", kPi1);
    pi2_ = MakeToken("researcher", kPi2);
    for (const auto& [token, id] : {std::pair{pi1_, "P1"}, std::pair{pi2_, "P2"}}) {
      const std::string file = (dir_ / (std::string(id) + ".json")).string();
      WriteAll(file, json{{"id", id},
                          {"call", "c1"},
                          {"title", std::string("Proposal ") + id},
                          {"abstract", "Compilers for accelerators."},
                          {"topics", {"compilers"}},
                          {"requested", "50000"},
                          {"duration_months", 12},
                          {"open_source_plan", "Apache-2.0"}}
                         .dump());
      const json answer = Cli({"proposal", "submit", "--file", file}, token);
      EXPECT_EQ(answer.value("status", ""), "submitted") << answer;
    }
  }

  // Closes the call once its deadline passed, assigns, reviews, decides: both proposals
  // funded (G-P1, G-P2).
  void DecideProgram(const std::function<void()>& before_commit = nullptr) {
    // Past the call's deadline at once: the service's clock is the test's.
    Advance(std::chrono::duration_cast<std::chrono::microseconds>(closes_at_ - ServiceNow()) +
            std::chrono::seconds(1));
    Cli({"call", "close", "c1"}, officer_);
    Cli({"call", "assign", "c1"}, officer_);
    for (const char* reviewer : {kReviewerA, kReviewerB, kReviewerC}) {
      const std::string token = MakeToken("reviewer", reviewer);
      reviewers_[reviewer] = token;
      const json visible = Cli({"proposal", "list"}, token);
      for (const json& proposal : visible["items"]) {
        Cli({"review", "submit", "--proposal", proposal["id"].get<std::string>(), "--scores", "4",
             "--comment", "solid"},
            token);
      }
    }
    Cli({"decision", "draft", "c1"}, officer_);
    if (before_commit) before_commit();
    Cli({"decision", "commit", "c1"}, officer_);
  }

  std::filesystem::path dir_;
  std::string db_;  // "" = SQLite under the data directory
  std::string admin_url_;
  std::string database_;
  std::unique_ptr<ServiceProcess> service_;
  std::vector<std::unique_ptr<ServiceProcess>> extra_;
  std::string admin_token_;
  std::string officer_, pi1_, pi2_;
  std::string governance_;  // [program.overrides] etc. for SetUpProgram (docs/governance.md)
  int64_t track_budget_ = 1000000;
  std::map<std::string, std::string> reviewers_;
  std::chrono::system_clock::time_point closes_at_;
  int cli_calls_ = 0;
#ifdef ATRIUM_SERVICE_TEST_PG
  static inline int counter_ = 0;
#endif
};

TEST_F(ServiceTest, ProgramCycleThroughTheCliClient) {
  StartService();
  // The admin token file is private, and the server never printed the secret.
  struct stat info {};
  ASSERT_EQ(stat(service_->token_file().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  EXPECT_EQ(service_->output().find(admin_token_), std::string::npos);

  SetUpProgram();
  // A researcher sees their own proposal only; a student sees none.
  const json own = Cli({"proposal", "list"}, pi1_);
  ASSERT_EQ(own["items"].size(), 1u) << own;
  EXPECT_EQ(own["items"][0]["id"], "P1");
  Cli({"proposal", "show", "P2"}, pi1_, /*expect_exit=*/1);
  // A reviewer declares a conflict before assignment: never assigned, never shown.
  const std::string conflicted = MakeToken("reviewer", kReviewerC);
  Cli({"conflict", "declare", "--proposal", "P1", "--note", "former student"}, conflicted);

  // The what-if route: every query parameter is checked, and an answer changes nothing.
  const std::string whatif = "/v1/programs/svc-test/calls/c1/whatif";
  DecideProgram([&] {
    const Reply draft = Get("/v1/programs/svc-test/calls/c1/decision", officer_);
    ASSERT_EQ(draft.status, 200) << draft.raw;
    // Solved on the request's thread, its answers journaled with the command.
    const std::string scraped = Get("/metrics", admin_token_).raw;
    EXPECT_NE(scraped.find("atrium_award_solves_total{thread=\"request\"} 1\n"), std::string::npos)
        << scraped;
    const int64_t log_before = Get("/v1/programs/svc-test", officer_).body["log_entries"];
    for (const auto& [query, field] :
         std::vector<std::pair<std::string, std::string>>{{"budget=abc", "budget"},
                                                          {"budget=-5", "budget"},
                                                          {"floor=no-such-floor:10", "floor"},
                                                          {"floor=nocolon", "floor"},
                                                          {"floor=x:101", "floor"},
                                                          {"policy=lottery", "policy"},
                                                          {"bogus=1", "bogus"}}) {
      const Reply refused = Get(whatif + "?" + query, officer_);
      EXPECT_EQ(refused.status, 422) << query << ": " << refused.raw;
      EXPECT_EQ(refused.body["error"]["code"], "invalid_argument") << query;
      EXPECT_EQ(refused.body["error"]["field"], field) << query;
    }
    EXPECT_EQ(Get(whatif, pi1_).status, 403);
    const Reply same = Get(whatif, officer_);
    ASSERT_EQ(same.status, 200) << same.raw;
    EXPECT_EQ(same.body["total_awarded"], draft.body["total_awarded"]);
    const Reply smaller = Get(whatif + "?budget=50000&policy=mip", officer_);
    ASSERT_EQ(smaller.status, 200) << smaller.raw;
    EXPECT_EQ(smaller.body["budget"], "50000");
    EXPECT_EQ(smaller.body["policy"], "mip");
    EXPECT_LE(std::stoll(smaller.body["total_awarded"].get<std::string>()), 50000);
    EXPECT_LT(std::stoll(smaller.body["total_awarded"].get<std::string>()),
              std::stoll(draft.body["total_awarded"].get<std::string>()));
    EXPECT_EQ(Get("/v1/programs/svc-test/calls/c1/decision", officer_).body, draft.body);
    EXPECT_EQ(Get("/v1/programs/svc-test", officer_).body["log_entries"], log_before);
  });
  EXPECT_EQ(Get(whatif, officer_).body["error"]["code"], "invalid_state");
  const json conflicts = Cli({"conflict", "list"}, officer_);
  EXPECT_FALSE(conflicts["items"].empty());
  const json seen_by_c = Cli({"proposal", "list"}, conflicted);
  for (const json& proposal : seen_by_c["items"]) EXPECT_NE(proposal["id"], "P1");
  Cli({"proposal", "show", "P1"}, conflicted, /*expect_exit=*/1);
  const json reviews_of_a = Cli({"review", "list"}, reviewers_[kReviewerA]);
  for (const json& review : reviews_of_a["items"]) EXPECT_EQ(review["reviewer"], kReviewerA);

  const json decision = Cli({"decision", "show", "c1"}, officer_);
  EXPECT_TRUE(decision["committed"].get<bool>()) << decision;
  const json grants = Cli({"grant", "list"}, pi1_);
  ASSERT_EQ(grants["items"].size(), 1u) << grants;
  const std::string grant = grants["items"][0]["id"];
  EXPECT_EQ(grant, "G-P1");
  const std::string awarded = grants["items"][0]["awarded"];
  EXPECT_EQ(awarded, "50000");

  // A job charged to the grant, run and finished; the grant pays for what ran.
  Cli({"grant", "add-member", grant, "--person", kStudent}, pi1_);
  const std::string student = MakeToken("student", kStudent);
  const json submitted = Cli({"job", "submit", "--grant", grant, "--chips", "16", "--walltime",
                              "2h", "--name", "train", "--", "python", "train.py", "--lr", "3e-4"},
                             student);
  const std::string job = submitted["job"];
  EXPECT_EQ(submitted["state"], "running") << submitted;
  const json shown = Cli({"job", "show", job}, pi1_);
  EXPECT_EQ(shown["argv"], json({"python", "train.py", "--lr", "3e-4"}));
  EXPECT_EQ(shown["chips"], 16);
  // Someone outside the grant does not see it.
  Cli({"job", "show", job}, pi2_, /*expect_exit=*/1);
  EXPECT_TRUE(Cli({"job", "list"}, pi2_)["items"].empty());
  Advance(std::chrono::milliseconds(2100));  // the job runs for 2.1 s of the service's time
  const std::string operator_token = MakeToken("operator", "");
  const json finished = Cli({"job", "finish", job}, operator_token);
  EXPECT_EQ(finished["state"], "completed") << finished;
  const json balance = Cli({"grant", "balance", grant}, pi1_);
  EXPECT_NE(balance["spent"], "0") << balance;
  EXPECT_EQ(balance["spent"], Cli({"job", "show", job}, student)["charged"]);
  // A run that reaches its walltime is ended by the clock: an hour of the service's time
  // passes at once, and the tick it makes due is durable when Advance returns.
  const json hour_job =
      Cli({"job", "submit", "--grant", grant, "--chips", "1", "--walltime", "1h", "--", "sleep"},
          student);
  EXPECT_EQ(hour_job["state"], "running") << hour_job;
  Advance(std::chrono::minutes(59));
  EXPECT_EQ(Cli({"job", "show", hour_job["job"]}, student)["state"], "running");
  {
    // The operator's view of the queue reads the scheduler's running set.
    const Reply running = Get("/v1/jobs?state=running", operator_token);
    ASSERT_EQ(running.status, 200) << running.raw;
    ASSERT_EQ(running.body["items"].size(), 1U) << running.raw;
    EXPECT_EQ(running.body["items"][0]["id"], hour_job["job"]);
    EXPECT_TRUE(Get("/v1/jobs?state=pending", operator_token).body["items"].empty());
  }
  Advance(std::chrono::minutes(1) + std::chrono::seconds(1));
  const json ended = Cli({"job", "show", hour_job["job"]}, student);
  EXPECT_EQ(ended["state"], "killed_at_walltime") << ended;
  EXPECT_NE(ended["charged"], "0") << ended;
  // Job lists, a page of one at a time: a member's and the student's (read from the owner
  // and grant indexes, merged) equal the operator's (every job) of that grant, and the
  // state filter agrees with each job's state.
  const auto job_ids = [&](const std::string& query, const std::string& token) {
    std::vector<std::string> ids;
    std::string after;
    for (int page = 0; page < 50; ++page) {
      const Reply got =
          Get("/v1/jobs?limit=1" + query + (after.empty() ? "" : "&after=" + after), token);
      EXPECT_EQ(got.status, 200) << got.raw;
      for (const json& item : got.body["items"]) ids.push_back(item["id"]);
      if (!got.body["next"].is_string()) break;
      after = got.body["next"];
    }
    return ids;
  };
  const std::vector<std::string> all_of_grant = job_ids("&grant=" + grant, operator_token);
  ASSERT_EQ(all_of_grant.size(), 2U);
  EXPECT_EQ(job_ids("", pi1_), all_of_grant);
  EXPECT_EQ(job_ids("", student), all_of_grant);
  EXPECT_EQ(job_ids("&program=svc-test&grant=" + grant, pi1_), all_of_grant);
  EXPECT_EQ(job_ids("&program=svc-test&grant=" + grant, operator_token), all_of_grant);
  EXPECT_EQ(job_ids("&state=killed_at_walltime", student),
            std::vector<std::string>{hour_job["job"].get<std::string>()});
  EXPECT_EQ(job_ids("&state=completed&program=svc-test&grant=" + grant, pi1_),
            std::vector<std::string>{job});
  EXPECT_TRUE(job_ids("", pi2_).empty());
  // Node drain by the operator; a researcher may not.
  const json up = Cli({"node", "list", "--state", "up", "--limit", "2"}, operator_token);
  const std::string node = up["items"][0]["name"];
  const size_t draining =
      Cli({"node", "list", "--state", "draining"}, operator_token)["items"].size();
  Cli({"node", "drain", node}, pi1_, /*expect_exit=*/1);
  EXPECT_EQ(Cli({"node", "drain", node}, operator_token)["state"], "draining");
  EXPECT_EQ(Cli({"node", "list", "--state", "draining"}, operator_token)["items"].size(),
            draining + 1);
  EXPECT_EQ(Cli({"node", "resume", node}, operator_token)["state"], "up");

  // Obligations: the PI submits the paper, the officer accepts it.
  const json obligations = Cli({"obligation", "list", "--grant", grant}, pi1_);
  ASSERT_EQ(obligations["items"].size(), 1u) << obligations;
  const std::string paper = obligations["items"][0]["id"];
  Cli({"obligation", "submit", paper, "--reference", "10.5555/bad id"}, pi1_, /*expect_exit=*/1);
  EXPECT_EQ(Cli({"obligation", "submit", paper, "--reference", "arXiv:2401.00001"}, pi1_)["state"],
            "submitted");
  EXPECT_EQ(Cli({"obligation", "review", paper, "--accept"}, officer_)["state"], "accepted");

  // The public sees the report and the log, and nothing else.
  const json report = Cli({"report", "show", "--program", "svc-test"}, "");
  EXPECT_TRUE(report.contains("budget")) << report;
  const json log = Cli({"log", "show", "--program", "svc-test"}, "");
  EXPECT_GT(log["items"].size(), 5u);
  Cli({"grant", "list", "--program", "svc-test"}, "", /*expect_exit=*/1);

  // The human form of a list is a table with a header.
  const testing::ProcessResult table =
      testing::Run({ATRIUM_BINARY, "job", "list", "--server", service_->url(), "--token-file",
                    (dir_ / "cli-token-1").string()});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  // The header comes first, the jobs' times as times.
  EXPECT_NE(table.out.substr(0, table.out.find('\n')).find(" ID "), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("20789d"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(job), std::string::npos) << table.out;
  // A job's times as people read them: its start a UTC time (not a 56-year duration), no
  // 1970 for a value not set.
  const testing::ProcessResult show =
      testing::Run({ATRIUM_BINARY, "job", "show", job, "--server", service_->url(), "--token-file",
                    (dir_ / "cli-token-1").string()});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  const size_t started = show.out.find("\nstarted_s: ");
  ASSERT_NE(started, std::string::npos) << show.out;
  const std::string started_line =
      show.out.substr(started + 1, show.out.find('\n', started + 1) - started - 1);
  EXPECT_TRUE(started_line.ends_with("Z") && started_line.find('T') != std::string::npos)
      << started_line;
  EXPECT_EQ(show.out.find("1970-01-01"), std::string::npos) << show.out;
  // Verify the store after a clean stop: the chain, every snapshot and every ledger.
  EXPECT_EQ(service_->Stop(SIGTERM), 0) << service_->output();
  const testing::ProcessResult verify =
      testing::Run({ATRIUM_BINARY, "ledger", "verify", "--db",
                    db_.empty() ? (dir_ / "data" / "atrium.db").string() : db_});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// Every route for every role, as docs/api-roles.md lists them: an allowed role gets past
// the route's check (whatever the resource then answers), any other gets 403 (401 when
// anonymous). The document must be what the server prints.
TEST_F(ServiceTest, RouteRoleMatrixMatchesTheDocument) {
  StartService();
  const std::string documented = ReadAll(std::string(ATRIUM_SOURCE_DIR) + "/docs/api-roles.md");
  const testing::ProcessResult printed =
      testing::Run({ATRIUM_BINARY, "serve", "--routes-markdown"});
  ASSERT_EQ(printed.exit_code, 0);
  ASSERT_NE(documented.find(printed.out), std::string::npos)
      << "docs/api-roles.md is stale: regenerate it with `atrium serve --routes-markdown`";

  const std::vector<std::string> roles = {"admin",      "officer",     "reviewer", "researcher",
                                          "student",    "operator",    "public",   "sponsor",
                                          "instructor", "data_steward"};
  std::map<std::string, std::string> tokens;
  for (const std::string& role : roles) {
    tokens[role] = role == "public"  ? ""
                   : role == "admin" ? admin_token_
                                     : MakeToken(role, role == "operator" || role == "sponsor" ||
                                                               role == "data_steward"
                                                           ? ""
                                                           : "0000-0002-0260-0005");
  }
  int checked = 0;
  std::istringstream lines(documented);
  for (std::string line; std::getline(lines, line);) {
    // | METHOD | `path` | operation | admin | ... | public |
    std::vector<std::string> columns;
    std::istringstream split(line);
    for (std::string cell; std::getline(split, cell, '|');) columns.push_back(cell);
    if (columns.size() != 4 + roles.size() || columns[2].find('`') == std::string::npos) continue;
    const std::string method = columns[1].substr(1, columns[1].size() - 2);
    const size_t tick = columns[2].find('`');
    std::string path = columns[2].substr(tick + 1, columns[2].rfind('`') - tick - 1);
    for (size_t open = path.find('{'); open != std::string::npos; open = path.find('{')) {
      path.replace(open, path.find('}', open) - open + 1, "nothing-here");
    }
    const std::vector<std::string> cells(columns.begin() + 4, columns.end());
    ASSERT_EQ(cells.size(), roles.size()) << line;
    for (size_t i = 0; i < roles.size(); ++i) {
      const bool allowed = cells[i].find("yes") != std::string::npos;
      const Reply reply = Call(method, path, tokens[roles[i]], method == "GET" ? "" : "{}");
      SCOPED_TRACE(method + " " + path + " as " + roles[i] + ": " + reply.raw);
      if (allowed) {
        EXPECT_NE(reply.status, 401);
        EXPECT_NE(reply.status, 403);
        EXPECT_LT(reply.status, 500);
      } else {
        EXPECT_EQ(reply.status, roles[i] == "public" ? 401 : 403);
        ASSERT_TRUE(reply.body.contains("error"));
        EXPECT_EQ(reply.body["error"]["code"],
                  roles[i] == "public" ? "unauthenticated" : "forbidden");
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 40 * 7);
  // Metrics: admins and operators only.
  EXPECT_EQ(Get("/metrics", "").status, 401);
  EXPECT_EQ(Get("/metrics", tokens["researcher"]).status, 403);
  const Reply metrics = Get("/metrics", tokens["operator"]);
  EXPECT_EQ(metrics.status, 200);
  for (const char* name : {"atrium_http_requests_total{operation=\"token_create\",status=\"201\"}",
                           "atrium_http_request_seconds_bucket", "atrium_journal_queue_length",
                           "atrium_journal_fsync_seconds_bucket", "atrium_cluster_chips_busy"}) {
    EXPECT_NE(metrics.raw.find(name), std::string::npos) << name;
  }
  EXPECT_EQ(Get("/healthz", "").status, 200);
  const Reply openapi = Get("/v1/openapi.json", "");
  EXPECT_EQ(openapi.body["openapi"], "3.0.3");
  const json documented_api =
      json::parse(ReadAll(std::string(ATRIUM_SOURCE_DIR) + "/docs/openapi.json"));
  EXPECT_EQ(openapi.body, documented_api)
      << "docs/openapi.json is stale: regenerate it with `atrium serve --print-openapi`";
  // A token that is wrong in any way is refused, even on public routes.
  EXPECT_EQ(Get("/v1/programs", "atr_0000000000000000_" + std::string(64, '0')).status, 401);
  EXPECT_EQ(Get("/v1/programs", "not-a-token").status, 401);
  const std::string revoked = MakeToken("researcher", kPi2);
  const std::string revoked_id = revoked.substr(4, 16);
  EXPECT_EQ(Call("DELETE", "/v1/tokens/" + revoked_id, revoked).status, 200);
  EXPECT_EQ(Get("/v1/me", revoked).status, 401);
}

TEST_F(ServiceTest, BadInputIsRefusedAndChangesNothing) {
  StartService(/*examples=*/true);
  const std::string researcher = MakeToken("researcher", kPi1);
  const uint64_t before = DurableSeq();
  const json programs_before = Get("/v1/programs", admin_token_).body;
  const std::string path = "/v1/programs/build-on-trainium-2026/proposals";
  auto expect = [&](const Reply& reply, int status, const std::string& code) {
    EXPECT_EQ(reply.status, status) << reply.raw;
    ASSERT_TRUE(reply.body.is_object() && reply.body.contains("error")) << reply.raw;
    EXPECT_EQ(reply.body["error"]["code"], code) << reply.raw;
    EXPECT_TRUE(reply.body["error"]["message"].is_string());
    EXPECT_EQ(reply.raw.find("what()"), std::string::npos);
  };
  expect(Call("POST", path, researcher, "{\"id\": "), 400, "parse_error");
  expect(Call("POST", path, researcher, "[1, 2]"), 400, "parse_error");
  expect(Call("POST", path, researcher, std::string("{\"id\": \"P\xff\xfe\"}")), 400,
         "parse_error");
  expect(Post(path, researcher, {{"id", 12}, {"call", "2026-individuals"}}), 422,
         "invalid_argument");
  expect(Post(path, researcher, {{"id", "P1"}, {"surprise", true}}), 422, "unknown_field");
  expect(Post("/v1/jobs", researcher,
              {{"program", "build-on-trainium-2026"},
               {"grant", "G"},
               {"chips", "16"},
               {"walltime_s", 60}}),
         404, "not_found");
  expect(Post("/v1/programs", admin_token_, {{"toml", std::string(2 << 20, 'x')}}), 413,
         "too_large");
  expect(Post(path, researcher,
              {{"id", "P1"},
               {"call", "2026-individuals"},
               {"title", std::string(100'000, 't')},
               {"abstract", "a"}}),
         422, "too_long");
  expect(Post(path, researcher, {{"id", std::string(300, 'a')}, {"call", "x"}}), 422, "too_long");
  expect(Get("/v1/programs/..%2F..%2Fetc%2Fpasswd", researcher), 400, "invalid_path");
  expect(Get("/v1/jobs/..", researcher), 400, "invalid_path");
  expect(Get("/v1/jobs/a%20b", researcher), 400, "invalid_path");
  expect(Get("/v1/programs/build-on-trainium-2026/obligations/a%2F..%2Fb/submit", researcher), 400,
         "invalid_path");
  expect(Post("/v1/programs/build-on-trainium-2026/obligations/a%2F..%2Fb/submit", researcher,
              json::object()),
         400, "invalid_path");
  expect(Post(path, researcher, {{"id", "P\n1"}, {"call", "c"}}), 422, "invalid_id");
  expect(Post("/v1/tokens", researcher, {{"role", "admin"}}), 403, "forbidden");
  expect(Post("/v1/tokens", admin_token_, {{"role", "wizard"}}), 422, "invalid_argument");
  expect(Post("/v1/tokens", admin_token_, {{"role", "researcher"}, {"hash", "x"}}), 422,
         "unknown_field");
  // The seal secret of a program is drawn by the server, never supplied.
  expect(Post("/v1/programs", admin_token_, {{"toml", "x"}, {"seal_secret", std::string(64, 'a')}}),
         422, "unknown_field");
  // So are a draft's solver answers, journaled with it by the core: a client that could
  // send them would choose the awards.
  expect(Post("/v1/programs/build-on-trainium-2026/calls/c/decision/draft", admin_token_,
              {{"solver_answers", json::array()}}),
         422, "unknown_field");
  expect(Get("/v1/jobs?limit=0", researcher), 422, "invalid_argument");
  expect(Get("/v1/no/such/route", researcher), 404, "not_found");
  // Training (docs/training.md): every route's bad input refused with its code.
  const std::string training = "/v1/programs/build-on-trainium-2026/training";
  const json course = {{"id", "intro"}, {"kind", "course"}, {"title", "Intro"}};
  expect(Post(training, researcher, course), 403, "forbidden");
  json bad_item = course;
  bad_item["kind"] = "workshop";
  expect(Post(training, admin_token_, bad_item), 422, "invalid_argument");
  bad_item = course;
  bad_item["surprise"] = 1;
  expect(Post(training, admin_token_, bad_item), 422, "unknown_field");
  bad_item = course;
  bad_item["credits"] = "-5";
  expect(Post(training, admin_token_, bad_item), 422, "invalid_argument");
  bad_item = course;
  bad_item["prerequisites"] = {"nothing-yet"};
  expect(Post(training, admin_token_, bad_item), 404, "not_found");
  bad_item = {{"id", "lab1"}, {"kind", "lab"}, {"title", "Lab"}};  // a lab without its template
  expect(Post(training, admin_token_, bad_item), 422, "invalid_argument");
  expect(Post(training + "/intro/enrol", researcher, {{"grant", "G-none"}}), 404, "not_found");
  expect(Post(training + "/intro/enrol", researcher, json::object()), 422, "invalid_argument");
  expect(Post("/v1/programs/build-on-trainium-2026/enrolments/E-1/complete", researcher,
              json::object()),
         403, "forbidden");
  expect(Post("/v1/programs/build-on-trainium-2026/enrolments/E-1/withdraw", researcher,
              json::object()),
         404, "not_found");
  expect(Get("/v1/programs/build-on-trainium-2026/certificates/C-0", researcher), 404, "not_found");
  expect(Get(training + "/nope", researcher), 404, "not_found");
  expect(Get("/v1/programs/build-on-trainium-2026/enrolments?limit=0", researcher), 422,
         "invalid_argument");
  expect(Post("/v1/jobs", researcher, {{"program", "build-on-trainium-2026"}, {"lab", "nope"}}),
         404, "not_found");
  EXPECT_EQ(DurableSeq(), before);
  EXPECT_EQ(Get("/v1/programs", admin_token_).body, programs_before);
}

// Governance over HTTP and through the CLI client (docs/governance.md): a sponsor's veto
// on the draft, sealed from everyone but the sponsor and the staff until the commit, then
// public with its text and the proposal it displaced; the vetoed applicant's appeal,
// upheld and funded from the reserve; every new route's bad input refused with its code
// and nothing journaled; the exported public log passes `atrium audit verify`, and a
// changed byte in the override's entry is caught at that entry.
TEST_F(ServiceTest, GovernanceThroughTheApiAndTheCliClient) {
  StartService();
  governance_ = R"([program.overrides]
max_per_call = 1
max_budget_percent = 100
reasons = ["eligibility", "export_control"]
[program.appeals]
window_days = 30
grounds = ["procedural_error", "factual_error"]
reviewers = 1
reserve = 50000
)";
  track_budget_ = 50000;  // one of the two 50000 proposals is funded
  SetUpProgram();
  const std::string sponsor = MakeToken("sponsor", "0000-0002-0260-0064");
  const std::string base = "/v1/programs/svc-test";
  const std::string overrides = base + "/calls/c1/decision/overrides";
  std::string vetoed;
  std::string displaced;
  DecideProgram([&] {
    const json draft = Cli({"decision", "show", "c1", "--program", "svc-test"}, officer_);
    for (const json& outcome : draft["outcomes"]) {
      (outcome["awarded"] == "0" ? displaced : vetoed) = outcome["proposal"].get<std::string>();
    }
    ASSERT_FALSE(vetoed.empty());
    ASSERT_FALSE(displaced.empty());
    // Refused, nothing journaled: roles, reasons, kinds, fields, texts.
    const uint64_t before = DurableSeq();
    const auto refused = [&](const Reply& reply, int status, const std::string& code,
                             const std::string& field) {
      EXPECT_EQ(reply.status, status) << reply.raw;
      EXPECT_EQ(reply.body["error"]["code"], code) << reply.raw;
      if (!field.empty()) {
        EXPECT_EQ(reply.body["error"]["field"], field) << reply.raw;
      }
    };
    const json veto = {
        {"proposal", vetoed}, {"kind", "veto"}, {"reason", "eligibility"}, {"text", "rule 4.2"}};
    refused(Post(overrides, officer_, veto), 403, "forbidden", "");
    refused(Post(overrides, pi1_, veto), 403, "forbidden", "");
    refused(Post(overrides, "", veto), 401, "unauthenticated", "");
    json bad = veto;
    bad["reason"] = "strategic";  // not published by this program
    refused(Post(overrides, sponsor, bad), 422, "override_not_allowed", "reason");
    bad = veto;
    bad["kind"] = "maybe";
    refused(Post(overrides, sponsor, bad), 422, "invalid_argument", "kind");
    bad = veto;
    bad["text"] = "";
    refused(Post(overrides, sponsor, bad), 422, "invalid_argument", "text");
    bad = veto;
    bad["surprise"] = 1;
    refused(Post(overrides, sponsor, bad), 422, "unknown_field", "");
    bad = veto;
    bad["proposal"] = displaced;  // declined: cannot be vetoed
    refused(Post(overrides, sponsor, bad), 409, "invalid_state", "proposal");
    refused(Post(base + "/calls/nope/decision/overrides", sponsor, veto), 404, "not_found", "");
    refused(Call("POST", overrides, sponsor, "{\"proposal\": "), 400, "parse_error", "");
    // Sealed until the commit: the public and researchers are refused, the sponsor sees it.
    refused(Get(overrides, ""), 403, "forbidden", "call");
    refused(Get(overrides, pi1_), 403, "forbidden", "call");
    EXPECT_EQ(DurableSeq(), before);

    const json made = Cli(
        {"decision", "override", "c1", "--program", "svc-test", "--proposal", vetoed, "--kind",
         "veto", "--reason", "eligibility", "--text", "Not eligible under rule 4.2 of the call"},
        sponsor);
    EXPECT_EQ(made["override"], "c1:override-1");
    // The draft and the override were both solved on request threads, none on the apply
    // thread, and refused overrides count nowhere.
    const std::string scraped = Get("/metrics", admin_token_).raw;
    EXPECT_NE(scraped.find("atrium_award_solves_total{thread=\"request\"} 2\n"), std::string::npos)
        << scraped;
    EXPECT_NE(scraped.find("atrium_award_solves_total{thread=\"apply\"} 0\n"), std::string::npos)
        << scraped;
    bad = veto;
    bad["proposal"] = displaced;  // funded now, by the re-solve
    refused(Post(overrides, sponsor, bad), 422, "override_limit", "call");  // one per call
    const json sealed = Cli({"decision", "overrides", "c1", "--program", "svc-test"}, sponsor);
    EXPECT_EQ(sealed["committed"], false);
    ASSERT_EQ(sealed["items"].size(), 1U);
    EXPECT_EQ(sealed["items"][0]["text"], "Not eligible under rule 4.2 of the call");
  });
  // Committed: public, with the proposal it displaced.
  const Reply listed = Get(overrides, "");
  ASSERT_EQ(listed.status, 200) << listed.raw;
  EXPECT_EQ(listed.body["committed"], true);
  ASSERT_EQ(listed.body["items"].size(), 1U);
  const json& made = listed.body["items"][0];
  EXPECT_EQ(made["id"], "c1:override-1");
  EXPECT_EQ(made["proposal"], vetoed);
  EXPECT_EQ(made["kind"], "veto");
  EXPECT_EQ(made["moved"], "50000");
  ASSERT_EQ(made["displaced"].size(), 1U);
  EXPECT_EQ(made["displaced"][0]["proposal"], displaced);
  EXPECT_EQ(made["displaced"][0]["before"], "0");
  EXPECT_EQ(made["displaced"][0]["after"], "50000");
  EXPECT_EQ(Get(base + "/calls/nope/decision/overrides", "").status, 404);

  // The vetoed applicant appeals; the officer upholds it from the reserve.
  const std::string& vetoed_pi = vetoed == "P1" ? pi1_ : pi2_;
  const std::string& other_pi = vetoed == "P1" ? pi2_ : pi1_;
  const std::string appeal = "A-" + vetoed;
  const uint64_t before_appeal = DurableSeq();
  EXPECT_EQ(
      Post(base + "/proposals/" + displaced + "/appeal", other_pi, {{"ground", "factual_error"}})
          .body["error"]["code"],
      "appeal_not_allowed");  // funded
  EXPECT_EQ(Post(base + "/proposals/" + vetoed + "/appeal", vetoed_pi, {{"ground", "whim"}})
                .body["error"]["code"],
            "appeal_not_allowed");
  EXPECT_EQ(Post(base + "/proposals/" + vetoed + "/appeal", other_pi, {{"ground", "factual_error"}})
                .status,
            404);  // not theirs to see
  EXPECT_EQ(DurableSeq(), before_appeal);
  const json filed = Cli({"appeal", "file", vetoed, "--program", "svc-test", "--ground",
                          "procedural_error", "--text", "The rule came after the deadline."},
                         vetoed_pi);
  EXPECT_EQ(filed["appeal"], appeal);
  const json staff_view = Cli({"appeal", "list", "c1", "--program", "svc-test"}, officer_);
  ASSERT_EQ(staff_view["items"].size(), 1U);
  EXPECT_EQ(staff_view["items"][0]["text"], "The rule came after the deadline.");
  ASSERT_EQ(staff_view["items"][0]["reviewers"].size(), 1U);
  const std::string appeal_reviewer = staff_view["items"][0]["reviewers"][0];
  const json reviews = Cli({"review", "list", "--proposal", vetoed}, officer_);
  for (const json& review : reviews["items"]) EXPECT_NE(review["reviewer"], appeal_reviewer);
  const Reply public_view = Get(base + "/calls/c1/appeals", "");
  ASSERT_EQ(public_view.status, 200) << public_view.raw;
  ASSERT_EQ(public_view.body["items"].size(), 1U);
  EXPECT_EQ(public_view.body["items"][0]["state"], "filed");
  EXPECT_FALSE(public_view.body["items"][0].contains("text"));
  EXPECT_FALSE(public_view.body["items"][0].contains("reviewers"));
  EXPECT_EQ(public_view.body["items"][0]["reviewers_assigned"], 1);
  EXPECT_EQ(Get(base + "/calls/c1/appeals?state=lost", "").body["error"]["field"], "state");
  EXPECT_EQ(Get(base + "/calls/c1/appeals?state=upheld", "").body["items"].size(), 0U);
  EXPECT_EQ(Get(base + "/appeals/A-nothing", "").status, 404);
  EXPECT_EQ(Post(base + "/appeals/" + appeal + "/decide", vetoed_pi,
                 {{"outcome", "upheld"}, {"reason", "mine"}})
                .status,
            403);
  EXPECT_EQ(Post(base + "/appeals/" + appeal + "/decide", sponsor,
                 {{"outcome", "upheld"}, {"reason", "mine"}})
                .status,
            403);
  const json decided = Cli({"appeal", "decide", appeal, "--program", "svc-test", "--outcome",
                            "upheld", "--reason", "The rule did not apply to this call."},
                           officer_);
  EXPECT_EQ(decided["grant"], "G-" + vetoed);
  const json shown = Cli({"appeal", "show", appeal, "--program", "svc-test"}, "");
  EXPECT_EQ(shown["state"], "upheld");
  EXPECT_EQ(shown["funded"], "50000");
  EXPECT_EQ(shown["reason"], "The rule did not apply to this call.");
  const Reply report = Get(base + "/report", "");
  EXPECT_EQ(report.body["governance"]["appeals"]["calls"][0]["upheld"], 1);
  EXPECT_EQ(report.body["governance"]["overrides"]["calls"][0]["items"][0]["text"],
            "Not eligible under rule 4.2 of the call");

  // The exported public log verifies with `atrium audit verify`; a changed byte in the
  // override's entry is caught at that entry.
  const Reply log = Get(base + "/log?limit=1000", "");
  ASSERT_EQ(log.status, 200);
  std::string exported;
  int64_t override_seq = 0;
  for (const json& entry : log.body["items"]) {
    exported += entry.dump() + "\n";
    if (entry["type"] == "override_committed") override_seq = entry["seq"];
  }
  ASSERT_GT(override_seq, 0);
  const std::string file = (dir_ / "log.jsonl").string();
  WriteAll(file, exported);
  const testing::ProcessResult verified = testing::Run({ATRIUM_BINARY, "audit", "verify", file});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  std::string tampered = exported;
  const size_t at = tampered.find("Not eligible under rule 4.2");
  ASSERT_NE(at, std::string::npos);
  tampered[at] = 'n';
  WriteAll(file, tampered);
  const testing::ProcessResult caught = testing::Run({ATRIUM_BINARY, "audit", "verify", file});
  EXPECT_EQ(caught.exit_code, 1);
  EXPECT_NE(caught.err.find("entry " + std::to_string(override_seq) + " is broken"),
            std::string::npos)
      << caught.err;
  const testing::ProcessResult ledger =
      testing::Run({ATRIUM_BINARY, "ledger", "verify", "--db",
                    db_.empty() ? (dir_ / "data" / "atrium.db").string() : db_});
  EXPECT_EQ(ledger.exit_code, 0) << ledger.out << ledger.err;
}

TEST_F(ServiceTest, IdempotentRetriesReturnTheFirstAnswerAcrossRestarts) {
  StartService();
  const httplib::Headers key = {{"Idempotency-Key", "create-researcher-token-1"}};
  const Reply first =
      Post("/v1/tokens", admin_token_, {{"role", "researcher"}, {"person", kPi1}}, key);
  ASSERT_EQ(first.status, 201) << first.raw;
  const uint64_t after_first = DurableSeq();
  const Reply again =
      Post("/v1/tokens", admin_token_, {{"role", "researcher"}, {"person", kPi1}}, key);
  EXPECT_EQ(again.status, 201);
  EXPECT_EQ(again.body["token_id"], first.body["token_id"]);
  EXPECT_FALSE(again.body.contains("token"));  // the secret is shown once only
  EXPECT_EQ(DurableSeq(), after_first);
  const Reply other =
      Post("/v1/tokens", admin_token_, {{"role", "student"}, {"person", kPi1}}, key);
  EXPECT_EQ(other.status, 409) << other.raw;
  EXPECT_EQ(other.body["error"]["code"], "idempotency_key_reused");

  ASSERT_EQ(service_->Stop(SIGTERM), 0) << service_->output();
  StartService();
  const Reply after_restart =
      Post("/v1/tokens", admin_token_, {{"role", "researcher"}, {"person", kPi1}}, key);
  EXPECT_EQ(after_restart.status, 201);
  EXPECT_EQ(after_restart.body["token_id"], first.body["token_id"]);
  EXPECT_EQ(DurableSeq(), after_first);
  // The token made on the first try still works after the restart.
  EXPECT_EQ(Get("/v1/me", first.body["token"]).body["person"], kPi1);
}

// SIGKILL in the middle of a stream of writes, 12 times on one store. Writers create
// tokens and submit, finish and cancel jobs charged to grants; every write that got a 2xx
// must be there after the restart, and the journal and every ledger must verify.
TEST_F(ServiceTest, SigkillDuringWritesLosesNothingAcknowledged) {
  StartService();
  SetUpProgram();
  DecideProgram();
  const std::string operator_token = MakeToken("operator", "");

  std::set<std::string> acked_tokens;
  std::set<std::string> acked_jobs;
  std::mt19937 rng(20261130);
  constexpr int kKills = 12;
  for (int round = 0; round < kKills; ++round) {
    std::atomic<bool> stop = false;
    std::mutex mutex;
    std::condition_variable acked;
    size_t acked_this_round = 0;
    std::vector<std::thread> writers;
    const std::string url = service_->url();
    for (int writer = 0; writer < 4; ++writer) {
      writers.emplace_back([&, writer] {
        httplib::Client client(url);
        client.set_read_timeout(10);
        const httplib::Headers admin = {{"Authorization", "Bearer " + admin_token_}};
        const httplib::Headers pi = {{"Authorization", "Bearer " + pi1_}};
        const httplib::Headers ops = {{"Authorization", "Bearer " + operator_token}};
        std::string last_job;
        for (int i = 0; !stop.load(); ++i) {
          if (writer % 2 == 0) {
            auto result = client.Post("/v1/tokens", admin,
                                      json{{"role", "student"}, {"person", kStudent}}.dump(),
                                      "application/json");
            if (result && result->status == 201) {
              std::lock_guard lock(mutex);
              acked_tokens.insert(json::parse(result->body)["token_id"].get<std::string>());
              ++acked_this_round;
              acked.notify_all();
            }
          } else if (!last_job.empty() && i % 2 == 1) {
            auto result = client.Post("/v1/jobs/" + last_job + (i % 4 == 1 ? "/finish" : "/cancel"),
                                      i % 4 == 1 ? ops : pi, "{}", "application/json");
            last_job.clear();
            (void)result;
          } else {
            auto result =
                client.Post("/v1/jobs", pi,
                            json{{"program", "svc-test"},
                                 {"grant", "G-P1"},
                                 {"chips", 1},
                                 {"walltime_s", 600},
                                 {"argv", {"run", std::to_string(round), std::to_string(i)}}}
                                .dump(),
                            "application/json");
            if (result && result->status == 201) {
              last_job = json::parse(result->body)["job"].get<std::string>();
              std::lock_guard lock(mutex);
              acked_jobs.insert(last_job);
              ++acked_this_round;
              acked.notify_all();
            }
          }
        }
      });
    }
    // The kill lands after a random number of acknowledged writes (not after a sleep): a
    // busy machine changes how long that takes, not how much is at stake.
    {
      const size_t kill_after = 10 + rng() % 60;
      std::unique_lock lock(mutex);
      acked.wait_for(lock, std::chrono::seconds(30),
                     [&] { return acked_this_round >= kill_after; });
    }
    EXPECT_EQ(service_->Stop(SIGKILL), -SIGKILL);
    stop = true;
    for (std::thread& thread : writers) thread.join();
    StartService();
    const Reply tokens = Get("/v1/tokens?limit=1000", admin_token_);
    std::set<std::string> present;
    for (Reply page = tokens;;) {
      for (const json& token : page.body["items"]) present.insert(token["id"].get<std::string>());
      if (page.body["next"].is_null()) break;
      page =
          Get("/v1/tokens?limit=1000&after=" + page.body["next"].get<std::string>(), admin_token_);
    }
    for (const std::string& id : acked_tokens) {
      EXPECT_TRUE(present.contains(id))
          << "acknowledged token " << id << " lost in round " << round;
    }
    for (const std::string& id : acked_jobs) {
      EXPECT_EQ(Get("/v1/jobs/" + id, pi1_).status, 200) << "acknowledged job " << id << " lost";
    }
  }
  EXPECT_GT(acked_tokens.size(), 20u);
  EXPECT_GT(acked_jobs.size(), 20u);
  // The grant's books balance: what its jobs were charged is what it spent.
  const Reply grant = Get("/v1/programs/svc-test/grants/G-P1", pi1_);
  EXPECT_EQ(grant.status, 200);
  ASSERT_EQ(service_->Stop(SIGKILL), -SIGKILL);
  const testing::ProcessResult verify =
      testing::Run({ATRIUM_BINARY, "ledger", "verify", "--db",
                    db_.empty() ? (dir_ / "data" / "atrium.db").string() : db_});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// The test clock is refused unless asked for twice, answers admins only, and checks what
// it is given; without it there is no /testing/clock at all.
TEST_F(ServiceTest, TheTestClockIsGuarded) {
  ServiceProcess refused;
  std::vector<std::string> args = {"--data", (dir_ / "refused").string(), "--no-examples",
                                   "--clock", "manual"};
  EXPECT_FALSE(refused.Start(ATRIUM_BINARY, args));
  EXPECT_NE(refused.output().find("needs --allow-test-clock"), std::string::npos)
      << refused.output();
  StartService();
  const auto before = ServiceNow();
  const std::string researcher = MakeToken("researcher", kPi1);
  EXPECT_EQ(Get("/testing/clock", "").status, 401);
  EXPECT_EQ(Get("/testing/clock", researcher).status, 403);
  EXPECT_EQ(Post("/testing/clock", researcher, {{"advance_s", 1}}).status, 403);
  for (const json& bad : {json{{"advance_s", -1}}, json{{"advance_s", "1"}}, json::object(),
                          json{{"advance_s", 1}, {"advance_us", 1}}, json{{"rewind_s", 1}},
                          json{{"advance_s", int64_t{1} << 40}}}) {
    const Reply reply = Post("/testing/clock", admin_token_, bad);
    EXPECT_EQ(reply.status, 422) << bad << ": " << reply.raw;
    EXPECT_EQ(reply.body["error"]["code"], "invalid_argument") << reply.raw;
  }
  EXPECT_EQ(ServiceNow(), before);  // stands still until moved, and nothing above moved it
  Advance(std::chrono::hours(24));
  EXPECT_EQ(ServiceNow(), before + std::chrono::hours(24));
  // Across a restart the clock starts no earlier than the journal's last command.
  const std::string later = MakeToken("researcher", kPi2);
  ASSERT_EQ(service_->Stop(SIGTERM), 0);
  StartService();
  EXPECT_GE(ServiceNow(), before + std::chrono::hours(24));
  ASSERT_EQ(service_->Stop(SIGTERM), 0);
  // With the system clock the route does not exist.
  std::vector<std::string> system_args = ServeArgs();
  system_args.resize(system_args.size() - 3);  // without --clock manual --allow-test-clock
  service_ = std::make_unique<ServiceProcess>();
  ASSERT_TRUE(service_->Start(ATRIUM_BINARY, system_args)) << service_->output();
  EXPECT_EQ(Get("/testing/clock", admin_token_).status, 404);
  EXPECT_EQ(Post("/testing/clock", admin_token_, {{"advance_s", 1}}).status, 404);
}

TEST_F(ServiceTest, SecondInstanceIsRefusedAndSigtermStopsCleanly) {
  StartService();
  ServiceProcess second;
  EXPECT_FALSE(second.Start(ATRIUM_BINARY, ServeArgs()));
  EXPECT_NE(second.output().find("another atrium serve is using this"), std::string::npos)
      << second.output();
  EXPECT_EQ(Get("/healthz", "").status, 200);
  EXPECT_EQ(service_->Stop(SIGTERM), 0);
  EXPECT_NE(service_->output().find("atrium serve: stopped"), std::string::npos)
      << service_->output();
  // Once the first has stopped, the store opens again.
  StartService();
  EXPECT_EQ(Get("/readyz", "").status, 200);
}

}  // namespace
}  // namespace atrium
