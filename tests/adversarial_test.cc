// The service under attack, over real sockets on loopback (`atrium serve` in its own
// process): slowloris with 1,024 sockets while /healthz answers within 100 ms, the
// per-address connection cap, header, request-line and body floods, deeply nested JSON,
// duplicate and conflicting framing headers, token churn, and the store lock through a
// symlink, a hard link and `atrium ledger --db`. Each attack leaves the server alive, its
// RSS under a bound, and (where it should change nothing) the journal unchanged.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "process.h"
#include "service_process.h"

namespace atrium {
namespace {

using nlohmann::json;
using testing::ServiceProcess;
using Clock = std::chrono::steady_clock;

// Growth of the server's resident memory any one attack may cause (ASan's shadow and
// quarantine included; the unbounded server grew by 278 MB from one header flood).
constexpr int64_t kRssGrowthMaxKb = 96 * 1024;

int64_t RssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// The p-th quantile (0..1) of the samples, nearest rank.
double Percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(samples.size())));
  return samples[std::clamp<size_t>(rank, 1, samples.size()) - 1];
}

std::string Describe(const std::vector<double>& samples_ms) {
  std::string out = "[";
  for (const double ms : samples_ms) out += std::to_string(static_cast<int>(ms)) + " ";
  return out + "] ms";
}

// A TCP connection to the server from a given loopback address (127.0.0.0/8 is all ours).
int Connect(int port, const char* from = "127.0.0.1") {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, from, &local.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    close(fd);
    return -1;
  }
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0) {
    close(fd);
    return -1;
  }
  timeval timeout{.tv_sec = 10, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return fd;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t sent = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent <= 0) return false;
    data.remove_prefix(static_cast<size_t>(sent));
  }
  return true;
}

// Reads until the server closes (or 10 s pass).
std::string ReadToClose(int fd) {
  std::string out;
  char buffer[8192];
  for (ssize_t got; (got = recv(fd, buffer, sizeof(buffer), 0)) > 0;) {
    out.append(buffer, static_cast<size_t>(got));
  }
  return out;
}

struct Answer {
  int status = 0;
  std::string head;
  json body;
};

Answer ParseAnswer(const std::string& raw) {
  Answer answer;
  if (raw.rfind("HTTP/1.1 ", 0) == 0) answer.status = std::stoi(raw.substr(9, 3));
  const size_t split = raw.find("\r\n\r\n");
  answer.head = raw.substr(0, split);
  if (split != std::string::npos) {
    answer.body = json::parse(raw.substr(split + 4), nullptr, false);
  }
  return answer;
}

// One raw request on a new connection that the request asks to close.
Answer Raw(int port, const std::string& request) {
  const int fd = Connect(port);
  if (fd < 0) return {};
  SendAll(fd, request);
  const std::string raw = ReadToClose(fd);
  close(fd);
  return ParseAnswer(raw);
}

std::string Request(const std::string& method, const std::string& path, const std::string& token,
                    const std::string& body) {
  std::string text = method + " " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n";
  if (!token.empty()) text += "Authorization: Bearer " + token + "\r\n";
  text += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n\r\n" + body;
  return text;
}

void RaiseDescriptorLimit() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

class AdversarialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RaiseDescriptorLimit();
    dir_ = std::filesystem::temp_directory_path() /
           ("atrium-adversarial-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    // Short timeouts so the test sees them act; a per-address cap the test can reach.
    std::ofstream(dir_ / "serve.toml") << "header_timeout_ms = 2000\n"
                                          "request_timeout_ms = 3000\n"
                                          "idle_timeout_ms = 4000\n"
                                          "connections_per_address_max = 200\n";
  }
  void TearDown() override {
    service_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--data", (dir_ / "data").string(), "--no-examples",
                                     "--config", (dir_ / "serve.toml").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    service_ = std::make_unique<ServiceProcess>();
    ASSERT_TRUE(service_->Start(ATRIUM_BINARY, args)) << service_->output();
    const std::string& url = service_->url();
    port_ = std::stoi(url.substr(url.rfind(':') + 1));
    admin_ = testing::ReadFirstLine(service_->token_file());
    ASSERT_FALSE(admin_.empty());
  }

  uint64_t DurableSeq() {
    const Answer ready = Raw(port_, "GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(ready.status, 200) << ready.head;
    return ready.body.value("durable_seq", uint64_t{0});
  }

  // Milliseconds /healthz took on a new connection from 127.0.0.1 (-1 if it failed).
  double HealthzMs() {
    const auto started = Clock::now();
    const Answer answer =
        Raw(port_, "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if (answer.status != 200) return -1;
    return std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  }

  // The server's atrium_http_connections gauge, less the connection that asks (-1 if
  // the scrape failed).
  int64_t OpenConnections() {
    const int fd = Connect(port_);
    if (fd < 0) return -1;
    SendAll(fd, Request("GET", "/metrics", admin_, ""));
    const std::string raw = ReadToClose(fd);
    close(fd);
    const std::string name = "\natrium_http_connections ";
    const size_t at = raw.find(name);
    if (at == std::string::npos) return -1;
    return std::stoll(raw.substr(at + name.size())) - 1;
  }

  std::string MakeToken(const std::string& role, const std::string& person) {
    const Answer made = Raw(port_, Request("POST", "/v1/tokens", admin_,
                                           json{{"role", role}, {"person", person}}.dump()));
    EXPECT_EQ(made.status, 201) << made.head << made.body;
    return made.body.value("token", "");
  }

  std::filesystem::path dir_;
  std::unique_ptr<ServiceProcess> service_;
  int port_ = 0;
  std::string admin_;
};

TEST_F(AdversarialTest, SlowlorisOfAThousandSocketsDoesNotStarveOthers) {
  Start();
  const uint64_t seq_before = DurableSeq();
  const int64_t rss_before = RssKb(service_->pid());
  // The same probe without the attack, in this run: what this machine's load alone costs.
  std::vector<double> baseline_ms;
  for (int i = 0; i < 20; ++i) {
    baseline_ms.push_back(HealthzMs());
    ASSERT_GE(baseline_ms.back(), 0) << "/healthz failed before the attack";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // 1,024 sockets from eight addresses, each sending a request line and then one header
  // line every 400 ms, never finishing the header.
  std::vector<int> slow;
  for (int i = 0; i < 1024; ++i) {
    const std::string from = "127.0.0." + std::to_string(2 + i % 8);
    const int fd = Connect(port_, from.c_str());
    ASSERT_GE(fd, 0) << "socket " << i;
    ASSERT_TRUE(SendAll(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n"));
    slow.push_back(fd);
  }
  std::vector<double> probes_ms;
  const auto started = Clock::now();
  // Each round every slow socket sends one more header line, a quarter of them between
  // two probes (10x the rate of the attack in issue 14: 4 s per line per socket).
  while (Clock::now() - started < std::chrono::milliseconds(1600)) {
    for (size_t quarter = 0; quarter < 4; ++quarter) {
      for (size_t i = quarter; i < slow.size(); i += 4) {
        send(slow[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
      }
      probes_ms.push_back(HealthzMs());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ASSERT_GE(probes_ms.size(), 16U);
  for (const double ms : probes_ms) {
    EXPECT_GE(ms, 0) << "/healthz failed while 1,024 slow sockets were open";
    // A starved server answers only once the slow sockets time out (2 s here).
    EXPECT_LT(ms, 1000) << "/healthz took " << ms << " ms";
  }
  // Issue 14's bar, robust to a loaded machine: the typical probe answers within 100 ms,
  // and nine in ten within 100 ms more than nine in ten took without the attack.
  const double baseline_p90 = Percentile(baseline_ms, 0.9);
  EXPECT_LT(Percentile(probes_ms, 0.5), 100) << Describe(probes_ms);
  EXPECT_LT(Percentile(probes_ms, 0.9), 100 + baseline_p90)
      << Describe(probes_ms) << " baseline " << Describe(baseline_ms);
  // The header timeout (2 s here) closes every slow socket: each read ends.
  size_t closed = 0;
  for (const int fd : slow) {
    char byte;
    timeval timeout{.tv_sec = 4, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (recv(fd, &byte, 1, 0) <= 0) ++closed;
    close(fd);
  }
  EXPECT_EQ(closed, slow.size());
  EXPECT_LT(RssKb(service_->pid()) - rss_before, kRssGrowthMaxKb);
  EXPECT_EQ(DurableSeq(), seq_before);
}

TEST_F(AdversarialTest, ConnectionsPerAddressAreCapped) {
  Start();
  const uint64_t seq_before = DurableSeq();
  const int64_t rss_before = RssKb(service_->pid());
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    const int fd = Connect(port_, "127.0.0.20");
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  // Until the server counts them all (its gauge, not a guess at how long that takes).
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (OpenConnections() < 200 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE(OpenConnections(), 200);
  // The 201st from that address is answered 503 and closed; others are still served.
  const int extra = Connect(port_, "127.0.0.20");
  ASSERT_GE(extra, 0);
  const Answer refused = ParseAnswer(ReadToClose(extra));
  close(extra);
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.body["error"]["code"], "unavailable");
  const double ms = HealthzMs();
  EXPECT_GE(ms, 0);
  EXPECT_LT(ms, 100);
  for (const int fd : idle) close(fd);
  EXPECT_LT(RssKb(service_->pid()) - rss_before, kRssGrowthMaxKb);
  EXPECT_EQ(DurableSeq(), seq_before);
}

TEST_F(AdversarialTest, HeaderAndBodyFloodsAreRefusedAndBounded) {
  Start();
  const uint64_t before = DurableSeq();
  const int64_t rss_before = RssKb(service_->pid());
  // 70 KB of header lines: 431 too_large.
  std::string flood = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
  while (flood.size() < 70'000) flood += "X-Flood: 0123456789\r\n";
  Answer answer = Raw(port_, flood);
  EXPECT_EQ(answer.status, 431) << answer.head;
  EXPECT_EQ(answer.body["error"]["code"], "too_large");
  // 200 short header lines: too many fields.
  std::string many = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 200; ++i) many += "A" + std::to_string(i) + ": b\r\n";
  answer = Raw(port_, many + "\r\n");
  EXPECT_EQ(answer.status, 431) << answer.head;
  EXPECT_EQ(answer.body["error"]["code"], "too_large");
  // A 10 KB request target: 414; a 100 KB one: past the header limit, 431.
  answer = Raw(port_, "GET /" + std::string(10'000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(answer.status, 414) << answer.head;
  answer = Raw(port_, "GET /" + std::string(100'000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(answer.status, 431) << answer.head;
  // A declared 100 MB body: 413 before any of it is read; a chunked one past the limit too.
  answer = Raw(port_, "POST /v1/tokens HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n");
  EXPECT_EQ(answer.status, 413) << answer.head;
  EXPECT_EQ(answer.body["error"]["code"], "too_large");
  std::string chunked = "POST /v1/tokens HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk(65536, 'x');
  for (int i = 0; i < 20; ++i) chunked += "10000\r\n" + chunk + "\r\n";
  answer = Raw(port_, chunked);
  EXPECT_EQ(answer.status, 413) << answer.head;
  // Eight clients each pushing 16 MB of header lines at once (the unbounded server grew
  // to 2.59 GB from eight 100 MB floods).
  std::vector<std::thread> floods;
  for (int i = 0; i < 8; ++i) {
    floods.emplace_back([this] {
      const int fd = Connect(port_);
      std::string block = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
      while (block.size() < 1 << 20) block += "X-Flood: 0123456789abcdef\r\n";
      SendAll(fd, block);
      const std::string more(1 << 20, 'x');
      for (int mb = 0; mb < 15 && SendAll(fd, more);) ++mb;
      close(fd);
    });
  }
  for (auto& thread : floods) thread.join();
  EXPECT_GE(HealthzMs(), 0);
  EXPECT_LT(RssKb(service_->pid()) - rss_before, kRssGrowthMaxKb);
  EXPECT_EQ(DurableSeq(), before);
}

TEST_F(AdversarialTest, DeeplyNestedJsonIsRefusedBeforeParsing) {
  Start();
  const std::string researcher = MakeToken("researcher", "0000-0002-0260-0005");
  const uint64_t before = DurableSeq();
  const int64_t rss_before = RssKb(service_->pid());
  // 60,000 nested arrays in a job's name (120 KB): the old server died of a stack overflow.
  const std::string deep = std::string(60'000, '[') + std::string(60'000, ']');
  const std::string body =
      R"({"program":"p","grant":"g","chips":16,"walltime_s":60,"name":)" + deep + "}";
  Answer answer = Raw(port_, Request("POST", "/v1/jobs", researcher, body));
  EXPECT_EQ(answer.status, 400) << answer.head;
  EXPECT_EQ(answer.body["error"]["code"], "parse_error");
  // Brackets inside a string are text, not nesting.
  const std::string in_string =
      R"({"role":"researcher","label":")" + std::string(1000, '[') + "\"}";
  answer = Raw(port_, Request("POST", "/v1/tokens", researcher, in_string));
  EXPECT_NE(answer.body["error"]["code"], "parse_error") << answer.body;
  // 65 levels: refused; the server still answers.
  answer = Raw(port_, Request("POST", "/v1/tokens", admin_,
                              R"({"label":)" + std::string(65, '[') + std::string(65, ']') + "}"));
  EXPECT_EQ(answer.status, 400);
  EXPECT_GE(HealthzMs(), 0);
  // The label entry above created one token; nothing else was journaled.
  EXPECT_LE(DurableSeq(), before + 1);
  EXPECT_LT(RssKb(service_->pid()) - rss_before, kRssGrowthMaxKb);
}

TEST_F(AdversarialTest, DuplicateOrConflictingFramingHeadersAre400) {
  Start();
  const uint64_t before = DurableSeq();
  const int64_t rss_before = RssKb(service_->pid());
  const std::string body = R"({"role":"operator","label":"x"})";
  const std::string head = "POST /v1/tokens HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
                           admin_ + "\r\nContent-Type: application/json\r\n";
  const std::string length = "Content-Length: " + std::to_string(body.size()) + "\r\n";
  for (const std::string& framing : {length + length,                   // duplicate, equal
                                     length + "Content-Length: 3\r\n",  // conflicting
                                     "Content-Length: " + std::to_string(body.size()) + ", " +
                                         std::to_string(body.size()) + "\r\n",   // a list
                                     length + "Transfer-Encoding: chunked\r\n",  // both framings
                                     "Transfer-Encoding: chunked\r\n" + length}) {
    const Answer answer = Raw(port_, head + framing + "\r\n" + body);
    EXPECT_EQ(answer.status, 400) << framing << answer.head;
    EXPECT_EQ(answer.body["error"]["code"], "parse_error") << framing;
  }
  EXPECT_EQ(DurableSeq(), before);
  // The well-framed request is accepted, with a request id in its answer.
  const Answer ok = Raw(port_, head + length + "\r\n" + body);
  EXPECT_EQ(ok.status, 201) << ok.head;
  EXPECT_NE(ok.head.find("X-Request-Id: "), std::string::npos);
  EXPECT_EQ(DurableSeq(), before + 1);
  EXPECT_LT(RssKb(service_->pid()) - rss_before, kRssGrowthMaxKb);
}

TEST_F(AdversarialTest, TokenChurnHitsTheQuotaNotOtherPeople) {
  Start();
  const std::string researcher = MakeToken("researcher", "0000-0002-0260-0005");
  const int64_t rss_before = RssKb(service_->pid());
  const uint64_t seq_before = DurableSeq();
  int created = 0;
  int refused = 0;
  for (int i = 0; i < 80; ++i) {
    const Answer made = Raw(port_, Request("POST", "/v1/tokens", researcher, "{}"));
    if (made.status == 201) {
      ++created;
      const std::string id = made.body["token_id"];
      const Answer revoked = Raw(port_, Request("DELETE", "/v1/tokens/" + id, researcher, ""));
      EXPECT_EQ(revoked.status, 200) << revoked.head;
    } else {
      EXPECT_EQ(made.status, 429) << made.head;
      EXPECT_EQ(made.body["error"]["code"], "rate_limited");
      ++refused;
    }
  }
  EXPECT_EQ(created, 60);  // AppState::kTokenCreationsPerHourMax
  EXPECT_EQ(refused, 20);
  // The journal holds the answered creations and revocations and nothing of the refusals.
  EXPECT_EQ(DurableSeq(), seq_before + 2 * static_cast<uint64_t>(created));
  // Everyone else still gets tokens.
  EXPECT_FALSE(MakeToken("operator", "").empty());
  EXPECT_FALSE(MakeToken("researcher", "0000-0002-0260-0013").empty());
  EXPECT_LT(RssKb(service_->pid()) - rss_before, kRssGrowthMaxKb);
}

TEST_F(AdversarialTest, StoreLockHoldsThroughSymlinksHardLinksAndTheLedgerCommand) {
  Start();
  const uint64_t seq_before = DurableSeq();
  const int64_t rss_before = RssKb(service_->pid());
  const std::filesystem::path db = dir_ / "data" / "atrium.db";
  std::filesystem::create_symlink(db, dir_ / "alias.db");
  std::filesystem::create_hard_link(db, dir_ / "hard.db");
  for (const std::string& path : {(dir_ / "alias.db").string(), (dir_ / "hard.db").string(),
                                  (dir_ / "data" / ".." / "data" / "atrium.db").string()}) {
    ServiceProcess second;
    EXPECT_FALSE(second.Start(ATRIUM_BINARY,
                              {"--data", (dir_ / "other").string(), "--db", path, "--no-examples"}))
        << path;
    EXPECT_NE(second.output().find("locked"), std::string::npos) << second.output();
  }
  const testing::ProcessResult ledger =
      testing::Run({ATRIUM_BINARY, "ledger", "tick", "--db", (dir_ / "alias.db").string()});
  EXPECT_NE(ledger.exit_code, 0);
  EXPECT_NE((ledger.out + ledger.err).find("locked"), std::string::npos)
      << ledger.out << ledger.err;
  // The first server is untouched, and nothing was written to its journal.
  EXPECT_GE(HealthzMs(), 0);
  EXPECT_EQ(DurableSeq(), seq_before);
  EXPECT_LT(RssKb(service_->pid()) - rss_before, kRssGrowthMaxKb);
  EXPECT_EQ(service_->Stop(SIGTERM), 0);
}

TEST_F(AdversarialTest, LogsAreJsonLinesWithTheRequestIdAndNoSecret) {
  Start({"--access-log"});
  const std::string researcher = MakeToken("researcher", "0000-0002-0260-0005");
  const Answer answer = Raw(port_, Request("GET", "/v1/me", researcher, ""));
  ASSERT_EQ(answer.status, 200);
  const size_t at = answer.head.find("X-Request-Id: ");
  ASSERT_NE(at, std::string::npos);
  const std::string id = answer.head.substr(at + 14, 16);
  ASSERT_EQ(service_->Stop(SIGTERM), 0);
  const std::string output = service_->output();
  bool found = false;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] != '{') continue;
    const json event = json::parse(line, nullptr, false);
    ASSERT_FALSE(event.is_discarded()) << line;
    EXPECT_TRUE(event.contains("ts") && event.contains("level") && event.contains("event"));
    if (event.value("request_id", "") == id) {
      found = true;
      EXPECT_EQ(event["status"], 200);
      EXPECT_EQ(event["path"], "/v1/me");
    }
  }
  EXPECT_TRUE(found) << output;
  EXPECT_EQ(output.find(researcher), std::string::npos);
  EXPECT_EQ(output.find(admin_), std::string::npos);
}

}  // namespace
}  // namespace atrium
