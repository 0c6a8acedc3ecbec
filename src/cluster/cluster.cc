#include "cluster/cluster.h"

#include <cctype>

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace atrium::cluster {

std::string_view ToString(NodeState state) {
  switch (state) {
    case NodeState::kUp:
      return "up";
    case NodeState::kDown:
      return "down";
    case NodeState::kDraining:
      return "draining";
  }
  return "unknown";
}

Result<NodeState> ParseNodeState(std::string_view text) {
  if (text == "up") return NodeState::kUp;
  if (text == "down") return NodeState::kDown;
  if (text == "draining") return NodeState::kDraining;
  return MakeError(ErrorCode::kParseError,
                   fmt::format("node state '{}' is not up, down or draining", text));
}

std::string_view ToString(JobClass job_class) {
  switch (job_class) {
    case JobClass::kResearch:
      return "research";
    case JobClass::kEducation:
      return "education";
    case JobClass::kPreemptible:
      return "preemptible";
  }
  return "unknown";
}

Result<JobClass> ParseJobClass(std::string_view text) {
  if (text.empty() || text == "research") return JobClass::kResearch;
  if (text == "education") return JobClass::kEducation;
  if (text == "preemptible") return JobClass::kPreemptible;
  return MakeError(ErrorCode::kParseError,
                   fmt::format("class '{}' is not research, education or preemptible", text),
                   "class");
}

std::string_view ToString(Executor executor) {
  switch (executor) {
    case Executor::kNone:
      return "none";
    case Executor::kLocal:
      return "local";
    case Executor::kSlurm:
      return "slurm";
  }
  return "unknown";
}

Result<Executor> ParseExecutor(std::string_view text) {
  if (text.empty() || text == "none") return Executor::kNone;
  if (text == "local") return Executor::kLocal;
  if (text == "slurm") return Executor::kSlurm;
  return MakeError(ErrorCode::kConfigInvalid,
                   fmt::format("executor '{}' is not local, slurm or none", text), "executor");
}

DeviceKind DeviceKindOf(const AcceleratorType& type) {
  auto lower = [](std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  const std::string vendor = lower(type.vendor);
  const std::string name = lower(type.name);
  if (vendor.find("nvidia") != std::string::npos) return DeviceKind::kCuda;
  if (vendor.find("tpu") != std::string::npos || name.rfind("tpu", 0) == 0) return DeviceKind::kTpu;
  if (vendor == "aws" || vendor.find("neuron") != std::string::npos || name.rfind("trn", 0) == 0 ||
      name.rfind("inf", 0) == 0) {
    return DeviceKind::kNeuron;
  }
  return DeviceKind::kNone;
}

std::optional<uint32_t> Cluster::FindAccelerator(std::string_view name) const {
  for (size_t idx = 0; idx < accelerators_.size(); ++idx) {
    if (accelerators_[idx].name == name) return static_cast<uint32_t>(idx);
  }
  return std::nullopt;
}

std::optional<uint32_t> Cluster::FindNode(std::string_view name) const {
  for (size_t idx = 0; idx < nodes_.size(); ++idx) {
    if (nodes_[idx].name == name) return static_cast<uint32_t>(idx);
  }
  return std::nullopt;
}

std::optional<uint32_t> Cluster::PoolOf(uint32_t accelerator) const {
  for (size_t idx = 0; idx < pools_.size(); ++idx) {
    if (pools_[idx].accelerator == accelerator) return static_cast<uint32_t>(idx);
  }
  return std::nullopt;
}

int64_t Cluster::pool_chips(uint32_t pool) const {
  return int64_t{pools_[pool].chips_per_node} * pools_[pool].node_count;
}

int64_t Cluster::total_chips() const {
  int64_t total = 0;
  for (uint32_t pool = 0; pool < pools_.size(); ++pool) total += pool_chips(pool);
  return total;
}

Result<JobShape> Cluster::Shape(std::string_view accelerator, int64_t chips) const {
  uint32_t accel = default_accelerator_;
  if (!accelerator.empty()) {
    const auto found = FindAccelerator(accelerator);
    if (!found) {
      return MakeError(ErrorCode::kUnknownAccelerator,
                       fmt::format("accelerator '{}' is not in cluster {}", accelerator, name_),
                       "accelerator");
    }
    accel = *found;
  }
  const auto pool = PoolOf(accel);
  if (!pool) {
    return MakeError(ErrorCode::kUnknownAccelerator,
                     fmt::format("cluster {} has no nodes of accelerator '{}'", name_,
                                 accelerators_[accel].name),
                     "accelerator");
  }
  if (chips < 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("chips must be at least 1, not {}", chips), "chips");
  }
  if (chips > pool_chips(*pool)) {
    return MakeError(ErrorCode::kJobTooLarge,
                     fmt::format("{} chips exceed the {} chips of {}", chips, pool_chips(*pool),
                                 accelerators_[accel].name),
                     "chips");
  }
  const Pool& p = pools_[*pool];
  const NodeType& type = node_types_[p.node_type];
  JobShape shape{.pool = *pool, .chips = chips};
  if (chips >= p.chips_per_node) {
    if (chips % p.chips_per_node != 0) {
      return MakeError(ErrorCode::kInvalidAllocationSize,
                       fmt::format("{} chips is not a whole number of {}-chip {} nodes", chips,
                                   p.chips_per_node, type.name),
                       "chips");
    }
    shape.whole_nodes = static_cast<uint32_t>(chips / p.chips_per_node);
    return shape;
  }
  if (!type.allocation_sizes.empty() &&
      std::find(type.allocation_sizes.begin(), type.allocation_sizes.end(), chips) ==
          type.allocation_sizes.end()) {
    return MakeError(ErrorCode::kInvalidAllocationSize,
                     fmt::format("{} chips is not an allocation size of {} ({})", chips, type.name,
                                 fmt::join(type.allocation_sizes, ", ")),
                     "chips");
  }
  shape.sub_node_chips = static_cast<int>(chips);
  return shape;
}

Status Cluster::CheckPartition(JobClass job_class, int64_t chips, int64_t walltime_s) const {
  for (const Partition& partition : partitions_) {
    if (std::find(partition.classes.begin(), partition.classes.end(), job_class) ==
        partition.classes.end()) {
      continue;
    }
    if (partition.chips_per_job_max > 0 && chips > partition.chips_per_job_max) {
      return MakeError(ErrorCode::kPartitionLimit,
                       fmt::format("{} chips exceed partition {}'s limit of {}", chips,
                                   partition.name, partition.chips_per_job_max),
                       "chips");
    }
    if (partition.walltime_max_s > 0 && walltime_s > partition.walltime_max_s) {
      return MakeError(ErrorCode::kPartitionLimit,
                       fmt::format("walltime {} s exceeds partition {}'s limit of {} s", walltime_s,
                                   partition.name, partition.walltime_max_s),
                       "walltime_s");
    }
    return OkStatus();
  }
  return OkStatus();
}

uint32_t ClusterBuilder::AddAccelerator(AcceleratorType type) {
  cluster_.accelerators_.push_back(std::move(type));
  return static_cast<uint32_t>(cluster_.accelerators_.size() - 1);
}

uint32_t ClusterBuilder::AddNodeType(NodeType type) {
  cluster_.node_types_.push_back(std::move(type));
  return static_cast<uint32_t>(cluster_.node_types_.size() - 1);
}

Status ClusterBuilder::SetSlurm(SlurmPool slurm) {
  if (cluster_.pools_.empty()) return MakeError(ErrorCode::kConfigInvalid, "no pool", "pools");
  Pool& pool = cluster_.pools_.back();
  if (!slurm.nodes.empty() && slurm.nodes.size() != pool.node_count) {
    return MakeError(ErrorCode::kConfigInvalid,
                     fmt::format("lists {} Slurm nodes for the pool's {} nodes", slurm.nodes.size(),
                                 pool.node_count),
                     "slurm_nodes");
  }
  std::vector<std::string> sorted = slurm.nodes;
  std::sort(sorted.begin(), sorted.end());
  if (const auto twice = std::adjacent_find(sorted.begin(), sorted.end()); twice != sorted.end()) {
    return MakeError(ErrorCode::kConfigInvalid, fmt::format("names Slurm node '{}' twice", *twice),
                     "slurm_nodes");
  }
  pool.slurm = std::move(slurm);
  return OkStatus();
}

Status ClusterBuilder::AddPool(std::string name, uint32_t node_type, uint32_t node_count,
                               uint32_t nodes_per_group, uint32_t groups_per_block,
                               Executor executor, int64_t kill_grace_s) {
  Cluster& c = cluster_;
  if (node_type >= c.node_types_.size()) {
    return MakeError(ErrorCode::kConfigInvalid, "unknown node type", "node_type");
  }
  if (node_count == 0 || nodes_per_group == 0 || groups_per_block == 0) {
    return MakeError(ErrorCode::kConfigInvalid,
                     "nodes, nodes_per_group and groups_per_block must be positive");
  }
  const NodeType& type = c.node_types_[node_type];
  if (c.PoolOf(type.accelerator)) {
    return MakeError(ErrorCode::kConfigInvalid,
                     fmt::format("accelerator '{}' already has a pool: one pool per type",
                                 c.accelerators_[type.accelerator].name),
                     "node_type");
  }
  Pool pool{.name = std::move(name),
            .node_type = node_type,
            .accelerator = type.accelerator,
            .chips_per_node = type.chips,
            .nodes_per_group = nodes_per_group,
            .groups_per_block = groups_per_block,
            .first_node = static_cast<uint32_t>(c.nodes_.size()),
            .node_count = node_count,
            .first_group = static_cast<uint32_t>(c.groups_.size()),
            .first_block = static_cast<uint32_t>(c.blocks_.size()),
            .executor = executor,
            .kill_grace_s = kill_grace_s};
  const auto pool_index = static_cast<uint32_t>(c.pools_.size());
  for (uint32_t node_idx = 0; node_idx < node_count; ++node_idx) {
    const uint32_t group_in_pool = node_idx / nodes_per_group;
    const uint32_t block_in_pool = group_in_pool / groups_per_block;
    if (node_idx % nodes_per_group == 0) {
      if (group_in_pool % groups_per_block == 0) {
        c.blocks_.push_back(Block{.pool = pool_index,
                                  .first_group = static_cast<uint32_t>(c.groups_.size()),
                                  .first_node = static_cast<uint32_t>(c.nodes_.size())});
      }
      c.groups_.push_back(Group{.pool = pool_index,
                                .block = pool.first_block + block_in_pool,
                                .first_node = static_cast<uint32_t>(c.nodes_.size())});
      ++c.blocks_.back().group_count;
    }
    ++c.groups_.back().node_count;
    ++c.blocks_.back().node_count;
    c.nodes_.push_back(Node{.name = fmt::format("{}-n{:04}", pool.name, node_idx),
                            .pool = pool_index,
                            .group = pool.first_group + group_in_pool,
                            .block = pool.first_block + block_in_pool});
  }
  pool.group_count = static_cast<uint32_t>(c.groups_.size()) - pool.first_group;
  pool.block_count = static_cast<uint32_t>(c.blocks_.size()) - pool.first_block;
  c.pools_.push_back(std::move(pool));
  return OkStatus();
}

Status ClusterBuilder::SetNodeState(std::string_view node, NodeState state) {
  const auto found = cluster_.FindNode(node);
  if (!found) {
    return MakeError(ErrorCode::kNotFound, fmt::format("no node named '{}'", node), "node");
  }
  cluster_.nodes_[*found].state = state;
  return OkStatus();
}

Result<Cluster> ClusterBuilder::Build() && {
  if (cluster_.pools_.empty()) {
    return MakeError(ErrorCode::kConfigInvalid, "a cluster needs at least one pool of nodes");
  }
  if (cluster_.default_accelerator_ >= cluster_.accelerators_.size() ||
      !cluster_.PoolOf(cluster_.default_accelerator_)) {
    return MakeError(ErrorCode::kConfigInvalid, "the default accelerator has no pool",
                     "default_accelerator");
  }
  return std::move(cluster_);
}

}  // namespace atrium::cluster
