#!/bin/sh
# registry.sh start DIR PORT | stop DIR
# Runs Debian's docker-registry (CNCF distribution) on 127.0.0.1:PORT with its
# storage in DIR/registry and deletes enabled, using our own config (the
# package's one listens on all interfaces and wants htpasswd auth).
set -eu
cmd=${1:?usage: registry.sh start DIR PORT | stop DIR}
dir=${2:?usage: registry.sh start DIR PORT | stop DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

case "$cmd" in
  start)
    port=${3:?usage: registry.sh start DIR PORT}
    mkdir -p "$dir/registry"
    cat >"$dir/registry.yml" <<CONF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
CONF
    docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
    echo $! >"$dir/registry.pid"
    i=0
    until curl -fs -o /dev/null "http://127.0.0.1:$port/v2/"; do
      i=$((i + 1))
      if [ $i -gt 100 ] || ! kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null; then
        echo "registry.sh: docker-registry did not start on 127.0.0.1:$port; see $dir/registry.log" >&2
        exit 1
      fi
      sleep 0.1
    done
    echo "127.0.0.1:$port"
    ;;
  stop)
    if [ -f "$dir/registry.pid" ]; then
      pid=$(cat "$dir/registry.pid")
      if kill "$pid" 2>/dev/null; then
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$pid" 2>/dev/null || true
      fi
      rm -f "$dir/registry.pid"
    fi
    ;;
  *) echo "usage: registry.sh start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
