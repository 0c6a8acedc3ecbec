// Fuzzes the program loader's three TOML formats (program/loader.h): the first byte picks
// program definition, people or proposals.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "program/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      (void)atrium::program::ParseProgramToml(text);
      break;
    case 1:
      (void)atrium::program::ParsePeopleToml(text);
      break;
    default:
      (void)atrium::program::ParseProposalsToml(text);
      break;
  }
  return 0;
}
