"""A real Kubernetes control plane for tests: Debian's etcd and the kube-apiserver binary.

Used by the install test (manifests applied to a real API server, binaries run under their
ServiceAccounts' RBAC) and by the VM lab's scenario k8s (Cluster(..., address=..., netns=...):
served on the lab bridge inside the lab's network namespace, a CA of its own, client
certificates for the kubelets (Node authorizer + NodeRestriction), kube-scheduler, an audit log
that shows every refused request). Python 3 standard library only; needs `etcd` (Debian:
etcd-server), `openssl` and a directory with kube-apiserver and kubectl (find_k8s_bin()).
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


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


class Cluster:
    """etcd + kube-apiserver with RBAC; admin by a static token.

    Default: on 127.0.0.1 (a free port), a self-signed serving certificate. With `address`
    (and `port`), it serves there with a certificate of its own CA (<workdir>/pki/ca.crt, also
    the client CA: node_kubeconfig() issues kubelet certificates), authorizes Node,RBAC with
    NodeRestriction, and writes an audit log (<workdir>/audit.log, forbidden()). With `netns`
    every process (and kubectl) runs in that network namespace. `audit=True` writes the audit
    log (Metadata level, one line per request stage after RequestReceived) on 127.0.0.1 too;
    `tokens` adds static tokens: [(token, user, [groups])]."""

    def __init__(self, workdir, k8s_bin, log=print, address=None, port=None, netns=None,
                 audit=False, tokens=()):
        self.workdir = os.path.abspath(workdir)
        self.k8s_bin = k8s_bin
        self.log = log
        self.procs = []
        self.port = port
        self.address = address
        self.netns = netns
        self.pki = os.path.join(self.workdir, "pki")
        self.audit = audit or bool(address)
        self.tokens = list(tokens)
        self.audit_log = os.path.join(self.workdir, "audit.log")

    def _prefix(self):
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def host(self):
        return self.address or "127.0.0.1"

    def _make_pki(self):
        """CA, the API server's serving certificate (the lab address, 127.0.0.1, the kubernetes
        Service names) and its client certificate towards the kubelets."""
        p = self.pki
        os.makedirs(p, exist_ok=True)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p + "/ca.key",
                "-out", p + "/ca.crt", "-days", "30", "-subj", "/CN=meshstor-lab-ca")
        with open(p + "/apiserver.ext", "w") as f:
            f.write("subjectAltName=IP:%s,IP:127.0.0.1,IP:10.96.0.1,DNS:kubernetes,"
                    "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
                    "DNS:kubernetes.default.svc.cluster.local\n"
                    "extendedKeyUsage=serverAuth\n" % self.address)
        self.issue("apiserver", "/CN=kube-apiserver", ext=p + "/apiserver.ext")
        self.issue("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client")

    def issue(self, name, subject, ext=None):
        """A key and a certificate of the cluster's CA: <pki>/<name>.key, <name>.crt."""
        p = self.pki
        if not ext:
            ext = p + "/client.ext"
            with open(ext, "w") as f:
                f.write("extendedKeyUsage=clientAuth\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "%s/%s.key" % (p, name),
                "-out", "%s/%s.csr" % (p, name), "-subj", subject)
        openssl("x509", "-req", "-in", "%s/%s.csr" % (p, name), "-CA", p + "/ca.crt", "-CAkey",
                p + "/ca.key", "-CAcreateserial", "-out", "%s/%s.crt" % (p, name), "-days", "30",
                "-extfile", ext)
        return "%s/%s.crt" % (p, name), "%s/%s.key" % (p, name)

    def node_kubeconfig(self, node):
        """A kubeconfig (text) for the kubelet of Node `node`: a client certificate with
        CN system:node:<node>, O system:nodes, and the CA, all embedded."""
        import base64
        crt, key = self.issue("node-" + node, "/O=system:nodes/CN=system:node:" + node)
        b64 = lambda path: base64.b64encode(open(path, "rb").read()).decode()
        return json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "node",
            "clusters": [{"name": "lab", "cluster": {
                "server": "https://%s:%d" % (self.host(), self.port),
                "certificate-authority-data": b64(self.pki + "/ca.crt")}}],
            "users": [{"name": node, "user": {"client-certificate-data": b64(crt),
                                              "client-key-data": b64(key)}}],
            "contexts": [{"name": "node", "context": {"cluster": "lab", "user": node}}]})

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
            for token, user, groups in self.tokens:
                f.write('%s,%s,%s,"%s"\n' % (token, user, user, ",".join(groups)))
        etcd_port, peer_port = free_port(), free_port()
        self.port = self.port or free_port()
        audit = []
        if self.audit:
            with open(w + "/audit-policy.yaml", "w") as f:
                f.write("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
                        "rules:\n  - level: Metadata\n")
            audit = ["--audit-policy-file=%s/audit-policy.yaml" % w,
                     "--audit-log-path=" + self.audit_log, "--audit-log-format=json"]
        if self.address:
            self._make_pki()
            p = self.pki
            serving = ["--bind-address=0.0.0.0", "--advertise-address=" + self.address,
                       "--tls-cert-file=%s/apiserver.crt" % p,
                       "--tls-private-key-file=%s/apiserver.key" % p,
                       "--client-ca-file=%s/ca.crt" % p,
                       "--kubelet-client-certificate=%s/apiserver-kubelet-client.crt" % p,
                       "--kubelet-client-key=%s/apiserver-kubelet-client.key" % p,
                       # the nodes have no DNS names: logs and exec go to their InternalIP
                       "--kubelet-preferred-address-types=InternalIP",
                       "--authorization-mode=Node,RBAC",
                       "--enable-admission-plugins=NodeRestriction"]
        else:
            serving = ["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                       "--cert-dir=" + w + "/certs", "--endpoint-reconciler-type=none",
                       "--authorization-mode=RBAC"]
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
            "--secure-port=%d" % self.port] + serving + [
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-account-key-file=" + w + "/sa.pub",
            "--service-account-signing-key-file=" + w + "/sa.key",
            "--token-auth-file=" + w + "/tokens.csv", "--allow-privileged=true",
            "--service-cluster-ip-range=10.96.0.0/16", "--enable-priority-and-fairness=false",
        ] + audit)
        self.write_kubeconfig(w + "/admin.kubeconfig", ADMIN_TOKEN)
        deadline = time.time() + timeout
        while True:
            try:
                if self.request("/readyz") == "ok":
                    break
            except (OSError, RuntimeError):
                pass
            for name, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError("%s exited (%d); see %s/%s.log" % (name, p.returncode,
                                                                           w, name))
            if time.time() > deadline:
                raise RuntimeError("kube-apiserver not ready after %d s; see %s/kube-apiserver.log"
                                   % (timeout, w))
            time.sleep(0.5)
        self.log("kube-apiserver ready on %s:%d" % (self.host(), self.port))
        return self

    def start_controller_manager(self, extra=()):
        """kube-controller-manager (PV binding and reclaim, PVC protection, node lifecycle,
        ...) as admin."""
        w = self.workdir
        root_ca = self.pki + "/ca.crt" if self.address else w + "/certs/apiserver.crt"
        self._spawn("kube-controller-manager", [
            os.path.join(self.k8s_bin, "kube-controller-manager"),
            "--kubeconfig=" + w + "/admin.kubeconfig", "--leader-elect=false",
            "--bind-address=127.0.0.1", "--secure-port=%d" % free_port(),
            "--service-account-private-key-file=" + w + "/sa.key",
            "--root-ca-file=" + root_ca,
            "--use-service-account-credentials=false",
        ] + list(extra))
        self.log("kube-controller-manager started")

    def start_scheduler(self):
        """kube-scheduler as admin."""
        w = self.workdir
        self._spawn("kube-scheduler", [
            os.path.join(self.k8s_bin, "kube-scheduler"),
            "--kubeconfig=" + w + "/admin.kubeconfig", "--leader-elect=false",
            "--bind-address=127.0.0.1", "--secure-port=%d" % free_port(),
        ])
        self.log("kube-scheduler started")

    def _spawn(self, name, argv):
        out = open(os.path.join(self.workdir, name + ".log"), "w")
        self.procs.append((name, subprocess.Popen(self._prefix() + argv, stdout=out,
                                                  stderr=subprocess.STDOUT)))

    def forbidden(self):
        """Requests the API server refused (403) or could not authenticate (401), from the
        audit log: ["user verb uri -> code", ...] (address mode only)."""
        out = []
        try:
            f = open(os.path.join(self.workdir, "audit.log"), errors="replace")
        except OSError:
            return out
        with f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                code = (e.get("responseStatus") or {}).get("code")
                if code in (401, 403):
                    out.append("%s %s %s -> %d" % ((e.get("user") or {}).get("username"),
                                                   e.get("verb"), e.get("requestURI"), code))
        return out

    def request(self, path, token=ADMIN_TOKEN):
        if self.netns:
            return self.kubectl("get", "--raw", path, check=True).strip()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request("https://%s:%d%s" % (self.host(), self.port, path),
                                     headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return r.read().decode()

    def write_kubeconfig(self, path, token, namespace="default"):
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {
                "server": "https://%s:%d" % (self.host(), self.port),
                "insecure-skip-tls-verify": True}}],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "user",
                                                      "namespace": namespace}}],
        }
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def kubectl(self, *args, kubeconfig=None, input=None, check=True, timeout=120):
        argv = self._prefix() + [os.path.join(self.k8s_bin, "kubectl"),
                "--kubeconfig", kubeconfig or self.workdir + "/admin.kubeconfig"] + list(args)
        r = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
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
