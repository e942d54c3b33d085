#!/bin/bash
# Quick start, step 1: install every dependency (apt), build lcake, build the
# tiny test guest the example pipeline starts from, and run the main job:
# `lcake --target qemu` on the bundled example pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

./scripts/setup-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

# The example pipeline's base layer boots a small guest made from Debian packages.
GUEST_DIR=${LCAKE_GUEST_DIR:-/var/cache/lcake/guest}
if [ ! -w "$(dirname "$GUEST_DIR")" ] && [ ! -d "$GUEST_DIR" ]; then
  $SUDO mkdir -p "$GUEST_DIR" && $SUDO chown "$(id -u):$(id -g)" "$GUEST_DIR"
fi
for flavour in dropbear openssh; do
  # --reuse: rebuilt only when build-guest.sh changed (an older guest may not boot the pipeline)
  ./scripts/build-guest.sh "$GUEST_DIR/$flavour" --sshd "$flavour" --reuse
done

export LCAKE_GUEST_DIR="$GUEST_DIR"
./build/bin/lcake --target qemu "$@"
