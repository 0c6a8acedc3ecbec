#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang, ASan+UBSan) and runs each on its
# seed corpus for a few seconds. CI runs this (scripts/test.sh); scripts/fuzz-long.sh runs
# the same targets for millions of executions.
#
#   scripts/fuzz.sh                 # every target, FUZZ_SECONDS each (default 10)
#   scripts/fuzz.sh --seeds         # regenerate the binary seeds (journal record, snapshot)
#   FUZZ_SECONDS=60 scripts/fuzz.sh app_op_fuzzer
#
# A crash leaves its input in build/fuzz/artifacts/ and fails the script; replay it with
#   build/fuzz/tests/fuzz/NAME build/fuzz/artifacts/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fuzz-targets.sh
seconds=${FUZZ_SECONDS:-10}
jobs=${FUZZ_JOBS:-$(nproc)}

cmake --preset fuzz >/dev/null
if [[ ${1:-} == --seeds ]]; then
  cmake --build --preset fuzz --target fuzz_make_seeds
  build/fuzz/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
  exit 0
fi
if (($# > 0)); then targets=("$@"); fi
cmake --build --preset fuzz -j "$jobs" --target "${targets[@]}"

mkdir -p build/fuzz/artifacts
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_one() {
  local target=$1
  # The seed corpus stays read-only: new inputs go to a scratch directory per run.
  local scratch
  scratch=$(mktemp -d)
  local log=build/fuzz/artifacts/$target.log
  if build/fuzz/tests/fuzz/"$target" -max_total_time="$seconds" -rss_limit_mb=2048 \
       -max_len="$(fuzz_max_len "$target")" -timeout=25 -print_final_stats=1 \
       -artifact_prefix=build/fuzz/artifacts/"$target"- "$scratch" tests/fuzz/corpus/"$target" \
       >"$log" 2>&1; then
    echo "fuzz: $target ok, $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" |
                              grep -o '[0-9]*$') executions"
    rm -rf "$scratch"
  else
    echo "fuzz: $target FAILED (log: $log)" >&2
    tail -40 "$log" >&2
    rm -rf "$scratch"
    return 1
  fi
}
export -f run_one fuzz_max_len
export seconds
failed=0
# Two at a time: each fuzzer is single-threaded.
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}' || failed=1
exit $failed
