#!/bin/bash
# Builds lcake's tiny x86_64 test guest from Debian 12 packages as a whole bootable disk: an MBR
# disk with syslinux, a FAT boot partition (kernel, initramfs) and an ext4 root found by its label.
# The busybox initramfs finds and mounts the root and switch_roots; busybox is init and userland,
# dropbear or OpenSSH the sshd. No keys are baked in: each boot reads them from a NoCloud seed
# (label "cidata") or an OpenStack config drive (label "config-2"), see docs/test-guest.md.
#
# Usage: scripts/build-guest.sh OUTDIR [--sshd dropbear|openssh] [--reuse]
#   --reuse: keep OUTDIR as it is when this script built it with the same flavour and DISK_SIZE.
# Writes OUTDIR/{base.qcow2,base.qcow2.sha256,host_key.pub} and, for direct kernel boot,
# OUTDIR/{vmlinuz,initrd.img} (the same files as in the boot partition).
# Environment: LCAKE_DEB_CACHE (.deb cache, default OUTDIR/../.debs), DISK_SIZE (default 1G).
# Host needs: apt-get (after apt-get update), dpkg-deb, mke2fs with -d, mkfs.vfat, mtools,
# syslinux, sfdisk, qemu-img, ssh-keygen; root. No mounts, no loop devices.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [--sshd dropbear|openssh] [--reuse]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1; shift
SSHD=dropbear REUSE=0
while [ $# -gt 0 ]; do
  case $1 in
    --sshd) [ $# -ge 2 ] || usage; SSHD=$2; shift 2 ;;
    --sshd=*) SSHD=${1#--sshd=}; shift ;;
    --reuse) REUSE=1; shift ;;
    *) usage ;;
  esac
done
case $SSHD in dropbear|openssh) ;; *) echo "build-guest: unknown --sshd '$SSHD' (use dropbear or openssh)" >&2; exit 2 ;; esac
# Extracted packages must end up owned by root inside the image.
[ "$(id -u)" = 0 ] || { echo "build-guest: run as root (files in the image must be owned by root)" >&2; exit 2; }

for t in dpkg-deb mke2fs mkfs.vfat mcopy syslinux sfdisk qemu-img ssh-keygen; do
  command -v $t >/dev/null || { echo "build-guest: $t is missing: run scripts/setup-deps.sh" >&2; exit 2; }
done
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || { echo "build-guest: /usr/lib/syslinux/mbr/mbr.bin is missing: install syslinux-common (scripts/setup-deps.sh)" >&2; exit 2; }
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
# One build at a time per OUTDIR: a second caller (another test binary, a parallel ctest) waits here
# and then finds the guest current, instead of rebuilding it under a running qemu.
exec 9>"$OUT.lock"
command -v flock >/dev/null && flock 9
# What built OUTDIR: written last, so a half-finished build never counts as current.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STAMP="$(cat "${BASH_SOURCE[0]}" "$HERE"/guest/* | sha256sum | cut -d' ' -f1) $SSHD ${DISK_SIZE:-1G}"
if [ $REUSE = 1 ] && [ -f "$OUT/base.qcow2" ] && [ "$(cat "$OUT/.build-guest.stamp" 2>/dev/null)" = "$STAMP" ]; then
  echo "build-guest: $OUT is current"; exit 0
fi
rm -f "$OUT/.build-guest.stamp"
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
# Always: virtio (disk, network, entropy), vfat and iso9660 for the seed and config drive. Loaded when
# the hardware is there: the SCSI stack with ata_piix for IDE (QEMU's "pc" disks and CD-ROMs, where
# clouds attach config drives) or with virtio_scsi. NVMe is built into the kernel; AHCI is not in
# Debian's cloud kernel (q35's SATA CD-ROM stays invisible). Listed in load order (checked below).
MODS="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk failover
  net_failover virtio_net virtio-rng fat vfat nls_cp437 nls_ascii nls_utf8 cdrom isofs"
SCSI_MODS="scsi_common scsi_mod sd_mod sr_mod"
ATA_MODS="libata ata_piix"
VSCSI_MODS="virtio_scsi"
KDEB=$(deb "$KPKG")
set -f  # the patterns are for tar, not the shell
dpkg-deb --fsys-tarfile "$KDEB" | tar -x -C "$W" --wildcards "./boot/vmlinuz-*" \
  $(for m in $MODS $SCSI_MODS $ATA_MODS $VSCSI_MODS; do echo "./lib/modules/$KVER/*/$m.ko"; done)
set +f
cp "$W/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
find "$W/lib/modules" -name '*.ko' -exec cp {} "$I/mod/" \;
# insmod does not resolve dependencies: every module's must come earlier in the list.
loaded=" "
for m in $MODS $SCSI_MODS $ATA_MODS $VSCSI_MODS; do
  [ -f "$I/mod/$m.ko" ] || { echo "build-guest: $KPKG has no module $m" >&2; exit 1; }
  for d in $(tr '\0' '\n' < "$I/mod/$m.ko" | sed -n 's/^depends=//p' | tr ',-' ' _'); do
    case $loaded in *" $d "*) ;; *) echo "build-guest: module $m needs $d first (fix the module lists)" >&2; exit 1 ;; esac
  done
  loaded="$loaded$(echo "$m" | tr - _) "
done
for p in $PKGS; do dpkg-deb -x "$(deb "$p")" "$R"; done
cp "$R/bin/busybox" "$I/bin/"
cat > "$I/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin; mount -t proc p /proc; mount -t sysfs s /sys; mount -t devtmpfs d /dev
# Without this the kernel's console is not our stdin/stdout and messages vanish.
exec </dev/console >/dev/console 2>&1
for m in $(echo $MODS); do insmod /mod/\$m.ko; done
ide=0 vscsi=0
for d in /sys/bus/pci/devices/*; do
  read c < \$d/class; read v < \$d/vendor; read i < \$d/device
  case \$c in 0x0101*) ide=1 ;; esac
  case \$v:\$i in 0x1af4:0x1004|0x1af4:0x1048) vscsi=1 ;; esac
done
[ \$ide\$vscsi = 00 ] || for m in $SCSI_MODS; do insmod /mod/\$m.ko; done
[ \$ide = 0 ] || for m in $ATA_MODS; do insmod /mod/\$m.ko; done
[ \$vscsi = 0 ] || for m in $VSCSI_MODS; do insmod /mod/\$m.ko; done
# root=LABEL=x, root=UUID=x or root=/dev/x from the kernel command line; by default the disk's own label.
root=LABEL=lcake-root
for a in \$(cat /proc/cmdline); do case \$a in root=*) root=\${a#root=} ;; esac; done
i=0
while :; do
  case \$root in LABEL=*|UUID=*) dev=\$(findfs "\$root" 2>/dev/null) ;; *) dev=\$root; [ -b "\$dev" ] || dev= ;; esac
  [ -n "\$dev" ] && break
  [ \$i -lt 300 ] || { echo "initramfs: no disk with root=\$root after 30 s; dropping to a shell"; exec sh; }
  sleep 0.1; i=\$((i+1))
done
mount -t ext4 "\$dev" /newroot || { echo "initramfs: cannot mount \$dev (root=\$root) as ext4; dropping to a shell"; exec sh; }
mount --move /dev /newroot/dev; umount /proc /sys; exec switch_root /newroot /sbin/init
EOF
chmod 755 "$I/init"
(cd "$I" && find . | "$R/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1 > "$OUT/initrd.img")

# --- root filesystem --------------------------------------------------------------------------
rm -rf "$R"/usr/share/{doc,man,locale,lintian,info} "$R"/usr/lib/x86_64-linux-gnu/gconv "$R"/etc/init.d \
  "$R"/lib/systemd "$R"/usr/lib/systemd "$R"/etc/pam.d "$R"/etc/ssh/sshd_config.d
# From openssh-client keep scp only (sftp-server comes from openssh-sftp-server).
(cd "$R" && mv usr/bin/ssh-keygen "$W/ssh-keygen" && rm -f usr/bin/ssh usr/bin/ssh-* usr/bin/sftp usr/bin/slogin usr/lib/openssh/ssh-* \
  usr/lib/openssh/agent-launch usr/sbin/sshd-* usr/sbin/rescue-ssh.target)
# The OpenSSH guest keeps ssh-keygen: a generalized image (host keys removed) makes new ones at boot.
[ "$SSHD" = openssh ] && mv "$W/ssh-keygen" "$R/usr/bin/ssh-keygen"
for a in $("$R/bin/busybox" --list-full); do
  [ -e "$R/$a" ] || [ -L "$R/$a" ] || { mkdir -p "$R/${a%/*}"; ln -s /bin/busybox "$R/$a"; }
done
mkdir -p "$R"/{proc,sys,dev,run,tmp,root/.ssh,etc/init.d,etc/udhcpc,var/log,var/lib/seed}
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

# SSH keys for root from a NoCloud seed or an OpenStack config drive, removed again at shutdown.
install -m 755 "$HERE/guest/seed" "$R/etc/init.d/seed"

cat > "$R/etc/init.d/rcS" <<'EOF'
#!/bin/sh
mount -t proc p /proc; mount -t sysfs s /sys; mkdir -p /dev/pts; mount -t devpts -o gid=5,mode=620 d /dev/pts
mount -t tmpfs t /run; mkdir -p /run/sshd; chmod 755 /run/sshd
hostname -F /etc/hostname; ip link set lo up; ip link set eth0 up
/etc/init.d/seed start
# udhcpc loops forever without a link; bounded anyway.
timeout 20 udhcpc -i eth0 -q -n -t 10 -T 1 >/dev/null 2>&1 || echo "rcS: dhcp failed"
echo "lcake-guest: rcS done, uptime $(cut -d' ' -f1 /proc/uptime)s"
EOF

# busybox init runs this for poweroff/reboot before killing everything.
cat > "$R/etc/init.d/rcK" <<'EOF'
#!/bin/sh
/etc/init.d/seed stop
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
  # A generalized image has no host key: make one, as cloud-init does on a cloud's first boot.
  printf '#!/bin/sh\n[ -s /etc/ssh/ssh_host_ed25519_key ] || { echo "lcake-guest: no host key, generating one"; /usr/bin/ssh-keygen -q -t ed25519 -N "" -C "" -f /etc/ssh/ssh_host_ed25519_key; }\necho "lcake-guest: starting sshd"\nexec /usr/sbin/sshd -D -e\n' > "$R/etc/init.d/sshd"
fi
chmod 755 "$R"/etc/init.d/* "$R/etc/udhcpc/default.script"

# Fail here, not at boot, if a package list above misses a library.
LDL="$R/lib64/ld-linux-x86-64.so.2 --library-path $R/lib/x86_64-linux-gnu:$R/usr/lib/x86_64-linux-gnu --list"
for b in usr/sbin/dropbear usr/sbin/sshd usr/bin/ssh-keygen usr/lib/openssh/sftp-server usr/bin/scp; do
  [ -e "$R/$b" ] || continue
  if $LDL "$R/$b" | grep -q 'not found'; then
    echo "build-guest: $b misses libraries in the guest:" >&2; $LDL "$R/$b" | grep 'not found' >&2; exit 1
  fi
done

# --- disk -------------------------------------------------------------------------------------
# MBR (syslinux's boot code) | 1 MiB gap | p1: FAT16 "LCAKE-BOOT", bootable: ldlinux.sys, kernel,
# initramfs, syslinux.cfg | p2: ext4 "lcake-root" to the end. Each file system is written at its
# partition's offset inside the one image file: no loop devices, no mounts.
BOOT_START=2048 BOOT_SECTORS=$((32 * 2048))
ROOT_START=$((BOOT_START + BOOT_SECTORS))
D=$W/disk.raw
truncate -s "${DISK_SIZE:-1G}" "$D"
ROOT_SECTORS=$(( $(stat -c %s "$D") / 512 - ROOT_START ))
[ "$ROOT_SECTORS" -ge $((64 * 2048)) ] || { echo "build-guest: DISK_SIZE=${DISK_SIZE:-1G} is too small: 128M at least" >&2; exit 2; }
printf 'label: dos\nstart=%s, size=%s, type=e, bootable\nstart=%s, size=%s, type=83\n' \
  $BOOT_START $BOOT_SECTORS $ROOT_START $ROOT_SECTORS | sfdisk -q "$D"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$D" bs=440 count=1 conv=notrunc status=none
# -h: the partition's start as "hidden sectors", which the FAT boot sector needs to find itself.
mkfs.vfat -F 16 -n LCAKE-BOOT --offset $BOOT_START -h $BOOT_START "$D" $((BOOT_SECTORS / 2)) >/dev/null 2>&1
syslinux --offset $((BOOT_START * 512)) --install "$D"
# No prompt, no menu: straight to the kernel. The initramfs finds the root by its label.
# no_timer_check: on a starved host, TCG fails the kernel's IO-APIC timer check and it panics.
printf 'DEFAULT lcake\nPROMPT 0\nTIMEOUT 0\nLABEL lcake\n  LINUX /vmlinuz\n  INITRD /initrd.img\n  APPEND %s\n' \
  "console=tty0 console=ttyS0 root=LABEL=lcake-root rw quiet no_timer_check" > "$W/syslinux.cfg"
mcopy -i "$D@@$((BOOT_START * 512))" "$OUT/vmlinuz" "$OUT/initrd.img" "$W/syslinux.cfg" ::
mkfs.ext4 -q -F -L lcake-root -E root_owner=0:0,offset=$((ROOT_START * 512)) -d "$R" "$D" $((ROOT_SECTORS / 2))k
qemu-img convert -f raw -O qcow2 "$D" "$OUT/base.qcow2"
(cd "$OUT" && sha256sum base.qcow2 > base.qcow2.sha256)
echo "$STAMP" > "$OUT/.build-guest.stamp"
echo "build-guest: $SSHD guest in $OUT ($(du -h "$OUT/base.qcow2" | cut -f1) disk, kernel $KVER)"
