// The op table's part for datasets as allocatable resources: Datasets as allocatable resources
// (docs/datasets.md).
#include "core/ops_internal.h"

namespace atrium::core {

std::vector<OpSpec> OpHandlers::DatasetTable() { return {}; }

}  // namespace atrium::core
