#!/usr/bin/env bash
# The local executor's benchmark (not a test; docs/executors.md): JOBS trivial `true` jobs
# submitted over HTTP to a release `atrium serve` on this machine as a one-node cluster of
# CHIPS logical chips, timed from the first submission until the last job is completed.
#
#   scripts/bench-exec.sh [JOBS]            (default 10000; RUNS=3 CHIPS=16 CLIENTS=8)
#   ATRIUM=build/dev/src/cli/atrium RUNS=1 scripts/bench-exec.sh 500   (a quick check)
#
# Two modes, the same cluster file but for the pool's executor:
#   local  every job is a real process (posix_spawn of the static atrium-supervisor, its
#          fork + exec of `true`), its start and end reported by the executor as
#          journaled ops: end to end jobs/s;
#   none   no process: each client submits a job and reports its end itself (job_finish)
#          at once: the scheduling + journaling path alone (HTTP, op, pass, group commit).
# per_job_ms_process = 1000/local - 1000/none is what running a process adds per job;
# process_run_ms_mean is the supervisor's own measure (its fork of the job to its reaping).
# The release build is used (both atrium and atrium-supervisor); ATRIUM=path measures
# another atrium (its atrium-supervisor is looked for next to it, then in the build).
# Prints one JSON object; each figure is the median of RUNS runs. Noisy while other work
# shares the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-10000}
runs=${RUNS:-3}
chips=${CHIPS:-16}
clients=${CLIENTS:-8}
port=${BENCH_PORT:-18580}
# The demo that funds the grant closes its call this long after it starts: time enough
# for its steps on a busy machine.
export ATRIUM_DEMO_CALL_S=${ATRIUM_DEMO_CALL_S:-45}
atrium=${ATRIUM:-}  # a binary to measure instead of the release build
if [[ -z $atrium ]]; then
  cmake --preset release >/dev/null
  cmake --build --preset release --target atrium >/dev/null
  atrium=$PWD/build/release/src/cli/atrium
fi
work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

run_once() {  # mode run -> one JSON line
  local mode=$1 dir=$work/$1-$2
  mkdir -p "$dir"
  sed -e "s/^chips = 16/chips = $chips/" -e "s/^allocation_sizes = .*/allocation_sizes = [1]/" \
    -e "s/^executor = \"local\"/executor = \"$mode\"/" examples/clusters/local.toml >"$dir/cluster.toml"
  "$atrium" serve --data "$dir/data" --listen 127.0.0.1:$port --rate-limit 0 \
    --bootstrap-cluster "$dir/cluster.toml" >"$dir/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do grep -q 'listening on' "$dir/serve.log" && break; sleep 0.1; done
  local setup program grant token
  setup=$(scripts/service-demo.sh "http://127.0.0.1:$port" "$dir/data/admin.token" "$atrium" |
    tail -n 1)
  program=$(sed -n 's/.*program=\([^ ]*\).*/\1/p' <<<"$setup")
  grant=$(sed -n 's/.*grant=\([^ ]*\).*/\1/p' <<<"$setup")
  token=$(cat "$(sed -n 's/.*researcher_token=\([^ ]*\).*/\1/p' <<<"$setup")")
  python3 - "$mode" "$port" "$program" "$grant" "$token" "$(cat "$dir/data/admin.token")" \
    "$jobs" "$clients" "$dir/data/jobs" "$server_pid" <<'PY'
import glob, http.client, json, os, statistics, sys, threading, time
mode, port, program, grant, token, admin = sys.argv[1:7]
jobs, clients, jobs_dir, server_pid = int(sys.argv[7]), int(sys.argv[8]), sys.argv[9], sys.argv[10]

def cpu_s():
    # The service's CPU time and its reaped children's (the supervisors, and through them
    # the jobs' processes): utime stime cutime cstime of /proc/PID/stat.
    fields = open("/proc/%s/stat" % server_pid).read().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")

def request(conn, method, path, auth, body=None):
    headers = {"Authorization": "Bearer " + auth, "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    reply = conn.getresponse()
    data = reply.read()
    return reply.status, data

def metric(conn, name):
    _, text = request(conn, "GET", "/metrics", admin)
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise SystemExit("no metric " + name)

submit = {"program": program, "grant": grant, "chips": 1, "walltime_s": 60, "argv": ["true"]}
ids, errors = [], []
def client(count):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
    for _ in range(count):
        status, data = request(conn, "POST", "/v1/jobs", token, submit)
        if status != 201:
            errors.append((status, data[:200])); continue
        job = json.loads(data)["job"]
        ids.append(job)
        if mode == "none":
            status, data = request(conn, "POST", "/v1/jobs/%s/finish" % job, admin, {})
            if status != 200: errors.append((status, data[:200]))

cpu_before = cpu_s()
start = time.monotonic()
threads = [threading.Thread(target=client, args=(jobs // clients + (i < jobs % clients),))
           for i in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
submitted = time.monotonic() - start
watch = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
while metric(watch, "atrium_cluster_jobs_waiting") > 0 or \
        metric(watch, "atrium_cluster_chips_busy") > 0:
    time.sleep(0.02)
elapsed = time.monotonic() - start
cpu_ms_per_job = (cpu_s() - cpu_before) * 1000 / jobs
if errors: raise SystemExit("refused: %r" % errors[:3])
# Every job completed (checked after the clock stopped).
states = {}
for job in ids[:: max(1, len(ids) // 500)]:
    _, data = request(watch, "GET", "/v1/jobs/" + job, token)
    state = json.loads(data)["state"]
    states[state] = states.get(state, 0) + 1
if set(states) != {"completed"}: raise SystemExit("not all completed: %r" % states)
out = {"mode": mode, "jobs": jobs, "seconds": round(elapsed, 3),
       "jobs_per_s": round(jobs / elapsed, 1), "submit_seconds": round(submitted, 3),
       "cpu_ms_per_job": round(cpu_ms_per_job, 3)}
if mode == "local":
    runs = []
    for path in glob.glob(jobs_dir + "/J*/run-1.status"):
        fields = open(path).read().split()
        runs.append((int(fields[4]) - int(fields[3])) / 1000.0)
    out["process_run_ms_mean"] = round(statistics.mean(runs), 3)
    out["processes"] = len(runs)
print(json.dumps(out))
PY
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

results=()
for mode in local none; do
  for run in $(seq "$runs"); do
    results+=("$(run_once "$mode" "$run")")
    echo "${results[-1]}" >&2
  done
done
printf '%s\n' "${results[@]}" | python3 -c '
import json, statistics, sys
rows = [json.loads(line) for line in sys.stdin]
def med(mode, key):
    return statistics.median(r[key] for r in rows if r["mode"] == mode)
local, none = med("local", "jobs_per_s"), med("none", "jobs_per_s")
print(json.dumps({
    "bench": "exec-local", "jobs": rows[0]["jobs"], "chips": '"$chips"', "clients": '"$clients"',
    "runs": len(rows) // 2,
    "jobs_per_s": local, "target_jobs_per_s": 200,
    "per_job_ms_end_to_end": round(1000 / local, 3),
    "sched_journal_jobs_per_s": none,
    "per_job_ms_sched_journal": round(1000 / none, 3),
    "per_job_ms_process": round(1000 / local - 1000 / none, 3),
    "process_run_ms_mean": med("local", "process_run_ms_mean"),
    # CPU time of the service and its processes per job (not counting the HTTP clients):
    # what bounds jobs/s when the machine is busy; 2 cores / this = a CPU-bound ceiling.
    "cpu_ms_per_job": med("local", "cpu_ms_per_job"),
    "cpu_ms_per_job_sched_journal": med("none", "cpu_ms_per_job"),
    "cpu_bound_jobs_per_s_2_cores": round(2000 / med("local", "cpu_ms_per_job"), 1),
}))'
