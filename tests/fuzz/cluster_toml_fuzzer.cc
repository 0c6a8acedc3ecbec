// Fuzzes the cluster TOML loader (cluster/config.h): parsed or refused with a code.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cluster/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)atrium::cluster::ParseClusterToml(text, "fuzz.toml");
  return 0;
}
