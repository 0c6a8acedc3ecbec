#!/usr/bin/env bash
# Long-queue scheduler benchmarks (docs/simulate.md, "Long queues"): the long-queue
# synthetic workload on the 6,400-chip cluster, every policy side by side, at 1M and 2M
# jobs; then one pass with 100,000 jobs waiting on the 40,000-chip cluster. Prints one JSON
# object per run (the summary.json keys that matter, the process's wall and CPU seconds,
# peak RSS, and the load average after the run: the machine may be shared).
#
#   scripts/bench-sched.sh                 # 1M and 2M jobs, load 0.95, every policy
#   JOBS="100000" LOAD=1.0 scripts/bench-sched.sh
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-1000000 2000000}"
LOAD="${LOAD:-0.95}"
POLICIES="${POLICIES:-fifo backfill fairshare fairshare+preempt conservative}"
SEED="${SEED:-1}"
cmake --preset release >/dev/null
nice cmake --build --preset release -j2 --target atrium sched_benchmark >/dev/null
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for jobs in $JOBS; do
  for policy in $POLICIES; do
    dir="$out/$jobs-$policy"
    /usr/bin/time -f '%e %U %S %M' -o "$dir.time" \
      build/release/src/cli/atrium simulate --cluster examples/clusters/research-6400.toml \
      --synthetic "$jobs" --synthetic-mix long-queue --load "$LOAD" --seed "$SEED" \
      --policy "$policy" --out "$dir" --no-progress >/dev/null
    python3 - "$dir/summary.json" "$jobs" "$LOAD" "$dir.time" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
wall, user, system, rss_kb = open(sys.argv[4]).read().split()[-4:]
s["process_wall_s"] = float(wall)
s["process_cpu_s"] = round(float(user) + float(system), 2)
s["load_average"] = float(open("/proc/loadavg").read().split()[0])
keys = ["policy", "jobs", "utilization", "wait_mean_s", "wait_p50_s", "wait_p99_s",
        "idle_fit_chip_s", "idle_fit_fraction", "oldest_fit_skipped_passes",
        "started_ahead_reservation", "started_ahead_priority", "jobs_examined",
        "backfill_refused", "pass_bound_hits", "passes", "sim_wall_s", "process_wall_s",
        "process_cpu_s", "peak_rss_mb", "load_average"]
print(json.dumps({"bench": "long-queue", "load": float(sys.argv[3]),
                  **{k: s.get(k) for k in keys}}))
PY
  done
done
build/release/src/sched/sched_benchmark --benchmark_filter='BM_PassChurn|BM_PassFresh' \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true --benchmark_format=json |
  python3 -c '
import json, sys
for b in json.load(sys.stdin)["benchmarks"]:
    if b.get("aggregate_name") == "median":
        print(json.dumps({"bench": b["run_name"], "median_ms": b["real_time"]}))'
