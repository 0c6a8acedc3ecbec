// End-to-end: the `atrium` binary runs the demo, exports the public log, verifies it,
// finds a flipped byte at the right entry, prints the report, and refuses bad input
// without touching the state file.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace {

struct Outcome {
  int exit_code = -1;
  std::string out;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

class ProgramCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() /
        ("atrium-program-cli-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Outcome Atrium(const std::string& arguments) {
    const std::string out = (dir_ / "out.txt").string();
    const std::string command =
        std::string(ATRIUM_BINARY) + " " + arguments + " > " + out + " 2>&1";
    const int status = std::system(command.c_str());
    return {WEXITSTATUS(status), Slurp(out)};
  }
  std::string Path(const char* name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

TEST_F(ProgramCliTest, DemoLogVerifiesAndTamperingIsFound) {
  const Outcome demo =
      Atrium("program demo --dir " ATRIUM_EXAMPLES " --quiet --format json --log-out " +
             Path("log.jsonl") + " --state-out " + Path("state.json"));
  ASSERT_EQ(demo.exit_code, 0) << demo.out;
  const nlohmann::json report = nlohmann::json::parse(demo.out);
  EXPECT_GT(report["grants"].get<int64_t>(), 10);
  EXPECT_EQ(report["budget"]["total"], "110000000");

  const Outcome verified = Atrium("audit verify " + Path("log.jsonl"));
  ASSERT_EQ(verified.exit_code, 0) << verified.out;
  EXPECT_NE(verified.out.find(report["log"]["head"].get<std::string>()), std::string::npos);

  // Flip one byte in the 10th line.
  std::string log = Slurp(Path("log.jsonl"));
  size_t position = 0;
  for (int line = 1; line < 10; ++line) position = log.find('\n', position) + 1;
  log[position + 20] = static_cast<char>(log[position + 20] ^ 0x01);
  std::ofstream(Path("tampered.jsonl"), std::ios::binary) << log;
  const Outcome tampered = Atrium("audit verify " + Path("tampered.jsonl"));
  EXPECT_EQ(tampered.exit_code, 1);
  EXPECT_NE(tampered.out.find("chain_broken: entry 10 is broken"), std::string::npos)
      << tampered.out;

  const Outcome json_report = Atrium("report program --format json --state " + Path("state.json"));
  ASSERT_EQ(json_report.exit_code, 0) << json_report.out;
  EXPECT_EQ(nlohmann::json::parse(json_report.out)["log"]["head"], report["log"]["head"]);
  const Outcome html_report = Atrium("report program --format html --state " + Path("state.json"));
  ASSERT_EQ(html_report.exit_code, 0);
  EXPECT_NE(html_report.out.find("<h2>Fairness floors</h2>"), std::string::npos);
}

TEST_F(ProgramCliTest, StepByStepAndRefusalsLeaveTheStateFileAlone) {
  const std::string state = " --state " + Path("state.json");
  ASSERT_EQ(
      Atrium("program load " ATRIUM_EXAMPLES "/build-on-trainium.toml --at 2026-01-15" + state)
          .exit_code,
      0);
  ASSERT_EQ(Atrium("program people " ATRIUM_EXAMPLES "/demo/people.toml" + state).exit_code, 0);
  ASSERT_EQ(Atrium("program open-call 2026-individuals --at 2026-01-20" + state).exit_code, 0);
  const std::string before = Slurp(Path("state.json"));

  // A proposal file for a call that is not open: refused with its code, nothing written.
  const Outcome refused =
      Atrium("program submit " ATRIUM_EXAMPLES "/demo/proposals.toml --at 2026-02-01" + state);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.out.find("call_not_open"), std::string::npos) << refused.out;
  EXPECT_EQ(Slurp(Path("state.json")), before);

  const Outcome late = Atrium("program close-call 2026-individuals --at 2026-02-01" + state);
  EXPECT_EQ(late.exit_code, 1);
  EXPECT_NE(late.out.find("invalid_state"), std::string::npos) << late.out;
  const Outcome bad_time = Atrium("program tick --at tomorrow" + state);
  EXPECT_EQ(bad_time.exit_code, 2);
  EXPECT_EQ(Slurp(Path("state.json")), before);

  ASSERT_EQ(Atrium("program close-call 2026-individuals --at 2026-03-01" + state).exit_code, 0);
  const Outcome assign = Atrium("program assign 2026-individuals" + state);
  EXPECT_EQ(assign.exit_code, 1);  // no proposals were submitted
  EXPECT_NE(assign.out.find("invalid_state"), std::string::npos) << assign.out;
  const Outcome verify_missing = Atrium("audit verify " + Path("missing.jsonl"));
  EXPECT_EQ(verify_missing.exit_code, 3);
}

}  // namespace
