// IdempotencyRecords: the stored answers of idempotency keys, kept as the answer's
// serialized JSON (not a JSON tree) in one packed string per record, in the order they
// leave (oldest first), with a hash index of 8 bytes a slot that points into that order.
// A record costs its answer's bytes plus about 90 (docs/hardening.md, "Memory per
// record"); a JSON tree of the same answer cost five times that.
//
//   IdempotencyRecords records;
//   records.Add(now_us, "t-1", "key-1", R"({"job":"J1"})");
//   std::optional<std::string_view> answer = records.Find("t-1", "key-1");
//   records.DropOlderThan(now_us - keep_us, max_records);
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"

namespace atrium::core {

class IdempotencyRecords {
 public:
  IdempotencyRecords();
  IdempotencyRecords(IdempotencyRecords&&) noexcept;
  IdempotencyRecords& operator=(IdempotencyRecords&&) noexcept;
  ~IdempotencyRecords();

  // Token ids and keys longer than this are not stored (ids have 128 bytes, keys 255).
  static constexpr size_t kPartBytesMax = 65535;

  // Appends a record; `at_us` never goes below the last one's. False (and nothing added)
  // if (token, key) is already there or a part is too long.
  bool Add(int64_t at_us, std::string_view token, std::string_view key, std::string_view answer);
  // The answer stored for (token, key), if any.
  std::optional<std::string_view> Find(std::string_view token, std::string_view key) const;
  // Drops the oldest records while the oldest is older than `before_us` or there are
  // more than `max_records`.
  void DropOlderThan(int64_t before_us, size_t max_records);

  size_t size() const;
  // Every record, oldest first.
  void ForEach(const std::function<void(int64_t at_us, std::string_view token, std::string_view key,
                                        std::string_view answer)>& visit) const;

 private:
  struct Record {
    int64_t at_us;
    // u16 token length, token, u16 key length, key (little-endian), the answer JSON text.
    std::string packed;
  };
  struct Records {
    std::deque<Record> items;
    uint64_t first_seq = 0;  // the sequence number of items.front()
  };
  // The (token, key) prefix of a packed record: what the index hashes and compares.
  static std::string_view Prefix(const std::string& packed);
  static std::string_view Answer(const std::string& packed);
  struct Hash {
    using is_transparent = void;
    const Records* records;
    size_t operator()(std::string_view prefix) const;
    size_t operator()(uint64_t seq) const;
  };
  struct Eq {
    using is_transparent = void;
    const Records* records;
    std::string_view PrefixOf(uint64_t seq) const;
    bool operator()(uint64_t a, uint64_t b) const { return a == b; }
    bool operator()(uint64_t seq, std::string_view prefix) const { return PrefixOf(seq) == prefix; }
    bool operator()(std::string_view prefix, uint64_t seq) const { return PrefixOf(seq) == prefix; }
  };
  static std::string MakePrefix(std::string_view token, std::string_view key);

  // On the heap: the index's functors point at it, and it must not move with this.
  std::unique_ptr<Records> records_;
  absl::flat_hash_set<uint64_t, Hash, Eq> index_;
};

}  // namespace atrium::core
