#!/bin/bash
# The Debian packages on a fresh Debian 12 root: `cpack -G DEB` in the build tree, then mmdebstrap
# makes a brand-new minimal system with both packages installed from the .deb files (apt resolves
# their Depends from Debian's mirror). Inside it: `lcake plugins list` shows the four backends,
# `lcake plan` runs on the bundled example pipeline (the test guest copied in), the man page and
# the completion scripts are where the shells look, and examples/disk-convert builds out of tree
# against the installed lcake-dev and loads.
#
# usage: deb_install_test.sh BUILD_DIR SOURCE_DIR     exit 77 = skipped
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (mmdebstrap in root mode)"
command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed (scripts/setup-deps.sh --tests)"
command -v dpkg-shlibdeps >/dev/null || skip "dpkg-dev is not installed (scripts/setup-deps.sh)"
guest=$build/tests/guest
for f in dropbear openssh; do [ -s "$guest/$f/base.qcow2" ] || skip "no test guest in $guest/$f (run the qemu tests first)"; done

tmp=$(mktemp -d "$build/tmp-deb.XXXXXX"); trap 'rm -rf --one-file-system "$tmp"' EXIT
(cd "$build" && cpack -G DEB -B "$tmp/pkgs" >"$tmp/cpack.log" 2>&1) || { cat "$tmp/cpack.log"; exit 1; }
runtime=$(ls "$tmp"/pkgs/lcake_*_amd64.deb) dev=$(ls "$tmp"/pkgs/lcake-dev_*_all.deb)
echo "packages: $(basename "$runtime") $(basename "$dev")"
dpkg-deb -f "$runtime" Depends | grep -q libssh || { echo "FAIL: lcake's Depends lack the shared libraries"; exit 1; }

mkdir -p "$tmp/in/guest"
for f in dropbear openssh; do
  mkdir -p "$tmp/in/guest/$f"; cp "$guest/$f"/{base.qcow2,base.qcow2.sha256,host_key.pub} "$tmp/in/guest/$f/"
done
cp -r "$src/examples/disk-convert" "$tmp/in/disk-convert"
cat > "$tmp/in/check.sh" <<'IN'
set -eu
fail() { echo "FAIL: $*"; exit 1; }
lcake version
lcake plugins list | tee /tmp/plugins
for p in qemu docker openstack aws; do grep -q "^$p " /tmp/plugins || fail "plugin $p not listed"; done
[ "$(grep -c . /tmp/plugins)" = 4 ] || fail "expected exactly the four backends (no test plugins)"
test -s /usr/share/man/man1/lcake.1.gz || fail "no man page"
test -s /usr/share/bash-completion/completions/lcake || fail "no bash completion"
test -s /usr/share/zsh/vendor-completions/_lcake || fail "no zsh completion"
test -s /usr/share/fish/vendor_completions.d/lcake.fish || fail "no fish completion"
cd /tmp && LCAKE_GUEST_DIR=/tmp/in/guest lcake plan --target qemu --state-dir /tmp/state | tee /tmp/plan
grep -q "tiny-dropbear" /tmp/plan && grep -q "never built" /tmp/plan || fail "plan did not plan the example"
cmake -S /tmp/in/disk-convert -B /tmp/dc >/dev/null && cmake --build /tmp/dc >/dev/null || fail "out-of-tree plugin build"
lcake plugins inspect /tmp/dc/lcake-disk-convert.so | head -2
cmake --install /tmp/dc >/dev/null && lcake plugins list | grep -q "^disk-convert " || fail "installed plugin not found"
echo "inside: all checks passed"
IN
mmdebstrap --variant=apt --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
  --include="$runtime" --include="$dev" --include=cmake,g++,make,qemu-utils,ca-certificates \
  --customize-hook="copy-in $tmp/in /tmp" \
  --customize-hook='chroot "$1" sh /tmp/in/check.sh' \
  bookworm /dev/null 2>&1 | tee "$tmp/mmdebstrap.log" | grep -E "^(FAIL|inside|packages|lcake|qemu|docker|openstack|aws|disk-convert)|never built|E:" || true
grep -q "^inside: all checks passed" "$tmp/mmdebstrap.log" || { echo "FAIL: see the log above"; tail -30 "$tmp/mmdebstrap.log"; exit 1; }
echo "the packages install and work on a fresh Debian 12"
