// `atrium import institutions|people|reviewers FILE.csv`: bulk registration from CSV
// (RFC 4180, parsed by libcsv). The first row names the columns, which are the fields of
// the op table's institution or person (core/ops.h: id, name, type, country; id, name,
// institution, role, expertise, collaborators, reviewer); lists are separated by ";",
// booleans are true/false (yes/no, 1/0). A file is one people_import op: all of it is
// registered, or none of it, and a refused row is named by its line in the file.
//
// Against a running service by default (the client's --server, --token-file, --program),
// or offline on a data folder with --data DIR (as `atrium program`).
#include <csv.h>

#include <memory>

#include <fmt/format.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/program_session.h"
#include "core/ops.h"
#include "program/loader.h"

namespace atrium::cli {
namespace {

using nlohmann::json;

// Rows of one file; past this a file is refused before anything is sent (the op's own
// bound is the same).
constexpr size_t kCsvRowsMax = 10'000;
constexpr size_t kCsvBytesMax = size_t{16} << 20;

struct CsvRow {
  size_t line = 0;  // where the row starts in the file (1-based)
  std::vector<std::string> cells;
};

// libcsv calls back once per field and once per row; rows are fed one physical line at
// a time so each row knows the line it starts on (a quoted field may span lines).
class CsvReader {
 public:
  CsvReader() { csv_init(&parser_, CSV_STRICT | CSV_APPEND_NULL); }
  ~CsvReader() { csv_free(&parser_); }
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  Result<std::vector<CsvRow>> Read(std::string_view text) {
    size_t line = 0;
    for (size_t start = 0; start < text.size();) {
      size_t end = text.find('\n', start);
      end = end == std::string_view::npos ? text.size() : end + 1;
      line_ = ++line;
      const std::string_view chunk = text.substr(start, end - start);
      if (csv_parse(&parser_, chunk.data(), chunk.size(), &CsvReader::OnField, &CsvReader::OnRow,
                    this) != chunk.size()) {
        return MakeError(ErrorCode::kParseError,
                         fmt::format("line {}: {}", line, csv_strerror(csv_error(&parser_))),
                         "csv");
      }
      if (rows_.size() > kCsvRowsMax + 1) {
        return MakeError(ErrorCode::kTooLong,
                         fmt::format("more than {} rows; split the file", kCsvRowsMax), "csv");
      }
      start = end;
    }
    if (csv_fini(&parser_, &CsvReader::OnField, &CsvReader::OnRow, this) != 0) {
      return MakeError(ErrorCode::kParseError,
                       fmt::format("line {}: {}", line, csv_strerror(csv_error(&parser_))), "csv");
    }
    return std::move(rows_);
  }

 private:
  static void OnField(void* field, size_t bytes, void* self) {
    auto* reader = static_cast<CsvReader*>(self);
    if (reader->row_.cells.empty()) reader->row_.line = reader->line_;
    reader->row_.cells.emplace_back(static_cast<const char*>(field), bytes);
  }
  static void OnRow(int /*terminator*/, void* self) {
    auto* reader = static_cast<CsvReader*>(self);
    reader->rows_.push_back(std::move(reader->row_));
    reader->row_ = CsvRow{};
  }

  csv_parser parser_{};
  size_t line_ = 0;
  CsvRow row_;
  std::vector<CsvRow> rows_;
};

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.pop_back();
  size_t start = 0;
  while (start < text.size() && text[start] == ' ') ++start;
  return text.substr(start);
}

// One cell as the JSON its field takes; an error names the line and the column.
Result<json> CellValue(const core::FieldSpec& field, const std::string& cell, size_t line) {
  switch (field.kind) {
    case core::FieldKind::kBool: {
      std::string lower = cell;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == "true" || lower == "yes" || lower == "1") return json(true);
      if (lower == "false" || lower == "no" || lower == "0") return json(false);
      return MakeError(
          ErrorCode::kInvalidArgument,
          fmt::format("line {}: column {}: \"{}\" is not true/false", line, field.name, cell),
          std::string(field.name));
    }
    case core::FieldKind::kIds:
    case core::FieldKind::kTexts: {
      json list = json::array();
      std::string item;
      for (size_t i = 0; i <= cell.size(); ++i) {
        if (i == cell.size() || cell[i] == ';') {
          if (!Trim(item).empty()) list.push_back(Trim(item));
          item.clear();
        } else {
          item.push_back(cell[i]);
        }
      }
      return list;
    }
    default:
      return json(cell);
  }
}

enum class ImportKind { kInstitutions, kPeople, kReviewers };

// The people_import op's body from a CSV file, with each row's line.
// (bugprone-exception-escape: nlohmann::json's noexcept destructor flattens nested values
// into a std::vector, which clang-tidy sees may throw; nothing of ours throws.)
struct ImportBody {  // NOLINT(bugprone-exception-escape)
  json body;
  std::vector<size_t> lines;  // line of item i
};

Result<ImportBody> BuildImport(ImportKind kind, std::string_view text) {
  const core::OpSpec* op = core::FindOp("people_import");
  ATRIUM_CHECK(op != nullptr, "people_import is in the op table");
  const std::string list = kind == ImportKind::kInstitutions ? "institutions" : "people";
  const core::FieldSpec* item_spec = nullptr;
  for (const core::FieldSpec& field : op->fields) {
    if (field.name == list) item_spec = &field;
  }
  CsvReader reader;
  ATRIUM_ASSIGN_OR_RETURN(std::vector<CsvRow> rows, reader.Read(text));
  if (rows.empty()) return MakeError(ErrorCode::kParseError, "the file is empty", "csv");
  // The header: every column a field of the item, each once; every required field there.
  std::vector<const core::FieldSpec*> columns;
  for (const std::string& raw : rows[0].cells) {
    const std::string name = Trim(raw);
    const core::FieldSpec* found = nullptr;
    for (const core::FieldSpec& field : item_spec->fields) {
      if (field.name == name) found = &field;
    }
    if (found == nullptr || std::find(columns.begin(), columns.end(), found) != columns.end()) {
      std::string known;
      for (const core::FieldSpec& field : item_spec->fields) {
        known += (known.empty() ? "" : ", ") + std::string(field.name);
      }
      return MakeError(ErrorCode::kUnknownField,
                       fmt::format("line {}: column \"{}\" is {} (columns: {})", rows[0].line, name,
                                   found == nullptr ? "not a field" : "given twice", known),
                       name);
    }
    columns.push_back(found);
  }
  for (const core::FieldSpec& field : item_spec->fields) {
    if (field.required && std::find(columns.begin(), columns.end(), &field) == columns.end()) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          fmt::format("line {}: the header has no column {} (required)", rows[0].line, field.name),
          std::string(field.name));
    }
  }
  ImportBody out;
  json items = json::array();
  for (size_t row_idx = 1; row_idx < rows.size(); ++row_idx) {
    const CsvRow& row = rows[row_idx];
    if (row.cells.size() == 1 && Trim(row.cells[0]).empty()) continue;  // a blank line
    if (row.cells.size() != columns.size()) {
      return MakeError(ErrorCode::kParseError,
                       fmt::format("line {}: {} fields, the header has {}", row.line,
                                   row.cells.size(), columns.size()),
                       "csv");
    }
    json item = json::object();
    if (kind == ImportKind::kReviewers) item["reviewer"] = true;
    for (size_t column = 0; column < columns.size(); ++column) {
      const std::string cell = Trim(row.cells[column]);
      if (cell.empty()) continue;
      ATRIUM_ASSIGN_OR_RETURN(item[std::string(columns[column]->name)],
                              CellValue(*columns[column], cell, row.line));
    }
    items.push_back(std::move(item));
    out.lines.push_back(row.line);
  }
  out.body = {{list, std::move(items)}};
  return out;
}

// "people[3].institution" -> the line of item 3 and the column.
std::string Located(const ImportBody& import, const std::string& file, const Error& error) {
  const size_t open = error.field.find('[');
  const size_t close = error.field.find(']');
  if (open != std::string::npos && close != std::string::npos && close > open) {
    const size_t index = std::stoul(error.field.substr(open + 1, close - open - 1));
    if (index < import.lines.size()) {
      const std::string column =
          close + 2 <= error.field.size() ? error.field.substr(close + 2) : std::string();
      return fmt::format("{}:{}: {}{}: {}", file, import.lines[index],
                         column.empty() ? "" : "column " + column + ": ", ToString(error.code),
                         error.message);
    }
  }
  return fmt::format("{}: {}: {}{}", file, ToString(error.code), error.message,
                     error.field.empty() ? "" : " [" + error.field + "]");
}

[[noreturn]] void Fail(int exit_code, const std::string& message) {
  fmt::print(stderr, "atrium: {}\n", message);
  throw CLI::RuntimeError(exit_code);
}

struct ImportOptions {
  std::string file;
  std::string data_dir;  // offline
  std::string at;
  ServiceTarget target;
};

void RunImport(ImportKind kind, const ImportOptions& options) {
  Result<std::string> text = ReadFile(options.file);
  if (!text.ok()) Fail(kExitUsage, text.error().ToString());
  if (text->size() > kCsvBytesMax) Fail(kExitUsage, options.file + " is larger than 16 MiB");
  Result<ImportBody> import = BuildImport(kind, *text);
  if (!import.ok()) Fail(kExitUsage, options.file + ": " + import.error().message);
  // The op's own checks, before anything is sent: a bad row is named by its line.
  const core::OpSpec* op = core::FindOp("people_import");
  json checked = import->body;
  checked["program"] = "p";
  if (Status valid = core::ValidateFields(op->fields, checked, ""); !valid.ok()) {
    Fail(kExitRefused, Located(*import, options.file, valid.error()));
  }
  json answer;
  if (!options.data_dir.empty()) {
    Result<ProgramSession> session = ProgramSession::Open(options.data_dir, false);
    if (!session.ok()) Fail(kExitStorage, session.error().ToString());
    Result<const program::ProgramState*> program = session->Program(options.target.program);
    if (!program.ok()) Fail(kExitUsage, program.error().ToString());
    json command = import->body;
    command["op"] = "people_import";
    command["program"] = (*program)->definition().id;
    int64_t at_us = session->last_at_us() + 1'000'000;
    if (!options.at.empty()) {
      Result<int64_t> parsed = program::ParseTimeUs(options.at);
      if (!parsed.ok()) Fail(kExitUsage, parsed.error().ToString());
      at_us = *parsed;
    }
    Result<json> applied = session->Apply(std::move(command), at_us);
    if (!applied.ok()) Fail(kExitRefused, Located(*import, options.file, applied.error()));
    answer = *applied;
  } else {
    const ServiceAnswer sent = SendOp(options.target, "people_import", import->body);
    if (sent.status >= 400) {
      const json& error = sent.body.is_object() && sent.body.contains("error") ? sent.body["error"]
                                                                               : json::object();
      Error refused{ErrorCode::kInternal, error.value("message", sent.body.dump()),
                    error.value("field", "")};
      const std::string code = error.value("code", "error");
#define ATRIUM_MATCH_CODE(name, text) \
  if (code == (text)) refused.code = ErrorCode::name;
      ATRIUM_ERROR_CODES(ATRIUM_MATCH_CODE)
#undef ATRIUM_MATCH_CODE
      Fail(sent.status >= 500 ? kExitStorage : kExitRefused,
           Located(*import, options.file, refused));
    }
    answer = sent.body;
  }
  fmt::print("imported {} institutions and {} people from {}\n", answer.value("institutions", 0),
             answer.value("people", 0), options.file);
}

}  // namespace

void RegisterImportCommands(CLI::App& app) {
  CLI::App* group = app.add_subcommand(
      "import", "Register institutions, people and reviewers from CSV files (all or nothing)");
  group->require_subcommand(1);
  const struct {
    const char* name;
    ImportKind kind;
    const char* help;
  } commands[] = {
      {"institutions", ImportKind::kInstitutions,
       "Institutions from CSV: columns id,name,type,country"},
      {"people", ImportKind::kPeople,
       "People from CSV: columns id,name,institution,role[,expertise,collaborators,reviewer] "
       "(lists separated by ;)"},
      {"reviewers", ImportKind::kReviewers,
       "Reviewers from CSV: the people columns, reviewer true unless a column says otherwise"},
  };
  for (const auto& command : commands) {
    auto options = std::make_shared<ImportOptions>();
    CLI::App* sub = group->add_subcommand(command.name, command.help);
    sub->add_option("file", options->file, "CSV file (RFC 4180; a header row first)")->required();
    sub->add_option("--data", options->data_dir,
                    "offline: the data folder of `atrium program` (default: the service)");
    sub->add_option("--at", options->at, "offline: logical time (default: after the last op)");
    AddServiceOptions(sub, &options->target);
    sub->footer(
        "One people_import op (docs/api-ops.md): the whole file or nothing. A refused row is "
        "named as FILE:LINE: column C: code: message.");
    sub->callback([options, kind = command.kind] { RunImport(kind, *options); });
  }
}

}  // namespace atrium::cli
