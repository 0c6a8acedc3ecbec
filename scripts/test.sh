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
# The power-cut test must fail when the VFS lies about fsync (a few seconds).
CUTS=100 BUILD=build/dev scripts/mutation-powercut.sh

# Hardening (docs/journal.md, tests/fuzz/): a fuzz smoke run of every parser of outside
# input, the journal, committer, power-cut and in-process server tests under
# ThreadSanitizer, and
# clang-tidy (warnings as errors, with the thread-safety analysis) on the base, ledger,
# journal (where the locks are), scheduler and simulator sources (the whole tree, about 24
# CPU-minutes, is `scripts/tidy.sh` alone; docs/notes.md says which folders are clean).
FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh
cmake --preset tsan
cmake --build --preset tsan -j "$jobs" --target journal_test committer_test powercut_test server_test
ATRIUM_POWERCUT_CUTS=${ATRIUM_POWERCUT_CUTS_TSAN:-100} \
  ctest --preset tsan -R '^(journal_test|committer_test|powercut_test|server_test)$'
scripts/tidy.sh $(git ls-files 'src/base/*.cc' 'src/ledger/*.cc' 'src/journal/*.cc' \
                                'src/sched/*.cc' 'src/sim/*.cc' |
                  grep -Ev '_(test|benchmark)\.cc$')
