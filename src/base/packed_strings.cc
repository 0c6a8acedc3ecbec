#include "base/packed_strings.h"

#include <cstdint>

namespace atrium {

PackedStrings::PackedStrings(const std::vector<std::string>& items) {
  std::string packed;
  for (const std::string& item : items) {
    uint64_t length = item.size();
    do {
      const auto low = static_cast<uint8_t>(length & 0x7f);
      length >>= 7;
      packed.push_back(static_cast<char>(length != 0 ? (low | 0x80) : low));
    } while (length != 0);
    packed.append(item);
  }
  bytes_.assign(packed.data(), packed.size());  // exact: inline when short
}

std::vector<std::string> PackedStrings::Unpack() const {
  std::vector<std::string> items;
  size_t at = 0;
  while (at < bytes_.size()) {
    uint64_t length = 0;
    int shift = 0;
    for (;;) {
      const auto byte = static_cast<uint8_t>(bytes_[at++]);
      length |= static_cast<uint64_t>(byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) == 0) break;
    }
    items.emplace_back(bytes_, at, length);
    at += length;
  }
  return items;
}

}  // namespace atrium
