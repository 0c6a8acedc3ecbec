#!/usr/bin/env bash
# Restart benchmark (docs/snapshots.md): builds a store with JOBS jobs and GRANTS grants in
# its history (tests/restart_store.cc drives the core through the journal directly), one
# state snapshot, and TAIL journal entries after it; then times `atrium serve` from start
# to /readyz answering, RUNS times, reporting the median, the snapshot's size and encode
# time, and the server's peak RSS. Runs once with no tail and once with TAIL entries.
# Prints one JSON object per case. Release build.
#
#   scripts/bench-restart.sh                         # 1,000,000 jobs, 10,000 grants
#   JOBS=100000 GRANTS=1000 TAIL=10000 scripts/bench-restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-1000000}"
GRANTS="${GRANTS:-10000}"
TAIL="${TAIL:-100000}"
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

for tail in 0 "$TAIL"; do
  db="$out/store-$tail.db"
  rm -rf "$out/data"
  build_json="$(build/release/tests/atrium_restart_store --db "$db" \
    --cluster examples/clusters/research-40k.toml --jobs "$JOBS" --grants "$GRANTS" --tail "$tail")"
  times=()
  rss=0
  for _ in $(seq "$RUNS"); do
    read -r ms kb < <(time_restart "$db")
    times+=("$ms")
    rss="$kb"
  done
  python3 - "$build_json" "$rss" "$(du -b "$db" | cut -f1)" "${times[@]}" <<'PY'
import json, statistics, sys
build = json.loads(sys.argv[1])
times = [int(t) / 1000 for t in sys.argv[4:]]
print(json.dumps({"bench": "restart", **build, "store_bytes": int(sys.argv[3]),
                  "restart_s_median": statistics.median(times), "restart_s": times,
                  "serve_peak_rss_mb": round(int(sys.argv[2]) / 1024, 1)}))
PY
done
