#!/bin/bash
# Boots scripts/build-guest.sh's base.qcow2 the way a cloud does: plain qemu-system-x86_64 with its
# BIOS firmware (SeaBIOS), no -kernel, the SSH keys only on an OpenStack config drive (label
# config-2). Two boots: an iso9660 drive on an IDE CD-ROM next to a virtio root disk (what Nova's
# libvirt driver attaches), and a vfat drive on virtio next to qemu's default IDE root disk. Each
# checks that the keys let root in, that the hostname comes from meta_data.json, and that the keys
# are gone from the disk after poweroff.
# Usage: tests/guest/cloud_boot_test.sh GUEST_DIR [--sshd dropbear|openssh]
#   GUEST_DIR is (re)built with build-guest.sh --reuse. Exit 0 pass, 1 fail, 77 skipped.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 GUEST_DIR [--sshd dropbear|openssh]" >&2; exit 2; }
G=$1; shift
SRC=$(cd "$(dirname "$0")/../.." && pwd)
for t in qemu-system-x86_64 qemu-img genisoimage mkfs.vfat mcopy mmd debugfs ssh ssh-keygen; do
  command -v $t >/dev/null || { echo "SKIPPED: $t is not installed (scripts/setup-deps.sh)"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIPPED: building the guest needs root"; exit 77; }
bash "$SRC/scripts/build-guest.sh" "$G" "$@" --reuse

T=$(mktemp -d /tmp/lcake-cloud-boot-XXXXXX)
QEMU=
cleanup() { [ -z "$QEMU" ] || kill "$QEMU" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- serial console:"; tail -30 "$T/console.log" 2>/dev/null; exit 1; }

for k in a b c; do ssh-keygen -q -t ed25519 -N '' -C "key-$k" -f "$T/$k"; done
key() { awk '{print $1, $2}' "$T/$1.pub"; }
# Escapes a cloud may use: "\/" in the base64, "\n" at the end, quotes and braces in a comment.
escaped_b=$(key b | sed 's,/,\\/,g')
mkdir -p "$T/cd/openstack/latest"
printf '{"uuid": "6b9e6cbd-0f5b-4b43-8f3e-1a2b3c4d5e6f", "meta": {"role": "{not a key}"}, "public_keys": {"lcake": "%s lcake\\n", "ops": "%s ops \\"team {a}\\""}, "keys": [{"name": "lcake", "type": "ssh", "data": "%s lcake\\n"}], "hostname": "cloudy.example", "name": "cloudy", "launch_index": 0, "availability_zone": "nova"}\n' \
  "$(key a)" "$escaped_b" "$(key a)" > "$T/cd/openstack/latest/meta_data.json"
printf '#cloud-config\nssh_authorized_keys:\n  - "%s from-user-data"\n' "$(key c)" > "$T/cd/openstack/latest/user_data"
# Nova's own genisoimage flags for config drives.
genisoimage -quiet -o "$T/config.iso" -ldots -allow-lowercase -allow-multidot -l -J -r -V config-2 "$T/cd" 2>"$T/iso.log" \
  || fail "genisoimage: $(cat "$T/iso.log")"
mkfs.vfat -n config-2 -C "$T/config.vfat" 2048 >/dev/null 2>&1
mmd -i "$T/config.vfat" ::openstack ::openstack/latest
mcopy -i "$T/config.vfat" "$T/cd/openstack/latest/meta_data.json" "$T/cd/openstack/latest/user_data" ::openstack/latest/

awk '{print "[127.0.0.1]:*", $1, $2}' "$G/host_key.pub" > "$T/known_hosts"
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SSH=(ssh -i "$T/a" -p "$port" -o UserKnownHostsFile="$T/known_hosts" -o StrictHostKeyChecking=yes
     -o BatchMode=yes -o ConnectTimeout=2 -o LogLevel=ERROR root@127.0.0.1)

# boot NAME QEMU-DRIVE-ARGS...: boots, logs in, checks, powers off, checks the disk.
boot() {
  local name=$1; shift
  echo "== $name"
  rm -f "$T/overlay.qcow2" "$T/console.log"
  qemu-img create -q -f qcow2 -b "$(cd "$G" && pwd)/base.qcow2" -F qcow2 "$T/overlay.qcow2"
  local t0=$EPOCHREALTIME
  qemu-system-x86_64 -accel tcg -m 256 -nodefaults -display none -serial "file:$T/console.log" "$@" \
    -device virtio-rng-pci -nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" &
  QEMU=$!
  # QEMU accepts TCP at once and may hold an early connection without ever passing on sshd's
  # banner: probe with fresh short-lived connections until sshd speaks, then log in.
  local up=0
  for _ in $(seq 1 600); do
    kill -0 $QEMU 2>/dev/null || fail "$name: qemu exited"
    if timeout 0.5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -c 4 <&3" 2>/dev/null | grep -q SSH- &&
       "${SSH[@]}" true 2>/dev/null; then up=1; break; fi
    sleep 0.2
  done
  [ $up = 1 ] || fail "$name: no SSH login with the config drive's key within 2 minutes"
  echo "boot to SSH: $(echo "$EPOCHREALTIME - $t0" | bc) s"
  local out
  out=$("${SSH[@]}" 'hostname; cat /var/lib/seed/keys; echo ---; cat /root/.ssh/authorized_keys')
  echo "$out" | head -1 | grep -qx cloudy.example || fail "$name: hostname is not cloudy.example: $out"
  for k in a b c; do
    echo "$out" | sed -n '/^---$/q;p' | grep -qF "$(key $k)" || fail "$name: key-$k is not in /var/lib/seed/keys: $out"
  done
  [ "$(echo "$out" | sed -n '/^---$/,$p' | grep -c '^ssh-')" = 3 ] || fail "$name: authorized_keys is not the 3 keys: $out"
  grep -q "seed: 3 key(s) for root from .* (config-2)" "$T/console.log" || fail "$name: no 'seed: 3 key(s)' on the console"
  "${SSH[@]}" poweroff || true  # the connection may drop as the guest goes down
  for _ in $(seq 1 300); do kill -0 $QEMU 2>/dev/null || break; sleep 0.2; done
  kill -0 $QEMU 2>/dev/null && fail "$name: qemu still runs 60 s after poweroff"
  wait $QEMU || fail "$name: qemu exited with $?"
  QEMU=
  # The keys were removed at shutdown: read the root file system from the disk itself.
  qemu-img convert -f qcow2 -O raw "$T/overlay.qcow2" "$T/disk.raw"
  local start
  start=$(sfdisk -d "$T/disk.raw" | sed -n 's/.*start= *\([0-9]*\).*type=83.*/\1/p')
  [ -n "$start" ] || fail "$name: no Linux partition on the disk"
  local left
  left=$(debugfs -R 'cat /root/.ssh/authorized_keys' "$T/disk.raw?offset=$((start * 512))" 2>/dev/null)
  echo "$left" | grep -q '^ssh-' && fail "$name: keys left on the disk after poweroff: $left"
  debugfs -R 'stat /var/lib/seed/keys' "$T/disk.raw?offset=$((start * 512))" 2>&1 | grep -q 'not found' ||
    fail "$name: /var/lib/seed/keys is still on the disk"
  rm -f "$T/disk.raw"
  echo "ok: $name"
}

boot "iso9660 config drive on an IDE CD-ROM, virtio root disk" \
  -drive "file=$T/overlay.qcow2,format=qcow2,if=virtio" -drive "file=$T/config.iso,format=raw,media=cdrom,readonly=on"
boot "vfat config drive on virtio, qemu's default (IDE) root disk" \
  -drive "file=$T/overlay.qcow2,format=qcow2" -drive "file=$T/config.vfat,format=raw,if=virtio,readonly=on"
echo "PASS"
