// Small CSV helpers for the trace readers: split a line on commas (the formats Atrium
// reads have no quoted fields), parse integers and decimals strictly, read a whole file.
#pragma once

#include <charconv>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace atrium::sim::internal {

// Appends the fields of `line` (without its line ending) to `fields`.
inline void SplitCsv(std::string_view line, std::vector<std::string_view>* fields) {
  fields->clear();
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    if (comma == std::string_view::npos) {
      fields->push_back(line.substr(start));
      return;
    }
    fields->push_back(line.substr(start, comma - start));
    start = comma + 1;
  }
}

// No number in a public trace (seconds since an epoch, durations, counts, percents) comes
// near this; refusing larger ones keeps every sum and difference of them in an int64.
inline constexpr int64_t kTraceNumberAbsMax = 1'000'000'000'000;

inline std::optional<int64_t> ParseInt(std::string_view text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  if (value < -kTraceNumberAbsMax || value > kTraceNumberAbsMax) return std::nullopt;
  return value;
}

inline std::optional<double> ParseDouble(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  // NaN, infinities and magnitudes no trace holds would overflow the integer arithmetic
  // that follows (found by tests/fuzz/public_trace_fuzzer).
  if (!(value >= -1e12 && value <= 1e12)) return std::nullopt;  // kTraceNumberAbsMax
  return value;
}

inline Result<std::string> ReadFile(const std::string& path, size_t bytes_max) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(ErrorCode::kIoError, "cannot open " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string text = std::move(buffer).str();
  if (text.size() > bytes_max) return MakeError(ErrorCode::kLimitExceeded, path + " is too large");
  return text;
}

// Calls visit(line_number, line) for each line of text (1-based).
template <typename Visit>
Status ForEachLine(std::string_view text, Visit visit) {
  int64_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    ++line_number;
    ATRIUM_TRY(visit(line_number, text.substr(start, end - start)));
    start = end + 1;
  }
  return OkStatus();
}

// Seconds since the epoch of "YYYY-MM-DD HH:MM:SS" (UTC), or nullopt.
inline std::optional<int64_t> ParseDateTime(std::string_view text) {
  if (text.size() < 19 || text[4] != '-' || text[7] != '-' ||
      (text[10] != ' ' && text[10] != 'T') || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  const auto year = ParseInt(text.substr(0, 4));
  const auto month = ParseInt(text.substr(5, 2));
  const auto day = ParseInt(text.substr(8, 2));
  const auto hour = ParseInt(text.substr(11, 2));
  const auto minute = ParseInt(text.substr(14, 2));
  const auto second = ParseInt(text.substr(17, 2));
  if (!year || !month || !day || !hour || !minute || !second || *month < 1 || *month > 12 ||
      *day < 1 || *day > 31) {
    return std::nullopt;
  }
  // Days from civil (Howard Hinnant's algorithm).
  const int64_t y = *year - (*month <= 2 ? 1 : 0);
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t mp = (*month + 9) % 12;
  const int64_t doy = (153 * mp + 2) / 5 + *day - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = era * 146097 + doe - 719468;
  return days * 86400 + *hour * 3600 + *minute * 60 + *second;
}

}  // namespace atrium::sim::internal
