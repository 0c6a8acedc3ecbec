// Cluster: the accelerator cluster as the scheduler sees it. Accelerator types (Trainium,
// GPU, TPU-like: one model, nothing vendor-specific), node types with the allocation sizes
// they accept below a whole node, and the nodes themselves arranged in a topology of four
// levels: node, group (an UltraServer or NVLink domain), block (a network block) and the
// pool's spine. Partitions carry the per-class job limits. A Cluster is an immutable value
// built by the loader (config.h); the mutable state (free chips, node states) lives in the
// scheduler.
//
// Invariants, checked by the loader: every accelerator type has at most one pool, so a
// pool is the spine of its type; nodes of a pool are numbered contiguously, groups hold
// consecutive nodes and blocks consecutive groups; allocation sizes below a node form a
// divisibility chain (1, 4, 8 divide each other and the node's chip count), which is what
// makes aligned contiguous allocation complete.
//
//   Result<Cluster> cluster = LoadClusterFile("examples/clusters/research-40k.toml");
//   Result<JobShape> shape = cluster->Shape("trn1", 64);   // 4 whole nodes in one group
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/credits.h"
#include "base/error.h"

namespace atrium::cluster {

// The largest node the scheduler models: a node's chips are one 64-bit mask.
inline constexpr int kChipsPerNodeMax = 64;

enum class NodeState : uint8_t { kUp = 0, kDown = 1, kDraining = 2 };
std::string_view ToString(NodeState state);
Result<NodeState> ParseNodeState(std::string_view text);

// What runs a pool's jobs (docs/executors.md): `none` (the default) keeps the operator-
// reported ends of a bookkeeping cluster (and the simulator's virtual runs); `local` runs
// each job as a process group on this machine (src/exec); `slurm` hands each placed run
// to a Slurm cluster (sbatch on the mapped Slurm nodes; docs/executors.md).
enum class Executor : uint8_t { kNone = 0, kLocal = 1, kSlurm = 2 };
inline constexpr int64_t kKillGraceDefaultS = 10;
inline constexpr int64_t kKillGraceMaxS = 60;
// A `slurm` pool's bound on one Slurm command (slurm_command_timeout_s): slurmctld answers
// in milliseconds, and its clients retry a refused connection for MessageTimeout (10 s by
// default) before giving up, so the default sits above that; a hung controller is cut off.
inline constexpr int64_t kSlurmCommandTimeoutDefaultS = 15;
inline constexpr int64_t kSlurmCommandTimeoutMaxS = 300;
std::string_view ToString(Executor executor);
Result<Executor> ParseExecutor(std::string_view text);

// The class of a job; the strings are part of the trace and output contracts.
enum class JobClass : uint8_t { kResearch = 0, kEducation = 1, kPreemptible = 2 };
inline constexpr int kJobClassCount = 3;
std::string_view ToString(JobClass job_class);
// "" is research (the trace contract's default).
Result<JobClass> ParseJobClass(std::string_view text);

struct AcceleratorType {
  std::string name;
  std::string vendor;
  int64_t cores_per_chip = 0;  // NeuronCores, SMs, TensorCores: informational
  int64_t memory_gib_per_chip = 0;
  Credits price_per_chip_hour;
};

// The device visibility variable of an accelerator type, from its vendor and name:
// NEURON_RT_VISIBLE_CORES (AWS Trainium/Inferentia), CUDA_VISIBLE_DEVICES (NVIDIA),
// TPU_VISIBLE_CHIPS (TPU-like); kNone for anything else.
enum class DeviceKind : uint8_t { kNone = 0, kNeuron = 1, kCuda = 2, kTpu = 3 };
DeviceKind DeviceKindOf(const AcceleratorType& type);

struct NodeType {
  std::string name;
  uint32_t accelerator = 0;
  int chips = 0;
  // Sizes accepted below a whole node, ascending, each dividing the next and `chips`.
  // Empty: any size from 1 to chips - 1, any chips of the node (no contiguity).
  std::vector<int> allocation_sizes;
};

struct Partition {
  std::string name;
  std::vector<JobClass> classes;
  int64_t chips_per_job_max = 0;
  int64_t walltime_max_s = 0;
};

struct Node {
  std::string name;
  uint32_t pool = 0;
  uint32_t group = 0;  // global group index
  uint32_t block = 0;  // global block index
  NodeState state = NodeState::kUp;
};

struct Group {
  uint32_t pool = 0;
  uint32_t block = 0;
  uint32_t first_node = 0;
  uint32_t node_count = 0;
};

struct Block {
  uint32_t pool = 0;
  uint32_t first_group = 0;
  uint32_t group_count = 0;
  uint32_t first_node = 0;
  uint32_t node_count = 0;
};

// How a `slurm` pool maps onto Slurm: the partition its runs are submitted to ("" =
// Slurm's default), the GRES name its chips are requested as ("" = no --gres), and the
// Slurm node name of each of its nodes, in pool order (empty = the Atrium names), how long
// one Slurm command may take, and the jobcomp/filetxt record Slurm writes (JobCompLoc, ""
// = not read), where the executor finds how a run ended that Slurm has already forgotten.
struct SlurmPool {
  std::string partition;
  std::string gres;
  std::vector<std::string> nodes;
  int64_t command_timeout_s = kSlurmCommandTimeoutDefaultS;
  std::string jobcomp_loc;
};

// A homogeneous set of nodes of one node type; its spine joins its blocks.
struct Pool {
  std::string name;
  uint32_t node_type = 0;
  uint32_t accelerator = 0;
  int chips_per_node = 0;
  uint32_t nodes_per_group = 0;
  uint32_t groups_per_block = 0;
  uint32_t first_node = 0;
  uint32_t node_count = 0;
  uint32_t first_group = 0;
  uint32_t group_count = 0;
  uint32_t first_block = 0;
  uint32_t block_count = 0;
  Executor executor = Executor::kNone;  // the cluster file's `executor`
  // A reporting executor's grace between SIGTERM and SIGKILL (walltime, cancel, preempt).
  int64_t kill_grace_s = kKillGraceDefaultS;
  SlurmPool slurm;  // executor kSlurm only
};

// How a job of `chips` chips is placed on a pool: on part of one node (`whole_nodes` 0),
// or on `whole_nodes` whole nodes.
struct JobShape {
  uint32_t pool = 0;
  int64_t chips = 0;
  int sub_node_chips = 0;    // > 0 for a job below one node
  uint32_t whole_nodes = 0;  // > 0 for a job of one node or more
};

// The cluster file's `jobs_waiting_max`: its default and its bounds.
inline constexpr int64_t kJobsWaitingMaxDefault = 200'000;
inline constexpr int64_t kJobsWaitingMaxLimit = 10'000'000;

class Cluster {
 public:
  const std::string& name() const { return name_; }
  const std::vector<AcceleratorType>& accelerators() const { return accelerators_; }
  const std::vector<NodeType>& node_types() const { return node_types_; }
  const std::vector<Partition>& partitions() const { return partitions_; }
  const std::vector<Pool>& pools() const { return pools_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<Group>& groups() const { return groups_; }
  const std::vector<Block>& blocks() const { return blocks_; }
  uint32_t default_accelerator() const { return default_accelerator_; }
  // Jobs that may wait at once (like Slurm's MaxJobCount, for the waiting ones): a
  // submission beyond it is refused with limit_exceeded. Each job costs about 0.5 KB.
  int64_t jobs_waiting_max() const { return jobs_waiting_max_; }

  std::optional<uint32_t> FindAccelerator(std::string_view name) const;
  std::optional<uint32_t> FindNode(std::string_view name) const;
  // The pool of an accelerator type, if the cluster has nodes of it.
  std::optional<uint32_t> PoolOf(uint32_t accelerator) const;
  int64_t total_chips() const;
  int64_t pool_chips(uint32_t pool) const;

  // Validates a request for `chips` chips of `accelerator` ("" = the default type):
  // kUnknownAccelerator, kInvalidArgument (chips < 1), kJobTooLarge (more chips than the
  // pool has), kInvalidAllocationSize (a size the node type does not accept, or a job of a
  // node or more that is not a whole number of nodes).
  Result<JobShape> Shape(std::string_view accelerator, int64_t chips) const;
  // kPartitionLimit if the class's partition caps chips or walltime below the request.
  Status CheckPartition(JobClass job_class, int64_t chips, int64_t walltime_s) const;

 private:
  friend class ClusterBuilder;

  std::string name_;
  uint32_t default_accelerator_ = 0;
  int64_t jobs_waiting_max_ = kJobsWaitingMaxDefault;
  std::vector<AcceleratorType> accelerators_;
  std::vector<NodeType> node_types_;
  std::vector<Partition> partitions_;
  std::vector<Pool> pools_;
  std::vector<Node> nodes_;
  std::vector<Group> groups_;
  std::vector<Block> blocks_;
};

// Builds a Cluster and lays out its topology. The loader uses it; tests may too.
class ClusterBuilder {
 public:
  explicit ClusterBuilder(std::string name) { cluster_.name_ = std::move(name); }
  uint32_t AddAccelerator(AcceleratorType type);
  uint32_t AddNodeType(NodeType type);
  void AddPartition(Partition partition) { cluster_.partitions_.push_back(std::move(partition)); }
  // Lays out `node_count` nodes named "<name>-n0000"... in groups and blocks.
  Status AddPool(std::string name, uint32_t node_type, uint32_t node_count,
                 uint32_t nodes_per_group, uint32_t groups_per_block,
                 Executor executor = Executor::kNone, int64_t kill_grace_s = kKillGraceDefaultS);
  Status SetNodeState(std::string_view node, NodeState state);
  // The Slurm mapping of the last pool added (kConfigInvalid: a node list of the wrong
  // length, or a Slurm node named twice).
  Status SetSlurm(SlurmPool slurm);
  void SetDefaultAccelerator(uint32_t accelerator) { cluster_.default_accelerator_ = accelerator; }
  void SetJobsWaitingMax(int64_t jobs) { cluster_.jobs_waiting_max_ = jobs; }
  Result<Cluster> Build() &&;

 private:
  Cluster cluster_;
};

}  // namespace atrium::cluster
