// Fuzzes the journal's record decoding (core/command.h): any bytes decode to a command or
// are refused as corruption; a decoded command must survive an encode/decode round trip
// unchanged and apply to a fresh core without crashing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/assert.h"
#include "core/command.h"
#include "core/core.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto command = atrium::core::DecodeCommand(bytes);
  if (!command.ok()) return 0;
  std::string encoded;
  atrium::core::EncodeCommand(*command, &encoded);
  auto again = atrium::core::DecodeCommand(encoded);
  ATRIUM_CHECK(again.ok() && *again == *command, "a command does not survive a round trip");
  atrium::core::Core core;
  (void)core.Apply(*command);
  return 0;
}
