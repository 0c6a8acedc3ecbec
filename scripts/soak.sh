#!/usr/bin/env bash
# Soak (not a test; not in CI): a release `atrium serve` under a mixed workload for a
# given time -- reads (a grant's balance), durable writes (job submissions, so jobs are
# queued, run and finished by the clock's ticks: job churn), metrics scrapes, and a
# restart (SIGTERM, then start again on the same store) every RESTART_S seconds. Prints
# one JSON object: RSS (now and peak), latency percentiles (p50, p90, p99) of reads and
# writes in the first and the last 10 s phase, the writes accepted and refused over the
# whole run, and every restart's time from exec to listening (the first and last named).
# Every phase goes to SOAK_PHASES (default build/release/soak-phases.jsonl).
#
# Reads go as fast as the server answers them. Writes are paced at SOAK_POST_RATE
# submissions a second (default 500; jobs of 1 chip for 60 s, so research-40k runs about
# 30,000 chips and its queue stays short): unpaced, the writers fill the 200,000-job
# waiting bound within a minute, after which nearly every write is a refusal and the run
# measures refusals rather than the journal (session 30).
#
#   scripts/soak.sh [DURATION_S] [RESTART_S] [CONNECTIONS]    (defaults: 1800, 300, 32)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-1800}
restart_every=${2:-300}
connections=${3:-32}
phase_s=10
post_rate=${SOAK_POST_RATE:-500}
for pkg in wrk curl jq; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >/dev/null
done
cmake --preset release >/dev/null
cmake --build --preset release --target atrium >/dev/null
atrium=$PWD/build/release/src/cli/atrium
work=$(mktemp -d)
port=18490
server_pid=
cleanup() {
  [[ -n ${server_pid:-} ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Starts the server; sets start_ms to the milliseconds from exec to "listening" (recovery
# included). Not called in a subshell: it sets server_pid.
start_server() {
  local started_ns=$(date +%s%N)
  # research-40k: bookkeeping only (the default local cluster would run each job).
  "$atrium" serve --data "$work/data" --listen 127.0.0.1:$port --rate-limit 0 \
    --bootstrap-cluster examples/clusters/research-40k.toml >>"$work/serve.log" 2>&1 &
  server_pid=$!
  local lines_before=$1
  for _ in $(seq 6000); do
    (($(grep -c 'listening on' "$work/serve.log") > lines_before)) && break
    sleep 0.01
  done
  start_ms=$((($(date +%s%N) - started_ns) / 1000000))
}
stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=
}

: >"$work/serve.log"
start_server 0
first_start_ms=$start_ms
setup=$(scripts/service-demo.sh "http://127.0.0.1:$port" "$work/data/admin.token" "$atrium" | tail -n 1)
program=$(sed -n 's/.*program=\([^ ]*\).*/\1/p' <<<"$setup")
grant=$(sed -n 's/.*grant=\([^ ]*\).*/\1/p' <<<"$setup")
token=$(cat "$(sed -n 's/.*researcher_token=\([^ ]*\).*/\1/p' <<<"$setup")")
admin=$(cat "$work/data/admin.token")
export ATRIUM_BENCH_TOKEN=$token ATRIUM_BENCH_PROGRAM=$program ATRIUM_BENCH_GRANT=$grant
export ATRIUM_BENCH_RATE=$post_rate ATRIUM_BENCH_RATE_CONNECTIONS=$((connections / 2))
balance="http://127.0.0.1:$port/v1/programs/$program/grants/$grant/balance"

# wrk --latency -> "rps p50_ms p90_ms p99_ms errors requests"
summarize() {
  awk 'function ms(v) { if (v ~ /us$/) {sub(/us/,"",v); return v/1000} if (v ~ /ms$/) {sub(/ms/,"",v); return v+0} sub(/s/,"",v); return v*1000 }
       /Requests\/sec/ {rps=$2} /^ +50%/ {p50=ms($2)} /^ +90%/ {p90=ms($2)} /^ +99%/ {p99=ms($2)}
       /Non-2xx or 3xx responses:/ {bad+=$5} / requests in / {n=$1}
       END {printf "%s %s %s %s %d %d\n", rps, p50, p90, p99, bad, n}'
}
# One phase: reads and writes at once, then a metrics scrape; prints a JSON object.
phase() {
  wrk -t1 -c$((connections / 2)) -d${phase_s}s --latency -H "Authorization: Bearer $token" \
    "$balance" | summarize >"$work/get.txt" &
  wrk -t1 -c$((connections / 2)) -d${phase_s}s --latency -s scripts/bench/job_submit_paced.lua \
    "http://127.0.0.1:$port/v1/jobs" | summarize >"$work/post.txt"
  wait
  read -r g_rps g_p50 g_p90 g_p99 g_bad _ <"$work/get.txt"
  read -r p_rps p_p50 p_p90 p_p99 p_bad p_n <"$work/post.txt"
  local rss=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
  local rss_peak=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
  local waiting=$(curl -s -H "Authorization: Bearer $admin" "http://127.0.0.1:$port/metrics" |
    awk '/^atrium_cluster_jobs_waiting / {print $2}')
  printf '{"t_s": %d, "rss_kb": %s, "rss_peak_kb": %s, "jobs_waiting": %s, "get": {"rps": %s, "p50_ms": %s, "p90_ms": %s, "p99_ms": %s, "non_2xx": %s}, "post": {"rps": %s, "p50_ms": %s, "p90_ms": %s, "p99_ms": %s, "non_2xx": %s, "requests": %s}}' \
    $(($(date +%s) - soak_start)) "$rss" "$rss_peak" "${waiting:-0}" "$g_rps" "$g_p50" "$g_p90" \
    "$g_p99" "$g_bad" "$p_rps" "$p_p50" "$p_p90" "$p_p99" "$p_bad" "$p_n"
}

soak_start=$(date +%s)
last_restart=$soak_start
phases=()
restarts=()
while (($(date +%s) - soak_start < duration)); do
  phases+=("$(phase)")
  if (($(date +%s) - last_restart >= restart_every)); then
    stop_server
    start_server "$(grep -c 'listening on' "$work/serve.log")"
    restarts+=("$start_ms")
    last_restart=$(date +%s)
  fi
done
stop_server
start_server "$(grep -c 'listening on' "$work/serve.log")"
final_restart_ms=$start_ms
journal_bytes=$(stat -c %s "$work/data/atrium.db")

restart_list=$(IFS=,; echo "${restarts[*]:-}")
restart_first=null
restart_last=null
if ((${#restarts[@]} > 0)); then
  restart_first=${restarts[0]}
  restart_last=${restarts[-1]}
fi
# Every phase, for a look at the middle of the run.
phases_file=${SOAK_PHASES:-build/release/soak-phases.jsonl}
printf '%s\n' "${phases[@]}" >"$phases_file"
# Writes over the whole run: sent, refused (any non-2xx answer), and the phases whose
# read or write p99 went above 50 ms.
read -r posts_sent posts_refused slow_phases < <(jq -s -r \
  '[(map(.post.requests) | add), (map(.post.non_2xx) | add),
    (map(select(.get.p99_ms > 50 or .post.p99_ms > 50)) | length)] | @tsv' "$phases_file")
cat <<JSON
{
  "machine": {"cores": $(nproc), "connections": $connections, "duration_s": $duration,
              "restart_every_s": $restart_every, "phase_s": $phase_s, "phases": ${#phases[@]},
              "post_rate": $post_rate},
  "posts_sent": $posts_sent,
  "posts_refused": $posts_refused,
  "phases_p99_over_50ms": $slow_phases,
  "first_start_ms": $first_start_ms,
  "start": ${phases[0]},
  "end": ${phases[${#phases[@]}-1]},
  "restart_ms": [${restart_list}],
  "restart_first_ms": $restart_first,
  "restart_last_ms": $restart_last,
  "restart_after_soak_ms": $final_restart_ms,
  "journal_bytes": $journal_bytes
}
JSON
