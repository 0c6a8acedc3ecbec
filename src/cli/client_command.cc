// The CLI client: one subcommand per API action, talking to a running `atrium serve`.
// Each command is a row of a table (group, name, route, positional path parameters,
// options that become body fields or query filters), so the client covers the API
// without a hand-written function per action.
//
// Shared options: --server URL (or ATRIUM_SERVER; default http://127.0.0.1:8080), the
// token from ATRIUM_TOKEN or --token-file (or ATRIUM_TOKEN_FILE), --program (or
// ATRIUM_PROGRAM; default: the service's only program), --json for the raw answer.
// A change is sent with a fresh Idempotency-Key and retried with the same key when the
// connection fails or the service answers 503, so a retry never applies it twice.
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/app_state.h"
#include "report/usage.h"
#include "server/api.h"

namespace atrium::cli {
namespace {

using nlohmann::json;

enum class FieldType { kString, kInt, kBool, kStrings, kAmount, kDuration, kJsonFile };

struct FieldSpec {
  const char* flag;   // "--chips"
  const char* field;  // body field ("chips") or, for reads, a query filter
  FieldType type = FieldType::kString;
  const char* help = "";
  bool required = false;
};

struct ClientSpec {
  const char* group;
  const char* name;
  const char* route;                    // operation id (api.h)
  std::vector<const char*> positional;  // path parameters besides {program}, in order
  std::vector<FieldSpec> fields;
  const char* help;
  bool trailing_argv = false;  // everything after "--" becomes argv
};

const std::vector<ClientSpec>& ClientSpecs() {
  using F = FieldType;
  static const std::vector<ClientSpec> specs = {
      {"token",
       "list",
       "token_list",
       {},
       {},
       "List tokens (all for an admin, one's own otherwise)"},
      {"token",
       "create",
       "token_create",
       {},
       {{"--role", "role", F::kString, "admin, officer, reviewer, researcher, student, operator"},
        {"--person", "person", F::kString, "the person the token speaks for"},
        {"--label", "label", F::kString, "a note for whoever lists tokens"}},
       "Create a token; its secret is printed once"},
      {"token", "revoke", "token_revoke", {"token_id"}, {}, "Revoke a token"},
      {"whoami", "", "whoami", {}, {}, "Show the role and person of the token in use"},

      {"programs", "list", "program_list", {}, {}, "List programs"},
      {"programs", "show", "program_show", {}, {}, "Show the program (--program)"},
      {"programs",
       "create",
       "program_create",
       {},
       {{"--file", "toml", F::kString, "program definition (TOML file)", true}},
       "Create a program from its TOML definition"},
      {"programs", "tracks", "track_list", {}, {}, "List the program's tracks"},
      {"institution",
       "add",
       "institution_add",
       {},
       {{"--file", "", F::kJsonFile, "the institution as JSON {id,name,type,country}", true}},
       "Register an institution"},
      {"person",
       "add",
       "person_add",
       {},
       {{"--file", "", F::kJsonFile, "the person as JSON {id,name,institution,role,...}", true}},
       "Register a person"},

      {"call", "list", "call_list", {}, {{"--state", "state", F::kString, "filter"}}, "List calls"},
      {"call", "show", "call_show", {"call"}, {}, "Show a call"},
      {"call", "open", "call_open", {"call"}, {}, "Open a call"},
      {"call", "close", "call_close", {"call"}, {}, "Close a call"},
      {"call", "assign", "call_assign", {"call"}, {}, "Find conflicts and assign reviewers"},
      {"decision", "show", "decision_show", {"call"}, {}, "Show a call's decision"},
      {"decision",
       "draft",
       "decision_draft",
       {"call"},
       {{"--policy", "policy", F::kString, "mip or greedy (default: the program's)"}},
       "Draft the awards"},
      {"decision", "commit", "decision_commit", {"call"}, {}, "Commit the drafted awards"},

      {"proposal",
       "list",
       "proposal_list",
       {},
       {{"--call", "call", F::kString, "filter"}, {"--status", "status", F::kString, "filter"}},
       "List the proposals you may see"},
      {"proposal", "show", "proposal_show", {"proposal"}, {}, "Show a proposal"},
      {"proposal",
       "submit",
       "proposal_submit",
       {},
       {{"--file", "", F::kJsonFile, "the proposal as JSON {id,call,title,...}", true}},
       "Submit or edit a proposal"},
      {"proposal", "withdraw", "proposal_withdraw", {"proposal"}, {}, "Withdraw a proposal"},
      {"conflict", "list", "conflict_list", {}, {}, "List conflicts of interest"},
      {"conflict",
       "declare",
       "conflict_declare",
       {},
       {{"--proposal", "proposal", F::kString, "", true},
        {"--reviewer", "reviewer", F::kString, "(staff) the reviewer; default: you"},
        {"--note", "note", F::kString, "why"}},
       "Declare a conflict of interest"},
      {"review",
       "list",
       "review_list",
       {},
       {{"--proposal", "proposal", F::kString, "filter"}},
       "List reviews"},
      {"review",
       "submit",
       "review_submit",
       {},
       {{"--proposal", "proposal", F::kString, "", true},
        {"--scores", "scores", F::kStrings, "one integer per rubric criterion", true},
        {"--comment", "comment", F::kString, ""}},
       "Submit a review"},

      {"grant",
       "list",
       "grant_list",
       {},
       {{"--status", "status", F::kString, "filter"}, {"--call", "call", F::kString, "filter"}},
       "List the grants you may see"},
      {"grant", "show", "grant_show", {"grant"}, {}, "Show a grant"},
      {"grant", "balance", "grant_balance", {"grant"}, {}, "Show a grant's balance"},
      {"grant",
       "add-member",
       "grant_member_add",
       {"grant"},
       {{"--person", "person", F::kString, "", true}},
       "Add a member to a grant"},
      {"grant",
       "allocate",
       "student_allocate",
       {"grant"},
       {{"--student", "student", F::kString, "", true},
        {"--amount", "amount", F::kAmount, "credits", true}},
       "Give a student part of a course's credits"},
      {"grant", "close", "grant_close", {"grant"}, {}, "Close a grant"},
      {"obligation",
       "list",
       "obligation_list",
       {},
       {{"--grant", "grant", F::kString, "filter"}, {"--state", "state", F::kString, "filter"}},
       "List obligations"},
      {"obligation",
       "submit",
       "obligation_submit",
       {"obligation"},
       {{"--reference", "reference", F::kString, "DOI, arXiv id or repository URL", true},
        {"--license", "license", F::kString, "OSI license id (repositories)"}},
       "Submit evidence for an obligation"},
      {"obligation",
       "review",
       "obligation_review",
       {"obligation"},
       {{"--accept", "accept", F::kBool, "accept (default: reject)"}},
       "Accept or reject an obligation's evidence"},
      {"account", "list", "account_list", {}, {}, "The program's ledger accounts"},
      {"log", "show", "log_list", {}, {}, "The public decision log"},
      {"report", "show", "report_show", {}, {}, "The transparency report (from the service)"},

      {"job",
       "submit",
       "job_submit",
       {},
       {{"--grant", "grant", F::kString, "", true},
        {"--chips", "chips", F::kInt, "", true},
        {"--walltime", "walltime_s", F::kDuration, "limit: 90s, 30m, 2h, 1d, 1h30m", true},
        {"--accelerator", "accelerator", F::kString, "(default: the cluster's default type)"},
        {"--class", "class", F::kString, "research, education or preemptible"},
        {"--name", "name", F::kString, ""}},
       "Submit a job: atrium job submit --grant G --chips N --walltime 2h -- command args",
       true},
      {"job",
       "list",
       "job_list",
       {},
       {{"--state", "state", F::kString, "filter"}, {"--grant", "grant", F::kString, "filter"}},
       "List the jobs you may see"},
      {"job", "show", "job_show", {"job"}, {}, "Show a job"},
      {"job", "cancel", "job_cancel", {"job"}, {}, "Cancel a job"},
      {"job", "finish", "job_finish", {"job"}, {}, "Report a running job's end (operator)"},
      {"cluster",
       "load",
       "cluster_load",
       {},
       {{"--file", "toml", F::kString, "cluster description (TOML file)", true}},
       "Load the cluster description"},
      {"node", "list", "node_list", {}, {{"--state", "state", F::kString, "filter"}}, "List nodes"},
      {"node", "drain", "node_drain", {"node"}, {}, "Drain a node"},
      {"node", "resume", "node_resume", {"node"}, {}, "Return a node to service"},
      {"partition", "list", "partition_list", {}, {}, "Partitions and chips busy"},
      {"usage",
       "",
       "usage_report",
       {},
       {{"--from", "from", F::kString, "start: unix seconds or 2026-11-01[T12:00Z] (30 days ago)"},
        {"--to", "to", F::kString, "end, exclusive (default: now)"},
        {"--step", "step", F::kString, "3600, 1h, 1d, 1w (default 1d)"},
        {"--group-by", "group_by", F::kString, "grant, institution, field, accelerator, partition"},
        {"--series", "series", F::kInt, "groups given a per-step series (0-50, default 8)"}},
       "Usage per step: chip-hours, credits, jobs, waits, utilisation (staff, operators)"},
  };
  return specs;
}

const server::Route* FindRoute(std::string_view name) {
  for (const server::Route& route : server::Routes()) {
    if (route.name == name) return &route;
  }
  return nullptr;
}

struct ClientOptions {
  std::string server;
  std::string token_file;
  std::string program;
  bool json = false;
  int retries = 5;
};

[[noreturn]] void Fail(int exit_code, const std::string& message) {
  fmt::print(stderr, "atrium: {}\n", message);
  throw CLI::RuntimeError(exit_code);
}

std::string EnvOr(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

std::string TokenOf(const ClientOptions& options) {
  std::string token = EnvOr("ATRIUM_TOKEN", "");
  std::string file =
      options.token_file.empty() ? EnvOr("ATRIUM_TOKEN_FILE", "") : options.token_file;
  if (!options.token_file.empty() || (token.empty() && !file.empty())) {
    std::ifstream in(file);
    if (!in) Fail(kExitUsage, "cannot read token file " + file);
    std::getline(in, token);
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  return token;
}

std::string RandomKey() {
  std::random_device device;
  return fmt::format("{:016x}{:016x}", (uint64_t{device()} << 32) | device(),
                     (uint64_t{device()} << 32) | device());
}

struct Answer {
  int status = 0;
  json body;
};

// Sends one request; retries (same Idempotency-Key) while the service is unreachable or
// answers 503.
Answer Send(const ClientOptions& options, const std::string& method, const std::string& path,
            const std::optional<json>& body) {
  httplib::Client client(options.server);
  client.set_connection_timeout(5);
  client.set_read_timeout(60);
  httplib::Headers headers;
  const std::string token = TokenOf(options);
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  if (method != "GET") headers.emplace("Idempotency-Key", RandomKey());
  const std::string text = body ? body->dump() : std::string();
  for (int attempt = 0;; ++attempt) {
    httplib::Result result = method == "GET" ? client.Get(path, headers)
                             : method == "POST"
                                 ? client.Post(path, headers, text, "application/json")
                                 : client.Delete(path, headers, text, "application/json");
    const bool retry = !result || result->status == 503;
    if (!retry || attempt >= options.retries) {
      if (!result) {
        Fail(kExitStorage, fmt::format("cannot reach {}: {}", options.server,
                                       httplib::to_string(result.error())));
      }
      Answer answer{result->status, json::parse(result->body, nullptr, false)};
      return answer;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << std::min(attempt, 4)));
  }
}

std::string ProgramOf(const ClientOptions& options) {
  if (!options.program.empty()) return options.program;
  const Answer answer = Send(options, "GET", "/v1/programs", std::nullopt);
  if (answer.status != 200 || !answer.body.contains("items") || answer.body["items"].size() != 1) {
    Fail(kExitUsage, "name the program with --program (or ATRIUM_PROGRAM)");
  }
  return answer.body["items"][0]["id"].get<std::string>();
}

Result<int64_t> ParseDuration(const std::string& text) {
  int64_t total = 0;
  int64_t number = -1;
  for (const char c : text) {
    if (c >= '0' && c <= '9') {
      number = (number < 0 ? 0 : number) * 10 + (c - '0');
      if (number > 1'000'000'000) break;
      continue;
    }
    const int64_t unit = c == 's' ? 1 : c == 'm' ? 60 : c == 'h' ? 3600 : c == 'd' ? 86400 : 0;
    if (unit == 0 || number < 0) return MakeError(ErrorCode::kInvalidArgument, "bad duration");
    total += number * unit;
    number = -1;
  }
  if (number >= 0) total += number;  // bare seconds
  if (total <= 0 || number > 1'000'000'000) {
    return MakeError(ErrorCode::kInvalidArgument, "a duration is like 90s, 30m, 2h, 1d or 1h30m");
  }
  return total;
}

std::string Cell(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "-";
  if (value.is_array() && value.size() <= 4) {
    std::string out;
    for (const json& item : value) out += (out.empty() ? "" : ",") + Cell(item);
    return out;
  }
  if (value.is_structured()) return fmt::format("[{}]", value.size());
  return value.dump();
}

// A usage report: one line per step, then one per group.
void PrintUsage(const json& body) {
  fmt::print("usage {} .. {}, step {} s, {} chips\n", body["from_utc"].get<std::string>(),
             body["to_utc"].get<std::string>(), body["step_s"].get<int64_t>(),
             body["chips_total"].get<int64_t>());
  fmt::print("{:<21} {:>14} {:>18} {:>8} {:>12} {:>11} {:>7}\n", "STEP", "CHIP_HOURS", "CREDITS",
             "JOBS", "WAIT_MEAN_S", "WAIT_P95_S", "UTIL");
  auto row = [](const std::string& label, const json& cell, const std::string& util) {
    fmt::print("{:<21} {:>14.1f} {:>18} {:>8} {:>12.0f} {:>11} {:>7}\n", label,
               cell["chip_hours"].get<double>(), cell["credits"].get<std::string>(),
               cell["jobs"].get<int64_t>(), cell["wait_mean_s"].get<double>(),
               cell["wait_p95_s"].get<int64_t>(), util);
  };
  auto percent = [](const json& cell) {
    return cell.contains("utilisation")
               ? fmt::format("{:.1f}%", 100.0 * cell["utilisation"].get<double>())
               : std::string();
  };
  for (const json& step : body["steps"]) {
    row(report::FormatUtc(step["start"].get<int64_t>()), step, percent(step));
  }
  row("total", body["totals"], percent(body["totals"]));
  if (!body["groups"].empty()) {
    fmt::print("\nby {}:\n", body["group_by"].get<std::string>());
    for (const json& group : body["groups"]) row(group["key"].get<std::string>(), group, "");
  }
}

// A list as a table of its scalar columns; an object as "key: value" lines.
void PrintHuman(const json& body) {
  if (body.is_object() && body.contains("steps") && body.contains("chips_total")) {
    PrintUsage(body);
    return;
  }
  if (body.is_object() && body.contains("items") && body["items"].is_array()) {
    const json& items = body["items"];
    if (items.empty()) {
      fmt::print("(none)\n");
      return;
    }
    std::vector<std::string> columns;
    for (const auto& [key, value] : items[0].items()) {
      if (!value.is_object() && columns.size() < 9 && key != "abstract" &&
          key != "open_source_plan" && key != "comment" && key != "explanation") {
        columns.push_back(key);
      }
    }
    std::vector<size_t> width(columns.size());
    std::vector<std::vector<std::string>> rows;
    for (const json& item : items) {
      std::vector<std::string>& row = rows.emplace_back();
      for (size_t i = 0; i < columns.size(); ++i) {
        std::string cell = item.contains(columns[i]) ? Cell(item[columns[i]]) : "";
        if (cell.size() > 40) cell = cell.substr(0, 37) + "...";
        row.push_back(std::move(cell));
      }
    }
    for (size_t i = 0; i < columns.size(); ++i) {
      width[i] = columns[i].size();
      for (const auto& row : rows) width[i] = std::max(width[i], row[i].size());
    }
    auto print_row = [&](const std::vector<std::string>& row) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) line += fmt::format("{:<{}}  ", row[i], width[i]);
      while (!line.empty() && line.back() == ' ') line.pop_back();
      fmt::print("{}\n", line);
    };
    std::vector<std::string> header;
    for (const std::string& column : columns) {
      std::string upper = column;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      header.push_back(upper);
    }
    print_row(header);
    for (const auto& row : rows) print_row(row);
    if (body.contains("next") && !body["next"].is_null()) {
      fmt::print("(more: --after {})\n", Cell(body["next"]));
    }
    return;
  }
  if (body.is_object()) {
    for (const auto& [key, value] : body.items()) fmt::print("{}: {}\n", key, Cell(value));
    return;
  }
  fmt::print("{}\n", body.dump(2));
}

// Percent-encodes a path segment or query value (httplib keeps its encoder internal).
std::string Encode(const std::string& text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' ||
        c == '@') {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", byte);
    }
  }
  return out;
}

struct Bound {
  const ClientSpec* spec;
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // flag -> text
  std::vector<std::string> argv;
  std::string after;
  std::string limit;
};

void RunClient(const ClientOptions& options, const Bound& bound) {
  const ClientSpec& spec = *bound.spec;
  const server::Route* route = FindRoute(spec.route);
  if (route == nullptr) Fail(kExitUsage, std::string("no route ") + spec.route);
  std::string path(route->path);
  auto fill = [&](const std::string& name, const std::string& value) {
    const std::string parameter = "{" + name + "}";
    if (const size_t at = path.find(parameter); at != std::string::npos) {
      path.replace(at, parameter.size(), Encode(value));
    }
  };
  if (path.find("{program}") != std::string::npos) fill("program", ProgramOf(options));
  for (size_t i = 0; i < spec.positional.size(); ++i) fill(spec.positional[i], bound.positional[i]);

  json body = json::object();
  std::string query;
  auto add_query = [&](const std::string& key, const std::string& value) {
    query += (query.empty() ? "?" : "&") + key + "=" + Encode(value);
  };
  for (const FieldSpec& field : spec.fields) {
    const auto found = bound.values.find(field.flag);
    if (found == bound.values.end()) continue;
    const std::string& text = found->second;
    if (route->read != nullptr) {
      add_query(field.field, text);
      continue;
    }
    switch (field.type) {
      case FieldType::kString:
        if (std::string(field.field) == "toml") {
          std::ifstream in(text);
          if (!in) Fail(kExitUsage, "cannot read " + text);
          std::ostringstream buffer;
          buffer << in.rdbuf();
          body[field.field] = buffer.str();
        } else {
          body[field.field] = text;
        }
        break;
      case FieldType::kAmount:
        body[field.field] = text;
        break;
      case FieldType::kInt: {
        char* end = nullptr;
        const long long number = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0')
          Fail(kExitUsage, std::string(field.flag) + " must be an integer");
        body[field.field] = number;
        break;
      }
      case FieldType::kBool:
        body[field.field] = text == "true";
        break;
      case FieldType::kStrings: {
        json list = json::array();
        std::stringstream parts(text);
        for (std::string part; std::getline(parts, part, ',');) {
          char* end = nullptr;
          const long long number = std::strtoll(part.c_str(), &end, 10);
          if (!part.empty() && *end == '\0') {
            list.push_back(number);
          } else {
            list.push_back(part);
          }
        }
        body[field.field] = list;
        break;
      }
      case FieldType::kDuration: {
        auto seconds = ParseDuration(text);
        if (!seconds.ok())
          Fail(kExitUsage, std::string(field.flag) + ": " + seconds.error().message);
        body[field.field] = *seconds;
        break;
      }
      case FieldType::kJsonFile: {
        std::ifstream in(text);
        if (!in) Fail(kExitUsage, "cannot read " + text);
        std::ostringstream buffer;
        buffer << in.rdbuf();
        json parsed = json::parse(buffer.str(), nullptr, false);
        if (parsed.is_discarded() || !parsed.is_object())
          Fail(kExitUsage, text + " is not a JSON object");
        for (auto& [key, value] : parsed.items()) body[key] = value;
        break;
      }
    }
  }
  if (spec.trailing_argv) body["argv"] = bound.argv;
  // A change outside /v1/programs/{program} that still names its program (a job).
  if (route->read == nullptr && std::string(route->path).find("{program}") == std::string::npos) {
    if (const auto* fields = core::OpFields(route->op);
        fields != nullptr &&
        std::find(fields->begin(), fields->end(), "program") != fields->end()) {
      body["program"] = ProgramOf(options);
    }
  }
  if (route->read != nullptr) {
    if (!bound.after.empty()) add_query("after", bound.after);
    if (!bound.limit.empty()) add_query("limit", bound.limit);
  }
  const Answer answer = Send(options, std::string(route->method), path + query,
                             route->read != nullptr ? std::nullopt : std::optional<json>(body));
  if (answer.status >= 400) {
    const json& error = answer.body.is_object() && answer.body.contains("error")
                            ? answer.body["error"]
                            : json::object();
    if (options.json) fmt::print("{}\n", answer.body.dump());
    Fail(
        answer.status >= 500 ? kExitStorage : kExitRefused,
        fmt::format("{} ({}): {}{}", error.value("code", "error"), answer.status,
                    error.value("message", ""),
                    error.contains("field") ? " [" + error["field"].get<std::string>() + "]" : ""));
  }
  if (options.json) {
    fmt::print("{}\n", answer.body.dump());
  } else {
    PrintHuman(answer.body);
  }
}

void AddClientOptions(CLI::App* command, ClientOptions* options) {
  command->add_option("--server", options->server, "service URL (ATRIUM_SERVER)");
  command->add_option("--token-file", options->token_file,
                      "file holding the token (ATRIUM_TOKEN, ATRIUM_TOKEN_FILE)");
  command->add_option("--program", options->program, "program id (ATRIUM_PROGRAM)");
  command->add_flag("--json", options->json, "print the service's JSON answer");
}

}  // namespace

void RegisterClientCommands(CLI::App& app) {
  auto options = std::make_shared<ClientOptions>();
  std::map<std::string, CLI::App*> groups;
  for (const ClientSpec& spec : ClientSpecs()) {
    CLI::App* parent = &app;
    const std::string group = spec.group;
    CLI::App* command = nullptr;
    if (std::string(spec.name).empty()) {
      command = app.add_subcommand(group, spec.help);
    } else {
      if (!groups.contains(group)) {
        CLI::App* existing = nullptr;
        try {
          existing = app.get_subcommand(group);
        } catch (const CLI::OptionNotFound&) {
          existing = nullptr;
        }
        groups[group] =
            existing != nullptr
                ? existing
                : app.add_subcommand(group, fmt::format("{} (from the service)", group));
        if (existing == nullptr) groups[group]->require_subcommand(1);
      }
      parent = groups[group];
      command = parent->add_subcommand(spec.name, spec.help);
    }
    auto bound = std::make_shared<Bound>();
    bound->spec = &spec;
    bound->positional.resize(spec.positional.size());
    for (size_t i = 0; i < spec.positional.size(); ++i) {
      command->add_option(spec.positional[i], bound->positional[i], spec.positional[i])->required();
    }
    for (const FieldSpec& field : spec.fields) {
      std::string* slot = &bound->values[field.flag];
      if (field.type == FieldType::kBool) {
        command->add_flag_callback(
            field.flag, [bound, flag = std::string(field.flag)] { bound->values[flag] = "true"; },
            field.help);
        bound->values.erase(field.flag);
        continue;
      }
      CLI::Option* option = command->add_option(field.flag, *slot, field.help);
      if (field.required) option->required();
    }
    const server::Route* route = FindRoute(spec.route);
    if (route != nullptr && route->read != nullptr && route->name != "usage_report") {
      command->add_option("--after", bound->after, "cursor: the previous page's next");
      command->add_option("--limit", bound->limit, "items per page (1-1000)");
    }
    if (spec.trailing_argv)
      command->add_option("argv", bound->argv, "the command to run (after --)");
    AddClientOptions(command, options.get());
    command->callback([options, bound] {
      // Options left empty were not given.
      for (auto it = bound->values.begin(); it != bound->values.end();) {
        it = it->second.empty() ? bound->values.erase(it) : std::next(it);
      }
      ClientOptions effective = *options;
      if (effective.server.empty())
        effective.server = EnvOr("ATRIUM_SERVER", "http://127.0.0.1:8080");
      if (effective.program.empty()) effective.program = EnvOr("ATRIUM_PROGRAM", "");
      RunClient(effective, *bound);
    });
  }
}

}  // namespace atrium::cli
