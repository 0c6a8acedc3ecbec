// The op table's surfaces, as the `atrium` binary prints them: every op with a route is
// in OpenAPI with a typed request and answer schema and in the route table, every op
// with a CLI command lists each of its fields in --help, the checked-in docs are what the
// binary prints, and an unreachable service is reported whole with its own exit code.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/ops.h"

namespace {

using nlohmann::json;

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

Outcome Atrium(const std::string& arguments) {
  const std::string out = (std::filesystem::temp_directory_path() /
                           ("atrium-ops-surface-" + std::to_string(::getpid()) + ".txt"))
                              .string();
  const std::string command = std::string(ATRIUM_BINARY) + " " + arguments + " > " + out + " 2>&1";
  const int status = std::system(command.c_str());
  Outcome outcome{WEXITSTATUS(status), Slurp(out)};
  std::filesystem::remove(out);
  return outcome;
}

std::string Lower(std::string_view method) {
  std::string out(method);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Every property of a schema has a type (objects recursively), and none is an untyped {}.
void ExpectTyped(const json& schema, const std::string& where) {
  ASSERT_TRUE(schema.contains("type")) << where << ": " << schema.dump();
  if (schema["type"] == "object") {
    ASSERT_TRUE(schema.contains("properties")) << where;
    for (const auto& [name, property] : schema["properties"].items()) {
      ExpectTyped(property, where + "." + name);
    }
  }
  if (schema["type"] == "array") ExpectTyped(schema["items"], where + "[]");
}

TEST(OpsSurfaceTest, EveryRoutedOpIsInOpenApiTypedAndInTheRouteTable) {
  const Outcome openapi = Atrium("serve --print-openapi");
  ASSERT_EQ(openapi.exit_code, 0) << openapi.out;
  const json document = json::parse(openapi.out);
  const Outcome routes = Atrium("serve --routes-markdown");
  ASSERT_EQ(routes.exit_code, 0) << routes.out;
  size_t routed = 0;
  for (const atrium::core::OpSpec& spec : atrium::core::Ops()) {
    if (spec.route.method.empty()) continue;
    ++routed;
    const std::string path(spec.route.path);
    const std::string name(spec.name);
    ASSERT_TRUE(document["paths"].contains(path)) << name;
    const json& operation = document["paths"][path][Lower(spec.route.method)];
    ASSERT_TRUE(operation.is_object()) << name;
    EXPECT_EQ(operation["operationId"], name);
    ExpectTyped(operation["requestBody"]["content"]["application/json"]["schema"], name);
    const json& ok = operation["responses"][std::to_string(spec.route.success_status)];
    const json& answer = ok["content"]["application/json"]["schema"];
    ExpectTyped(answer, name + " answer");
    EXPECT_FALSE(answer["properties"].empty()) << name;
    // The table's fields are the body's (but path parameters and what the server draws).
    const json& body = operation["requestBody"]["content"]["application/json"]["schema"];
    for (const atrium::core::FieldSpec& field : spec.fields) {
      const std::string field_name(field.name);
      const bool in_path = path.find("{" + field_name + "}") != std::string::npos;
      if (!spec.route.body_field.empty() || field.drawn || in_path) continue;
      EXPECT_TRUE(body["properties"].contains(field_name)) << name << "." << field_name;
    }
    EXPECT_NE(routes.out.find("| " + name + " |"), std::string::npos) << name;
  }
  EXPECT_GE(routed, 25u);
  // A bounded field carries its bounds.
  const json& chips = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
                              ["application/json"]["schema"]["properties"]["chips"];
  EXPECT_EQ(chips["type"], "integer");
  EXPECT_EQ(chips["minimum"], 1);
  EXPECT_EQ(chips["maximum"], 1'000'000);
}

std::string Flag(const atrium::core::FieldSpec& field) {
  if (field.from_file) return "--file";
  std::string name(field.name);
  if (field.kind == atrium::core::FieldKind::kInt && name.ends_with("_s")) {
    name.resize(name.size() - 2);
  }
  for (char& c : name) c = c == '_' ? '-' : c;
  return "--" + name;
}

TEST(OpsSurfaceTest, TheClientsHelpListsEveryField) {
  size_t commands = 0;
  for (const atrium::core::OpSpec& spec : atrium::core::Ops()) {
    if (spec.cli_group.empty() || spec.route.method.empty()) continue;
    ++commands;
    const Outcome help =
        Atrium(std::string(spec.cli_group) + " " + std::string(spec.cli_name) + " --help");
    ASSERT_EQ(help.exit_code, 0) << spec.name << help.out;
    EXPECT_NE(help.out.find(std::string(spec.name)), std::string::npos) << help.out;
    for (const atrium::core::FieldSpec& field : spec.fields) {
      if (field.drawn || field.name == "program" || field.name == "argv") continue;
      const bool positional = std::find(spec.cli_positional.begin(), spec.cli_positional.end(),
                                        field.name) != spec.cli_positional.end();
      if (positional) {
        EXPECT_NE(help.out.find(std::string(field.name)), std::string::npos) << spec.name;
        continue;
      }
      if (field.kind == atrium::core::FieldKind::kObject) {
        for (const atrium::core::FieldSpec& inner : field.fields) {
          EXPECT_NE(help.out.find(Flag(inner)), std::string::npos)
              << spec.name << " lacks " << Flag(inner) << "\n"
              << help.out;
        }
        continue;
      }
      EXPECT_NE(help.out.find(Flag(field)), std::string::npos)
          << spec.name << " lacks " << Flag(field) << "\n"
          << help.out;
    }
  }
  EXPECT_GE(commands, 20u);
  // A field's bounds are in its help line.
  const Outcome job = Atrium("job submit --help");
  EXPECT_NE(job.out.find("integer 1..1000000"), std::string::npos) << job.out;
  EXPECT_NE(job.out.find("required unless `lab`"), std::string::npos) << job.out;
}

TEST(OpsSurfaceTest, TheCheckedInDocsAreWhatTheBinaryPrints) {
  EXPECT_EQ(Atrium("serve --print-openapi").out, Slurp(ATRIUM_SOURCE_DIR "/docs/openapi.json"));
  EXPECT_EQ(Atrium("serve --routes-markdown").out, Slurp(ATRIUM_SOURCE_DIR "/docs/api-roles.md"));
  EXPECT_EQ(Atrium("api ops").out, Slurp(ATRIUM_SOURCE_DIR "/docs/api-ops.md"));
}

TEST(OpsSurfaceTest, AnUnreachableServiceIsReportedWhole) {
  // Port 9 (discard) on loopback: nothing listens in the test environment.
  const Outcome refused =
      Atrium("programs list --server http://127.0.0.1:9 --token-file /dev/null");
  EXPECT_EQ(refused.exit_code, 4) << refused.out;
  EXPECT_NE(refused.out.find("cannot reach the service at http://127.0.0.1:9 after 6 attempts: "
                             "the connection failed (refused, or no route to the host)"),
            std::string::npos)
      << refused.out;
}

}  // namespace
