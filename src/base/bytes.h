// ByteWriter and ByteReader: the little-endian, fixed-width encoding of journal records
// and snapshots. Every read is bounds-checked: a short or malformed buffer makes the
// reader fail (ok() false) rather than read past the end, so a corrupted record is
// reported as kCorruption, never undefined behaviour.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "base/id.h"

namespace atrium {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}

  template <typename T>
  requires std::is_integral_v<T> || std::is_same_v<T, Id128>
  void Put(T value) {
    char raw[sizeof(T)];
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(raw, &value, sizeof(T));
    } else {
      for (size_t byte_idx = 0; byte_idx < sizeof(T); ++byte_idx) {
        raw[byte_idx] = static_cast<char>(static_cast<uint8_t>(value >> (8 * byte_idx)));
      }
    }
    out_->append(raw, sizeof(T));
  }
  // LEB128: seven bits a byte, low first, so small numbers (account indexes, amounts,
  // codes) take one to three bytes instead of eight or sixteen. Signed values are
  // zig-zag mapped first so that small negative numbers stay small.
  template <typename T>
  requires std::is_unsigned_v<T> || std::is_same_v<T, Id128>
  void PutVarint(T value) {
    char raw[19];
    size_t length = 0;
    while (value >= 0x80) {
      raw[length++] = static_cast<char>(static_cast<uint8_t>(value) | 0x80);
      value >>= 7;
    }
    raw[length++] = static_cast<char>(static_cast<uint8_t>(value));
    out_->append(raw, length);
  }
  void PutZigzag(int64_t value) {
    PutVarint<uint64_t>((static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63));
  }
  void PutBytes(std::string_view bytes) {
    Put<uint32_t>(static_cast<uint32_t>(bytes.size()));
    out_->append(bytes);
  }

 private:
  std::string* out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  template <typename T>
  requires std::is_integral_v<T> || std::is_same_v<T, Id128> T Get() {
    if (!ok_ || in_.size() - pos_ < sizeof(T)) {
      ok_ = false;
      return T{};
    }
    T value{};
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(&value, in_.data() + pos_, sizeof(T));
    } else {
      for (size_t byte_idx = 0; byte_idx < sizeof(T); ++byte_idx) {
        value = static_cast<T>(
            value | static_cast<T>(static_cast<T>(static_cast<uint8_t>(in_[pos_ + byte_idx]))
                                   << (8 * byte_idx)));
      }
    }
    pos_ += sizeof(T);
    return value;
  }
  template <typename T>
  requires std::is_unsigned_v<T> || std::is_same_v<T, Id128> T GetVarint() {
    T value = 0;
    for (unsigned shift = 0; ok_ && pos_ < in_.size(); shift += 7) {
      const auto byte = static_cast<uint8_t>(in_[pos_++]);
      // Refuse bits beyond T and non-minimal trailing zero bytes: one value, one encoding.
      if (shift >= sizeof(T) * 8 || (shift > 0 && byte == 0) ||
          (shift + 7 > sizeof(T) * 8 && (byte & 0x7F) >> (sizeof(T) * 8 - shift) != 0)) {
        break;
      }
      value |= static_cast<T>(static_cast<T>(byte & 0x7F) << shift);
      if ((byte & 0x80) == 0) return value;
    }
    ok_ = false;
    return T{};
  }
  int64_t GetZigzag() {
    const auto raw = GetVarint<uint64_t>();
    return static_cast<int64_t>((raw >> 1) ^ (~(raw & 1) + 1));
  }
  std::string_view GetBytes() {
    const auto size = Get<uint32_t>();
    if (!ok_ || in_.size() - pos_ < size) {
      ok_ = false;
      return {};
    }
    std::string_view bytes = in_.substr(pos_, size);
    pos_ += size;
    return bytes;
  }
  // The next `size` bytes as they are (false ok() if fewer are left).
  std::string_view GetRaw(uint64_t size) {
    if (!ok_ || in_.size() - pos_ < size) {
      ok_ = false;
      return {};
    }
    std::string_view bytes = in_.substr(pos_, static_cast<size_t>(size));
    pos_ += static_cast<size_t>(size);
    return bytes;
  }
  // A count of items each at least `item_bytes_min` long: refuses counts the remaining
  // input cannot hold, so a corrupted count cannot trigger a huge allocation.
  uint32_t GetCount(size_t item_bytes_min) {
    const auto count = Get<uint32_t>();
    if (ok_ && item_bytes_min > 0 && count > (in_.size() - pos_) / item_bytes_min) ok_ = false;
    return ok_ ? count : 0;
  }

  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == in_.size(); }
  size_t position() const { return pos_; }  // bytes read so far
  void Fail() { ok_ = false; }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace atrium
