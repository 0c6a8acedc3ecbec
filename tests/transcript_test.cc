// Data-driven core tests: every tests/transcripts/*.jsonl file is a sequence of commands
// and the answers expected of core::AppState, applied to a fresh state (the format is in
// tests/transcripts/README.md). Answers are compared by error code and field and by the
// result fields a line lists, never by message text. A failing line names file:line, the
// command, what was expected and what came back.
//
// A second test checks that the files together cover every op: each op has a line that
// succeeds, a line that is refused, and a line for each of the seven roles.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/credits.h"
#include "base/error.h"
#include "core/app_state.h"
#include "core/ops.h"

namespace atrium {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Every op of core::AppState (OpShapes in src/core/app_state.cc).
const std::vector<std::string> kOps = {"token_create",      "token_revoke",
                                       "program_create",    "cluster_load",
                                       "institution_add",   "person_add",
                                       "call_open",         "call_close",
                                       "call_assign",       "decision_draft",
                                       "decision_commit",   "proposal_submit",
                                       "proposal_withdraw", "conflict_declare",
                                       "review_submit",     "grant_member_add",
                                       "grant_close",       "student_allocate",
                                       "obligation_submit", "obligation_review",
                                       "job_submit",        "job_cancel",
                                       "job_finish",        "node_drain",
                                       "node_resume",       "tick"};
// The dataset ops (docs/datasets.md, tests/transcripts/datasets.jsonl).
const std::vector<std::string> kDatasetOps = {"dataset_add",           "dataset_access_request",
                                              "dataset_access_decide", "dataset_agreement_accept",
                                              "dataset_access_revoke", "storage_policy_set",
                                              "storage_set",           "dataset_update"};
const std::vector<std::string> kRoles = {"admin",   "officer",  "reviewer", "researcher",
                                         "student", "operator", "public"};

std::vector<fs::path> TranscriptFiles() {
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(ATRIUM_TRANSCRIPTS_DIR)) {
    // Files named _*.jsonl are fragments, run where another file includes them.
    if (entry.is_regular_file() && entry.path().extension() == ".jsonl" &&
        entry.path().filename().string()[0] != '_') {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// What one line did, for the coverage test.
struct Seen {
  std::string op;
  std::string role;
  bool ok = false;
};

class Runner {
 public:
  explicit Runner(fs::path file) : file_(std::move(file)) {}

  // Runs the whole file; returns one message per failing line.
  std::vector<std::string> Run(std::vector<Seen>* seen) {
    std::vector<std::string> failures;
    RunFile(file_, "", seen, &failures);
    return failures;
  }

 private:
  // Runs one file's lines against the state; {"include": "_name.jsonl"} runs a fragment
  // of the same directory in place, and with {"override": {"op": {fields}}} sets those
  // fields on each of its lines (and its fragments' lines) of that op.
  void RunFile(const fs::path& file, const std::string& from, std::vector<Seen>* seen,
               std::vector<std::string>* failures, const json& overrides = json::object()) {
    std::ifstream in(file);
    if (!in) {
      failures->push_back("cannot read " + file.string() + from);
      return;
    }
    std::string text;
    int number = 0;
    while (std::getline(in, text)) {
      ++number;
      const size_t start = text.find_first_not_of(" \t\r");
      if (start == std::string::npos || text[start] == '#' || text.compare(start, 2, "//") == 0) {
        continue;
      }
      const std::string where = file.filename().string() + ":" + std::to_string(number);
      json line = json::parse(text, nullptr, false);
      if (!line.is_object()) {
        failures->push_back(where + from + ": not a JSON object: " + text);
        continue;
      }
      if (line.contains("include")) {
        json inner = overrides;
        inner.update(line.value("override", json::object()));
        RunFile(file.parent_path() / line.at("include").get<std::string>(),
                " (included from " + where + ")" + from, seen, failures, inner);
        continue;
      }
      if (const auto op = line.find("op"); op != line.end() && op->is_string()) {
        if (const auto found = overrides.find(op->get<std::string>()); found != overrides.end()) {
          line.update(*found);
        }
      }
      std::string problem;
      try {
        problem = RunLine(line, seen);
      } catch (const std::exception& e) {
        problem = std::string("the line is malformed: ") + e.what();
      }
      if (!problem.empty())
        failures->push_back(where + from + ": " + problem + "\n  line: " + text);
    }
  }

  // Empty if the line's answer is the one expected.
  std::string RunLine(json line, std::vector<Seen>* seen) {
    if (line.contains("now_us")) now_us_ = line.at("now_us").get<int64_t>();
    line.erase("now_us");
    json expect = line.value("expect", json::object());
    line.erase("expect");
    const json save = line.value("save", json::object());
    line.erase("save");

    json actual;  // {"ok": true, "result": ...} or {"error": code, "field": field}
    if (line.contains("query")) {
      actual = Query(line);
    } else {
      const core::AppAnswer answer = app_.Apply(line, now_us_);
      if (answer.status.ok()) {
        actual = {{"ok", true}, {"result", answer.result}, {"changed", answer.changed}};
      } else {
        actual = {{"error", std::string(ToString(answer.status.error().code))},
                  {"field", answer.status.error().field}};
      }
      if (seen != nullptr && line.contains("op") && line.at("op").is_string()) {
        seen->push_back({line.at("op").get<std::string>(),
                         line.contains("actor") && line.at("actor").is_object()
                             ? line.at("actor").value("role", "")
                             : "",
                         answer.status.ok()});
      }
    }
    const std::string mismatch = Compare(expect, actual);
    if (!mismatch.empty()) {
      return mismatch + "\n  expected: " + expect.dump() + "\n  actual:   " + actual.dump();
    }
    for (const auto& [name, field] : save.items()) {
      const json& result = actual.value("result", json::object());
      if (!result.contains(field.get<std::string>())) {
        return "save: the result has no " + field.get<std::string>() + ": " + actual.dump();
      }
      variables_[name] = result.at(field.get<std::string>());
    }
    return {};
  }

  // Reads of the state the ops change (the service's GET routes are not the core's).
  json Query(const json& line) {
    const std::string what = line.at("query");
    const auto not_found = [](const char* field) {
      return json{{"error", "not_found"}, {"field", field}};
    };
    if (what == "job") {
      const core::JobRecord* found = app_.jobs().Find(line.at("job").get<std::string>());
      if (found == nullptr) return not_found("job");
      const sched::Job& job = app_.scheduler()->job(found->sched_id);
      return {{"ok", true},
              {"result",
               {{"state", sched::ToString(job.state)},
                {"program", found->program},
                {"grant", found->grant},
                {"owner", found->owner}}}};
    }
    if (what == "node") {
      if (app_.cluster() == nullptr) return not_found("node");
      const auto node = app_.cluster()->FindNode(line.at("node").get<std::string>());
      if (!node) return not_found("node");
      return {{"ok", true}, {"result", {{"state", cluster::ToString(app_.node_states()[*node])}}}};
    }
    if (what == "token") {
      const core::TokenRecord* token = app_.FindToken(line.at("token_id"));
      if (token == nullptr) return not_found("token_id");
      return {{"ok", true},
              {"result",
               {{"role", core::ToString(token->role)},
                {"person", token->person},
                {"revoked", token->revoked}}}};
    }
    const program::ProgramState* program = app_.FindProgram(line.at("program"));
    if (program == nullptr) return not_found("program");
    if (what == "grant") {
      const auto found = program->grants().find(line.at("grant").get<std::string>());
      if (found == program->grants().end()) return not_found("grant");
      const program::Grant& grant = found->second;
      json members = grant.members;
      json students = json::array();
      for (const auto& [student, account] : grant.students) students.push_back(student);
      return {{"ok", true},
              {"result",
               {{"status", program::ToString(grant.status)},
                {"pi", grant.pi},
                {"awarded", grant.awarded.ToString()},
                {"balance", program->AccountBalance(grant.account).ToString()},
                {"available", program->AccountAvailable(grant.account).ToString()},
                {"members", members},
                {"students", students}}}};
    }
    if (what == "call") {
      const std::string call = line.at("call");
      if (program->FindCall(call) == nullptr) return not_found("call");
      return {{"ok", true}, {"result", {{"state", program::ToString(program->call_state(call))}}}};
    }
    if (what == "proposal") {
      const auto found = program->proposals().find(line.at("proposal").get<std::string>());
      if (found == program->proposals().end()) return not_found("proposal");
      return {{"ok", true},
              {"result",
               {{"status", program::ToString(found->second.status)},
                {"requested", found->second.requested.ToString()}}}};
    }
    if (what == "obligation") {
      const auto found = program->obligations().find(line.at("obligation").get<std::string>());
      if (found == program->obligations().end()) return not_found("obligation");
      return {{"ok", true}, {"result", {{"state", program::ToString(found->second.state)}}}};
    }
    if (what == "assignments") {
      // The proposals assigned to a reviewer, in order.
      json proposals = json::array();
      for (const program::Assignment& assignment : program->assignments()) {
        if (assignment.reviewer == line.at("reviewer")) proposals.push_back(assignment.proposal);
      }
      return {{"ok", true}, {"result", {{"proposals", proposals}}}};
    }
    throw std::invalid_argument("unknown query " + what);
  }

  // A value of the expectation: "@name" is a saved variable; {"$lt": v}, {"$gt": v},
  // {"$ne": v} compare (amounts as credits); objects match as subsets.
  json Resolve(const json& value) const {
    if (value.is_string()) {
      const std::string text = value.get<std::string>();
      if (!text.empty() && text[0] == '@') {
        const auto found = variables_.find(text.substr(1));
        if (found == variables_.end()) throw std::invalid_argument("no saved " + text);
        return found->second;
      }
    }
    return value;
  }

  static std::optional<int> Order(const json& a, const json& b) {
    if (a.is_number() && b.is_number()) {
      return a.get<double>() < b.get<double>() ? -1 : (a.get<double>() > b.get<double>() ? 1 : 0);
    }
    if (a.is_string() && b.is_string()) {
      const auto x = Credits::Parse(a.get<std::string>());
      const auto y = Credits::Parse(b.get<std::string>());
      if (x.ok() && y.ok()) return *x < *y ? -1 : (*y < *x ? 1 : 0);
    }
    return std::nullopt;
  }

  std::string Match(const std::string& path, const json& expected, const json& actual) const {
    if (expected.is_object() && expected.size() == 1 &&
        (expected.contains("$lt") || expected.contains("$gt") || expected.contains("$ne"))) {
      const std::string op = expected.begin().key();
      const json bound = Resolve(expected.begin().value());
      if (op == "$ne") return actual != bound ? "" : path + " must differ from " + bound.dump();
      const std::optional<int> order = Order(actual, bound);
      if (!order) return path + ": cannot compare " + actual.dump() + " with " + bound.dump();
      const bool good = op == "$lt" ? *order < 0 : *order > 0;
      return good ? "" : path + " = " + actual.dump() + " is not " + op + " " + bound.dump();
    }
    if (expected.is_object()) {
      if (!actual.is_object()) return path + " is not an object";
      for (const auto& [key, value] : expected.items()) {
        if (!actual.contains(key)) return path + "." + key + " is missing";
        if (std::string m = Match(path + "." + key, value, actual.at(key)); !m.empty()) return m;
      }
      return {};
    }
    const json want = Resolve(expected);
    return want == actual ? "" : path + " differs";
  }

  // expect: {} or {"ok": true, "result": {...}, "changed": bool} for success;
  // {"error": "code", "field": "name"} for a refusal (field "" when the error names none).
  std::string Compare(const json& expect, const json& actual) const {
    if (expect.contains("error")) {
      if (!actual.contains("error")) return "expected a refusal, got ok";
      if (actual.at("error") != expect.at("error")) return "a different error code";
      if (expect.contains("field") && actual.at("field") != expect.at("field")) {
        return "a different error field";
      }
      return {};
    }
    if (actual.contains("error")) return "expected ok, got a refusal";
    if (expect.contains("changed") && actual.at("changed") != expect.at("changed")) {
      return "changed differs";
    }
    if (expect.contains("result")) return Match("result", expect.at("result"), actual.at("result"));
    return {};
  }

  fs::path file_;
  core::AppState app_;
  int64_t now_us_ = 0;
  std::map<std::string, json> variables_;
};

class TranscriptTest : public testing::TestWithParam<fs::path> {};

TEST_P(TranscriptTest, AnswersAsWritten) {
  Runner runner(GetParam());
  const std::vector<std::string> failures = runner.Run(nullptr);
  for (const std::string& failure : failures) ADD_FAILURE() << failure;
}

INSTANTIATE_TEST_SUITE_P(Files, TranscriptTest, testing::ValuesIn(TranscriptFiles()),
                         [](const testing::TestParamInfo<fs::path>& param) {
                           std::string name = param.param.stem().string();
                           std::replace_if(
                               name.begin(), name.end(),
                               [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); },
                               '_');
                           return name;
                         });

TEST(TranscriptCoverage, EveryOpSucceedsIsRefusedAndMeetsEveryRole) {
  std::vector<Seen> seen;
  for (const fs::path& file : TranscriptFiles()) Runner(file).Run(&seen);
  std::vector<std::string> ops = kOps;
  ops.insert(ops.end(), kDatasetOps.begin(), kDatasetOps.end());
  for (const std::string& op : ops) {
    ASSERT_NE(core::FindOp(op), nullptr) << op << " is no longer an op";
    bool ok = false;
    bool refused = false;
    std::set<std::string> roles;
    for (const Seen& line : seen) {
      if (line.op != op) continue;
      (line.ok ? ok : refused) = true;
      roles.insert(line.role);
    }
    EXPECT_TRUE(ok) << op << ": no line succeeds";
    EXPECT_TRUE(refused) << op << ": no line is refused";
    for (const std::string& role : kRoles) {
      EXPECT_TRUE(roles.contains(role)) << op << ": no line as " << role;
    }
  }
}

}  // namespace
}  // namespace atrium
