#!/usr/bin/env python3
"""End-to-end test of the meshstor-operator binary against the API test server.

Starts meshstor-test-apiserver, registers three nodes with one drive each, runs two operator
replicas (leader election), and plays the node agents in this process: they act on
spec.members and write status.partitions and the consumer's MD status, as the real agents do.
Goes through create -> Synced, degrade -> replace, leader hand-over and delete, checking
/metrics of the active replica along the way. The server enforces the RBAC of the manifests
(manifests/base/rbac-*.yaml): the operators authenticate as the controller pod's ServiceAccount,
the played agents as the node pod's; any request refused (401/403) fails the test. Exits
non-zero with a message on failure.
"""
import argparse
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

GROUP = "/apis/csi.meshstor.io/v1alpha1"


def now_rfc3339(offset=0):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=offset)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


NAMESPACE = "meshstor-system"
ADMIN, CONTROLLER, NODE = "admin-token", "controller-token", "node-token"


class Api:
    def __init__(self, url, token=ADMIN):
        self.url = url
        self.token = token

    def call(self, method, path, body=None, content_type="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(pred, what, timeout=40):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def metric(port, series):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(series + " "):
                    return float(line.split()[-1])
    except OSError:
        return None
    return None


class Agents(threading.Thread):
    """Simulated node agents for every volume (the contract in operator/README.md)."""

    def __init__(self, api):
        super().__init__(daemon=True)
        self.api = api
        self.down = set()
        self.missing_for = 0
        self.stop = False

    def step(self, v):
        spec, status = v["spec"], v.setdefault("status", {})
        parts = {p["index"]: p for p in status.get("partitions", [])}
        before = json.dumps(status, sort_keys=True)
        members = spec.get("members", [])
        for m in members:
            p = parts.get(m["index"])
            if m["state"] == "retired":
                if p is not None and m["node"] not in self.down:
                    del parts[m["index"]]
                continue
            if m["node"] in self.down:
                if p is not None and p["state"] != "Missing":
                    p["state"] = "Missing"
                    p["missingSince"] = now_rfc3339(self.missing_for)
                continue
            if p is None:
                parts[m["index"]] = {
                    "index": m["index"], "nodeID": m["node"], "drive": m["drive"],
                    "nvmeofNamespaceID": m["namespaceID"], "state": "Created",
                    "sizeBytes": m["sizeBytes"], "updatedAt": now_rfc3339()}
            elif p["state"] in ("Created", "Syncing", "Missing"):
                p["state"] = "Synced" if p["state"] == "Syncing" or (
                    p["state"] == "Created" and not status.get("nodeName")
                    and "replaces" not in m) else "Syncing"
                p.pop("missingSince", None)
            elif p is not None:
                p["sizeBytes"] = m["sizeBytes"]
        status["partitions"] = [parts[i] for i in sorted(parts)]
        present = [m for m in members if m["state"] == "present"]
        consumer = spec.get("consumerNode", "")
        if v["metadata"].get("deletionTimestamp") and not present:
            status.pop("nodeName", None)
            status.pop("stagedPath", None)
        elif any(m["node"] == consumer for m in present) and any(
                p["state"] == "Synced" for p in parts.values()):
            status["nodeName"] = consumer
            status["stagedPath"] = "/staging/" + v["metadata"]["name"]
        if json.dumps(status, sort_keys=True) != before:
            self.api.call("PUT", GROUP + "/meshstorvolumes/%s/status" % v["metadata"]["name"], v)

    def run(self):
        while not self.stop:
            code, lst = self.api.call("GET", GROUP + "/meshstorvolumes")
            if code == 200:
                for v in lst.get("items", []):
                    self.step(v)
            time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--operator", required=True)
    ap.add_argument("--apiserver", required=True)
    ap.add_argument("--crds", required=True)
    args = ap.parse_args()
    procs = []
    work = tempfile.mkdtemp(prefix="meshstor-op-e2e-")
    try:
        rbac = os.path.join(os.path.dirname(os.path.abspath(args.crds)), "manifests", "base")
        server = subprocess.Popen([args.apiserver, "--port", "0", "--crd-dir", args.crds,
                                   "--print-port",
                                   "--rbac-file", os.path.join(rbac, "rbac-operator.yaml"),
                                   "--rbac-file", os.path.join(rbac, "rbac-agent.yaml"),
                                   "--rbac-namespace", NAMESPACE,
                                   "--token", ADMIN + "=admin,system:masters",
                                   "--token", CONTROLLER + "=system:serviceaccount:%s:"
                                   "meshstor-controller" % NAMESPACE,
                                   "--token", NODE + "=system:serviceaccount:%s:meshstor-node"
                                   % NAMESPACE], stdout=subprocess.PIPE,
                                  stderr=open(os.path.join(work, "apiserver.log"), "w"))
        procs.append(server)
        port = int(server.stdout.readline().strip())
        api = Api("http://127.0.0.1:%d" % port)
        kubeconfig = os.path.join(work, "kubeconfig")
        with open(kubeconfig, "w") as f:
            f.write("apiVersion: v1\nkind: Config\n"
                    "clusters: [{name: t, cluster: {server: \"%s\"}}]\n"
                    "users: [{name: t, user: {token: %s}}]\n"
                    "contexts: [{name: t, context: {cluster: t, user: t}}]\n"
                    "current-context: t\n" % (api.url, CONTROLLER))
        assert api.call("POST", "/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})[0] == 201
        for n in ("node-a", "node-b", "node-c"):
            assert api.call("POST", "/api/v1/nodes", {
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": n}})[0] == 201
            name = n + "-nvme0n1"
            assert api.call("POST", GROUP + "/meshstornodedevices", {
                "apiVersion": "csi.meshstor.io/v1alpha1", "kind": "MeshStorNodeDevice",
                "metadata": {"name": name}, "spec": {"nodeName": n, "device": "nvme0n1"}})[0] == 201
            code, _ = api.call("PATCH", GROUP + "/meshstornodedevices/%s/status" % name, {
                "status": {"sectorSize": 4096, "biggestFreeExtentBytes": 100 << 30,
                           "updatedAt": now_rfc3339()}}, "application/merge-patch+json")
            assert code == 200, code

        ports = {}
        for ident in ("op-a", "op-b"):
            ports[ident] = free_port()
            p = subprocess.Popen([args.operator, "--kubeconfig", kubeconfig, "--identity", ident,
                                  "--lease-namespace", NAMESPACE, "--events-namespace",
                                  NAMESPACE, "--metrics-address",
                                  "127.0.0.1:%d" % ports[ident], "--lease-duration", "4s",
                                  "--renew-deadline", "3s", "--retry-period", "500ms"],
                                 stderr=open(os.path.join(work, ident + ".log"), "w"))
            procs.append(p)
        operators = dict(zip(("op-a", "op-b"), procs[1:]))
        eventually(lambda: sum(metric(ports[i], "meshstor_operator_leader") == 1
                               for i in ports) == 1, "one leader")
        leader = [i for i in ports if metric(ports[i], "meshstor_operator_leader") == 1][0]
        other = "op-b" if leader == "op-a" else "op-a"
        print("leader:", leader)

        agents = Agents(Api(api.url, NODE))
        agents.start()
        vol = GROUP + "/meshstorvolumes/pvc-e2e"
        assert api.call("POST", GROUP + "/meshstorvolumes", {
            "apiVersion": "csi.meshstor.io/v1alpha1", "kind": "MeshStorVolume",
            "metadata": {"name": "pvc-e2e"},
            "spec": {"capacityBytes": 1 << 30, "replicaCount": 2, "stripeWidth": 1,
                     "memberMissingTimeout": 60, "sectorSize": 4096,
                     "consumerNode": "node-a"}})[0] == 201

        def phase():
            code, v = api.call("GET", vol)
            return v.get("status", {}).get("phase") if code == 200 else None

        eventually(lambda: phase() == "Synced", "Synced")
        eventually(lambda: metric(ports[leader], 'meshstor_operator_volumes{phase="Synced"}') == 1,
                   "Synced in the leader's metrics")
        assert metric(ports[other], 'meshstor_operator_volumes{phase="Synced"}') is None, \
            "the standby replica must not reconcile"
        _, v = api.call("GET", vol)
        peer = v["spec"]["members"][1]["node"]
        print("synced; peer:", peer)

        agents.missing_for = 61
        agents.down = {peer}

        def replaced():
            code, v = api.call("GET", vol)
            ms = v["spec"]["members"]
            return (len(ms) == 3 and ms[1]["state"] == "retired"
                    and v["status"].get("phase") == "Synced")

        eventually(replaced, "replacement")
        eventually(lambda: metric(ports[leader], "meshstor_operator_replacements_total") == 1,
                   "replacement counted")
        print("replaced")
        agents.down = set()

        operators[leader].send_signal(signal.SIGTERM)
        operators[leader].wait(timeout=20)
        eventually(lambda: metric(ports[other], "meshstor_operator_leader") == 1, "hand-over")
        print("hand-over to", other)
        code, _ = api.call("DELETE", vol)
        assert code in (200, 202), code
        eventually(lambda: api.call("GET", vol)[0] == 404, "deletion")
        eventually(lambda: metric(ports[other], 'meshstor_operator_volumes{phase="Synced"}') == 0,
                   "metrics after deletion")
        agents.stop = True
        _, log = api.call("GET", "/testing/requests")
        refused = ["%s %s -> %d" % (r["method"], r["path"], r["status"])
                   for r in log.get("items", []) if r["status"] in (401, 403)]
        assert not refused, "requests refused by the manifests' RBAC: %s" % refused[:10]
        print("PASS (%d requests, none refused by RBAC)" % len(log.get("items", [])))
        return 0
    except AssertionError as e:
        print("FAIL:", e, "(logs in %s)" % work, file=sys.stderr)
        for name in ("op-a.log", "op-b.log"):
            path = os.path.join(work, name)
            if os.path.exists(path):
                with open(path) as f:
                    tail = f.read().splitlines()[-15:]
                print("--- " + name, *tail, sep="\n", file=sys.stderr)
        return 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    sys.exit(main())
