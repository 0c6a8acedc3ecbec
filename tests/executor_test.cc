// The local executor end to end: a real `atrium serve` (system clock) on a cluster whose
// pools have `executor = "local"`, a funded grant, and real processes: jobs that succeed,
// fail, reach their walltime, ignore SIGTERM, print a lot, are cancelled; the device
// variables as a job sees them; and the service killed (SIGKILL) while runs go on, then
// restarted: every run is settled exactly once, with its real end, and the store verifies.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
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
#include "exec/local_executor.h"
#include "journal/journal.h"
#include "journal/open.h"
#include "process.h"
#include "service_process.h"

namespace atrium {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::system_clock;
namespace fs = std::filesystem;

constexpr const char* kPi = "0000-0002-0260-0005";
constexpr const char* kReviewerA = "0000-0002-0260-0021";
constexpr const char* kReviewerB = "0000-0002-0260-003X";

// Three pools run here: Trainium (8 chips), GPUs (4), TPU-like chips (4); a 1 s grace
// between SIGTERM and SIGKILL.
constexpr const char* kClusterToml = R"(name = "exec-test"
default_accelerator = "trn1"
[accelerators.trn1]
vendor = "AWS"
cores_per_chip = 2
price_per_chip_hour = "1.34375"
[accelerators.h100]
vendor = "NVIDIA"
cores_per_chip = 132
price_per_chip_hour = "4.10"
[accelerators.tpu-v5e]
vendor = "TPU-like"
cores_per_chip = 1
price_per_chip_hour = "1.20"
[node_types.t8]
accelerator = "trn1"
chips = 8
allocation_sizes = [1, 2, 4, 8]
[node_types.g4]
accelerator = "h100"
chips = 4
[node_types.p4]
accelerator = "tpu-v5e"
chips = 4
allocation_sizes = [1, 2, 4]
[[pools]]
name = "trn"
node_type = "t8"
nodes = 1
executor = "local"
kill_grace_s = 1
[[pools]]
name = "gpu"
node_type = "g4"
nodes = 1
executor = "local"
kill_grace_s = 1
[[pools]]
name = "tpu"
node_type = "p4"
nodes = 1
executor = "local"
kill_grace_s = 1
[partitions.research]
classes = ["research", "preemptible"]
walltime_max_s = 86400
)";

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
trn1 = "1.34375"
h100 = "4.10"
tpu-v5e = "1.20"
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

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ =
        fs::path(::testing::TempDir()) / ("atrium-exec-" + std::to_string(getpid()) + "-" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    // Whatever a failed test left running ends with it.
    for (const std::string& job : jobs_)
      Post("/v1/jobs/" + job + "/cancel", admin_, json::object());
    service_.reset();
    fs::remove_all(dir_);
  }

  // With --no-examples (the test loads its own cluster), unless `args` is given.
  void StartService(std::vector<std::string> args = {"--no-examples"}) {
    service_ = std::make_unique<testing::ServiceProcess>();
    args.insert(args.begin(), {"--data", (dir_ / "data").string(), "--threads", "8"});
    ASSERT_TRUE(service_->Start(ATRIUM_BINARY, args)) << service_->output();
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
  void FundGrant(bool load_cluster = true) {
    if (load_cluster) Ok(Post("/v1/cluster", admin_, {{"toml", kClusterToml}}));
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

TEST_F(ExecutorTest, JobsRunForRealAndEndAsTheyDid) {
  StartService();
  FundGrant();
  const std::string ok = Submit({"sh", "-c", "echo hello; echo oops >&2; pwd; touch marker"}, 60);
  const std::string failed = Submit({"sh", "-c", "echo before; exit 3"}, 60);
  const std::string walltime = Submit({"sleep", "30"}, 2);
  const std::string stubborn = Submit({"sh", "-c", "trap '' TERM; sleep 30"}, 2);
  const std::string chatty = Submit({"sh", "-c", "yes 0123456789 | head -c 5000000"}, 60);
  const std::string cancelled = Submit({"sh", "-c", "echo $$ > pid; exec sleep 60"}, 600);
  const std::string missing = Submit({"no-such-program-here"}, 60);

  json job = WaitFor(ok, Ended);
  EXPECT_EQ(job["state"], "completed") << job;
  EXPECT_EQ(job["run"]["exit_code"], 0);
  EXPECT_EQ(job["run"]["signal"], 0);
  EXPECT_EQ(Logs(ok, "stdout"), "hello\n" + (dir_ / "data" / "jobs" / ok).string() + "\n");
  EXPECT_EQ(Logs(ok, "stderr"), "oops\n");
  EXPECT_TRUE(fs::exists(dir_ / "data" / "jobs" / ok / "marker"));
  // Charged for the measured time (rounded up to a second, never past the service's
  // now), not the 60 s asked for.
  EXPECT_LE(job["ran_s"].get<int64_t>(), 1) << job;
  // argv and environment recorded with the launch.
  const json launch = json::parse(JobFile(ok, "run-1.json"));
  EXPECT_EQ(launch["argv"][0], "sh");
  EXPECT_FALSE(launch["env"].empty());

  job = WaitFor(failed, Ended);
  EXPECT_EQ(job["state"], "failed") << job;
  EXPECT_EQ(job["run"]["exit_code"], 3);
  EXPECT_EQ(Logs(failed, "stdout"), "before\n");

  job = WaitFor(missing, Ended);
  EXPECT_EQ(job["state"], "failed") << job;
  EXPECT_EQ(job["run"]["exit_code"], 127);
  EXPECT_NE(Logs(missing, "stderr").find("cannot execute"), std::string::npos);

  // SIGTERM at the limit; sleep dies of it.
  job = WaitFor(walltime, Ended);
  EXPECT_EQ(job["state"], "killed_at_walltime") << job;
  EXPECT_EQ(job["run"]["signal"], SIGTERM);
  EXPECT_GE(job["ran_s"].get<int64_t>(), 2);
  EXPECT_LE(job["ran_s"].get<int64_t>(), 3);
  // A job that ignores SIGTERM gets SIGKILL after the pool's 1 s grace.
  job = WaitFor(stubborn, Ended);
  EXPECT_EQ(job["state"], "killed_at_walltime") << job;
  EXPECT_EQ(job["run"]["signal"], SIGKILL) << job;
  const int64_t stubborn_us =
      job["run"]["ended_us"].get<int64_t>() - job["run"]["started_us"].get<int64_t>();
  EXPECT_GE(stubborn_us, 3'000'000) << job;
  EXPECT_LT(stubborn_us, 6'000'000) << job;

  // 5,000,000 bytes of output, read in ranges and whole through the CLI.
  job = WaitFor(chatty, Ended);
  EXPECT_EQ(job["state"], "completed") << job;
  const Reply tail = Get("/v1/jobs/" + chatty + "/logs?offset=4999990&length=100", pi_);
  ASSERT_EQ(tail.status, 200) << tail.raw;
  EXPECT_EQ(tail.body["size"], 5'000'000);
  EXPECT_EQ(tail.body["length"], 10);
  EXPECT_EQ(tail.body["next_offset"], 5'000'000);
  EXPECT_EQ(tail.body["ended"], true);
  std::string expected_tail;
  for (int64_t at = 4'999'990; at < 5'000'000; ++at) expected_tail += "0123456789\n"[at % 11];
  EXPECT_EQ(tail.body["data"], expected_tail);
  const std::string token_file = (dir_ / "pi.token").string();
  std::ofstream(token_file) << pi_ << "\n";
  const testing::ProcessResult whole =
      testing::Run({ATRIUM_BINARY, "job", "logs", chatty, "--server", service_->url(),
                    "--token-file", token_file});
  EXPECT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_EQ(whole.out, JobFile(chatty, "stdout"));
  EXPECT_EQ(whole.out.size(), 5'000'000u);
  const testing::ProcessResult err_cli =
      testing::Run({ATRIUM_BINARY, "job", "logs", ok, "--stderr", "--follow", "--server",
                    service_->url(), "--token-file", token_file});
  EXPECT_EQ(err_cli.out, "oops\n") << err_cli.err;
  // Bad ranges and streams are refused; someone else's job is not found.
  EXPECT_EQ(Get("/v1/jobs/" + ok + "/logs?stream=stdin", pi_).status, 422);
  EXPECT_EQ(Get("/v1/jobs/" + ok + "/logs?length=0", pi_).status, 422);
  EXPECT_EQ(Get("/v1/jobs/" + ok + "/logs?offset=-1", pi_).status, 422);
  EXPECT_EQ(Get("/v1/jobs/" + ok + "/logs", MakeToken("researcher", kReviewerA)).status, 404);

  // Cancelled while running: charged up to the cancel, and its process is gone.
  WaitFor(cancelled, Launched);
  pid_t pid = 0;
  const auto pid_deadline = std::chrono::steady_clock::now() + seconds(10);
  while (pid == 0 && std::chrono::steady_clock::now() < pid_deadline) {
    std::istringstream(JobFile(cancelled, "pid")) >> pid;
    if (pid == 0) std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_GT(pid, 0);
  EXPECT_EQ(kill(pid, 0), 0);
  const Reply cancel = Post("/v1/jobs/" + cancelled + "/cancel", pi_, json::object());
  ASSERT_EQ(cancel.status, 200) << cancel.raw;
  EXPECT_EQ(cancel.body["state"], "cancelled");
  EXPECT_TRUE(ProcessGone(pid, seconds(10)));
  EXPECT_EQ(Job(cancelled)["state"], "cancelled");

  // The grant paid exactly what the jobs were charged.
  const Reply balance = Get("/v1/programs/exec/grants/G-P1/balance", pi_);
  ASSERT_EQ(balance.status, 200) << balance.raw;
  int64_t charged_micro = 0;
  for (const std::string& id : jobs_) {
    const std::string charged = Job(id)["charged"];
    const size_t dot = charged.find('.');
    std::string micro =
        dot == std::string::npos
            ? charged + "000000"
            : charged.substr(0, dot) + (charged.substr(dot + 1) + "000000").substr(0, 6);
    charged_micro += std::stoll(micro);
  }
  const std::string spent = balance.body["spent"];
  const size_t dot = spent.find('.');
  const std::string spent_micro =
      dot == std::string::npos
          ? spent + "000000"
          : spent.substr(0, dot) + (spent.substr(dot + 1) + "000000").substr(0, 6);
  EXPECT_EQ(std::stoll(spent_micro), charged_micro) << balance.raw;
  jobs_.clear();
  service_->Stop(SIGTERM);
  VerifyStore();
}

TEST_F(ExecutorTest, DeviceVariablesFollowThePlacement) {
  StartService();
  FundGrant();
  const std::string script =
      "echo \"J=$ATRIUM_JOB_ID G=$ATRIUM_GRANT C=$ATRIUM_CHIPS I=$ATRIUM_CHIP_INDICES "
      "H=$ATRIUM_NODES N=$NEURON_RT_VISIBLE_CORES D=$CUDA_VISIBLE_DEVICES "
      "T=$TPU_VISIBLE_CHIPS\"";
  const std::string trn = Submit({"sh", "-c", script}, 60, 4);
  const std::string gpu = Submit({"sh", "-c", script}, 60, 2, "h100");
  const std::string tpu = Submit({"sh", "-c", script}, 60, 2, "tpu-v5e");
  auto fields = [&](const std::string& id) {
    EXPECT_EQ(WaitFor(id, Ended)["state"], "completed");
    std::map<std::string, std::string> out;
    std::istringstream words(Logs(id, "stdout"));
    for (std::string word; words >> word;) {
      const size_t eq = word.find('=');
      out[word.substr(0, eq)] = word.substr(eq + 1);
    }
    return out;
  };
  auto indices = [](const std::string& text) {
    std::vector<int> out;
    std::istringstream parts(text);
    for (std::string part; std::getline(parts, part, ',');) out.push_back(std::stoi(part));
    return out;
  };
  std::map<std::string, std::string> seen = fields(trn);
  EXPECT_EQ(seen["J"], trn);
  EXPECT_EQ(seen["G"], "exec/G-P1");
  EXPECT_EQ(seen["C"], "4");
  EXPECT_EQ(seen["H"], "trn-n0000");
  const std::vector<int> chips = indices(seen["I"]);
  ASSERT_EQ(chips.size(), 4u) << seen["I"];
  std::string cores;
  for (const int chip : chips) {
    for (int core = 0; core < 2; ++core) {
      cores += (cores.empty() ? "" : ",") + std::to_string(chip * 2 + core);
    }
  }
  EXPECT_EQ(seen["N"], cores);  // 2 NeuronCores per chip
  EXPECT_EQ(seen["D"], "");
  EXPECT_EQ(seen["T"], "");

  seen = fields(gpu);
  EXPECT_EQ(seen["C"], "2");
  EXPECT_EQ(seen["H"], "gpu-n0000");
  EXPECT_EQ(indices(seen["D"]).size(), 2u);
  EXPECT_EQ(seen["D"], seen["I"]);
  EXPECT_EQ(seen["N"], "");

  seen = fields(tpu);
  EXPECT_EQ(seen["T"], seen["I"]);
  EXPECT_EQ(indices(seen["T"]).size(), 2u);
  EXPECT_EQ(seen["D"], "");
  jobs_.clear();
}

// Datasets (docs/datasets.md): a run sees the datasets its grant may use as
// ATRIUM_DATASET_<ID> and ATRIUM_DATASETS; a dataset it did not declare is not exposed.
TEST_F(ExecutorTest, DeclaredDatasetsReachTheRun) {
  StartService();
  FundGrant();
  for (const auto& [id, policy] : std::vector<std::pair<std::string, std::string>>{
           {"weather", "open"}, {"genomes-1k", "approval"}, {"other", "open"}}) {
    Ok(Post("/v1/programs/exec/datasets", admin_,
            {{"dataset", id},
             {"name", id},
             {"size_bytes", 1},
             {"location", "/data/" + id},
             {"policy", policy}}));
  }
  Ok(Post("/v1/programs/exec/datasets/genomes-1k/requests", pi_,
          {{"grant", "G-P1"}, {"reason", "variant calling"}}));
  Ok(Post("/v1/programs/exec/dataset-requests/DR-1/decide", admin_,
          {{"decision", "approve"}, {"reason", "ok"}}));
  const std::string script =
      "echo \"W=$ATRIUM_DATASET_WEATHER G=$ATRIUM_DATASET_GENOMES_1K O=$ATRIUM_DATASET_OTHER "
      "L=$ATRIUM_DATASETS\"";
  const Reply reply = Post("/v1/jobs", pi_,
                           {{"program", "exec"},
                            {"grant", "G-P1"},
                            {"chips", 1},
                            {"walltime_s", 60},
                            {"argv", {"sh", "-c", script}},
                            {"datasets", {"weather", "genomes-1k"}}});
  ASSERT_EQ(reply.status, 201) << reply.raw;
  const std::string job = reply.body.value("job", std::string());
  jobs_.push_back(job);
  EXPECT_EQ(WaitFor(job, Ended)["state"], "completed");
  EXPECT_EQ(Logs(job, "stdout"), "W=/data/weather G=/data/genomes-1k O= L=genomes-1k,weather\n");
  jobs_.clear();
}

TEST_F(ExecutorTest, KilledServiceRestartsAndSettlesEveryRunOnce) {
  StartService();
  FundGrant();
  // Ends while the service is down, by itself; by its walltime; and one that outlives the
  // restart, then is cancelled.
  const std::string quick = Submit({"sh", "-c", "sleep 1; echo done"}, 60);
  const std::string limited = Submit({"sleep", "30"}, 2);
  const std::string survivor = Submit({"sh", "-c", "sleep 6; echo survived"}, 60);
  const std::string cancelled = Submit({"sh", "-c", "echo $$ > pid; exec sleep 120"}, 600);
  for (const std::string& id : {quick, limited, survivor, cancelled}) WaitFor(id, Launched);
  ASSERT_EQ(service_->Stop(SIGKILL), -SIGKILL);
  const int64_t killed_at_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
          .count();
  std::this_thread::sleep_for(seconds(4));  // quick and limited end meanwhile
  const int64_t restarted_at_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
          .count();
  StartService();

  json job = WaitFor(quick, Ended);
  EXPECT_EQ(job["state"], "completed") << job;
  // Its real end, while the service was down (not the restart's time).
  EXPECT_LT(job["run"]["ended_us"].get<int64_t>(), restarted_at_us) << job;
  EXPECT_GE(job["ran_s"].get<int64_t>(), 1) << job;
  EXPECT_LE(job["ran_s"].get<int64_t>(), 2) << job;
  job = WaitFor(limited, Ended);
  EXPECT_EQ(job["state"], "killed_at_walltime") << job;
  EXPECT_EQ(job["run"]["signal"], SIGTERM) << job;
  EXPECT_LT(job["run"]["ended_us"].get<int64_t>(), restarted_at_us) << job;
  EXPECT_LE(job["ran_s"].get<int64_t>(), 3) << job;
  // Re-adopted alive: it ends after the restart and is reported then.
  EXPECT_EQ(Job(survivor)["state"], "running");
  job = WaitFor(survivor, Ended);
  EXPECT_EQ(job["state"], "completed") << job;
  EXPECT_GT(job["run"]["ended_us"].get<int64_t>(), killed_at_us) << job;
  EXPECT_EQ(Logs(survivor, "stdout"), "survived\n");
  // A re-adopted run is stopped by a cancel like any other.
  pid_t pid = 0;
  std::istringstream(JobFile(cancelled, "pid")) >> pid;
  ASSERT_GT(pid, 0);
  EXPECT_EQ(kill(pid, 0), 0);
  ASSERT_EQ(Post("/v1/jobs/" + cancelled + "/cancel", pi_, json::object()).status, 200);
  EXPECT_TRUE(ProcessGone(pid, seconds(10)));

  // Once more, killed and restarted with nothing running: nothing is settled again.
  std::map<std::string, json> before;
  for (const std::string& id : jobs_) before[id] = Job(id);
  ASSERT_EQ(service_->Stop(SIGKILL), -SIGKILL);
  StartService();
  std::this_thread::sleep_for(milliseconds(500));
  for (const std::string& id : jobs_) {
    const json after = Job(id);
    EXPECT_EQ(after["charged"], before[id]["charged"]) << id;
    EXPECT_EQ(after["run"], before[id]["run"]) << id;
    EXPECT_EQ(after["state"], before[id]["state"]) << id;
  }
  jobs_.clear();
  service_->Stop(SIGTERM);
  VerifyStore();
}

// `atrium serve` alone, on a fresh store: this machine is its cluster (one node of
// --local-chips logical chips here: this machine has no Neuron or NVIDIA device), run by
// the local executor, so a job submitted on the defaults really runs.
TEST_F(ExecutorTest, ServeAloneLoadsTheLocalClusterAndJobsRun) {
  std::error_code ec;
  bool devices = false;
  for (const auto& entry : fs::directory_iterator("/dev", ec)) {
    const std::string name = entry.path().filename().string();
    if ((name.starts_with("neuron") || name.starts_with("nvidia")) && name.size() > 6 &&
        std::isdigit(static_cast<unsigned char>(name.back()))) {
      devices = true;
    }
  }
  StartService({"--local-chips", "4"});
  const Reply nodes = Get("/v1/cluster/nodes", admin_);
  ASSERT_EQ(nodes.status, 200) << nodes.raw;
  ASSERT_EQ(nodes.body["items"].size(), 1u) << nodes.raw;
  EXPECT_EQ(nodes.body["items"][0]["name"], "local-n0000");
  if (!devices) {
    EXPECT_EQ(nodes.body["items"][0]["chips"], 4) << nodes.raw;
    EXPECT_EQ(nodes.body["items"][0]["accelerator"], "trn1") << nodes.raw;
  }
  EXPECT_TRUE(fs::exists(dir_ / "data" / "local-cluster.toml"));
  {
    // The file names no policy: the journal records the one it resolved to, so a later
    // default cannot change how a replay schedules.
    auto store = journal::OpenJournalStore((dir_ / "data" / "atrium.db").string(),
                                           journal::OpenMode::kReadOnly);
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    int loads = 0;
    ASSERT_TRUE((*store)
                    ->Scan(0,
                           [&](const journal::StoredEntry& entry) {
                             if (entry.payload.find("cluster_load") != std::string::npos) {
                               ++loads;
                               EXPECT_NE(entry.payload.find(R"("policy":"backfill")"),
                                         std::string::npos);
                             }
                             return OkStatus();
                           })
                    .ok());
    EXPECT_EQ(loads, 1);
  }
  FundGrant(/*load_cluster=*/false);
  const std::string job =
      Submit({"sh", "-c", "echo chips=$ATRIUM_CHIPS cores=$NEURON_RT_VISIBLE_CORES"}, 60, 2);
  const json ended = WaitFor(job, Ended);
  EXPECT_EQ(ended["state"], "completed") << ended;
  const std::string out = Logs(job, "stdout");
  EXPECT_EQ(out.rfind("chips=2 cores=", 0), 0u) << out;
  // A bad count is refused before anything starts.
  const testing::ProcessResult refused =
      testing::Run({ATRIUM_BINARY, "serve", "--data", (dir_ / "other").string(), "--listen",
                    "127.0.0.1:0", "--local-chips", "65"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("local-chips"), std::string::npos) << refused.err;
  jobs_.clear();
}

// A run's memory limit takes effect: a cgroup v2 memory.max where this machine lets the
// service delegate the memory and cpu controllers, else RLIMIT_AS. Which one applies is
// checked against the machine itself, so neither path is skipped silently.
TEST_F(ExecutorTest, MemoryLimitTakesEffect) {
  // Independently of the executor: does this process's cgroup v2 offer memory and cpu?
  std::string mount;
  {
    std::ifstream mounts("/proc/self/mountinfo");
    for (std::string line; std::getline(mounts, line);) {
      const size_t dash = line.find(" - cgroup2 ");
      if (dash == std::string::npos) continue;
      std::istringstream fields(line);
      std::string skip;
      fields >> skip >> skip >> skip >> skip >> mount;
      break;
    }
  }
  std::string controllers;
  if (!mount.empty()) {
    std::ifstream groups("/proc/self/cgroup");
    std::string own;
    for (std::string line; std::getline(groups, line);) {
      if (line.starts_with("0::")) own = line.substr(3);
    }
    fs::path base = fs::path(mount) / fs::path(own).relative_path();
    if (!fs::is_directory(base)) base = mount;
    std::ifstream in(base / "cgroup.controllers");
    std::getline(in, controllers);
  }
  const bool offered = (" " + controllers + " ").find(" memory ") != std::string::npos &&
                       (" " + controllers + " ").find(" cpu ") != std::string::npos;
  const exec::LimitsMode probed = exec::ProbeLimits("");
  if (!offered) {
    EXPECT_FALSE(probed.cgroup) << "no memory+cpu controllers here: " << controllers;
    EXPECT_FALSE(probed.reason.empty());
  }
  const std::string expected_mode = probed.cgroup ? "cgroup" : "rlimit";
  std::cout << "limits here: " << expected_mode << " (" << probed.reason << ")\n";

  StartService({"--no-examples", "--job-memory-mib", "128"});
  FundGrant();
  const std::string small =
      Submit({"python3", "-c", "x = bytearray(16 << 20); x[-1] = 1; print(len(x))"}, 60);
  const std::string large =
      Submit({"python3", "-c", "x = bytearray(512 << 20); x[::4096] = b'1' * len(x[::4096])"}, 60);
  json job = WaitFor(small, Ended);
  EXPECT_EQ(job["state"], "completed") << job << Logs(small, "stderr");
  EXPECT_EQ(Logs(small, "stdout"), "16777216\n");
  job = WaitFor(large, Ended);
  EXPECT_EQ(job["state"], "failed") << job;
  if (expected_mode == "rlimit") {
    // The allocation is refused: Python raises MemoryError and exits 1.
    EXPECT_EQ(job["run"]["exit_code"], 1) << job;
    EXPECT_NE(Logs(large, "stderr").find("MemoryError"), std::string::npos);
  } else {
    // The cgroup's OOM killer ends it.
    EXPECT_EQ(job["run"]["signal"], SIGKILL) << job;
  }
  const json launch = json::parse(JobFile(large, "run-1.json"));
  EXPECT_EQ(launch["limits"]["mode"], expected_mode) << launch;
  EXPECT_EQ(launch["limits"]["memory_bytes_max"], 128 << 20);
  jobs_.clear();
}

// The executor's side of a preemption: Stop(kPreempted) sends SIGTERM to the run's group
// (SIGKILL after the grace) and its end is reported as `preempted`; a cancel likewise as
// `cancelled`. The executor alone, without a service.
TEST_F(ExecutorTest, StopPreemptedEndsTheRunAsPreempted) {
  exec::LocalExecutor executor({.jobs_dir = (dir_ / "jobs").string()});
  auto spec = [](const std::string& job, std::vector<std::string> argv) {
    return exec::RunSpec{.job = job,
                         .run = 1,
                         .argv = std::move(argv),
                         .grant = "p/g",
                         .chips = 1,
                         .nodes = {"n0"},
                         .chip_indices = {0},
                         .walltime_s = 60,
                         .kill_grace_s = 1};
  };
  ASSERT_TRUE(executor.Ensure(spec("J1", {"sleep", "30"})).ok());
  ASSERT_TRUE(executor.Ensure(spec("J2", {"sh", "-c", "trap '' TERM; sleep 30"})).ok());
  ASSERT_TRUE(executor.Ensure(spec("J3", {"sleep", "30"})).ok());
  ASSERT_TRUE(executor.Ensure(spec("J1", {"sleep", "30"})).ok());  // idempotent
  std::map<std::string, exec::RunEvent> started;
  std::map<std::string, exec::RunEvent> ended;
  auto poll_until = [&](const std::function<bool()>& done, seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      for (const exec::RunEvent& event : executor.Poll()) {
        auto& into = event.kind == exec::RunEvent::Kind::kStarted ? started : ended;
        EXPECT_TRUE(into.emplace(event.job, event).second) << "twice: " << event.job;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
  };
  poll_until([&] { return started.size() == 3; }, seconds(10));
  EXPECT_EQ(started.size(), 3u);
  std::this_thread::sleep_for(milliseconds(300));  // the shells have set their traps
  const auto stopped_at = std::chrono::steady_clock::now();
  executor.Stop("J1", 1, exec::EndHow::kPreempted);
  executor.Stop("J2", 1, exec::EndHow::kPreempted);
  executor.Stop("J3", 1, exec::EndHow::kCancelled);
  poll_until([&] { return ended.size() == 3; }, seconds(20));
  ASSERT_EQ(ended.size(), 3u);
  EXPECT_EQ(ended["J1"].how, exec::EndHow::kPreempted);
  EXPECT_EQ(ended["J1"].signal, SIGTERM);
  EXPECT_EQ(ended["J2"].how, exec::EndHow::kPreempted);
  EXPECT_EQ(ended["J2"].signal, SIGKILL);  // it ignored SIGTERM: killed after the 1 s grace
  EXPECT_GE(ended["J2"].ended_at_us - ended["J2"].started_at_us, 1'000'000);
  EXPECT_EQ(ended["J3"].how, exec::EndHow::kCancelled);
  EXPECT_EQ(ended["J3"].signal, SIGTERM);
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, seconds(10));
  EXPECT_TRUE(executor.Tracked().empty());
  EXPECT_TRUE(executor.Poll().empty());  // each end once
  // The status files say the same (what a restarted service would read).
  std::ifstream status(dir_ / "jobs" / "J1" / "run-1.status");
  std::string line;
  std::getline(status, line);
  EXPECT_NE(line.find(" preempted"), std::string::npos) << line;
}

}  // namespace
}  // namespace atrium
