#include "sim/bookings.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <string>

namespace atrium::sim {
namespace {

std::vector<std::string_view> SplitLine(std::string_view line) {
  std::vector<std::string_view> cells;
  size_t from = 0;
  while (true) {
    const size_t comma = line.find(',', from);
    cells.push_back(line.substr(from, comma == std::string_view::npos ? line.npos : comma - from));
    if (comma == std::string_view::npos) break;
    from = comma + 1;
  }
  for (std::string_view& cell : cells) {
    while (!cell.empty() && (cell.front() == ' ' || cell.front() == '\t')) cell.remove_prefix(1);
    while (!cell.empty() && (cell.back() == ' ' || cell.back() == '\t' || cell.back() == '\r')) {
      cell.remove_suffix(1);
    }
  }
  return cells;
}

}  // namespace

Result<std::vector<BookingSpec>> ParseBookingsCsv(std::string_view text) {
  const std::vector<std::string_view> known = {
      "grant", "accelerator", "nodes", "chips", "start_s", "end_s", "booked_at_s", "one_group"};
  std::vector<int> column_of(known.size(), -1);
  std::vector<BookingSpec> out;
  bool header = true;
  size_t line_number = 0;
  size_t from = 0;
  while (from <= text.size()) {
    const size_t newline = text.find('\n', from);
    std::string_view line =
        text.substr(from, newline == std::string_view::npos ? text.npos : newline - from);
    from = newline == std::string_view::npos ? text.size() + 1 : newline + 1;
    ++line_number;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    const auto cells = SplitLine(line);
    if (cells.size() == 1 && cells[0].empty()) continue;
    const auto bad = [&](const std::string& what) {
      return MakeError(ErrorCode::kParseError,
                       fmt::format("capacity reservations, line {}: {}", line_number, what),
                       "capacity_reservations");
    };
    if (header) {
      for (size_t index = 0; index < cells.size(); ++index) {
        const auto found = std::find(known.begin(), known.end(), cells[index]);
        if (found == known.end()) return bad(fmt::format("unknown column '{}'", cells[index]));
        if (column_of[static_cast<size_t>(found - known.begin())] >= 0) {
          return bad(fmt::format("column '{}' twice", cells[index]));
        }
        column_of[static_cast<size_t>(found - known.begin())] = static_cast<int>(index);
      }
      for (const char* required : {"grant", "start_s", "end_s"}) {
        const auto at = std::find(known.begin(), known.end(), required) - known.begin();
        if (column_of[static_cast<size_t>(at)] < 0) {
          return bad(fmt::format("the header needs a '{}' column", required));
        }
      }
      header = false;
      continue;
    }
    if (out.size() >= kBookingsMax) return bad(fmt::format("more than {} bookings", kBookingsMax));
    const auto cell = [&](size_t column) -> std::string_view {
      const int at = column_of[column];
      return at >= 0 && static_cast<size_t>(at) < cells.size() ? cells[static_cast<size_t>(at)]
                                                               : std::string_view();
    };
    const auto integer = [&](size_t column, int64_t fallback, int64_t* value) -> Status {
      const std::string_view raw = cell(column);
      if (raw.empty()) {
        *value = fallback;
        return OkStatus();
      }
      const auto [end, error] = std::from_chars(raw.data(), raw.data() + raw.size(), *value);
      if (error != std::errc() || end != raw.data() + raw.size() || *value < 0) {
        return bad(fmt::format("{} must be a non-negative integer, not '{}'", known[column], raw));
      }
      return OkStatus();
    };
    if (cells.size() >
        static_cast<size_t>(*std::max_element(column_of.begin(), column_of.end())) + 1) {
      return bad("more cells than columns");
    }
    BookingSpec spec;
    spec.request.grant = std::string(cell(0));
    spec.request.accelerator = std::string(cell(1));
    int64_t one_group = 0;
    ATRIUM_TRY(integer(2, 0, &spec.request.nodes));
    ATRIUM_TRY(integer(3, 0, &spec.request.chips));
    ATRIUM_TRY(integer(4, -1, &spec.request.start_s));
    ATRIUM_TRY(integer(5, -1, &spec.request.end_s));
    ATRIUM_TRY(integer(6, 0, &spec.booked_at_s));
    ATRIUM_TRY(integer(7, 0, &one_group));
    if (spec.request.start_s < 0 || spec.request.end_s < 0)
      return bad("start_s and end_s are required");
    if (one_group > 1) return bad("one_group is 0 or 1");
    spec.request.one_group = one_group == 1;
    spec.request.booked_by = "simulate";
    out.push_back(std::move(spec));
  }
  if (header) {
    return MakeError(ErrorCode::kParseError, "capacity reservations: no header line",
                     "capacity_reservations");
  }
  return out;
}

}  // namespace atrium::sim
