"""A real Kubernetes control plane for tests: Debian's etcd and the kube-apiserver binary.

Used by the install test (manifests applied to a real API server, binaries run under their
ServiceAccounts' RBAC). Python 3 standard library only; needs `etcd` (Debian: etcd-server),
`openssl` and a directory with kube-apiserver and kubectl (find_k8s_bin()).
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request

SKIP = 77
ADMIN_TOKEN = "meshstor-test-admin-token"


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find_k8s_bin(build_dir, names=("kube-apiserver", "kubectl")):
    """Directory holding the Kubernetes binaries, or None.

    MESHSTOR_K8S_BIN names a directory of plain binaries (any Kubernetes 1.28+). Otherwise the
    compressed set beside the project checkout (../shared/k8s with unpack.sh, present on the
    project's own machines) is unpacked once into <build_dir>/k8s.
    """
    given = os.environ.get("MESHSTOR_K8S_BIN")
    if given:
        missing = [n for n in names if not os.access(os.path.join(given, n), os.X_OK)]
        if missing:
            raise SystemExit("MESHSTOR_K8S_BIN=%s lacks %s" % (given, ", ".join(missing)))
        return given
    out = os.path.join(os.path.abspath(build_dir), "k8s")
    if all(os.access(os.path.join(out, n), os.X_OK) for n in names):
        return out
    unpack = os.path.join(os.path.dirname(repo_root()), "shared", "k8s", "unpack.sh")
    if not os.path.exists(unpack):
        return None
    os.makedirs(out, exist_ok=True)
    subprocess.run([unpack, out] + list(names), check=True, stdout=subprocess.DEVNULL)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """etcd + kube-apiserver on 127.0.0.1 with RBAC; admin by a static token."""

    def __init__(self, workdir, k8s_bin, log=print):
        self.workdir = os.path.abspath(workdir)
        self.k8s_bin = k8s_bin
        self.log = log
        self.procs = []
        self.port = None

    def start(self, timeout=120):
        if shutil.which("etcd") is None:
            raise SystemExit("etcd not found: install Debian's etcd-server (tools/setup-deps.sh)")
        os.makedirs(self.workdir, exist_ok=True)
        w = self.workdir
        subprocess.run(["openssl", "genrsa", "-out", w + "/sa.key", "2048"], check=True,
                       stderr=subprocess.DEVNULL)
        subprocess.run(["openssl", "rsa", "-in", w + "/sa.key", "-pubout", "-out", w + "/sa.pub"],
                       check=True, stderr=subprocess.DEVNULL)
        with open(w + "/tokens.csv", "w") as f:
            f.write('%s,meshstor-admin,meshstor-admin,"system:masters"\n' % ADMIN_TOKEN)
        etcd_port, peer_port, self.port = free_port(), free_port(), free_port()
        self._spawn("etcd", ["etcd", "--data-dir", w + "/etcd", "--name", "test",
                             "--listen-client-urls", "http://127.0.0.1:%d" % etcd_port,
                             "--advertise-client-urls", "http://127.0.0.1:%d" % etcd_port,
                             "--listen-peer-urls", "http://127.0.0.1:%d" % peer_port,
                             "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer_port,
                             "--initial-cluster", "test=http://127.0.0.1:%d" % peer_port,
                             "--quota-backend-bytes", str(1 << 30)])
        self._spawn("kube-apiserver", [
            os.path.join(self.k8s_bin, "kube-apiserver"),
            "--etcd-servers=http://127.0.0.1:%d" % etcd_port,
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            "--secure-port=%d" % self.port, "--cert-dir=" + w + "/certs",
            "--endpoint-reconciler-type=none",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-account-key-file=" + w + "/sa.pub",
            "--service-account-signing-key-file=" + w + "/sa.key",
            "--token-auth-file=" + w + "/tokens.csv",
            "--authorization-mode=RBAC", "--allow-privileged=true",
            "--service-cluster-ip-range=10.96.0.0/16", "--enable-priority-and-fairness=false",
        ])
        self.write_kubeconfig(w + "/admin.kubeconfig", ADMIN_TOKEN)
        deadline = time.time() + timeout
        while True:
            try:
                if self.request("/readyz") == "ok":
                    break
            except OSError:
                pass
            for name, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError("%s exited (%d); see %s/%s.log" % (name, p.returncode,
                                                                           w, name))
            if time.time() > deadline:
                raise RuntimeError("kube-apiserver not ready after %d s; see %s/kube-apiserver.log"
                                   % (timeout, w))
            time.sleep(0.5)
        self.log("kube-apiserver ready on 127.0.0.1:%d" % self.port)
        return self

    def start_controller_manager(self):
        """kube-controller-manager (PV binding and reclaim, PVC protection, ...) as admin."""
        w = self.workdir
        self._spawn("kube-controller-manager", [
            os.path.join(self.k8s_bin, "kube-controller-manager"),
            "--kubeconfig=" + w + "/admin.kubeconfig", "--leader-elect=false",
            "--bind-address=127.0.0.1", "--secure-port=%d" % free_port(),
            "--service-account-private-key-file=" + w + "/sa.key",
            "--root-ca-file=" + w + "/certs/apiserver.crt",
            "--use-service-account-credentials=false",
        ])
        self.log("kube-controller-manager started")

    def _spawn(self, name, argv):
        out = open(os.path.join(self.workdir, name + ".log"), "w")
        self.procs.append((name, subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)))

    def request(self, path, token=ADMIN_TOKEN):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.port, path),
                                     headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return r.read().decode()

    def write_kubeconfig(self, path, token, namespace="default"):
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {
                "server": "https://127.0.0.1:%d" % self.port, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "user",
                                                      "namespace": namespace}}],
        }
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def kubectl(self, *args, kubeconfig=None, input=None, check=True):
        argv = [os.path.join(self.k8s_bin, "kubectl"),
                "--kubeconfig", kubeconfig or self.workdir + "/admin.kubeconfig"] + list(args)
        r = subprocess.run(argv, input=input, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError("kubectl %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                               r.stderr.strip()))
        return r.stdout

    def service_account_kubeconfig(self, namespace, name, path):
        """A kubeconfig that authenticates as ServiceAccount namespace/name (TokenRequest)."""
        token = self.kubectl("-n", namespace, "create", "token", name, "--duration=2h").strip()
        return self.write_kubeconfig(path, token, namespace)

    def stop(self):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for _, p in reversed(self.procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
