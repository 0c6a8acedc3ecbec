#!/usr/bin/env bash
# Starts or stops a throw-away PostgreSQL server on loopback for the test suite.
#   scripts/pg-test-server.sh start DIR PORT   # prints nothing; the URL is
#                                              # postgresql://atrium@127.0.0.1:PORT/atrium_test
#   scripts/pg-test-server.sh stop DIR
# The server runs as the `postgres` user when started by root (PostgreSQL refuses root),
# keeps its data in DIR, listens on 127.0.0.1 only, and fsyncs as in production.
set -euo pipefail
action=${1:?start or stop}
dir=${2:?data directory}
port=${3:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
# The `postgres` user must be able to enter the working directory, and a checkout in a
# private directory (mktemp -d is mode 0700) is not one it can: work from / instead.
dir=$(realpath -m "$dir")
self=$(realpath "$0")
cd /

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# On failure, show what PostgreSQL said: the test log is all a CI run leaves behind.
show_logs() {
  for log in "$dir/initdb.log" "$dir/server.log"; do
    [[ -r "$log" ]] && { echo "--- $log" >&2; tail -n 40 "$log" >&2; }
  done
}

case "$action" in
  start)
    trap show_logs ERR
    if [[ -f "$dir/data/postmaster.pid" ]]; then "$self" stop "$dir" || true; fi
    rm -rf "$dir"
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$dir"; fi
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U atrium --no-sync >"$dir/initdb.log" 2>&1
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on" \
      start >/dev/null
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U atrium atrium_test
    ;;
  stop)
    if [[ -d "$dir/data" ]]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop DIR [PORT]" >&2
    exit 2
    ;;
esac
