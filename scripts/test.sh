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

# Hardening (docs/journal.md, tests/fuzz/): a fuzz smoke run of every parser of outside
# input, the journal, committer, power-cut and service tests under ThreadSanitizer, and
# clang-tidy (warnings as errors, with the thread-safety analysis) on the files changed
# since main plus a rotating sample (the whole tree takes too long for every run).
FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh
cmake --preset tsan
cmake --build --preset tsan -j "$jobs" --target journal_test committer_test powercut_test
ATRIUM_POWERCUT_CUTS=${ATRIUM_POWERCUT_CUTS_TSAN:-100} \
  ctest --preset tsan -R '^(journal_test|committer_test|powercut_test)$'
TIDY_BASE=${TIDY_BASE:-main} scripts/tidy.sh
