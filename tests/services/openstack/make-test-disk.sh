#!/bin/bash
# make-test-disk.sh GUEST_DIR OUT.qcow2
# A whole BIOS-bootable disk for the Nova simulator's own boot test, made from the output of
# scripts/build-guest.sh (vmlinuz, initrd.img, base.qcow2) without mounting anything:
#   MBR (syslinux) | p1 FAT: syslinux, kernel, initrd | p2: the guest's ext4 root.
# Its initramfs reads an OpenStack config drive (label config-2): the public keys of
# openstack/latest/meta_data.json go to root's authorized_keys, user_data to /var/lib/cloud/user_data.
# A stand-in until the example guest itself is a whole disk that reads config drives.
set -euo pipefail
[ $# = 2 ] || { echo "usage: make-test-disk.sh GUEST_DIR OUT.qcow2" >&2; exit 2; }
G=$1; OUT=$2
for f in vmlinuz initrd.img base.qcow2; do
  [ -f "$G/$f" ] || { echo "make-test-disk.sh: $G/$f missing; build it with scripts/build-guest.sh $G" >&2; exit 2; }
done
for t in sfdisk syslinux mcopy mkfs.vfat qemu-img cpio; do
  command -v $t >/dev/null || { echo "make-test-disk.sh: $t missing (packages: fdisk syslinux mtools dosfstools qemu-utils cpio)" >&2; exit 2; }
done
MBR=/usr/lib/syslinux/mbr/mbr.bin
[ -f $MBR ] || { echo "make-test-disk.sh: $MBR missing; install syslinux-common" >&2; exit 2; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export MTOOLS_SKIP_CHECK=1

# Stage-1 init appended to the guest's initramfs (a later cpio member replaces /init).
mkdir -p "$W/add"
cat > "$W/add/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin; mount -t proc p /proc; mount -t sysfs s /sys; mount -t devtmpfs d /dev
exec </dev/console >/dev/console 2>&1
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk failover \
         net_failover virtio_net virtio-rng fat vfat nls_cp437 nls_ascii nls_utf8; do
  insmod /mod/$m.ko 2>/dev/null
done
i=0; while [ ! -b /dev/vda2 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 /dev/vda2 /newroot || { echo "test-disk: cannot mount /dev/vda2"; exec sh; }
dev=$(findfs LABEL=config-2 2>/dev/null || findfs LABEL=CONFIG-2 2>/dev/null) || dev=
if [ -n "$dev" ] && mkdir -p /cd && mount -t vfat -o ro "$dev" /cd; then
  md=/cd/openstack/latest/meta_data.json
  mkdir -p /newroot/root/.ssh /newroot/var/lib/cloud; chmod 700 /newroot/root/.ssh
  # json.dumps output: "public_keys": {"name": "ssh-... comment", ...}
  sed -n 's/.*"public_keys": *{\([^}]*\)}.*/\1/p' $md | awk '{ gsub(/", "/, "\"\n\""); print }' |
    sed -n 's/^ *"[^"]*": *"\(.*\)" *$/\1/p' | sed 's/\\n$//' > /newroot/root/.ssh/authorized_keys
  chmod 600 /newroot/root/.ssh/authorized_keys
  rm -f /newroot/var/lib/cloud/user_data
  [ -f /cd/openstack/latest/user_data ] && cp /cd/openstack/latest/user_data /newroot/var/lib/cloud/user_data
  echo "test-disk: config drive $dev: $(wc -l < /newroot/root/.ssh/authorized_keys) key(s)"
  umount /cd
else
  echo "test-disk: no config drive"
fi
mount --move /dev /newroot/dev; umount /proc /sys; exec switch_root /newroot /sbin/init
EOF
chmod 755 "$W/add/init"
cp "$G/initrd.img" "$W/initrd.img"
(cd "$W/add" && echo init | cpio -o -H newc --quiet | gzip -1) >> "$W/initrd.img"

# p1: FAT with syslinux (installed through mtools), kernel and initramfs
BOOT_MB=48
mkfs.vfat -C -n LCAKEBOOT "$W/boot.img" $((BOOT_MB * 1024)) >/dev/null
syslinux --install "$W/boot.img"
printf 'DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.img\n  APPEND console=ttyS0 root=/dev/vda2\n' > "$W/syslinux.cfg"
mcopy -i "$W/boot.img" "$G/vmlinuz" "$W/initrd.img" "$W/syslinux.cfg" ::

# p2: the guest's root file system
qemu-img convert -f qcow2 -O raw "$G/base.qcow2" "$W/root.img"
ROOT_SECTORS=$(( $(stat -c %s "$W/root.img") / 512 ))
P1=2048; P2=$((P1 + BOOT_MB * 2048))
truncate -s $(( (P2 + ROOT_SECTORS) * 512 )) "$W/disk.raw"
printf 'label: dos\nstart=%d, size=%d, type=c, bootable\nstart=%d, size=%d, type=83\n' \
  $P1 $((BOOT_MB * 2048)) $P2 $ROOT_SECTORS | sfdisk -q "$W/disk.raw"
dd if=$MBR of="$W/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$W/boot.img" of="$W/disk.raw" bs=512 seek=$P1 conv=notrunc,sparse status=none
dd if="$W/root.img" of="$W/disk.raw" bs=512 seek=$P2 conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 "$W/disk.raw" "$OUT"
echo "make-test-disk.sh: $OUT ($(du -h "$OUT" | cut -f1))"
