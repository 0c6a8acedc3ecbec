#!/usr/bin/env bash
# The Slurm executor's benchmark (not a test; docs/executors.md): what Atrium adds over
# plain sbatch for the same JOBS trivial `true` jobs, both measured in the same run on the
# same fixture cluster (scripts/slurm-fixture.sh, NODES logical slurmd, 8 CPUs each).
#
#   sudo scripts/slurm-bench.sh [JOBS]     (default 1000; RUNS=3 NODES=64 CLIENTS=8)
#   ATRIUM=build/dev/src/cli/atrium RUNS=1 scripts/slurm-bench.sh 200   (a quick check)
#
#   sbatch   one sequential loop of `sbatch --parsable -n1 --gres=gpu:1 -o /dev/null` of a
#            script that runs `true`, timed from the first submission until squeue shows
#            none of them pending or running;
#   atrium   the same jobs submitted over HTTP (CLIENTS threads) to a release `atrium
#            serve` whose pool has executor = "slurm" on the same nodes, timed from the
#            first submission until every job is completed in Atrium (its start and end
#            seen in squeue and journaled).
# overhead_ms_per_job = (atrium_s - sbatch_s) * 1000 / JOBS. Prints one JSON object with
# the medians of RUNS runs (each run does both, sbatch first). Noisy while other work
# shares the machine (slurmd forks every job on the same 2 CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-1000}
runs=${RUNS:-3}
nodes=${NODES:-64}
clients=${CLIENTS:-8}
port=${BENCH_PORT:-18590}
slurm_port=${SLURM_PORT:-21817}
export ATRIUM_DEMO_CALL_S=${ATRIUM_DEMO_CALL_S:-45}
atrium=${ATRIUM:-}
if [[ -z $atrium ]]; then
  cmake --preset release >/dev/null
  cmake --build --preset release --target atrium >/dev/null
  atrium=$PWD/build/release/src/cli/atrium
fi
work=$(mktemp -d)
chmod 0755 "$work"
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; fi
  scripts/slurm-fixture.sh stop "$work/slurm" || true
  rm -rf "$work"
}
trap cleanup EXIT

scripts/slurm-fixture.sh start "$work/slurm" "$nodes" "$slurm_port" >&2
export SLURM_CONF=$work/slurm/etc/slurm.conf

slurm_nodes=$(seq -s, -f '"sn%g"' 1 "$nodes")
cat >"$work/cluster.toml" <<EOF
name = "slurm-bench"
default_accelerator = "trn1"
[accelerators.trn1]
vendor = "AWS"
cores_per_chip = 2
price_per_chip_hour = "1.34375"
[node_types.n8]
accelerator = "trn1"
chips = 8
allocation_sizes = [1, 2, 4, 8]
[[pools]]
name = "slurm"
node_type = "n8"
nodes = $nodes
executor = "slurm"
kill_grace_s = 5
slurm_partition = "atrium"
slurm_gres = "gpu"
slurm_nodes = [$slurm_nodes]
[partitions.research]
classes = ["research", "preemptible"]
walltime_max_s = 86400
EOF
printf '#!/bin/sh\nexec true\n' >"$work/true.sh"
chmod 0755 "$work/true.sh"

wait_drained() {  # until squeue lists none of the jobs named $1 pending or running
  while squeue -h -n "$1" -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i | grep -q .; do
    sleep 0.05
  done
}

sbatch_once() {
  local name=plain-$1 start end
  start=$(date +%s.%N)
  for _ in $(seq "$jobs"); do
    sbatch --parsable -J "$name" -n1 --gres=gpu:1 -p atrium -o /dev/null -e /dev/null \
      "$work/true.sh" >/dev/null
  done
  wait_drained "$name"
  end=$(date +%s.%N)
  python3 -c "import json,sys; print(json.dumps({'mode':'sbatch','seconds':round($end-$start,3)}))"
}

atrium_once() {
  local dir=$work/atrium-$1
  mkdir -p "$dir"
  "$atrium" serve --data "$dir/data" --listen 127.0.0.1:$port --rate-limit 0 \
    --bootstrap-cluster "$work/cluster.toml" >"$dir/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do grep -q 'listening on' "$dir/serve.log" && break; sleep 0.1; done
  chmod -R a+rX "$dir"
  local setup program grant token
  setup=$(scripts/service-demo.sh "http://127.0.0.1:$port" "$dir/data/admin.token" "$atrium" |
    tail -n 1)
  program=$(sed -n 's/.*program=\([^ ]*\).*/\1/p' <<<"$setup")
  grant=$(sed -n 's/.*grant=\([^ ]*\).*/\1/p' <<<"$setup")
  token=$(cat "$(sed -n 's/.*researcher_token=\([^ ]*\).*/\1/p' <<<"$setup")")
  # The demo's own job (if any) is done before the clock starts.
  python3 - "$port" "$program" "$grant" "$token" "$(cat "$dir/data/admin.token")" \
    "$jobs" "$clients" <<'PY'
import http.client, json, sys, threading, time
port, program, grant, token, admin = sys.argv[1:6]
jobs, clients = int(sys.argv[6]), int(sys.argv[7])

def request(conn, method, path, auth, body=None):
    headers = {"Authorization": "Bearer " + auth, "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    reply = conn.getresponse()
    return reply.status, reply.read()

def metric(conn, name):
    _, text = request(conn, "GET", "/metrics", admin)
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise SystemExit("no metric " + name)

watch = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
while metric(watch, "atrium_cluster_jobs_waiting") > 0 or \
        metric(watch, "atrium_cluster_chips_busy") > 0:
    time.sleep(0.1)
submit = {"program": program, "grant": grant, "chips": 1, "walltime_s": 600, "argv": ["true"]}
ids, errors = [], []
def client(count):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
    for _ in range(count):
        status, data = request(conn, "POST", "/v1/jobs", token, submit)
        if status != 201:
            errors.append((status, data[:200])); continue
        ids.append(json.loads(data)["job"])

start = time.monotonic()
threads = [threading.Thread(target=client, args=(jobs // clients + (i < jobs % clients),))
           for i in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
submitted = time.monotonic() - start
while metric(watch, "atrium_cluster_jobs_waiting") > 0 or \
        metric(watch, "atrium_cluster_chips_busy") > 0:
    time.sleep(0.05)
elapsed = time.monotonic() - start
if errors: raise SystemExit("refused: %r" % errors[:3])
states = {}
for job in ids:
    _, data = request(watch, "GET", "/v1/jobs/" + job, token)
    state = json.loads(data)["state"]
    states[state] = states.get(state, 0) + 1
if set(states) != {"completed"}: raise SystemExit("not all completed: %r" % states)
print(json.dumps({"mode": "atrium", "seconds": round(elapsed, 3),
                  "submit_seconds": round(submitted, 3)}))
PY
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

results=()
for run in $(seq "$runs"); do
  results+=("$(sbatch_once "$run")")
  echo "${results[-1]}" >&2
  results+=("$(atrium_once "$run")")
  echo "${results[-1]}" >&2
done
printf '%s\n' "${results[@]}" | python3 -c '
import json, statistics, sys
rows = [json.loads(line) for line in sys.stdin]
jobs = '"$jobs"'
def med(mode):
    return statistics.median(r["seconds"] for r in rows if r["mode"] == mode)
plain, atrium = med("sbatch"), med("atrium")
print(json.dumps({
    "bench": "exec-slurm", "jobs": jobs, "slurm_nodes": '"$nodes"', "clients": '"$clients"',
    "runs": len(rows) // 2,
    "sbatch_seconds": plain, "sbatch_jobs_per_s": round(jobs / plain, 1),
    "atrium_seconds": atrium, "atrium_jobs_per_s": round(jobs / atrium, 1),
    "atrium_submit_seconds": statistics.median(r["submit_seconds"] for r in rows if r["mode"] == "atrium"),
    "overhead_ms_per_job": round((atrium - plain) * 1000 / jobs, 3),
}))'
