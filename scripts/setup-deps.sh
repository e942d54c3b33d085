#!/bin/bash
# Installs every Debian 12 package lcake's build, tests and test services need.
# Safe to run twice. Needs root (or sudo).
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
PKGS=(
  # build
  build-essential cmake pkg-config git ca-certificates
  libboost1.81-dev libboost-program-options1.81-dev libboost-filesystem1.81-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libvalijson-dev doctest-dev
  libssh-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev libarchive-dev libpugixml-dev
  # qemu backend and the test guest (scripts/build-guest.sh)
  qemu-system-x86 qemu-utils openssh-client e2fsprogs cpio gzip busybox-static dosfstools mtools
  # a real sshd for the SSH communicator tests
  openssh-server dropbear-bin
  # docker backend tests: podman's Docker API, an OCI registry, an independent client
  podman runc docker-registry skopeo uidmap
  # AWS test services (tests/services/aws): the reference client, and extlinux for make-boot-disk.sh
  python3-boto3 python3-botocore awscli extlinux
  # misc tools used by tests and benches
  procps python3 sqlite3 hyperfine curl
)
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get -o DPkg::Lock::Timeout=900 update -q
  $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
fi
