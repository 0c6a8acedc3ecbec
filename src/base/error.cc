#include "base/error.h"

#include <array>

namespace atrium {
namespace {
constexpr std::array kNames = {
#define ATRIUM_ERROR_NAME(name, text) std::string_view(text),
    ATRIUM_ERROR_CODES(ATRIUM_ERROR_NAME)
#undef ATRIUM_ERROR_NAME
};
}  // namespace

std::string_view ToString(ErrorCode code) {
  const auto index = static_cast<size_t>(code);
  return index < kNames.size() ? kNames[index] : std::string_view("unknown");
}

bool ErrorCodeFromString(std::string_view text, ErrorCode* code) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == text) {
      *code = static_cast<ErrorCode>(i);
      return true;
    }
  }
  return false;
}

std::string Error::ToString() const {
  std::string out(atrium::ToString(code));
  if (!message.empty()) out += ": " + message;
  if (!field.empty()) out += " (" + field + ")";
  return out;
}

}  // namespace atrium
