// The CLI client: one subcommand per API action, talking to a running `atrium serve`.
// Changes come from the op table (core/ops.h): every field of an op is a flag (nested
// objects' fields too: `atrium person add --id ... --name ...`), typed, bounded and
// described in --help from the same declaration the service validates with. Reads are a
// small table here (group, name, route, positional path parameters, query filters).
//
// Human output prints times as ISO-8601 UTC, durations as 1h30m, amounts as the
// decimals the API sends, nested values inline; --json prints the service's answer.
// Exit codes: 0 ok, 1 refused (the code says why), 2 usage, 3 the service failed (5xx),
// 4 the service could not be reached (after retries).
//
// Shared options: --server URL (or ATRIUM_SERVER; default http://127.0.0.1:8080), the
// token from ATRIUM_TOKEN or --token-file (or ATRIUM_TOKEN_FILE), --program (or
// ATRIUM_PROGRAM; default: the service's only program), --json for the raw answer.
// A change is sent with a fresh Idempotency-Key and retried with the same key when the
// connection fails or the service answers 503, so a retry never applies it twice.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
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

#include "cli/client.h"
#include "cli/commands.h"
#include "core/app_state.h"
#include "core/ops.h"
#include "report/usage.h"
#include "server/api.h"

namespace atrium::cli {
namespace {

using nlohmann::json;

// A read's query filter.
struct QuerySpec {
  const char* flag;   // "--state"
  const char* field;  // the query parameter
  const char* help = "";
  bool integer = false;
};

// One client command: a read (query filters) or a change (an op of the table).
struct ClientSpec {
  std::string group;
  std::string name;
  std::string route;                    // operation id (api.h)
  std::vector<std::string> positional;  // path parameters besides {program}, in order
  std::vector<QuerySpec> query;
  std::string help;
  const core::OpSpec* op = nullptr;
};

std::vector<ClientSpec> ReadSpecs() {
  return {
      {"token",
       "list",
       "token_list",
       {},
       {},
       "List tokens (all for an admin, one's own otherwise)"},
      {"whoami", "", "whoami", {}, {}, "Show the role and person of the token in use"},
      {"programs", "list", "program_list", {}, {}, "List programs"},
      {"programs", "show", "program_show", {}, {}, "Show the program (--program)"},
      {"programs", "tracks", "track_list", {}, {}, "List the program's tracks"},
      {"call", "list", "call_list", {}, {{"--state", "state", "filter"}}, "List calls"},
      {"call", "show", "call_show", {"call"}, {}, "Show a call"},
      {"decision", "show", "decision_show", {"call"}, {}, "Show a call's decision"},
      {"decision",
       "overrides",
       "override_list",
       {"call"},
       {},
       "The sponsor's overrides of a call (public once its decision is committed)"},
      {"appeal",
       "list",
       "appeal_list",
       {"call"},
       {{"--state", "state", "filter: filed, upheld, rejected"}},
       "List the appeals of a call"},
      {"appeal", "show", "appeal_show", {"appeal"}, {}, "Show an appeal"},
      {"proposal",
       "list",
       "proposal_list",
       {},
       {{"--call", "call", "filter"}, {"--status", "status", "filter"}},
       "List the proposals you may see"},
      {"proposal", "show", "proposal_show", {"proposal"}, {}, "Show a proposal"},
      {"conflict", "list", "conflict_list", {}, {}, "List conflicts of interest"},
      {"review", "list", "review_list", {}, {{"--proposal", "proposal", "filter"}}, "List reviews"},
      {"grant",
       "list",
       "grant_list",
       {},
       {{"--status", "status", "filter"}, {"--call", "call", "filter"}},
       "List the grants you may see"},
      {"grant", "show", "grant_show", {"grant"}, {}, "Show a grant"},
      {"grant", "balance", "grant_balance", {"grant"}, {}, "Show a grant's balance"},
      {"obligation",
       "list",
       "obligation_list",
       {},
       {{"--grant", "grant", "filter"}, {"--state", "state", "filter"}},
       "List obligations"},
      {"account", "list", "account_list", {}, {}, "The program's ledger accounts"},
      {"log", "show", "log_list", {}, {}, "The public decision log"},
      {"report", "show", "report_show", {}, {}, "The transparency report (from the service)"},
      {"job",
       "list",
       "job_list",
       {},
       {{"--state", "state", "filter"}, {"--grant", "grant", "filter"}},
       "List the jobs you may see"},
      {"job", "show", "job_show", {"job"}, {}, "Show a job"},
      {"node", "list", "node_list", {}, {{"--state", "state", "filter"}}, "List nodes"},
      {"partition", "list", "partition_list", {}, {}, "Partitions and chips busy"},
      {"usage",
       "",
       "usage_report",
       {},
       {{"--from", "from", "start: unix seconds or 2026-11-01[T12:00Z] (30 days ago)"},
        {"--to", "to", "end, exclusive (default: now)"},
        {"--step", "step", "3600, 1h, 1d, 1w (default 1d)"},
        {"--group-by", "group_by", "grant, institution, field, accelerator, partition"},
        {"--series", "series", "groups given a per-step series (0-50, default 8)", true}},
       "Usage per step: chip-hours, credits, jobs, waits, utilisation (staff, operators)"},
  };
}

// Every client command: the reads above, then one per op of the table that has a route
// and a CLI name.
const std::vector<ClientSpec>& ClientSpecs() {
  static const std::vector<ClientSpec> specs = [] {
    std::vector<ClientSpec> all = ReadSpecs();
    for (const core::OpSpec& op : core::Ops()) {
      if (op.route.method.empty() || op.cli_group.empty()) continue;
      ClientSpec spec{.group = std::string(op.cli_group),
                      .name = std::string(op.cli_name),
                      .route = std::string(op.name),
                      .help = std::string(op.summary),
                      .op = &op};
      for (const std::string_view name : op.cli_positional) spec.positional.emplace_back(name);
      all.push_back(std::move(spec));
    }
    return all;
  }();
  return specs;
}

// A field's flag: "--walltime" for walltime_s (it takes durations), "--file" for a
// field given as a file's text, else the name with dashes.
std::string FlagOf(const core::FieldSpec& field) {
  if (field.from_file) return "--file";
  std::string name(field.name);
  if (field.kind == core::FieldKind::kInt && name.ends_with("_s")) name.resize(name.size() - 2);
  for (char& c : name) c = c == '_' ? '-' : c;
  return "--" + name;
}

// The flags a change takes: (flag, field path, spec). A body object's fields are flags
// of their own ("--id" for proposal.id), after the op's own fields.
struct FlagSpec {
  std::string flag;
  std::string object;  // the enclosing object field, or empty
  const core::FieldSpec* field;
};

std::vector<FlagSpec> FlagsOf(const ClientSpec& spec) {
  std::vector<FlagSpec> flags;
  if (spec.op == nullptr) return flags;
  for (const core::FieldSpec& field : spec.op->fields) {
    if (field.drawn || field.name == "program") continue;
    if (std::find(spec.positional.begin(), spec.positional.end(), field.name) !=
        spec.positional.end()) {
      continue;
    }
    if (field.name == "argv") continue;  // after "--"
    if (field.kind == core::FieldKind::kObject) {
      for (const core::FieldSpec& inner : field.fields) {
        flags.push_back({FlagOf(inner), std::string(field.name), &inner});
      }
      continue;
    }
    flags.push_back({FlagOf(field), "", &field});
  }
  return flags;
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

std::string EnvOr(const char* name, const std::string& fallback) {
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

// What went wrong, as a sentence (httplib names it with one word, "Connection").
std::string DescribeError(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
      return "the connection failed (refused, or no route to the host)";
    case httplib::Error::ConnectionTimeout:
      return "the connection timed out";
    case httplib::Error::Read:
      return "the connection closed before the answer was read";
    case httplib::Error::Write:
      return "the connection closed while the request was sent";
    case httplib::Error::BindIPAddress:
      return "could not bind the local address";
    case httplib::Error::SSLConnection:
    case httplib::Error::SSLLoadingCerts:
    case httplib::Error::SSLServerVerification:
      return "TLS failed (" + httplib::to_string(error) + ")";
    default:
      return "request failed (" + httplib::to_string(error) + ")";
  }
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
        Fail(kExitUnreachable,
             fmt::format("cannot reach the service at {} after {} attempts: {} (is `atrium "
                         "serve` running there? set --server or ATRIUM_SERVER)",
                         options.server, attempt + 1, DescribeError(result.error())));
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

std::string Cell(const json& value);

// "1h30m" for a count of seconds.
std::string FormatDuration(int64_t seconds) {
  if (seconds <= 0) return fmt::format("{}s", seconds);
  std::string out;
  for (const auto& [unit, size] : {std::pair{"d", 86'400}, {"h", 3'600}, {"m", 60}, {"s", 1}}) {
    if (seconds >= size) {
      out += fmt::format("{}{}", seconds / size, unit);
      seconds %= size;
    }
  }
  return out;
}

// A field's value as people read it: *_us times as ISO-8601 UTC, *_s durations as 1h30m
// (or, from 10^9 s on, times: no duration in Atrium lasts 31 years, and the scheduler's
// started_s / ended_s are times), a negative time or duration (the "not yet" of -1) as
// "-", nested objects as k=v lists, lists joined by commas.
std::string CellOf(const std::string& key, const json& value) {
  if (value.is_number_integer()) {
    const auto number = value.get<int64_t>();
    if (key.ends_with("_us")) {
      if (number <= 0) return "-";
      std::string text = report::FormatUtc(number / 1'000'000);
      if (text.ends_with("T00:00:00Z")) text.resize(text.size() - 10);
      return text;
    }
    if (key.ends_with("_s") && key != "step_s") {
      if (number < 0) return "-";
      if (number >= 1'000'000'000) return report::FormatUtc(number);
      return FormatDuration(number);
    }
  }
  return Cell(value);
}

std::string Cell(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "-";
  if (value.is_array()) {
    std::string out;
    for (const json& item : value)
      out += (out.empty() ? "" : item.is_object() ? "; " : ",") + Cell(item);
    return out.empty() ? "-" : out;
  }
  if (value.is_object()) {
    std::string out;
    for (const auto& [key, item] : value.items()) {
      out += (out.empty() ? "" : " ") + key + "=" + CellOf(key, item);
    }
    return out;
  }
  return value.dump();
}

// Column headers: "CLOSES" for closes_us (the cell is a date), upper case.
std::string Header(const std::string& key) {
  std::string name = key;
  if (name.ends_with("_us")) name.resize(name.size() - 3);
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

// An object as "key: value" lines; nested objects and lists of objects indented below.
void PrintObject(const json& object, int indent) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  for (const auto& [key, value] : object.items()) {
    const bool objects =
        value.is_array() && !value.empty() &&
        std::all_of(value.begin(), value.end(), [](const json& item) { return item.is_object(); });
    if (value.is_object() && !value.empty()) {
      fmt::print("{}{}:\n", pad, key);
      PrintObject(value, indent + 2);
    } else if (objects) {
      fmt::print("{}{}: ({})\n", pad, key, value.size());
      for (const json& item : value) fmt::print("{}  - {}\n", pad, Cell(item));
    } else {
      fmt::print("{}{}: {}\n", pad, key, CellOf(key, value));
    }
  }
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
      if (columns.size() < 9 && key != "abstract" && key != "open_source_plan" &&
          key != "comment" && key != "explanation") {
        columns.push_back(key);
      }
    }
    std::vector<size_t> width(columns.size());
    std::vector<std::vector<std::string>> rows;
    for (const json& item : items) {
      std::vector<std::string>& row = rows.emplace_back();
      for (size_t i = 0; i < columns.size(); ++i) {
        std::string cell = item.contains(columns[i]) ? CellOf(columns[i], item[columns[i]]) : "";
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
    header.reserve(columns.size());
    for (const std::string& column : columns) header.push_back(Header(column));
    print_row(header);
    for (const auto& row : rows) print_row(row);
    if (body.contains("next") && !body["next"].is_null()) {
      fmt::print("(more: --after {})\n", Cell(body["next"]));
    }
    return;
  }
  if (body.is_object()) {
    PrintObject(body, 0);
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
  std::string object_file;  // --file: a body object as JSON
};

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  if (!in) Fail(kExitUsage, "cannot read " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> SplitComma(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, ',');) parts.push_back(part);
  return parts;
}

int64_t ParseInteger(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long long number = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0) Fail(kExitUsage, flag + " must be an integer");
  return number;
}

// A flag's text as the JSON value its field takes. Bounds are the service's to check
// (it answers with the field's name); the client only gets the type right.
json FlagValue(const FlagSpec& flag, const std::string& text) {
  const core::FieldSpec& field = *flag.field;
  switch (field.kind) {
    case core::FieldKind::kInt:
      if (std::string_view(field.name).ends_with("_s")) {
        auto seconds = ParseDuration(text);
        if (!seconds.ok()) Fail(kExitUsage, flag.flag + ": " + seconds.error().message);
        return *seconds;
      }
      return ParseInteger(flag.flag, text);
    case core::FieldKind::kBool:
      return text == "true";
    case core::FieldKind::kIds:
    case core::FieldKind::kTexts:
      return SplitComma(text);
    case core::FieldKind::kInts: {
      json list = json::array();
      for (const std::string& part : SplitComma(text))
        list.push_back(ParseInteger(flag.flag, part));
      return list;
    }
    case core::FieldKind::kObjectList: {
      // "key:value,key:value" for a list of two-field objects (chip_hours: trn1:1000).
      if (field.fields.size() != 2) Fail(kExitUsage, flag.flag + " takes a JSON file (--file)");
      json list = json::array();
      for (const std::string& part : SplitComma(text)) {
        const size_t colon = part.find(':');
        if (colon == std::string::npos) Fail(kExitUsage, flag.flag + " items are like trn1:1000");
        json item = json::object();
        item[std::string(field.fields[0].name)] = part.substr(0, colon);
        const std::string second = part.substr(colon + 1);
        item[std::string(field.fields[1].name)] = field.fields[1].kind == core::FieldKind::kInt
                                                      ? json(ParseInteger(flag.flag, second))
                                                      : json(second);
        list.push_back(std::move(item));
      }
      return list;
    }
    default:
      if (field.from_file) return ReadText(text);
      return text;
  }
}

// The request body of a change: the op's fields from flags (and --file for a body
// object), positional path parameters excluded.
json ChangeBody(const ClientSpec& spec, const Bound& bound) {
  json body = json::object();
  if (!bound.object_file.empty()) {
    json parsed = json::parse(ReadText(bound.object_file), nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      Fail(kExitUsage, bound.object_file + " is not a JSON object");
    }
    body = std::move(parsed);
  }
  for (const FlagSpec& flag : FlagsOf(spec)) {
    const auto found = bound.values.find(flag.flag);
    if (found == bound.values.end()) continue;
    // A body object's fields go in the body itself (the route's body is the object).
    body[std::string(flag.field->name)] = FlagValue(flag, found->second);
  }
  for (const core::FieldSpec& field : spec.op->fields) {
    if (field.name == "argv") body["argv"] = bound.argv;
  }
  return body;
}

void RunClient(const ClientOptions& options, const Bound& bound) {
  const ClientSpec& spec = *bound.spec;
  const server::Route* route = FindRoute(spec.route);
  if (route == nullptr) Fail(kExitUsage, "no route " + spec.route);
  std::string path(route->path);
  auto fill = [&](const std::string& name, const std::string& value) {
    const std::string parameter = "{" + name + "}";
    if (const size_t at = path.find(parameter); at != std::string::npos) {
      path.replace(at, parameter.size(), Encode(value));
    }
  };
  if (path.find("{program}") != std::string::npos) fill("program", ProgramOf(options));
  for (size_t i = 0; i < spec.positional.size(); ++i) fill(spec.positional[i], bound.positional[i]);

  std::string query;
  auto add_query = [&](const std::string& key, const std::string& value) {
    query += (query.empty() ? "?" : "&") + key + "=" + Encode(value);
  };
  std::optional<json> body;
  if (spec.op != nullptr) {
    body = ChangeBody(spec, bound);
    // A change outside /v1/programs/{program} that still names its program (a job).
    if (std::string(route->path).find("{program}") == std::string::npos &&
        std::any_of(spec.op->fields.begin(), spec.op->fields.end(),
                    [](const core::FieldSpec& field) { return field.name == "program"; })) {
      (*body)["program"] = ProgramOf(options);
    }
  } else {
    for (const QuerySpec& filter : spec.query) {
      const auto found = bound.values.find(filter.flag);
      if (found != bound.values.end()) add_query(filter.field, found->second);
    }
    if (!bound.after.empty()) add_query("after", bound.after);
    if (!bound.limit.empty()) add_query("limit", bound.limit);
  }
  const Answer answer = Send(options, std::string(route->method), path + query, body);
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

ClientOptions Effective(ClientOptions options) {
  if (options.server.empty()) options.server = EnvOr("ATRIUM_SERVER", "http://127.0.0.1:8080");
  if (options.program.empty()) options.program = EnvOr("ATRIUM_PROGRAM", "");
  return options;
}

// `atrium job logs J [--stderr] [--follow] [--offset N] [--length N]`: the job's output
// as the service captured it (GET /v1/jobs/{job}/logs), written to stdout as it is;
// --follow keeps reading until the job has ended and everything is printed.
void RegisterJobLogs(CLI::App* group, const std::shared_ptr<ClientOptions>& options) {
  struct LogArgs {
    std::string job;
    bool stderr_stream = false;
    bool follow = false;
    int64_t offset = 0;
    int64_t length = 0;
  };
  auto args = std::make_shared<LogArgs>();
  CLI::App* command = group->add_subcommand("logs", "A job's output (stdout, or --stderr)");
  command->add_option("job", args->job, "job")->required();
  command->add_flag("--stderr", args->stderr_stream, "the job's stderr instead of its stdout");
  command->add_flag("--follow,-f", args->follow, "keep printing until the job has ended");
  command->add_option("--offset", args->offset, "first byte (default 0)");
  command->add_option("--length", args->length, "bytes at most (default: all)");
  AddClientOptions(command, options.get());
  command->callback([options, args] {
    const ClientOptions effective = Effective(*options);
    int64_t offset = args->offset;
    int64_t left = args->length > 0 ? args->length : std::numeric_limits<int64_t>::max();
    for (;;) {
      const int64_t want = std::min<int64_t>(left, 1 << 20);
      const std::string path =
          fmt::format("/v1/jobs/{}/logs?stream={}&offset={}&length={}", Encode(args->job),
                      args->stderr_stream ? "stderr" : "stdout", offset, want);
      const Answer answer = Send(effective, "GET", path, std::nullopt);
      if (answer.status >= 400 || !answer.body.is_object()) {
        const json& error = answer.body.is_object() && answer.body.contains("error")
                                ? answer.body["error"]
                                : json::object();
        Fail(answer.status >= 500 ? kExitStorage : kExitRefused,
             fmt::format("{} ({}): {}", error.value("code", "error"), answer.status,
                         error.value("message", "")));
      }
      const std::string data = answer.body["data"].get<std::string>();
      const int64_t read = answer.body["length"].get<int64_t>();
      if (effective.json) {
        fmt::print("{}\n", answer.body.dump());
      } else {
        std::fwrite(data.data(), 1, data.size(), stdout);
        std::fflush(stdout);
      }
      offset += read;
      left -= read;
      if (left <= 0) return;
      const bool more = offset < answer.body["size"].get<int64_t>();
      if (more) continue;
      if (!args->follow || answer.body["ended"].get<bool>()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
}

}  // namespace

void AddServiceOptions(CLI::App* command, ServiceTarget* target) {
  command->add_option("--server", target->server, "service URL (ATRIUM_SERVER)");
  command->add_option("--token-file", target->token_file,
                      "file holding the token (ATRIUM_TOKEN, ATRIUM_TOKEN_FILE)");
  command->add_option("--program", target->program, "program id (ATRIUM_PROGRAM)");
}

ServiceAnswer SendOp(const ServiceTarget& target, std::string_view op, json body) {
  const ClientOptions options = Effective(
      {.server = target.server, .token_file = target.token_file, .program = target.program});
  const core::OpSpec* spec = core::FindOp(op);
  if (spec == nullptr || spec->route.method.empty())
    Fail(kExitUsage, "no route for op " + std::string(op));
  std::string path(spec->route.path);
  for (size_t open = path.find('{'); open != std::string::npos; open = path.find('{')) {
    const size_t close = path.find('}', open);
    const std::string name = path.substr(open + 1, close - open - 1);
    std::string value;
    if (name == "program") {
      value = ProgramOf(options);
    } else if (body.contains(name) && body[name].is_string()) {
      value = body[name].get<std::string>();
      body.erase(name);
    } else {
      Fail(kExitUsage, "op " + std::string(op) + " needs " + name);
    }
    path.replace(open, close - open + 1, Encode(value));
  }
  const Answer answer = Send(options, std::string(spec->route.method), path, body);
  return {answer.status, answer.body};
}

void RegisterClientCommands(CLI::App& app) {
  auto options = std::make_shared<ClientOptions>();
  std::map<std::string, CLI::App*> groups;
  for (const ClientSpec& spec : ClientSpecs()) {
    const std::string group = spec.group;
    CLI::App* command = nullptr;
    if (spec.name.empty()) {
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
      command = groups[group]->add_subcommand(spec.name, spec.help);
    }
    auto bound = std::make_shared<Bound>();
    bound->spec = &spec;
    bound->positional.resize(spec.positional.size());
    for (size_t i = 0; i < spec.positional.size(); ++i) {
      command->add_option(spec.positional[i], bound->positional[i], spec.positional[i])->required();
    }
    for (const QuerySpec& filter : spec.query) {
      command->add_option(filter.flag, bound->values[filter.flag], filter.help);
    }
    bool has_object = false;
    for (const FlagSpec& flag : FlagsOf(spec)) {
      const core::FieldSpec& field = *flag.field;
      const std::string help =
          (flag.object.empty() ? "" : flag.object + "." + std::string(field.name) + ": ") +
          core::FieldHelp(field);
      has_object = has_object || !flag.object.empty();
      if (field.kind == core::FieldKind::kBool) {
        command->add_flag_callback(
            flag.flag, [bound, name = flag.flag] { bound->values[name] = "true"; }, help);
        continue;
      }
      CLI::Option* option = command->add_option(flag.flag, bound->values[flag.flag], help);
      if (field.kind == core::FieldKind::kEnum) {
        std::vector<std::string> values(field.values.begin(), field.values.end());
        option->check(CLI::IsMember(values));
      }
      // A body object's required fields may come from --file instead.
      if (field.required && flag.object.empty()) option->required();
    }
    if (has_object) {
      command->add_option("--file", bound->object_file,
                          "the body object as a JSON file; flags given override its fields");
    }
    if (spec.op != nullptr) {
      command->footer(
          fmt::format("Op {} ({}): {}. Every field above is checked by the service "
                      "with the same table (docs/api-ops.md).",
                      spec.op->name, spec.op->route.path, spec.op->summary));
    }
    const server::Route* route = FindRoute(spec.route);
    if (route != nullptr && route->read != nullptr && route->name != "usage_report") {
      command->add_option("--after", bound->after, "cursor: the previous page's next");
      command->add_option("--limit", bound->limit, "items per page (1-1000)");
    }
    const bool trailing_argv =
        spec.op != nullptr &&
        std::any_of(spec.op->fields.begin(), spec.op->fields.end(),
                    [](const core::FieldSpec& field) { return field.name == "argv"; });
    if (trailing_argv) command->add_option("argv", bound->argv, "the command to run (after --)");
    AddClientOptions(command, options.get());
    command->callback([options, bound] {
      // Options left empty were not given.
      for (auto it = bound->values.begin(); it != bound->values.end();) {
        it = it->second.empty() ? bound->values.erase(it) : std::next(it);
      }
      RunClient(Effective(*options), *bound);
    });
  }
  RegisterJobLogs(groups.at("job"), options);
  CLI::App* api = app.add_subcommand("api", "The API's reference, from the op table");
  api->require_subcommand(1);
  api->add_subcommand("ops", "Every op: route, roles, fields (types, bounds), answer (Markdown)")
      ->callback([] {
        fmt::print(
            "# Ops\n\nEvery change Atrium accepts, from the op table (`src/core/ops.cc`); "
            "printed by `atrium api ops`. The API, the offline `atrium program` and the "
            "journal's replay check them the same way. A refusal names the field "
            "(`institution.country`, `people[3].institution`).\n\n{}",
            core::OpsMarkdown());
      });
}

}  // namespace atrium::cli
