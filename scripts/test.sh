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
# ThreadSanitizer, and clang-tidy (warnings as errors, with the thread-safety analysis).
FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh
cmake --preset tsan
cmake --build --preset tsan -j "$jobs" --target journal_test committer_test powercut_test server_test
ATRIUM_POWERCUT_CUTS=${ATRIUM_POWERCUT_CUTS_TSAN:-100} \
  ctest --preset tsan -R '^(journal_test|committer_test|powercut_test|server_test)$'
# Every source of src/ is tidy-clean, but all of it takes about 25 minutes on two cores, so
# CI checks the base, ledger, journal (where the locks are), scheduler and simulator
# sources always, the sources the newest commit changed, and a sample of the rest that
# rotates by day (docs/hardening.md, "clang-tidy coverage"; `scripts/tidy.sh` alone checks
# everything).
mapfile -t sources < <(git ls-files 'src/*.cc' | grep -Ev '_(test|benchmark)\.cc$')
mapfile -t always < <(printf '%s\n' "${sources[@]}" | grep -E '^src/(base|ledger|journal|sched|sim)/')
mapfile -t rest < <(printf '%s\n' "${sources[@]}" | grep -Ev '^src/(base|ledger|journal|sched|sim)/')
mapfile -t changed < <(git diff --name-only HEAD~1 HEAD -- 'src/*.cc' 2>/dev/null |
                       grep -Fx -f <(printf '%s\n' "${rest[@]}") || true)
mapfile -t rotating < <(printf '%s\n' "${rest[@]}" |
                        awk -v n=${#rest[@]} -v day=$(( $(date +%s) / 86400 )) -v k=${TIDY_SAMPLE:-3} \
                            '{ if (((NR + day * k) % n) < k) print }')
scripts/tidy.sh $(printf '%s\n' "${always[@]}" "${changed[@]}" "${rotating[@]}" | grep . | sort -u)
