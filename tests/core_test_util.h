// What the core tests driven through Core::Apply share (cross_ledger_test,
// datasets_core_test, reservations_core_test): the test epoch, valid ORCID-style person
// ids, ISO-8601 times for program files, and the actor a command carries.
#pragma once

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

#include <nlohmann/json.hpp>

namespace atrium::core_test {

inline constexpr int64_t kHourUs = 3'600'000'000LL;
inline constexpr int64_t kDayUs = 24 * kHourUs;
inline constexpr int64_t kT0Us = 1'767'225'600'000'000LL;  // 2026-01-01T00:00:00Z

// A valid ORCID-style id (ISO 7064 11,2 check digit) numbered n.
inline std::string Orcid(int n) {
  char digits[16];
  std::snprintf(digits, sizeof(digits), "000000030%06d", n);
  int total = 0;
  for (int i = 0; i < 15; ++i) total = (total + (digits[i] - '0')) * 2;
  const int check = (12 - total % 11) % 11;
  std::string id;
  for (int i = 0; i < 15; ++i) {
    if (i > 0 && i % 4 == 0) id += '-';
    id += digits[i];
  }
  id += check == 10 ? 'X' : static_cast<char>('0' + check);
  return id;
}

// A time in microseconds as ISO-8601 UTC (what program files take).
inline std::string Iso(int64_t us) {
  const std::time_t seconds = us / 1'000'000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// The actor of a command: a role, and the person for roles that have one.
inline nlohmann::json Actor(const std::string& role, const std::string& person = "") {
  nlohmann::json actor = {{"role", role}};
  if (!person.empty()) actor["person"] = person;
  return actor;
}

}  // namespace atrium::core_test
