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

# Later steps (the lcake binary end to end with this plugin) go here; they can
# use $plugin_dir as --plugin-path and $tmp as scratch.
step "ok"
