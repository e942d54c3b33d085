#!/bin/bash
# The guest's key readers (scripts/guest/seed) run by busybox, as in the guest, on crafted input:
# meta_data.json in the layouts and escapes clouds produce, and #cloud-config key lists.
# Exit 0 pass, 1 fail, 77 skipped (no busybox).
set -euo pipefail
SEED=$(cd "$(dirname "$0")/../.." && pwd)/scripts/guest/seed
BB=$(command -v busybox) || { echo "SKIPPED: busybox is not installed (scripts/setup-deps.sh)"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
# Sourced without an argument the script only defines its functions.
run() { "$BB" sh -c ". '$SEED'; $1 '$2'"; }
check() {  # NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then echo "ok: $1"; else printf 'FAIL: %s\n--- expected:\n%s\n--- got:\n%s\n' "$1" "$2" "$3"; exit 1; fi
}

# Nova's one-line layout: a trailing \n in each key, nested objects elsewhere.
cat > "$T/nova.json" <<'J'
{"uuid": "d8e02d56", "meta": {"public_keys": {"x": "ssh-ed25519 NESTED"}, "hostname": "nested"}, "public_keys": {"mykey": "ssh-ed25519 AAAAC3NzaC1 me@host\n"}, "keys": [{"name": "mykey", "type": "ssh", "data": "ssh-ed25519 LISTED\n"}], "hostname": "vm-1.novalocal", "name": "vm-1", "launch_index": 0}
J
check "Nova's meta_data.json" "key ssh-ed25519 AAAAC3NzaC1 me@host
hostname vm-1.novalocal" "$(run openstack_meta "$T/nova.json")"

# Pretty-printed, escapes (\/ \" \u0041), a value holding two keys, a non-key, literals.
cat > "$T/pretty.json" <<'J'
{
  "public_keys" : {
    "a" : "ssh-ed25519 AAAA\u0041B\/C+D= a@b",
    "b": "ssh-rsa BBBB \"quoted\" {braces} [brackets], commas:\necdsa-sha2-nistp256 CCCC second",
    "c": "not a key"
  },
  "flags": [true, false, null, 1.5e3, {"hostname": "deep"}],
  "hostname": "pretty"
}
J
check "pretty-printed meta_data.json with escapes" 'key ssh-ed25519 AAAAAB/C+D= a@b
key ssh-rsa BBBB "quoted" {braces} [brackets], commas:
key ecdsa-sha2-nistp256 CCCC second
hostname pretty' "$(run openstack_meta "$T/pretty.json")"

printf '{"name": "x"}\n' > "$T/nokeys.json"
check "no public_keys" "" "$(run openstack_meta "$T/nokeys.json")"

cat > "$T/user-data" <<'Y'
#cloud-config
ssh_authorized_keys:
  - ssh-ed25519 AAAA one
  - "ssh-ed25519 BBBB two"

  # a comment
  - 'sk-ssh-ed25519@openssh.com CCCC three'
  - not-a-key
users:
  - name: root
    ssh_authorized_keys:
      - ssh-rsa DDDD four
packages: [a, b]
Y
check "#cloud-config key lists" "ssh-ed25519 AAAA one
ssh-ed25519 BBBB two
sk-ssh-ed25519@openssh.com CCCC three
ssh-rsa DDDD four" "$(run cloud_config_keys "$T/user-data")"
echo PASS
