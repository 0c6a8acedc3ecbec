// Id128: the 128-bit identifiers of accounts and transfers. Clients choose them (a
// retried request carries the same id), so they are opaque numbers to Atrium; zero and
// all-ones are reserved and never valid.
//
//   Result<Id128> id = ParseId128("340282366920938463463374607431768211454");
//   std::string text = FormatId128(*id);
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace atrium {

using Id128 = unsigned __int128;

inline constexpr Id128 kIdNone = 0;
inline constexpr Id128 kIdMax = ~Id128{0};

inline constexpr bool IsValidId(Id128 id) { return id != kIdNone && id != kIdMax; }

// Decimal, or hexadecimal with a 0x prefix. Leading or trailing text is kParseError.
Result<Id128> ParseId128(std::string_view text);
// Decimal.
std::string FormatId128(Id128 id);

// A hash for Id128 keys in hash maps (a 128-bit multiply-fold; ids are often sequential).
struct Id128Hash {
  size_t operator()(Id128 id) const {
    const unsigned __int128 product = id * Id128{0x9E3779B97F4A7C15ULL};
    return static_cast<size_t>(static_cast<uint64_t>(product) ^
                               static_cast<uint64_t>(product >> 64) ^
                               static_cast<uint64_t>(id >> 64));
  }
};

}  // namespace atrium
