#!/bin/bash
# Builds a real-distribution test guest: Debian 12 with systemd, OpenSSH and cloud-init, made by
# mmdebstrap from Debian packages. It stands in for a stock cloud image (Debian genericcloud and the
# like): no password, no authorized keys, no baked-in access; the way in is cloud-init reading
# lcake's NoCloud seed, which creates the default user "debian" (sudo without password) and
# installs the seed's key. Booted by direct kernel boot (vmlinuz + initrd.img next to the disk;
# the root is the whole disk, an ext4 labelled lcake-root).
#
# Usage: scripts/build-distro-guest.sh OUTDIR [--reuse]
#   --reuse: keep OUTDIR as it is when this script built it with the same DISK_SIZE.
# Writes OUTDIR/{base.qcow2,base.qcow2.sha256,vmlinuz,initrd.img}.
# Environment: DISK_SIZE (default 2G), LCAKE_DEBIAN_MIRROR (default http://deb.debian.org/debian).
# Host needs: mmdebstrap, mke2fs with -d, qemu-img; root. Needs the Debian mirror.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [--reuse]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1; shift
REUSE=0
while [ $# -gt 0 ]; do
  case $1 in
    --reuse) REUSE=1; shift ;;
    *) usage ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "build-distro-guest: run as root (files in the image must be owned by root)" >&2; exit 2; }
for t in mmdebstrap mke2fs qemu-img; do
  command -v $t >/dev/null || { echo "build-distro-guest: $t is missing: run scripts/setup-deps.sh --tests" >&2; exit 2; }
done
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
# One build at a time per OUTDIR (parallel tests wait here, then find it current).
exec 9>"$OUT.lock"
command -v flock >/dev/null && flock 9
SIZE=${DISK_SIZE:-2G}
STAMP="$(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1) $SIZE"
if [ $REUSE = 1 ] && [ -f "$OUT/base.qcow2" ] && [ "$(cat "$OUT/.build-guest.stamp" 2>/dev/null)" = "$STAMP" ]; then
  echo "build-distro-guest: $OUT is current"; exit 0
fi
rm -f "$OUT/.build-guest.stamp"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
R=$W/root
MIRROR=${LCAKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
T0=$(date +%s)
echo "build-distro-guest: mmdebstrap from $MIRROR (takes minutes)"
# ifupdown + isc-dhcp-client: what cloud-init's ENI renderer configures on Debian 12; locales: cloud-init's
# locale module runs `locale-gen en_US.UTF-8` and `update-locale LANG=en_US.UTF-8` (its default locale).
# Debian's locale-gen ignores its arguments and builds only what /etc/locale.gen enables (nothing, in a
# fresh install), so update-locale would reject the locale and cloud-init end in status error: so the
# image has en_US.UTF-8 enabled in /etc/locale.gen and generated.
PKGS=systemd,systemd-sysv,udev,dbus,openssh-server,cloud-init,sudo,locales,ifupdown,isc-dhcp-client,linux-image-cloud-amd64,initramfs-tools,netbase,iproute2,procps
if ! mmdebstrap --variant=minbase --include="$PKGS" \
      --customize-hook='echo lcake-distro > "$1/etc/hostname"' \
      --customize-hook='printf "LABEL=lcake-root / ext4 defaults 0 1\n" > "$1/etc/fstab"' \
      --customize-hook='printf "datasource_list: [ NoCloud, None ]\n" > "$1/etc/cloud/cloud.cfg.d/90-lcake-test.cfg"' \
      --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
      --customize-hook=': > "$1/etc/machine-id"' \
      --customize-hook='sed -i "s/^# *\(en_US.UTF-8 UTF-8\)$/\1/" "$1/etc/locale.gen" && chroot "$1" locale-gen >/dev/null' \
      bookworm "$R" "$MIRROR" >"$W/mmdebstrap.log" 2>&1; then
  echo "build-distro-guest: mmdebstrap failed (is $MIRROR reachable?):" >&2
  tail -15 "$W/mmdebstrap.log" >&2; exit 1
fi
# Nothing to log in with: root locked, no keys (cloud-init's default user comes from the seed).
[ ! -e "$R/root/.ssh/authorized_keys" ] || { echo "build-distro-guest: root has authorized_keys" >&2; exit 1; }
cp "$(ls "$R"/boot/vmlinuz-* | sort -V | tail -1)" "$OUT/vmlinuz.tmp"
cp "$(ls "$R"/boot/initrd.img-* | sort -V | tail -1)" "$OUT/initrd.img.tmp"
chmod 644 "$OUT/vmlinuz.tmp" "$OUT/initrd.img.tmp"
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/*
truncate -s "$SIZE" "$W/disk.raw"
mke2fs -q -t ext4 -L lcake-root -E root_owner=0:0 -d "$R" "$W/disk.raw"
qemu-img convert -O qcow2 "$W/disk.raw" "$OUT/base.qcow2.tmp"
mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"; mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"; mv "$OUT/base.qcow2.tmp" "$OUT/base.qcow2"
(cd "$OUT" && sha256sum base.qcow2 > base.qcow2.sha256)
echo "$STAMP" > "$OUT/.build-guest.stamp"
echo "build-distro-guest: $OUT/base.qcow2 ($(du -h "$OUT/base.qcow2" | cut -f1)) in $(( $(date +%s) - T0 )) s"
