#include "base/id.h"

#include <algorithm>

namespace atrium {

Result<Id128> ParseId128(std::string_view text) {
  auto fail = [&text](std::string_view why) {
    return MakeError(ErrorCode::kParseError,
                     "'" + std::string(text.substr(0, 64)) + "' is not an id: " + std::string(why));
  };
  unsigned base = 10;
  std::string_view digits = text;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  }
  if (digits.empty()) return fail("no digits");
  Id128 value = 0;
  for (char c : digits) {
    unsigned digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      digit = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return fail("unexpected character");
    }
    Id128 next = 0;
    if (__builtin_mul_overflow(value, Id128{base}, &next) ||
        __builtin_add_overflow(next, Id128{digit}, &next)) {
      return fail("more than 128 bits");
    }
    value = next;
  }
  return value;
}

std::string FormatId128(Id128 id) {
  if (id == 0) return "0";
  std::string out;
  while (id != 0) {
    out.push_back(static_cast<char>('0' + static_cast<int>(id % 10)));
    id /= 10;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace atrium
