#!/usr/bin/env bash
# Installs what is missing, builds the release preset and runs Atrium's main job on
# embedded defaults: the service (`atrium serve`), its journal in SQLite under
# ./atrium-data, listening on 127.0.0.1:8080, jobs run on this machine (the local
# executor). Extra arguments go to `atrium serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/web-build.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
# A fresh store loads this machine as a one-node cluster whose jobs really run (its
# Neuron or NVIDIA devices, else --local-chips logical chips, 16 by default; written to
# atrium-data/local-cluster.toml; docs/executors.md), unless --bootstrap-cluster names
# another.
exec build/release/src/cli/atrium serve "$@"
