#!/bin/sh
# make-boot-disk.sh GUEST_DIR OUT.raw — a whole bootable disk (BIOS) from scripts/build-guest.sh's
# output, for the boot test until the example guest ships as one: the ext4 root file system
# becomes the whole disk ("superfloppy") with extlinux in its boot sector, so root=/dev/vda
# still holds. Needs root (a loop mount) and extlinux.
set -eu
guest=${1:?usage: make-boot-disk.sh GUEST_DIR OUT.raw}
out=${2:?usage: make-boot-disk.sh GUEST_DIR OUT.raw}
for f in vmlinuz initrd.img base.qcow2; do
  [ -f "$guest/$f" ] || { echo "make-boot-disk.sh: $guest/$f missing; run scripts/build-guest.sh $guest" >&2; exit 2; }
done
command -v extlinux >/dev/null || { echo "make-boot-disk.sh: extlinux not installed (apt-get install extlinux)" >&2; exit 2; }
mnt=$(mktemp -d)
trap 'umount "$mnt" 2>/dev/null || true; rmdir "$mnt"' EXIT
qemu-img convert -O raw "$guest/base.qcow2" "$out.tmp"
mount -o loop "$out.tmp" "$mnt"
mkdir -p "$mnt/boot/extlinux"
cp "$guest/vmlinuz" "$guest/initrd.img" "$mnt/boot/"
cat >"$mnt/boot/extlinux/extlinux.conf" <<CONF
DEFAULT linux
PROMPT 0
TIMEOUT 1
LABEL linux
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND console=ttyS0 root=/dev/vda rw quiet
CONF
extlinux --install "$mnt/boot/extlinux" 2>/dev/null
umount "$mnt"
mv "$out.tmp" "$out"
