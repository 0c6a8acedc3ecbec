// Credits: exact money. One credit is one unit of the program's currency at list price
// (1 credit = 1 USD in a USD program); a Credits value holds an integer count of
// micro-credits in an int64, so the range is about +-9.2 trillion credits. No floating
// point ever touches it: arithmetic is checked and reports kOverflow instead of wrapping.
//
//   Credits price = *Credits::Parse("1.34375");          // per chip-hour
//   Result<Credits> cost = UsageCost(64, 3600, price);   // 86 credits
//   Credits::Parse("1e3")  -> parse_error;  "0.0000001" -> parse_error (sub-micro)
#pragma once

#include <compare>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "base/error.h"

namespace atrium {

class Credits {
 public:
  static constexpr int64_t kMicroPerCredit = 1'000'000;

  constexpr Credits() = default;
  static constexpr Credits FromMicro(int64_t micro) { return Credits(micro); }
  // Whole credits; overflow is a programmer error here (use Parse for input).
  static constexpr Credits FromWhole(int64_t whole) { return Credits(whole * kMicroPerCredit); }
  static constexpr Credits Zero() { return Credits(0); }
  static constexpr Credits Max() { return Credits(std::numeric_limits<int64_t>::max()); }

  // Decimal text: an optional '-', digits, and at most six digits after a '.'.
  // Anything else (spaces, '+', exponents, a seventh decimal, overflow) is kParseError.
  static Result<Credits> Parse(std::string_view text);

  // Shortest exact decimal: "1234.56", "500000", "-0.000001".
  std::string ToString() const;

  constexpr int64_t micro() const { return micro_; }
  constexpr bool is_negative() const { return micro_ < 0; }
  constexpr bool is_zero() const { return micro_ == 0; }

  Result<Credits> CheckedAdd(Credits other) const;
  Result<Credits> CheckedSub(Credits other) const;
  Result<Credits> CheckedNeg() const;

  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads a defaulted <=>
  friend constexpr auto operator<=>(Credits, Credits) = default;

 private:
  constexpr explicit Credits(int64_t micro) : micro_(micro) {}
  int64_t micro_ = 0;
};

// Cost of using `chips` chips for `seconds` seconds at `price_per_chip_hour`:
// chips x seconds x price / 3600, computed in 128 bits and rounded up to the next
// micro-credit, once. kNegativeAmount for negative inputs, kOverflow beyond int64.
Result<Credits> UsageCost(int64_t chips, int64_t seconds, Credits price_per_chip_hour);

}  // namespace atrium
