// SegmentedVector<T>: an append-only sequence stored in segments. Growing it never moves
// or copies what is already stored, so a ledger of ten million transfers grows without
// the doubling peak of std::vector (which briefly holds 1.5x its data), and references to
// stored items stay valid. Truncate drops items from the end, for rolling back a failed
// linked batch.
//
// The first kSegmentItems items live in segments that double (kFirstItems, kFirstItems,
// 2 x kFirstItems, ... kSegmentItems / 2), so a small sequence holds a few kilobytes, not
// a whole segment; after that every segment holds kSegmentItems. Item i < kSegmentItems is
// in segment bit_width(i) - log2(kFirstItems) (0 below kFirstItems).
#pragma once

#include <bit>
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "base/assert.h"

namespace atrium {

template <typename T, size_t kSegmentItems = 65536, size_t kFirstItems = 64>
class SegmentedVector {
  static_assert(std::has_single_bit(kSegmentItems) && std::has_single_bit(kFirstItems) &&
                    kFirstItems <= kSegmentItems,
                "segment sizes are powers of two, the first no larger than the rest");

 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  T& operator[](size_t index) {
    ATRIUM_ASSERT(index < size_, "SegmentedVector index out of range");
    return Slot(index);
  }
  const T& operator[](size_t index) const {
    ATRIUM_ASSERT(index < size_, "SegmentedVector index out of range");
    return const_cast<SegmentedVector*>(this)->Slot(index);
  }

  T& push_back(const T& item) {
    if (size_ == capacity_) Grow();
    T& slot = Slot(size_);
    slot = item;
    ++size_;
    return slot;
  }

  T& push_back(T&& item) {
    if (size_ == capacity_) Grow();
    T& slot = Slot(size_);
    slot = std::move(item);
    ++size_;
    return slot;
  }

  void Truncate(size_t new_size) {
    ATRIUM_ASSERT(new_size <= size_, "Truncate cannot grow");
    size_ = new_size;
  }

  void Reserve(size_t items) {
    while (capacity_ < items) Grow();
  }

  // Items the allocated segments hold (for memory accounting).
  size_t capacity() const { return capacity_; }

 private:
  static constexpr size_t kFirstBits = std::bit_width(kFirstItems) - 1;
  static constexpr size_t kPrefixSegments = std::bit_width(kSegmentItems / kFirstItems);

  // Items segment `segment` holds.
  static size_t SegmentSize(size_t segment) {
    if (segment == 0) return kFirstItems;
    if (segment < kPrefixSegments) return kFirstItems << (segment - 1);
    return kSegmentItems;
  }

  T& Slot(size_t index) {
    if (index < kFirstItems) return segments_[0][index];
    if (index < kSegmentItems) {
      const size_t width = std::bit_width(index);  // index is in [2^(width-1), 2^width)
      return segments_[width - kFirstBits][index - (size_t{1} << (width - 1))];
    }
    return segments_[kPrefixSegments - 1 + index / kSegmentItems][index % kSegmentItems];
  }

  void Grow() {
    const size_t items = SegmentSize(segments_.size());
    segments_.push_back(std::make_unique_for_overwrite<T[]>(items));
    capacity_ += items;
  }

  std::vector<std::unique_ptr<T[]>> segments_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace atrium
