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
             Path("log.jsonl") + " --data " + Path("demo-data"));
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

  const Outcome json_report = Atrium("report program --format json --data " + Path("demo-data"));
  ASSERT_EQ(json_report.exit_code, 0) << json_report.out;
  EXPECT_EQ(nlohmann::json::parse(json_report.out)["log"]["head"], report["log"]["head"]);
  const Outcome html_report = Atrium("report program --format html --data " + Path("demo-data"));
  ASSERT_EQ(html_report.exit_code, 0);
  EXPECT_NE(html_report.out.find("<h2>Fairness floors</h2>"), std::string::npos);
}

TEST_F(ProgramCliTest, StepByStepAndRefusalsLeaveTheStateAlone) {
  const std::string state = " --data " + Path("data");
  // The state as the report shows it (the journal's whole effect on the program).
  const auto snapshot = [&] { return Atrium("program status --format json" + state).out; };
  ASSERT_EQ(
      Atrium("program load " ATRIUM_EXAMPLES "/build-on-trainium.toml --at 2026-01-15" + state)
          .exit_code,
      0);
  ASSERT_EQ(Atrium("program people " ATRIUM_EXAMPLES "/demo/people.toml" + state).exit_code, 0);
  ASSERT_EQ(Atrium("program open-call 2026-individuals --at 2026-01-20" + state).exit_code, 0);
  const std::string before = snapshot();

  // A proposal file for a call that is not open: refused with its code, nothing written.
  const Outcome refused =
      Atrium("program submit " ATRIUM_EXAMPLES "/demo/proposals.toml --at 2026-02-01" + state);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.out.find("call_not_open"), std::string::npos) << refused.out;
  EXPECT_EQ(snapshot(), before);

  const Outcome late = Atrium("program close-call 2026-individuals --at 2026-02-01" + state);
  EXPECT_EQ(late.exit_code, 1);
  EXPECT_NE(late.out.find("invalid_state"), std::string::npos) << late.out;
  const Outcome bad_time = Atrium("program tick --at tomorrow" + state);
  EXPECT_EQ(bad_time.exit_code, 2);
  EXPECT_EQ(snapshot(), before);

  ASSERT_EQ(Atrium("program close-call 2026-individuals --at 2026-03-01" + state).exit_code, 0);
  const Outcome assign = Atrium("program assign 2026-individuals" + state);
  EXPECT_EQ(assign.exit_code, 1);  // no proposals were submitted
  EXPECT_NE(assign.out.find("invalid_state"), std::string::npos) << assign.out;
  const Outcome verify_missing = Atrium("audit verify " + Path("missing.jsonl"));
  EXPECT_EQ(verify_missing.exit_code, 3);

  // The ops answer with the service's op names, and the journal survives the process.
  const Outcome opened = Atrium("program open-call 2026-partners --at 2026-03-02" + state);
  EXPECT_EQ(opened.exit_code, 1) << opened.out;  // past its window
  const Outcome tick = Atrium("program tick --at 2026-03-03" + state);
  ASSERT_EQ(tick.exit_code, 0) << tick.out;
  EXPECT_NE(tick.out.find("tick: changed="), std::string::npos) << tick.out;
}

TEST_F(ProgramCliTest, OldStateFilesAreRefusedWithTheMigration) {
  std::ofstream(Path("old.json")) << R"({"version": 1, "commands": []})";
  const Outcome old = Atrium("program tick --state " + Path("old.json"));
  EXPECT_EQ(old.exit_code, 3);
  EXPECT_NE(old.out.find("older `atrium program`"), std::string::npos) << old.out;
  EXPECT_NE(old.out.find("atrium program load"), std::string::npos) << old.out;
  const Outcome report = Atrium("report program --state " + Path("old.json"));
  EXPECT_EQ(report.exit_code, 3);
  EXPECT_EQ(Slurp(Path("old.json")), R"({"version": 1, "commands": []})");
}

TEST_F(ProgramCliTest, ADataFolderHasOneWriter) {
  const std::string data = " --data " + Path("data");
  ASSERT_EQ(Atrium("program load " ATRIUM_EXAMPLES "/build-on-trainium.toml --at 2026-01-15" + data)
                .exit_code,
            0);
  // The same program twice: the op refuses it, nothing changes.
  const Outcome again =
      Atrium("program load " ATRIUM_EXAMPLES "/build-on-trainium.toml --at 2026-01-15" + data);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.out.find("already_exists"), std::string::npos) << again.out;
  // A review as a reviewer the program does not know: refused by the same checks as the
  // service's (not_found for a proposal not assigned to them).
  const Outcome review = Atrium("program review 0000-0002-1825-0097 NOPE --scores 1,2,3" + data);
  EXPECT_EQ(review.exit_code, 1);
  EXPECT_NE(review.out.find("not_found"), std::string::npos) << review.out;
}

TEST_F(ProgramCliTest, CsvImportIsAllOrNothingAndNamesTheLine) {
  const std::string data = " --data " + Path("data");
  ASSERT_EQ(Atrium("program load " ATRIUM_EXAMPLES "/build-on-trainium.toml --at 2026-01-15" + data)
                .exit_code,
            0);
  std::ofstream(Path("institutions.csv")) << "id,name,type,country\n"
                                          << "eth,\"ETH Zurich, Switzerland\",university,CH\n"
                                          << "uon,University of Nairobi,university,KE\r\n";
  const Outcome institutions = Atrium("import institutions " + Path("institutions.csv") + data);
  ASSERT_EQ(institutions.exit_code, 0) << institutions.out;
  EXPECT_NE(institutions.out.find("imported 2 institutions and 0 people"), std::string::npos)
      << institutions.out;

  // Line 4 names an institution nobody registered: the file is refused whole.
  std::ofstream(Path("people.csv"))
      << "id,name,institution,role,expertise,reviewer\n"
      << "0000-0002-1825-0097,Ada Lovelace,eth,faculty,compilers;systems,yes\n"
      << "0000-0001-5109-3700,\"Grace\nHopper\",uon,faculty,,no\n"
      << "0000-0002-1694-233X,Bob,nowhere,postdoc,,false\n";
  const Outcome bad = Atrium("import people " + Path("people.csv") + data);
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("people.csv:5: column institution: not_found"), std::string::npos)
      << bad.out;  // the quoted newline in line 3 makes Bob's row start on line 5

  // A row with too many fields: a usage error with its line, before anything is sent.
  std::ofstream(Path("ragged.csv")) << "id,name,institution,role\n"
                                    << "0000-0002-1825-0097,Ada,eth,faculty,extra\n";
  const Outcome ragged = Atrium("import reviewers " + Path("ragged.csv") + data);
  EXPECT_EQ(ragged.exit_code, 2) << ragged.out;
  EXPECT_NE(ragged.out.find("line 2: 5 fields, the header has 4"), std::string::npos) << ragged.out;
  std::ofstream(Path("columns.csv")) << "id,name,colour\n";
  const Outcome columns = Atrium("import institutions " + Path("columns.csv") + data);
  EXPECT_EQ(columns.exit_code, 2) << columns.out;
  EXPECT_NE(columns.out.find("column \"colour\" is not a field"), std::string::npos) << columns.out;

  // Nothing of the refused file was added: its good rows import now, once.
  std::ofstream(Path("people-fixed.csv"))
      << "id,name,institution,role,expertise,reviewer\n"
      << "0000-0002-1825-0097,Ada Lovelace,eth,faculty,compilers;systems,yes\n"
      << "0000-0001-5109-3700,\"Grace\nHopper\",uon,faculty,,no\n";
  const Outcome fixed = Atrium("import people " + Path("people-fixed.csv") + data);
  ASSERT_EQ(fixed.exit_code, 0) << fixed.out;
  EXPECT_NE(fixed.out.find("imported 0 institutions and 2 people"), std::string::npos);
  const Outcome again = Atrium("import institutions " + Path("institutions.csv") + data);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.out.find("institutions.csv:2: column id: already_exists"), std::string::npos)
      << again.out;
}

}  // namespace
