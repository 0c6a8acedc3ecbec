// Fuzzes the public-trace readers (sim/traces.h). The first byte picks the reader
// (Philly JSON, Helios CSV, PAI job + task tables, split at the first NUL byte).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sim/traces.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      (void)atrium::sim::ParsePhilly(text, "philly.json");
      break;
    case 1:
      (void)atrium::sim::ParseHelios(text, "helios.csv");
      break;
    default: {
      const size_t split = text.find('\0');
      const std::string_view jobs = text.substr(0, split);
      const std::string_view tasks =
          split == std::string_view::npos ? std::string_view() : text.substr(split + 1);
      (void)atrium::sim::ParsePai(jobs, tasks, "pai");
      break;
    }
  }
  return 0;
}
