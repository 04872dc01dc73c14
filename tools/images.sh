#!/usr/bin/env bash
# Builds MeshStor's container images as OCI archives from Debian 12 packages, without Docker, a
# registry or a base image: mmdebstrap builds each root filesystem, and the OCI layout (one gzip
# layer, config, manifest, index.json) is written by this script. See tools/images.md.
#
# Usage: tools/images.sh [--build-dir DIR] [--out DIR] [--k8s-dir DIR] [--mirror URL] [--list]
#   --build-dir DIR  build tree with operator/meshstor-operator, csi-shim/meshstor-csi-shim,
#                    agent/meshstor-agent, agent/sys/meshstor-sys (default: build/release)
#   --out DIR        output directory (default: build/images); downloaded .debs are cached in
#                    DIR/.debs so that reruns do not download again
#   --k8s-dir DIR    directory with the static CSI sidecar binaries csi-provisioner, csi-resizer,
#                    csi-node-driver-registrar, livenessprobe: also builds their images
#   --mirror URL     Debian mirror ending in /debian (default: the one this machine's apt uses,
#                    from /etc/apt/sources.list[.d]): bookworm and bookworm-updates from URL,
#                    bookworm-security from URL-security
#   --sidecars-only  with --k8s-dir: only the sidecar images (no build tree, no Debian archive
#                    needed; the CA bundle and its package version come from this host)
#   --list           only print the image references it builds (the manifests use exactly
#                    these) and exit; needs neither root nor a build
#   --print-mirror   only print the Debian mirror it would use and exit
# Writes DIR/<name>-<tag>.oci.tar, DIR/<name>-<tag>.packages.txt and DIR/images.txt (one image
# reference per line). Idempotent: everything is rebuilt from the inputs on every run; the layer
# bytes are reproducible for the same inputs and package versions (SOURCE_DATE_EPOCH: the last
# commit's time). Needs root (mmdebstrap's root mode, chroot); installs mmdebstrap and binutils
# when missing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self="$repo/tools/images.sh"

# ---- hooks run by mmdebstrap inside its customize phase: images.sh __hook <kind> <root> ---------
if [[ "${1:-}" == "__hook" ]]; then
  kind=$2 root=$3
  # The image's unprivileged user (the operator runs as it; distroless' "nonroot" uid).
  if ! grep -q '^meshstor:' "$root/etc/passwd"; then
    echo 'meshstor:x:65532:65532:meshstor:/nonexistent:/usr/sbin/nologin' >>"$root/etc/passwd"
    echo 'meshstor:x:65532:' >>"$root/etc/group"
  fi
  if [[ "$kind" == agent ]]; then
    # Arrays are created and assembled by meshstor-agent with explicit member lists; no
    # mdadm.conf (postinst's mkconf may have scanned the build host), no cron jobs, no
    # monitor: the image has no init, udevd, cron or systemd.
    rm -f "$root/etc/mdadm/mdadm.conf" "$root/etc/cron.d/mdadm" "$root/etc/cron.daily/mdadm" \
      "$root/etc/default/mdadm"
    # Size: packages that only unused parts of mdadm and xfsprogs need are removed although
    # they are dependencies (about 100 MB of 220): udev (mdadm needs only libudev1; udevd never
    # runs here), python3 (xfs_scrub_all, xfs_protofile) and libicu72 (xfs_scrub). mkfs.xfs,
    # xfs_growfs, mdadm and modprobe are checked with ldd below; packages.txt lists what stays.
    # One at a time, users first: a package's maintainer scripts may need the next one.
    for p in udev python3 python3.11 libpython3-stdlib libpython3.11-stdlib python3-minimal \
      python3.11-minimal libpython3.11-minimal media-types libicu72; do
      chroot "$root" dpkg --purge --force-depends "$p" >/dev/null 2>&1 ||
        { echo "images.sh: dpkg --purge $p failed in the agent image" >&2; exit 1; }
    done
    for b in /usr/sbin/mdadm /usr/sbin/mkfs.xfs /usr/sbin/xfs_growfs /usr/bin/kmod; do
      if ! out=$(chroot "$root" /usr/bin/ldd "$b" 2>&1) || grep -q 'not found' <<<"$out"; then
        echo "images.sh: $b is missing libraries in the agent image: $out" >&2
        exit 1
      fi
    done
  fi
  # Every binary must find all of its shared libraries inside the image.
  for b in "$root"/usr/local/bin/*; do
    out=$(chroot "$root" /usr/bin/ldd "/usr/local/bin/$(basename "$b")" 2>&1) ||
      { echo "images.sh: ldd /usr/local/bin/$(basename "$b") failed in the $kind image: $out" >&2; exit 1; }
    if grep -q 'not found' <<<"$out"; then
      echo "images.sh: missing libraries in the $kind image for $(basename "$b"):" >&2
      grep 'not found' <<<"$out" >&2
      exit 1
    fi
  done
  dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Package}\t${Version}\t${Architecture}\n' |
    LC_ALL=C sort >"$IMAGES_PACKAGES_FILE"
  # Drop what a container never uses: apt lists/caches, logs, docs (copyright files stay), and
  # the build host's resolv.conf/hostname (the runtime provides both).
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/var/lib/dpkg/*-old "$root"/var/log/* "$root"/usr/share/man "$root"/usr/share/info \
    "$root"/usr/share/lintian "$root"/usr/share/linda
  find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + \
    2>/dev/null || true
  : >"$root/etc/resolv.conf"
  : >"$root/etc/hostname"
  exit 0
fi

usage() { sed -n '6,23p' "$self" | sed 's/^# \{0,1\}//'; }

build_dir=build/release
out=build/images
k8s_dir=
mirror=
list=0
print_mirror=0
sidecars_only=0
while (($#)); do
  case $1 in
    --build-dir) build_dir=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --k8s-dir) k8s_dir=${2:?}; shift 2 ;;
    --mirror) mirror=${2:?}; shift 2 ;;
    --list) list=1; shift ;;
    --sidecars-only) sidecars_only=1; shift ;;
    --print-mirror) print_mirror=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "images.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

# The CSI sidecars' tags when their binaries do not say (the versions this release was tested with).
declare -A sidecar_default=(
  [csi-provisioner]=v5.2.0 [csi-resizer]=v1.13.2 [csi-node-driver-registrar]=v2.13.0
  [livenessprobe]=v2.15.0
)
pause_tag=3.10
if ((list)); then
  version=$(sed -n 's/^project(meshstor VERSION \([0-9][0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
  echo "meshstor/operator:$version"
  echo "meshstor/agent:$version"
  echo "meshstor/pause:$pause_tag"
  for s in csi-provisioner csi-resizer csi-node-driver-registrar livenessprobe; do
    echo "meshstor/$s:${sidecar_default[$s]}"
  done
  exit 0
fi

if ((sidecars_only)) && [[ -z "$k8s_dir" ]]; then
  echo "images.sh: --sidecars-only needs --k8s-dir" >&2
  exit 2
fi
# The Debian mirror this machine's apt uses: the first one-line "deb URI" or deb822 "URIs:"
# entry ending in /debian.
if ((sidecars_only)); then
  mirror=none
elif [[ -z "$mirror" ]]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }
         $1 == "URIs:" { print $2 }' | sed 's#/*$##' | grep '/debian$' | head -1 || true)
  [[ -n "$mirror" ]] || {
    echo "images.sh: no Debian mirror in /etc/apt/sources.list[.d]; give one with --mirror" >&2
    exit 1
  }
fi
if ((print_mirror)); then
  echo "$mirror"
  exit 0
fi

if ((EUID != 0)); then
  echo "images.sh: needs root (mmdebstrap root mode, chroot)" >&2
  exit 1
fi

# ---- host tools: only missing packages, apt-get update first ----------------------------------
host_packages=(mmdebstrap binutils ca-certificates gzip tar coreutils findutils libc-bin dpkg mount)
missing=()
for p in "${host_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "images.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cd "$repo"
build_dir=$(realpath "$build_dir")
mkdir -p "$out"
out=$(realpath "$out")
[[ -z "$k8s_dir" ]] || k8s_dir=$(realpath "$k8s_dir")

version=$(sed -n 's/^project(meshstor VERSION \([0-9][0-9.]*\).*/\1/p' CMakeLists.txt)
[[ -n "$version" ]] || { echo "images.sh: no project(meshstor VERSION ...) in CMakeLists.txt" >&2; exit 1; }
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
  SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)

declare -A bins=(
  [meshstor-operator]=operator/meshstor-operator
  [meshstor-csi-shim]=csi-shim/meshstor-csi-shim
  [meshstor-agent]=agent/meshstor-agent
  [meshstor-sys]=agent/sys/meshstor-sys
)
((sidecars_only)) && bins=()
for b in "${!bins[@]}"; do
  [[ -x "$build_dir/${bins[$b]}" ]] || { echo "images.sh: no $build_dir/${bins[$b]}" >&2; exit 1; }
done

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
debs="$out/.debs"
mkdir -p "$debs"
refs=()

# The images get stripped copies (RelWithDebInfo binaries are mostly debug info); the build tree
# is only read.
mkdir -p "$work/bin"
for b in "${!bins[@]}"; do
  strip --strip-unneeded -o "$work/bin/$b" "$build_dir/${bins[$b]}"
done

# Debian packages that provide the shared libraries of the given binaries (ldd on this host,
# which built them; the hook checks again with ldd inside the image).
library_packages() {
  local lib path
  ldd "$@" | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | sort -u | while read -r lib; do
    for path in "$lib" "$(realpath "$lib")" "${lib#/usr}" "/usr${lib#/usr}"; do
      if pkg=$(dpkg -S "$path" 2>/dev/null); then
        echo "${pkg%%:*}"
        break
      fi
    done
  done | sort -u
}

# rootfs <kind> <tar> <packages.txt> <mmdebstrap args...>: one root filesystem as a tar.
# (Hooks are in single quotes on purpose: mmdebstrap's shell expands "$1", the root.)
# shellcheck disable=SC2016
rootfs() {
  local kind=$1 tar=$2 pkgs=$3
  shift 3
  # merged-usr hook: /bin etc. are symlinks and usr-is-merged satisfies init-system-helpers
  # (otherwise apt picks usrmerge, which pulls in perl).
  IMAGES_PACKAGES_FILE=$pkgs mmdebstrap --quiet --mode=root --format=tar --variant=essential \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --dpkgopt='path-exclude=/lib/systemd/*' --dpkgopt='path-exclude=/usr/lib/systemd/*' \
    --dpkgopt='path-exclude=/lib/udev/rules.d/*' --dpkgopt='path-exclude=/usr/lib/udev/rules.d/*' \
    --skip=output/dev,output/mknod,download/empty,essential/unlink \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
    --setup-hook="sync-in $debs /var/cache/apt/archives" \
    "$@" \
    --customize-hook="sync-out /var/cache/apt/archives $debs" \
    --customize-hook="$self __hook $kind \"\$1\"" \
    bookworm "$tar" \
    "deb $mirror bookworm main" \
    "deb $mirror bookworm-updates main" \
    "deb ${mirror%/debian}/debian-security bookworm-security main"
}

# scratch_rootfs <tar> <dir>: a deterministic tar of a hand-made tree (sidecars, pause).
scratch_tar() {
  tar --create --file="$1" --directory="$2" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime --format=gnu .
}

# scratch_tree <dir>: /etc/passwd, /etc/group, CA certificates (from the operator image) and /tmp.
scratch_tree() {
  local d=$1
  mkdir -p "$d/etc/ssl/certs" "$d/tmp"
  chmod 1777 "$d/tmp"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'meshstor:x:65532:65532:meshstor:/nonexistent:/sbin/nologin' >"$d/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' 'meshstor:x:65532:' >"$d/etc/group"
  cp "$work/ca-certificates.crt" "$d/etc/ssl/certs/ca-certificates.crt"
}

json_array() { # json_array a b c -> ["a","b","c"] (no quoting needed for our values)
  local first=1 s='['
  for a in "$@"; do
    ((first)) || s+=','
    s+="\"$a\""; first=0
  done
  echo "$s]"
}

# oci <name> <tag> <rootfs.tar> <user> <entrypoint json> <cmd json> <env json>
oci() {
  local name=$1 tag=$2 layer_tar=$3 user=$4 entrypoint=$5 cmd=$6 env=$7
  local ref="meshstor/$name:$tag" file="$out/$name-$tag.oci.tar"
  local l="$work/oci-$name"
  rm -rf "$l"
  mkdir -p "$l/blobs/sha256"
  local diff_id layer_digest layer_size config config_digest manifest manifest_digest
  diff_id=$(sha256sum "$layer_tar" | cut -d' ' -f1)
  gzip -n -6 <"$layer_tar" >"$l/layer.gz"
  layer_digest=$(sha256sum "$l/layer.gz" | cut -d' ' -f1)
  layer_size=$(stat -c %s "$l/layer.gz")
  mv "$l/layer.gz" "$l/blobs/sha256/$layer_digest"
  config=$(printf '{"created":"%s","architecture":"amd64","os":"linux","config":{"User":"%s","Env":%s,"Entrypoint":%s,"Cmd":%s,"WorkingDir":"/","Labels":{"org.opencontainers.image.title":"%s","org.opencontainers.image.version":"%s","org.opencontainers.image.revision":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"%s","created_by":"tools/images.sh"}]}' \
    "$created" "$user" "$env" "$entrypoint" "$cmd" "$name" "$tag" "$revision" "$diff_id" "$created")
  printf '%s' "$config" >"$l/config"
  config_digest=$(sha256sum "$l/config" | cut -d' ' -f1)
  mv "$l/config" "$l/blobs/sha256/$config_digest"
  manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
    "$config_digest" "${#config}" "$layer_digest" "$layer_size")
  printf '%s' "$manifest" >"$l/manifest"
  manifest_digest=$(sha256sum "$l/manifest" | cut -d' ' -f1)
  mv "$l/manifest" "$l/blobs/sha256/$manifest_digest"
  # containerd's importer names the image after io.containerd.image.name; OCI tools (skopeo,
  # podman: oci-archive:FILE) use org.opencontainers.image.ref.name.
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"docker.io/%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "${#manifest}" "$ref" "$tag" >"$l/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$l/oci-layout"
  tar --create --file="$file.tmp" --directory="$l" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$SOURCE_DATE_EPOCH" --format=gnu oci-layout index.json blobs
  mv "$file.tmp" "$file"
  rm -rf "$l"
  refs+=("$ref")
  printf 'images.sh: %-45s %s  %s MB compressed, %s MB unpacked\n' "$ref" "$(basename "$file")" \
    "$(awk -v s="$layer_size" 'BEGIN {printf "%.1f", s / 1048576}')" \
    "$(awk -v s="$(stat -c %s "$layer_tar")" 'BEGIN {printf "%.1f", s / 1048576}')"
}

path_env=$(json_array 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')

if ((sidecars_only)); then
  cp /etc/ssl/certs/ca-certificates.crt "$work/ca-certificates.crt"
  dpkg-query -W -f='${Package}\t${Version}\t${Architecture}\n' ca-certificates \
    >"$work/ca-certificates.packages.txt"
else
# ---- operator: meshstor-operator + meshstor-csi-shim (controller mode), uid 65532 ---------------
op_bins=("$work/bin/meshstor-operator" "$work/bin/meshstor-csi-shim")
op_pkgs=$(library_packages "${op_bins[@]}" | paste -sd, -)
echo "images.sh: operator image packages: ca-certificates,$op_pkgs"
rootfs operator "$work/operator.tar" "$out/operator-$version.packages.txt" \
  --include="ca-certificates,$op_pkgs" \
  --customize-hook="copy-in ${op_bins[*]} /usr/local/bin"
tar -xOf "$work/operator.tar" ./etc/ssl/certs/ca-certificates.crt >"$work/ca-certificates.crt"
oci operator "$version" "$work/operator.tar" 65532:65532 \
  "$(json_array /usr/local/bin/meshstor-operator)" '[]' "$path_env"
rm -f "$work/operator.tar"

# ---- agent: meshstor-agent, meshstor-csi-shim (node mode), meshstor-sys + what they exec -------
# agent/sys/linux execs /usr/sbin/mdadm (md.cc), /usr/sbin/mkfs.xfs and /usr/sbin/xfs_growfs
# (filesystem.cc); everything else (mount, nvmet/nvme-tcp configfs, partitions) is done with
# syscalls and libblkid/libfdisk. kmod (modprobe) loads nvmet-tcp/nvme-tcp/raid1/raid10 from the
# host's /lib/modules (init container). util-linux is Essential and always present.
ag_bins=("$work/bin/meshstor-agent" "$work/bin/meshstor-csi-shim" "$work/bin/meshstor-sys")
ag_pkgs=$(library_packages "${ag_bins[@]}" | paste -sd, -)
echo "images.sh: agent image packages: ca-certificates,mdadm,xfsprogs,kmod,$ag_pkgs"
rootfs agent "$work/agent.tar" "$out/agent-$version.packages.txt" \
  --include="ca-certificates,mdadm,xfsprogs,kmod,$ag_pkgs" \
  --customize-hook="copy-in ${ag_bins[*]} /usr/local/bin"
oci agent "$version" "$work/agent.tar" 0:0 \
  "$(json_array /usr/local/bin/meshstor-agent)" '[]' \
  "$(json_array 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' MDADM_NO_SYSTEMCTL=1)"
rm -f "$work/agent.tar"

# ---- pause: Debian's catatonit (static) in pause mode ------------------------------------------
# shellcheck disable=SC2016 # the hook's "$1" and variables are expanded by mmdebstrap's shell
IMAGES_PACKAGES_FILE="$out/pause-$pause_tag.packages.txt" mmdebstrap --quiet --mode=root --format=tar --variant=extract --include=catatonit \
  --skip=output/dev,output/mknod,download/empty,essential/unlink \
  --extract-hook="sync-out /var/cache/apt/archives $debs" \
  --extract-hook='for d in "$1"/var/cache/apt/archives/*.deb; do dpkg-deb --show --showformat="\${Package}\t\${Version}\t\${Architecture}\n" "$d"; done | LC_ALL=C sort >"$IMAGES_PACKAGES_FILE"' \
  bookworm "$work/catatonit.tar" "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
  "deb ${mirror%/debian}/debian-security bookworm-security main" \
  >/dev/null
mkdir -p "$work/pause/usr/bin" "$work/pause/usr/share/doc/catatonit"
tar -xOf "$work/catatonit.tar" ./usr/bin/catatonit >"$work/pause/usr/bin/catatonit"
tar -xOf "$work/catatonit.tar" ./usr/share/doc/catatonit/copyright >"$work/pause/usr/share/doc/catatonit/copyright"
chmod 0755 "$work/pause/usr/bin/catatonit"
scratch_tree "$work/pause"
rm -rf "$work/pause/etc/ssl"
scratch_tar "$work/pause.tar" "$work/pause"
oci pause "$pause_tag" "$work/pause.tar" 65535:65535 \
  "$(json_array /usr/bin/catatonit -P)" '[]' "$path_env"
rm -rf "$work/pause" "$work/pause.tar" "$work/catatonit.tar"
grep '^ca-certificates' "$out/operator-$version.packages.txt" >"$work/ca-certificates.packages.txt"
fi

# ---- CSI sidecars: static Go binaries in a scratch-like tree, entrypoint /<binary> as upstream ---
# Tag: the binary's own --version output, else DIR/VERSIONS ("<binary>\t<version>\t..."), else
# the version this release was tested with.
if [[ -n "$k8s_dir" ]]; then
  for s in csi-provisioner csi-resizer csi-node-driver-registrar livenessprobe; do
    bin="$k8s_dir/$s"
    [[ -x "$bin" ]] || { echo "images.sh: no $bin" >&2; exit 1; }
    tag=$(timeout 10 "$bin" --version 2>&1 | grep -o 'v[0-9]\+\.[0-9]\+\.[0-9]\+' | head -1 || true)
    source="$s --version"
    if [[ -z "$tag" && -f "$k8s_dir/VERSIONS" ]]; then
      tag=$(awk -F'\t' -v n="$s" '$1 == n {print $2}' "$k8s_dir/VERSIONS")
      source="$k8s_dir/VERSIONS"
    fi
    if [[ -z "$tag" ]]; then
      tag=${sidecar_default[$s]}
      source="images.sh default (no version flag, no VERSIONS file)"
    fi
    echo "images.sh: $s version $tag (from $source)"
    rm -rf "${work:?}/$s"
    mkdir -p "$work/$s"
    scratch_tree "$work/$s"
    install -m 0755 "$bin" "$work/$s/$s"
    scratch_tar "$work/$s.tar" "$work/$s"
    printf '# %s: static binary; its only Debian content is ca-certificates:\n' "$s" \
      >"$out/$s-$tag.packages.txt"
    cat "$work/ca-certificates.packages.txt" >>"$out/$s-$tag.packages.txt"
    oci "$s" "$tag" "$work/$s.tar" 0:0 "$(json_array "/$s")" '[]' "$path_env"
    rm -rf "${work:?}/$s" "$work/$s.tar"
  done
fi

if ((sidecars_only)) && [[ -f "$out/images.txt" ]]; then
  # keep the other images' references
  { grep -v -e '/csi-' -e '/livenessprobe:' "$out/images.txt" || true; printf '%s\n' "${refs[@]}"; } \
    >"$out/images.txt.tmp"
else
  printf '%s\n' "${refs[@]}" >"$out/images.txt.tmp"
fi
mv "$out/images.txt.tmp" "$out/images.txt"
echo "images.sh: ${#refs[@]} images in $out (list: $out/images.txt):"
printf '  %s\n' "${refs[@]}"
