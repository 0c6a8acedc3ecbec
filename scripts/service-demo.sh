#!/usr/bin/env bash
# Walks a running `atrium serve` through a whole grant cycle with the CLI client: tokens
# for each role, a program whose call closes a few seconds from now, institutions and
# people, proposals, a declared conflict, reviewer assignment, reviews, the decision,
# grants, a job charged to a grant on the cluster, an obligation, the report and the
# public log. It also opens a call of the example program the service preloads (its dates
# are relative to the load, so it can be opened on the day of a fresh install).
#
#   scripts/service-demo.sh [SERVER_URL] [ADMIN_TOKEN_FILE] [ATRIUM_BINARY]
#   scripts/service-demo.sh --start [ATRIUM_BINARY]    # on a throwaway service of its own
#
# Defaults: http://127.0.0.1:8080, ./atrium-data/admin.token, build/release/src/cli/atrium
# (else build/dev/src/cli/atrium). With --start it runs `atrium serve` on a free loopback
# port with its data in a temporary directory, and stops it at the end. Every step's
# failure stops the demo and shows the server's answer and the step that failed.
# Prints what it does; leaves a funded grant G-D1 of program "demo-<time>" behind and
# prints `program=<id> grant=G-D1 researcher_token=<file>` last (the benchmark uses it).
set -Eeuo pipefail
shopt -s inherit_errexit  # a failure inside $(...) stops the demo too
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=
# The token files stay (the last line names one, for scripts/bench-service.sh), except
# with --start, whose service goes away with them.
cleanup() {
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'echo "service-demo.sh: step failed (line $LINENO): $BASH_COMMAND" >&2' ERR

default_binary() {
  if [[ -x build/release/src/cli/atrium ]]; then
    echo build/release/src/cli/atrium
  else
    echo build/dev/src/cli/atrium
  fi
}
if [[ ${1:-} == --start ]]; then
  atrium=${2:-$(default_binary)}
  "$atrium" serve --data "$work/data" --listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    grep -q "listening on" "$work/serve.log" && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
  done
  server=$(sed -n 's/^atrium serve: listening on //p' "$work/serve.log")
  [[ -n $server ]] || { cat "$work/serve.log" >&2; exit 1; }
  admin_file=$work/data/admin.token
  echo "== started atrium serve at $server (data in $work/data)"
else
  server=${1:-http://127.0.0.1:8080}
  admin_file=${2:-atrium-data/admin.token}
  atrium=${3:-$(default_binary)}
fi
program="demo-$(date +%s)"
export ATRIUM_SERVER=$server ATRIUM_PROGRAM=$program

as() {  # as TOKEN_FILE atrium-args...
  local file=$1
  shift
  ATRIUM_TOKEN_FILE=$file "$atrium" "$@"
}
token() {  # token ROLE PERSON -> file holding a new token
  local file="$work/token-$1-${2:-none}"
  as "$admin_file" token create --role "$1" ${2:+--person "$2"} --json | jq -r .token >"$file"
  chmod 600 "$file"
  echo "$file"
}

# The call closes call_s seconds after the program is created (its dates are relative to
# the load), leaving time to register people and submit proposals on a slow build.
call_s=${ATRIUM_DEMO_CALL_S:-20}
cat >"$work/program.toml" <<EOF
[program]
id = "$program"
name = "Demo program"
currency = "USD"
total_budget = 10000000
award_policy = "mip"
topics = ["ml-systems", "compilers", "responsible-ai"]
[program.prices]
trn1 = "1.34375"
[[program.rubric]]
name = "merit"
weight = 2
min = 1
max = 5
[[program.rubric]]
name = "openness"
weight = 1
min = 1
max = 5
[program.obligations]
progress_report_months = []
final_report = false
paper = true
repository = true
final_grace_months = 3
freeze_when_overdue = true
[[track]]
id = "research"
name = "Research"
kind = "research"
budget = 10000000
award_cap = 5000000
institution_cap = 6000000
pi_roles = ["faculty"]
[[call]]
id = "open-call"
track = "research"
opens = "-1h"
closes = "+${call_s}s"
review_deadline = "+1h"
decision = "+2h"
reviewers_per_proposal = 2
EOF

officer=$(token officer)
echo "== program $program, call open-call (closes in $call_s s)"
as "$officer" programs create --file "$work/program.toml" --program "$program"
# The cluster: the one the service preloaded (this machine, run by the local executor, or
# the file --bootstrap-cluster named), or the mixed example if it has none
# (`atrium serve --no-examples`).
nodes=$(as "$admin_file" node list --json | jq '.items | length')
if [[ $nodes == 0 ]]; then
  echo "== loading examples/clusters/mixed.toml"
  as "$admin_file" cluster load --file "$here/examples/clusters/mixed.toml"
else
  echo "== the service has a cluster (the example it preloads)"
fi
for inst in northfield:r1:US lakeshore:r1:US cascadia:r1:CA thames:r1:GB deccan:r2:IN; do
  IFS=: read -r id type country <<<"$inst"
  echo "{\"id\":\"$id\",\"name\":\"$id\",\"type\":\"$type\",\"country\":\"$country\"}" >"$work/i.json"
  as "$officer" institution add --file "$work/i.json" >/dev/null
done
declare -A person_inst=([0000-0002-0260-0005]=northfield [0000-0002-0260-0013]=lakeshore
  [0000-0002-0260-0021]=cascadia [0000-0002-0260-003X]=thames [0000-0002-0260-0056]=deccan)
for id in "${!person_inst[@]}"; do
  reviewer=false
  [[ $id == 0000-0002-0260-0021 || $id == 0000-0002-0260-003X || $id == 0000-0002-0260-0056 ]] && reviewer=true
  echo "{\"id\":\"$id\",\"name\":\"Person $id\",\"institution\":\"${person_inst[$id]}\",\"role\":\"faculty\",\"expertise\":[\"compilers\",\"ml-systems\"],\"reviewer\":$reviewer}" >"$work/p.json"
  as "$officer" person add --file "$work/p.json" >/dev/null
done
as "$officer" call open open-call
pi1=$(token researcher 0000-0002-0260-0005)
pi2=$(token researcher 0000-0002-0260-0013)
for pair in "D1:$pi1" "D2:$pi2"; do
  id=${pair%%:*}
  echo "{\"id\":\"$id\",\"call\":\"open-call\",\"title\":\"Proposal $id\",\"abstract\":\"Compilers for accelerators.\",\"topics\":[\"compilers\"],\"requested\":\"4000000\",\"duration_months\":12,\"open_source_plan\":\"Apache-2.0\"}" >"$work/prop.json"
  as "${pair#*:}" proposal submit --file "$work/prop.json"
done
conflicted=$(token reviewer 0000-0002-0260-0056)
as "$conflicted" conflict declare --proposal D1 --note "co-authored last year" >/dev/null
echo "== waiting for the call to close"
# Until the call's close as the service resolved it ("+${call_s}s" after the program's load).
closes_us=$(as "$officer" call show open-call --json | jq .closes_us)
wait_s=$((closes_us / 1000000 - $(date +%s) + 1))
if [[ $wait_s -gt 0 ]]; then sleep "$wait_s"; fi
as "$officer" call close open-call
as "$officer" call assign open-call
for reviewer in 0000-0002-0260-0021 0000-0002-0260-003X 0000-0002-0260-0056; do
  file=$(token reviewer "$reviewer")
  for proposal in $(as "$file" proposal list --json | jq -r '.items[].id'); do
    as "$file" review submit --proposal "$proposal" --scores 5,4 --comment "clear plan" >/dev/null
    echo "review of $proposal by $reviewer"
  done
done
as "$officer" decision draft open-call
as "$officer" decision commit open-call
echo "== grants"
as "$officer" grant list
echo "== a job on G-D1, on the cluster"
# A real process on a cluster whose pool has executor = "local" (docs/executors.md; the
# default of `atrium serve`), bookkeeping only on research-40k; either way the operator
# reports its end. It asks for the whole first node (16 chips on the examples).
chips=$(as "$admin_file" node list --json | jq '.items[0].chips')
job=$(as "$pi1" job submit --grant G-D1 --chips "$chips" --walltime 2h --name demo --json -- sh -c 'echo training; sleep 60' | jq -r .job)
as "$pi1" job show "$job"
sleep 2
as "$pi1" job logs "$job"
ops=$(token operator)
as "$ops" job finish "$job"
as "$pi1" grant balance G-D1
echo "== obligations"
as "$pi1" obligation list --grant G-D1
as "$pi1" obligation submit G-D1/paper --reference arXiv:2401.00001
as "$officer" obligation review G-D1/paper --accept
echo "== the public log (no token)"
ATRIUM_TOKEN_FILE= "$atrium" log show --limit 5
example=build-on-trainium-2026
if ATRIUM_PROGRAM=$example as "$officer" call list --json >"$work/calls.json" 2>/dev/null; then
  state=$(jq -r '.items[] | select(.id == "2026-individuals") | .state' "$work/calls.json")
  echo "== the example program $example (preloaded; its call 2026-individuals is $state)"
  if [[ $state == scheduled ]]; then
    ATRIUM_PROGRAM=$example as "$officer" call open 2026-individuals
  fi
fi
echo "program=$program grant=G-D1 researcher_token=$pi1"
