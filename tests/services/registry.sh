#!/bin/sh
# registry.sh start DIR PORT [TOKEN_PORT] | stop DIR
# Runs Debian's docker-registry (CNCF distribution) on 127.0.0.1:PORT with its
# storage in DIR/registry and deletes enabled, using our own config (the
# package's one listens on all interfaces and wants htpasswd auth).
# With TOKEN_PORT, the registry wants token authentication (auth.token, the
# flow of Docker Hub/GHCR/Harbor/GitLab) from tests/services/token-server.py,
# started on 127.0.0.1:TOKEN_PORT with its key and users in DIR (see there);
# service "lcake-test-registry", realm http://127.0.0.1:TOKEN_PORT/token.
set -eu
usage="usage: registry.sh start DIR PORT [TOKEN_PORT] | stop DIR"
cmd=${1:?$usage}
dir=${2:?$usage}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

case "$cmd" in
  start)
    port=${3:?$usage}
    token_port=${4:-}
    mkdir -p "$dir/registry"
    auth=
    if [ -n "$token_port" ]; then
      python3 "$here/token-server.py" "$dir" "$token_port" lcake-test-registry >"$dir/token-server.log" 2>&1 &
      echo $! >"$dir/token-server.pid"
      i=0
      until [ -s "$dir/token.crt" ] && curl -s -o /dev/null "http://127.0.0.1:$token_port/token"; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 "$(cat "$dir/token-server.pid")" 2>/dev/null; then
          echo "registry.sh: token-server.py did not start on 127.0.0.1:$token_port; see $dir/token-server.log" >&2
          exit 1
        fi
        sleep 0.1
      done
      auth="auth:
  token:
    realm: http://127.0.0.1:$token_port/token
    service: lcake-test-registry
    issuer: lcake-test-token-server
    rootcertbundle: $dir/token.crt"
    fi
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
$auth
CONF
    docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
    echo $! >"$dir/registry.pid"
    i=0
    # /v2/ answers 200, or 401 with token auth; 000 until it listens.
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/")" != 000 ]; do
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
    for name in registry token-server; do
      if [ -f "$dir/$name.pid" ]; then
        pid=$(cat "$dir/$name.pid")
        if kill "$pid" 2>/dev/null; then
          i=0
          while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
          kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/$name.pid"
      fi
    done
    ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
