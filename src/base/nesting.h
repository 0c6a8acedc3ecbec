// JsonDepthWithin: the nesting depth of JSON text, measured by one scan before any parser
// sees it. Parsers and serializers that recurse (nlohmann's dump, comparisons, our own
// walkers) overflow the stack on input nested tens of thousands deep, so every reader of
// outside JSON (trace files, state files, the public log) checks the depth first and
// refuses deeper text with a coded error instead of crashing.
//
//   if (!JsonDepthWithin(text, kJsonDepthMax)) return MakeError(kParseError, "too deep");
#pragma once

#include <cstddef>
#include <string_view>

namespace atrium {

// Deep enough for every document Atrium writes (the deepest, a program state file, nests
// fewer than 10 levels), shallow enough for any recursive walk on a 1 MiB-stack thread.
inline constexpr size_t kJsonDepthMax = 64;

// Whether no array or object in `text` is nested deeper than depth_max. Brackets inside
// strings (with their escapes) are not counted. Text that is not JSON at all passes and
// is left to the parser to refuse.
inline bool JsonDepthWithin(std::string_view text, size_t depth_max) {
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > depth_max) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

}  // namespace atrium
