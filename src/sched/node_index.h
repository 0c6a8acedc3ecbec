// NodeIndex: the incremental free-capacity index of one pool, over a subset of its nodes
// (its members). The scheduler keeps one for the placeable nodes of each pool and one per
// reservation. Each member node sits in a bucket keyed by (largest allocatable block,
// free chips); each group and block keeps its count of wholly free member nodes, and
// groups sit in buckets by that count. A change to one node costs O(1); finding a
// placement never scans all nodes:
//
//   - below a node: the member with the fewest free chips that has an aligned block of
//     the size (best fit), O(chips_per_node^2) bucket probes at worst;
//   - k whole nodes: the group with the fewest free nodes >= k if k fits a group, else
//     the block with the fewest >= k, else the spine; inside a block or the spine the
//     fullest children are taken first and the remainder best-fit, so a job spans as few
//     groups and blocks as it can.
//
// The free chip masks are owned by the caller (one uint64 per node of the cluster, bit i
// = chip i free); after changing a member's mask, call Update. Find is complete: it finds
// a placement whenever the members have one under these rules.
#pragma once

#include <cstdint>
#include <vector>

#include "cluster/cluster.h"

namespace atrium {
class ByteReader;
class ByteWriter;
}  // namespace atrium

namespace atrium::sched {

// Chips held on one node: `mask` has one bit per chip.
struct Alloc {
  uint32_t node = 0;
  uint64_t mask = 0;
  friend bool operator==(const Alloc&, const Alloc&) = default;
};

inline uint64_t FullMask(int chips) {
  return chips >= 64 ? ~uint64_t{0} : (uint64_t{1} << chips) - 1;
}

class NodeIndex {
 public:
  // `lookup_table`: precompute LargestBlockOf for every mask (nodes of at most
  // kLookupChipsMax chips; 2^chips bytes), for indexes that live long and are hot.
  NodeIndex(const cluster::Cluster& cluster, uint32_t pool, const std::vector<uint64_t>* masks,
            bool lookup_table = false);

  void Insert(uint32_t node);
  void Erase(uint32_t node);
  bool Contains(uint32_t node) const { return member_[Local(node)] != 0; }
  // Re-files a member after its mask changed.
  void Update(uint32_t node);

  // A placement for the shape among the members, or false. Changes nothing.
  bool Find(const cluster::JobShape& shape, std::vector<Alloc>* out) const;
  // Cheap necessary-and-sufficient test for Find (counts only).
  bool CanFit(const cluster::JobShape& shape) const;

  uint32_t free_whole_nodes() const { return free_whole_; }
  uint32_t member_count() const { return member_count_; }
  // Members per largest allocatable block (index 0..chips; chips = wholly free).
  const std::vector<uint32_t>& largest_counts() const { return largest_count_; }
  // The largest block a sub-node job could get on some member (0 if none).
  int LargestBlock() const;
  // The largest aligned allocatable block of a mask on this pool's node type.
  int LargestBlockOf(uint64_t mask) const;
  // The chips a sub-node job of `chips` takes from `mask` (best fit inside the node).
  uint64_t ChooseChips(uint64_t mask, int chips) const;

  // Snapshots (scheduler_codec.cc): the order of the free lists, which decides among
  // equally good placements. DecodeOrder takes an index with the same members and masks
  // and relinks its lists in the encoded order; false if the bytes do not match it.
  void EncodeOrder(ByteWriter& writer) const;
  bool DecodeOrder(ByteReader& reader);

 private:
  static constexpr int32_t kNone = -1;
  static constexpr int kLookupChipsMax = 16;

  int ComputeLargestBlockOf(uint64_t mask) const;
  // LargestBlockOf(mask), given LargestBlockOf of the mask without `chip` (one of its
  // bits).
  int LargestGrownBy(uint64_t mask, int chip, int largest_without) const;

  uint32_t Local(uint32_t node) const { return node - first_node_; }
  size_t Bucket(int largest, int free_chips) const {
    return static_cast<size_t>(largest) * static_cast<size_t>(chips_ + 1) +
           static_cast<size_t>(free_chips);
  }
  void Link(uint32_t local);
  void Unlink(uint32_t local);
  void CountWhole(uint32_t local, int delta);
  void RefileGroup(uint32_t group_local, uint32_t old_count);
  void TakeFromGroup(uint32_t group_local, uint32_t count, std::vector<Alloc>* out) const;
  void TakeFromBlock(uint32_t block_local, uint32_t count, std::vector<Alloc>* out) const;
  void TakeFromSpine(uint32_t count, std::vector<Alloc>* out) const;
  bool FindSubNode(int chips, std::vector<Alloc>* out) const;
  bool FindWhole(uint32_t count, std::vector<Alloc>* out) const;

  const cluster::Cluster* cluster_;
  const std::vector<uint64_t>* masks_;
  uint32_t pool_;
  uint32_t first_node_;
  uint32_t first_group_;
  uint32_t first_block_;
  uint32_t nodes_per_group_;
  uint32_t nodes_per_block_;
  int chips_;
  uint64_t full_;
  std::vector<int> sizes_;           // allocation sizes below a node (empty: any size)
  std::vector<uint8_t> largest_of_;  // LargestBlockOf per mask, when precomputed

  // Per node (local index).
  std::vector<uint8_t> member_;
  std::vector<int32_t> next_;
  std::vector<int32_t> prev_;
  std::vector<uint16_t> bucket_of_;
  std::vector<int32_t> heads_;           // per (largest, free) bucket
  std::vector<uint32_t> largest_count_;  // members per largest block
  // Per group and block (local index): wholly free member nodes.
  std::vector<uint32_t> group_free_;
  std::vector<int32_t> group_next_;
  std::vector<int32_t> group_prev_;
  std::vector<int32_t> group_heads_;  // per free count, 0..nodes_per_group
  std::vector<uint32_t> block_free_;
  uint32_t free_whole_ = 0;
  uint32_t member_count_ = 0;
};

}  // namespace atrium::sched
