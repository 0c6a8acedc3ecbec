#!/usr/bin/env bash
# The long fuzz run: each target until FUZZ_RUNS executions (default 10 million) or its
# time budget, one target at a time (FUZZ_JOBS), each in FUZZ_WORKERS processes (default
# 1) that split its runs, at the lowest priority (nice 19: the machine is shared). Each
# target keeps its grown corpus in build/fuzz/long/NAME.corpus, so a later run continues
# where this one stopped, and each worker's log in NAME.wN.log. Prints one JSON object per
# target and writes them all to build/fuzz/long/summary.json:
#   {"target", "executions", "crashes", "seconds", "cpu_seconds", "exec_per_s",
#    "exec_per_cpu_s", "max_len", "corpus_inputs"}
# A crash's input is left in build/fuzz/long/NAME-crash-... (replay: build/fuzz/tests/fuzz/NAME FILE).
#
#   scripts/fuzz-long.sh [targets...]
#   FUZZ_RUNS=10000000 FUZZ_MAX_SECONDS=3600 scripts/fuzz-long.sh trace_csv_fuzzer
#   FUZZ_SECONDS_PER_TARGET="trace_csv_fuzzer=600 app_op_fuzzer=300" scripts/fuzz-long.sh
#   FUZZ_WORKERS=2 scripts/fuzz-long.sh app_op_fuzzer      # both cores on one target
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fuzz-targets.sh
if (($# > 0)); then targets=("$@"); fi
runs=${FUZZ_RUNS:-10000000}
max_seconds=${FUZZ_MAX_SECONDS:-21600}
per_target=${FUZZ_SECONDS_PER_TARGET:-}
jobs=${FUZZ_JOBS:-1}
workers=${FUZZ_WORKERS:-1}
# libFuzzer's timeout is wall time. At nice 19 beside a build a fuzzer gets ~2% of a
# core, so an input that takes 1 s (a 1 KB cluster file of 604,800 nodes, rejected after
# the pools are built) passed 25 s and was reported as a timeout (session 26): the bound
# is a minute and a half unless FUZZ_TIMEOUT_S says otherwise.
timeout_s=${FUZZ_TIMEOUT_S:-90}
cmake --preset fuzz >/dev/null
nice -n 19 cmake --build --preset fuzz -j "$(nproc)" --target "${targets[@]}" >/dev/null
out=build/fuzz/long
mkdir -p "$out"
# Detection as in CI (leaks, UB halts); only the allocation stack depth of a report is cut,
# which a replay of the crash input restores.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:malloc_context_size=5}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
long_one() {
  local target=$1
  local seconds=$max_seconds
  for pair in $per_target; do
    [[ ${pair%%=*} == "$target" ]] && seconds=${pair#*=}
  done
  local max_len
  max_len=$(fuzz_max_len "$target")
  mkdir -p "$out/$target.corpus"
  local started=$SECONDS
  # FUZZ_WORKERS processes share the target's runs and its corpus directory (each starts
  # from what is there and adds what it finds); their executions and CPU seconds add up.
  local per_worker=$(((runs + workers - 1) / workers))
  local pids=() w
  rm -f "$out/$target".w*.log "$out/$target".w*.time
  for ((w = 0; w < workers; w++)); do
    # CPU seconds as well as wall seconds: on a shared machine the wall rate says little.
    /usr/bin/time -f '%U %S' -o "$out/$target.w$w.time" \
      nice -n 19 build/fuzz/tests/fuzz/"$target" -runs="$per_worker" -max_total_time="$seconds" \
      -rss_limit_mb=2048 -max_len="$max_len" -timeout="$timeout_s" -print_final_stats=1 \
      -seed=$((w + 1)) -artifact_prefix="$out/$target-" "$out/$target.corpus" \
      tests/fuzz/corpus/"$target" >"$out/$target.w$w.log" 2>&1 &
    pids+=($!)
  done
  for w in "${pids[@]}"; do wait "$w" || true; done
  local elapsed=$((SECONDS - started))
  local cpu_s
  cpu_s=$(cat "$out/$target".w*.time |
          awk 'NF == 2 && $1 ~ /^[0-9.]+$/ {s += $1 + $2} END {printf "%.2f", s}')
  local executions
  executions=$(cat "$out/$target".w*.log |
               grep -o 'stat::number_of_executed_units: *[0-9]*' | grep -o '[0-9]*$' |
               awk '{s += $1} END {print s + 0}')
  local crashes
  crashes=$(find "$out" -maxdepth 1 -name "$target-*" | wc -l)
  local inputs
  inputs=$(find "$out/$target.corpus" -type f | wc -l)
  cpu_s=${cpu_s:-0}
  local per_cpu_s
  per_cpu_s=$(awk -v e="${executions:-0}" -v c="$cpu_s" 'BEGIN {printf "%d", (c > 0 ? e / c : 0)}')
  printf '{"target": "%s", "executions": %s, "crashes": %s, "seconds": %s, "cpu_seconds": %s, "exec_per_s": %s, "exec_per_cpu_s": %s, "max_len": %s, "corpus_inputs": %s}\n' \
    "$target" "${executions:-0}" "$crashes" "$elapsed" "$cpu_s" \
    "$(( ${executions:-0} / (elapsed > 0 ? elapsed : 1) ))" \
    "$per_cpu_s" "$max_len" "$inputs"
}
export -f long_one fuzz_max_len
export out runs max_seconds per_target timeout_s workers
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'long_one {}' |
  tee "$out/summary.jsonl"
jq -s . "$out/summary.jsonl" >"$out/summary.json"
