#!/bin/bash
# Quick start, step 2: build and run the whole test suite (real qemu, podman,
# registry, sshd; about 8-10 minutes on 2 cores after the build). `scripts/test.sh -L fast` runs the
# fast set only (a minute or two).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-deps.sh --tests
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure --timeout 1200 "$@"
