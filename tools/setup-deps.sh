#!/usr/bin/env bash
# Installs every build and test dependency of MeshStor from Debian 12 packages.
# Idempotent: packages already installed are skipped, and apt is not touched when nothing is missing.
# The VM lab's own packages (qemu, mdadm, nvme-cli, ...) and guest kernel are set up by
# e2e/lab/setup.sh, which the lab's ctest fixture runs.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git clang-format ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libcpp-httplib-dev rapidjson-dev libyaml-cpp-dev libboost-dev libfmt-dev catch2
  libnl-3-dev libnl-genl-3-dev libnl-route-3-dev libssl-dev zlib1g-dev
  libblkid-dev libfdisk-dev libmount-dev
  curl ca-certificates python3 python3-yaml
  etcd-server openssl prometheus
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if (( ${#missing[@]} == 0 )); then
  echo "setup-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "setup-deps: installing ${missing[*]}"
sudo=()
if (( EUID != 0 )); then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup-deps: done"
