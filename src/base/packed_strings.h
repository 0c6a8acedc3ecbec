// PackedStrings: a short list of strings kept in one std::string (each item's length as a
// varint, then its bytes). A job's argv of two or three short words then fits the
// string's inline buffer: 32 bytes, no allocation, where a std::vector<std::string> takes
// 24 bytes plus 32 per item on the heap.
//
//   PackedStrings argv(std::vector<std::string>{"python", "train.py"});
//   for (const std::string& arg : argv.Unpack()) ...
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace atrium {

class PackedStrings {
 public:
  PackedStrings() = default;
  explicit PackedStrings(const std::vector<std::string>& items);

  std::vector<std::string> Unpack() const;
  bool empty() const { return bytes_.empty(); }
  // Bytes kept, length prefixes included.
  size_t packed_size() const { return bytes_.size(); }

  friend bool operator==(const PackedStrings&, const PackedStrings&) = default;

 private:
  std::string bytes_;
};

}  // namespace atrium
