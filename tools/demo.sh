#!/usr/bin/env bash
# The main job, as far as it exists today: builds MeshStor, checks the CRD examples offline,
# starts a Kubernetes API (the in-repo test server with our CRDs, or a real cluster given with
# --kubeconfig), runs two operator replicas (one elected), an agent and a CSI shim against it,
# shows their health and metrics, hands leadership over, and stops everything it started.
# The VM-lab demo (a real replicated volume on real kernels) replaces the middle part when the
# lab lands.
# Usage: tools/demo.sh [--kubeconfig FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

kubeconfig=""
if [[ "${1:-}" == "--kubeconfig" ]]; then kubeconfig=$2; fi

tools/setup-deps.sh
echo "== Building (build/release)"
cmake -S . -B build/release -G Ninja -DMESHSTOR_SANITIZE=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >/dev/null
cmake --build build/release -j"$(nproc)" --target meshstor-operator meshstor-agent \
  meshstor-csi-shim meshstor-validate meshstor-test-apiserver
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

op_a=$(free_port); op_b=$(free_port); agent=$(free_port); shim=$(free_port)
echo "== Starting operator-a, operator-b (leader election), an agent and a CSI shim"
start operator_a $bin/operator/meshstor-operator --identity operator-a --lease-namespace default \
  --lease-duration 4s --renew-deadline 3s --retry-period 500ms --metrics-address "127.0.0.1:$op_a"
sleep 1
start operator_b $bin/operator/meshstor-operator --identity operator-b --lease-namespace default \
  --lease-duration 4s --renew-deadline 3s --retry-period 500ms --metrics-address "127.0.0.1:$op_b"
# The agent on simulated nodes (in-memory kernel layer): this machine's disks are never touched.
start agent $bin/agent/meshstor-agent --node-name demo-node --simulate 3 \
  --metrics-address "127.0.0.1:$agent"
start shim $bin/csi-shim/meshstor-csi-shim --mode controller --endpoint "unix://$work/csi.sock" \
  --metrics-address "127.0.0.1:$shim"
for p in $op_a $op_b $agent $shim; do
  wait_ready "$p" || { echo "port $p never became ready" >&2; cat "$work"/*.log >&2; exit 1; }
done
for p in $op_a $agent $shim; do
  echo "-- http://127.0.0.1:$p/readyz?verbose"; curl -s "http://127.0.0.1:$p/readyz?verbose"
done
leader_of() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^meshstor_operator_leader /{print $2}'; }
echo "-- leader gauge: operator-a=$(leader_of $op_a) operator-b=$(leader_of $op_b)"

echo "== Stopping operator-a (it releases the Lease); operator-b takes over"
kill -TERM "$pid_operator_a"
for _ in $(seq 50); do [[ "$(leader_of $op_b)" == "1" ]] && break; sleep 0.2; done
echo "-- leader gauge: operator-b=$(leader_of $op_b)"
[[ "$(leader_of $op_b)" == "1" ]] || { echo "operator-b did not take over" >&2; exit 1; }
echo "-- operator-b log:"; cat "$work/operator_b.log"
echo "== Demo finished"
