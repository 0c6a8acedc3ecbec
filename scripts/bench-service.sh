#!/usr/bin/env bash
# The service benchmark (not a test): wrk on loopback against a release `atrium serve`,
# client and server sharing the machine's cores, and nginx serving a static file of the
# same size in the same run as the machine's ceiling. Prints one JSON object.
#
#   scripts/bench-service.sh [DURATION_S] [CONNECTIONS]      (defaults: 10, 50)
#
# Targets (issue 5): GET of a grant's balance >= 15,000 requests/s with p99 < 10 ms at 50
# connections; POST of job submissions >= 5,000 durable requests/s.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${2:-50}
scripts/install-deps.sh >/dev/null
for pkg in wrk nginx-light; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >/dev/null
done
cmake --preset release >/dev/null
cmake --build --preset release --target atrium >/dev/null
atrium=$PWD/build/release/src/cli/atrium
work=$(mktemp -d)
port=18480
nginx_port=18481
cleanup() {
  [[ -n ${server_pid:-} ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [[ -f $work/nginx.pid ]] && nginx -c "$work/nginx.conf" -p "$work" -s stop 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$atrium" serve --data "$work/data" --listen 127.0.0.1:$port --rate-limit 0 >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/serve.log" && break; sleep 0.1; done
setup=$(scripts/service-demo.sh "http://127.0.0.1:$port" "$work/data/admin.token" "$atrium" | tail -n 1)
program=$(sed -n 's/.*program=\([^ ]*\).*/\1/p' <<<"$setup")
grant=$(sed -n 's/.*grant=\([^ ]*\).*/\1/p' <<<"$setup")
token=$(cat "$(sed -n 's/.*researcher_token=\([^ ]*\).*/\1/p' <<<"$setup")")
balance_path="/v1/programs/$program/grants/$grant/balance"

# wrk's summary -> "requests_per_s p99_ms"
summarize() {
  awk '/Requests\/sec/ {rps=$2}
       /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
       /Non-2xx/ {bad=$4}
       END {printf "%s %s %s\n", rps, p99, (bad == "" ? 0 : bad)}'
}

read -r get_rps get_p99 get_bad < <(wrk -t2 -c"$connections" -d"${duration}s" --latency \
  -H "Authorization: Bearer $token" "http://127.0.0.1:$port$balance_path" | summarize)

export ATRIUM_BENCH_TOKEN=$token ATRIUM_BENCH_PROGRAM=$program ATRIUM_BENCH_GRANT=$grant
commands_before=$(curl -s -H "Authorization: Bearer $(cat "$work/data/admin.token")" \
  "http://127.0.0.1:$port/metrics" | awk '/^atrium_journal_commands_total/ {print $2}')
read -r post_rps post_p99 post_bad < <(wrk -t2 -c"$connections" -d"${duration}s" --latency \
  -s scripts/bench/job_submit.lua "http://127.0.0.1:$port/v1/jobs" | summarize)
metrics=$(curl -s -H "Authorization: Bearer $(cat "$work/data/admin.token")" "http://127.0.0.1:$port/metrics")
commands_after=$(awk '/^atrium_journal_commands_total/ {print $2}' <<<"$metrics")
fsync_count=$(awk '/^atrium_journal_fsync_seconds_count/ {print $2}' <<<"$metrics")
fsync_sum=$(awk '/^atrium_journal_fsync_seconds_sum/ {print $2}' <<<"$metrics")
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
# The server's own view of job_submit latency: the share answered within 10 and 50 ms.
server_le() {
  awk -v le="$1" -F' ' '$1 ~ /atrium_http_request_seconds_bucket\{operation="job_submit",le="/ {
      split($1, parts, "le=\""); sub(/".*/, "", parts[2]);
      if (parts[2] == le) hit = $2; if (parts[2] == "+Inf") all = $2 }
    END { printf "%.5f", (all > 0 ? hit / all : 0) }' <<<"$metrics"
}
server_10ms=$(server_le 0.01)
server_50ms=$(server_le 0.05)

# nginx: a static file as large as the balance answer, same wrk settings.
size=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port$balance_path" | wc -c)
mkdir -p "$work/www" "$work/logs"
head -c "$size" /dev/zero | tr '\0' 'x' >"$work/www/balance.json"
cat >"$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"
sleep 0.5
read -r nginx_rps nginx_p99 nginx_bad < <(wrk -t2 -c"$connections" -d"${duration}s" --latency \
  "http://127.0.0.1:$nginx_port/balance.json" | summarize)

cat <<JSON
{
  "machine": {"cores": $(nproc), "connections": $connections, "duration_s": $duration},
  "get_grant_balance": {"requests_per_s": $get_rps, "p99_ms": $get_p99, "non_2xx": $get_bad, "body_bytes": $size},
  "post_job_submit": {"requests_per_s": $post_rps, "p99_ms": $post_p99, "non_2xx": $post_bad,
                      "commands_journaled": $((commands_after - commands_before)),
                      "journal_transactions_total": $fsync_count, "journal_commit_seconds_total": $fsync_sum,
                      "server_share_within_10ms": $server_10ms, "server_share_within_50ms": $server_50ms},
  "nginx_static_same_size": {"requests_per_s": $nginx_rps, "p99_ms": $nginx_p99},
  "server_peak_rss_kb": $rss_kb
}
JSON
