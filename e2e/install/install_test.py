#!/usr/bin/env python3
"""The install, checked against a real kube-apiserver with RBAC.

1. `kubectl kustomize manifests/` (and every overlay) renders.
2. A real kube-apiserver (etcd + kube-apiserver, RBAC on) accepts every rendered object in a
   server-side dry run, then `kubectl apply -k manifests/` installs it.
3. Each binary runs with exactly the arguments of its container in the rendered manifests (only
   the metrics address, the socket path and --kubeconfig differ) under its pod's ServiceAccount:
   two operator replicas, the CSI shim in controller and node mode, the agent on 3 simulated
   nodes, and the real external-provisioner and external-resizer sidecars.
4. A PVC of StorageClass meshstor-replicated is provisioned by external-provisioner (the
   scheduler's selected-node annotation set as the scheduler would), staged, published,
   expanded through external-resizer, unpublished, unstaged and deleted (kubelet's CSI calls
   made with meshstor-csi-client), and nothing is left.
5. No process was ever refused a request: any 403 / "forbidden" in any log fails the test.

Exit 77 (skipped) when no Kubernetes binaries are found (MESHSTOR_K8S_BIN, see README).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import kube_cluster

try:
    import yaml
except ImportError:
    sys.exit("python3-yaml is missing (tools/setup-deps.sh installs it)")

K8S_NAMES = ("kube-apiserver", "kube-controller-manager", "kubectl", "csi-provisioner",
             "csi-resizer")
NAMESPACE = "meshstor-system"
T0 = time.time()


def log(msg):
    print("[%6.1fs] %s" % (time.time() - T0, msg), flush=True)


def render(kubectl, path):
    r = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("kubectl kustomize %s failed: %s" % (path, r.stderr.strip()))
    return r.stdout, [d for d in yaml.safe_load_all(r.stdout) if d]


def container(objects, kind, name, cname):
    for o in objects:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            for c in o["spec"]["template"]["spec"]["containers"]:
                if c["name"] == cname:
                    return c
    raise SystemExit("no container %s in %s/%s" % (cname, kind, name))


def args_of(c, env, replace):
    """The container's args with $(VAR) expanded from `env`, flags in `replace` overridden."""
    out = []
    for a in c.get("args", []):
        a = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a)
        flag = a.split("=", 1)[0]
        if flag in replace:
            continue
        out.append(a)
    for flag, value in replace.items():
        if value is not None:
            out.append("%s=%s" % (flag, value))
    return out


class Procs:
    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = {}

    def start(self, name, argv, env=None):
        logf = open(os.path.join(self.workdir, name + ".log"), "w")
        e = dict(os.environ)
        e.update(env or {})
        self.procs[name] = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=e)
        log("started %s: %s" % (name, " ".join(os.path.basename(argv[0:1][0]).split() + argv[1:])))

    def check_alive(self):
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError("%s exited with %d; log: %s" % (name, p.returncode,
                                                                    self.tail(name)))

    def tail(self, name, n=15):
        with open(os.path.join(self.workdir, name + ".log"), errors="replace") as f:
            return "".join(f.readlines()[-n:])

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def forbidden(self):
        hits = []
        for name in self.procs:
            with open(os.path.join(self.workdir, name + ".log"), errors="replace") as f:
                for line in f:
                    if re.search(r"forbidden|\b403\b", line, re.IGNORECASE):
                        hits.append("%s: %s" % (name, line.strip()[:300]))
        return hits


def wait_for(what, check, timeout, procs=None, interval=0.5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if procs:
            procs.check_alive()
        try:
            got = check()
            if got:
                return got
        except (RuntimeError, KeyError, ValueError) as e:
            last = e
        time.sleep(interval)
    raise RuntimeError("timed out after %d s waiting for %s (last: %s)" % (timeout, what, last))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    root = kube_cluster.repo_root()
    b = os.path.abspath(a.build_dir)
    k8s = kube_cluster.find_k8s_bin(b, K8S_NAMES)
    if k8s is None:
        print("SKIP: no Kubernetes binaries (set MESHSTOR_K8S_BIN to a directory with "
              "%s)" % ", ".join(K8S_NAMES))
        return kube_cluster.SKIP
    kubectl = os.path.join(k8s, "kubectl")
    bins = {n: os.path.join(b, p) for n, p in {
        "meshstor-operator": "operator/meshstor-operator",
        "meshstor-agent": "agent/meshstor-agent",
        "meshstor-csi-shim": "csi-shim/meshstor-csi-shim",
        "meshstor-csi-client": "tools/csi-client/meshstor-csi-client"}.items()}
    workdir = a.workdir or tempfile.mkdtemp(prefix="meshstor-install-")
    os.makedirs(workdir, exist_ok=True)

    # 1. Rendering.
    manifests = os.path.join(root, "manifests")
    text, objects = render(kubectl, manifests)
    log("manifests/ renders: %d objects" % len(objects))
    overlays = os.path.join(manifests, "overlays")
    overlay_objects = {}
    for name in sorted(os.listdir(overlays)) if os.path.isdir(overlays) else []:
        _, o = render(kubectl, os.path.join(overlays, name))
        overlay_objects[name] = o
        log("overlays/%s renders: %d objects" % (name, len(o)))
    rendered = os.path.join(workdir, "rendered.yaml")
    with open(rendered, "w") as f:
        f.write(text)

    cluster = kube_cluster.Cluster(os.path.join(workdir, "cluster"), k8s, log)
    procs = Procs(workdir)
    try:
        cluster.start()
        cluster.start_controller_manager()  # binds PVCs to PVs, reclaims them
        # 2. Server-side dry run of everything (CRDs and the namespace first exist for real, so
        # that the objects that need them can be checked too), then the install as a user does it.
        crds_and_ns = [o for o in objects if o["kind"] in ("CustomResourceDefinition", "Namespace")]
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(crds_and_ns))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                        "crd/meshstorvolumes.csi.meshstor.io",
                        "crd/meshstornodedevices.csi.meshstor.io")
        out = cluster.kubectl("apply", "--dry-run=server", "-f", rendered)
        log("server-side dry run accepted %d objects" % len(out.strip().splitlines()))
        # The overlays too, but for the Prometheus Operator's kinds (their CRDs are not ours).
        for name, o in overlay_objects.items():
            kept = [x for x in o if not x["apiVersion"].startswith("monitoring.coreos.com/")]
            out = cluster.kubectl("apply", "--dry-run=server", "-f", "-",
                                  input=yaml.safe_dump_all(kept))
            log("overlays/%s: server-side dry run accepted %d objects (%d Prometheus Operator "
                "objects not checked here: check_monitoring)" % (
                    name, len(out.strip().splitlines()), len(o) - len(kept)))
        cluster.kubectl("apply", "-k", manifests)
        log("kubectl apply -k manifests/: installed")

        # 3. The binaries as their pods run them, each under its pod's ServiceAccount.
        ctl_kc = cluster.service_account_kubeconfig(NAMESPACE, "meshstor-controller",
                                                    os.path.join(workdir, "controller.kubeconfig"))
        node_kc = cluster.service_account_kubeconfig(NAMESPACE, "meshstor-node",
                                                     os.path.join(workdir, "node.kubeconfig"))
        for n in ("sim-1", "sim-2", "sim-3"):
            cluster.kubectl("create", "-f", "-", input=json.dumps({
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": n, "labels": {
                    "meshstor.io/storage-node": "true"}}}))
        env = {"POD_NAMESPACE": NAMESPACE, "NODE_NAME": "sim-1"}
        ctl_sock = os.path.join(workdir, "controller.sock")
        node_sock = os.path.join(workdir, "node.sock")
        port = kube_cluster.free_port
        for replica in ("a", "b"):
            c = container(objects, "Deployment", "meshstor-operator", "operator")
            procs.start("operator-" + replica, [bins[c["command"][0]]] + args_of(
                c, dict(env, POD_NAME="operator-" + replica),
                {"--metrics-address": "127.0.0.1:%d" % port(), "--kubeconfig": ctl_kc}))
        c = container(objects, "Deployment", "meshstor-operator", "csi-controller")
        procs.start("csi-controller", [bins[c["command"][0]]] + args_of(c, env, {
            "--endpoint": "unix://" + ctl_sock, "--metrics-address": "127.0.0.1:%d" % port(),
            "--kubeconfig": ctl_kc}))
        for sidecar in ("csi-provisioner", "csi-resizer"):
            c = container(objects, "Deployment", "meshstor-operator", sidecar)
            procs.start(sidecar, [os.path.join(k8s, sidecar)] + args_of(c, env, {
                "--csi-address": ctl_sock, "--kubeconfig": ctl_kc}))
        c = container(objects, "DaemonSet", "meshstor-agent", "agent")
        # One process plays the DaemonSet's pods on 3 nodes (in-memory kernel layer).
        procs.start("agent", [bins[c["command"][0]]] + args_of(c, env, {
            "--metrics-address": "127.0.0.1:%d" % port(), "--kubeconfig": node_kc,
            "--simulate": "3"}), env={"MESHSTOR_NODE_NAME": "sim"})
        c = container(objects, "DaemonSet", "meshstor-agent", "csi-node")
        procs.start("csi-node", [bins[c["command"][0]]] + args_of(c, env, {
            "--endpoint": "unix://" + node_sock, "--metrics-address": "127.0.0.1:%d" % port(),
            "--kubeconfig": node_kc}))

        def drives():
            out = cluster.kubectl("get", "msnd", "-o", "json")
            return len(json.loads(out)["items"]) >= 6
        wait_for("6 simulated drives", drives, 60, procs)
        log("agents registered their drives")

        # 4. A PVC through the real sidecars, kubelet's calls through the shim's node socket.
        cluster.kubectl("create", "namespace", "apps")
        pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               # The scheduler's choice for a WaitForFirstConsumer claim (no scheduler runs).
               "metadata": {"name": "data", "namespace": "apps", "annotations": {
                   "volume.kubernetes.io/selected-node": "sim-1"}},
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "meshstor-replicated",
                        "resources": {"requests": {"storage": "1Gi"}}}}
        cluster.kubectl("create", "-f", "-", input=json.dumps(pvc))
        t = time.time()

        def bound():
            p = json.loads(cluster.kubectl("-n", "apps", "get", "pvc", "data", "-o", "json"))
            return p["spec"].get("volumeName") if p["status"].get("phase") == "Bound" else None
        pv = wait_for("the PVC bound by external-provisioner", bound, 90, procs)
        log("PVC bound to %s in %.1f s (external-provisioner -> CreateVolume)" % (pv, time.time() - t))
        msvol = json.loads(cluster.kubectl("get", "msvol", pv, "-o", "json"))
        sc = next(o for o in objects if o["kind"] == "StorageClass" and
                  o["metadata"]["name"] == "meshstor-replicated")
        assert msvol["spec"]["replicaCount"] == int(sc["parameters"]["replicaCount"]), msvol["spec"]

        def csi(*argv, timeout="90s"):
            r = subprocess.run([bins["meshstor-csi-client"], "--retry", "--timeout", timeout,
                                "--endpoint", "unix://" + node_sock] + list(argv),
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("%s failed (%d): %s %s" % (argv[0], r.returncode, r.stdout,
                                                              r.stderr))
            return r.stdout
        stage = "/var/lib/kubelet/plugins/kubernetes.io/csi/io.meshstor.csi.mesh/%s/globalmount" % (
            uuid.uuid4().hex)
        target = "/var/lib/kubelet/pods/%s/volumes/kubernetes.io~csi/%s/mount" % (uuid.uuid4(), pv)
        t = time.time()
        csi("node-stage", "--volume-id", pv, "--staging-path", stage)
        log("NodeStageVolume on sim-1: %.1f s (placement, partitions, exports, array, XFS)" % (
            time.time() - t))
        csi("node-publish", "--volume-id", pv, "--staging-path", stage, "--target", target)
        msvol = json.loads(cluster.kubectl("get", "msvol", pv, "-o", "json"))
        assert msvol["status"]["stagedPath"] == stage, msvol["status"]
        assert msvol["status"]["publishedTargets"] == [target], msvol["status"]
        log("staged at kubelet's path, published; phase %s, ready %s" % (
            msvol["status"].get("phase"), msvol["status"].get("ready")))

        cluster.kubectl("-n", "apps", "patch", "pvc", "data", "--type=merge", "-p",
                        '{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}')

        def controller_expanded():
            v = json.loads(cluster.kubectl("get", "pv", pv, "-o", "json"))
            return v["spec"]["capacity"]["storage"] == "2Gi"
        wait_for("external-resizer to expand the PV", controller_expanded, 90, procs)
        csi("node-expand", "--volume-id", pv, "--volume-path", target, "--capacity", "2Gi",
            "--staging-path", stage)
        log("expanded to 2Gi through external-resizer and NodeExpandVolume")

        csi("node-unpublish", "--volume-id", pv, "--target", target)
        csi("node-unstage", "--volume-id", pv, "--staging-path", stage)
        cluster.kubectl("-n", "apps", "delete", "pvc", "data", "--wait=false")

        def gone():
            pvs = json.loads(cluster.kubectl("get", "pv", "-o", "json"))["items"]
            vols = json.loads(cluster.kubectl("get", "msvol", "-o", "json"))["items"]
            return not pvs and not vols
        wait_for("the PV and the MeshStorVolume to be deleted", gone, 120, procs)
        log("PVC deleted: PV and MeshStorVolume gone")
        procs.check_alive()
    except Exception as e:
        print("FAILED: %s" % e, file=sys.stderr)
        for name in procs.procs:
            print("--- %s (last lines)\n%s" % (name, procs.tail(name)), file=sys.stderr)
        procs.stop()
        cluster.stop()
        print("logs in %s" % workdir, file=sys.stderr)
        return 1
    procs.stop()
    cluster.stop()

    # 5. RBAC: nothing was refused.
    hits = procs.forbidden()
    if hits:
        print("FAILED: requests refused by RBAC:\n  " + "\n  ".join(hits[:20]), file=sys.stderr)
        print("logs in %s" % workdir, file=sys.stderr)
        return 1
    log("no request of any binary or sidecar was refused (RBAC of the manifests)")
    if not a.keep and not a.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    print("install test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
