#!/usr/bin/env bash
# Sim-to-real fidelity of the Slurm executor (docs/executors.md, "Fidelity"): the trace of
# scripts/fidelity-exec.sh (JOBS jobs `sleep D`, D of 1-3 s, 1-4 chips, submitted over the
# first JOBS/10 s) run for real through a Slurm pool of the test fixture's logical nodes
# (scripts/slurm-fixture.sh: NODES nodes x 8 chips, default 2, so 16 chips as the local
# run has) and through `atrium simulate` on the same cluster file and policy. Prints
# fidelity-exec.sh's JSON (bench "fidelity-slurm"). The tolerance is wider than the local
# executor's:
#     |real - sim| <= TOLERANCE_S (2.0) + DRIFT_S (0.5) x (the job's rank in its pool's order)
# because slurmctld starts batch jobs on its own scheduling tick (about every second with
# the fixture's batch_sched_delay=0), its start and end times have 1 s resolution, and
# Atrium sees an end only at its next squeue (every 200 ms): each start in a pool's chain
# of runs can come up to ~1 s after the end that freed its chips. Needs root.
#
#   scripts/fidelity-slurm.sh [JOBS]     (default 100; POLICY=fifo SEED=1 NODES=2 PORT=24817)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-100}
nodes=${NODES:-2}
port=${PORT:-24817}
# Short: munged's socket path must fit a sockaddr_un.
dir=$(mktemp -d /tmp/atrium-fid-XXXXXX)
chmod 0755 "$dir"
cleanup() {
  scripts/slurm-fixture.sh stop "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
scripts/slurm-fixture.sh start "$dir" "$nodes" "$port" >&2
export SLURM_CONF=$dir/etc/slurm.conf

slurm_nodes=$(seq -s, -f '"sn%g"' 1 "$nodes")
cat >"$dir/cluster.toml" <<TOML
name = "fidelity-slurm"
default_accelerator = "trn1"
[accelerators.trn1]
vendor = "AWS"
cores_per_chip = 2
memory_gib_per_chip = 32
price_per_chip_hour = "1.34375"
[node_types.s8]
accelerator = "trn1"
chips = 8
allocation_sizes = [1, 2, 4, 8]
[[pools]]
name = "slurm"
node_type = "s8"
nodes = $nodes
executor = "slurm"
kill_grace_s = 1
slurm_partition = "atrium"
slurm_gres = "gpu"
slurm_jobcomp = "$dir/log/jobcomp.log"
slurm_nodes = [$slurm_nodes]
[partitions.research]
classes = ["research", "preemptible"]
walltime_max_s = 1209600
[partitions.education]
classes = ["education"]
walltime_max_s = 172800
TOML
CLUSTER=$dir/cluster.toml BENCH=fidelity-slurm TOLERANCE_S=${TOLERANCE_S:-2.0} \
  DRIFT_S=${DRIFT_S:-0.5} scripts/fidelity-exec.sh "$jobs"
