// Loading a Cluster from its TOML description (docs/cluster.md has the format). Every
// refusal is kConfigInvalid (or kParseError for malformed TOML, kIoError for an unreadable
// file) with a message that starts "FILE:LINE: KEY:", so an operator can go straight to
// the mistake:
//
//   research-40k.toml:14: node_types.trn1.chips: must be an integer from 1 to 64
//
//   Result<Cluster> cluster = LoadClusterFile("examples/clusters/mixed.toml");
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"
#include "cluster/cluster.h"

namespace atrium::cluster {

// Limits on a configuration, so that a typo cannot ask for a billion nodes.
inline constexpr int64_t kPoolNodesMax = 1 << 20;
inline constexpr size_t kConfigBytesMax = 16 << 20;

Result<Cluster> ParseClusterToml(std::string_view text, std::string_view source_name);
// The cluster file's optional top-level `policy = "..."` (the service's scheduling
// policy); empty when absent. kParseError for bad TOML or a policy that is not a string.
Result<std::string> ParseClusterPolicy(std::string_view text, std::string_view source_name);
Result<Cluster> LoadClusterFile(const std::string& path);

}  // namespace atrium::cluster
