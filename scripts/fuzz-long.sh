#!/usr/bin/env bash
# The long fuzz run: each target until FUZZ_RUNS executions (default 10 million) or
# FUZZ_MAX_SECONDS (default 6 hours), FUZZ_JOBS targets at a time, at low priority.
# Prints one line per target: executions, crashes (inputs left in build/fuzz/long/).
#
#   FUZZ_RUNS=10000000 scripts/fuzz-long.sh [targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(app_op_fuzzer trace_csv_fuzzer public_trace_fuzzer cluster_toml_fuzzer
         program_toml_fuzzer journal_record_fuzzer snapshot_fuzzer decision_log_fuzzer)
if (($# > 0)); then targets=("$@"); fi
runs=${FUZZ_RUNS:-10000000}
max_seconds=${FUZZ_MAX_SECONDS:-21600}
jobs=${FUZZ_JOBS:-1}
cmake --preset fuzz >/dev/null
nice cmake --build --preset fuzz -j "$(nproc)" --target "${targets[@]}"
out=build/fuzz/long
mkdir -p "$out"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
long_one() {
  local target=$1
  mkdir -p "$out/$target.corpus"
  local started=$SECONDS
  nice -n 15 build/fuzz/tests/fuzz/"$target" -runs="$runs" -max_total_time="$max_seconds" \
    -rss_limit_mb=2048 -max_len=65536 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$out/$target-" "$out/$target.corpus" tests/fuzz/corpus/"$target" \
    >"$out/$target.log" 2>&1 || true
  local executions
  executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$target.log" |
               grep -o '[0-9]*$' || echo 0)
  local crashes
  crashes=$(find "$out" -maxdepth 1 -name "$target-*" | wc -l)
  echo "$target executions=$executions crashes=$crashes seconds=$((SECONDS - started))"
}
export -f long_one
export out runs max_seconds
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'long_one {}' |
  tee "$out/summary.txt"
