#!/usr/bin/env bash
# The replay determinism test at full size (tests/replay_determinism_test.cc): OPS ops
# (default 100,000) in the release build; CTest runs a smaller count under ASan.
#
#   scripts/replay-determinism.sh                 # a fresh seed, 100,000 ops
#   ATRIUM_SEED=1234 scripts/replay-determinism.sh  # replay a failing seed
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
nice cmake --build --preset release -j2 --target replay_determinism_test >/dev/null
ATRIUM_REPLAY_OPS="${OPS:-100000}" build/release/tests/replay_determinism_test
