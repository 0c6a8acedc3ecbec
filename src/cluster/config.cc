#include "cluster/config.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

namespace atrium::cluster {
namespace {

// Builds errors that name the file, the line and the key.
class Context {
 public:
  explicit Context(std::string_view source) : source_(source) {}

  Error Fail(const toml::node* node, std::string_view key, std::string_view message) const {
    const int64_t line =
        node != nullptr ? static_cast<int64_t>(node->source().begin.line) : int64_t{0};
    return MakeError(ErrorCode::kConfigInvalid,
                     fmt::format("{}:{}: {}: {}", source_, line, key, message), std::string(key));
  }

  Result<int64_t> Int(const toml::table& table, std::string_view table_key, std::string_view key,
                      int64_t min, int64_t max, std::optional<int64_t> fallback) const {
    const std::string full = Join(table_key, key);
    const toml::node* node = table.get(key);
    if (node == nullptr) {
      if (fallback) return *fallback;
      return Fail(&table, full, "is missing");
    }
    const auto value = node->value_exact<int64_t>();
    if (!value || *value < min || *value > max) {
      return Fail(node, full, fmt::format("must be an integer from {} to {}", min, max));
    }
    return *value;
  }

  Result<std::string> String(const toml::table& table, std::string_view table_key,
                             std::string_view key, std::optional<std::string> fallback) const {
    const std::string full = Join(table_key, key);
    const toml::node* node = table.get(key);
    if (node == nullptr) {
      if (fallback) return *fallback;
      return Fail(&table, full, "is missing");
    }
    const auto value = node->value_exact<std::string>();
    if (!value || value->empty()) return Fail(node, full, "must be a non-empty string");
    return *value;
  }

  // A price: a decimal string ("1.34375") or a TOML number with at most six decimals.
  Result<Credits> Price(const toml::table& table, std::string_view table_key) const {
    const std::string full = Join(table_key, "price_per_chip_hour");
    const toml::node* node = table.get("price_per_chip_hour");
    if (node == nullptr) return Fail(&table, full, "is missing");
    std::string text;
    if (const auto str = node->value_exact<std::string>()) {
      text = *str;
    } else if (const auto integer = node->value_exact<int64_t>()) {
      text = std::to_string(*integer);
    } else if (const auto real = node->value_exact<double>()) {
      // Only a number that is exact to the micro-credit; anything finer is a typo.
      const double micro = *real * 1e6;
      if (std::fabs(std::round(micro) - micro) < 1e-3) text = fmt::format("{:.6f}", *real);
    }
    const auto price = Credits::Parse(text);
    if (!price.ok() || price->is_negative()) {
      return Fail(node, full, "must be a non-negative decimal price such as \"1.34375\"");
    }
    return *price;
  }

  static std::string Join(std::string_view table_key, std::string_view key) {
    return table_key.empty() ? std::string(key) : fmt::format("{}.{}", table_key, key);
  }

 private:
  std::string source_;
};

const toml::table* SubTable(const toml::table& root, std::string_view key) {
  const toml::node* node = root.get(key);
  return node == nullptr ? nullptr : node->as_table();
}

Status LoadAccelerators(const Context& ctx, const toml::table& root, ClusterBuilder& builder,
                        std::vector<std::string>& names) {
  const toml::table* table = SubTable(root, "accelerators");
  if (table == nullptr || table->empty()) {
    return ctx.Fail(table != nullptr ? table : &root, "accelerators",
                    "needs a table with at least one accelerator type");
  }
  for (auto&& [key, value] : *table) {
    const std::string name(key.str());
    const std::string where = "accelerators." + name;
    const toml::table* spec = value.as_table();
    if (spec == nullptr) return ctx.Fail(&value, where, "must be a table");
    AcceleratorType type{.name = name};
    ATRIUM_ASSIGN_OR_RETURN(type.vendor, ctx.String(*spec, where, "vendor", "unspecified"));
    ATRIUM_ASSIGN_OR_RETURN(type.cores_per_chip,
                            ctx.Int(*spec, where, "cores_per_chip", 0, 1 << 20, 0));
    ATRIUM_ASSIGN_OR_RETURN(type.memory_gib_per_chip,
                            ctx.Int(*spec, where, "memory_gib_per_chip", 0, 1 << 20, 0));
    ATRIUM_ASSIGN_OR_RETURN(type.price_per_chip_hour, ctx.Price(*spec, where));
    builder.AddAccelerator(std::move(type));
    names.push_back(name);
  }
  return OkStatus();
}

Result<std::vector<int>> AllocationSizes(const Context& ctx, const toml::table& spec,
                                         const std::string& where, int chips) {
  std::vector<int> sizes;
  const toml::node* node = spec.get("allocation_sizes");
  if (node == nullptr) return sizes;
  const std::string full = where + ".allocation_sizes";
  const toml::array* array = node->as_array();
  if (array == nullptr) return ctx.Fail(node, full, "must be an array of integers");
  for (const toml::node& item : *array) {
    const auto size = item.value_exact<int64_t>();
    if (!size || *size < 1 || *size > chips) {
      return ctx.Fail(&item, full, fmt::format("sizes must be integers from 1 to {}", chips));
    }
    if (!sizes.empty() && (*size <= sizes.back() || *size % sizes.back() != 0)) {
      return ctx.Fail(&item, full, "sizes must ascend, each a multiple of the one before");
    }
    if (chips % *size != 0) {
      return ctx.Fail(&item, full, fmt::format("sizes must divide the node's {} chips", chips));
    }
    sizes.push_back(static_cast<int>(*size));
  }
  // The whole node is implied; keep only the sizes below it.
  if (!sizes.empty() && sizes.back() == chips) sizes.pop_back();
  if (sizes.empty()) return ctx.Fail(node, full, "must list at least one size below the node");
  return sizes;
}

Status LoadNodeTypes(const Context& ctx, const toml::table& root, ClusterBuilder& builder,
                     const std::vector<std::string>& accelerators,
                     std::vector<std::string>& names) {
  const toml::table* table = SubTable(root, "node_types");
  if (table == nullptr || table->empty()) {
    return ctx.Fail(table != nullptr ? table : &root, "node_types",
                    "needs a table with at least one node type");
  }
  for (auto&& [key, value] : *table) {
    const std::string name(key.str());
    const std::string where = "node_types." + name;
    const toml::table* spec = value.as_table();
    if (spec == nullptr) return ctx.Fail(&value, where, "must be a table");
    ATRIUM_ASSIGN_OR_RETURN(const std::string accel, ctx.String(*spec, where, "accelerator", {}));
    const auto found = std::find(accelerators.begin(), accelerators.end(), accel);
    if (found == accelerators.end()) {
      return ctx.Fail(spec->get("accelerator"), where + ".accelerator",
                      fmt::format("unknown accelerator '{}'", accel));
    }
    ATRIUM_ASSIGN_OR_RETURN(const int64_t chips,
                            ctx.Int(*spec, where, "chips", 1, kChipsPerNodeMax, {}));
    NodeType type{.name = name,
                  .accelerator = static_cast<uint32_t>(found - accelerators.begin()),
                  .chips = static_cast<int>(chips)};
    ATRIUM_ASSIGN_OR_RETURN(type.allocation_sizes, AllocationSizes(ctx, *spec, where, type.chips));
    builder.AddNodeType(std::move(type));
    names.push_back(name);
  }
  return OkStatus();
}

// A name Slurm accepts for a node, partition or GRES (and that needs no quoting in the
// command lines and hostlists Atrium writes).
bool SlurmName(std::string_view text) {
  return !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  });
}

// A `slurm` pool's mapping: slurm_partition, slurm_gres, slurm_nodes, slurm_command_timeout_s,
// slurm_jobcomp (docs/executors.md).
// Other pools must not carry these keys (a typo in `executor` would otherwise silently
// make a Slurm pool a bookkeeping one).
Status LoadSlurmPool(const Context& ctx, const toml::table& spec, const std::string& where,
                     Executor executor, ClusterBuilder& builder) {
  if (executor != Executor::kSlurm) {
    for (const char* key : {"slurm_partition", "slurm_gres", "slurm_nodes",
                            "slurm_command_timeout_s", "slurm_jobcomp"}) {
      if (spec.get(key) != nullptr) {
        return ctx.Fail(spec.get(key), where + "." + key, "is only for executor = \"slurm\"");
      }
    }
    return OkStatus();
  }
  SlurmPool slurm;
  for (auto [key, out] :
       {std::pair{"slurm_partition", &slurm.partition}, std::pair{"slurm_gres", &slurm.gres}}) {
    ATRIUM_ASSIGN_OR_RETURN(*out, ctx.String(spec, where, key, std::string("-")));
    if (*out == "-") {
      out->clear();
    } else if (!SlurmName(*out)) {
      return ctx.Fail(spec.get(key), where + "." + key,
                      "must be a Slurm name (letters, digits, '-', '_', '.')");
    }
  }
  ATRIUM_ASSIGN_OR_RETURN(slurm.command_timeout_s,
                          ctx.Int(spec, where, "slurm_command_timeout_s", 1,
                                  kSlurmCommandTimeoutMaxS, kSlurmCommandTimeoutDefaultS));
  if (spec.get("slurm_jobcomp") != nullptr) {
    ATRIUM_ASSIGN_OR_RETURN(slurm.jobcomp_loc, ctx.String(spec, where, "slurm_jobcomp", {}));
    if (slurm.jobcomp_loc.front() != '/' ||
        slurm.jobcomp_loc.find_first_of(std::string("\n\0", 2)) != std::string::npos) {
      return ctx.Fail(spec.get("slurm_jobcomp"), where + ".slurm_jobcomp",
                      "must be an absolute path (Slurm's JobCompLoc)");
    }
  }
  if (const toml::node* node = spec.get("slurm_nodes")) {
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      return ctx.Fail(node, where + ".slurm_nodes", "must be an array of Slurm node names");
    }
    for (const toml::node& item : *array) {
      const auto name = item.value_exact<std::string>();
      if (!name || !SlurmName(*name)) {
        return ctx.Fail(&item, where + ".slurm_nodes",
                        "must be Slurm node names (letters, digits, '-', '_', '.')");
      }
      slurm.nodes.push_back(*name);
    }
  }
  const Status set = builder.SetSlurm(std::move(slurm));
  if (!set.ok())
    return ctx.Fail(spec.get("slurm_nodes"), where + ".slurm_nodes", set.error().message);
  return OkStatus();
}

Status LoadPools(const Context& ctx, const toml::table& root, ClusterBuilder& builder,
                 const std::vector<std::string>& node_types) {
  const toml::node* node = root.get("pools");
  const toml::array* pools = node == nullptr ? nullptr : node->as_array();
  if (pools == nullptr || pools->empty()) {
    return ctx.Fail(node != nullptr ? node : &root, "pools",
                    "needs an array of tables ([[pools]]) with at least one pool");
  }
  for (size_t pool_idx = 0; pool_idx < pools->size(); ++pool_idx) {
    const std::string where = fmt::format("pools[{}]", pool_idx);
    const toml::table* spec = (*pools)[pool_idx].as_table();
    if (spec == nullptr) return ctx.Fail(&(*pools)[pool_idx], where, "must be a table");
    ATRIUM_ASSIGN_OR_RETURN(const std::string name, ctx.String(*spec, where, "name", {}));
    ATRIUM_ASSIGN_OR_RETURN(const std::string type, ctx.String(*spec, where, "node_type", {}));
    const auto found = std::find(node_types.begin(), node_types.end(), type);
    if (found == node_types.end()) {
      return ctx.Fail(spec->get("node_type"), where + ".node_type",
                      fmt::format("unknown node type '{}'", type));
    }
    ATRIUM_ASSIGN_OR_RETURN(const int64_t nodes,
                            ctx.Int(*spec, where, "nodes", 1, kPoolNodesMax, {}));
    ATRIUM_ASSIGN_OR_RETURN(const int64_t per_group,
                            ctx.Int(*spec, where, "nodes_per_group", 1, kPoolNodesMax, 1));
    ATRIUM_ASSIGN_OR_RETURN(const int64_t per_block,
                            ctx.Int(*spec, where, "groups_per_block", 1, kPoolNodesMax, 1));
    ATRIUM_ASSIGN_OR_RETURN(const std::string executor_text,
                            ctx.String(*spec, where, "executor", std::string("none")));
    const Result<Executor> executor = ParseExecutor(executor_text);
    if (!executor.ok()) {
      return ctx.Fail(spec->get("executor"), where + ".executor",
                      "must be \"local\", \"slurm\" or \"none\"");
    }
    ATRIUM_ASSIGN_OR_RETURN(
        const int64_t kill_grace_s,
        ctx.Int(*spec, where, "kill_grace_s", 0, kKillGraceMaxS, kKillGraceDefaultS));
    const Status added =
        builder.AddPool(name, static_cast<uint32_t>(found - node_types.begin()),
                        static_cast<uint32_t>(nodes), static_cast<uint32_t>(per_group),
                        static_cast<uint32_t>(per_block), *executor, kill_grace_s);
    if (!added.ok()) return ctx.Fail(spec, where, added.error().message);
    ATRIUM_TRY(LoadSlurmPool(ctx, *spec, where, *executor, builder));
  }
  return OkStatus();
}

Status LoadPartitions(const Context& ctx, const toml::table& root, ClusterBuilder& builder) {
  const toml::table* table = SubTable(root, "partitions");
  if (table == nullptr) return OkStatus();
  for (auto&& [key, value] : *table) {
    const std::string where = fmt::format("partitions.{}", key.str());
    const toml::table* spec = value.as_table();
    if (spec == nullptr) return ctx.Fail(&value, where, "must be a table");
    Partition partition{.name = std::string(key.str())};
    const toml::node* classes = spec->get("classes");
    const toml::array* array = classes == nullptr ? nullptr : classes->as_array();
    if (array == nullptr) {
      return ctx.Fail(classes != nullptr ? classes : spec, where + ".classes",
                      "must be an array of class names");
    }
    for (const toml::node& item : *array) {
      const auto text = item.value_exact<std::string>();
      const auto parsed = ParseJobClass(text.value_or("?"));
      if (!text || text->empty() || !parsed.ok()) {
        return ctx.Fail(&item, where + ".classes",
                        "classes are research, education or preemptible");
      }
      partition.classes.push_back(*parsed);
    }
    ATRIUM_ASSIGN_OR_RETURN(partition.chips_per_job_max,
                            ctx.Int(*spec, where, "chips_per_job_max", 0, int64_t{1} << 40, 0));
    ATRIUM_ASSIGN_OR_RETURN(partition.walltime_max_s,
                            ctx.Int(*spec, where, "walltime_max_s", 0, int64_t{1} << 40, 0));
    builder.AddPartition(std::move(partition));
  }
  return OkStatus();
}

Status LoadNodeStates(const Context& ctx, const toml::table& root, ClusterBuilder& builder) {
  const toml::node* node = root.get("node_states");
  if (node == nullptr) return OkStatus();
  const toml::array* array = node->as_array();
  if (array == nullptr) return ctx.Fail(node, "node_states", "must be an array of tables");
  for (size_t idx = 0; idx < array->size(); ++idx) {
    const std::string where = fmt::format("node_states[{}]", idx);
    const toml::table* spec = (*array)[idx].as_table();
    if (spec == nullptr) return ctx.Fail(&(*array)[idx], where, "must be a table");
    ATRIUM_ASSIGN_OR_RETURN(const std::string name, ctx.String(*spec, where, "node", {}));
    ATRIUM_ASSIGN_OR_RETURN(const std::string state_text, ctx.String(*spec, where, "state", {}));
    const auto state = ParseNodeState(state_text);
    if (!state.ok()) return ctx.Fail(spec->get("state"), where + ".state", state.error().message);
    const Status set = builder.SetNodeState(name, *state);
    if (!set.ok()) return ctx.Fail(spec->get("node"), where + ".node", set.error().message);
  }
  return OkStatus();
}

}  // namespace

Result<std::string> ParseClusterPolicy(std::string_view text, std::string_view source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& error) {
    return MakeError(
        ErrorCode::kParseError,
        fmt::format("{}:{}: {}", source_name, error.source().begin.line, error.description()));
  }
  const toml::node* node = root.get("policy");
  if (node == nullptr) return std::string();
  const auto policy = node->value<std::string>();
  if (!policy) return MakeError(ErrorCode::kParseError, "policy must be a string", "policy");
  return *policy;
}

Result<Cluster> ParseClusterToml(std::string_view text, std::string_view source_name) {
  const Context ctx(source_name);
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& error) {
    return MakeError(
        ErrorCode::kParseError,
        fmt::format("{}:{}: {}", source_name, error.source().begin.line, error.description()));
  }
  ATRIUM_ASSIGN_OR_RETURN(const std::string name, ctx.String(root, "", "name", "cluster"));
  ClusterBuilder builder(name);
  std::vector<std::string> accelerators;
  std::vector<std::string> node_types;
  ATRIUM_TRY(LoadAccelerators(ctx, root, builder, accelerators));
  ATRIUM_TRY(LoadNodeTypes(ctx, root, builder, accelerators, node_types));
  ATRIUM_TRY(LoadPools(ctx, root, builder, node_types));
  ATRIUM_TRY(LoadPartitions(ctx, root, builder));
  ATRIUM_TRY(LoadNodeStates(ctx, root, builder));
  ATRIUM_ASSIGN_OR_RETURN(const std::string default_accel,
                          ctx.String(root, "", "default_accelerator", accelerators.front()));
  const auto found = std::find(accelerators.begin(), accelerators.end(), default_accel);
  if (found == accelerators.end()) {
    return ctx.Fail(root.get("default_accelerator"), "default_accelerator",
                    fmt::format("unknown accelerator '{}'", default_accel));
  }
  builder.SetDefaultAccelerator(static_cast<uint32_t>(found - accelerators.begin()));
  ATRIUM_ASSIGN_OR_RETURN(
      const int64_t jobs_waiting_max,
      ctx.Int(root, "", "jobs_waiting_max", 1, kJobsWaitingMaxLimit, kJobsWaitingMaxDefault));
  builder.SetJobsWaitingMax(jobs_waiting_max);
  auto built = std::move(builder).Build();
  if (!built.ok()) return ctx.Fail(&root, built.error().field, built.error().message);
  return built;
}

Result<Cluster> LoadClusterFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(ErrorCode::kIoError, fmt::format("cannot open {}", path), "cluster");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string text = std::move(buffer).str();
  if (text.size() > kConfigBytesMax) {
    return MakeError(ErrorCode::kLimitExceeded, fmt::format("{} is larger than 16 MiB", path));
  }
  return ParseClusterToml(text, path);
}

}  // namespace atrium::cluster
