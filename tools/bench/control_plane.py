#!/usr/bin/env python3
"""Control-plane benchmark: the operator and simulated agents against meshstor-test-apiserver.

For each size NODESxVOLUMES it starts meshstor-test-apiserver (CRDs from crds/), one
meshstor-operator (leader election on, Lease in "default") and one `meshstor-agent --simulate
NODES --node-name bench` (nodes bench-1..N, registered as Node objects first), creates the
volumes in a burst as the CSI shim would (1 GiB, 2 replicas, round-robin consumerNode) and
measures:
  - time until every volume is phase Synced (list polled every second, up to --timeout),
    per-volume creation-to-Synced p50/p99 (1 s resolution);
  - RSS and CPU seconds of the operator, the agent and the API server at the end of the burst
    and after --idle seconds idle;
  - API requests per second by verb and resource in the burst and in the idle window (from the
    test server's /testing/requests log; the benchmark's own requests are left out);
  - the agent's pass duration (meshstor_agent_pass_duration_seconds) and the operator's
    reconcile and API write latencies (from their /metrics);
  - SIGTERM-to-exit time of each process.
Prints a table and writes everything as JSON with --out. Python 3 standard library only.

--apiserver-kind real runs the same against a real control plane instead: Debian's etcd and
kube-apiserver (--k8s-bin, or e2e/install's find_k8s_bin), the CRDs from crds/ applied with
kubectl, every client authenticated by a token of its own; request counts come from
kube-apiserver's audit log (Metadata level), counting the operator's and the agent's requests
only (by user), each once (watches when they start, the others when they complete).

This is a benchmark, not a timed test: missed targets never fail it. It exits non-zero only
when setup fails or a process crashes (exits on its own, or non-zero / by a signal after
SIGTERM).

Usage:
  tools/bench/control_plane.py [--build-dir build/release] [--sizes 10x100,100x1000]
      [--timeout 600] [--idle 60] [--out FILE] [--quick] [--apiserver-kind test|real]
      [--k8s-bin DIR]
"""

import argparse
import concurrent.futures
import http.client
import json
import math
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "e2e", "install"))
import kube_cluster  # noqa: E402  (etcd + kube-apiserver for --apiserver-kind real)

# Static tokens of the real API server's clients (all system:masters): the audit log tells them
# apart by user.
BENCH_USER, OPERATOR_USER, AGENT_USER = "bench-client", "meshstor-operator", "meshstor-agent"
TOKENS = [("bench-client-token", BENCH_USER, ["system:masters"]),
          ("bench-operator-token", OPERATOR_USER, ["system:masters"]),
          ("bench-agent-token", AGENT_USER, ["system:masters"])]
VOLUMES = "/apis/csi.meshstor.io/v1alpha1/meshstorvolumes"
DEVICES = "/apis/csi.meshstor.io/v1alpha1/meshstornodedevices"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DRIVES_PER_NODE = 2  # meshstor-agent --simulate-drives default


class SetupError(Exception):
    pass


class Crash(Exception):
    pass


class Api:
    """A small JSON client on one keep-alive connection per thread (TCP_NODELAY on our side, so
    the client never adds Nagle delays of its own). With `token`: HTTPS (certificate not
    checked) and a bearer token, for kube-apiserver."""

    def __init__(self, port, token=None):
        self.port = port
        self.token = token
        self.local = threading.local()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            if self.token:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=120, context=ctx)
            else:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            c.connect()
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.local.conn = c
        return c

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        for attempt in range(2):
            c = self._conn()
            try:
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, OSError):
                c.close()
                self.local.conn = None
                if attempt == 1:
                    raise
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        return r.status, doc


def http_get_text(port, path, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_sample(pid):
    """RSS (MiB) and CPU seconds (user+system) of a live process."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After "pid (comm)": field 3 is state, so utime (14) and stime (15) are at 11 and 12.
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return {"rss_mib": round(rss, 1), "cpu_s": round(cpu, 2)}


def parse_metrics(text):
    """Prometheus text -> {name: [(labels dict, value)]}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.setdefault(m.group(1), []).append((labels, value))
    return out


def metric_sum(metrics, name, **match):
    return sum(v for labels, v in metrics.get(name, [])
               if all(labels.get(k) == want for k, want in match.items()))


def classify(method, path, query):
    """(verb, resource) of a Kubernetes API request, as kube-apiserver's metrics name them."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return method, "/" + "/".join(parts[:1])
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
        rest = rest[2:]
    if not rest:
        return "get", "(discovery)"
    resource = rest[0]
    named = len(rest) >= 2
    if len(rest) >= 3:
        resource += "/" + rest[2]
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
    if method == "GET":
        if re.search(r"(^|&)watch=(true|1)", query or ""):
            verb = "watch"
        else:
            verb = "get" if named else "list"
    return verb or method.lower(), resource


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, math.ceil(p / 100.0 * len(values)) - 1))  # nearest rank
    return values[k]


class Proc:
    def __init__(self, name, argv, log_path, popen=None):
        """Starts `argv`, or adopts `popen` (a process started elsewhere, logging to log_path)."""
        self.name = name
        self.argv = argv
        self.log_path = log_path
        # etcd re-raises SIGTERM after a clean stop: ended by our SIGTERM is not a crash there.
        self.sigterm_ok = popen is not None
        if popen is not None:
            self.log = None
            self.p = popen
        else:
            self.log = open(log_path, "wb")
            self.p = subprocess.Popen(argv, stdout=subprocess.PIPE if name == "apiserver"
                                      else self.log, stderr=self.log)
        self.exit_s = None
        self.returncode = None

    def check_alive(self):
        if self.p.poll() is not None:
            raise Crash(f"{self.name} exited with {self.p.returncode} (log {self.log_path})")

    def terminate(self, timeout):
        """SIGTERM, then the seconds until exit (None: killed after `timeout`)."""
        if self.p.poll() is not None:
            self.returncode = self.p.returncode
            return
        start = time.monotonic()
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout)
            self.exit_s = round(time.monotonic() - start, 3)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.returncode = self.p.returncode
        if self.log:
            self.log.close()


def wait_until(what, fn, timeout, procs, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            p.check_alive()
        try:
            if fn():
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(interval)
    raise SetupError(f"timed out after {timeout:.0f} s waiting for {what}")


class RequestLog:
    """Drains the test server's request log (GET then DELETE /testing/requests) into counts by
    (verb, resource). Requests arriving between the GET and the DELETE (milliseconds) are lost."""

    def __init__(self, api):
        self.api = api
        self.counts = {}
        self.full = False
        self.lock = threading.Lock()

    def clear(self):
        self.api.request("DELETE", "/testing/requests")
        self.counts = {}
        self.full = False

    def drain(self):
        with self.lock:
            status, doc = self.api.request("GET", "/testing/requests")
            self.api.request("DELETE", "/testing/requests")
            if status != 200 or doc is None:
                raise SetupError(f"GET /testing/requests: {status}")
            items = doc.get("items", [])
            if len(items) >= 100000:
                self.full = True  # the log wrapped: counts are lower bounds
            for it in items:
                key = classify(it["method"], it["path"], it.get("query", ""))
                self.counts[key] = self.counts.get(key, 0) + 1

    def take(self, own):
        """Counts so far minus the benchmark's own requests; resets."""
        self.drain()
        counts = dict(self.counts)
        for key, n in own.items():
            if key in counts:
                counts[key] -= n
                if counts[key] <= 0:
                    del counts[key]
        full = self.full
        self.counts = {}
        self.full = False
        return counts, full


class AuditLog:
    """Counts the operator's and the agent's requests by (verb, resource) from kube-apiserver's
    audit log (JSON lines at Metadata level), reading on from where the last drain stopped. Each
    request is counted once: when its response starts (watches and other long-running requests)
    or, if it never started one, when it completes. Other users (the benchmark's own client,
    kube-apiserver's loopback requests) are left out."""

    USERS = (OPERATOR_USER, AGENT_USER)

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.started = set()  # auditIDs counted at ResponseStarted, not yet complete
        self.counts = {}
        self.by_user = {}
        self.full = False  # the file never wraps

    def clear(self):
        self.drain()
        self.counts = {}
        self.by_user = {}

    def drain(self):
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return
        with f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            user = (e.get("user") or {}).get("username")
            if user not in self.USERS:
                continue
            stage, audit_id = e.get("stage"), e.get("auditID")
            if stage == "ResponseStarted":
                self.started.add(audit_id)
            elif stage in ("ResponseComplete", "Panic"):
                if audit_id in self.started:
                    self.started.discard(audit_id)
                    continue
            else:
                continue
            ref = e.get("objectRef") or {}
            resource = ref.get("resource")
            if resource and ref.get("subresource"):
                resource += "/" + ref["subresource"]
            if not resource:
                resource = (e.get("requestURI") or "").split("?", 1)[0]
            key = (e.get("verb", ""), resource)
            self.counts[key] = self.counts.get(key, 0) + 1
            self.by_user[user] = self.by_user.get(user, 0) + 1

    def take(self, own):
        """Counts so far (the benchmark's own requests are not in them); resets."""
        self.drain()
        counts, self.counts = self.counts, {}
        self.last_by_user, self.by_user = self.by_user, {}
        return counts, False


def write_kubeconfig(path, server, token):
    tls = ", insecure-skip-tls-verify: true" if server.startswith("https:") else ""
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: bench, cluster: {{server: "{server}"{tls}}}}}]
users: [{{name: bench, user: {{token: {token}}}}}]
contexts: [{{name: bench, context: {{cluster: bench, user: bench}}}}]
current-context: bench
""")
    return path


def start_real_apiserver(args, workdir, procs):
    """etcd + kube-apiserver (audit log on), the CRDs applied; returns (port, AuditLog)."""
    if not args.k8s_bin:
        raise SetupError("no kube-apiserver: pass --k8s-bin DIR (kube-apiserver, kubectl) or "
                         "set MESHSTOR_K8S_BIN")
    cluster = kube_cluster.Cluster(os.path.join(workdir, "cluster"), args.k8s_bin,
                                   log=lambda m: print("  " + m, flush=True), audit=True,
                                   tokens=TOKENS)
    try:
        cluster.start()
    except (RuntimeError, SystemExit) as e:
        raise SetupError(f"starting etcd and kube-apiserver: {e}")
    finally:
        # Adopted: sampled like the others, SIGTERM-timed, stopped last (etcd after the server).
        for name, p in cluster.procs:
            procs.append(Proc("apiserver" if name == "kube-apiserver" else name, p.args,
                              os.path.join(cluster.workdir, name + ".log"), popen=p))
    try:
        crds = [os.path.join(ROOT, "crds", f)
                for f in ("meshstorvolumes.yaml", "meshstornodedevices.yaml")]
        cluster.kubectl("apply", "-f", crds[0], "-f", crds[1])
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                        "crd/meshstorvolumes.csi.meshstor.io",
                        "crd/meshstornodedevices.csi.meshstor.io")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        raise SetupError(f"applying the CRDs: {e}")
    return cluster.port, AuditLog(cluster.audit_log)


def volume_name(i, names):
    """The i-th volume's name: as the CSI shim names a volume of the external-provisioner
    ("pvc-" and the PVC's UID, 40 characters; a fixed UUID per i), or the short form earlier runs
    used ("bench-vol-00042", 15 characters, which fits std::string's inline buffer)."""
    if names == "short":
        return f"bench-vol-{i:05d}"
    return "pvc-" + str(uuid.UUID(int=random.Random(i).getrandbits(128), version=4))


def volume_body(name, node):
    return {
        "apiVersion": "csi.meshstor.io/v1alpha1",
        "kind": "MeshStorVolume",
        # As the shim writes it: the CSI name in an annotation (here the same as the name).
        "metadata": {"name": name, "annotations": {"csi.meshstor.io/csi-name": name}},
        "spec": {"capacityBytes": 1 << 30, "replicaCount": 2, "stripeWidth": 1,
                 "memberMissingTimeout": 900, "sectorSize": 4096, "consumerNode": node},
    }


def run_size(args, nodes, volumes, workdir):
    bindir = args.build_dir
    apiserver_bin = args.apiserver or os.path.join(bindir, "tools/apiserver/meshstor-test-apiserver")
    operator_bin = args.operator or os.path.join(bindir, "operator/meshstor-operator")
    agent_bin = args.agent or os.path.join(bindir, "agent/meshstor-agent")
    real = args.apiserver_kind == "real"
    for b in ((operator_bin, agent_bin) if real else (apiserver_bin, operator_bin, agent_bin)):
        if not os.access(b, os.X_OK):
            raise SetupError(f"{b} is not built")
    res = {"nodes": nodes, "volumes": volumes, "apiserver_kind": args.apiserver_kind,
           "names": args.names}
    procs = []
    own = {}

    def mine(verb, resource, n=1):
        own[(verb, resource)] = own.get((verb, resource), 0) + n

    try:
        t_start = time.monotonic()
        if real:
            port, log = start_real_apiserver(args, workdir, procs)
            api = Api(port, token=TOKENS[0][0])
            server = f"https://127.0.0.1:{port}"
            op_kubeconfig = write_kubeconfig(os.path.join(workdir, "operator.kubeconfig"), server,
                                             TOKENS[1][0])
            agent_kubeconfig = write_kubeconfig(os.path.join(workdir, "agent.kubeconfig"), server,
                                                TOKENS[2][0])
            res["apiserver_start_s"] = round(time.monotonic() - t_start, 2)
        else:
            apiserver = Proc("apiserver", [apiserver_bin, "--port", "0", "--crd-dir",
                                           os.path.join(ROOT, "crds"), "--print-port"],
                             os.path.join(workdir, "apiserver.log"))
            procs.append(apiserver)
            line = apiserver.p.stdout.readline().decode().strip()
            if not line.isdigit():
                raise SetupError(f"meshstor-test-apiserver printed no port ({line!r})")
            port = int(line)
            api = Api(port)
            log = RequestLog(api)
            op_kubeconfig = agent_kubeconfig = write_kubeconfig(
                os.path.join(workdir, "kubeconfig"), f"http://127.0.0.1:{port}", "bench")
        t_setup = time.monotonic()
        for i in range(1, nodes + 1):
            status, doc = api.request("POST", "/api/v1/nodes", {
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": f"bench-{i}"},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
            if status != 201:
                raise SetupError(f"creating Node bench-{i}: {status} {doc}")
        op_port, agent_port = free_port(), free_port()
        operator = Proc("operator", [operator_bin, "--kubeconfig", op_kubeconfig, "--leader-elect",
                                     "--lease-namespace", "default", "--identity", "bench",
                                     "--metrics-address", f"127.0.0.1:{op_port}"],
                        os.path.join(workdir, "operator.log"))
        procs.append(operator)
        agent = Proc("agent", [agent_bin, "--kubeconfig", agent_kubeconfig, "--simulate", str(nodes),
                               "--node-name", "bench", "--metrics-address",
                               f"127.0.0.1:{agent_port}",
                               "--staging-dir", os.path.join(workdir, "staging"),
                               "--kubelet-dir", os.path.join(workdir, "kubelet")],
                     os.path.join(workdir, "agent.log"))
        procs.append(agent)
        wait_until("the operator's and the agent's /readyz",
                   lambda: http_get_text(op_port, "/readyz")[0] == 200 and
                   http_get_text(agent_port, "/readyz")[0] == 200, args.setup_timeout, procs)
        wait_until("the operator to lead",
                   lambda: metric_sum(parse_metrics(http_get_text(op_port, "/metrics")[1]),
                                      "meshstor_operator_leader") == 1, args.setup_timeout, procs)

        def devices_published():
            mine("list", "meshstornodedevices")
            status, doc = api.request("GET", DEVICES)
            return status == 200 and len(doc["items"]) >= nodes * DRIVES_PER_NODE

        wait_until(f"{nodes * DRIVES_PER_NODE} MeshStorNodeDevices", devices_published,
                   args.setup_timeout, procs,
                   interval=1)
        res["setup_s"] = round(time.monotonic() - t_setup, 2)

        # The burst: every volume created as fast as 16 clients can, as the CSI shim would.
        log.clear()
        own.clear()
        cpu0 = {p.name: proc_sample(p.p.pid) for p in procs}
        created_at = {}
        t0 = time.monotonic()

        def create(i):
            name = volume_name(i, args.names)
            status, doc = api.request("POST", VOLUMES,
                                      volume_body(name, f"bench-{i % nodes + 1}"))
            if status != 201:
                raise SetupError(f"creating {name}: {status} {doc}")
            created_at[name] = time.monotonic()

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for f in [pool.submit(create, i) for i in range(volumes)]:
                f.result()
        mine("create", "meshstorvolumes", volumes)
        res["create_s"] = round(time.monotonic() - t0, 2)

        synced_at = {}
        deadline = t0 + args.timeout
        # A list of every volume per poll: ~4 KB of JSON per volume to serve and to parse, so
        # big sizes poll less often (the resolution of time-to-Synced is the interval).
        poll = args.poll or max(1.0, volumes / 2500.0)
        res["poll_s"] = poll
        while True:
            for p in procs:
                p.check_alive()
            mine("list", "meshstorvolumes")
            status, doc = api.request("GET", VOLUMES)
            now = time.monotonic()
            if status != 200:
                raise SetupError(f"listing volumes: {status}")
            for v in doc["items"]:
                name = v["metadata"]["name"]
                if v.get("status", {}).get("phase") == "Synced" and name not in synced_at:
                    synced_at[name] = now
            if len(synced_at) >= volumes or now >= deadline:
                break
            log.drain()  # keeps the 100000-entry log from wrapping
            time.sleep(max(0.0, poll - (time.monotonic() - now)))
        burst_s = time.monotonic() - t0
        res["synced"] = len(synced_at)
        res["all_synced_s"] = round(burst_s, 1) if len(synced_at) >= volumes else None
        lat = [synced_at[n] - created_at[n] for n in synced_at]
        res["time_to_synced_p50_s"] = round(percentile(lat, 50), 1) if lat else None
        res["time_to_synced_p99_s"] = round(percentile(lat, 99), 1) if lat else None
        burst_counts, burst_full = log.take(own)
        own.clear()
        res["burst"] = {"seconds": round(burst_s, 1), "log_wrapped": burst_full,
                        "requests": sorted(([v, r, n] for (v, r), n in burst_counts.items()),
                                           key=lambda x: -x[2])}
        if real:
            res["burst"]["by_user"] = log.last_by_user
        res["end_of_burst"] = {p.name: proc_sample(p.p.pid) for p in procs}
        for name, s in res["end_of_burst"].items():
            s["cpu_s_burst"] = round(s["cpu_s"] - cpu0[name]["cpu_s"], 2)
        res["metrics_end_of_burst"] = scrape(op_port, agent_port)

        # The idle window: nothing changes; what is left is resyncs, renewals and bookmarks.
        # (The line below lets a profiler attach for the idle window only.)
        print(f"  idle window begins ({args.idle:g} s)", flush=True)
        t_idle = time.monotonic()
        while time.monotonic() - t_idle < args.idle:
            for p in procs:
                p.check_alive()
            time.sleep(min(1.0, max(0.0, args.idle - (time.monotonic() - t_idle))))
            log.drain()
        idle_s = time.monotonic() - t_idle
        idle_counts, idle_full = log.take(own)
        res["idle"] = {"seconds": round(idle_s, 1), "log_wrapped": idle_full,
                       "requests": sorted(([v, r, n] for (v, r), n in idle_counts.items()),
                                          key=lambda x: -x[2])}
        if real:
            res["idle"]["by_user"] = log.last_by_user
        res["after_idle"] = {p.name: proc_sample(p.p.pid) for p in procs}
        for name, s in res["after_idle"].items():
            s["cpu_s_idle"] = round(s["cpu_s"] - res["end_of_burst"][name]["cpu_s"], 2)
        res["metrics_after_idle"] = scrape(op_port, agent_port)
        for p in procs:
            p.check_alive()
    finally:
        # Stop the clients first, then the API server; time each SIGTERM -> exit.
        for p in reversed(procs):
            p.terminate(args.stop_timeout)
    res["stop_timeout_s"] = args.stop_timeout
    res["exit_s"] = {p.name: p.exit_s for p in procs}
    res["exit_code"] = {p.name: p.returncode for p in procs}
    # Killed after the stop timeout: reported (exit_s null), not a crash.
    slow = [p.name for p in procs if p.exit_s is None and p.returncode == -signal.SIGKILL]
    if slow:
        res["no_exit_after_sigterm"] = slow
    bad = [f"{p.name} ({p.returncode})" for p in procs
           if p.returncode != 0 and p.name not in slow and
           not (p.sigterm_ok and p.exit_s is not None and p.returncode == -signal.SIGTERM)]
    if bad:
        res["crashed"] = bad
    return res


def hist_buckets(families, name):
    """A histogram's (upper bound, cumulative count) pairs, +Inf left out, sorted."""
    return sorted((float(labels["le"]), v) for labels, v in families.get(name + "_bucket", [])
                  if labels.get("le") not in (None, "+Inf"))


def hist_quantile(metrics, name, q):
    """Upper bound (le, seconds) of the bucket holding quantile q of histogram `name`, or None."""
    buckets = hist_buckets(metrics, name)
    count = metric_sum(metrics, name + "_count")
    if not count:
        return None
    for le, cumulative in buckets:
        if cumulative >= q * count:
            return le
    return float("inf")


def scrape(op_port, agent_port):
    out = {}
    try:
        op = parse_metrics(http_get_text(op_port, "/metrics")[1])
        ag = parse_metrics(http_get_text(agent_port, "/metrics")[1])
    except (OSError, http.client.HTTPException) as e:
        return {"error": str(e)}
    out["agent_passes"] = metric_sum(ag, "meshstor_agent_passes_total")
    out["agent_pass_count"] = metric_sum(ag, "meshstor_agent_pass_duration_seconds_count")
    out["agent_pass_sum_s"] = round(metric_sum(ag, "meshstor_agent_pass_duration_seconds_sum"), 3)
    out["agent_step_errors"] = metric_sum(ag, "meshstor_agent_step_errors_total")
    out["operator_reconcile_count"] = metric_sum(
        op, "meshstor_operator_reconcile_duration_seconds_count")
    out["operator_reconcile_sum_s"] = round(
        metric_sum(op, "meshstor_operator_reconcile_duration_seconds_sum"), 3)
    out["operator_reconcile_errors"] = metric_sum(op, "meshstor_operator_reconcile_errors_total")
    out["operator_placement_failures"] = metric_sum(
        op, "meshstor_operator_placement_failures_total")
    out["operator_reconcile_p99_le_s"] = hist_quantile(
        op, "meshstor_operator_reconcile_duration_seconds", 0.99)
    out["operator_placement_count"] = metric_sum(
        op, "meshstor_operator_placement_duration_seconds_count")
    out["operator_placement_sum_s"] = round(
        metric_sum(op, "meshstor_operator_placement_duration_seconds_sum"), 4)
    out["operator_placement_p99_le_s"] = hist_quantile(
        op, "meshstor_operator_placement_duration_seconds", 0.99)
    out["operator_placement_p50_le_s"] = hist_quantile(
        op, "meshstor_operator_placement_duration_seconds", 0.5)
    # The whole histogram (cumulative count per upper bound): the p99 bucket alone hides how
    # much of the distribution is just above or below a target.
    out["operator_placement_buckets"] = hist_buckets(
        op, "meshstor_operator_placement_duration_seconds")
    # The same decisions' CPU time (the worker thread's), to tell preemption from the work.
    out["operator_placement_cpu_sum_s"] = round(
        metric_sum(op, "meshstor_operator_placement_cpu_seconds_sum"), 4)
    out["operator_placement_cpu_p99_le_s"] = hist_quantile(
        op, "meshstor_operator_placement_cpu_seconds", 0.99)
    out["operator_placement_cpu_buckets"] = hist_buckets(
        op, "meshstor_operator_placement_cpu_seconds")
    writes = {}
    for labels, v in op.get("meshstor_operator_api_request_duration_seconds_count", []):
        verb = labels.get("verb", "")
        s = metric_sum(op, "meshstor_operator_api_request_duration_seconds_sum", verb=verb)
        writes[verb] = {"count": v, "sum_s": round(s, 3)}
    out["operator_api_writes"] = writes
    return out


def mean_ms(total_s, count):
    return f"{1000.0 * total_s / count:.1f}" if count else "-"


def fmt(v, unit=""):
    return "-" if v is None else f"{v}{unit}"


def print_report(results):
    for r in results:
        print(f"\n=== {r['nodes']} nodes x {r['volumes']} volumes"
              f" ({'kube-apiserver + etcd' if r.get('apiserver_kind') == 'real' else 'test server'}"
              f", {r.get('names', 'short')} names)")
        if "error" in r:
            print(f"  FAILED: {r['error']}")
            continue
        print(f"  setup (nodes, processes, devices published): {r['setup_s']} s;"
              f" {r['volumes']} creates took {r['create_s']} s")
        print(f"  Synced: {r['synced']}/{r['volumes']}; all Synced after "
              f"{fmt(r['all_synced_s'], ' s')}; per volume p50 {fmt(r['time_to_synced_p50_s'])} s,"
              f" p99 {fmt(r['time_to_synced_p99_s'])} s (polled every {r.get('poll_s', 1.0):g} s)")
        print(f"  {'process':<10} {'RSS end':>9} {'RSS idle':>9} {'CPU burst':>10} "
              f"{'CPU idle':>9} {'SIGTERM->exit':>14}")
        for name in ("operator", "agent", "apiserver", "etcd"):
            if name not in r["end_of_burst"]:
                continue
            e, i = r["end_of_burst"][name], r["after_idle"][name]
            print(f"  {name:<10} {e['rss_mib']:>6} MiB {i['rss_mib']:>5} MiB {e['cpu_s_burst']:>8} s"
                  f" {i['cpu_s_idle']:>7} s {fmt(r['exit_s'].get(name), ' s'):>14}")
        for key, title in (("metrics_end_of_burst", "end of burst"),
                           ("metrics_after_idle", "after idle")):
            m = r[key]
            if "error" in m:
                continue
            writes = ", ".join(f"{v} {int(w['count'])}x {mean_ms(w['sum_s'], w['count'])} ms"
                               for v, w in sorted(m["operator_api_writes"].items()))
            print(f"  {title}: agent passes {int(m['agent_pass_count'])}, mean "
                  f"{mean_ms(m['agent_pass_sum_s'], m['agent_pass_count'])} ms; operator "
                  f"reconciles {int(m['operator_reconcile_count'])}, mean "
                  f"{mean_ms(m['operator_reconcile_sum_s'], m['operator_reconcile_count'])} ms;"
                  f" writes {writes or '-'}")
            if m.get("operator_placement_count"):
                print(f"  {title}: placement passes {int(m['operator_placement_count'])}, mean "
                      f"{mean_ms(m['operator_placement_sum_s'], m['operator_placement_count'])} ms,"
                      f" p50 <= {1000 * m['operator_placement_p50_le_s']:g} ms,"
                      f" p99 <= {1000 * m['operator_placement_p99_le_s']:g} ms; reconcile p99 <= "
                      f"{1000 * (m['operator_reconcile_p99_le_s'] or 0):g} ms")
                n = m["operator_placement_count"]
                print(f"  {title}: placement passes within: " + ", ".join(
                    f"{1000 * le:g} ms {100.0 * c / n:.1f} %"
                    for le, c in m["operator_placement_buckets"] if le <= 0.05))
                if m.get("operator_placement_cpu_buckets"):
                    print(f"  {title}: placement CPU time mean "
                          f"{mean_ms(m['operator_placement_cpu_sum_s'], n)} ms, p99 <= "
                          f"{1000 * (m['operator_placement_cpu_p99_le_s'] or 0):g} ms; within: "
                          + ", ".join(f"{1000 * le:g} ms {100.0 * c / n:.1f} %"
                                      for le, c in m["operator_placement_cpu_buckets"]
                                      if le <= 0.05))
        for window in ("burst", "idle"):
            w = r[window]
            total = sum(n for _, _, n in w["requests"])
            secs = max(w["seconds"], 0.001)
            note = " (log wrapped: lower bounds)" if w["log_wrapped"] else ""
            print(f"  API requests in the {window} ({w['seconds']} s): {total}, "
                  f"{total / secs:.1f}/s{note}")
            if w.get("by_user"):
                print("    by user: " + ", ".join(f"{u} {n}" for u, n in sorted(w["by_user"].items())))
            for verb, resource, n in w["requests"][:12]:
                print(f"    {verb:<7} {resource:<32} {n:>8} {n / secs:>9.1f}/s")
            if window == "idle":
                rest = sum(n for v, res, n in w["requests"]
                           if res != "leases" and (v, res) != ("update", "meshstornodedevices/status"))
                per = 60.0 / secs / r["nodes"]
                print(f"    per node per minute: {total * per:.2f}; without the Lease and the drive"
                      f" heartbeats (update meshstornodedevices/status): {rest * per:.2f}")
        if r.get("no_exit_after_sigterm"):
            print(f"  no exit within {r['stop_timeout_s']} s of SIGTERM (killed): "
                  f"{', '.join(r['no_exit_after_sigterm'])}")
        if r.get("crashed"):
            print(f"  CRASHED: {', '.join(r['crashed'])}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build/release"))
    ap.add_argument("--apiserver", help="meshstor-test-apiserver binary (default: in --build-dir)")
    ap.add_argument("--operator", help="meshstor-operator binary (default: in --build-dir)")
    ap.add_argument("--agent", help="meshstor-agent binary (default: in --build-dir)")
    ap.add_argument("--apiserver-kind", choices=("test", "real"), default="test",
                    help="test: meshstor-test-apiserver; real: etcd + kube-apiserver (audit log)")
    ap.add_argument("--k8s-bin", help="directory with kube-apiserver and kubectl for "
                    "--apiserver-kind real (default: $MESHSTOR_K8S_BIN, or unpacked from "
                    "../shared/k8s into <build-dir>/k8s)")
    ap.add_argument("--sizes", default="10x100,100x1000",
                    help="NODESxVOLUMES,... (e.g. 10x100,100x1000,1000x10000)")
    ap.add_argument("--timeout", type=float, help="seconds to wait for Synced (default 600)")
    ap.add_argument("--idle", type=float, help="idle window in seconds (default 60)")
    ap.add_argument("--poll", type=float, help="seconds between lists of the volumes while "
                    "waiting for Synced (default 1, VOLUMES/2500 above 2500 volumes)")
    ap.add_argument("--names", choices=("csi", "short"), default="csi",
                    help="volume names: csi (pvc-<uuid>, as the shim names them; default) or "
                         "short (bench-vol-NNNNN, as runs before 2026-12-07 evening used)")
    ap.add_argument("--out", help="write the results as JSON to this file")
    ap.add_argument("--workdir", help="keep the logs here (default: a temporary directory)")
    ap.add_argument("--quick", action="store_true",
                    help="10x100, idle 10 s, timeout 60 s (under 2 minutes)")
    args = ap.parse_args()
    if args.quick:
        args.sizes = "10x100"
        args.idle = 10 if args.idle is None else args.idle
        args.timeout = 60 if args.timeout is None else args.timeout
    args.setup_timeout = 60 if args.quick else 300  # readiness, leadership, devices
    args.stop_timeout = 10 if args.quick else 30  # SIGTERM -> exit before SIGKILL
    args.idle = 60 if args.idle is None else args.idle
    if args.apiserver_kind == "real" and not args.k8s_bin:
        args.k8s_bin = kube_cluster.find_k8s_bin(args.build_dir)
    args.timeout = 600 if args.timeout is None else args.timeout
    sizes = []
    for s in args.sizes.split(","):
        m = re.fullmatch(r"(\d+)x(\d+)", s.strip())
        if not m or int(m.group(1)) < 2:
            ap.error(f"bad size {s!r}: want NODESxVOLUMES with at least 2 nodes")
        sizes.append((int(m.group(1)), int(m.group(2))))

    workdir = args.workdir or tempfile.mkdtemp(prefix="meshstor-bench-")
    results, failed = [], False
    machine = {"nproc": os.cpu_count(), "cpu": "", "load_before": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            machine["cpu"] = next((l.split(":", 1)[1].strip() for l in f
                                   if l.startswith("model name")), "")
    except OSError:
        pass
    for nodes, volumes in sizes:
        d = os.path.join(workdir, f"{nodes}x{volumes}")
        os.makedirs(d, exist_ok=True)
        print(f"--- {nodes} nodes x {volumes} volumes (logs in {d})", flush=True)
        try:
            r = run_size(args, nodes, volumes, d)
            if r.get("crashed"):
                failed = True
        except (SetupError, Crash, OSError, http.client.HTTPException) as e:
            r = {"nodes": nodes, "volumes": volumes, "apiserver_kind": args.apiserver_kind,
                 "names": args.names, "error": f"{type(e).__name__}: {e}"}
            failed = True
        results.append(r)
    print_report(results)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": machine, "args": vars(args), "results": results}, f, indent=1)
        print(f"\nJSON written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
