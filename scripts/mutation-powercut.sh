#!/usr/bin/env bash
# Mutation check of the power-cut test: powercut_test must pass as it is and must FAIL
# when the power-cut VFS lies about syncs (ATRIUM_POWERCUT_MUTATION, test-only code in
# src/journal/testing/power_cut_vfs.cc; production code is not touched):
#   skip_sync      every fsync answers OK and makes nothing durable
#   skip_wal_sync  the write-ahead log's fsyncs do nothing (commits acknowledged before
#                  their log frames are durable, as synchronous=NORMAL would)
#   late_sync      each fsync makes durable only what the previous one should have (every
#                  commit acknowledged one fsync early)
# A mutant counts as caught when the test fails on one of its checks (an acknowledged write
# lost, a store that no longer opens or verifies), not by crashing. Prints one JSON line
# per run and exits non-zero if a mutant survives or the unmutated test fails.
#
#   scripts/mutation-powercut.sh            # CUTS (default 300) cuts per run, dev preset
#   CUTS=1000 BUILD=build/dev scripts/mutation-powercut.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cuts=${CUTS:-300}
build=${BUILD:-build/dev}
if [[ -z ${BUILD:-} ]]; then
  cmake --preset dev >/dev/null
  nice cmake --build --preset dev -j "$(nproc)" --target powercut_test >/dev/null
fi
test_bin=$build/src/journal/powercut_test
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT
status=0
for mutation in none skip_sync skip_wal_sync late_sync; do
  log=$log_dir/$mutation.log
  started=$SECONDS
  set +e
  ATRIUM_POWERCUT_MUTATION=$mutation ATRIUM_POWERCUT_CUTS=$cuts nice "$test_bin" >"$log" 2>&1
  rc=$?
  set -e
  # gtest prints "Failure" for a failed check; a sanitizer report or abort is not a catch.
  checked_failure=$(grep -c 'Failure$' "$log" || true)
  first=$(grep -m1 -A3 'Failure$' "$log" | tr '\n"' ' ' | cut -c1-200 || true)
  if [[ $mutation == none ]]; then
    verdict=$([[ $rc == 0 ]] && echo passed || echo FAILED)
    [[ $rc == 0 ]] || status=1
  elif [[ $rc != 0 && $checked_failure -gt 0 ]] &&
       ! grep -q -E 'AddressSanitizer|runtime error:|Aborted' "$log"; then
    verdict=caught
  else
    verdict=SURVIVED
    status=1
  fi
  printf '{"mutation": "%s", "exit": %d, "verdict": "%s", "seconds": %d, "first_failure": "%s"}\n' \
    "$mutation" "$rc" "$verdict" $((SECONDS - started)) "$first"
  [[ $verdict == caught || $verdict == passed ]] || tail -30 "$log" >&2
done
exit $status
