#!/bin/sh
# example_out_of_tree.sh BUILD_DIR SOURCE_DIR
# What a third-party plugin author does: install lcake's SDK into a prefix,
# build examples/publish-dir out of tree against it with find_package(lcake),
# install the plugin, then load it with the real plugin host and use it.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lcake-example-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
step() { echo "== $*"; }

step "install the SDK into $tmp/stage"
cmake --install "$build" --component sdk --prefix "$tmp/stage" >/dev/null
test -f "$tmp/stage/include/lcake/sdk.hpp"
test -f "$tmp/stage/lib/cmake/lcake/lcakeConfig.cmake"

step "configure and build examples/publish-dir out of tree"
cmake -S "$src/examples/publish-dir" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/stage" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }

step "install it into the staged lcake's plugin dir"
cmake --install "$tmp/build" >/dev/null
plugin_dir=$tmp/stage/lib/lcake/plugins
plugin=$plugin_dir/lcake-publish-dir.so
test -f "$plugin"

step "load it with the plugin host and upload with it"
"$build/tests/example_plugin_check" "$plugin" "$tmp/work"

step "SHA256SUMS agrees with sha256sum"
cd "$tmp/work/out"
sha256sum --quiet -c SHA256SUMS
expected=$(ls | grep -vx SHA256SUMS | LC_ALL=C sort | xargs sha256sum)
actual=$(cat SHA256SUMS)
if [ "$expected" != "$actual" ]; then
  printf 'SHA256SUMS differs from sha256sum:\n--- expected\n%s\n--- actual\n%s\n' "$expected" "$actual"
  exit 1
fi
test "$(wc -l <SHA256SUMS)" -eq 2

step "lcake end to end: localdir builds, the out-of-tree publish-dir uploads"
proj=$tmp/project
mkdir -p "$proj/configs/targets" "$proj/configs/pipelines"
cat >"$proj/configs/targets/site.json" <<EOF
{"name": "site", "pipeline": "two",
 "builder": {"plugin": "localdir", "settings": {"tarball": true}},
 "uploader": {"plugin": "publish-dir", "settings": {"directory": "$proj/published"}}}
EOF
cat >"$proj/configs/pipelines/two.json" <<'EOF'
{"name": "two", "variants": {"v1": {}, "v2": {}},
 "layers": {"base": {"provisioners": [{"type": "shell", "inline": ["echo base > base.txt"]}]},
            "app": {"from": "base", "provisioners": [{"type": "shell", "inline": ["echo app-${variant} > app.txt"]}]}}}
EOF
run_lcake() {
  XDG_CONFIG_HOME=$proj/xdg "$build/bin/lcake" "$@" --state-dir "$proj/state" --config-dir "$proj/configs" \
    --plugin-path "$plugin_dir" --plugin-path "$build/tests/plugins/localdir" --target site
}
run_lcake build >"$tmp/lcake.log" 2>&1 || { cat "$tmp/lcake.log"; exit 1; }
cd "$proj/published"
sha256sum --quiet -c SHA256SUMS
test "$(wc -l <SHA256SUMS)" -eq 4
tar -xOf v2-app-layer.tar ./app.txt | grep -qx app-v2
step "a second run is all cache hits"
run_lcake build >"$tmp/lcake2.log" 2>&1 || { cat "$tmp/lcake2.log"; exit 1; }
test "$(grep -c ': cached' "$tmp/lcake2.log")" -eq 4
step "ok"
