#!/bin/bash
# keystone-glance.sh start DIR [--token-expiration SECONDS] | stop DIR
# Real Keystone (uwsgi) and Glance on 127.0.0.1, on free ports chosen at start, all state in DIR.
# Creates: admin (bootstrap), project+user "demo" with role member, project "service" with a
# "glance" service user. Writes DIR/env (KEY=VALUE lines for the demo user), DIR/admin-env,
# DIR/clouds.yaml (clouds "lcake-test" = demo, "lcake-test-admin"), DIR/ports, DIR/*.pid.
# Packages: keystone glance-api python3-openstackclient uwsgi-core uwsgi-plugin-python3 sqlite3 jq curl
set -euo pipefail
usage() { echo "usage: keystone-glance.sh start DIR [--token-expiration SECONDS] | stop DIR" >&2; exit 2; }
cmd=${1:-}; dir=${2:-}; [ -n "$cmd" ] && [ -n "$dir" ] || usage; shift 2
# The Debian services are '#!/usr/bin/python3' programs: keep pyenv/virtualenv settings away.
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
here=$(cd "$(dirname "$0")" && pwd)

. "$here/service-lib.sh"

if [ "$cmd" = stop ]; then
  [ -d "$dir" ] || exit 0
  stop_pid "$dir/glance.pid"; stop_pid "$dir/keystone.pid"; exit 0
fi
[ "$cmd" = start ] || usage
EXPIRATION=3600
while [ $# -gt 0 ]; do
  case $1 in
    --token-expiration) [ $# -ge 2 ] || usage; EXPIRATION=$2; shift 2 ;;
    *) usage ;;
  esac
done
case $EXPIRATION in ''|*[!0-9]*) echo "keystone-glance.sh: --token-expiration wants whole seconds, got '$EXPIRATION'" >&2; exit 2 ;; esac
for tool in keystone-manage glance-api glance-manage uwsgi sqlite3 jq curl; do
  command -v $tool >/dev/null || { echo "keystone-glance.sh: $tool missing; install keystone glance-api uwsgi-core uwsgi-plugin-python3 sqlite3 jq curl" >&2; exit 3; }
done
[ -f /usr/lib/uwsgi/plugins/python3_plugin.so ] || { echo "keystone-glance.sh: uwsgi's python3 plugin missing; install uwsgi-plugin-python3" >&2; exit 3; }
if [ -e "$dir/keystone.pid" ]; then echo "keystone-glance.sh: $dir already has a running stack; stop it first" >&2; exit 2; fi
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
mkdir -p "$dir"/{fernet,cred,images,staging,tasks,lock,log}
chmod 700 "$dir/fernet" "$dir/cred"
# If anything below fails, stop what was started: nothing half-running is left behind.
trap 'rc=$?; [ $rc = 0 ] || { stop_pid "$dir/glance.pid"; stop_pid "$dir/keystone.pid"; echo "keystone-glance.sh: start failed; logs in $dir/log" >&2; }' EXIT

KS_PORT=$(free_port); GL_PORT=$(free_port)
while [ "$GL_PORT" = "$KS_PORT" ]; do GL_PORT=$(free_port); done
KS=http://127.0.0.1:$KS_PORT; GL=http://127.0.0.1:$GL_PORT
ADMIN_PW=admin-$RANDOM$RANDOM; DEMO_PW=demo-$RANDOM$RANDOM; GLANCE_PW=glance-$RANDOM$RANDOM
printf 'KEYSTONE_PORT=%s\nGLANCE_PORT=%s\n' "$KS_PORT" "$GL_PORT" > "$dir/ports"

wait_http() { # wait_http URL CODE PIDFILE WHAT
  for _ in $(seq 1200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = "$2" ] && return 0
    kill -0 "$(cat "$3")" 2>/dev/null || { echo "keystone-glance.sh: $4 exited; see $dir/log" >&2; return 1; }
    sleep 0.1
  done
  echo "keystone-glance.sh: $4 not answering on $1 after 120 s; see $dir/log" >&2; return 1
}

write_env() { # write_env FILE USER PASSWORD PROJECT (readable by the owner only: it holds a password)
  install -m 600 /dev/null "$1"
  cat > "$1" <<EOF
OS_AUTH_URL=$KS/v3
OS_AUTH_TYPE=password
OS_IDENTITY_API_VERSION=3
OS_USERNAME=$2
OS_PASSWORD=$3
OS_PROJECT_NAME=$4
OS_USER_DOMAIN_NAME=Default
OS_PROJECT_DOMAIN_NAME=Default
OS_REGION_NAME=RegionOne
OS_INTERFACE=public
EOF
}

# ---- Keystone
cat > "$dir/keystone.conf" <<EOF
[DEFAULT]
log_file = $dir/log/keystone.log
[database]
connection = sqlite:///$dir/keystone.db
[identity]
# The cheapest bcrypt cost (Keystone's minimum, 4) instead of 12: every password (and application
# credential) authentication is that much faster; the passwords are random per start anyway.
password_hash_rounds = 4
[token]
provider = fernet
expiration = $EXPIRATION
[fernet_tokens]
key_repository = $dir/fernet
[fernet_receipts]
key_repository = $dir/fernet
[credential]
key_repository = $dir/cred
EOF
KM="keystone-manage --config-file $dir/keystone.conf"
{
  $KM db_sync
  sqlite3 "$dir/keystone.db" 'PRAGMA journal_mode=WAL;' >/dev/null
  $KM fernet_setup --keystone-user root --keystone-group root
  $KM credential_setup --keystone-user root --keystone-group root
  $KM bootstrap --bootstrap-password "$ADMIN_PW" --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "$KS/v3/" --bootstrap-internal-url "$KS/v3/" --bootstrap-public-url "$KS/v3/"
} >>"$dir/log/keystone-manage.log" 2>&1
OS_KEYSTONE_CONFIG_FILES="$dir/keystone.conf" start_uwsgi "$dir/keystone.pid" "$KS_PORT" /usr/bin/keystone-wsgi-public \
  "$dir/log/uwsgi-keystone.log"
wait_http "$KS/v3/" 200 "$dir/keystone.pid" keystone

token() { # token USER PASSWORD PROJECT
  curl -sf -D - -o /dev/null -H 'Content-Type: application/json' "$KS/v3/auth/tokens" -d "$(jq -n \
    --arg u "$1" --arg p "$2" --arg pr "$3" '{auth: {identity: {methods: ["password"],
      password: {user: {name: $u, domain: {id: "default"}, password: $p}}},
      scope: {project: {name: $pr, domain: {id: "default"}}}}}')" |
    awk -F': ' 'tolower($1) == "x-subject-token" {print $2}' | tr -d '\r'
}
T=$(token admin "$ADMIN_PW" admin)
ks() { curl -sf -H "X-Auth-Token: $T" -H 'Content-Type: application/json' "$@"; }
new_id() { ks "$KS/v3/$1" -d "$2" | jq -r ".${1%s}.id"; }
role_id() { ks "$KS/v3/roles?name=$1" | jq -r '.roles[0].id'; }
new_id projects '{"project":{"name":"service","domain_id":"default"}}' >/dev/null
DEMO_P=$(new_id projects '{"project":{"name":"demo","domain_id":"default"}}')
DEMO_U=$(new_id users "$(jq -n --arg p "$DEMO_PW" '{user: {name: "demo", domain_id: "default", password: $p}}')")
new_id roles '{"role":{"name":"service"}}' >/dev/null
ks -X PUT "$KS/v3/projects/$DEMO_P/users/$DEMO_U/roles/$(role_id member)"
write_env "$dir/admin-env" admin "$ADMIN_PW" admin
/usr/bin/python3 "$here/catalog.py" "$dir/admin-env" user glance "$GLANCE_PW"
/usr/bin/python3 "$here/catalog.py" "$dir/admin-env" service image glance "$GL"

# ---- Glance (the package's pristine paste pipeline, not a possibly edited /etc copy)
PASTE=/usr/share/glance-common/glance-api-paste.ini; [ -f "$PASTE" ] || PASTE=/etc/glance/glance-api-paste.ini
cat > "$dir/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $GL_PORT
workers = 1
log_file = $dir/log/glance-api.log
enabled_backends = fs:file
enabled_import_methods = [glance-direct]
[database]
connection = sqlite:///$dir/glance.db
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $dir/images
[os_glance_staging_store]
filesystem_store_datadir = $dir/staging
[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks
[oslo_concurrency]
lock_path = $dir/lock
[paste_deploy]
flavor = keystone
config_file = $PASTE
[keystone_authtoken]
www_authenticate_uri = $KS
auth_url = $KS
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = glance
password = $GLANCE_PW
EOF
glance-manage --config-file "$dir/glance-api.conf" db_sync >"$dir/log/glance-manage.log" 2>&1
sqlite3 "$dir/glance.db" 'PRAGMA journal_mode=WAL;' >/dev/null
setsid glance-api --config-file "$dir/glance-api.conf" </dev/null >"$dir/log/glance-api.out" 2>&1 &
echo $! > "$dir/glance.pid"
wait_http "$GL/" 300 "$dir/glance.pid" glance-api

# ---- client configuration
write_env "$dir/env" demo "$DEMO_PW" demo
cloud() { # cloud NAME USER PASSWORD PROJECT
  cat <<EOF
  $1:
    auth_type: password
    auth:
      auth_url: $KS/v3
      username: $2
      password: $3
      project_name: $4
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOF
}
{ echo "clouds:"; cloud lcake-test demo "$DEMO_PW" demo; cloud lcake-test-admin admin "$ADMIN_PW" admin; } > "$dir/clouds.yaml"
chmod 600 "$dir/clouds.yaml"
echo "keystone $KS/v3 glance $GL (env: $dir/env, clouds.yaml: $dir/clouds.yaml)"
