#!/bin/sh
# import-busybox.sh DOCKER_HOST_OR_DIR NAME:TAG
# Makes a tiny base image without any registry: a root filesystem holding the
# static /bin/busybox of Debian's busybox-static with its applet symlinks,
# /tmp, /root and /etc/passwd, imported through the Engine API
# (POST /images/create?fromSrc=-). Prints the image ID.
set -eu
target=${1:?usage: import-busybox.sh DOCKER_HOST_OR_DIR NAME:TAG}
ref=${2:?usage: import-busybox.sh DOCKER_HOST_OR_DIR NAME:TAG}
case "$target" in
  unix://*) sock=${target#unix://} ;;
  *) sock="$target/podman.sock" ;;
esac
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "import-busybox.sh: $busybox missing: apt-get install busybox-static" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/tmp" "$root/root" \
  "$root/etc" "$root/home/lsst" "$root/proc" "$root/sys" "$root/dev"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list-full); do
  [ "$applet" = bin/busybox ] && continue
  ln -sf /bin/busybox "$root/$applet"
done
cat >"$root/etc/passwd" <<P
root:x:0:0:root:/root:/bin/sh
lsst:x:1000:1000:lsst:/home/lsst:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$root/etc/group" <<G
root:x:0:
lsst:x:1000:
nogroup:x:65534:
G
tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .
repo=${ref%:*}
tag=${ref##*:}
# podman takes the tag inside `repo`, docker in `tag`; tag explicitly afterwards for both.
curl -fsS --unix-socket "$sock" -X POST -H 'Content-Type: application/x-tar' \
  --data-binary "@$work/rootfs.tar" \
  "http://d/v1.41/images/create?fromSrc=-&repo=$ref" >"$work/out.json"
id=$(grep -o 'sha256:[0-9a-f]\{64\}' "$work/out.json" | tail -n 1)
[ -n "$id" ] || { echo "import-busybox.sh: import failed: $(cat "$work/out.json")" >&2; exit 1; }
curl -fsS --unix-socket "$sock" -X POST "http://d/v1.41/images/$id/tag?repo=$repo&tag=$tag"
curl -fsS --unix-socket "$sock" "http://d/v1.41/images/$ref/json" |
  sed -n 's/^{"Id":"\([^"]*\)".*/\1/p'
