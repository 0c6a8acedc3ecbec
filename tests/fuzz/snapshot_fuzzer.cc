// Fuzzes snapshot decoding (core::Core::Decode, the journal's snapshot state): any bytes
// decode or are refused as corruption; a decoded state is verified without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/core.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto core = atrium::core::Core::Decode(bytes);
  if (core.ok()) (void)core->Verify();
  return 0;
}
