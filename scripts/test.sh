#!/usr/bin/env bash
# Installs what is missing, builds the dev preset (AddressSanitizer + UBSan) and runs
# every test. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/web-build.sh
jobs=$(nproc)
cmake --preset dev
cmake --build --preset dev -j "$jobs"
ctest --preset dev -j "$jobs"
