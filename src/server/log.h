// Structured logs of the service: one JSON object per line on stderr (spdlog), with the
// time (UTC, microseconds), the level and the event's fields. Callers never pass a
// secret: token ids may appear, token texts, salts, hashes and request bodies never do.
//
//   LogEvent(LogLevel::kError, "internal_error", {{"request_id", id}, {"detail", text}});
//   -> {"ts":"2026-11-30T23:59:59.123456Z","level":"error","event":"internal_error",...}
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace atrium::server {

enum class LogLevel { kInfo, kWarn, kError };

// Thread-safe; the first call sets the logger up.
void LogEvent(LogLevel level, std::string_view event, const nlohmann::json& fields = {});

}  // namespace atrium::server
