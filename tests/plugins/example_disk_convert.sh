#!/bin/sh
# example_disk_convert.sh BUILD_DIR SOURCE_DIR
# A third-party plugin that runs a local tool, end to end: build
# examples/disk-convert against the staged SDK, then `lcake build` a one-layer
# pipeline on the test guest with the qemu builder, the out-of-tree converter
# as uploader and the qemu verifier booting the build the VMDK came from.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lcake-convert-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
step() { echo "== $*"; }

guest=$build/tests/guest/dropbear
step "the test guest in $guest (built once per build tree)"
"$src/scripts/build-guest.sh" "$guest" --sshd dropbear --reuse >"$tmp/guest.log" 2>&1 || { cat "$tmp/guest.log"; exit 1; }

step "stage the SDK, build examples/disk-convert out of tree"
cmake --install "$build" --component sdk --prefix "$tmp/stage" >/dev/null
cmake -S "$src/examples/disk-convert" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/stage" \
  -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
cmake --install "$tmp/build" >/dev/null
plugins=$tmp/stage/lib/lcake/plugins
test -f "$plugins/lcake-disk-convert.so"

proj=$tmp/project
mkdir -p "$proj/configs/targets" "$proj/configs/pipelines"
cat >"$proj/configs/targets/qemu-vmdk.json" <<JSON
{"name": "qemu-vmdk", "pipeline": "one",
 "builder": {"plugin": "qemu", "settings": {"accelerator": "tcg", "memory": 256}},
 "uploader": {"plugin": "disk-convert", "settings": {"directory": "$proj/out", "format": "vmdk"}},
 "verifier": {"plugin": "qemu", "boots": "build", "settings": {"accelerator": "tcg", "memory": 256}}}
JSON
cat >"$proj/configs/pipelines/one.json" <<JSON
{"name": "one",
 "variants": {"tiny": {"sources": {"qemu": {"disk": "$guest/base.qcow2", "format": "qcow2", "checksum": "file:$guest/base.qcow2.sha256",
                                             "host_key": "$guest/host_key.pub", "cloud_init": true}}}},
 "layers": {"base": {"provisioners": [{"type": "shell", "inline": ["echo converted > /etc/lcake-mark"]}],
                     "verify": [{"name": "mark", "run": "grep -qx converted /etc/lcake-mark"}]}}}
JSON
run_lcake() {
  "$build/bin/lcake" "$@" --state-dir "$proj/state" --config-dir "$proj/configs" \
    --plugin-path "$plugins" --target qemu-vmdk
}
step "lcake build: qemu builds, disk-convert uploads, qemu verifies the build"
run_lcake build >"$tmp/lcake.log" 2>&1 || { cat "$tmp/lcake.log"; exit 1; }
grep -q "verified" "$tmp/lcake.log" || { cat "$tmp/lcake.log"; echo "no verify step ran"; exit 1; }
vmdk=$(ls "$proj"/out/tiny-base-*.vmdk)
qemu-img info --output=json "$vmdk" | grep -q '"format": "vmdk"'
qemu-img info "$vmdk" | grep -q "create type: streamOptimized"
qemu-img check "$vmdk" >/dev/null
built=$(find "$proj/state" -name '*.qcow2' | head -1)
qemu-img compare -f qcow2 -F vmdk "$built" "$vmdk" >/dev/null
test -z "$(ls -a "$proj/out" | grep '\.tmp-')"   # no half-written file
step "a second run is all cache hits"
run_lcake build >"$tmp/lcake2.log" 2>&1 || { cat "$tmp/lcake2.log"; exit 1; }
grep -q ": cached" "$tmp/lcake2.log" || { cat "$tmp/lcake2.log"; exit 1; }
step "ok"
