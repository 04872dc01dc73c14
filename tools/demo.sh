#!/usr/bin/env bash
# The main job: builds MeshStor, checks the CRD examples offline, then
#  1. the control plane on simulated nodes: starts a Kubernetes API (the in-repo test server
#     with our CRDs, or a real cluster given with --kubeconfig), two operator replicas (one
#     elected), agents for 3 simulated nodes (in-memory kernel layer) and the CSI shim
#     (controller mode, and node mode for one node); with the test server it registers the
#     nodes, creates a volume and stages it through the CSI sockets (meshstor-csi-client), and
#     shows it placed, Synced and mounted; shows health and metrics and a leader hand-over;
#  2. the same on real kernels in the VM lab (root, qemu): scenario "system" — the operator and
#     the API test server on this machine, agents on 3 Debian-kernel VMs with NVMe drives: a
#     replicated volume over NVMe/TCP + MD RAID1 + XFS, a node powered off and replaced after
#     memberMissingTimeout, checksums, deletion; then scenario "csi" — a volume's whole CSI
#     life cycle through the shim's sockets (stage, publish rw/ro, write, read back, online
#     expansion, unpublish, unstage, delete). Skipped with --no-lab.
# Everything it started is stopped at the end.
# Usage: tools/demo.sh [--kubeconfig FILE] [--no-lab]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

kubeconfig=""
lab=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --kubeconfig) kubeconfig=$2; shift 2 ;;
    --no-lab) lab=0; shift ;;
    *) echo "usage: tools/demo.sh [--kubeconfig FILE] [--no-lab]" >&2; exit 2 ;;
  esac
done
test_server=0

tools/setup-deps.sh
echo "== Building (build/release)"
cmake -S . -B build/release -G Ninja -DMESHSTOR_SANITIZE=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >/dev/null
cmake --build build/release -j"$(nproc)" --target meshstor-operator meshstor-agent \
  meshstor-csi-shim meshstor-csi-client meshstor-validate meshstor-test-apiserver meshstor-sys
bin=build/release

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== CRD examples, checked offline with the codecs the binaries use"
$bin/tools/meshstor-validate crds/examples/valid/*.yaml
if $bin/tools/meshstor-validate crds/examples/invalid/*.yaml >"$work/invalid.txt"; then
  echo "an invalid example was accepted" >&2; exit 1
fi
grep -c '^error' "$work/invalid.txt" | xargs -I{} echo "{} invalid examples rejected (the" \
  "update-only ones are rejected by the API server's transition rules)"

if [[ -z "$kubeconfig" ]]; then
  echo "== Starting the API test server with crds/"
  $bin/tools/apiserver/meshstor-test-apiserver --port 0 --crd-dir crds --print-port \
    >"$work/apiserver.port" 2>"$work/apiserver.log" &
  pids+=($!)
  for _ in $(seq 50); do [[ -s "$work/apiserver.port" ]] && break; sleep 0.1; done
  port=$(head -n1 "$work/apiserver.port")
  kubeconfig=$work/kubeconfig
  cat >"$kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters: [{name: demo, cluster: {server: "http://127.0.0.1:$port"}}]
users: [{name: demo, user: {token: demo}}]
contexts: [{name: demo, context: {cluster: demo, user: demo}}]
current-context: demo
KCFG
  echo "API test server on http://127.0.0.1:$port"
  test_server=1
else
  echo "== Using the cluster of $kubeconfig"
fi

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
start() {  # start <name> <binary> <args...>
  local name=$1; shift
  "$@" --kubeconfig "$kubeconfig" >"$work/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
}
wait_ready() {  # wait_ready <port>
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

op_a=$(free_port); op_b=$(free_port); agent=$(free_port); shim=$(free_port); shim_n=$(free_port)
echo "== Starting operator-a, operator-b (leader election), an agent and the CSI shim"
start operator_a $bin/operator/meshstor-operator --identity operator-a --lease-namespace default \
  --lease-duration 4s --renew-deadline 3s --retry-period 500ms --metrics-address "127.0.0.1:$op_a"
sleep 1
start operator_b $bin/operator/meshstor-operator --identity operator-b --lease-namespace default \
  --lease-duration 4s --renew-deadline 3s --retry-period 500ms --metrics-address "127.0.0.1:$op_b"
# The agent on simulated nodes (in-memory kernel layer): this machine's disks are never touched.
# kubelet's directory of this demo is $work/kubelet (the agent mounts only below it).
start agent $bin/agent/meshstor-agent --node-name demo-node --simulate 3 \
  --kubelet-dir "$work/kubelet" --metrics-address "127.0.0.1:$agent"
start shim $bin/csi-shim/meshstor-csi-shim --mode controller --endpoint "unix://$work/csi.sock" \
  --metrics-address "127.0.0.1:$shim"
# The shim's node mode for simulated node 1, as the DaemonSet would run it beside its agent.
start shim_node $bin/csi-shim/meshstor-csi-shim --mode node --node-name demo-node-1 \
  --endpoint "unix://$work/csi-node.sock" --metrics-address "127.0.0.1:$shim_n"
for p in $op_a $op_b $agent $shim $shim_n; do
  wait_ready "$p" || { echo "port $p never became ready" >&2; cat "$work"/*.log >&2; exit 1; }
done
for p in $op_a $agent $shim; do
  echo "-- http://127.0.0.1:$p/readyz?verbose"; curl -s "http://127.0.0.1:$p/readyz?verbose"
done
leader_of() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^meshstor_operator_leader /{print $2}'; }
echo "-- leader gauge: operator-a=$(leader_of $op_a) operator-b=$(leader_of $op_b)"

if [[ $test_server == 1 ]]; then
  api="http://127.0.0.1:$port"
  vols="$api/apis/csi.meshstor.io/v1alpha1/meshstorvolumes"
  echo "== Registering the simulated nodes (as kubelets would) and creating a volume"
  for n in demo-node-1 demo-node-2 demo-node-3; do
    curl -fs -X POST -H 'Content-Type: application/json' "$api/api/v1/nodes" -d \
      "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"$n\"},
        \"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}" >/dev/null
  done
  for _ in $(seq 100); do
    [[ $(curl -fs "$api/apis/csi.meshstor.io/v1alpha1/meshstornodedevices" |
      python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))') -ge 6 ]] && break
    sleep 0.2
  done
  echo "-- drives the agents published (MeshStorNodeDevice):"
  curl -fs "$api/apis/csi.meshstor.io/v1alpha1/meshstornodedevices" | python3 -c '
import json, sys
for d in json.load(sys.stdin)["items"]:
    s = d["status"]
    print("  %-22s %-10s %s  %d GiB, %d-byte sectors, free %d GiB" % (d["metadata"]["name"],
          d["spec"]["nodeName"], s["model"], s["sizeBytes"] >> 30, s["sectorSize"],
          s["biggestFreeExtentBytes"] >> 30))'
  # Through the CSI sockets, as external-provisioner and then kubelet on demo-node-1 would.
  csi() { $bin/tools/csi-client/meshstor-csi-client --retry --timeout 60s --endpoint "$@"; }
  # A pvc-<uuid> name, as external-provisioner sends, is its own volume ID (any other name maps to
  # msv-<hash>, common/api/v1alpha1/volume_id.h).
  demo_vol=pvc-de300000-0000-4000-8000-000000000001
  echo "-- CreateVolume $demo_vol (10 GiB, 2 copies):"
  csi "unix://$work/csi.sock" create-volume --name "$demo_vol" --capacity 10Gi \
    --param replicaCount=2 | sed 's/^/  /'
  echo "-- NodeStageVolume on demo-node-1:"
  csi "unix://$work/csi-node.sock" node-stage --volume-id "$demo_vol" \
    --staging-path "$work/kubelet/$demo_vol/globalmount" | sed 's/^/  /'
  echo "-- NodeGetInfo: $(csi "unix://$work/csi-node.sock" node-info)"
  echo "-- $demo_vol after staging on demo-node-1 (placement by the operator, the rest by agents):"
  curl -fs "$vols/$demo_vol" | python3 -c '
import json, sys
v = json.load(sys.stdin)
s = v.get("status", {})
print("  phase %s, mdState %s, ready %s, node %s, staged at %s" % (s.get("phase"),
      s.get("mdState"), s.get("ready"), s.get("nodeName"), s.get("stagedPath")))
for m in v["spec"].get("members", []):
    p = next((p for p in s.get("partitions", []) if p["index"] == m["index"]), {})
    print("  member %d: %-12s %-8s %-6s nsid %-2s -> %s" % (m["index"], m["node"], m["drive"],
          m["role"], m.get("namespaceID"), p.get("state")))
for c in s.get("conditions", []):
    print("  condition %s=%s (%s)" % (c["type"], c["status"], c["reason"]))
if not s.get("stagedPath"):
    sys.exit("the demo volume was not staged")'
  echo "-- operator metrics:"
  curl -fs "http://127.0.0.1:$op_a/metrics" | grep -E '^meshstor_operator_(volumes|members|degraded)' | head -12
fi

echo "== Stopping operator-a (it releases the Lease); operator-b takes over"
kill -TERM "$pid_operator_a"
for _ in $(seq 50); do [[ "$(leader_of $op_b)" == "1" ]] && break; sleep 0.2; done
echo "-- leader gauge: operator-b=$(leader_of $op_b)"
[[ "$(leader_of $op_b)" == "1" ]] || { echo "operator-b did not take over" >&2; exit 1; }
echo "-- operator-b log (last lines):"; tail -n 5 "$work/operator_b.log"

if [[ $lab == 1 ]]; then
  echo "== The same on real kernels: VM lab scenarios 'system' and 'csi' (3 Debian-kernel VMs,"
  echo "   about 4 + 3 min)"
  if [[ $(id -u) != 0 ]]; then
    echo "(skipped: the VM lab needs root)"
  else
    e2e/lab/lab.py run system --workdir "$work/lab" --bin $bin/agent/meshstor-agent \
      --bin $bin/agent/sys/meshstor-sys --apiserver $bin/tools/apiserver/meshstor-test-apiserver \
      --operator $bin/operator/meshstor-operator
    e2e/lab/lab.py run csi --workdir "$work/lab-csi" --bin $bin/agent/meshstor-agent \
      --bin $bin/agent/sys/meshstor-sys --bin $bin/csi-shim/meshstor-csi-shim \
      --bin $bin/tools/csi-client/meshstor-csi-client \
      --apiserver $bin/tools/apiserver/meshstor-test-apiserver \
      --operator $bin/operator/meshstor-operator
  fi
fi
echo "== Demo finished"
