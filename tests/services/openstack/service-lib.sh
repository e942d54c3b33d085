# Shell helpers sourced by keystone-glance.sh, nova-fake.sh and nova-sim.sh.

# stop_pid FILE [SECONDS]: TERM the process (its process group when it leads one), wait up to
# SECONDS (default 10), then KILL; removes FILE.
stop_pid() {
  [ -f "$1" ] || return 0
  local pid tenths=$(( ${2:-10} * 10 )); pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $tenths); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_uwsgi PIDFILE PORT WSGI_FILE LOG: an OpenStack WSGI app on 127.0.0.1:PORT, in its own
# session. One process, one thread (sqlite); 'Connection: close' because uwsgi's http-socket closes
# after each response and pooling clients (keystoneauth) otherwise fail with RemoteDisconnected.
start_uwsgi() {
  setsid uwsgi --plugins python3 --http-socket "127.0.0.1:$2" --wsgi-file "$3" \
    --master --processes 1 --threads 1 --die-on-term --lazy-apps --add-header 'Connection: close' \
    --logto "$4" </dev/null >/dev/null 2>&1 &
  echo $! > "$1"
}
