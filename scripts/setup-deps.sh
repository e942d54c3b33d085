#!/bin/bash
# Installs the Debian 12 packages lcake needs. Safe to run twice. Needs root (or sudo).
#   setup-deps.sh           what building lcake and running `lcake --target qemu` need
#   setup-deps.sh --tests   that plus the real services the test suite starts
#                           (podman, a registry, Keystone, Glance, Nova, awscli, ...)
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
PKGS=(
  # build
  build-essential cmake pkg-config git ca-certificates
  libboost1.81-dev libboost-program-options1.81-dev libboost-filesystem1.81-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libvalijson-dev doctest-dev
  libssh-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev libarchive-dev
  libpugixml-dev libyaml-cpp-dev
  # qemu backend and the bootable test guest (scripts/build-guest.sh)
  qemu-system-x86 qemu-utils openssh-client e2fsprogs cpio gzip busybox-static dosfstools mtools
  syslinux syslinux-common extlinux fdisk genisoimage
  procps curl python3
  # the man page (help2man) and the Debian packages (cpack -G DEB: dpkg-shlibdeps, and `file`,
  # which CPackDeb needs to find the binaries whose libraries it lists)
  help2man dpkg-dev file
)
TEST_PKGS=(
  # a real sshd for the SSH communicator tests
  openssh-server dropbear-bin
  # docker backend tests: podman's Docker API, an OCI registry, an independent client
  podman runc docker-registry skopeo uidmap
  # the registry token server (tests/services/token-server.py) signs its JWTs with it
  python3-cryptography
  # OpenStack tests (tests/services/openstack): real Keystone, Glance, Nova with the fake
  # driver, and the independent client
  keystone glance-api python3-openstackclient uwsgi-core uwsgi-plugin-python3 jq
  nova-api nova-conductor nova-scheduler nova-compute placement-api rabbitmq-server
  python3-jsonschema python3-yaml
  # AWS tests (tests/services/aws): botocore's models and signer, boto3, the independent client
  # (moto_server itself is not in Debian: without it the AWS tests report themselves skipped)
  python3-boto3 python3-botocore awscli
  # the real-distribution test guest (scripts/build-distro-guest.sh)
  mmdebstrap
  # misc tools used by tests and benches (GNU time: the benches' peak RSS, bench/benchlib.py)
  sqlite3 hyperfine time
  # `lcake completion` is tested in the real shells
  fish zsh
)
[ "${1:-}" = "--tests" ] && PKGS+=("${TEST_PKGS[@]}")
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get -o DPkg::Lock::Timeout=900 update -q
  $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
fi
