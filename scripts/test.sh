#!/bin/bash
# Quick start, step 2: build and run the whole test suite (real qemu, podman, registry, sshd,
# Keystone, Glance, the Nova and AWS simulators). Two tests at a time (LCAKE_TEST_JOBS, default 2):
# most slow tests wait on services or use one core for one TCG guest, and what tests must not share
# is a RESOURCE_LOCK (tests/CMakeLists.txt). The tests' times add up to ~45 min on 2 cores (CI);
# two at a time the suite took 22–27 min (1314 s and 1602 s, measured on 2 cores).
# `scripts/test.sh -L fast` runs the fast set only (a minute or two); any other ctest option
# passes through (a later -j wins).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-deps.sh --tests
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure --timeout 1200 -j"${LCAKE_TEST_JOBS:-2}" "$@"
