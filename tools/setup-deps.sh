#!/usr/bin/env bash
# Installs every build and test dependency of MeshStor from Debian 12 packages.
# Idempotent: packages already installed are skipped, and apt is not touched when nothing is missing.
# Usage: tools/setup-deps.sh [--lab]   (--lab adds what the VM lab needs: qemu, kernel, mdadm, ...)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libcpp-httplib-dev rapidjson-dev libyaml-cpp-dev libboost-dev libfmt-dev catch2
  libnl-3-dev libnl-genl-3-dev libnl-route-3-dev libssl-dev
  libblkid-dev libfdisk-dev libmount-dev
  curl ca-certificates python3
)
if [[ "${1:-}" == "--lab" ]]; then
  packages+=(qemu-system-x86 qemu-utils linux-image-amd64 busybox-static mdadm nvme-cli xfsprogs
             cpio zstd kmod)
fi

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
