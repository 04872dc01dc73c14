#!/usr/bin/env bash
# Checks crds/ against a real Kubernetes API server (1.28+):
#   1. applies both CRDs and waits until they are Established;
#   2. applies every crds/examples/valid/*.yaml (and its status through the status subresource);
#   3. sends every crds/examples/invalid/*.yaml the way its header says (create, update-of,
#      subresource: status) and requires the server to reject it with the expected text;
#   4. deletes the example objects (and, with --delete-crds, the CRDs).
# Usage: tools/check-crds-live.sh --kubeconfig <file> [--kubectl <path>] [--delete-crds]
#        [--validate=false]   (passed to kubectl; needed for servers without /openapi, such as
#                              tools/apiserver — the server still validates against the schema)
# Touches only objects named in crds/examples; refuses to run if one already exists.
set -euo pipefail
cd "$(dirname "$0")/.."

kubeconfig="" kubectl_bin="kubectl" delete_crds=0 extra=()
while (( $# )); do
  case "$1" in
    --kubeconfig) kubeconfig="$2"; shift 2 ;;
    --kubectl) kubectl_bin="$2"; shift 2 ;;
    --delete-crds) delete_crds=1; shift ;;
    --validate=false) extra+=(--validate=false); shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -n "$kubeconfig" ]] || { echo "--kubeconfig is required" >&2; exit 2; }
k() {
  case "$1" in
    apply|create|replace) "$kubectl_bin" --kubeconfig "$kubeconfig" "$@" ${extra[@]+"${extra[@]}"} ;;
    *) "$kubectl_bin" --kubeconfig "$kubeconfig" "$@" ;;
  esac
}

header() { sed -n "s/^# $2: //p" "$1" | head -n1; }
kind_of() { sed -n 's/^kind: //p' "$1" | head -n1; }
name_of() { awk '/^metadata:/{m=1;next} m && /^  name:/{print $2; exit}' "$1"; }
resource_of() {
  case "$(kind_of "$1")" in
    MeshStorVolume) echo meshstorvolumes.csi.meshstor.io ;;
    MeshStorNodeDevice) echo meshstornodedevices.csi.meshstor.io ;;
    *) echo "unknown kind in $1" >&2; exit 1 ;;
  esac
}

failures=0 checks=0
pass() { checks=$((checks + 1)); echo "  ok    $1"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "  FAIL  $1" >&2; }

cleanup() {
  for f in crds/examples/valid/*.yaml; do
    local res name
    res=$(resource_of "$f"); name=$(name_of "$f")
    if k get "$res" "$name" >/dev/null 2>&1; then
      k patch "$res" "$name" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null || true
      k delete "$res" "$name" --wait=true >/dev/null || true
    fi
  done
  if (( delete_crds )); then k delete -f crds/meshstorvolumes.yaml -f crds/meshstornodedevices.yaml; fi
}

echo "CRDs:"
k apply -f crds/meshstorvolumes.yaml -f crds/meshstornodedevices.yaml
k wait --for=condition=Established --timeout=60s \
  crd/meshstorvolumes.csi.meshstor.io crd/meshstornodedevices.csi.meshstor.io

for f in crds/examples/valid/*.yaml; do
  if k get "$(resource_of "$f")" "$(name_of "$f")" >/dev/null 2>&1; then
    echo "refusing to run: $(resource_of "$f")/$(name_of "$f") already exists" >&2
    exit 1
  fi
done
trap cleanup EXIT

echo "Valid examples (must be accepted):"
for f in crds/examples/valid/*.yaml; do
  if out=$(k create -f "$f" 2>&1); then pass "create $f"; else fail "create $f: $out"; continue; fi
  if grep -q '^status:' "$f"; then
    if out=$(k replace --subresource=status -f "$f" 2>&1); then pass "status of $f"
    else fail "status of $f: $out"; fi
  fi
done

echo "Invalid examples (must be rejected):"
for f in crds/examples/invalid/*.yaml; do
  expect=$(header "$f" expect-error) base=$(header "$f" update-of) sub=$(header "$f" subresource)
  if [[ -n "$base" ]]; then
    if [[ "$sub" == "status" ]]; then
      out=$(k replace --subresource=status -f "$f" 2>&1) && rc=0 || rc=$?
    else
      out=$(k replace -f "$f" 2>&1) && rc=0 || rc=$?
    fi
  else
    out=$(k create -f "$f" 2>&1) && rc=0 || rc=$?
    # A create that wrongly succeeded must not linger.
    if (( rc == 0 )); then k delete -f "$f" --wait=false >/dev/null 2>&1 || true; fi
  fi
  if (( rc == 0 )); then
    fail "$f was accepted"
  elif [[ "$out" != *"$expect"* ]]; then
    fail "$f rejected, but without \"$expect\": $out"
  else
    pass "$f rejected: $(echo "$out" | tr '\n' ' ' | cut -c1-160)"
  fi
done

echo "Printer columns:"
k get msvol -o wide
k get msnd -o wide

echo "check-crds-live: $checks checks, $failures failed"
(( failures == 0 ))
