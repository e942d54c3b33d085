#!/bin/sh
# check-local.sh: runs the example's guest-side scripts on this machine with
# nothing but busybox (its applets only on PATH, empty environment), the way
# the layers and the verify steps run them in a guest, under a temporary
# STACK_ROOT; then compares the demo's tables with files/expected/.
# Needs busybox (Debian: busybox-static) and python3. Exit 0: all agree.
# KEEP=DIR: copy the demo's tables there.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
busybox=$(command -v busybox) || { echo "check-local.sh: busybox not found (apt-get install busybox-static)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
for applet in $("$busybox" --list); do ln -s "$busybox" "$work/bin/$applet"; done
stack=$work/opt/lsst/software/stack
mkdir -p "$stack"

in_busybox() {  # SCRIPT: run it with busybox sh, busybox applets only
  env -i PATH="$work/bin" HOME="$work/root" STACK_ROOT="$stack" DEMO_OUTPUT_DIR="$work/root/demo" \
    "$busybox" sh -c "$1"
}

# newinstall layer: upload newinstall.sh, run it once.
cp "$here/files/newinstall.sh" "$stack/newinstall.sh"
in_busybox 'set -e; cd "$STACK_ROOT" && sh ./newinstall.sh'
# stack layer: upload the distribution server, install the products at the tag.
cp -R "$here/files/distrib/." "$stack/distrib/"
in_busybox 'set -e; . "$STACK_ROOT/loadstack.sh" && eups-distrib-install lsst_distrib w_2016_05 && eups-list'
# verify: the demo, then the tables.
in_busybox '. "$STACK_ROOT/loadstack.sh" && setup obs_sdss && demo.sh --small' | tee "$work/demo.log"
grep -q "Processing completed successfully" "$work/demo.log"
python3 "$here/tools/compare-csv.py" "$here/files/expected/output-small.csv" "$work/root/demo/output.csv"
python3 "$here/tools/compare-csv.py" "$here/files/expected/summary-small.csv" "$work/root/demo/summary.csv"
[ -z "${KEEP:-}" ] || cp "$work/root/demo/"*.csv "$KEEP/"
echo "check-local.sh: OK"
