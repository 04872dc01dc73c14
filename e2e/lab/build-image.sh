#!/usr/bin/env bash
# Builds the VM lab's initramfs in two gzip'd newc cpio archives that the kernel unpacks in order:
#   base.cpio.gz     kernel modules, busybox, mdadm, nvme-cli, sgdisk, xfsprogs, util-linux tools,
#                    /init. Rebuilt only when the kernel, the host packages or /init change.
#   payload.cpio.gz  the guest scenario scripts (guest/*.sh -> /lab/scripts, guest/lib.sh -> /lab),
#                    plus any binaries given on the command line (-> /lab/bin/<name>) with their
#                    shared libraries (from ldd, installed at the same paths).
# lab.py appends a third, tiny per-node cpio (/lab/node.conf) when it boots a node.
#
# Usage: e2e/lab/build-image.sh [--cache DIR] [--payload FILE] [BINARY...]
#   --cache    $MESHSTOR_LAB_CACHE, else <repo>/build/lab-cache (must hold setup.sh's kernel)
#   --payload  where to write the payload (default <cache>/image/payload.cpio.gz)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${MESHSTOR_LAB_CACHE:-$repo/build/lab-cache}"
payload=""
bins=()
while (($#)); do
  case "$1" in
    --cache) cache="$2"; shift 2 ;;
    --payload) payload="$2"; shift 2 ;;
    -*) echo "build-image.sh: unknown option $1" >&2; exit 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
log() { echo "lab-image: $*" >&2; }
die() { echo "lab-image: ERROR: $*" >&2; exit 1; }

kdir="$cache/kernel"
[[ -f "$kdir/.complete" ]] || die "no guest kernel in $kdir: run e2e/lab/setup.sh first"
kver="$(cat "$kdir/kver")"
kroot="$kdir/kroot"
img="$cache/image"
mkdir -p "$img"
exec 8>"$img/.lock"  # concurrent runs (several build trees) share the cache
flock -w 600 8 || die "could not lock $img/.lock"
payload="${payload:-$img/payload.cpio.gz}"

# Tools in the base image: required ones fail the build when missing, optional ones are skipped.
required_tools=(mdadm nvme sgdisk mkfs.xfs xfs_repair xfs_db xfs_io blkid wipefs losetup kmod
                lsblk partx blockdev mount umount)
optional_tools=(sfdisk xfs_admin xfs_growfs findmnt)
# Modules loaded at boot (with their dependencies); optional ones may be absent or built in.
modules=(virtio_pci virtio_net virtio_rng nvme nvme-core nvme-fabrics nvme-tcp nvmet nvmet-tcp
         configfs loop md_mod raid0 raid1 raid10 xfs crc32c_generic crc32c-intel libcrc32c
         virtio_blk ext4 overlay bridge veth)
# (ext4: scenario k8s's read-only drive; overlay: containerd's snapshots; bridge, veth: the CNI
# bridge plugin of the pod network; loaded by scenarios through LAB_extra_modules.)
optional_modules=(nvme-loop dm_mod br_netfilter)

# copies a file (following symlinks) to the same absolute path under a root
put() { install -D -m "${3:-755}" "$(readlink -f "$1")" "$2$1"; }
# copies an executable's shared libraries and ELF interpreter to the same paths under a root
put_libs() {
  local exe="$1" root="$2" lib
  { ldd "$exe" 2>/dev/null || true; } | awk '/=> \//{print $3} /^\s*\/[^ ]+ \(0x/{print $1}' |
    sort -u | while read -r lib; do
      [[ -e "$root$lib" ]] || put "$lib" "$root" 755
    done
}
# newc cpio of a directory, gzip -1 (fast; the guest decompresses it at every boot)
pack() { (cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -1 >"$2.tmp" && mv "$2.tmp" "$2"; }

# ---- base --------------------------------------------------------------------------------
pkg_versions="$(dpkg-query -W -f='${Package}=${Version}\n' busybox-static mdadm nvme-cli gdisk \
                xfsprogs util-linux fdisk kmod libc6 2>/dev/null || true)"
stamp="$( { echo "$kver"; echo "$pkg_versions"; cat "$here/build-image.sh" "$here/guest/init"; } |
          sha256sum | cut -c1-32)"
if [[ -s "$img/base.cpio.gz" && "$(cat "$img/base.stamp" 2>/dev/null)" == "$stamp" ]]; then
  log "base image up to date ($img/base.cpio.gz)"
else
  log "building base image for kernel $kver"
  start=$SECONDS
  R="$img/base.root"
  rm -rf "$R"
  mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc/nvme,etc/mdadm,proc,sys,dev,tmp,run,mnt,root,lab,lib64,var/tmp}
  chmod 1777 "$R/tmp" "$R/var/tmp"
  bb="$(command -v busybox || true)"
  [[ -n "$bb" ]] && "$bb" --list >/dev/null 2>&1 || die "busybox (busybox-static) not found"
  if ldd "$bb" 2>&1 | grep -q '=> /'; then die "$bb is not statically linked: install busybox-static"; fi
  install -m755 "$bb" "$R/bin/busybox"
  for a in $("$bb" --list); do
    [[ -e "$R/bin/$a" ]] || ln -s busybox "$R/bin/$a"
  done
  for t in "${required_tools[@]}" "${optional_tools[@]}"; do
    p="$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$t" || true)"
    if [[ -z "$p" ]]; then
      [[ " ${optional_tools[*]} " == *" $t "* ]] && continue
      die "$t not found on the host (run e2e/lab/setup.sh)"
    fi
    case "$p" in /sbin/* | /bin/*) p="/usr$p" ;; esac  # usrmerge: keep real tools under /usr
    put "$p" "$R"
    put_libs "$p" "$R"
    # /sbin/<tool> -> real tool (busybox applet links live in /bin only)
    ln -sf "$p" "$R/sbin/$t"
  done
  ln -sf /usr/bin/kmod "$R/usr/sbin/modprobe"
  ln -sf /usr/bin/kmod "$R/usr/sbin/depmod"
  ln -sf /usr/bin/kmod "$R/usr/sbin/insmod"
  ln -sf /usr/bin/kmod "$R/usr/sbin/lsmod"
  # ld.so for binaries added later, whatever ldd printed
  [[ -e "$R/lib64/ld-linux-x86-64.so.2" ]] || put /lib64/ld-linux-x86-64.so.2 "$R"

  # kernel modules and their dependencies
  mods="$( { for m in "${modules[@]}"; do
               modprobe -d "$kroot" -S "$kver" --show-depends "$m" ||
                 die "module $m not found in $kver"
             done
             for m in "${optional_modules[@]}"; do
               modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>/dev/null || true
             done; } | awk '$1 == "insmod" { print $2 }' | sort -u)"
  for ko in $mods; do
    install -D -m644 "$ko" "$R${ko#"$kroot"}"
  done
  for f in modules.order modules.builtin modules.builtin.modinfo; do
    [[ -f "$kroot/lib/modules/$kver/$f" ]] && cp "$kroot/lib/modules/$kver/$f" "$R/lib/modules/$kver/"
  done
  depmod -b "$R" "$kver"

  cat >"$R/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
  ln -s /proc/mounts "$R/etc/mtab"
  # Only the lab's scripts and the agent assemble arrays (DESIGN §6.5).
  printf 'AUTO -all\nHOMEHOST <none>\n' >"$R/etc/mdadm/mdadm.conf"
  echo "$kver" >"$R/etc/lab-kernel"
  install -m755 "$here/guest/init" "$R/init"
  pack "$R" "$img/base.cpio.gz"
  rm -rf "$R"
  echo "$stamp" >"$img/base.stamp"
  log "base image $(du -h "$img/base.cpio.gz" | cut -f1) built in $((SECONDS - start)) s"
fi

# ---- payload ----------------------------------------------------------------------------------
P="$(mktemp -d "${TMPDIR:-/tmp}/meshstor-lab-payload.XXXXXX")"
trap 'rm -rf "$P"' EXIT
mkdir -p "$P/lab/scripts" "$P/lab/bin" "$P/lab/www/cgi-bin"
install -m644 "$here/guest/lib.sh" "$P/lab/lib.sh"
for s in "$here"/guest/*.sh; do
  [[ "$(basename "$s")" == lib.sh ]] || install -m755 "$s" "$P/lab/scripts/"
done
install -m755 "$here/guest/status.cgi" "$P/lab/www/cgi-bin/status"
for b in "${bins[@]}"; do
  [[ -f "$b" && -x "$b" ]] || die "binary $b does not exist or is not executable"
  install -m755 "$b" "$P/lab/bin/$(basename "$b")"
  # Debug info stays on the host (the guest's RAM holds the initramfs): symbols are kept, so
  # sanitizer reports still name functions.
  if command -v objcopy >/dev/null; then objcopy --strip-debug "$P/lab/bin/$(basename "$b")"; fi
  # Libraries the base image already has are overwritten with the host's copy (same packages).
  put_libs "$b" "$P"
  log "payload: $(basename "$b") ($(du -h "$P/lab/bin/$(basename "$b")" | cut -f1) without debug" \
    "info) + $(ldd "$b" | grep -c '=> /') libraries"
done
mkdir -p "$(dirname "$payload")"
pack "$P" "$payload"
log "payload $(du -h "$payload" | cut -f1) -> $payload"
