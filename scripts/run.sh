#!/usr/bin/env bash
# Installs what is missing, builds the release preset and runs Atrium's main job on
# embedded defaults: for now, a ledger demonstration that prints balances.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
exec build/release/src/cli/atrium ledger demo "$@"
