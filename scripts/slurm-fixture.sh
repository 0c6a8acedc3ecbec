#!/usr/bin/env bash
# A throwaway Slurm 22.05 cluster on this one host, for tests and benchmarks: its own
# munged (own socket), slurmctld and NODES logical slurmd daemons (MULTIPLE_SLURMD), all
# configured and kept under DIR, with their own ports. Nothing in /etc/slurm or /run/munge
# is touched, so it does not disturb a site's Slurm. Needs root (slurmd runs jobs as
# their user) and the packages of scripts/install-deps.sh (slurm-wlm, munge,
# slurm-client).
#
#   scripts/slurm-fixture.sh start DIR [NODES] [PORT]   # NODES >= 1 (default 16), PORT 16817
#   export SLURM_CONF=DIR/etc/slurm.conf                 # then sbatch, squeue ... use it
#   scripts/slurm-fixture.sh stop DIR                    # stops exactly what start started
#
# Nodes are sn1 .. snNODES, each with 8 CPUs (config_overrides) and 8 GRES gpus whose
# "device files" are symlinks to /dev/null; partition `atrium` (default). Ended jobs are
# recorded in DIR/log/jobcomp.log (jobcomp/filetxt) and kept in slurmctld's memory for
# MIN_JOB_AGE seconds (environment; default 300, at least 2), then purged.
# `restart-ctld DIR` stops slurmctld (SIGTERM: it saves its state in DIR/state) and starts
# it again on the same configuration; `stop-ctld DIR` / `start-ctld DIR` do each half. `start` waits
# until every node is idle and prints `ready NODES`; it exits nonzero (and stops what it
# started) if the cluster does not come up within 60 s.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z $cmd || -z $dir ]]; then
  echo "usage: $0 start|stop|stop-ctld|start-ctld|restart-ctld DIR [NODES] [PORT]" >&2
  exit 2
fi

stop() {
  local pids=$dir/pids
  [[ -d $pids ]] || return 0
  # slurmd first (they talk to slurmctld on the way out), then slurmctld, then munged.
  for name in slurmd slurmctld munged; do
    [[ -f $pids/$name ]] || continue
    local list
    list=$(cat "$pids/$name")
    # shellcheck disable=SC2086
    kill $list 2>/dev/null || true
    for _ in $(seq 1 50); do
      local alive=0
      for pid in $list; do kill -0 "$pid" 2>/dev/null && alive=1; done
      ((alive)) || break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -9 $list 2>/dev/null || true
    rm -f "$pids/$name"
  done
  # A slurmstepd whose slurmd was killed (a node failure test) outlives it, retrying to
  # report; ours are those writing to this fixture's logs. They and their jobs end too.
  local proc
  for proc in /proc/[0-9]*; do
    [[ $(readlink "$proc/exe" 2>/dev/null) == */slurmstepd* ]] || continue
    if ls -l "$proc/fd" 2>/dev/null | grep -q -- "-> $dir/"; then
      local stepd=${proc#/proc/}
      # shellcheck disable=SC2046
      kill -9 $(pgrep -P "$stepd") "$stepd" 2>/dev/null || true
    fi
  done
}

# slurmctld alone, on the configuration `start` wrote (its state reloaded from DIR/state).
start_ctld() {
  SLURM_CONF=$dir/etc/slurm.conf /usr/sbin/slurmctld -D -f "$dir/etc/slurm.conf" \
    >>"$dir/log/slurmctld.out" 2>&1 &
  echo $! >"$dir/pids/slurmctld"
}
stop_ctld() {
  [[ -f $dir/pids/slurmctld ]] || return 0
  local pid
  pid=$(cat "$dir/pids/slurmctld")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pids/slurmctld"
}
wait_ctld() {
  for _ in $(seq 1 300); do
    SLURM_CONF=$dir/etc/slurm.conf timeout 5 squeue -h >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "slurm-fixture: slurmctld did not answer within 30 s" >&2
  return 1
}

case $cmd in
  stop) stop; exit 0 ;;
  stop-ctld) stop_ctld; exit 0 ;;
  start-ctld) start_ctld; wait_ctld; exit $? ;;
  restart-ctld) stop_ctld; start_ctld; wait_ctld; exit $? ;;
esac
[[ $cmd == start ]] || { echo "unknown command $cmd" >&2; exit 2; }

nodes=${3:-16}
port=${4:-16817}
min_job_age=${MIN_JOB_AGE:-300}
if [[ $(id -u) -ne 0 ]]; then
  echo "slurm-fixture: must run as root (slurmd runs jobs as their users)" >&2
  exit 1
fi
for bin in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch; do
  [[ -x $bin ]] || { echo "slurm-fixture: $bin missing; run scripts/install-deps.sh" >&2; exit 1; }
done

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir"/{etc,pids,log,state,spool,fakedev,munge}
for i in $(seq 0 7); do ln -sfn /dev/null "$dir/fakedev/gpu$i"; done
chown munge:munge "$dir/munge"
chmod 0755 "$dir" "$dir/munge"
trap 'stop' ERR

cat >"$dir/etc/slurm.conf" <<EOF
ClusterName=atriumfixture
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SlurmdParameters=config_overrides
GresTypes=gpu
ReturnToService=2
SlurmdTimeout=30
KillWait=5
MinJobAge=$min_job_age
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/log/slurmctld.pid
SlurmdPidFile=$dir/log/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
MaxJobCount=20000
NodeName=sn[1-$nodes] NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 Port=[$((port + 100))-$((port + 99 + nodes))] CPUs=8 Boards=1 SocketsPerBoard=1 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=300 Gres=gpu:8 State=UNKNOWN
PartitionName=atrium Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
echo "NodeName=sn[1-$nodes] Name=gpu File=$dir/fakedev/gpu[0-7]" >"$dir/etc/gres.conf"
export SLURM_CONF=$dir/etc/slurm.conf

setpriv --reuid=munge --regid=munge --clear-groups /usr/sbin/munged -F \
  -S "$dir/munge/munge.sock" --pid-file="$dir/munge/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
  >"$dir/log/munged.out" 2>&1 &
echo $! >"$dir/pids/munged"
for _ in $(seq 1 50); do [[ -S $dir/munge/munge.sock ]] && break; sleep 0.1; done

start_ctld
: >"$dir/pids/slurmd"
for i in $(seq 1 "$nodes"); do
  mkdir -p "$dir/spool/sn$i"
  /usr/sbin/slurmd -D -f "$SLURM_CONF" -N "sn$i" >"$dir/log/slurmd-sn$i.out" 2>&1 &
  echo $! >>"$dir/pids/slurmd"
done

deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
  idle=$(timeout 5 sinfo -h -N -t idle -o '%N' 2>/dev/null | sort -u | wc -l || true)
  if [[ $idle -ge $nodes ]]; then
    echo "ready $nodes"
    trap - ERR
    exit 0
  fi
  sleep 0.1
done
echo "slurm-fixture: the cluster did not come up within 60 s" >&2
timeout 5 sinfo -N 2>&1 | head -20 >&2 || true
tail -20 "$dir/log/slurmctld.log" >&2 || true
for f in "$dir"/log/slurmd-*.log; do grep -h -i error "$f" | tail -2 >&2 || true; done
stop
exit 1
