#include "server/log.h"

#include <memory>
#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace atrium::server {
namespace {

spdlog::logger& Logger() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    auto made = std::make_shared<spdlog::logger>("atrium",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
    // %v is the event's fields without their braces; the rest frames them as one object.
    made->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})",
                      spdlog::pattern_time_type::utc);
    made->set_level(spdlog::level::info);
    made->flush_on(spdlog::level::info);
    return made;
  }();
  return *logger;
}

}  // namespace

void LogEvent(LogLevel level, std::string_view event, const nlohmann::json& fields) {
  nlohmann::json object = {{"event", event}};
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) object[key] = value;
  }
  // Invalid UTF-8 in a field (a client's path) is replaced, never thrown.
  std::string text = object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // "{...}" -> "..." inside the pattern's braces.
  const std::string_view inner = std::string_view(text).substr(1, text.size() - 2);
  const spdlog::level::level_enum spd = level == LogLevel::kError  ? spdlog::level::err
                                        : level == LogLevel::kWarn ? spdlog::level::warn
                                                                   : spdlog::level::info;
  Logger().log(spd, "{}", inner);
}

}  // namespace atrium::server
