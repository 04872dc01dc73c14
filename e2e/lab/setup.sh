#!/usr/bin/env bash
# VM lab set-up (idempotent): installs the Debian packages the lab needs when they are missing,
# and fetches the guest kernel WITHOUT installing it on the host: `apt-get download` of the
# linux-image-<ver>-amd64 that the current linux-image-amd64 depends on, `dpkg-deb -x` into the
# cache, `depmod -b`, and the uncompressed vmlinux (booted through its PVH entry point).
#
# Usage: e2e/lab/setup.sh [--cache DIR] [--no-install] [--print-kver]
#   cache: $MESHSTOR_LAB_CACHE, else <repo>/build/lab-cache
#   MESHSTOR_LAB_KERNEL=linux-image-6.1.0-56-amd64 pins the guest kernel package.
# Exit codes: 0 ready, 77 cannot run here (not root and packages missing, or qemu not
# installable), anything else: failure.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${MESHSTOR_LAB_CACHE:-$repo/build/lab-cache}"
install=1
print_kver=0
while (($#)); do
  case "$1" in
    --cache) cache="$2"; shift 2 ;;
    --no-install) install=0; shift ;;
    --print-kver) print_kver=1; shift ;;
    *) echo "setup.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { ((print_kver)) || echo "lab-setup: $*" >&2; }
die() { echo "lab-setup: ERROR: $*" >&2; exit 1; }
skip() { echo "lab-setup: SKIP: $*" >&2; exit 77; }

# ---- host packages -------------------------------------------------------------------------
# mount: losetup, mount, umount (the base image copies them); e2fsprogs: mkfs.ext4 -d (scenario
# k8s's read-only drive); openssl: its certificates; containerd, runc, containernetworking-plugins:
# copied into the Kubernetes nodes; etcd-server, prometheus: run on the host (scenario k8s);
# xz-utils: unpacks Kubernetes binaries; mmdebstrap, binutils: tools/images.sh.
packages=(qemu-system-x86 busybox-static mdadm nvme-cli xfsprogs gdisk kmod cpio iproute2
          util-linux mount fdisk python3 curl e2fsprogs openssl xz-utils containerd runc
          containernetworking-plugins etcd-server prometheus mmdebstrap binutils ca-certificates
          gzip tar fio)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

apt_updated=0
apt_update() {
  if ((apt_updated == 0)); then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
    apt_updated=1
  fi
}

if ((${#missing[@]})); then
  if ((EUID != 0)) || ((install == 0)); then
    if ! command -v qemu-system-x86_64 >/dev/null; then
      skip "qemu-system-x86_64 is not installed and cannot be installed here (needs root)"
    fi
    die "missing packages: ${missing[*]} (run e2e/lab/setup.sh as root)"
  fi
  apt_update
  log "installing ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null; then
    command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86 could not be installed"
    die "apt-get install ${missing[*]} failed"
  fi
fi
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not found after install"

# ---- guest kernel ----------------------------------------------------------------------------
mkdir -p "$cache"
exec 9>"$cache/.setup.lock"
flock -w 900 9 || die "could not lock $cache/.setup.lock"

resolve_pkg() {
  if [[ -n "${MESHSTOR_LAB_KERNEL:-}" ]]; then
    echo "$MESHSTOR_LAB_KERNEL"
    return
  fi
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }'
}

pkg="$(resolve_pkg)"
if [[ -z "$pkg" ]] && ((EUID == 0)); then
  apt_update
  pkg="$(resolve_pkg)"
fi
if [[ -z "$pkg" ]]; then
  # No apt lists (and no way to refresh them): fall back to the newest complete cached kernel.
  pkg="$(cd "$cache" && ls -d linux-image-*-amd64 2>/dev/null | sort -V |
         while read -r d; do [[ -f "$d/.complete" ]] && echo "$d"; done | tail -1 || true)"
  [[ -n "$pkg" ]] || die "cannot resolve the guest kernel: apt-cache knows no linux-image-amd64"
  log "apt lists unavailable, using cached $pkg"
fi
kver="${pkg#linux-image-}"
kdir="$cache/$pkg"

if [[ -f "$kdir/.complete" && -s "$kdir/vmlinux" ]]; then
  log "guest kernel $kver cached in $kdir"
else
  log "fetching guest kernel package $pkg (not installed on the host)"
  rm -rf "$kdir" "$kdir.tmp"
  mkdir -p "$kdir.tmp/deb"
  (cd "$kdir.tmp/deb" && apt-get download -q "$pkg" >/dev/null 2>&1) || {
    apt_update
    (cd "$kdir.tmp/deb" && apt-get download -q "$pkg" >/dev/null) || die "apt-get download $pkg failed"
  }
  deb="$(ls "$kdir.tmp"/deb/*.deb)"
  log "unpacking $(basename "$deb")"
  dpkg-deb -x "$deb" "$kdir.tmp/root"
  rm -rf "$kdir.tmp/deb"
  [[ -d "$kdir.tmp/root/lib/modules/$kver" ]] || die "$deb has no lib/modules/$kver"
  depmod -b "$kdir.tmp/root" "$kver"
  log "extracting the uncompressed vmlinux for PVH boot"
  python3 - "$kdir.tmp/root/boot/vmlinuz-$kver" "$kdir.tmp/vmlinux" <<'EOF'
import lzma, sys, zlib
data = open(sys.argv[1], "rb").read()
out = None
off = data.find(b"\xfd7zXZ\x00")
if off >= 0:
    out = lzma.LZMADecompressor().decompress(data[off:])
else:
    off = data.find(b"\x1f\x8b\x08\x00")
    if off >= 0:
        out = zlib.decompressobj(31).decompress(data[off:])
if not out or out[:4] != b"\x7fELF":
    sys.exit("no xz or gzip compressed ELF kernel found in " + sys.argv[1])
# PVH boot needs the XEN_ELFNOTE_PHYS32_ENTRY (18) note; a kernel without CONFIG_PVH won't boot.
if b"Xen\x00" not in out:
    sys.exit("vmlinux has no Xen ELF notes (CONFIG_PVH missing?)")
open(sys.argv[2], "wb").write(out)
EOF
  mv "$kdir.tmp/root" "$kdir.tmp/kroot"
  echo "$kver" >"$kdir.tmp/kver"
  touch "$kdir.tmp/.complete"
  mv "$kdir.tmp" "$kdir"
  # Keep only the current kernel in the cache.
  for old in "$cache"/linux-image-*-amd64; do
    [[ "$old" == "$kdir" || ! -d "$old" ]] || { log "removing old $old"; rm -rf "$old"; }
  done
  log "guest kernel $kver ready in $kdir"
fi
ln -sfn "$pkg" "$cache/kernel"
if ((print_kver)); then echo "$kver"; fi
