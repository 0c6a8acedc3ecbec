// The nesting depth of a JSON text, found without recursion, so that a request body can be
// refused before nlohmann::json's recursive parser sees it (60,000 nested arrays overflow
// its stack). Brackets inside strings do not count; the text need not be valid JSON (the
// parser judges that afterwards).
#pragma once

#include <cstddef>
#include <string_view>

namespace atrium::server {

// Request bodies nest a few levels; 64 leaves room for any document the API accepts.
inline constexpr size_t kJsonDepthMax = 64;

// Whether some value in `text` sits deeper than `depth_max` arrays and objects.
bool JsonDepthExceeds(std::string_view text, size_t depth_max);

}  // namespace atrium::server
