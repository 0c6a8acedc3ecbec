// The op table's part for training programs and educational resources: Training programs and
// educational resources (docs/training.md).
#include "core/ops_internal.h"

namespace atrium::core {

std::vector<OpSpec> OpHandlers::TrainingTable() { return {}; }

}  // namespace atrium::core
