// The op table's checks as the core applies them: every refusal kind answers with its
// ErrorCode and the `field` the API documents, changes nothing, and the import op is all
// or nothing.
#include "core/ops.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace atrium::core {
namespace {

using nlohmann::json;

constexpr int64_t kNow = 1'767'225'600'000'000;  // 2026-01-01

std::string ReadExample(const std::string& name) {
  std::ifstream in(std::string(ATRIUM_EXAMPLES_DIR) + "/" + name);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

json Admin() { return {{"role", "admin"}, {"token", "t-admin"}}; }

class OpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const AppAnswer created = app_.Apply({{"op", "program_create"},
                                          {"actor", Admin()},
                                          {"toml", ReadExample("build-on-trainium.toml")}},
                                         kNow);
    ASSERT_TRUE(created.status.ok()) << created.status.error().ToString();
    program_ = created.result["program"].get<std::string>();
  }

  // Applies and expects a refusal with this code and field, and no change.
  void ExpectRefused(json command, ErrorCode code, const std::string& field) {
    if (!command.contains("actor")) command["actor"] = Admin();
    const size_t before = app_.FindProgram(program_)->institutions().size() +
                          app_.FindProgram(program_)->people().size();
    const AppAnswer answer = app_.Apply(command, kNow);
    ASSERT_FALSE(answer.status.ok()) << command.dump();
    EXPECT_EQ(ToString(answer.status.error().code), ToString(code))
        << command.dump() << ": " << answer.status.error().ToString();
    EXPECT_EQ(answer.status.error().field, field) << command.dump();
    EXPECT_FALSE(answer.changed);
    EXPECT_EQ(app_.FindProgram(program_)->institutions().size() +
                  app_.FindProgram(program_)->people().size(),
              before);
  }

  json Institution(const std::string& id) {
    return {{"id", id}, {"name", "Uni " + id}, {"type", "university"}, {"country", "DE"}};
  }

  AppState app_;
  std::string program_;
};

TEST_F(OpsTest, EveryKindOfBadFieldHasItsCodeAndField) {
  const json base = {{"op", "institution_add"}, {"program", program_}};
  json command = base;
  command["institution"] = Institution("u1");
  command["colour"] = "blue";
  ExpectRefused(command, ErrorCode::kUnknownField, "colour");

  command = base;
  ExpectRefused(command, ErrorCode::kInvalidArgument, "institution");  // missing

  command = base;
  command["institution"] = Institution("u1");
  command["institution"]["motto"] = "x";
  ExpectRefused(command, ErrorCode::kUnknownField, "institution.motto");

  command["institution"] = Institution("u1");
  command["institution"].erase("name");
  ExpectRefused(command, ErrorCode::kInvalidArgument, "institution.name");

  command["institution"] = Institution("u1");
  command["institution"]["country"] = "DEU";
  ExpectRefused(command, ErrorCode::kTooLong, "institution.country");

  command["institution"] = Institution("bad id!");
  ExpectRefused(command, ErrorCode::kInvalidId, "institution.id");

  command["institution"] = Institution("u1");
  command["institution"]["name"] = 7;
  ExpectRefused(command, ErrorCode::kInvalidArgument, "institution.name");

  command["institution"] = "u1";
  ExpectRefused(command, ErrorCode::kInvalidArgument, "institution");

  // Integers: type and range.
  json proposal = {{"op", "proposal_submit"},
                   {"program", program_},
                   {"proposal",
                    {{"id", "P1"},
                     {"call", "2026-individuals"},
                     {"pi", "0000-0002-1825-0097"},
                     {"title", "t"},
                     {"abstract", "a"},
                     {"duration_months", 121}}}};
  ExpectRefused(proposal, ErrorCode::kOutOfRange, "proposal.duration_months");
  proposal["proposal"]["duration_months"] = "12";
  ExpectRefused(proposal, ErrorCode::kInvalidArgument, "proposal.duration_months");
  proposal["proposal"]["duration_months"] = 12;
  proposal["proposal"]["chip_hours"] = json::array({{{"accelerator", "trn1"}, {"chip_hours", 0}}});
  ExpectRefused(proposal, ErrorCode::kOutOfRange, "proposal.chip_hours.chip_hours");
  proposal["proposal"]["chip_hours"] = json::array();
  proposal["proposal"]["requested"] = "-5";
  ExpectRefused(proposal, ErrorCode::kInvalidArgument, "proposal.requested");

  // Enums and lists.
  ExpectRefused({{"op", "token_create"},
                 {"token_id", "t1"},
                 {"role", "emperor"},
                 {"salt", std::string(32, 'a')},
                 {"hash", std::string(64, 'b')}},
                ErrorCode::kInvalidArgument, "role");
  ExpectRefused({{"op", "review_submit"},
                 {"actor", {{"role", "reviewer"}, {"person", "0000-0002-1825-0097"}}},
                 {"program", program_},
                 {"proposal", "P1"},
                 {"scores", json::array({1, "two"})}},
                ErrorCode::kInvalidArgument, "scores");
  ExpectRefused({{"op", "no_such_op"}}, ErrorCode::kInvalidArgument, "op");
}

TEST_F(OpsTest, AnEmptyOptionalIdIsAbsent) {
  // The service fills "person": "" for service tokens; an optional id given empty is absent.
  const AppAnswer answer = app_.Apply({{"op", "token_create"},
                                       {"actor", Admin()},
                                       {"token_id", "t-operator"},
                                       {"role", "operator"},
                                       {"person", ""},
                                       {"salt", std::string(32, 'a')},
                                       {"hash", std::string(64, 'b')}},
                                      kNow);
  ASSERT_TRUE(answer.status.ok()) << answer.status.error().ToString();
  EXPECT_EQ(answer.result["person"], "");
  // A required one is not.
  ExpectRefused({{"op", "token_revoke"}, {"token_id", ""}}, ErrorCode::kInvalidId, "token_id");
}

TEST_F(OpsTest, RolesAreTheFirstCheck) {
  // A researcher may not open a call, even a call that does not exist.
  ExpectRefused({{"op", "call_open"},
                 {"actor", {{"role", "researcher"}, {"person", "0000-0002-1825-0097"}}},
                 {"program", program_},
                 {"call", "nope"}},
                ErrorCode::kForbidden, "");
  // The role check comes before the fields' (a student learns nothing of the shape).
  ExpectRefused({{"op", "cluster_load"}, {"actor", {{"role", "student"}}}}, ErrorCode::kForbidden,
                "");
}

TEST_F(OpsTest, PeopleImportIsAllOrNothing) {
  json people = json::array();
  people.push_back({{"id", "0000-0002-1825-0097"},
                    {"name", "Ada"},
                    {"institution", "u1"},
                    {"role", "faculty"},
                    {"reviewer", true}});
  people.push_back({{"id", "0000-0001-5109-3700"},
                    {"name", "Bob"},
                    {"institution", "nowhere"},
                    {"role", "postdoc"}});
  json command = {{"op", "people_import"},
                  {"program", program_},
                  {"institutions", json::array({Institution("u1"), Institution("u2")})},
                  {"people", people}};
  // The second person's institution is unknown: nothing is added, the row is named.
  ExpectRefused(command, ErrorCode::kNotFound, "people[1].institution");
  EXPECT_FALSE(app_.FindProgram(program_)->institutions().contains("u1"));

  // A duplicate within the file is named by its row too.
  command["people"][1]["institution"] = "u2";
  command["institutions"][1]["id"] = "u1";
  ExpectRefused(command, ErrorCode::kAlreadyExists, "institutions[1].id");

  command["institutions"][1]["id"] = "u2";
  command["actor"] = Admin();
  const AppAnswer answer = app_.Apply(command, kNow);
  ASSERT_TRUE(answer.status.ok()) << answer.status.error().ToString();
  EXPECT_EQ(answer.result, (json{{"institutions", 2}, {"people", 2}}));
  EXPECT_TRUE(app_.FindProgram(program_)->people().at("0000-0002-1825-0097").reviewer);
  // Again: every row exists now.
  ExpectRefused(command, ErrorCode::kAlreadyExists, "institutions[0].id");
}

TEST(OpTableTest, TheApiSurfaceIsTheTable) {
  // The ops the API and the CLI promise; adding or removing one is a deliberate change.
  // One op per line, so additions merge cleanly.
  // clang-format off
  const std::vector<std::string> expected = {"token_create",
                                             "token_revoke",
                                             "program_create",
                                             "cluster_load",
                                             "tick",
                                             "job_submit",
                                             "job_cancel",
                                             "job_finish",
                                             "job_run_started",
                                             "job_run_ended",
                                             "node_drain",
                                             "node_resume",
                                             "institution_add",
                                             "person_add",
                                             "people_import",
                                             "call_open",
                                             "call_close",
                                             "call_assign",
                                             "decision_draft",
                                             "decision_commit",
                                             "decision_override",
                                             "appeal_file",
                                             "appeal_decide",
                                             "proposal_submit",
                                             "proposal_withdraw",
                                             "conflict_declare",
                                             "review_submit",
                                             "reviews_simulate",
                                             "grant_member_add",
                                             "student_allocate",
                                             "grant_close",
                                             "usage_record",
                                             "obligation_submit",
                                             "obligation_review",
                                             "reservation_book",
                                             "reservation_cancel",
                                             "maintenance_book",
                                             "maintenance_cancel",
                                             "training_add",
                                             "training_enrol",
                                             "training_complete",
                                             "training_withdraw",
                                             "dataset_add",
                                             "dataset_access_request",
                                             "dataset_access_decide",
                                             "dataset_agreement_accept",
                                             "dataset_access_revoke",
                                             "storage_set",
                                             "storage_policy_set",
                                             "dataset_update"};
  // clang-format on
  std::vector<std::string> names;
  for (const OpSpec& spec : Ops()) {
    names.emplace_back(spec.name);
    EXPECT_NE(spec.handler, nullptr) << spec.name;
    EXPECT_FALSE(spec.summary.empty()) << spec.name;
    EXPECT_NE(spec.roles, 0u) << spec.name;
    EXPECT_FALSE(spec.result.empty()) << spec.name;
    // Every path parameter is a field of the op.
    for (size_t open = spec.route.path.find('{'); open != std::string_view::npos;
         open = spec.route.path.find('{', open + 1)) {
      const std::string_view name =
          spec.route.path.substr(open + 1, spec.route.path.find('}', open) - open - 1);
      const auto* fields = OpFieldSpecs(spec.name);
      EXPECT_TRUE(std::any_of(fields->begin(), fields->end(),
                              [&](const FieldSpec& field) { return field.name == name; }))
          << spec.name << " has no field for {" << name << "}";
    }
  }
  EXPECT_EQ(names, expected);
}

}  // namespace
}  // namespace atrium::core
