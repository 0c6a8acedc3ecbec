#!/usr/bin/env bash
# The service benchmark (not a test): wrk on loopback against a release `atrium serve`,
# client and server sharing the machine's cores, and nginx serving a static file of the
# same size in the same run as the machine's ceiling. Judged as ratios to nginx, because
# machines differ. Prints one JSON object: the median of RUNS runs of each figure.
#
#   scripts/bench-service.sh [DURATION_S] [CONNECTIONS]      (defaults: 10, 50)
#   RUNS=3 POST_RATE=2000 scripts/bench-service.sh
#
# Targets (issue 9): GET of a grant's balance >= 0.6x nginx's requests/s with p99 < 5 ms;
# the same GET while job submissions arrive at POST_RATE (2,000/s; wrk with a pacing Lua
# script, scripts/bench/job_submit_paced.lua, as Debian has no wrk2) keeps p99 < 10 ms;
# POST of job submissions, durable and all accepted, >= 0.3x nginx's requests/s.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${2:-50}
runs=${RUNS:-3}
post_rate=${POST_RATE:-2000}
paced_connections=${PACED_CONNECTIONS:-40}
scripts/install-deps.sh >/dev/null
for pkg in wrk nginx-light; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >/dev/null
done
cmake --preset release >/dev/null
cmake --build --preset release --target atrium >/dev/null
atrium=$PWD/build/release/src/cli/atrium
work=$(mktemp -d)
port=${BENCH_PORT:-18480}
nginx_port=$((port + 1))
cleanup() {
  [[ -n ${server_pid:-} ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [[ -f $work/nginx.pid ]] && nginx -c "$work/nginx.conf" -p "$work" -s stop 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# research-40k: bookkeeping only (the default local cluster would run each job). Its
# waiting queue is raised from the default 200,000 so that every submission of the runs
# is accepted: a refusal costs less than a submission and would flatter the figure.
{ echo "jobs_waiting_max = 5000000"; cat examples/clusters/research-40k.toml; } >"$work/cluster.toml"
"$atrium" serve --data "$work/data" --listen 127.0.0.1:$port --rate-limit 0 ${SERVE_ARGS:-} \
  --bootstrap-cluster "$work/cluster.toml" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/serve.log" && break; sleep 0.1; done
setup=$(scripts/service-demo.sh "http://127.0.0.1:$port" "$work/data/admin.token" "$atrium" | tail -n 1)
program=$(sed -n 's/.*program=\([^ ]*\).*/\1/p' <<<"$setup")
grant=$(sed -n 's/.*grant=\([^ ]*\).*/\1/p' <<<"$setup")
token=$(cat "$(sed -n 's/.*researcher_token=\([^ ]*\).*/\1/p' <<<"$setup")")
balance_path="/v1/programs/$program/grants/$grant/balance"
export ATRIUM_BENCH_TOKEN=$token ATRIUM_BENCH_PROGRAM=$program ATRIUM_BENCH_GRANT=$grant
export ATRIUM_BENCH_RATE=$post_rate ATRIUM_BENCH_RATE_CONNECTIONS=$paced_connections

# wrk's summary -> "requests_per_s p99_ms non_2xx"
summarize() {
  awk '/Requests\/sec/ {rps=$2}
       /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
       /Non-2xx or 3xx responses:/ {bad=$5}
       END {printf "%s %s %s\n", rps, p99, (bad == "" ? 0 : bad)}'
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
metric() {
  curl -s -H "Authorization: Bearer $(cat "$work/data/admin.token")" "http://127.0.0.1:$port/metrics" |
    awk -v name="$1" '$1 == name {print $2}'
}

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

declare -a get_rps get_p99 get_bad nginx_rps nginx_p99 post_rps post_p99 post_bad
declare -a mixed_get_rps mixed_get_p99 mixed_get_bad mixed_post_rps mixed_post_bad
commands_before=$(metric atrium_journal_commands_total)
groups_before=$(metric atrium_journal_fsync_seconds_count)
for run in $(seq "$runs"); do
  read -r a b c < <(wrk -t2 -c"$connections" -d"${duration}s" --latency \
    "http://127.0.0.1:$nginx_port/balance.json" | summarize)
  nginx_rps+=("$a") nginx_p99+=("$b")
  read -r a b c < <(wrk -t2 -c"$connections" -d"${duration}s" --latency \
    -H "Authorization: Bearer $token" "http://127.0.0.1:$port$balance_path" | summarize)
  get_rps+=("$a") get_p99+=("$b") get_bad+=("$c")
  read -r a b c < <(wrk -t2 -c"$connections" -d"${duration}s" --latency \
    -s scripts/bench/job_submit.lua "http://127.0.0.1:$port/v1/jobs" | summarize)
  post_rps+=("$a") post_p99+=("$b") post_bad+=("$c")
  # The same GET while submissions arrive at post_rate (the paced wrk starts first and
  # ends last, so the GET's whole window has writes).
  wrk -t1 -c"$paced_connections" -d"$((duration + 2))s" --latency \
    -s scripts/bench/job_submit_paced.lua "http://127.0.0.1:$port/v1/jobs" >"$work/paced.txt" &
  paced_pid=$!
  sleep 1
  read -r a b c < <(wrk -t2 -c"$connections" -d"${duration}s" --latency \
    -H "Authorization: Bearer $token" "http://127.0.0.1:$port$balance_path" | summarize)
  mixed_get_rps+=("$a") mixed_get_p99+=("$b") mixed_get_bad+=("$c")
  wait "$paced_pid"
  read -r a b c < <(summarize <"$work/paced.txt")
  mixed_post_rps+=("$a") mixed_post_bad+=("$c")
  echo "bench-service: run $run of $runs done" >&2
done
commands=$(( $(metric atrium_journal_commands_total) - commands_before ))
groups=$(( $(metric atrium_journal_fsync_seconds_count) - groups_before ))
fsync_sum=$(metric atrium_journal_fsync_seconds_sum)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")

m_nginx=$(median "${nginx_rps[@]}")
m_get=$(median "${get_rps[@]}")
m_get_p99=$(median "${get_p99[@]}")
m_post=$(median "${post_rps[@]}")
m_post_p99=$(median "${post_p99[@]}")
m_mixed_p99=$(median "${mixed_get_p99[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }
below() { awk -v a="$1" -v b="$2" 'BEGIN {print (a < b ? "true" : "false")}'; }
atleast() { awk -v a="$1" -v b="$2" 'BEGIN {print (a >= b ? "true" : "false")}'; }
get_ratio=$(ratio "$m_get" "$m_nginx")
post_ratio=$(ratio "$m_post" "$m_nginx")
list() { local IFS=,; echo "[$*]"; }

cat <<JSON
{
  "machine": {"cores": $(nproc), "connections": $connections, "duration_s": $duration, "runs": $runs,
              "load_average_1m": $(cut -d' ' -f1 /proc/loadavg)},
  "nginx_static_same_size": {"requests_per_s": $m_nginx, "p99_ms": $(median "${nginx_p99[@]}"),
                             "runs_requests_per_s": $(list "${nginx_rps[@]}"), "body_bytes": $size},
  "get_grant_balance": {"requests_per_s": $m_get, "p99_ms": $m_get_p99, "ratio_to_nginx": $get_ratio,
                        "non_2xx": $(median "${get_bad[@]}"), "runs_requests_per_s": $(list "${get_rps[@]}"),
                        "runs_p99_ms": $(list "${get_p99[@]}"),
                        "target": "ratio >= 0.6 and p99 < 5 ms",
                        "met": $( [[ $(atleast "$get_ratio" 0.6) == true && $(below "$m_get_p99" 5) == true ]] && echo true || echo false)},
  "get_while_posting": {"post_rate_offered_per_s": $post_rate,
                        "post_rate_achieved_per_s": $(median "${mixed_post_rps[@]}"),
                        "post_non_2xx": $(median "${mixed_post_bad[@]}"),
                        "get_requests_per_s": $(median "${mixed_get_rps[@]}"), "get_p99_ms": $m_mixed_p99,
                        "get_non_2xx": $(median "${mixed_get_bad[@]}"),
                        "runs_get_p99_ms": $(list "${mixed_get_p99[@]}"),
                        "target": "get p99 < 10 ms", "met": $(below "$m_mixed_p99" 10)},
  "post_job_submit": {"requests_per_s": $m_post, "p99_ms": $m_post_p99, "ratio_to_nginx": $post_ratio,
                      "non_2xx": $(median "${post_bad[@]}"), "runs_requests_per_s": $(list "${post_rps[@]}"),
                      "runs_p99_ms": $(list "${post_p99[@]}"),
                      "target": "ratio >= 0.3, every submission accepted",
                      "met": $( [[ $(atleast "$post_ratio" 0.3) == true && $(median "${post_bad[@]}") == 0 ]] && echo true || echo false)},
  "journal": {"commands": $commands, "transactions": $groups, "commit_seconds_total": $fsync_sum},
  "server_peak_rss_kb": $rss_kb
}
JSON
