// The Slurm executor end to end: real Slurm 22.05 daemons (munged, slurmctld and 16
// logical slurmd, started by scripts/slurm-fixture.sh in a temporary directory and
// stopped by it), a real `atrium serve` whose pool has `executor = "slurm"`, a funded
// grant. Jobs that succeed, fail, reach their walltime, are cancelled, span two nodes,
// cannot be executed; a Slurm node killed mid-run (its slurmd killed and the node set
// down) ending its run as node_failed and draining the Atrium node; the service killed
// (SIGKILL) while runs go on, restarted: live runs re-adopted, ended ones settled once
// with their real ends, the store verifying. Then (SlurmRestartTest) slurmctld stopped and
// restarted mid-run, and a run Slurm purged while the service was down, settled from the
// jobcomp record. Fails (never skips) when Slurm cannot start.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/core.h"
#include "journal/journal.h"
#include "journal/open.h"
#include "process.h"
#include "service_process.h"

namespace atrium {
namespace {

constexpr int kSlurmNodes = 16;
constexpr const char* kFixture = ATRIUM_SOURCE_DIR "/scripts/slurm-fixture.sh";

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::system_clock;
namespace fs = std::filesystem;

constexpr const char* kPi = "0000-0002-0260-0005";
constexpr const char* kReviewerA = "0000-0002-0260-0021";
constexpr const char* kReviewerB = "0000-0002-0260-003X";

// One pool of 16 nodes x 8 GPUs that Slurm runs: gpu-n0000.. are Slurm's sn1..sn16.
std::string ClusterToml(const std::string& jobcomp = "") {
  std::string nodes;
  for (int i = 1; i <= 16; ++i) nodes += (i > 1 ? ", \"sn" : "\"sn") + std::to_string(i) + "\"";
  return R"(name = "slurm-test"
default_accelerator = "h100"
[accelerators.h100]
vendor = "NVIDIA"
cores_per_chip = 132
price_per_chip_hour = "4.10"
[node_types.g8]
accelerator = "h100"
chips = 8
allocation_sizes = [1, 2, 4, 8]
[[pools]]
name = "gpu"
node_type = "g8"
nodes = 16
nodes_per_group = 4
executor = "slurm"
kill_grace_s = 1
slurm_partition = "atrium"
slurm_gres = "gpu"
slurm_command_timeout_s = 20
)" + (jobcomp.empty() ? std::string() : "slurm_jobcomp = \"" + jobcomp + "\"\n") +
         R"(slurm_nodes = [)" + nodes + R"(]
[partitions.research]
classes = ["research", "preemptible"]
walltime_max_s = 86400
)";
}

std::string IsoUtc(Clock::time_point at) {
  const std::time_t t = Clock::to_time_t(at);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string ProgramToml(Clock::time_point now, seconds closes_in) {
  std::ostringstream out;
  out << R"([program]
id = "exec"
name = "Executor test program"
currency = "USD"
total_budget = 1000000
award_policy = "greedy"
topics = ["compilers"]
[program.prices]
h100 = "4.10"
[[program.rubric]]
name = "merit"
weight = 1
min = 1
max = 5
[program.obligations]
progress_report_months = []
final_report = false
paper = false
repository = false
final_grace_months = 3
freeze_when_overdue = false
[[track]]
id = "research"
name = "Research"
kind = "research"
budget = 1000000
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

struct Reply {
  int status = 0;
  json body;
  std::string raw;
};

class SlurmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ =
        fs::path(::testing::TempDir()) / ("atrium-slurm-" + std::to_string(getpid()) + "-" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // The daemons need to traverse to the jobs' directories and scripts.
    fs::permissions(dir_, fs::perms::all, fs::perm_options::add);
    StartSlurm();
  }
  void TearDown() override {
    // Whatever a failed test left running ends with it.
    for (const std::string& job : jobs_)
      Post("/v1/jobs/" + job + "/cancel", admin_, json::object());
    service_.reset();
    const testing::ProcessResult stopped = testing::Run({kFixture, "stop", slurm_dir()});
    EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
    fs::remove_all(dir_);
    fs::remove_all(slurm_dir());
  }

  // Short: munged's socket path must fit a sockaddr_un (108 bytes).
  std::string slurm_dir() const { return "/tmp/atrium-slurm-" + std::to_string(getpid()); }

  // The fixture's cluster: 16 logical nodes, on ports of this process's own.
  void StartSlurm() {
    // Below the kernel's ephemeral ports (32768 and up), which a client socket may hold.
    const std::string port = std::to_string(20000 + (getpid() % 90) * 130);
    const testing::ProcessResult started =
        testing::Run({kFixture, "start", slurm_dir(), std::to_string(kSlurmNodes), port});
    ASSERT_EQ(started.exit_code, 0) << "Slurm did not start (run scripts/install-deps.sh as "
                                       "root):\n"
                                    << started.out << started.err;
    setenv("SLURM_CONF", (slurm_dir() + "/etc/slurm.conf").c_str(), 1);
  }

  // Slurm's view of our jobs, by job name (the newest of a name).
  std::map<std::string, json> SlurmJobs() {
    const testing::ProcessResult listed = testing::Run({"/usr/bin/squeue", "--json"});
    EXPECT_EQ(listed.exit_code, 0) << listed.err;
    std::map<std::string, json> jobs;
    const json doc = json::parse(listed.out, nullptr, false);
    if (doc.is_discarded()) return jobs;
    for (const json& job : doc["jobs"]) {
      const std::string name = job.value("name", "");
      if (!jobs.contains(name) || jobs[name]["job_id"] < job["job_id"]) jobs[name] = job;
    }
    return jobs;
  }
  json SlurmJob(const std::string& id, int run = 1) {
    return SlurmJobs()["atrium-" + id + "-" + std::to_string(run)];
  }

  void StartService() {
    service_ = std::make_unique<testing::ServiceProcess>();
    ASSERT_TRUE(service_->Start(
        ATRIUM_BINARY, {"--data", (dir_ / "data").string(), "--no-examples", "--threads", "8"}))
        << service_->output();
    if (!service_->token_file().empty()) admin_ = testing::ReadFirstLine(service_->token_file());
    ASSERT_FALSE(admin_.empty()) << service_->output();
  }

  Reply Call(const std::string& method, const std::string& path, const std::string& token,
             const std::string& body = "") {
    httplib::Client client(service_->url());
    client.set_read_timeout(30);
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    httplib::Result result = method == "GET" ? client.Get(path, headers)
                                             : client.Post(path, headers, body, "application/json");
    Reply reply;
    if (!result) return reply;
    reply.status = result->status;
    reply.raw = result->body;
    reply.body = json::parse(result->body, nullptr, false);
    return reply;
  }
  Reply Post(const std::string& path, const std::string& token, const json& body) {
    return Call("POST", path, token, body.dump());
  }
  Reply Get(const std::string& path, const std::string& token) { return Call("GET", path, token); }
  void Ok(const Reply& reply) {
    ASSERT_TRUE(reply.status == 200 || reply.status == 201) << reply.raw;
  }

  std::string MakeToken(const std::string& role, const std::string& person) {
    json body = {{"role", role}};
    if (!person.empty()) body["person"] = person;
    const Reply reply = Post("/v1/tokens", admin_, body);
    EXPECT_EQ(reply.status, 201) << reply.raw;
    return reply.body.value("token", std::string());
  }

  // The cluster, a program whose call closes in 2 s, one proposal, two reviews, the
  // decision: grant G-P1 of 50,000 credits, PI kPi.
  void FundGrant(const std::string& cluster_toml = ClusterToml()) {
    Ok(Post("/v1/cluster", admin_, {{"toml", cluster_toml}}));
    const std::string officer = MakeToken("officer", "");
    Ok(Post("/v1/programs", officer, {{"toml", ProgramToml(Clock::now(), seconds(2))}}));
    const auto close_at = Clock::now() + seconds(3);
    const std::vector<std::pair<std::string, std::string>> institutions = {
        {"north", "US"}, {"lake", "US"}, {"casc", "CA"}};
    for (const auto& [id, country] : institutions) {
      Ok(Post("/v1/programs/exec/institutions", officer,
              {{"id", id}, {"name", id}, {"type", "r1"}, {"country", country}}));
    }
    const std::vector<std::tuple<std::string, std::string, bool>> people = {
        {kPi, "north", false}, {kReviewerA, "lake", true}, {kReviewerB, "casc", true}};
    for (const auto& [id, inst, reviewer] : people) {
      Ok(Post("/v1/programs/exec/people", officer,
              {{"id", id},
               {"name", "Person " + id},
               {"institution", inst},
               {"role", "faculty"},
               {"expertise", {"compilers"}},
               {"reviewer", reviewer}}));
    }
    Ok(Post("/v1/programs/exec/calls/c1/open", officer, json::object()));
    pi_ = MakeToken("researcher", kPi);
    Ok(Post("/v1/programs/exec/proposals", pi_,
            {{"id", "P1"},
             {"call", "c1"},
             {"title", "Proposal P1"},
             {"abstract", "Compilers."},
             {"topics", {"compilers"}},
             {"requested", "50000"},
             {"duration_months", 12},
             {"open_source_plan", "Apache-2.0"}}));
    std::this_thread::sleep_until(close_at);
    Ok(Post("/v1/programs/exec/calls/c1/close", officer, json::object()));
    Ok(Post("/v1/programs/exec/calls/c1/assign", officer, json::object()));
    for (const char* reviewer : {kReviewerA, kReviewerB}) {
      const std::string token = MakeToken("reviewer", reviewer);
      Ok(Post("/v1/programs/exec/reviews", token,
              {{"proposal", "P1"}, {"scores", {4}}, {"comment", "solid"}}));
    }
    Ok(Post("/v1/programs/exec/calls/c1/decision/draft", officer, json::object()));
    Ok(Post("/v1/programs/exec/calls/c1/decision/commit", officer, json::object()));
    const Reply grant = Get("/v1/programs/exec/grants/G-P1", pi_);
    ASSERT_EQ(grant.status, 200) << grant.raw;
  }

  std::string Submit(const std::vector<std::string>& argv, int64_t walltime_s, int64_t chips = 1,
                     const std::string& accelerator = "") {
    json body = {{"program", "exec"},
                 {"grant", "G-P1"},
                 {"chips", chips},
                 {"walltime_s", walltime_s},
                 {"argv", argv}};
    if (!accelerator.empty()) body["accelerator"] = accelerator;
    const Reply reply = Post("/v1/jobs", pi_, body);
    EXPECT_EQ(reply.status, 201) << reply.raw;
    const std::string id = reply.body.value("job", std::string());
    jobs_.push_back(id);
    return id;
  }

  json Job(const std::string& id) { return Get("/v1/jobs/" + id, pi_).body; }

  // Waits until `done` holds for the job (at most `limit`); returns the job.
  json WaitFor(const std::string& id, const std::function<bool(const json&)>& done,
               seconds limit = seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    json job;
    while (std::chrono::steady_clock::now() < deadline) {
      job = Job(id);
      if (done(job)) return job;
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << "job " << id << " never got there: " << job.dump();
    return job;
  }
  static bool Ended(const json& job) {
    const std::string state = job.value("state", "");
    return !state.empty() && state != "pending" && state != "running";
  }
  static bool Launched(const json& job) {
    return job.value("state", "") == "running" && job["run"]["started_us"].get<int64_t>() > 0;
  }

  std::string Logs(const std::string& id, const std::string& stream, int64_t offset = 0,
                   int64_t length = 1 << 20) {
    const Reply reply =
        Get("/v1/jobs/" + id + "/logs?stream=" + stream + "&offset=" + std::to_string(offset) +
                "&length=" + std::to_string(length),
            pi_);
    EXPECT_EQ(reply.status, 200) << reply.raw;
    return reply.body.value("data", std::string());
  }

  std::string JobFile(const std::string& id, const std::string& name) {
    std::ifstream in(dir_ / "data" / "jobs" / id / name);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // The recovered store verifies (ledger, holds of running jobs, charges = postings).
  void VerifyStore() {
    auto store = journal::OpenJournalStore((dir_ / "data" / "atrium.db").string(),
                                           journal::OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    auto durable = journal::DurableCore::Open(std::move(*store), {});
    ASSERT_TRUE(durable.ok()) << durable.error().ToString();
    const Status verified = (*durable)->core().Verify();
    EXPECT_TRUE(verified.ok()) << verified.error().ToString();
  }

  fs::path dir_;
  std::unique_ptr<testing::ServiceProcess> service_;
  std::string admin_;
  std::string pi_;
  std::vector<std::string> jobs_;
};

bool ProcessGone(pid_t pid, seconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (kill(pid, 0) != 0) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

int64_t MicrosOf(const std::string& credits) {
  const size_t dot = credits.find('.');
  return std::stoll(dot == std::string::npos
                        ? credits + "000000"
                        : credits.substr(0, dot) +
                              (credits.substr(dot + 1) + "000000").substr(0, 6));
}

TEST_F(SlurmTest, RunsThroughSlurmAndSurvivesNodeAndServiceFailures) {
  const auto began = std::chrono::steady_clock::now();
  StartService();
  FundGrant();
  const std::string ok =
      Submit({"sh", "-c",
              "echo \"J=$ATRIUM_JOB_ID G=$ATRIUM_GRANT C=$ATRIUM_CHIPS H=$ATRIUM_NODES "
              "D=$CUDA_VISIBLE_DEVICES S=$SLURM_JOB_NODELIST\"; echo oops >&2; touch marker"},
             60, 2);
  const std::string failed = Submit({"sh", "-c", "echo before; exit 3"}, 60);
  const std::string walltime = Submit({"sleep", "30"}, 2);
  const std::string stubborn = Submit({"sh", "-c", "trap '' TERM; sleep 30"}, 2);
  const std::string cancelled = Submit({"sh", "-c", "echo $$ > pid; exec sleep 60"}, 600);
  const std::string wide =
      Submit({"sh", "-c", "echo S=$SLURM_JOB_NODELIST N=$ATRIUM_NODES"}, 60, 16);
  const std::string missing = Submit({"no-such-program-here"}, 60);
  const std::string victim = Submit({"sleep", "60"}, 600, 8);

  json job = WaitFor(ok, Ended);
  EXPECT_EQ(job["state"], "completed") << job;
  EXPECT_EQ(job["run"]["exit_code"], 0);
  const std::string out = Logs(ok, "stdout");
  EXPECT_NE(out.find("J=" + ok + " "), std::string::npos) << out;
  EXPECT_NE(out.find("G=exec/G-P1 C=2 "), std::string::npos) << out;
  // The Atrium node and the Slurm node it maps to (gpu-n000K is snK+1).
  const std::string host = job["nodes"][0];
  const int index = std::stoi(host.substr(host.size() - 4));
  EXPECT_NE(out.find("H=" + host + " "), std::string::npos) << out;
  EXPECT_NE(out.find("S=sn" + std::to_string(index + 1) + "\n"), std::string::npos) << out;
  // Slurm's GRES plugin sets the devices it bound on the node: two of them.
  const size_t devices = out.find(" D=");
  ASSERT_NE(devices, std::string::npos) << out;
  const std::string visible = out.substr(devices + 3, out.find(' ', devices + 3) - devices - 3);
  EXPECT_EQ(std::count(visible.begin(), visible.end(), ','), 1) << out;
  EXPECT_EQ(Logs(ok, "stderr"), "oops\n");
  EXPECT_TRUE(fs::exists(dir_ / "data" / "jobs" / ok / "marker"));
  EXPECT_LE(job["ran_s"].get<int64_t>(), 2) << job;

  job = WaitFor(failed, Ended);
  EXPECT_EQ(job["state"], "failed") << job;
  EXPECT_EQ(job["run"]["exit_code"], 3);
  EXPECT_EQ(Logs(failed, "stdout"), "before\n");

  job = WaitFor(missing, Ended);
  EXPECT_EQ(job["state"], "failed") << job;
  EXPECT_EQ(job["run"]["exit_code"], 127);

  job = WaitFor(wide, Ended);
  EXPECT_EQ(job["state"], "completed") << job;
  ASSERT_EQ(job["nodes"].size(), 2u) << job;
  const std::string wide_out = Logs(wide, "stdout");
  EXPECT_NE(wide_out.find("N=" + job["nodes"][0].get<std::string>() + "," +
                          job["nodes"][1].get<std::string>()),
            std::string::npos)
      << wide_out;
  EXPECT_EQ(wide_out.find("S=sn"), 0u) << wide_out;

  // SIGTERM at the limit (Atrium's, to the second: Slurm's own counts minutes).
  job = WaitFor(walltime, Ended);
  EXPECT_EQ(job["state"], "killed_at_walltime") << job;
  EXPECT_EQ(job["run"]["signal"], SIGTERM) << job;
  EXPECT_GE(job["ran_s"].get<int64_t>(), 2) << job;
  EXPECT_LE(job["ran_s"].get<int64_t>(), 4) << job;
  // Ignoring SIGTERM: SIGKILL after the pool's 1 s grace.
  job = WaitFor(stubborn, Ended);
  EXPECT_EQ(job["state"], "killed_at_walltime") << job;
  EXPECT_EQ(job["run"]["signal"], SIGKILL) << job;

  // Cancelled while running: scancel, and its process is gone.
  WaitFor(cancelled, Launched);
  pid_t pid = 0;
  const auto pid_deadline = std::chrono::steady_clock::now() + seconds(10);
  while (pid == 0 && std::chrono::steady_clock::now() < pid_deadline) {
    std::istringstream(JobFile(cancelled, "pid")) >> pid;
    if (pid == 0) std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_GT(pid, 0);
  EXPECT_EQ(kill(pid, 0), 0);
  ASSERT_EQ(Post("/v1/jobs/" + cancelled + "/cancel", pi_, json::object()).status, 200);
  EXPECT_TRUE(ProcessGone(pid, seconds(10)));
  EXPECT_EQ(Job(cancelled)["state"], "cancelled");
  const auto slurm_ended = std::chrono::steady_clock::now() + seconds(10);
  while (SlurmJob(cancelled).value("job_state", "") == "RUNNING" &&
         std::chrono::steady_clock::now() < slurm_ended) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_NE(SlurmJob(cancelled).value("job_state", ""), "RUNNING");

  // A Slurm node dies mid-run: its slurmd is killed and the controller is told (as its
  // health check would after SlurmdTimeout). The run ends node_failed, the node drains.
  job = WaitFor(victim, Launched);
  const std::string victim_node = job["nodes"][0];
  const int victim_index = std::stoi(victim_node.substr(victim_node.size() - 4));
  {
    std::ifstream pids(slurm_dir() + "/pids/slurmd");
    pid_t slurmd = 0;
    for (int line = 0; line <= victim_index; ++line) pids >> slurmd;
    ASSERT_GT(slurmd, 0);
    ASSERT_EQ(kill(slurmd, SIGKILL), 0);
  }
  const testing::ProcessResult down =
      testing::Run({"/usr/bin/scontrol", "update", "nodename=sn" + std::to_string(victim_index + 1),
                    "state=down", "reason=atrium-test"});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  job = WaitFor(victim, Ended);
  EXPECT_EQ(job["state"], "node_failed") << job;
  const auto drained_by = std::chrono::steady_clock::now() + seconds(10);
  std::string node_state;
  while (std::chrono::steady_clock::now() < drained_by) {
    const Reply nodes = Get("/v1/cluster/nodes?limit=100", pi_);
    for (const json& node : nodes.body["items"]) {
      if (node["name"] == victim_node) node_state = node["state"];
    }
    if (node_state == "draining") break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(node_state, "draining");

  // The service killed while runs go on: one ends while it is down, one outlives it.
  const std::string quick = Submit({"sh", "-c", "sleep 1; echo done"}, 60);
  const std::string survivor = Submit({"sh", "-c", "sleep 7; echo survived"}, 60);
  for (const std::string& id : {quick, survivor}) WaitFor(id, Launched);
  ASSERT_EQ(service_->Stop(SIGKILL), -SIGKILL);
  std::this_thread::sleep_for(seconds(3));
  const int64_t restarted_at_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
          .count();
  StartService();
  job = WaitFor(quick, Ended);
  EXPECT_EQ(job["state"], "completed") << job;
  EXPECT_LT(job["run"]["ended_us"].get<int64_t>(), restarted_at_us) << job;
  EXPECT_EQ(Logs(quick, "stdout"), "done\n");
  EXPECT_EQ(Job(survivor)["state"], "running");
  job = WaitFor(survivor, Ended);
  EXPECT_EQ(job["state"], "completed") << job;
  EXPECT_GT(job["run"]["ended_us"].get<int64_t>(), restarted_at_us) << job;
  EXPECT_EQ(Logs(survivor, "stdout"), "survived\n");
  // Submitted once each: Slurm knows exactly one job per run.
  std::map<std::string, int> per_name;
  const testing::ProcessResult listed = testing::Run({"/usr/bin/squeue", "--json"});
  const json listing = json::parse(listed.out);
  for (const json& item : listing["jobs"]) ++per_name[item.value("name", "")];
  for (const std::string& id : jobs_) EXPECT_EQ(per_name["atrium-" + id + "-1"], 1) << id;

  // Restarted again with nothing running: nothing is settled twice; the grant paid
  // exactly what its jobs were charged.
  std::map<std::string, json> before;
  for (const std::string& id : jobs_) before[id] = Job(id);
  ASSERT_EQ(service_->Stop(SIGKILL), -SIGKILL);
  StartService();
  std::this_thread::sleep_for(milliseconds(500));
  int64_t charged_micro = 0;
  for (const std::string& id : jobs_) {
    const json after = Job(id);
    EXPECT_EQ(after["charged"], before[id]["charged"]) << id;
    EXPECT_EQ(after["run"], before[id]["run"]) << id;
    EXPECT_EQ(after["state"], before[id]["state"]) << id;
    charged_micro += MicrosOf(after["charged"]);
  }
  const Reply balance = Get("/v1/programs/exec/grants/G-P1/balance", pi_);
  ASSERT_EQ(balance.status, 200) << balance.raw;
  EXPECT_EQ(MicrosOf(balance.body["spent"]), charged_micro) << balance.raw;
  jobs_.clear();
  service_->Stop(SIGTERM);
  VerifyStore();
  std::cout
      << "slurm cycle: "
      << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - began).count()
      << " ms\n";
}

// The fixture with MinJobAge=2: Slurm forgets an ended job within seconds (its purge runs
// every few seconds), so only the jobcomp record says how it ended.
class SlurmRestartTest : public SlurmTest {
 protected:
  void SetUp() override {
    setenv("MIN_JOB_AGE", "2", 1);
    SlurmTest::SetUp();
    unsetenv("MIN_JOB_AGE");
  }
  std::string jobcomp() const { return slurm_dir() + "/log/jobcomp.log"; }
  // How many jobcomp lines name the run: how many Slurm jobs it became.
  int JobcompLines(const std::string& id) {
    std::ifstream in(jobcomp());
    int count = 0;
    const std::string name = " Name=atrium-" + id + "-1 ";
    for (std::string line; std::getline(in, line);) count += line.find(name) != std::string::npos;
    return count;
  }
  bool SlurmLists(const std::string& id) { return SlurmJobs().contains("atrium-" + id + "-1"); }
};

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
      .count();
}

TEST_F(SlurmRestartTest, SlurmctldRestartsAndPurgedRunsReconcile) {
  const auto began = std::chrono::steady_clock::now();
  StartService();
  FundGrant(ClusterToml(jobcomp()));

  // slurmctld stops (SIGTERM: it saves its state) while two runs go on: one ends while it
  // is down, one outlives the outage.
  const std::string through = Submit({"sh", "-c", "sleep 20; echo through"}, 60);
  const std::string during = Submit({"sh", "-c", "sleep 2; exit 4"}, 60);
  for (const std::string& id : {through, during}) WaitFor(id, Launched);
  const int64_t through_started_us = Job(through)["run"]["started_us"];
  testing::ProcessResult ctl = testing::Run({kFixture, "stop-ctld", slurm_dir()});
  ASSERT_EQ(ctl.exit_code, 0) << ctl.err;
  // Atrium keeps serving: a submission is taken (and waits: nothing is submitted blind),
  // reads answer at once, and no run is marked lost while Slurm cannot say.
  const std::string queued = Submit({"sh", "-c", "echo queued"}, 60);
  const auto down_until = std::chrono::steady_clock::now() + seconds(6);
  while (std::chrono::steady_clock::now() < down_until) {
    const auto asked = std::chrono::steady_clock::now();
    for (const std::string& id : {through, during, queued}) {
      const json job = Job(id);
      EXPECT_EQ(job.value("state", ""), "running") << job;
    }
    EXPECT_LT(std::chrono::steady_clock::now() - asked, seconds(3));
    std::this_thread::sleep_for(milliseconds(500));
  }
  EXPECT_LT(Job(queued)["run"]["started_us"].get<int64_t>(), 0) << Job(queued);  // not launched
  ctl = testing::Run({kFixture, "start-ctld", slurm_dir()});
  ASSERT_EQ(ctl.exit_code, 0) << ctl.err;
  const int64_t ctld_back_us = NowUs();

  // The outage (stopping, 6 s down, starting) must end before `through` does, or its end
  // is the one slurmctld learns late.
  ASSERT_LT(ctld_back_us, through_started_us + 18'000'000)
      << "slurmctld took too long to stop and start again on this machine";
  json job = WaitFor(through, Ended, seconds(60));
  EXPECT_EQ(job["state"], "completed") << job;
  EXPECT_EQ(job["run"]["started_us"], through_started_us) << job;
  // Its real end: after the restart, 20 s (Slurm's 1 s resolution) after its start.
  EXPECT_GE(job["run"]["ended_us"].get<int64_t>(), ctld_back_us - 1'000'000) << job;
  EXPECT_GE(job["ran_s"].get<int64_t>(), 19) << job;
  EXPECT_LE(job["ran_s"].get<int64_t>(), 22) << job;
  EXPECT_EQ(Logs(through, "stdout"), "through\n");
  // Ended while slurmctld was down: its exit as Slurm recorded it once it heard (the end
  // time is when slurmctld learnt of it, so at least the 2 s it ran).
  job = WaitFor(during, Ended, seconds(60));
  EXPECT_EQ(job["state"], "failed") << job;
  EXPECT_EQ(job["run"]["exit_code"], 4) << job;
  EXPECT_GE(job["ran_s"].get<int64_t>(), 2) << job;
  job = WaitFor(queued, Ended, seconds(60));
  EXPECT_EQ(job["state"], "completed") << job;
  EXPECT_EQ(Logs(queued, "stdout"), "queued\n");

  // The service killed; a short run ends meanwhile and Slurm purges it (MinJobAge=2).
  const std::string purged = Submit({"sh", "-c", "sleep 1; echo purged"}, 60);
  WaitFor(purged, Launched);
  const int64_t purged_started_us = Job(purged)["run"]["started_us"];
  ASSERT_EQ(service_->Stop(SIGKILL), -SIGKILL);
  const auto purge_deadline = std::chrono::steady_clock::now() + seconds(90);
  while ((SlurmLists(purged) || JobcompLines(purged) == 0) &&
         std::chrono::steady_clock::now() < purge_deadline) {
    std::this_thread::sleep_for(milliseconds(250));
  }
  ASSERT_FALSE(SlurmLists(purged)) << "Slurm did not purge the job within 90 s";
  ASSERT_EQ(JobcompLines(purged), 1);
  const int64_t restarted_at_us = NowUs();
  StartService();
  job = WaitFor(purged, Ended);
  EXPECT_EQ(job["state"], "completed") << job;  // not node_failed: the record says how
  EXPECT_EQ(job["run"]["exit_code"], 0) << job;
  EXPECT_EQ(job["run"]["started_us"], purged_started_us) << job;
  EXPECT_LT(job["run"]["ended_us"].get<int64_t>(), restarted_at_us) << job;
  EXPECT_LE(job["ran_s"].get<int64_t>(), 3) << job;
  EXPECT_EQ(Logs(purged, "stdout"), "purged\n");

  // Each run was one Slurm job; the grant paid exactly its jobs' charges; the store
  // verifies.
  int64_t charged_micro = 0;
  for (const std::string& id : jobs_) {
    EXPECT_EQ(JobcompLines(id), 1) << id;
    charged_micro += MicrosOf(Job(id)["charged"]);
  }
  const Reply balance = Get("/v1/programs/exec/grants/G-P1/balance", pi_);
  ASSERT_EQ(balance.status, 200) << balance.raw;
  EXPECT_EQ(MicrosOf(balance.body["spent"]), charged_micro) << balance.raw;
  jobs_.clear();
  service_->Stop(SIGTERM);
  VerifyStore();
  std::cout
      << "slurm restarts: "
      << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - began).count()
      << " ms\n";
}

}  // namespace
}  // namespace atrium
