#!/usr/bin/env bash
# ctest "images": builds the images with tools/images.sh from a build tree, unpacks the operator,
# agent and pause images' layers and runs their programs in a chroot (the operator's as uid
# 65532, like the image's User). Checks the OCI layout (index.json names, config) and images.txt.
# Exit 77 (skipped) when not root or when mmdebstrap cannot reach the Debian archive.
# Usage: images_test.sh --build-dir DIR --out DIR [--k8s-dir DIR]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build_dir='' out='' k8s_dir=''
while (($#)); do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --k8s-dir) k8s_dir=$2; shift 2 ;;
    *) echo "images_test: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$build_dir" && -n "$out" ]] || { echo "usage: images_test.sh --build-dir DIR --out DIR [--k8s-dir DIR]" >&2; exit 2; }

if ((EUID != 0)); then
  echo "images_test: SKIP: needs root (mmdebstrap root mode, chroot)"
  exit 77
fi
# The Debian mirror the host's apt uses (images.sh takes the same one).
mirror=$("$here/images.sh" --print-mirror) || exit 1
host=${mirror#*://}
host=${host%%/*}
port=80
[[ $mirror != https://* ]] || port=443
if ! timeout 20 bash -c "exec 3<>/dev/tcp/${host%%:*}/$port" 2>/dev/null; then
  echo "images_test: SKIP: the Debian archive ($mirror) is not reachable"
  exit 77
fi

version=$(sed -n 's/^project(meshstor VERSION \([0-9][0-9.]*\).*/\1/p' "$here/../CMakeLists.txt")
args=(--build-dir "$build_dir" --out "$out")
[[ -z "$k8s_dir" ]] || args+=(--k8s-dir "$k8s_dir")
log=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$work" "$log"' EXIT
if ! "$here/images.sh" "${args[@]}" 2>&1 | tee "$log"; then
  if grep -qE "Could not resolve|Failed to fetch|Temporary failure resolving|Unable to connect" "$log"; then
    echo "images_test: SKIP: mmdebstrap could not download from the Debian archive"
    exit 77
  fi
  echo "images_test: FAIL: images.sh failed" >&2
  exit 1
fi

fail() { echo "images_test: FAIL: $*" >&2; exit 1; }
ok() { echo "images_test: ok: $*"; }

# unpack <name> <tag>: the image's layers into $work/<name>/rootfs; prints nothing.
unpack() {
  local name=$1 tag=$2 d="$work/$1"
  local file="$out/$name-$tag.oci.tar"
  [[ -s "$file" ]] || fail "no $file"
  [[ -s "$out/$name-$tag.packages.txt" ]] || fail "no $out/$name-$tag.packages.txt"
  mkdir -p "$d/oci" "$d/rootfs"
  tar -xf "$file" -C "$d/oci"
  python3 - "$d/oci" "$name" "$tag" >"$d/layers" <<'EOF'
import json, sys, hashlib, os
d, name, tag = sys.argv[1:]
blob = lambda digest: os.path.join(d, "blobs", *digest.split(":"))
idx = json.load(open(os.path.join(d, "index.json")))
assert json.load(open(os.path.join(d, "oci-layout")))["imageLayoutVersion"] == "1.0.0"
(m,) = idx["manifests"]
ann = m["annotations"]
assert ann["io.containerd.image.name"] == f"docker.io/meshstor/{name}:{tag}", ann
assert ann["org.opencontainers.image.ref.name"] == tag, ann
def check(desc):
    data = open(blob(desc["digest"]), "rb").read()
    assert len(data) == desc["size"], desc
    assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"], desc
    return data
manifest = json.loads(check(m))
config = json.loads(check(manifest["config"]))
assert config["architecture"] == "amd64" and config["os"] == "linux", config
assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])
for layer in manifest["layers"]:
    check(layer)
    print(blob(layer["digest"]))
c = config["config"]
print("config", json.dumps({"User": c["User"], "Entrypoint": c["Entrypoint"], "Env": c["Env"]}),
      file=sys.stderr)
EOF
  while read -r layer; do tar -xzf "$layer" -C "$d/rootfs"; done <"$d/layers"
}

# run <rootfs> <user> <command...>: in a chroot with /proc, as the given uid; must exit 0
# (or $RUN_OK_RC).
run() {
  local root=$1 user=$2
  shift 2
  local rc=0
  mkdir -p "$root/proc"
  mount -t proc proc "$root/proc"
  if [[ "$user" == 0 ]]; then
    chroot "$root" "$@" >"$work/out" 2>&1 || rc=$?
  else
    chroot --userspec="$user:$user" "$root" "$@" >"$work/out" 2>&1 || rc=$?
  fi
  umount "$root/proc"
  head -3 "$work/out" | sed 's/^/    /'
  ((rc == 0 || rc == ${RUN_OK_RC:-0})) || fail "$* (uid $user) exited with $rc: $(cat "$work/out")"
  ok "$* (uid $user)"
}

grep -qx "meshstor/operator:$version" "$out/images.txt" || fail "images.txt lacks meshstor/operator:$version"
grep -qx "meshstor/agent:$version" "$out/images.txt" || fail "images.txt lacks meshstor/agent:$version"
grep -qx "meshstor/pause:3.10" "$out/images.txt" || fail "images.txt lacks meshstor/pause:3.10"

unpack operator "$version"
r="$work/operator/rootfs"
grep -q '^meshstor:x:65532:65532:' "$r/etc/passwd" || fail "operator image has no uid 65532"
run "$r" 65532 /usr/local/bin/meshstor-operator --help
run "$r" 65532 /usr/local/bin/meshstor-csi-shim --help
[[ -s "$r/etc/ssl/certs/ca-certificates.crt" ]] || fail "operator image has no CA bundle"
rm -rf "$work/operator"

unpack agent "$version"
r="$work/agent/rootfs"
run "$r" 0 /usr/local/bin/meshstor-agent --help
run "$r" 0 /usr/local/bin/meshstor-csi-shim --help
run "$r" 0 /usr/local/bin/meshstor-sys --help
run "$r" 0 mdadm --version
run "$r" 0 mkfs.xfs -V
run "$r" 0 xfs_growfs -V
run "$r" 0 modprobe --version
[[ ! -e "$r/etc/mdadm/mdadm.conf" ]] || fail "agent image has an mdadm.conf"
rm -rf "$work/agent"

# pause: catatonit -P as PID 1 of a new PID namespace, stopped by SIGTERM.
unpack pause 3.10
r="$work/pause/rootfs"
rc=0
timeout -s TERM 2 unshare --pid --fork chroot --userspec=65535:65535 "$r" /usr/bin/catatonit -P || rc=$?
# timeout's 124: catatonit was still running (pausing) when the time ran out.
((rc == 124)) || fail "catatonit -P exited with $rc before it was stopped"
ok "catatonit -P pauses as PID 1 until SIGTERM"

if [[ -n "$k8s_dir" ]]; then
  for s in csi-provisioner csi-resizer csi-node-driver-registrar livenessprobe; do
    line=$(grep "^meshstor/$s:" "$out/images.txt") || fail "images.txt lacks meshstor/$s"
    unpack "$s" "${line##*:}"
    r="$work/$s/rootfs"
    [[ -x "$r/$s" && -s "$r/etc/ssl/certs/ca-certificates.crt" && -d "$r/tmp" ]] || fail "$s image tree"
    # Go's flag package exits 2 after printing the usage for --help (some sidecars 0).
    RUN_OK_RC=2 run "$r" 0 "/$s" --help
    rm -rf "${work:?}/$s"
  done
fi
echo "images_test: PASS"
