#!/usr/bin/env bash
# Restart benchmark (docs/snapshots.md): builds a store with JOBS jobs and GRANTS grants in
# its history (tests/restart_store.cc drives the core through the journal directly) and
# one state snapshot; then, for each tail length in TAILS (0 = none), a copy of it with
# that many journal entries appended after the snapshot (job submissions and their ticks),
# and times `atrium serve` from start to /readyz answering, RUNS times, reporting the
# median, the snapshot's size and encode time, and the server's peak RSS. Prints one JSON
# object per case, then the memory kept per job record and per idempotency key
# (atrium_restart_store --memory MEMORY_RECORDS). Release build.
#
#   scripts/bench-restart.sh                         # 1,000,000 jobs, 10,000 grants
#   JOBS=100000 GRANTS=1000 TAILS="10000" scripts/bench-restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-1000000}"
GRANTS="${GRANTS:-10000}"
TAILS="${TAILS:-0 10000 100000}"
MEMORY_RECORDS="${MEMORY_RECORDS:-200000}"
RUNS="${RUNS:-3}"
cmake --preset release >/dev/null
nice cmake --build --preset release -j2 --target atrium atrium_restart_store >/dev/null
out="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill -9 "$server_pid" 2>/dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts serve on the store, waits for /readyz, prints "seconds peak_rss_kb", SIGKILLs it.
time_restart() {
  local db="$1" port start_ns end_ns rss
  port="$(free_port)"
  start_ns="$(date +%s%N)"
  build/release/src/cli/atrium serve --db "$db" --data "$out/data" --listen "127.0.0.1:$port" \
    --no-examples >"$out/serve.log" 2>&1 &
  server_pid=$!
  until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    if ! kill -0 "$server_pid" 2>/dev/null; then cat "$out/serve.log" >&2; exit 1; fi
    sleep 0.01
  done
  end_ns="$(date +%s%N)"
  rss="$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")"
  kill -9 "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  echo "$(( (end_ns - start_ns) / 1000000 )) $rss"
}

store="build/release/tests/atrium_restart_store"
base="$out/base.db"
build_json="$("$store" --db "$base" --cluster examples/clusters/research-40k.toml \
  --jobs "$JOBS" --grants "$GRANTS" --tail 0)"
for tail in $TAILS; do
  db="$out/store-$tail.db"
  rm -rf "$out/data"
  for f in "$base" "$base-wal" "$base-shm"; do
    if [[ -f "$f" ]]; then cp "$f" "$db${f#"$base"}"; fi
  done
  append_json='{}'
  if [[ "$tail" -gt 0 ]]; then append_json="$("$store" --db "$db" --append "$tail")"; fi
  times=()
  rss=0
  for _ in $(seq "$RUNS"); do
    read -r ms kb < <(time_restart "$db")
    times+=("$ms")
    rss="$kb"
  done
  python3 - "$build_json" "$append_json" "$rss" "$(du -bc "$db"* | tail -1 | cut -f1)" "$tail" "${times[@]}" <<'PY'
import json, statistics, sys
build = json.loads(sys.argv[1])
append = json.loads(sys.argv[2])
times = [int(t) / 1000 for t in sys.argv[6:]]
print(json.dumps({"bench": "restart", **build, "tail_entries": int(sys.argv[5]),
                  "append": append, "store_bytes": int(sys.argv[4]),
                  "restart_s_median": statistics.median(times), "restart_s": times,
                  "serve_peak_rss_mb": round(int(sys.argv[3]) / 1024, 1)}))
PY
  rm -f "$db"*
done
"$store" --memory "$MEMORY_RECORDS" --grants 100 --cluster examples/clusters/research-40k.toml
