#!/bin/bash
# nova-sim.sh start DIR KEYSTONE_DIR [nova-sim.py options...] | stop DIR
# Starts the Nova simulator (nova-sim.py) against the Keystone + Glance of keystone-glance.sh
# start KEYSTONE_DIR, registered there as the `compute` service; state and the request log
# (DIR/requests.jsonl) in DIR; prints the compute endpoint (also in DIR/url).
set -euo pipefail
usage() { echo "usage: nova-sim.sh start DIR KEYSTONE_DIR [options] | stop DIR" >&2; exit 2; }
cmd=${1:-}; dir=${2:-}; [ -n "$cmd" ] && [ -n "$dir" ] || usage; shift 2
here=$(cd "$(dirname "$0")" && pwd)
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV

. "$here/service-lib.sh"

case $cmd in
  start)
    ks=${1:-}; [ -n "$ks" ] || usage; shift
    [ -f "$ks/admin-env" ] || { echo "nova-sim.sh: $ks/admin-env missing; run keystone-glance.sh start $ks first" >&2; exit 2; }
    [ -e "$dir/nova-sim.pid" ] && { echo "nova-sim.sh: $dir already has a simulator; stop it first" >&2; exit 2; }
    # The simulator checks every request and answer against the official Compute API definition,
    # which is not part of this repository: without it the simulator's tests cannot run (exit 3).
    spec=${LCAKE_COMPUTE_OPENAPI:-/work/shared/data/openstack-openapi/compute-v2.96.yaml}
    case " $* " in *" --openapi "*) ;; *)
      [ -f "$spec" ] || { echo "nova-sim.sh: the Compute API definition $spec is missing (set LCAKE_COMPUTE_OPENAPI to compute-v2.96.yaml from the OpenStack OpenAPI definitions)" >&2; exit 3; } ;;
    esac
    mkdir -p "$dir"; dir=$(cd "$dir" && pwd); rm -f "$dir/url"
    setsid /usr/bin/python3 "$here/nova-sim.py" --state-dir "$dir" --admin-env "$ks/admin-env" "$@" \
      </dev/null >>"$dir/nova-sim.log" 2>&1 &
    echo $! > "$dir/nova-sim.pid"
    for _ in $(seq 300); do
      [ -s "$dir/url" ] && { cat "$dir/url"; exit 0; }
      kill -0 "$(cat "$dir/nova-sim.pid")" 2>/dev/null || break
      sleep 0.1
    done
    echo "nova-sim.sh: the simulator did not start; see $dir/nova-sim.log:" >&2; tail -5 "$dir/nova-sim.log" >&2
    stop_pid "$dir/nova-sim.pid"; exit 1 ;;
  stop)
    [ -d "$dir" ] || exit 0
    stop_pid "$dir/nova-sim.pid" 15  # it stops its guests on TERM
    # Guests of a simulator that died without stopping them: their PIDs are in DIR/servers/*/.
    for f in "$dir"/servers/*/qemu.pid; do
      [ -f "$f" ] || continue
      pid=$(cat "$f")
      if tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -q "qemu-system.*$dir/servers/"; then kill -KILL "$pid"; fi
      rm -f "$f"
    done ;;
  *) usage ;;
esac
