#!/bin/bash
# nova-fake.sh start DIR KEYSTONE_DIR | stop DIR
# Real Nova (api, conductor, scheduler, compute with compute_driver=fake.FakeDriver) + Placement +
# RabbitMQ (loopback only) + neutron-stub.py, on free 127.0.0.1 ports, against the Keystone and
# Glance of `keystone-glance.sh start KEYSTONE_DIR`; registered there as the compute service.
# For API conformance only: fake servers go ACTIVE but nothing boots. State and logs in DIR.
# Packages: nova-api nova-conductor nova-scheduler nova-compute placement-api rabbitmq-server
set -euo pipefail
usage() { echo "usage: nova-fake.sh start DIR KEYSTONE_DIR | stop DIR" >&2; exit 2; }
cmd=${1:-}; dir=${2:-}; [ -n "$cmd" ] && [ -n "$dir" ] || usage
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
here=$(cd "$(dirname "$0")" && pwd)
SERVICES="nova-compute nova-scheduler nova-conductor nova-api placement neutron-stub rabbit epmd"

. "$here/service-lib.sh"
stop_all() { for s in $SERVICES; do stop_pid "$dir/$s.pid"; done; }

if [ "$cmd" = stop ]; then [ -d "$dir" ] && stop_all; exit 0; fi
[ "$cmd" = start ] || usage
ks=${3:-}; [ -n "$ks" ] && [ -f "$ks/admin-env" ] || { echo "nova-fake.sh: KEYSTONE_DIR/admin-env missing; run keystone-glance.sh start first" >&2; exit 2; }
for t in nova-api nova-conductor nova-scheduler nova-compute nova-manage placement-manage rabbitmq-server; do
  command -v $t >/dev/null || [ -x /usr/lib/rabbitmq/bin/$t ] || { echo "nova-fake.sh: $t missing; install nova-api nova-conductor nova-scheduler nova-compute placement-api rabbitmq-server" >&2; exit 3; }
done
[ -e "$dir/nova-api.pid" ] && { echo "nova-fake.sh: $dir already runs Nova; stop it first" >&2; exit 2; }
mkdir -p "$dir"; dir=$(cd "$dir" && pwd); ks=$(cd "$ks" && pwd)
mkdir -p "$dir"/{placement,log,lock,state,instances,rabbit/home,rabbit/mnesia}
trap 'rc=$?; [ $rc = 0 ] || { stop_all; echo "nova-fake.sh: start failed; logs in $dir/log" >&2; }' EXIT
set -a; . "$ks/admin-env"; set +a
KS=${OS_AUTH_URL%/v3}

RABBIT_PORT=$(free_port); DIST_PORT=$(free_port); EPMD_PORT=$(free_port)
PL_PORT=$(free_port); NV_PORT=$(free_port); NEUTRON_PORT=$(free_port)
printf 'RABBIT_PORT=%s\nPLACEMENT_PORT=%s\nNOVA_PORT=%s\nNEUTRON_STUB_PORT=%s\n' $RABBIT_PORT $PL_PORT $NV_PORT $NEUTRON_PORT > "$dir/ports"
PW=svc-$RANDOM$RANDOM
RABBIT=rabbit://guest:guest@127.0.0.1:$RABBIT_PORT/

wait_for() { # wait_for WHAT PIDFILE COMMAND...
  local what=$1 pidfile=$2; shift 2
  for _ in $(seq 1800); do
    "$@" && return 0
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { echo "nova-fake.sh: $what exited; see $dir/log" >&2; return 1; }
    sleep 0.1
  done
  echo "nova-fake.sh: $what not ready after 180 s; see $dir/log" >&2; return 1
}
http_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = "$2" ]; }

# ---- RabbitMQ: AMQP, the Erlang distribution port and epmd all held to 127.0.0.1
printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\n' $RABBIT_PORT > "$dir/rabbit/rabbitmq.conf"
echo '[].' > "$dir/rabbit/enabled_plugins"
(
  export HOME=$dir/rabbit/home RABBITMQ_HOME=/usr/lib/rabbitmq RABBITMQ_NODENAME=lcake$RABBIT_PORT@localhost \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$RABBIT_PORT RABBITMQ_DIST_PORT=$DIST_PORT \
    RABBITMQ_CONFIG_FILE=$dir/rabbit/rabbitmq RABBITMQ_MNESIA_BASE=$dir/rabbit/mnesia RABBITMQ_LOG_BASE=$dir/log \
    RABBITMQ_ENABLED_PLUGINS_FILE=$dir/rabbit/enabled_plugins RABBITMQ_PID_FILE=$dir/rabbit/server.pid \
    ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=$EPMD_PORT \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  setsid /usr/lib/rabbitmq/bin/rabbitmq-server </dev/null >"$dir/log/rabbit.out" 2>&1 &
  echo $! > "$dir/rabbit.pid"
)
wait_for rabbitmq "$dir/rabbit.pid" bash -c "exec 2>/dev/null 3<>/dev/tcp/127.0.0.1/$RABBIT_PORT"
# epmd daemonizes away from rabbit's process group: find it by its port, to stop it by PID later.
for p in $(pgrep -x epmd || true); do
  tr '\0' ' ' 2>/dev/null </proc/$p/environ | grep -q "ERL_EPMD_PORT=$EPMD_PORT" && echo $p > "$dir/epmd.pid"
done

# ---- Keystone: service users and the catalog
for u in nova placement; do /usr/bin/python3 "$here/catalog.py" "$ks/admin-env" user $u "$PW"; done
/usr/bin/python3 "$here/catalog.py" "$ks/admin-env" service placement placement "http://127.0.0.1:$PL_PORT"
/usr/bin/python3 "$here/catalog.py" "$ks/admin-env" service network neutron "http://127.0.0.1:$NEUTRON_PORT"
/usr/bin/python3 "$here/catalog.py" "$ks/admin-env" service compute nova "http://127.0.0.1:$NV_PORT/v2.1"
authsec() { printf 'auth_type = password\nauth_url = %s/v3\nproject_domain_name = Default\nuser_domain_name = Default\nproject_name = service\nusername = %s\npassword = %s\nregion_name = RegionOne\n' "$KS" "$1" "$PW"; }

# ---- neutron stand-in (nova-api asks Neutron about ports and security groups even with networks "none")
setsid /usr/bin/python3 "$here/neutron-stub.py" $NEUTRON_PORT </dev/null >"$dir/log/neutron-stub.log" 2>&1 &
echo $! > "$dir/neutron-stub.pid"

# ---- Placement
{ printf '[DEFAULT]\nlog_file = %s/log/placement.log\n[placement_database]\nconnection = sqlite:///%s/placement.db?timeout=60\n' "$dir" "$dir"
  printf '[api]\nauth_strategy = keystone\n[keystone_authtoken]\nwww_authenticate_uri = %s\n' "$KS"; authsec placement; } > "$dir/placement/placement.conf"
placement-manage --config-file "$dir/placement/placement.conf" db sync >"$dir/log/placement-manage.log" 2>&1
sqlite3 "$dir/placement.db" 'PRAGMA journal_mode=WAL;' >/dev/null
OS_PLACEMENT_CONFIG_DIR=$dir/placement start_uwsgi "$dir/placement.pid" $PL_PORT /usr/bin/placement-api \
  "$dir/log/uwsgi-placement.log"

# ---- Nova
cat > "$dir/nova.conf" <<EOC
[DEFAULT]
transport_url = $RABBIT
compute_driver = fake.FakeDriver
host = lcake-fake-compute-$NV_PORT
my_ip = 127.0.0.1
state_path = $dir/state
instances_path = $dir/instances
log_dir = $dir/log
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = $NV_PORT
osapi_compute_workers = 1
enabled_apis = osapi_compute
metadata_listen = 127.0.0.1
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
[api_database]
connection = sqlite:///$dir/nova_api.db?timeout=60
[database]
connection = sqlite:///$dir/nova_cell1.db?timeout=60
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 2
[keystone_authtoken]
www_authenticate_uri = $KS
$(authsec nova)
[placement]
$(authsec placement)
[glance]
region_name = RegionOne
[neutron]
$(authsec nova)
[service_user]
send_service_user_token = false
[oslo_concurrency]
lock_path = $dir/lock
[vnc]
enabled = false
EOC
NM="nova-manage --config-file $dir/nova.conf"
{
  $NM api_db sync
  $NM cell_v2 map_cell0 --database_connection "sqlite:///$dir/nova_cell0.db?timeout=60"
  $NM cell_v2 create_cell --name cell1 --database_connection "sqlite:///$dir/nova_cell1.db?timeout=60" --transport-url "$RABBIT"
  $NM db sync
} >"$dir/log/nova-manage.log" 2>&1
# WAL and a 60 s busy timeout (in the URLs): on a loaded machine the API and the conductor otherwise
# fail each other's writes with "database is locked".
for db in nova_api nova_cell0 nova_cell1; do sqlite3 "$dir/$db.db" 'PRAGMA journal_mode=WAL;' >/dev/null; done
wait_for placement "$dir/placement.pid" http_ok "http://127.0.0.1:$PL_PORT/" 200
for svc in api conductor scheduler compute; do
  setsid nova-$svc --config-file "$dir/nova.conf" </dev/null >"$dir/log/nova-$svc.out" 2>&1 &
  echo $! > "$dir/nova-$svc.pid"
done
wait_for nova-api "$dir/nova-api.pid" http_ok "http://127.0.0.1:$NV_PORT/" 200
# Map the compute host into cell1 before the first boot (else HostMappingNotFound).
mapped() { local hosts; hosts=$($NM cell_v2 list_hosts 2>/dev/null) || true; [[ $hosts == *"lcake-fake-compute-$NV_PORT"* ]]; }
deadline=$((SECONDS + 180))
while [ $SECONDS -lt $deadline ]; do
  $NM cell_v2 discover_hosts >/dev/null 2>&1 || true
  mapped && break
  kill -0 "$(cat "$dir/nova-compute.pid")" 2>/dev/null || { echo "nova-fake.sh: nova-compute exited; see $dir/log" >&2; exit 1; }
  sleep 1
done
mapped || { echo "nova-fake.sh: the compute host never registered; see $dir/log" >&2; exit 1; }
# A service is ready when it consumes its RabbitMQ queue, not when its process or its database row
# exists: oslo.messaging drops a message sent to a queue nobody has declared yet, so a server
# created before nova-scheduler listens sits in BUILD for rpc_response_timeout (60 s), then ERROR.
# (The compute host's mapping above implies the conductor answered it; the scheduler is
# independent of both and, on a loaded machine, can be the last to start.)
rabbitctl() {
  env HOME="$dir/rabbit/home" ERL_EPMD_PORT=$EPMD_PORT \
    /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "lcake$RABBIT_PORT@localhost" "$@"
}
consumed() { # consumed QUEUE...: each QUEUE exists with at least one consumer
  local q n listed; listed=$(rabbitctl list_queues name consumers 2>/dev/null) || return 1
  for q in "$@"; do
    n=$(awk -v q="$q" '$1 == q { print $2 }' <<<"$listed")
    [ -n "$n" ] && [ "$n" -ge 1 ] || return 1
  done
}
deadline=$((SECONDS + 180))
QUEUES="conductor scheduler compute.lcake-fake-compute-$NV_PORT"
until consumed $QUEUES; do
  [ $SECONDS -lt $deadline ] || { echo "nova-fake.sh: not every Nova service consumes its queue ($QUEUES) after 180 s; see $dir/log" >&2; exit 1; }
  for svc in conductor scheduler compute; do
    kill -0 "$(cat "$dir/nova-$svc.pid")" 2>/dev/null || { echo "nova-fake.sh: nova-$svc exited; see $dir/log" >&2; exit 1; }
  done
  sleep 1
done
# Nova starts with no flavors: two small public ones, named like the simulator's.
for f in "m1.tiny 512 1" "ds512M 512 5"; do set -- $f
  env $(cat "$ks/admin-env") OS_COMPUTE_API_VERSION=2.1 openstack flavor create --public --ram $2 --disk $3 --vcpus 1 $1 \
    >>"$dir/log/flavors.log" 2>&1 || { echo "nova-fake.sh: could not create flavor $1; see $dir/log/flavors.log" >&2; exit 1; }
done
echo "http://127.0.0.1:$NV_PORT/v2.1"
