#!/bin/bash
# Builds lcake's tiny x86_64 test guest from Debian 12 packages: the cloud kernel booted directly,
# a busybox initramfs that switch_roots to an ext4 root in base.qcow2, busybox as init and userland,
# dropbear or OpenSSH as sshd. No keys are baked in: each boot reads them from a NoCloud seed disk
# (label "cidata"), see docs/test-guest.md.
#
# Usage: scripts/build-guest.sh OUTDIR [--sshd dropbear|openssh]
# Writes OUTDIR/{vmlinuz,initrd.img,base.qcow2,base.qcow2.sha256,host_key.pub}.
# Environment: LCAKE_DEB_CACHE (.deb cache, default OUTDIR/../.debs), DISK_SIZE (default 1G).
# Host needs: apt-get (after apt-get update), dpkg-deb, mke2fs with -d, qemu-img, ssh-keygen; root.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [--sshd dropbear|openssh]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1; shift
SSHD=dropbear
while [ $# -gt 0 ]; do
  case $1 in
    --sshd) [ $# -ge 2 ] || usage; SSHD=$2; shift 2 ;;
    --sshd=*) SSHD=${1#--sshd=}; shift ;;
    *) usage ;;
  esac
done
case $SSHD in dropbear|openssh) ;; *) echo "build-guest: unknown --sshd '$SSHD' (use dropbear or openssh)" >&2; exit 2 ;; esac
# Extracted packages must end up owned by root inside the image.
[ "$(id -u)" = 0 ] || { echo "build-guest: run as root (files in the image must be owned by root)" >&2; exit 2; }

mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
CACHE=${LCAKE_DEB_CACHE:-$OUT/../.debs}; mkdir -p "$CACHE"; CACHE=$(cd "$CACHE" && pwd)
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
R=$W/root; I=$W/initrd; mkdir -p "$R" "$I"/{bin,dev,proc,sys,newroot,mod}

# --- packages ---------------------------------------------------------------------------------
KPKG=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
[ -n "$KPKG" ] || { echo "build-guest: apt-cache knows no linux-image-cloud-amd64; run 'apt-get update' first" >&2; exit 1; }
KVER=${KPKG#linux-image-}
COMMON="busybox-static libc6 libcrypt1 zlib1g openssh-sftp-server openssh-client"
if [ "$SSHD" = dropbear ]; then
  SSHD_PKGS="dropbear-bin libtomcrypt1 libtommath1 libgmp10"
else
  # openssh-server's shared libraries (ldd /usr/sbin/sshd); PAM modules, systemd etc. are not needed.
  SSHD_PKGS="openssh-server libwrap0 libaudit1 libcap-ng0 libpam0g libsystemd0 libcap2 libgcrypt20
    libgpg-error0 liblzma5 libzstd1 liblz4-1 libselinux1 libpcre2-8-0 libgssapi-krb5-2 libkrb5-3
    libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2 libssl3 libnsl2 libtirpc3"
fi
PKGS="$COMMON $SSHD_PKGS"
NEED=$(cd "$CACHE"; for p in $KPKG $PKGS; do ls "${p}"_*.deb >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$NEED" ]; then
  echo "build-guest: downloading into $CACHE:" $NEED
  (cd "$CACHE" && apt-get download -q $NEED >"$W/apt.log" 2>&1) || {
    echo "build-guest: 'apt-get download' failed for:" $NEED "-- run 'apt-get update' (scripts/setup-deps.sh does) and check the Debian mirror is reachable:" >&2
    tail -5 "$W/apt.log" >&2; exit 1; }
fi
deb() { ls "$CACHE/$1"_*.deb | sort -V | tail -1; }

# --- kernel and initramfs ---------------------------------------------------------------------
# virtio for disk, network and entropy; fat/vfat + codepages to read the cidata seed.
MODS="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk failover
  net_failover virtio_net virtio-rng fat vfat nls_cp437 nls_ascii nls_utf8"
KDEB=$(deb "$KPKG")
set -f  # the patterns are for tar, not the shell
dpkg-deb --fsys-tarfile "$KDEB" | tar -x -C "$W" --wildcards "./boot/vmlinuz-*" \
  $(for m in $MODS; do echo "./lib/modules/$KVER/*/$m.ko"; done)
set +f
cp "$W/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
find "$W/lib/modules" -name '*.ko' -exec cp {} "$I/mod/" \;
for p in $PKGS; do dpkg-deb -x "$(deb "$p")" "$R"; done
cp "$R/bin/busybox" "$I/bin/"
cat > "$I/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin; mount -t proc p /proc; mount -t sysfs s /sys; mount -t devtmpfs d /dev
# Without this the kernel's console is not our stdin/stdout and messages vanish.
exec </dev/console >/dev/console 2>&1
for m in $(echo $MODS); do insmod /mod/\$m.ko; done
i=0; while [ ! -b /dev/vda ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done
mount -t ext4 /dev/vda /newroot || { echo "initramfs: cannot mount /dev/vda; dropping to a shell"; exec sh; }
mount --move /dev /newroot/dev; umount /proc /sys; exec switch_root /newroot /sbin/init
EOF
chmod 755 "$I/init"
(cd "$I" && find . | "$R/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1 > "$OUT/initrd.img")

# --- root filesystem --------------------------------------------------------------------------
rm -rf "$R"/usr/share/{doc,man,locale,lintian,info} "$R"/usr/lib/x86_64-linux-gnu/gconv "$R"/etc/init.d \
  "$R"/lib/systemd "$R"/usr/lib/systemd "$R"/etc/pam.d "$R"/etc/ssh/sshd_config.d
# From openssh-client keep scp only (sftp-server comes from openssh-sftp-server).
(cd "$R" && rm -f usr/bin/ssh usr/bin/ssh-* usr/bin/sftp usr/bin/slogin usr/lib/openssh/ssh-* \
  usr/lib/openssh/agent-launch usr/sbin/sshd-* usr/sbin/rescue-ssh.target)
for a in $("$R/bin/busybox" --list-full); do
  [ -e "$R/$a" ] || [ -L "$R/$a" ] || { mkdir -p "$R/${a%/*}"; ln -s /bin/busybox "$R/$a"; }
done
mkdir -p "$R"/{proc,sys,dev,run,tmp,root/.ssh,etc/init.d,etc/udhcpc,var/log,var/lib/cidata}
ln -sfn /run "$R/var/run"
chmod 1777 "$R/tmp"; chmod 700 "$R/root" "$R/root/.ssh"
printf 'root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534:sshd privsep:/run/sshd:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$R/etc/group"
# "*": no password, yet not "locked" (OpenSSH refuses even keys for a "!" account).
printf 'root:*:19000::::::\nsshd:*:19000::::::\n' > "$R/etc/shadow"; chmod 600 "$R/etc/shadow"
echo /bin/sh > "$R/etc/shells"; echo lcake-guest > "$R/etc/hostname"
printf '127.0.0.1 localhost\n' > "$R/etc/hosts"
printf '::sysinit:/etc/init.d/rcS\n::respawn:/etc/init.d/sshd\n::shutdown:/etc/init.d/rcK\n' > "$R/etc/inittab"

cat > "$R/etc/udhcpc/default.script" <<'EOF'
#!/bin/sh
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface"
[ -n "$router" ] && ip route add default via "${router%% *}"
for d in $dns; do echo "nameserver $d"; done > /etc/resolv.conf
EOF

# Keys from the seed are listed in /var/lib/cidata/keys so that they are removed again at
# shutdown (and at the next boot, after a crash): no build's key stays in the image.
cat > "$R/etc/init.d/cidata" <<'EOF'
#!/bin/sh
# NoCloud seed: a vfat disk labelled cidata holding user-data and meta-data.
AK=/root/.ssh/authorized_keys LIST=/var/lib/cidata/keys
forget_seed_keys() {
  [ -s "$LIST" ] && [ -f "$AK" ] && { grep -v -x -F -f "$LIST" "$AK" > "$AK.new"; mv "$AK.new" "$AK"; chmod 600 "$AK"; }
  rm -f "$LIST"
}
read_seed() {
  forget_seed_keys
  dev=$(findfs LABEL=cidata 2>/dev/null || findfs LABEL=CIDATA 2>/dev/null) || { echo "cidata: no seed disk"; return 0; }
  mkdir -p /run/cidata
  mount -o ro "$dev" /run/cidata || { echo "cidata: cannot mount $dev"; return 0; }
  if [ -f /run/cidata/user-data ]; then
    # Every list item under any "ssh_authorized_keys:" key (top level or under users:).
    awk '
      /^[ \t]*ssh_authorized_keys:[ \t]*$/ { inkeys = 1; next }
      inkeys && /^[ \t]*-[ \t]/ {
        k = $0; sub(/^[ \t]*-[ \t]+/, "", k); sub(/[ \t\r]+$/, "", k)
        if (k ~ /^["\047]/) { k = substr(k, 2, length(k) - 2) }
        if (k ~ /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp[0-9]+|sk-[a-z0-9@.-]+) /) print k
        next
      }
      inkeys && /^[ \t]*(#.*)?\r?$/ { next }
      { inkeys = 0 }' /run/cidata/user-data > "$LIST"
    cat "$LIST" >> "$AK"; chmod 600 "$AK"
    echo "cidata: $(wc -l < "$LIST") key(s) for root from $dev"
  fi
  if [ -f /run/cidata/meta-data ]; then
    h=$(awk -F': *' '$1 == "local-hostname" { gsub(/["\047\r]/, "", $2); print $2; exit }' /run/cidata/meta-data)
    [ -n "$h" ] && hostname "$h"
  fi
  umount /run/cidata
}
case $1 in start) read_seed ;; stop) forget_seed_keys ;; esac
EOF

cat > "$R/etc/init.d/rcS" <<'EOF'
#!/bin/sh
mount -t proc p /proc; mount -t sysfs s /sys; mkdir -p /dev/pts; mount -t devpts -o gid=5,mode=620 d /dev/pts
mount -t tmpfs t /run; mkdir -p /run/sshd; chmod 755 /run/sshd
hostname -F /etc/hostname; ip link set lo up; ip link set eth0 up
/etc/init.d/cidata start
# udhcpc loops forever without a link; bounded anyway.
timeout 20 udhcpc -i eth0 -q -n -t 10 -T 1 >/dev/null 2>&1 || echo "rcS: dhcp failed"
echo "lcake-guest: rcS done, uptime $(cut -d' ' -f1 /proc/uptime)s"
EOF

# busybox init runs this for poweroff/reboot before killing everything.
cat > "$R/etc/init.d/rcK" <<'EOF'
#!/bin/sh
/etc/init.d/cidata stop
killall dropbear sshd 2>/dev/null; sleep 0.2
sync
if mount -o remount,ro /; then echo "lcake-guest: / remounted read-only"; else echo "lcake-guest: / still busy (read-write)"; fi
sync
EOF

if [ "$SSHD" = dropbear ]; then
  mkdir -p "$R/etc/dropbear"
  LD="$R/lib64/ld-linux-x86-64.so.2 --library-path $R/lib/x86_64-linux-gnu:$R/usr/lib/x86_64-linux-gnu"
  $LD "$R/usr/bin/dropbearkey" -t ed25519 -f "$R/etc/dropbear/ed25519" >/dev/null 2>&1
  $LD "$R/usr/bin/dropbearkey" -y -f "$R/etc/dropbear/ed25519" | awk '/^ssh-ed25519 /{print $1, $2}' > "$OUT/host_key.pub"
  # Debian's dropbear runs /usr/lib/sftp-server (from openssh-sftp-server) for SFTP. -W: a 1 MB
  # receive window instead of 24 KB, or uploads wait for a window update every 24 KB.
  printf '#!/bin/sh\necho "lcake-guest: starting dropbear"\nexec /usr/sbin/dropbear -F -E -s -W 1048576 -p 22 -r /etc/dropbear/ed25519\n' > "$R/etc/init.d/sshd"
else
  rm -f "$R"/etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -C '' -f "$R/etc/ssh/ssh_host_ed25519_key"
  awk '{print $1, $2}' "$R/etc/ssh/ssh_host_ed25519_key.pub" > "$OUT/host_key.pub"
  cat > "$R/etc/ssh/sshd_config" <<'EOF'
# lcake test guest: key-only root login, no PAM, one ed25519 host key.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PidFile /run/sshd.pid
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  printf '#!/bin/sh\necho "lcake-guest: starting sshd"\nexec /usr/sbin/sshd -D -e\n' > "$R/etc/init.d/sshd"
fi
chmod 755 "$R"/etc/init.d/* "$R/etc/udhcpc/default.script"

# Fail here, not at boot, if a package list above misses a library.
LDL="$R/lib64/ld-linux-x86-64.so.2 --library-path $R/lib/x86_64-linux-gnu:$R/usr/lib/x86_64-linux-gnu --list"
for b in usr/sbin/dropbear usr/sbin/sshd usr/lib/openssh/sftp-server usr/bin/scp; do
  [ -e "$R/$b" ] || continue
  if $LDL "$R/$b" | grep -q 'not found'; then
    echo "build-guest: $b misses libraries in the guest:" >&2; $LDL "$R/$b" | grep 'not found' >&2; exit 1
  fi
done

# --- disk -------------------------------------------------------------------------------------
truncate -s "${DISK_SIZE:-1G}" "$W/disk.raw"
mkfs.ext4 -q -F -L lcake-root -E root_owner=0:0 -d "$R" "$W/disk.raw"
qemu-img convert -f raw -O qcow2 "$W/disk.raw" "$OUT/base.qcow2"
(cd "$OUT" && sha256sum base.qcow2 > base.qcow2.sha256)
echo "build-guest: $SSHD guest in $OUT ($(du -h "$OUT/base.qcow2" | cut -f1) disk, kernel $KVER)"
