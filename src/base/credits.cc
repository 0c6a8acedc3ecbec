#include "base/credits.h"

#include <charconv>

namespace atrium {
namespace {
constexpr int kFractionDigitsMax = 6;

Error ParseFailure(std::string_view text, std::string_view why) {
  return MakeError(ErrorCode::kParseError, "'" + std::string(text.substr(0, 64)) +
                                               "' is not an amount: " + std::string(why));
}
}  // namespace

Result<Credits> Credits::Parse(std::string_view text) {
  std::string_view rest = text;
  bool negative = false;
  if (!rest.empty() && rest.front() == '-') {
    negative = true;
    rest.remove_prefix(1);
  }
  const size_t dot = rest.find('.');
  std::string_view whole = rest.substr(0, dot);
  std::string_view fraction =
      dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
  if (whole.empty()) return ParseFailure(text, "digits expected before the decimal point");
  if (dot != std::string_view::npos && fraction.empty()) {
    return ParseFailure(text, "digits expected after the decimal point");
  }
  if (fraction.size() > kFractionDigitsMax) {
    return ParseFailure(text, "more than six decimals (the unit is one micro-credit)");
  }
  for (std::string_view part : {whole, fraction}) {
    for (char c : part) {
      if (c < '0' || c > '9') return ParseFailure(text, "only digits, '-' and one '.' allowed");
    }
  }
  // Accumulate as a negative number so that INT64_MIN itself parses.
  int64_t micro = 0;
  auto push_digit = [&micro](char c) {
    return !__builtin_mul_overflow(micro, int64_t{10}, &micro) &&
           !__builtin_sub_overflow(micro, int64_t{c - '0'}, &micro);
  };
  for (char c : whole) {
    if (!push_digit(c)) return ParseFailure(text, "out of range");
  }
  for (size_t digit_idx = 0; digit_idx < kFractionDigitsMax; ++digit_idx) {
    if (!push_digit(digit_idx < fraction.size() ? fraction[digit_idx] : '0')) {
      return ParseFailure(text, "out of range");
    }
  }
  if (!negative) {
    if (micro == std::numeric_limits<int64_t>::min()) return ParseFailure(text, "out of range");
    micro = -micro;
  }
  return Credits(micro);
}

std::string Credits::ToString() const {
  // Work with the magnitude in unsigned arithmetic so INT64_MIN formats correctly.
  const bool negative = micro_ < 0;
  const uint64_t magnitude =
      negative ? uint64_t{0} - static_cast<uint64_t>(micro_) : static_cast<uint64_t>(micro_);
  const uint64_t whole = magnitude / kMicroPerCredit;
  uint64_t fraction = magnitude % kMicroPerCredit;
  std::string out = negative ? "-" : "";
  out += std::to_string(whole);
  if (fraction != 0) {
    char digits[kFractionDigitsMax];
    for (int digit_idx = kFractionDigitsMax - 1; digit_idx >= 0; --digit_idx) {
      digits[digit_idx] = static_cast<char>('0' + fraction % 10);
      fraction /= 10;
    }
    int length = kFractionDigitsMax;
    while (digits[length - 1] == '0') --length;
    out += '.';
    out.append(digits, static_cast<size_t>(length));
  }
  return out;
}

Result<Credits> Credits::CheckedAdd(Credits other) const {
  int64_t sum = 0;
  if (__builtin_add_overflow(micro_, other.micro_, &sum)) {
    return MakeError(ErrorCode::kOverflow, "credit sum out of range");
  }
  return Credits(sum);
}

Result<Credits> Credits::CheckedSub(Credits other) const {
  int64_t difference = 0;
  if (__builtin_sub_overflow(micro_, other.micro_, &difference)) {
    return MakeError(ErrorCode::kOverflow, "credit difference out of range");
  }
  return Credits(difference);
}

Result<Credits> Credits::CheckedNeg() const {
  if (micro_ == std::numeric_limits<int64_t>::min()) {
    return MakeError(ErrorCode::kOverflow, "credit negation out of range");
  }
  return Credits(-micro_);
}

Result<Credits> UsageCost(int64_t chips, int64_t seconds, Credits price_per_chip_hour) {
  if (chips < 0 || seconds < 0 || price_per_chip_hour.is_negative()) {
    return MakeError(ErrorCode::kNegativeAmount, "usage cost of a negative quantity");
  }
  constexpr __int128 kSecondsPerHour = 3600;
  // chips and seconds are < 2^63 each and the price < 2^63: the triple product could
  // reach 2^189, so multiply in two checked steps.
  __int128 chip_seconds = 0;
  if (__builtin_mul_overflow(static_cast<__int128>(chips), static_cast<__int128>(seconds),
                             &chip_seconds)) {
    return MakeError(ErrorCode::kOverflow, "chip-seconds out of range");
  }
  __int128 product = 0;
  if (__builtin_mul_overflow(chip_seconds, static_cast<__int128>(price_per_chip_hour.micro()),
                             &product)) {
    return MakeError(ErrorCode::kOverflow, "usage cost out of range");
  }
  const __int128 micro = product / kSecondsPerHour + (product % kSecondsPerHour != 0 ? 1 : 0);
  if (micro > std::numeric_limits<int64_t>::max()) {
    return MakeError(ErrorCode::kOverflow, "usage cost out of range");
  }
  return Credits::FromMicro(static_cast<int64_t>(micro));
}

}  // namespace atrium
