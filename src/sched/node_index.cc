#include "sched/node_index.h"

#include <algorithm>
#include <bit>

#include "base/assert.h"

namespace atrium::sched {

NodeIndex::NodeIndex(const cluster::Cluster& cluster, uint32_t pool,
                     const std::vector<uint64_t>* masks, bool lookup_table)
    : cluster_(&cluster), masks_(masks), pool_(pool) {
  const cluster::Pool& p = cluster.pools()[pool];
  first_node_ = p.first_node;
  first_group_ = p.first_group;
  first_block_ = p.first_block;
  nodes_per_group_ = p.nodes_per_group;
  nodes_per_block_ = p.nodes_per_group * p.groups_per_block;
  chips_ = p.chips_per_node;
  full_ = FullMask(chips_);
  sizes_ = cluster.node_types()[p.node_type].allocation_sizes;
  if (lookup_table && chips_ <= kLookupChipsMax) {
    // Each mask from the one without its lowest free chip: only the blocks around that chip
    // are new (one test per size, not a scan of every aligned block; the table is built
    // at every cluster load and every snapshot decode).
    largest_of_.assign(size_t{1} << chips_, 0);
    for (uint64_t mask = 1; mask < largest_of_.size(); ++mask) {
      largest_of_[mask] = static_cast<uint8_t>(
          LargestGrownBy(mask, std::countr_zero(mask), largest_of_[mask & (mask - 1)]));
    }
  }
  member_.assign(p.node_count, 0);
  next_.assign(p.node_count, kNone);
  prev_.assign(p.node_count, kNone);
  bucket_of_.assign(p.node_count, 0);
  heads_.assign(static_cast<size_t>(chips_ + 1) * static_cast<size_t>(chips_ + 1), kNone);
  largest_count_.assign(static_cast<size_t>(chips_) + 1, 0);
  group_free_.assign(p.group_count, 0);
  group_next_.assign(p.group_count, kNone);
  group_prev_.assign(p.group_count, kNone);
  group_heads_.assign(nodes_per_group_ + 1, kNone);
  block_free_.assign(p.block_count, 0);
  // Every group starts in the "no free node" bucket.
  for (uint32_t group = p.group_count; group-- > 0;) {
    group_next_[group] = group_heads_[0];
    if (group_heads_[0] != kNone)
      group_prev_[static_cast<size_t>(group_heads_[0])] = static_cast<int32_t>(group);
    group_heads_[0] = static_cast<int32_t>(group);
  }
}

int NodeIndex::LargestBlockOf(uint64_t mask) const {
  if (!largest_of_.empty()) return largest_of_[mask & full_];
  return ComputeLargestBlockOf(mask);
}

int NodeIndex::LargestGrownBy(uint64_t mask, int chip, int largest_without) const {
  if (mask == full_) return chips_;
  if (sizes_.empty()) return largest_without + 1;  // any size: the free chips
  // The blocks the mask has and the one without the chip lacks are those that hold the
  // chip: one aligned block per size.
  int largest = largest_without;
  for (const int size : sizes_) {
    const int offset = chip / size * size;
    if (offset + size > chips_) continue;
    const uint64_t block = FullMask(size) << offset;
    if ((mask & block) == block) largest = std::max(largest, size);
  }
  return largest;
}

int NodeIndex::ComputeLargestBlockOf(uint64_t mask) const {
  if (mask == full_) return chips_;
  if (sizes_.empty()) return std::popcount(mask);
  for (auto size_it = sizes_.rbegin(); size_it != sizes_.rend(); ++size_it) {
    const int size = *size_it;
    const uint64_t block = FullMask(size);
    for (int offset = 0; offset + size <= chips_; offset += size) {
      if (((mask >> offset) & block) == block) return size;
    }
  }
  return 0;
}

uint64_t NodeIndex::ChooseChips(uint64_t mask, int chips) const {
  ATRIUM_ASSERT(chips > 0 && chips < chips_, "ChooseChips is for sub-node jobs");
  if (sizes_.empty()) {
    uint64_t chosen = 0;
    uint64_t rest = mask;
    for (int taken = 0; taken < chips; ++taken) {
      const uint64_t lowest = rest & (~rest + 1);
      chosen |= lowest;
      rest &= ~lowest;
    }
    return chosen;
  }
  // The aligned block whose parent (the next allocation size up, or the node) has the
  // fewest free chips: fill partly used parents first, keep whole parents whole.
  const auto size_it = std::find(sizes_.begin(), sizes_.end(), chips);
  ATRIUM_ASSERT(size_it != sizes_.end(), "size not allowed; Shape should have refused it");
  const int parent = size_it + 1 == sizes_.end() ? chips_ : *(size_it + 1);
  const uint64_t block = FullMask(chips);
  uint64_t best = 0;
  int best_parent_free = chips_ + 1;
  for (int offset = 0; offset + chips <= chips_; offset += chips) {
    if (((mask >> offset) & block) != block) continue;
    const int parent_offset = offset / parent * parent;
    const int parent_free = std::popcount((mask >> parent_offset) & FullMask(parent));
    if (parent_free < best_parent_free) {
      best_parent_free = parent_free;
      best = block << offset;
    }
  }
  ATRIUM_ASSERT(best != 0, "no aligned block; the index said there was one");
  return best;
}

void NodeIndex::Link(uint32_t local) {
  const uint64_t mask = (*masks_)[first_node_ + local];
  const int largest = LargestBlockOf(mask);
  const int free_chips = std::popcount(mask);
  const size_t bucket = Bucket(largest, free_chips);
  bucket_of_[local] = static_cast<uint16_t>(bucket);
  prev_[local] = kNone;
  next_[local] = heads_[bucket];
  if (heads_[bucket] != kNone)
    prev_[static_cast<size_t>(heads_[bucket])] = static_cast<int32_t>(local);
  heads_[bucket] = static_cast<int32_t>(local);
  ++largest_count_[static_cast<size_t>(largest)];
  if (mask == full_) CountWhole(local, +1);
}

void NodeIndex::Unlink(uint32_t local) {
  const size_t bucket = bucket_of_[local];
  if (prev_[local] != kNone) {
    next_[static_cast<size_t>(prev_[local])] = next_[local];
  } else {
    heads_[bucket] = next_[local];
  }
  if (next_[local] != kNone) prev_[static_cast<size_t>(next_[local])] = prev_[local];
  const size_t largest = bucket / static_cast<size_t>(chips_ + 1);
  const size_t free_chips = bucket % static_cast<size_t>(chips_ + 1);
  --largest_count_[largest];
  if (static_cast<int>(free_chips) == chips_) CountWhole(local, -1);
}

void NodeIndex::CountWhole(uint32_t local, int delta) {
  const cluster::Node& node = cluster_->nodes()[first_node_ + local];
  const uint32_t group_local = node.group - first_group_;
  const uint32_t old_count = group_free_[group_local];
  group_free_[group_local] = static_cast<uint32_t>(static_cast<int>(old_count) + delta);
  block_free_[node.block - first_block_] =
      static_cast<uint32_t>(static_cast<int>(block_free_[node.block - first_block_]) + delta);
  free_whole_ = static_cast<uint32_t>(static_cast<int>(free_whole_) + delta);
  RefileGroup(group_local, old_count);
}

void NodeIndex::RefileGroup(uint32_t group_local, uint32_t old_count) {
  if (group_prev_[group_local] != kNone) {
    group_next_[static_cast<size_t>(group_prev_[group_local])] = group_next_[group_local];
  } else {
    group_heads_[old_count] = group_next_[group_local];
  }
  if (group_next_[group_local] != kNone) {
    group_prev_[static_cast<size_t>(group_next_[group_local])] = group_prev_[group_local];
  }
  const uint32_t count = group_free_[group_local];
  group_prev_[group_local] = kNone;
  group_next_[group_local] = group_heads_[count];
  if (group_heads_[count] != kNone) {
    group_prev_[static_cast<size_t>(group_heads_[count])] = static_cast<int32_t>(group_local);
  }
  group_heads_[count] = static_cast<int32_t>(group_local);
}

void NodeIndex::Insert(uint32_t node) {
  const uint32_t local = Local(node);
  ATRIUM_ASSERT(member_[local] == 0, "node is already a member");
  member_[local] = 1;
  ++member_count_;
  Link(local);
}

void NodeIndex::Erase(uint32_t node) {
  const uint32_t local = Local(node);
  ATRIUM_ASSERT(member_[local] != 0, "node is not a member");
  Unlink(local);
  member_[local] = 0;
  --member_count_;
}

void NodeIndex::Update(uint32_t node) {
  const uint32_t local = Local(node);
  ATRIUM_ASSERT(member_[local] != 0, "Update of a non-member");
  Unlink(local);
  Link(local);
}

int NodeIndex::LargestBlock() const {
  for (int largest = chips_; largest > 0; --largest) {
    if (largest_count_[static_cast<size_t>(largest)] > 0) return largest;
  }
  return 0;
}

bool NodeIndex::CanFit(const cluster::JobShape& shape) const {
  if (shape.whole_nodes > 0) return free_whole_ >= shape.whole_nodes;
  return LargestBlock() >= shape.sub_node_chips;
}

bool NodeIndex::Find(const cluster::JobShape& shape, std::vector<Alloc>* out) const {
  ATRIUM_ASSERT(shape.pool == pool_, "shape of another pool");
  out->clear();
  if (!CanFit(shape)) return false;
  if (shape.whole_nodes > 0) return FindWhole(shape.whole_nodes, out);
  return FindSubNode(shape.sub_node_chips, out);
}

bool NodeIndex::FindSubNode(int chips, std::vector<Alloc>* out) const {
  // Fewest free chips first (best fit); among those, any node whose largest block fits.
  for (int free_chips = chips; free_chips <= chips_; ++free_chips) {
    for (int largest = chips; largest <= free_chips; ++largest) {
      const int32_t local = heads_[Bucket(largest, free_chips)];
      if (local == kNone) continue;
      const uint32_t node = first_node_ + static_cast<uint32_t>(local);
      out->push_back({node, ChooseChips((*masks_)[node], chips)});
      return true;
    }
  }
  return false;
}

void NodeIndex::TakeFromGroup(uint32_t group_local, uint32_t count, std::vector<Alloc>* out) const {
  const cluster::Group& group = cluster_->groups()[first_group_ + group_local];
  for (uint32_t node = group.first_node; count > 0 && node < group.first_node + group.node_count;
       ++node) {
    if (member_[Local(node)] != 0 && (*masks_)[node] == full_) {
      out->push_back({node, full_});
      --count;
    }
  }
  ATRIUM_ASSERT(count == 0, "group had fewer free nodes than counted");
}

// Takes `count` free nodes from children whose free counts are `free_of(child)`: the
// fullest children whole while they fit, then the best-fitting child for the remainder.
template <typename FreeOf, typename Take>
static void TakeGreedy(uint32_t first, uint32_t child_count, uint32_t count, FreeOf free_of,
                       Take take) {
  std::vector<uint32_t> children;
  for (uint32_t child = 0; child < child_count; ++child) {
    if (free_of(first + child) > 0) children.push_back(child);
  }
  std::stable_sort(children.begin(), children.end(), [&](uint32_t left, uint32_t right) {
    return free_of(first + left) > free_of(first + right);
  });
  std::vector<uint32_t> skipped;
  for (const uint32_t child : children) {
    if (count == 0) break;
    const uint32_t free_count = free_of(first + child);
    if (free_count <= count) {
      take(child, free_count);
      count -= free_count;
    } else {
      skipped.push_back(child);
    }
  }
  if (count == 0) return;
  uint32_t best = UINT32_MAX;
  for (const uint32_t child : skipped) {
    if (best == UINT32_MAX || free_of(first + child) < free_of(first + best)) best = child;
  }
  ATRIUM_ASSERT(best != UINT32_MAX, "not enough free nodes for TakeGreedy");
  take(best, count);
}

void NodeIndex::TakeFromBlock(uint32_t block_local, uint32_t count, std::vector<Alloc>* out) const {
  const cluster::Block& block = cluster_->blocks()[first_block_ + block_local];
  const uint32_t first_group_local = block.first_group - first_group_;
  TakeGreedy(
      first_group_local, block.group_count, count,
      [&](uint32_t group_local) { return group_free_[group_local]; },
      [&](uint32_t child, uint32_t take) { TakeFromGroup(first_group_local + child, take, out); });
}

void NodeIndex::TakeFromSpine(uint32_t count, std::vector<Alloc>* out) const {
  TakeGreedy(
      0, static_cast<uint32_t>(block_free_.size()), count,
      [&](uint32_t block_local) { return block_free_[block_local]; },
      [&](uint32_t child, uint32_t take) { TakeFromBlock(child, take, out); });
}

bool NodeIndex::FindWhole(uint32_t count, std::vector<Alloc>* out) const {
  if (count <= nodes_per_group_) {
    for (uint32_t free_count = count; free_count <= nodes_per_group_; ++free_count) {
      const int32_t group_local = group_heads_[free_count];
      if (group_local == kNone) continue;
      TakeFromGroup(static_cast<uint32_t>(group_local), count, out);
      return true;
    }
  }
  if (count <= nodes_per_block_) {
    uint32_t best = UINT32_MAX;
    for (uint32_t block = 0; block < block_free_.size(); ++block) {
      if (block_free_[block] >= count &&
          (best == UINT32_MAX || block_free_[block] < block_free_[best])) {
        best = block;
      }
    }
    if (best != UINT32_MAX) {
      TakeFromBlock(best, count, out);
      return true;
    }
  }
  TakeFromSpine(count, out);
  return true;
}

}  // namespace atrium::sched
