#!/usr/bin/env bash
# Where POST latency goes over a server's life (not a test): one release `atrium serve` on
# research-40k (bookkeeping only), then PHASES consecutive wrk runs of DURATION_S seconds
# each submitting jobs (scripts/bench/job_submit.lua) over CONNECTIONS connections. Each
# phase prints one JSON line (requests/s, p99 and max latency in ms, non-2xx answers);
# the last line gives the server's snapshot figures from /metrics: snapshots by where
# they were encoded and how long the apply thread paused for them, and how many durable
# appends (one transaction each) took over 25 and over 100 ms, the longest step of storing
# a snapshot between groups (a part, a head or a pruned chunk) and the chunks pruned. The cluster fills in
# about 5 s; the waiting bound is raised to 5,000,000 jobs, so every submission is
# accepted; a snapshot is due every 100,000 entries.
#
#   scripts/bench-post-phases.sh [PHASES] [DURATION_S] [CONNECTIONS]   (defaults 4, 10, 50)
#   SERVE_ARGS="--snapshot-encode apply_thread" scripts/bench-post-phases.sh
set -euo pipefail
cd "$(dirname "$0")/.."
phases=${1:-4}
duration=${2:-10}
connections=${3:-50}
scripts/install-deps.sh >/dev/null
dpkg-query -W -f='${Status}' wrk 2>/dev/null | grep -q 'install ok installed' ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release --target atrium >/dev/null
# ATRIUM: another build's binary (an earlier commit's, for a before/after pair).
atrium=${ATRIUM:-$PWD/build/release/src/cli/atrium}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck disable=SC2086  # SERVE_ARGS is a list of options
# The waiting queue raised from its default, so that every submission is accepted.
{ echo "jobs_waiting_max = 5000000"; cat examples/clusters/research-40k.toml; } >"$work/cluster.toml"
"$atrium" serve --data "$work/data" --listen 127.0.0.1:$port --rate-limit 0 ${SERVE_ARGS:-} \
  --bootstrap-cluster "$work/cluster.toml" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/serve.log" && break; sleep 0.1; done
setup=$(scripts/service-demo.sh "http://127.0.0.1:$port" "$work/data/admin.token" "$atrium" | tail -n 1)
program=$(sed -n 's/.*program=\([^ ]*\).*/\1/p' <<<"$setup")
grant=$(sed -n 's/.*grant=\([^ ]*\).*/\1/p' <<<"$setup")
token=$(cat "$(sed -n 's/.*researcher_token=\([^ ]*\).*/\1/p' <<<"$setup")")
export ATRIUM_BENCH_TOKEN=$token ATRIUM_BENCH_PROGRAM=$program ATRIUM_BENCH_GRANT=$grant
# wrk prints latencies as 950.00us, 12.34ms or 1.20s: milliseconds.
for phase in $(seq "$phases"); do
  wrk -t2 -c"$connections" -d"${duration}s" --latency -s scripts/bench/job_submit.lua \
    "http://127.0.0.1:$port/v1/jobs" |
    awk -v phase="$phase" '
      function ms(v) {
        if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
        if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
        if (v ~ /s$/) { sub(/s$/, "", v); return v * 1000 }
        return v + 0
      }
      /Requests\/sec/ {rps = $2}
      /^ +Latency +[0-9]/ {max = ms($4)}
      /^ +99%/ {p99 = ms($2)}
      /Non-2xx or 3xx responses:/ {bad = $5}
      END {printf "{\"phase\": %d, \"requests_per_s\": %s, \"p99_ms\": %s, \"max_ms\": %s, \"non_2xx\": %d}\n",
           phase, rps, p99, max, bad}'
done
curl -s -H "Authorization: Bearer $(cat "$work/data/admin.token")" "http://127.0.0.1:$port/metrics" |
  awk '
    /^atrium_journal_snapshots_total\{encode="child"\}/ {child = $2}
    /^atrium_journal_snapshots_total\{encode="apply_thread"\}/ {apply = $2}
    /^atrium_journal_snapshot_pause_seconds\{stat="sum"\}/ {sum = $2}
    /^atrium_journal_snapshot_pause_seconds\{stat="max"\}/ {max = $2}
    /^atrium_journal_commands_total/ {commands = $2}
    /^atrium_journal_fsync_seconds_bucket\{le="0.025"\}/ {le25 = $2}
    /^atrium_journal_fsync_seconds_bucket\{le="0.1"\}/ {le100 = $2}
    /^atrium_journal_fsync_seconds_count/ {appends = $2}
    /^atrium_journal_snapshot_write_step_seconds_max/ {step = $2}
    /^atrium_journal_snapshot_chunks_pruned_total/ {pruned = $2}
    END {printf "{\"commands\": %d, \"appends\": %d, \"appends_over_25ms\": %d, \"appends_over_100ms\": %d, \"snapshots_child\": %d, \"snapshots_apply_thread\": %d, \"snapshot_pause_ms_sum\": %.1f, \"snapshot_pause_ms_max\": %.1f, \"snapshot_write_step_ms_max\": %.1f, \"snapshot_chunks_pruned\": %d}\n",
         commands, appends, appends - le25, appends - le100, child, apply, sum * 1000, max * 1000, step * 1000, pruned}'
