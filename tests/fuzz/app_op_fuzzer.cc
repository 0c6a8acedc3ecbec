// Fuzzes the service's op bodies: the input is up to 16 JSON lines, each a whole op
// document ({"op", "actor", ...}), applied in order to a fresh AppState, the way the
// server hands a request body to the core. Each line passes the same depth bound the
// service applies before parsing. Nothing may crash, and a refused op must change nothing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/assert.h"
#include "base/nesting.h"
#include "core/app_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kLinesMax = 16;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  atrium::core::AppState state;
  // The state's snapshot encoding (the ledger of record and the rest). Between two ops
  // the state does not change, so one op's "after" is the next one's "before": one
  // encoding per op.
  const auto encoded = [&state] {
    std::string bytes;
    state.ledger().Encode(&bytes);
    state.Encode(&bytes);
    return bytes;
  };
  std::string before;
  bool encoded_before = false;
  int64_t now_us = 1'767'225'600'000'000;  // 2026-01-01
  size_t position = 0;
  for (size_t line_idx = 0; line_idx < kLinesMax && position < input.size(); ++line_idx) {
    size_t end = input.find('\n', position);
    if (end == std::string_view::npos) end = input.size();
    const std::string_view line = input.substr(position, end - position);
    position = end + 1;
    if (!atrium::JsonDepthWithin(line, atrium::kJsonDepthMax)) continue;
    const nlohmann::json command = nlohmann::json::parse(line, nullptr, false);
    if (command.is_discarded()) continue;
    if (!encoded_before) {
      before = encoded();
      encoded_before = true;
    }
    const atrium::core::AppAnswer answer = state.Apply(command, now_us);
    std::string after = encoded();
    ATRIUM_CHECK(answer.status.ok() || after == before, "a refused op changed the state");
    before = std::move(after);
    now_us += 60'000'000;
  }
  return 0;
}
