#!/bin/sh
# podman-service.sh start DIR [REGISTRY_PORT...] | stop DIR | env DIR
# Runs `podman system service` on unix://DIR/podman.sock with all of podman's
# config, storage and state inside DIR (see /work/shared/notes/test-services.md),
# so tests never touch the machine's containers. `start` prints the DOCKER_HOST.
# `env DIR` prints the environment lines that point podman's CLI at DIR.
set -eu
cmd=${1:?usage: podman-service.sh start|stop|env DIR}
dir=${2:?usage: podman-service.sh start|stop|env DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
shift 2

write_configs() {
  mkdir -p "$dir/storage" "$dir/run" "$dir/tmp" "$dir/runtime"
  cat >"$dir/containers.conf" <<CONF
[containers]
netns = "none"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
# podman keeps each exec session (and its conmon) for exit_command_delay
# seconds after the command ends, so a Docker client can still read its exit
# code; the default of 300 s piles up a conmon per exec. The plugin reads the
# exit code as soon as the output ends: 10 s is ample.
exit_command_delay = 10
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
runtime = "runc"
tmp_dir = "$dir/tmp"
volume_path = "$dir/storage/volumes"
static_dir = "$dir/storage/libpod"
CONF
  cat >"$dir/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$dir/storage"
runroot = "$dir/run"
CONF
  # Every 127.0.0.1 registry a test starts speaks plain HTTP.
  cat >"$dir/registries.conf" <<CONF
unqualified-search-registries = []
[[registry]]
location = "127.0.0.1"
insecure = true
CONF
  # A registry with a port needs its own entry: podman matches host:port.
  for port in "$@"; do
    printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$port" >>"$dir/registries.conf"
  done
}

print_env() {
  echo "CONTAINERS_CONF=$dir/containers.conf"
  echo "CONTAINERS_STORAGE_CONF=$dir/storage.conf"
  echo "CONTAINERS_REGISTRIES_CONF=$dir/registries.conf"
  echo "XDG_RUNTIME_DIR=$dir/runtime"
  echo "BUILDAH_ISOLATION=chroot"
}

case "$cmd" in
  start)
    write_configs "$@"
    sock="$dir/podman.sock"
    rm -f "$sock"
    env $(print_env) podman --root "$dir/storage" --runroot "$dir/run" \
      system service --time=0 "unix://$sock" >"$dir/podman.log" 2>&1 &
    echo $! >"$dir/podman.pid"
    i=0
    while [ ! -S "$sock" ]; do
      i=$((i + 1))
      if [ $i -gt 100 ] || ! kill -0 "$(cat "$dir/podman.pid")" 2>/dev/null; then
        echo "podman-service.sh: podman did not start; see $dir/podman.log" >&2
        exit 1
      fi
      sleep 0.1
    done
    echo "unix://$sock"
    ;;
  stop)
    # Containers a failed test left behind (only this instance's storage is touched).
    if [ -f "$dir/storage.conf" ]; then
      env $(print_env) podman --root "$dir/storage" --runroot "$dir/run" rm --all --force --time 0 \
        >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/podman.pid" ]; then
      pid=$(cat "$dir/podman.pid")
      if kill "$pid" 2>/dev/null; then
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$pid" 2>/dev/null || true
      fi
      rm -f "$dir/podman.pid" "$dir/podman.sock"
    fi
    # podman leaves a conmon per container and exec session (exec ones linger
    # for 300 s); they belong to this instance when their command line names DIR.
    for proc in /proc/[0-9]*; do
      pid=${proc#/proc/}
      cmdline=$({ tr '\0' ' ' <"$proc/cmdline"; } 2>/dev/null) || continue
      case "$cmdline" in
        */usr/bin/conmon*"$dir/"*) kill -9 "$pid" 2>/dev/null || true ;;
      esac
    done
    ;;
  env) print_env ;;
  *) echo "usage: podman-service.sh start|stop|env DIR" >&2; exit 2 ;;
esac
