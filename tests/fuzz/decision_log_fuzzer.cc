// Fuzzes the public log verifier (program/decision_log.h), which `atrium audit verify`
// runs on any file it is given: it must answer, never crash, and a log it accepts must
// have exactly as many entries as lines.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/assert.h"
#include "program/decision_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const atrium::program::LogVerification verification = atrium::program::VerifyLog(text);
  if (verification.ok) {
    ATRIUM_CHECK(verification.entries == std::count(text.begin(), text.end(), '\n'),
                 "an accepted log's entry count differs from its lines");
  }
  return 0;
}
