#include "program/loader.h"

#include <toml++/toml.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <system_error>

namespace atrium::program {
namespace {

Error Bad(const std::string& field, const std::string& message) {
  return MakeError(ErrorCode::kParseError, field + ": " + message, field);
}

// Reads fields of one TOML table, remembering the first error.
class Reader {
 public:
  Reader(const toml::table& table, std::string path) : table_(table), path_(std::move(path)) {}

  std::string String(const char* key, bool required = true) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) {
      if (required) Fail(key, "is required");
      return {};
    }
    if (!node->is_string()) {
      Fail(key, "must be a string");
      return {};
    }
    return std::string(*node->value<std::string_view>());
  }
  int64_t Integer(const char* key, int64_t fallback) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return fallback;
    if (!node->is_integer()) {
      Fail(key, "must be an integer");
      return fallback;
    }
    return *node->value<int64_t>();
  }
  bool Bool(const char* key, bool fallback) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return fallback;
    if (!node->is_boolean()) {
      Fail(key, "must be true or false");
      return fallback;
    }
    return *node->value<bool>();
  }
  // Whole credits as an integer, or a decimal string.
  Credits Money(const char* key, bool required = true) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) {
      if (required) Fail(key, "is required");
      return Credits::Zero();
    }
    if (node->is_integer()) {
      const int64_t whole = *node->value<int64_t>();
      if (whole < 0 || whole > INT64_MAX / Credits::kMicroPerCredit) {
        Fail(key, "out of range");
        return Credits::Zero();
      }
      return Credits::FromWhole(whole);
    }
    if (node->is_string()) {
      Result<Credits> parsed = Credits::Parse(*node->value<std::string_view>());
      if (parsed.ok()) return *parsed;
    }
    Fail(key, "must be whole credits (integer) or a decimal string");
    return Credits::Zero();
  }
  // A percentage (integer or float, up to two decimals) as basis points.
  int64_t Percent(const char* key, int64_t fallback_bp) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return fallback_bp;
    double value = 0;
    if (node->is_integer()) {
      value = static_cast<double>(*node->value<int64_t>());
    } else if (node->is_floating_point()) {
      value = *node->value<double>();
    } else {
      Fail(key, "must be a number");
      return fallback_bp;
    }
    if (!(value >= 0 && value <= 100)) {
      Fail(key, "must be within 0..100");
      return fallback_bp;
    }
    return static_cast<int64_t>(std::llround(value * 100.0));
  }
  std::vector<std::string> Strings(const char* key) {
    std::vector<std::string> out;
    const toml::node* node = table_.get(key);
    if (node == nullptr) return out;
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      Fail(key, "must be an array of strings");
      return out;
    }
    for (const toml::node& item : *array) {
      if (!item.is_string()) {
        Fail(key, "must be an array of strings");
        return {};
      }
      out.emplace_back(*item.value<std::string_view>());
    }
    return out;
  }
  std::vector<int64_t> Integers(const char* key) {
    std::vector<int64_t> out;
    const toml::node* node = table_.get(key);
    if (node == nullptr) return out;
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      Fail(key, "must be an array of integers");
      return out;
    }
    for (const toml::node& item : *array) {
      if (!item.is_integer()) {
        Fail(key, "must be an array of integers");
        return {};
      }
      out.push_back(*item.value<int64_t>());
    }
    return out;
  }
  // Relative dates ("+30d") resolve against this load time (see ParseProgramToml).
  void set_load_us(std::optional<int64_t> load_us) { load_us_ = load_us; }

  int64_t Time(const char* key) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) {
      Fail(key, "is required");
      return 0;
    }
    if (node->is_string()) {
      const std::string_view text = *node->value<std::string_view>();
      if (const std::optional<int64_t> offset = ParseRelativeUs(text)) {
        if (!load_us_) {
          Fail(key, "a relative date ('" + std::string(text) +
                        "') needs a load time (the service's program_create, or `atrium "
                        "program load --at`), or give an absolute date");
          return 0;
        }
        return *load_us_ + *offset;
      }
    }
    if (const auto* date = node->as_date()) {
      const toml::date& d = date->get();
      return DaysFromCivil(d.year, d.month, d.day) * kMicrosPerDay;
    }
    if (const auto* date_time = node->as_date_time()) {
      const toml::date_time& dt = date_time->get();
      const int64_t offset_s = dt.offset ? static_cast<int64_t>(dt.offset->minutes) * 60 : 0;
      return DaysFromCivil(dt.date.year, dt.date.month, dt.date.day) * kMicrosPerDay +
             ((dt.time.hour * 3600 + dt.time.minute * 60 + dt.time.second) - offset_s) *
                 kMicrosPerSecond;
    }
    if (node->is_string()) {
      Result<int64_t> parsed = ParseTimeUs(*node->value<std::string_view>());
      if (parsed.ok()) return *parsed;
    }
    Fail(key,
         "must be a date (2026-01-15), a date-time (2026-01-15T09:00:00Z) or relative to the "
         "load (\"+30d\", \"-2h\", \"+90m\", \"+45s\")");
    return 0;
  }
  // The tables of an array of tables; empty when absent.
  std::vector<const toml::table*> Tables(const char* key) {
    std::vector<const toml::table*> out;
    const toml::node* node = table_.get(key);
    if (node == nullptr) return out;
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      Fail(key, "must be an array of tables ([[" + std::string(key) + "]])");
      return out;
    }
    for (const toml::node& item : *array) {
      if (const toml::table* table = item.as_table()) {
        out.push_back(table);
      } else {
        Fail(key, "must be an array of tables");
        return {};
      }
    }
    return out;
  }
  const toml::table* Table(const char* key) {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return nullptr;
    if (!node->is_table()) Fail(key, "must be a table");
    return node->as_table();
  }

  void Fail(const std::string& key, const std::string& message) {
    if (!error_) error_ = Bad(path_ + "." + key, message);
  }
  void Absorb(const Reader& child) {
    if (!error_ && child.error_) error_ = child.error_;
  }
  const std::optional<Error>& error() const { return error_; }
  const std::string& path() const { return path_; }

 private:
  const toml::table& table_;
  std::string path_;
  std::optional<Error> error_;
  std::optional<int64_t> load_us_;
};

Result<toml::table> Parse(std::string_view text) {
  try {
    return toml::parse(text);
  } catch (const toml::parse_error& error) {
    const auto& where = error.source().begin;
    return MakeError(ErrorCode::kParseError, "TOML line " + std::to_string(where.line) +
                                                 ", column " + std::to_string(where.column) + ": " +
                                                 std::string(error.description()));
  }
}

Track ReadTrack(Reader& reader, const toml::table& table, size_t index) {
  Reader r(table, "track[" + std::to_string(index) + "]");
  Track track;
  track.id = r.String("id");
  track.name = r.String("name", false);
  const std::string kind = r.String("kind", false);
  if (kind == "education") {
    track.kind = TrackKind::kEducation;
  } else if (!kind.empty() && kind != "research") {
    r.Fail("kind", "must be research or education");
  }
  track.budget = r.Money("budget");
  track.award_cap = r.Money("award_cap", false);
  track.institution_cap = r.Money("institution_cap", false);
  track.eligibility.pi_roles = r.Strings("pi_roles");
  track.eligibility.institution_types = r.Strings("institution_types");
  track.eligibility.one_proposal_per_pi = r.Bool("one_proposal_per_pi", true);
  track.partial_floor_bp = r.Percent("partial_floor_percent", 0);
  track.partial_step_bp = r.Percent("partial_step_percent", 2'500);
  size_t tranche_idx = 0;
  for (const toml::table* tranche_table : r.Tables("tranche")) {
    Reader t(*tranche_table, r.path() + ".tranche[" + std::to_string(tranche_idx++) + "]");
    track.tranches.push_back({t.Percent("share_percent", 0), t.String("condition")});
    r.Absorb(t);
  }
  reader.Absorb(r);
  return track;
}

}  // namespace

int64_t DaysFromCivil(int64_t year, int64_t month, int64_t day) {
  // Howard Hinnant's days_from_civil.
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

Result<int64_t> ParseTimeUs(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  // Digits only at their places: no sign, no spaces.
  const auto digits = [text](size_t at, size_t count, int* out) {
    for (size_t i = at; i < at + count; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
    }
    return std::from_chars(text.data() + at, text.data() + at + count, *out).ec == std::errc();
  };
  const auto date = [&] {
    return digits(0, 4, &year) && text[4] == '-' && digits(5, 2, &month) && text[7] == '-' &&
           digits(8, 2, &day);
  };
  const bool date_only = text.size() == 10 && date();
  const bool date_time = text.size() == 20 && date() && text[10] == 'T' && digits(11, 2, &hour) &&
                         text[13] == ':' && digits(14, 2, &minute) && text[16] == ':' &&
                         digits(17, 2, &second) && text[19] == 'Z';
  const std::string copy(text);
  if ((!date_only && !date_time) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 ||
      minute > 59 || second > 60) {
    return MakeError(ErrorCode::kParseError,
                     "time must be 2026-01-15 or 2026-01-15T09:30:00Z, got '" + copy + "'", "at");
  }
  return DaysFromCivil(year, month, day) * kMicrosPerDay +
         (hour * 3600LL + minute * 60LL + second) * kMicrosPerSecond;
}

std::optional<int64_t> ParseRelativeUs(std::string_view text) {
  // A sign, 1 to 9 digits, a unit.
  if (text.size() < 3 || text.size() > 11 || (text.front() != '+' && text.front() != '-')) {
    return std::nullopt;
  }
  int64_t unit_us = 0;
  switch (text.back()) {
    case 'd':
      unit_us = kMicrosPerDay;
      break;
    case 'h':
      unit_us = 3600 * kMicrosPerSecond;
      break;
    case 'm':
      unit_us = 60 * kMicrosPerSecond;
      break;
    case 's':
      unit_us = kMicrosPerSecond;
      break;
    default:
      return std::nullopt;
  }
  int64_t count = 0;
  for (const char c : text.substr(1, text.size() - 2)) {
    if (c < '0' || c > '9') return std::nullopt;
    count = count * 10 + (c - '0');
  }
  constexpr int64_t kMaxUs = int64_t{100} * 366 * kMicrosPerDay;
  if (count > kMaxUs / unit_us) return std::nullopt;
  return (text.front() == '-' ? -count : count) * unit_us;
}

std::string FormatTimeUs(int64_t time_us) {
  int64_t seconds = time_us / kMicrosPerSecond;
  int64_t days = seconds / 86'400;
  int64_t rest = seconds % 86'400;
  if (rest < 0) {
    rest += 86'400;
    --days;
  }
  // Hinnant's civil_from_days.
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t day_of_era = days - era * 146097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t mp = (5 * day_of_year + 2) / 153;
  const int64_t day = day_of_year - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  char buffer[40];
  std::snprintf(buffer, sizeof(buffer), "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ",
                static_cast<long long>(year), static_cast<long long>(month),
                static_cast<long long>(day), static_cast<long long>(rest / 3600),
                static_cast<long long>(rest / 60 % 60), static_cast<long long>(rest % 60));
  return buffer;
}

Result<ProgramDefinition> ParseProgramToml(std::string_view text, std::optional<int64_t> load_us) {
  ATRIUM_ASSIGN_OR_RETURN(toml::table root, Parse(text));
  Reader top(root, "");
  const toml::table* program_table = top.Table("program");
  if (program_table == nullptr) return Bad("program", "the [program] table is required");
  Reader r(*program_table, "program");
  ProgramDefinition def;
  def.id = r.String("id");
  def.name = r.String("name", false);
  const std::string currency = r.String("currency", false);
  if (!currency.empty()) def.currency = currency;
  def.total_budget = r.Money("total_budget");
  const std::string policy = r.String("award_policy", false);
  if (!policy.empty()) def.award_policy = policy;
  def.topics = r.Strings("topics");
  if (const toml::table* prices = r.Table("prices")) {
    Reader p(*prices, "program.prices");
    for (const auto& [key, node] : *prices) {
      const std::string name(key.str());
      def.price_per_chip_hour[name] = p.Money(name.c_str());
    }
    r.Absorb(p);
  }
  size_t idx = 0;
  for (const toml::table* table : r.Tables("rubric")) {
    Reader c(*table, "program.rubric[" + std::to_string(idx++) + "]");
    def.rubric.push_back(
        {c.String("name"), c.Integer("weight", 1), c.Integer("min", 1), c.Integer("max", 5)});
    r.Absorb(c);
  }
  idx = 0;
  for (const toml::table* table : r.Tables("fairness_floor")) {
    Reader f(*table, "program.fairness_floor[" + std::to_string(idx++) + "]");
    def.fairness_floors.push_back({f.String("name"), f.Strings("topics"),
                                   f.Strings("institution_types"), f.Percent("share_percent", 0),
                                   f.Strings("tracks")});
    r.Absorb(f);
  }
  if (const toml::table* obligations = r.Table("obligations")) {
    Reader o(*obligations, "program.obligations");
    ObligationRules& rules = def.obligations;
    rules.progress_report_months = o.Integers("progress_report_months");
    rules.final_report = o.Bool("final_report", true);
    rules.paper = o.Bool("paper", true);
    rules.repository = o.Bool("repository", true);
    rules.final_grace_months = o.Integer("final_grace_months", 3);
    rules.freeze_when_overdue = o.Bool("freeze_when_overdue", true);
    r.Absorb(o);
  }
  GovernanceRules& governance = def.governance;
  if (const toml::table* overrides = r.Table("overrides")) {
    Reader o(*overrides, "program.overrides");
    OverrideRules& rules = governance.overrides;
    rules.max_per_call = o.Integer("max_per_call", 0);
    rules.max_budget_bp = o.Percent("max_budget_percent", kBasisPointsFull);
    rules.reasons = o.Strings("reasons");
    rules.allow_strategic = o.Bool("allow_strategic", false);
    r.Absorb(o);
  }
  if (const toml::table* appeals = r.Table("appeals")) {
    Reader a(*appeals, "program.appeals");
    AppealRules& rules = governance.appeals;
    rules.window_days = a.Integer("window_days", 0);
    rules.grounds = a.Strings("grounds");
    rules.reviewers = a.Integer("reviewers", 2);
    rules.reserve = a.Money("reserve", false);
    r.Absorb(a);
  }
  if (const toml::table* reservations = r.Table("reservations")) {
    Reader b(*reservations, "program.reservations");
    ReservationRules& rules = def.reservations;
    rules.enabled = true;
    const auto bounded = [&b](const char* key, int64_t fallback, int64_t max) {
      const int64_t value = b.Integer(key, fallback);
      if (value < 0 || value > max) b.Fail(key, "must be within 0.." + std::to_string(max));
      return value;
    };
    // A misspelt limit must not pass silently as no limit.
    for (const auto& [key, node] : *reservations) {
      const std::string name(key.str());
      if (name != "max_chips" && name != "max_hours" && name != "max_ahead_days" &&
          name != "max_share_bp" && name != "cancel_fee_bp") {
        b.Fail(name,
               "is not a limit (max_chips, max_hours, max_ahead_days, max_share_bp, "
               "cancel_fee_bp)");
      }
    }
    rules.max_chips = bounded("max_chips", 0, 1'000'000'000);
    rules.max_hours = bounded("max_hours", 0, int64_t{24} * 3660);
    rules.max_ahead_days = bounded("max_ahead_days", 0, 3660);
    rules.max_share_bp = bounded("max_share_bp", 10'000, 10'000);
    rules.cancel_fee_bp = bounded("cancel_fee_bp", 0, 10'000);
    r.Absorb(b);
  }
  idx = 0;
  for (const toml::table* table : r.Tables("sponsor_tie")) {
    Reader t(*table, "program.sponsor_tie[" + std::to_string(idx++) + "]");
    governance.sponsor_ties.push_back(
        {t.String("institution", false), t.String("person", false), t.String("kind")});
    r.Absorb(t);
  }
  idx = 0;
  for (const toml::table* table : top.Tables("track"))
    def.tracks.push_back(ReadTrack(top, *table, idx++));
  idx = 0;
  for (const toml::table* table : top.Tables("call")) {
    Reader c(*table, "call[" + std::to_string(idx++) + "]");
    c.set_load_us(load_us);
    def.calls.push_back({.id = c.String("id"),
                         .track = c.String("track"),
                         .opens_us = c.Time("opens"),
                         .closes_us = c.Time("closes"),
                         .review_deadline_us = c.Time("review_deadline"),
                         .decision_us = c.Time("decision"),
                         .reviewers_per_proposal = c.Integer("reviewers_per_proposal", 3)});
    top.Absorb(c);
  }
  top.Absorb(r);
  if (top.error()) return *top.error();
  return def;
}

Result<PeopleFile> ParsePeopleToml(std::string_view text) {
  ATRIUM_ASSIGN_OR_RETURN(toml::table root, Parse(text));
  Reader top(root, "");
  PeopleFile file;
  size_t idx = 0;
  for (const toml::table* table : top.Tables("institution")) {
    Reader r(*table, "institution[" + std::to_string(idx++) + "]");
    file.institutions.push_back(
        {r.String("id"), r.String("name", false), r.String("type"), r.String("country", false)});
    top.Absorb(r);
  }
  idx = 0;
  for (const toml::table* table : top.Tables("person")) {
    Reader r(*table, "person[" + std::to_string(idx++) + "]");
    file.people.push_back({.id = r.String("id"),
                           .name = r.String("name", false),
                           .institution = r.String("institution"),
                           .role = r.String("role"),
                           .expertise = r.Strings("expertise"),
                           .collaborators = r.Strings("collaborators"),
                           .reviewer = r.Bool("reviewer", false)});
    top.Absorb(r);
  }
  if (top.error()) return *top.error();
  return file;
}

Result<std::vector<ProposalInput>> ParseProposalsToml(std::string_view text) {
  ATRIUM_ASSIGN_OR_RETURN(toml::table root, Parse(text));
  Reader top(root, "");
  std::vector<const toml::table*> tables = top.Tables("proposal");
  if (tables.empty() && root.contains("id")) tables.push_back(&root);
  std::vector<ProposalInput> out;
  size_t idx = 0;
  for (const toml::table* table : tables) {
    Reader r(*table, "proposal[" + std::to_string(idx++) + "]");
    ProposalInput input;
    input.id = r.String("id");
    input.call = r.String("call");
    input.pi = r.String("pi");
    input.co_investigators = r.Strings("co_investigators");
    input.title = r.String("title");
    input.abstract = r.String("abstract", false);
    input.topics = r.Strings("topics");
    input.requested = r.Money("requested", false);
    size_t chip_idx = 0;
    for (const toml::table* chips : r.Tables("chip_hours")) {
      Reader c(*chips, r.path() + ".chip_hours[" + std::to_string(chip_idx++) + "]");
      input.chip_hours.push_back({c.String("accelerator"), c.Integer("chip_hours", 0)});
      r.Absorb(c);
    }
    input.duration_months = r.Integer("duration_months", 12);
    input.open_source_plan = r.String("open_source_plan", false);
    top.Absorb(r);
    out.push_back(std::move(input));
  }
  if (top.error()) return *top.error();
  if (out.empty()) return Bad("proposal", "no [[proposal]] found");
  return out;
}

nlohmann::json ProposalSubmitJson(const ProposalInput& input) {
  nlohmann::json out = {{"id", input.id},
                        {"call", input.call},
                        {"pi", input.pi},
                        {"co_investigators", input.co_investigators},
                        {"title", input.title},
                        {"abstract", input.abstract},
                        {"topics", input.topics},
                        {"duration_months", input.duration_months},
                        {"open_source_plan", input.open_source_plan}};
  if (!input.requested.is_zero()) out["requested"] = input.requested.ToString();
  for (const ChipHours& request : input.chip_hours) {
    out["chip_hours"].push_back(
        {{"accelerator", request.accelerator}, {"chip_hours", request.chip_hours}});
  }
  return out;
}

}  // namespace atrium::program
