// SegmentedVector<T>: an append-only sequence stored in fixed-size segments. Growing it
// never moves or copies what is already stored, so a ledger of ten million transfers
// grows without the doubling peak of std::vector (which briefly holds 1.5x its data), and
// references to stored items stay valid. Truncate drops items from the end, for rolling
// back a failed linked batch.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "base/assert.h"

namespace atrium {

template <typename T, size_t kSegmentItems = 65536>
class SegmentedVector {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  T& operator[](size_t index) {
    ATRIUM_ASSERT(index < size_, "SegmentedVector index out of range");
    return segments_[index / kSegmentItems][index % kSegmentItems];
  }
  const T& operator[](size_t index) const {
    ATRIUM_ASSERT(index < size_, "SegmentedVector index out of range");
    return segments_[index / kSegmentItems][index % kSegmentItems];
  }

  T& push_back(const T& item) {
    if (size_ == segments_.size() * kSegmentItems) {
      segments_.push_back(std::make_unique_for_overwrite<T[]>(kSegmentItems));
    }
    T& slot = segments_[size_ / kSegmentItems][size_ % kSegmentItems];
    slot = item;
    ++size_;
    return slot;
  }

  void Truncate(size_t new_size) {
    ATRIUM_ASSERT(new_size <= size_, "Truncate cannot grow");
    size_ = new_size;
  }

  void Reserve(size_t items) {
    while (segments_.size() * kSegmentItems < items) {
      segments_.push_back(std::make_unique_for_overwrite<T[]>(kSegmentItems));
    }
  }

 private:
  std::vector<std::unique_ptr<T[]>> segments_;
  size_t size_ = 0;
};

}  // namespace atrium
