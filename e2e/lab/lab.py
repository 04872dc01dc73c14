#!/usr/bin/env python3
"""MeshStor VM lab orchestrator (Python 3 standard library only).

Boots Debian-kernel VMs under qemu (TCG, or KVM when a probe boot proves it works) as storage
nodes with emulated NVMe drives, on a private bridge in a network namespace made for the run,
and drives scenarios: start, wait for guest events, hard-kill, restart with the same disks, cut a
node off the network, and a host-side HTTP server on the bridge that guests reach.

    e2e/lab/lab.py prepare                      # setup.sh + base image (idempotent, cached)
    e2e/lab/lab.py run smoke                    # 1 VM: the kernel data path end to end
    e2e/lab/lab.py run network                  # 3 VMs: RAID1 over nvme-tcp, kill/restart, cut
    e2e/lab/lab.py run contract --test-bin build/.../agent_sys_lab_tests [-- CATCH2 ARGS]
    e2e/lab/lab.py run mesh --bin build/.../meshstor-sys  # 3 VMs, the kernel layer only
    e2e/lab/lab.py run boot                     # 1 VM: boot time only
    e2e/lab/lab.py clean                        # removes leftovers of runs that were SIGKILLed

Exit status: 0 passed, 1 failed, 77 cannot run here (not root, or qemu unavailable), 130
interrupted. Whatever happens (failure, timeout, Ctrl-C, SIGTERM from ctest), every VM process,
tap, bridge, network namespace, disk image and initrd of the run is removed; console logs stay
in <workdir>/logs (one file per VM, host timestamps in seconds since the run started).
"""

import argparse
import collections
import ctypes
import gzip
import hashlib
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SKIP = 77
NET_PREFIX = "10.77.0"
HOST_IP = NET_PREFIX + ".254"
HOST_PORT = 8080
API_PORT = 6443  # the API test server of scenario "agents", on HOST_IP
# Bearer tokens of the API test server (ControlPlane): the scenario, the controller pod's and the
# node pod's ServiceAccounts of the manifests, whose RBAC the server enforces.
ADMIN_TOKEN = "lab-admin"
CONTROLLER_TOKEN = "lab-controller"
NODE_TOKEN = "lab-node"
RBAC_NAMESPACE = "meshstor-system"
NS_PREFIX = "mslab-"
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1

T0 = time.monotonic()


def now():
    return time.monotonic() - T0


def say(msg):
    print("[lab %7.2f] %s" % (now(), msg), flush=True)


class LabError(Exception):
    """A scenario failure; node names the VM whose console explains it (if any)."""

    def __init__(self, msg, node=None):
        super().__init__(msg)
        self.node = node


class Skip(Exception):
    pass


class Interrupted(Exception):
    pass


def timeout_scale():
    try:
        return max(0.1, float(os.environ.get("MESHSTOR_LAB_TIMEOUT_SCALE", "1")))
    except ValueError:
        return 1.0


def run(cmd, check=True, quiet=False, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check and r.returncode != 0:
        raise LabError("command failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stdout.strip()))
    if not quiet and r.stdout.strip() and r.returncode != 0:
        say(r.stdout.strip())
    return r


# ---- small helpers ---------------------------------------------------------------------------

def cpio_newc_gz(files):
    """gzip'd newc cpio of [(path, mode, bytes)]; the kernel unpacks it over the base image."""
    out = bytearray()

    def entry(ino, name, mode, data):
        nb = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0]
        out.extend(b"070701" + "".join("%08X" % f for f in fields).encode() + nb)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    ino = 1
    for path, mode, data in files:
        entry(ino, path, mode, data)
        ino += 1
    entry(0, "TRAILER!!!", 0, b"")
    return gzip.compress(bytes(out), compresslevel=1)


# Each guest holds 256-2048 MiB. An ASan build's allocator keeps up to 256 MiB of freed memory
# per process in quarantine (its default), so the agent, shim and client of one node together
# outgrow the guest: lab_csi's node A was OOM-killed that way. Guests get the host's sanitizer
# options with the quarantine bounded (unless the host sets one); release binaries ignore them.
GUEST_ASAN_QUARANTINE_MB = 16


def guest_sanitizer_env(environ=None):
    environ = os.environ if environ is None else environ
    env = {k: environ[k] for k in ("UBSAN_OPTIONS", "LSAN_OPTIONS") if environ.get(k)}
    asan = environ.get("ASAN_OPTIONS", "")
    if "quarantine_size" not in asan:
        asan = ":".join(o for o in (asan, "quarantine_size_mb=%d" % GUEST_ASAN_QUARANTINE_MB) if o)
    env["ASAN_OPTIONS"] = asan
    return env


def host_identity(node):
    """Deterministic NVMe host ID and NQN of a node (the guest's /init derives the same)."""
    h = hashlib.md5(("meshstor-lab-host-" + node).encode()).hexdigest()
    hostid = "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])
    return hostid, "nqn.2014-08.org.nvmexpress:uuid:" + hostid


_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL("libc.so.6", use_errno=True)
    return _libc


def set_pdeathsig():
    # qemu dies with the orchestrator even if it is SIGKILLed (PR_SET_PDEATHSIG survives exec).
    libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def in_netns(ns, fn, wait=True):
    """Runs fn() in a thread that entered network namespace ns (threads inherit it)."""
    box = {}

    def body():
        fd = os.open("/run/netns/" + ns, os.O_RDONLY)
        try:
            if libc().setns(fd, CLONE_NEWNET) != 0:
                box["err"] = OSError(ctypes.get_errno(), "setns(%s)" % ns)
                return
        finally:
            os.close(fd)
        try:
            box["value"] = fn()
        except BaseException as e:  # reported to the caller
            box["err"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    if not wait:
        return t
    t.join()
    if "err" in box:
        raise box["err"]
    return box.get("value")


def strip_ansi(s):
    return re.sub(r"\x1b(\[[0-9;?]*[A-Za-z]|c)", "", s).replace("\r", "")


# ---- events ------------------------------------------------------------------------------------

class Events:
    """Guest events from console markers and from the host server, plus VM exits."""

    def __init__(self):
        self.cond = threading.Condition()
        self.items = []  # (t, node, name, detail, boot, source)

    def add(self, node, name, detail, boot, source):
        with self.cond:
            self.items.append((now(), node, name, detail.strip(), boot, source))
            self.cond.notify_all()

    def find(self, node, name, boot=None):
        for e in self.items:
            if e[1] == node and e[2] == name and (boot is None or e[4] == boot):
                return e
        return None

    def poke(self):
        with self.cond:
            self.cond.notify_all()


# ---- the host server on the lab bridge ----------------------------------------------------------

class HostServer:
    """HTTP server bound to the bridge address inside the lab netns. Guests POST events
    (/event/<node>/<name>) and poll flags the scenario raises (/flag/<name>: 200 or 404).

    For the fault suite (guest/fault-node.sh, meshstor-verify): GET /cmd/<node> hands out the
    next shell command queued for the node (body "<id>\n<script>", once; 404 when none) and POST
    /result/<node>/<id> takes its "rc=<n>\n<output>"; POST /ack/<run> records a verifier's
    acknowledged count ("run=.. acked=.. slots=.. ..."; the highest count wins, kept in
    <workdir>/acks/<run>.txt) and GET /ack/<run> returns it. The host, not the VM under test,
    is the record of which writes were acknowledged."""

    def __init__(self, lab):
        self.lab = lab
        self.flags = set()
        self.httpd = None
        self.thread = None
        self.cmds = collections.defaultdict(collections.deque)  # node -> deque of (id, script)
        self.results = {}  # (node, id) -> (rc, output)
        self.acks = {}  # run id -> dict of the latest report with the highest acked count
        self.lock = threading.Lock()

    def record_ack(self, run, body):
        fields = dict(kv.split("=", 1) for kv in body.split() if "=" in kv)
        try:
            acked = int(fields.get("acked", ""))
        except ValueError:
            return False
        with self.lock:
            old = self.acks.get(run)
            if old is None or acked >= old["acked"]:
                rec = dict(fields, acked=acked, at=round(now(), 2))
                self.acks[run] = rec
                d = os.path.join(self.lab.workdir, "acks")
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, run + ".txt"), "w") as f:
                    f.write(" ".join("%s=%s" % kv for kv in rec.items()) + "\n")
        return True

    def start(self, ns):
        lab = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, body=b""):
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                p = self.path.split("?")[0].strip("/").split("/")
                if p == ["ping"]:
                    return self.reply(200, b"pong\n")
                if len(p) == 2 and p[0] == "flag":
                    return self.reply(200 if p[1] in lab.flags else 404, b"")
                if len(p) == 3 and p[0] == "event":
                    return self.do_POST()
                if len(p) == 2 and p[0] == "cmd":
                    with lab.lock:
                        q = lab.cmds.get(p[1])
                        item = q.popleft() if q else None
                    if item is None:
                        return self.reply(404)
                    return self.reply(200, ("%s\n%s\n" % item).encode())
                if len(p) == 2 and p[0] == "ack":
                    with lab.lock:
                        rec = lab.acks.get(p[1])
                    if rec is None:
                        return self.reply(404)
                    return self.reply(200, (" ".join("%s=%s" % kv for kv in rec.items()) + "\n").encode())
                return self.reply(404)

            def do_POST(self):
                p = self.path.split("?")[0].strip("/").split("/")
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode(errors="replace") if n else ""
                if len(p) == 3 and p[0] == "event":
                    vm = lab.lab.vms.get(p[1])
                    lab.lab.events.add(p[1], p[2], body, vm.boot if vm else 0, "http")
                    return self.reply(200, b"ok\n")
                if len(p) == 3 and p[0] == "result":
                    head, _, out = body.partition("\n")
                    rc = int(head[3:]) if head.startswith("rc=") and head[3:].isdigit() else -1
                    with lab.lab.events.cond:
                        lab.results[(p[1], p[2])] = (rc, out)
                        lab.lab.events.cond.notify_all()
                    return self.reply(200, b"ok\n")
                if len(p) == 2 and p[0] == "ack":
                    return self.reply(200 if lab.record_ack(p[1], body) else 400, b"")
                return self.reply(404)

        def make():
            class Server(http.server.ThreadingHTTPServer):
                daemon_threads = True
                allow_reuse_address = True

            return Server((HOST_IP, HOST_PORT), Handler)

        self.httpd = in_netns(ns, make)
        self.thread = in_netns(ns, self.httpd.serve_forever, wait=False)

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


# ---- VMs ----------------------------------------------------------------------------------------

class VM:
    def __init__(self, lab, name, index, drives, mem, ip, conf, timeout):
        self.lab, self.name, self.index = lab, name, index
        self.mem, self.ip, self.conf = mem, ip, conf
        self.timeout = timeout
        self.drives = [os.path.join(lab.diskdir, "%s-%d.img" % (name, i + 1)) for i in range(drives)]
        self.initrd = os.path.join(lab.workdir, "%s.initrd" % name)
        self.logpath = os.path.join(lab.logdir, "%s.log" % name)
        self.tap = "tap" + name if ip else None
        self.mac = "52:54:00:77:00:%02x" % index
        self.proc = None
        self.reader = None
        self.boot = 0
        self.started_at = None
        self.exit_code = None
        self.result = None  # rc from LAB-RESULT of the current boot
        self.killed = False
        self.tail = collections.deque(maxlen=400)
        self.log = None
        self.boot_times = []
        self.virtio = []  # (path, serial, read-only) of extra virtio-blk drives (/dev/vdX)
        self.append = ""  # extra kernel arguments
        self.files = []  # (path, mode, bytes) added to the node's own cpio

    def qemu_cmd(self):
        accel = self.lab.accel
        cmd = ["qemu-system-x86_64", "-name", self.name]
        smp = "1"
        if accel == "kvm":
            cmd += ["-accel", "kvm", "-cpu", "host"]
        else:
            # a 1 GiB translation cache (allocated as used): the k8s scenario runs large Go binaries
            # (kubelet, containerd, the CSI sidecars); a full cache is flushed and retranslated
            cmd += ["-accel", "tcg,tb-size=1024", "-cpu", "max"]
            # TCG translates the guest's memory barriers only when the machine may have more than
            # one vCPU. Without them the guest's NVMe driver and qemu's emulated drive (another
            # host thread) lose shadow-doorbell updates: under a burst of commands (a partition's
            # write-zeroes, 512 KiB each) the drive stops fetching them, the guest times out,
            # resets and finally disables its own drive. A second possible vCPU, never started,
            # turns the barriers on.
            smp = "1,maxcpus=2"
        # no_timer_check: at boot the kernel waits a few ticks for the timer interrupt through the
        # IO-APIC and panics ("IO-APIC + timer doesn't work!") when a busy host delays the TCG
        # vCPU past that window; the interrupt is wired in qemu's pc machine, so skip the check.
        append = ("console=ttyS0 panic=-1 quiet loglevel=4 mitigations=off no_timer_check "
                  "lab.node=" + self.name)
        if self.append:
            append += " " + self.append
        cmd += ["-machine", "pc", "-smp", smp, "-m", str(self.mem), "-nographic", "-no-reboot",
                "-kernel", self.lab.vmlinux, "-initrd", self.initrd, "-append", append,
                "-device", "virtio-rng-pci"]
        for i, d in enumerate(self.drives):
            cmd += ["-drive", "file=%s,if=none,id=d%d,format=raw,cache=unsafe,discard=unmap" % (d, i + 1),
                    "-device", "nvme,drive=d%d,serial=%s-%d,logical_block_size=4096,"
                    "physical_block_size=4096" % (i + 1, self.name, i + 1)]
        for i, (path, serial, ro) in enumerate(self.virtio):
            cmd += ["-drive", "file=%s,if=none,id=v%d,format=raw,cache=unsafe%s"
                    % (path, i, ",readonly=on" if ro else ""),
                    "-device", "virtio-blk-pci,drive=v%d,serial=%s" % (i, serial)]
        if self.ip:
            cmd += ["-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % self.tap,
                    "-device", "virtio-net-pci,romfile=,netdev=n0,mac=" + self.mac]
        else:
            cmd += ["-nic", "none"]
        if self.ip:
            cmd = ["ip", "netns", "exec", self.lab.ns] + cmd
        return cmd

    def prepare(self):
        for d in self.drives:
            if not os.path.exists(d):
                with open(d, "wb") as f:
                    f.truncate(self.lab.disk_size)
        hostid, hostnqn = host_identity(self.name)
        conf = {"LAB_node": self.name, "LAB_hostid": hostid, "LAB_hostnqn": hostnqn,
                "LAB_host": HOST_IP, "LAB_port": str(HOST_PORT)}
        if self.ip:
            conf["LAB_ip"] = self.ip + "/24"
        exports = guest_sanitizer_env()
        for k, v in self.conf.items():
            if k.startswith("LAB_"):
                conf[k] = v
            else:
                exports[k] = v
        text = "".join("export %s=%s\n" % (k, shlex.quote(v)) for k, v in list(conf.items()) + list(exports.items()))
        with open(self.initrd, "wb") as out:
            for part in (self.lab.base, self.lab.payload):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out)
            dirs = sorted({os.path.dirname(p) for p, _, _ in self.files} - {"lab"})
            out.write(cpio_newc_gz([("lab", 0o40755, b"")] + [(d, 0o40755, b"") for d in dirs]
                                   + [("lab/node.conf", 0o100644, text.encode())]
                                   + [(p, 0o100000 | m, d) for p, m, d in self.files]))

    def start(self):
        if self.alive():
            raise LabError("%s is already running" % self.name, self.name)
        self.boot += 1
        self.exit_code = None
        self.result = None
        self.killed = False
        if self.log is None:
            self.log = open(self.logpath, "a", buffering=1, errors="replace")
        self.log.write("[%8.3f] ==== %s boot %d (%s) at %s ====\n"
                       % (now(), self.name, self.boot, self.lab.accel, time.strftime("%Y-%m-%d %H:%M:%S")))
        self.log.write("[%8.3f] $ %s\n" % (now(), " ".join(shlex.quote(c) for c in self.qemu_cmd())))
        self.started_at = now()
        self.proc = subprocess.Popen(self.qemu_cmd(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=set_pdeathsig)
        boot = self.boot
        self.reader = threading.Thread(target=self._read, args=(self.proc, boot), daemon=True)
        self.reader.start()
        say("%s: boot %d started (pid %d)" % (self.name, boot, self.proc.pid))

    def _read(self, proc, boot):
        ev = self.lab.events
        for raw in iter(proc.stdout.readline, b""):
            line = strip_ansi(raw.decode(errors="replace").rstrip("\n"))
            if not line.strip():
                continue
            t = now()
            self.log.write("[%8.3f] %s\n" % (t, line))
            self.tail.append("[%8.3f] %s" % (t, line))
            m = re.search(r"LAB-EVENT (\S+) ?(.*)", line)
            if m:
                ev.add(self.name, m.group(1), m.group(2), boot, "console")
                if m.group(1) == "init":
                    self.boot_times.append(("init", t - self.started_at))
                elif m.group(1) == "up":
                    self.boot_times.append(("up", t - self.started_at))
            m = re.search(r"LAB-RESULT node=\S+ rc=(\d+)", line)
            if m:
                self.result = int(m.group(1))
        code = proc.wait()
        if proc is self.proc:
            self.exit_code = code
            self.log.write("[%8.3f] ==== %s boot %d: qemu exited with %d%s ====\n"
                           % (now(), self.name, boot, code, " (killed by the lab)" if self.killed else ""))
        ev.add(self.name, "exit", str(code), boot, "host")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """Hard power-off: SIGKILL qemu."""
        if self.proc is None:
            return
        self.killed = True
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        if self.reader:
            self.reader.join(timeout=5)

    def last_lines(self, n):
        return list(self.tail)[-n:]


# ---- the lab --------------------------------------------------------------------------------------

class Lab:
    def __init__(self, args, scenario_timeout):
        self.args = args
        self.workdir = os.path.abspath(args.workdir)
        self.logdir = os.path.join(self.workdir, "logs")
        self.diskdir = os.path.join(self.workdir, "disks")
        self.cache = args.cache
        self.vmlinux = os.path.join(self.cache, "kernel", "vmlinux")
        self.base = os.path.join(self.cache, "image", "base.cpio.gz")
        self.payload = os.path.join(self.workdir, "payload.cpio.gz")
        self.disk_size = int(float(args.disk_size or os.environ.get("MESHSTOR_LAB_DISK_GIB") or 2) * (1 << 30))
        self.accel = "tcg"
        self.accel_note = ""
        self.vms = {}
        self.events = Events()
        self.ns = None
        self.taps = []
        self.server = None
        self.deadline = now() + scenario_timeout * timeout_scale()
        self.scenario_timeout = scenario_timeout * timeout_scale()
        self.marks = []  # (label, seconds) measured by the scenario
        self.failed_node = None
        self.procs = []  # (name, Popen, log file) of host processes in the netns

    # --- set-up and teardown
    def __enter__(self):
        # Only what a previous run made here is removed (the workdir may be any directory).
        for d in (self.logdir, self.diskdir):
            shutil.rmtree(d, ignore_errors=True)
        if os.path.isdir(self.workdir):
            for f in os.listdir(self.workdir):
                if f.endswith(".initrd") or f == "payload.cpio.gz":
                    os.unlink(os.path.join(self.workdir, f))
        os.makedirs(self.logdir)
        os.makedirs(self.diskdir)
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def cleanup(self):
        if getattr(self, "k8s", None):
            try:
                self.k8s.stop()
            except Exception as e:  # keep cleaning
                say("cleanup: control plane: %s" % e)
            self.k8s = None
        for name, proc, log in self.procs:
            try:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=5)
            except Exception as e:  # keep cleaning
                say("cleanup: stopping %s: %s" % (name, e))
            log.close()
        self.procs = []
        for vm in self.vms.values():
            try:
                vm.kill()
            except Exception as e:  # keep cleaning
                say("cleanup: killing %s: %s" % (vm.name, e))
        if self.server:
            try:
                self.server.stop()
            except Exception as e:
                say("cleanup: server: %s" % e)
            self.server = None
        if self.ns:
            delete_netns(self.ns)
            self.ns = None
        for vm in self.vms.values():
            if vm.log:
                vm.log.close()
                vm.log = None
        if not self.args.keep:
            shutil.rmtree(self.diskdir, ignore_errors=True)
            for f in os.listdir(self.workdir):
                if f.endswith(".initrd") or f == "payload.cpio.gz":
                    os.unlink(os.path.join(self.workdir, f))

    def network(self, n_taps_for):
        """Creates the netns with br0 (HOST_IP/24) and the host server."""
        self.ns = "%s%d" % (NS_PREFIX, os.getpid())
        ns = self.ns
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", ns, "addr", "add", HOST_IP + "/24", "dev", "br0"])
        run(["ip", "-n", ns, "link", "set", "br0", "up"])
        for name in n_taps_for:
            tap = "tap" + name
            run(["ip", "-n", ns, "tuntap", "add", tap, "mode", "tap"])
            run(["ip", "-n", ns, "link", "set", tap, "master", "br0"])
            run(["ip", "-n", ns, "link", "set", tap, "up"])
        self.server = HostServer(self)
        self.server.start(ns)
        say("network: netns %s, br0 %s/24, taps %s, host server http://%s:%d"
            % (ns, HOST_IP, ",".join("tap" + n for n in n_taps_for), HOST_IP, HOST_PORT))

    def host_process(self, name, argv):
        """Starts argv on the host inside the lab netns (reaches the VMs over br0); its output
        goes to logs/<name>.log; it is stopped at cleanup."""
        log = open(os.path.join(self.logdir, name + ".log"), "wb")
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns] + list(argv), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=set_pdeathsig)
        self.procs.append((name, proc, log))
        say("%s: started on the host in %s (pid %d): %s" % (name, self.ns, proc.pid, " ".join(argv)))
        return proc

    def api(self, method, path, body=None, timeout=10):
        """A request to the API server the scenario started on HOST_IP:API_PORT (JSON)."""
        def call():
            data = json.dumps(body).encode() if body is not None else None
            req = urllib.request.Request("http://%s:%d%s" % (HOST_IP, API_PORT, path), data=data,
                                         method=method, headers={
                                             "Content-Type": "application/json",
                                             "Authorization": "Bearer " + ADMIN_TOKEN})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return r.status, json.loads(r.read() or b"null")
            except urllib.error.HTTPError as e:
                try:
                    return e.code, json.loads(e.read() or b"null")
                except ValueError:
                    return e.code, None
            except (urllib.error.URLError, OSError) as e:
                return 0, str(e)

        return in_netns(self.ns, call)

    def node(self, name, drives=3, mem=256, ip=None, script=None, cmd=None, env=None, timeout=None,
             virtio=(), append="", files=()):
        conf = dict(env or {})
        if script:
            conf["LAB_script"] = script
        if cmd:
            conf["LAB_cmd"] = cmd
        vm = VM(self, name, len(self.vms) + 1, drives, mem, ip, conf,
                (timeout or self.scenario_timeout) * (timeout_scale() if timeout else 1))
        vm.virtio, vm.append, vm.files = list(virtio), append, list(files)
        self.vms[name] = vm
        vm.prepare()
        return vm

    # --- actions
    def start(self, *names):
        for n in names:
            self.vms[n].start()

    def kill(self, name):
        say("%s: hard power-off (SIGKILL qemu)" % name)
        self.vms[name].kill()

    def restart(self, name):
        vm = self.vms[name]
        if vm.alive():
            self.kill(name)
        vm.start()

    def link(self, name, up):
        run(["ip", "-n", self.ns, "link", "set", "tap" + name, "up" if up else "down"])
        say("%s: network %s (tap%s %s)" % (name, "restored" if up else "cut", name, "up" if up else "down"))

    def flag(self, name):
        self.server.flags.add(name)
        say("host flag raised: " + name)

    def http_get(self, ip, path, timeout=10):
        def get():
            with urllib.request.urlopen("http://%s:8081%s" % (ip, path), timeout=timeout) as r:
                return r.read().decode(errors="replace")

        return in_netns(self.ns, get)

    def mark(self, label, seconds):
        self.marks.append((label, seconds))
        say("timing: %s = %.1f s" % (label, seconds))

    # --- waiting
    def _check(self, waiting_for):
        t = now()
        if t > self.deadline:
            raise LabError("scenario timeout (%.0f s) while waiting for %s" % (self.scenario_timeout, waiting_for),
                           waiting_for.split(":")[0] if ":" in waiting_for else None)
        for vm in self.vms.values():
            if vm.proc is None:
                continue
            if vm.alive() and t - vm.started_at > vm.timeout:
                raise LabError("%s exceeded its %.0f s timeout (boot %d)" % (vm.name, vm.timeout, vm.boot), vm.name)
            if not vm.alive() and not vm.killed and (vm.result is None or vm.result != 0):
                # wait for the reader to drain the console before judging
                if vm.reader:
                    vm.reader.join(timeout=2)
                if vm.result is None:
                    raise LabError("%s stopped without a result (qemu exit %s): kernel panic or qemu error?"
                                   % (vm.name, vm.exit_code), vm.name)
                raise LabError("%s failed: its job exited with rc=%d" % (vm.name, vm.result), vm.name)

    def wait_event(self, node, name, timeout=120, boot=None):
        """Waits for event NAME from NODE's boot BOOT (default: its current boot)."""
        vm = self.vms[node]
        boot = vm.boot if boot is None else boot
        limit = now() + timeout * timeout_scale()
        what = "%s:%s" % (node, name)
        while True:
            with self.events.cond:
                e = self.events.find(node, name, boot)
            if e:
                return e
            self._check(what)
            if vm.proc is not None and not vm.alive() and not vm.killed:
                if vm.reader:
                    vm.reader.join(timeout=2)
                if not self.events.find(node, name, boot):
                    raise LabError("%s stopped (rc=%s) before event '%s'" % (node, vm.result, name), node)
            if now() > limit:
                raise LabError("timed out after %.0f s waiting for event '%s' from %s"
                               % (timeout * timeout_scale(), name, node), node)
            with self.events.cond:
                self.events.cond.wait(0.5)

    def wait_exit(self, node, timeout=120):
        """Waits for the node's job to finish and its VM to power off; returns the job's rc."""
        vm = self.vms[node]
        limit = now() + timeout * timeout_scale()
        while vm.alive():
            self._check("%s:exit" % node)
            if now() > limit:
                raise LabError("%s did not power off within %.0f s" % (node, timeout * timeout_scale()), node)
            with self.events.cond:
                self.events.cond.wait(0.5)
        if vm.reader:
            vm.reader.join(timeout=5)
        if vm.result is None:
            raise LabError("%s powered off without a result (qemu exit %s)" % (node, vm.exit_code), node)
        return vm.result

    def report_failure(self, err):
        node = getattr(err, "node", None)
        say("FAILED: %s" % err)
        nodes = [node] if node in self.vms else list(self.vms)
        for n in nodes:
            vm = self.vms[n]
            lines = vm.last_lines(60)
            say("---- last %d console lines of %s (full log: %s) ----" % (len(lines), n, vm.logpath))
            for line in lines:
                print("  " + line)
        others = [n for n in self.vms if n not in nodes]
        for n in others:
            vm = self.vms[n]
            say("---- last 8 console lines of %s ----" % n)
            for line in vm.last_lines(8):
                print("  " + line)
        sys.stdout.flush()

    def summary(self, scenario, ok, elapsed):
        boots = {}
        for n, vm in self.vms.items():
            boots[n] = ["%s=%.1fs" % (k, v) for k, v in vm.boot_times]
        timings = {}
        for e in self.events.items:
            if e[2] == "timings":
                timings[e[1]] = e[3]
        data = {"scenario": scenario, "passed": ok, "seconds": round(elapsed, 1), "accel": self.accel,
                "boot": boots, "marks": {k: round(v, 2) for k, v in self.marks}, "guest_timings": timings}
        with open(os.path.join(self.logdir, "summary.json"), "w") as f:
            json.dump(data, f, indent=1)
        for n, b in boots.items():
            say("boot %s: qemu start -> %s" % (n, ", ".join(b) or "n/a"))
        for n, t in timings.items():
            say("guest %s step times (s):%s" % (n, t if t.startswith(" ") else " " + t))


# ---- network namespace housekeeping ----------------------------------------------------------------

def delete_netns(ns):
    r = run(["ip", "netns", "pids", ns], check=False, quiet=True)
    for pid in r.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ValueError, ProcessLookupError):
            pass
    r = run(["ip", "-n", ns, "-o", "link", "show"], check=False, quiet=True)
    for line in r.stdout.splitlines():
        m = re.match(r"\d+: ([^:@]+)", line)
        if m and m.group(1) != "lo":
            run(["ip", "-n", ns, "link", "del", m.group(1)], check=False, quiet=True)
    for _ in range(50):
        if run(["ip", "netns", "del", ns], check=False, quiet=True).returncode == 0:
            return
        time.sleep(0.1)
    say("warning: could not delete netns %s" % ns)


def clean_stale():
    """Removes network namespaces left by lab runs whose orchestrator no longer exists."""
    r = run(["ip", "netns", "list"], check=False, quiet=True)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(NS_PREFIX):
            continue
        try:
            pid = int(name[len(NS_PREFIX):])
        except ValueError:
            continue
        if pid != os.getpid() and not os.path.exists("/proc/%d" % pid):
            say("removing stale netns %s" % name)
            delete_netns(name)


# ---- preparation --------------------------------------------------------------------------------

def check_host():
    if os.geteuid() != 0:
        raise Skip("the VM lab needs root (network namespace, taps); run as root")
    if os.environ.get("MESHSTOR_LAB_DISABLE"):
        raise Skip("MESHSTOR_LAB_DISABLE is set")


def prepare(args, binaries=(), payload=None):
    check_host()
    env = dict(os.environ, MESHSTOR_LAB_CACHE=args.cache)
    t = now()
    r = subprocess.run([os.path.join(HERE, "setup.sh"), "--cache", args.cache], env=env)
    if r.returncode == SKIP:
        raise Skip("setup.sh: lab cannot run here (see above)")
    if r.returncode != 0:
        raise LabError("setup.sh failed (%d)" % r.returncode)
    cmd = [os.path.join(HERE, "build-image.sh"), "--cache", args.cache]
    if payload:
        cmd += ["--payload", payload]
    r = subprocess.run(cmd + list(binaries), env=env)
    if r.returncode != 0:
        raise LabError("build-image.sh failed (%d)" % r.returncode)
    if not os.path.exists("/dev/net/tun"):
        os.makedirs("/dev/net", exist_ok=True)
        os.mknod("/dev/net/tun", 0o20666, os.makedev(10, 200))
    say("prepared in %.1f s" % (now() - t))


def kvm_usable(args, lab):
    """Chooses the accelerator: KVM only if /dev/kvm opens AND a probe VM reaches /init quickly."""
    want = (args.accel or os.environ.get("MESHSTOR_LAB_ACCEL") or "auto").lower()
    if want == "tcg":
        return "tcg", "requested"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError as e:
        if want == "kvm":
            raise LabError("KVM requested but /dev/kvm is unusable: %s" % e)
        return "tcg", "/dev/kvm unusable (%s)" % e.strerror
    key = ""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            key = f.read().strip()
    except OSError:
        pass
    key += "|" + os.path.realpath(lab.vmlinux)
    cache_file = os.path.join(args.cache, "accel-probe.json")
    try:
        with open(cache_file) as f:
            c = json.load(f)
        if c.get("key") == key:
            return c["accel"], c["note"] + " (cached probe)"
    except (OSError, ValueError, KeyError):
        pass
    # Probe boot: a VM with no drives that runs `true`. Under KVM that takes ~2 s; a KVM that
    # only emulates (nested without VMX/SVM) does not get to /init in minutes.
    say("probing KVM with a test boot (max 25 s)")
    lab.accel = "kvm"
    vm = lab.node("kvmprobe", drives=0, cmd="true", timeout=30)
    vm.start()
    t0 = now()
    accel, note = "tcg", "KVM probe boot did not reach /init within 25 s"
    try:
        while now() - t0 < 25:
            if lab.events.find("kvmprobe", "init"):
                accel, note = "kvm", "KVM probe reached /init in %.1f s" % (now() - t0)
                break
            if not vm.alive():
                vm.reader.join(timeout=2)
                note = "KVM probe failed: " + " | ".join(vm.last_lines(3))
                break
            time.sleep(0.2)
    finally:
        vm.kill()
        del lab.vms["kvmprobe"]
        lab.accel = "tcg"
    if want == "kvm" and accel != "kvm":
        raise LabError("KVM requested but unusable: " + note)
    with open(cache_file, "w") as f:
        json.dump({"key": key, "accel": accel, "note": note}, f)
    return accel, note


# ---- scenarios ------------------------------------------------------------------------------------

def scenario_boot(lab, args):
    """1 VM: boot, run `true`, power off (boot time)."""
    lab.node("A", drives=1, cmd="true", timeout=120)
    lab.start("A")
    lab.wait_event("A", "up", timeout=90)
    rc = lab.wait_exit("A", timeout=60)
    if rc != 0:
        raise LabError("boot job failed", "A")


def scenario_smoke(lab, args):
    """1 VM, 3 drives: GPT, nvmet-tcp + allowed_hosts, RAID1 local+NVMe-oF, XFS, loss/re-add."""
    lab.node("A", drives=3, script="smoke.sh", timeout=200)
    lab.start("A")
    e = lab.wait_event("A", "up", timeout=90)
    lab.mark("qemu start -> node up (A)", e[0] - lab.vms["A"].started_at)
    rc = lab.wait_exit("A", timeout=200)
    if rc != 0:
        raise LabError("smoke script failed (rc=%d)" % rc, "A")


def scenario_network(lab, args):
    """3 VMs: RAID1 over nvme-tcp on A, B killed/restarted and cut off, C fenced out."""
    lab.network(["A", "B", "C"])
    _, nqn_a = host_identity("A")
    _, nqn_c = host_identity("C")
    lab.node("B", drives=2, ip=NET_PREFIX + ".2", script="net-target.sh", env={"LAB_allow": nqn_a},
             timeout=400)
    lab.node("C", drives=1, ip=NET_PREFIX + ".3", script="net-outsider.sh", timeout=300)
    lab.node("A", drives=2, ip=NET_PREFIX + ".1", script="net-initiator.sh", timeout=400)
    t_start = now()
    lab.start("B", "C", "A")

    e = lab.wait_event("B", "exported", timeout=150)
    lab.mark("B partitioned + exported (from start)", e[0] - t_start)
    lab.flag("b-exported")

    lab.wait_event("C", "refused", timeout=90)
    t = now()
    while not any(("by host %s" % nqn_c) in l and "not allowed" in l for l in lab.vms["B"].tail):
        if now() - t > 15:
            raise LabError("B's kernel did not log that C's connect was not allowed", "B")
        time.sleep(0.2)
    say("C was refused by B's nvmet (allowed_hosts = A only); C reached A over the bridge")

    e = lab.wait_event("A", "ready", timeout=240)
    lab.mark("A ready: RAID1(local, B) resynced, XFS written (from start)", e[0] - t_start)
    status = lab.http_get(NET_PREFIX + ".1", "/cgi-bin/status")
    say("host -> A status page over the bridge:\n  " + "\n  ".join(status.strip().splitlines()))
    if "[UU]" not in status:
        raise LabError("A's status page does not show md0 [UU]", "A")

    # 1. hard power-off of B
    t_kill = now()
    lab.kill("B")
    lab.flag("b-killed")
    e = lab.wait_event("A", "degraded", timeout=90)
    lab.mark("SIGKILL B -> A's md0 degraded, degraded write done", e[0] - t_kill)
    t_restart = now()
    lab.restart("B")
    e = lab.wait_event("B", "exported", timeout=150)
    lab.mark("restart B -> B exporting again", e[0] - t_restart)
    lab.flag("b-back")
    e = lab.wait_event("A", "resynced", timeout=120)
    lab.mark("restart B -> A reconnected, re-added, bitmap resync done", e[0] - t_restart)

    # 2. network cut of B
    t_cut = now()
    lab.link("B", up=False)
    lab.flag("b-cut")
    e = lab.wait_event("A", "degraded2", timeout=90)
    lab.mark("cut B's network -> A's md0 degraded, degraded write done", e[0] - t_cut)
    t_up = now()
    lab.link("B", up=True)
    lab.flag("b-uncut")
    e = lab.wait_event("A", "resynced2", timeout=120)
    lab.mark("restore B's network -> A reconnected, re-added, resync done", e[0] - t_up)

    rc = lab.wait_exit("A", timeout=180)
    if rc != 0:
        raise LabError("A's script failed (rc=%d)" % rc, "A")
    lab.flag("done")
    for n in ("B", "C"):
        if lab.wait_exit(n, timeout=60) != 0:
            raise LabError("%s's script failed" % n, n)


def scenario_mesh(lab, args):
    """3 VMs, kernel layer only (meshstor-sys): RAID1 + RAID10 over nvme-tcp, B killed, C replaces."""
    sysbin = [b for b in args.bin if os.path.basename(b) == "meshstor-sys"]
    if not sysbin:
        raise LabError("mesh needs --bin PATH/meshstor-sys (the kernel layer's command line)")
    lab.network(["A", "B", "C"])
    _, nqn_a = host_identity("A")
    common = {"LAB_consumer": "lab-a", "LAB_consumer_nqn": nqn_a}
    lab.node("B", drives=2, ip=NET_PREFIX + ".2", script="mesh-target.sh", timeout=700,
             env=dict(common, LAB_members="mesh-r1:1:1:1:320 mesh-r10:1:1:2:176 mesh-r10:3:2:3:176",
                      LAB_release="mesh-r1:1:1:1"))
    lab.node("C", drives=1, ip=NET_PREFIX + ".3", script="mesh-target.sh", timeout=700,
             env=dict(common, LAB_members="mesh-r1:2:1:1:320",
                      LAB_probe_refused="B:mesh-r1:1:1:%s.2" % NET_PREFIX))
    lab.node("A", drives=2, mem=384, ip=NET_PREFIX + ".1", script="mesh-consumer.sh", timeout=700)
    t_start = now()
    lab.start("B", "C", "A")

    e = lab.wait_event("B", "exported", timeout=150)
    lab.mark("B: 3 partitions created, zeroed, exported (from start)", e[0] - t_start)
    lab.wait_event("C", "exported", timeout=150)
    lab.flag("exported")
    lab.wait_event("C", "refused", timeout=90)
    t = now()
    _, nqn_c = host_identity("C")
    while not any(("by host %s" % nqn_c) in l and "not allowed" in l for l in lab.vms["B"].tail):
        if now() - t > 15:
            raise LabError("B's kernel did not log that C's connect was not allowed", "B")
        time.sleep(0.2)
    say("C's connect to B's export for A was refused by B's nvmet (allowed_hosts = A only)")

    e = lab.wait_event("A", "ready", timeout=240)
    lab.mark("A: RAID1 + RAID10 over nvme-tcp, XFS, data written (from start)", e[0] - t_start)

    t_kill = now()
    lab.kill("B")
    lab.flag("b-killed")
    e = lab.wait_event("A", "degraded", timeout=90)
    lab.mark("SIGKILL B -> both arrays degraded, writes done", e[0] - t_kill)
    t_restart = now()
    lab.restart("B")
    e = lab.wait_event("B", "exported", timeout=150, boot=2)
    lab.mark("restart B -> B exporting again (partitions found, not re-zeroed)", e[0] - t_restart)
    lab.flag("b-back")
    e = lab.wait_event("A", "resynced", timeout=180)
    lab.mark("restart B -> A reconnected, re-added, bitmap resync done", e[0] - t_restart)
    detail = dict(kv.split("=", 1) for kv in e[3].split() if "=" in kv)
    if "resync_r1_kib" in detail:
        say("bitmap catch-up: R1 %s KiB, R10 %s KiB written to B's legs in %s s" % (
            detail.get("resync_r1_kib"), detail.get("resync_r10_kib"), detail.get("resync_s")))

    t_rep = now()
    e = lab.wait_event("A", "replaced", timeout=240)
    lab.mark("C's member replaced B's in RAID1 (hot replace)", e[0] - t_rep)
    lab.flag("B-release")
    lab.wait_event("B", "released", timeout=60, boot=2)

    rc = lab.wait_exit("A", timeout=300)
    if rc != 0:
        raise LabError("A's script failed (rc=%d)" % rc, "A")
    lab.flag("done")
    for n in ("B", "C"):
        lab.wait_event(n, "clean", timeout=90)
        if lab.wait_exit(n, timeout=60) != 0:
            raise LabError("%s's script failed" % n, n)
    say("teardown: no MeshStor partition, nvmet subsystem or port, MD array or NVMe-oF "
        "controller left on A, B or C")


DATAPATH_TARGETS = ("local", "remote", "raid1", "raid10")
DATAPATH_JOBS = ("randwrite4k", "randread4k", "seqwrite128k", "seqread128k")


def scenario_datapath(lab, args):
    """2 VMs, fio on the raw local leg, the raw NVMe/TCP leg, RAID1 and RAID10 built from them."""
    names = {os.path.basename(b) for b in args.bin}
    if not {"meshstor-sys", "fio"} <= names:
        raise LabError("datapath needs --bin PATH/meshstor-sys and --bin fio (Debian's fio)")
    runtime = int(os.environ.get("MESHSTOR_BENCH_FIO_SECONDS", "10"))
    lab.network(["A", "B"])
    _, nqn_a = host_identity("A")
    # fio and its libraries ride in the payload every node unpacks: room for them in RAM.
    lab.node("B", drives=2, mem=768, ip=NET_PREFIX + ".2", script="mesh-target.sh", timeout=900,
             env={"LAB_consumer": "lab-a", "LAB_consumer_nqn": nqn_a,
                  "LAB_members": "dp-raw:1:1:1:256 dp-r1:1:1:2:256 dp-r10:1:1:3:128 "
                                 "dp-r10:3:2:4:128"})
    lab.node("A", drives=2, mem=768, ip=NET_PREFIX + ".1", script="datapath.sh", timeout=900,
             env={"LAB_runtime": str(runtime)})
    lab.start("B", "A")
    lab.wait_event("B", "exported", timeout=240)
    lab.flag("exported")
    rc = lab.wait_exit("A", timeout=120 + 16 * (runtime + 30) * timeout_scale())
    if rc != 0:
        raise LabError("A's script failed (rc=%d)" % rc, "A")
    lab.flag("done")
    lab.wait_event("B", "clean", timeout=120)
    if lab.wait_exit("B", timeout=60) != 0:
        raise LabError("B's script failed", "B")

    results = {}
    for e in list(lab.events.items):
        if e[1] == "A" and e[2] == "fio":
            kv = dict(f.split("=", 1) for f in e[3].split() if "=" in f)
            results[(kv["target"], kv["job"])] = {
                "iops": float(kv["iops"]), "lat_mean_us": float(kv["lat_mean_us"]),
                "lat_p99_us": float(kv["lat_p99_us"]), "bw_kib": float(kv["bw_kib"])}
    missing = [(t, j) for t in DATAPATH_TARGETS for j in DATAPATH_JOBS if (t, j) not in results]
    if missing:
        raise LabError("no fio result for %s" % ", ".join("%s/%s" % m for m in missing), "A")
    say("fio, QD1 psync O_DIRECT, %d s per job, accelerator %s:" % (runtime, lab.accel))
    say("%-8s %-13s %10s %12s %12s %12s" % ("target", "job", "IOPS", "mean µs", "p99 µs", "MiB/s"))
    for j in DATAPATH_JOBS:
        for t in DATAPATH_TARGETS:
            r = results[(t, j)]
            say("%-8s %-13s %10.0f %12.1f %12.0f %12.1f" % (
                t, j, r["iops"], r["lat_mean_us"], r["lat_p99_us"], r["bw_kib"] / 1024))

    def lat(t, j):
        return results[(t, j)]["lat_mean_us"]

    ratios = {
        "raid1_write_vs_slower_leg": lat("raid1", "randwrite4k") / max(
            lat("local", "randwrite4k"), lat("remote", "randwrite4k")),
        "raid1_read_vs_local_leg": lat("raid1", "randread4k") / lat("local", "randread4k"),
        "raid10_write_vs_slower_leg": lat("raid10", "randwrite4k") / max(
            lat("local", "randwrite4k"), lat("remote", "randwrite4k")),
        "raid10_read_vs_local_leg": lat("raid10", "randread4k") / lat("local", "randread4k"),
    }
    for k, v in ratios.items():
        say("ratio %-28s %.3f (goal <= 1.05)" % (k, v))
    out = os.path.join(args.workdir, "datapath.json")
    with open(out, "w") as f:
        json.dump({"accelerator": lab.accel, "fio_seconds": runtime,
                   "results": [dict(target=t, job=j, **results[(t, j)])
                               for j in DATAPATH_JOBS for t in DATAPATH_TARGETS],
                   "ratios": ratios}, f, indent=2)
    say("results written to %s" % out)


# scenario "resync": (volume, A's local drive, B's nsid and drive, member MiB); B's member is
# index 1 on the same-numbered drive. Three sizes two orders of magnitude apart.
RESYNC_ARRAYS = (("rs-512m", 1, 1, 512), ("rs-4g", 1, 2, 4096), ("rs-16g", 2, 3, 16384))


def scenario_resync(lab, args):
    """2 VMs: the bitmap catch-up after a short outage of the remote leg, at three array sizes."""
    if not [b for b in args.bin if os.path.basename(b) == "meshstor-sys"]:
        raise LabError("resync needs --bin PATH/meshstor-sys (the kernel layer's command line)")
    write_mib = int(os.environ.get("MESHSTOR_BENCH_RESYNC_MIB", "32"))
    # the 16 GiB member needs a drive of its own (sparse: only what is written takes space)
    lab.disk_size = max(lab.disk_size, 20 << 30)
    lab.network(["A", "B"])
    _, nqn_a = host_identity("A")
    lab.node("B", drives=2, ip=NET_PREFIX + ".2", script="mesh-target.sh", timeout=900,
             env={"LAB_consumer": "lab-a", "LAB_consumer_nqn": nqn_a,
                  "LAB_members": " ".join("%s:1:%d:%d:%d" % (v, d, n, m)
                                          for v, d, n, m in RESYNC_ARRAYS)})
    lab.node("A", drives=2, mem=768, ip=NET_PREFIX + ".1", script="resync.sh", timeout=900,
             env={"LAB_write_mib": str(write_mib),
                  "LAB_arrays": " ".join("%s:%d:%d:%d" % (v, d, n, m)
                                         for v, d, n, m in RESYNC_ARRAYS)})
    lab.start("B", "A")
    lab.wait_event("B", "exported", timeout=300)
    lab.flag("exported")
    lab.wait_event("A", "ready", timeout=400)
    lab.kill("B")
    lab.flag("b-killed")
    lab.wait_event("A", "degraded", timeout=180)
    lab.restart("B")
    lab.wait_event("B", "exported", timeout=300, boot=2)
    lab.flag("b-back")
    rc = lab.wait_exit("A", timeout=600)
    if rc != 0:
        raise LabError("A's script failed (rc=%d)" % rc, "A")
    lab.flag("done")
    lab.wait_event("B", "clean", timeout=180, boot=2)
    if lab.wait_exit("B", timeout=60) != 0:
        raise LabError("B's script failed", "B")

    by_volume = {}  # an event arrives twice (console line and POST)
    for e in list(lab.events.items):
        if e[1] == "A" and e[2] == "resync":
            kv = dict(f.split("=", 1) for f in e[3].split() if "=" in f)
            by_volume[kv["volume"]] = {"volume": kv["volume"], "size_mib": int(kv["size_mib"]),
                         "written_kib": int(kv["written_kib"]),
                         "resync_kib": int(kv["resync_kib"]),
                         "chunk_kib": int(kv["chunk_bytes"]) // 1024,
                         "seconds": float(kv["seconds"])}
    rows = [by_volume[v] for v, _, _, _ in RESYNC_ARRAYS if v in by_volume]
    if len(rows) != len(RESYNC_ARRAYS):
        raise LabError("%d catch-up results for %d arrays" % (len(rows), len(RESYNC_ARRAYS)), "A")
    say("bitmap catch-up after %d MiB written (fsync) while B was off, accelerator %s:"
        % (write_mib, lab.accel))
    say("%-8s %9s %10s %11s %11s %7s %9s" % ("array", "size MiB", "chunk KiB", "written KiB",
                                             "resync KiB", "ratio", "seconds"))
    over = []
    for r in rows:
        r["ratio"] = r["resync_kib"] / r["written_kib"]
        say("%-8s %9d %10d %11d %11d %7.2f %9.1f" % (r["volume"], r["size_mib"], r["chunk_kib"],
                                                     r["written_kib"], r["resync_kib"],
                                                     r["ratio"], r["seconds"]))
        if not 0 < r["ratio"] <= 2.0:
            over.append("%s: %.2fx" % (r["volume"], r["ratio"]))
    out = os.path.join(args.workdir, "resync.json")
    with open(out, "w") as f:
        json.dump({"accelerator": lab.accel, "write_mib": write_mib, "arrays": rows}, f, indent=2)
    say("results written to %s" % out)
    if over:
        raise LabError("catch-up wrote more than twice what was written: " + ", ".join(over), "A")


class ControlPlane:
    """The host side of the scenarios whose agents run in VMs: the API test server on
    HOST_IP:API_PORT (in the lab netns), optionally the Node objects and the operator, and the
    helpers those scenarios share for reading and editing one MeshStorVolume.

    The server enforces the manifests' RBAC (manifests/base/rbac-*.yaml): the operator and the
    CSI controller authenticate as the controller pod's ServiceAccount, the agents and the node
    CSI shim as the node pod's (guest/lib.sh write_kubeconfig), the scenario itself as admin.
    check_rbac() fails the scenario on any refused request."""

    BASE = "/apis/csi.meshstor.io/v1alpha1"

    def __init__(self, lab, args, vol, nodes=(), operator=False):
        self.lab, self.vol = lab, vol
        rbac = os.path.join(REPO, "manifests", "base")
        lab.host_process("apiserver", [os.path.abspath(args.apiserver), "--address", HOST_IP,
                                       "--port", str(API_PORT), "--crd-dir",
                                       os.path.join(REPO, "crds"),
                                       "--rbac-file", os.path.join(rbac, "rbac-operator.yaml"),
                                       "--rbac-file", os.path.join(rbac, "rbac-agent.yaml"),
                                       "--rbac-namespace", RBAC_NAMESPACE,
                                       "--token", ADMIN_TOKEN + "=admin,system:masters",
                                       "--token", "%s=system:serviceaccount:%s:meshstor-controller"
                                       % (CONTROLLER_TOKEN, RBAC_NAMESPACE),
                                       "--token", "%s=system:serviceaccount:%s:meshstor-node"
                                       % (NODE_TOKEN, RBAC_NAMESPACE)])
        t = now()
        while lab.api("GET", self.BASE + "/meshstorvolumes")[0] != 200:
            if now() - t > 30:
                raise LabError("the API test server did not answer on %s:%d" % (HOST_IP, API_PORT))
            time.sleep(0.2)
        self.kubeconfig = os.path.join(lab.workdir, "kubeconfig")
        with open(self.kubeconfig, "w") as f:
            f.write("apiVersion: v1\nkind: Config\nclusters: [{name: lab, cluster: {server: "
                    "\"http://%s:%d\"}}]\ncontexts: [{name: lab, context: {cluster: lab, user: "
                    "lab}}]\nusers: [{name: lab, user: {token: %s}}]\ncurrent-context: lab\n"
                    % (HOST_IP, API_PORT, CONTROLLER_TOKEN))
        code, out = lab.api("POST", "/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RBAC_NAMESPACE}})
        if code not in (200, 201):
            raise LabError("creating namespace %s: %s %s" % (RBAC_NAMESPACE, code, out))
        # The nodes as the kubelet would register them (placement needs them Ready).
        for n in nodes:
            code, out = lab.api("POST", "/api/v1/nodes", {
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": n},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
            if code not in (200, 201):
                raise LabError("creating node %s: %s %s" % (n, code, out))
        self.operator_argv = [os.path.abspath(args.operator or "meshstor-operator"), "--kubeconfig",
                              self.kubeconfig, "--lease-namespace", RBAC_NAMESPACE,
                              "--events-namespace", RBAC_NAMESPACE,
                              "--metrics-address", "%s:9811" % HOST_IP, "--agent-staleness", "90s"]
        self.operator = lab.host_process("operator", self.operator_argv) if operator else None

    def start_agent_nodes(self, consumer_script="agent-node.sh", timeout=900):
        """Boots A, B, C (2 drives each) running the agent; A runs `consumer_script` and is the
        consumer of agent-node.sh. Waits until the 3 agents published their drives and returns
        them (node -> drives)."""
        env = {"LAB_api_port": str(API_PORT), "LAB_volume": self.vol,
               "LAB_node_token": NODE_TOKEN, "LAB_controller_token": CONTROLLER_TOKEN}
        for i, n in enumerate(("A", "B", "C")):
            self.lab.node(n, drives=2, mem=768, ip="%s.%d" % (NET_PREFIX, i + 1),
                          script=consumer_script if n == "A" else "agent-node.sh",
                          env=dict(env, LAB_consumer="1" if n == "A" else "0"), timeout=timeout)
        t_start = now()
        self.lab.start("A", "B", "C")
        return self.wait_inventory(3, t_start)

    def path(self):
        return self.BASE + "/meshstorvolumes/" + self.vol

    def check_rbac(self):
        """Fails when the API server refused any request (401/403): every binary must stay
        within the RBAC of the manifests."""
        code, out = self.lab.api("GET", "/testing/requests")
        if code != 200:
            raise LabError("reading the API server's request log: %s %s" % (code, out))
        refused = ["%s %s -> %d" % (r["method"], r["path"], r["status"])
                   for r in out.get("items", []) if r["status"] in (401, 403)]
        if refused:
            raise LabError("requests refused by the manifests' RBAC: %s" % refused[:10])
        say("RBAC: %d API requests, none refused" % len(out.get("items", [])))

    def get(self):
        return self.lab.api("GET", self.path())

    def create(self, spec):
        code, out = self.lab.api("POST", self.BASE + "/meshstorvolumes", {
            "apiVersion": "csi.meshstor.io/v1alpha1", "kind": "MeshStorVolume",
            "metadata": {"name": self.vol}, "spec": spec})
        if code != 201:
            raise LabError("creating %s: %s %s" % (self.vol, code, out))

    def delete(self):
        code, out = self.lab.api("DELETE", self.path())
        if code not in (200, 202):
            raise LabError("deleting %s: %s %s" % (self.vol, code, out))

    def wait_for(self, what, pred, timeout):
        """Polls the volume until pred(code, obj); fails when a VM stops or after `timeout` s."""
        limit = now() + timeout * timeout_scale()
        while True:
            code, obj = self.get()
            if pred(code, obj):
                return obj
            for vm in self.lab.vms.values():
                if vm.proc is not None and not vm.alive() and not vm.killed:
                    raise LabError("%s stopped while waiting for %s" % (vm.name, what), vm.name)
            if now() > limit:
                raise LabError("timed out after %.0f s waiting for %s; volume: %s"
                               % (timeout * timeout_scale(), what, json.dumps([code, obj])[:3000]))
            time.sleep(0.5)

    def edit(self, fn):
        """Applies fn(spec) to a fresh copy and PUTs it, again on a conflict."""
        for _ in range(20):
            code, obj = self.get()
            if code != 200:
                raise LabError("GET %s: %s %s" % (self.vol, code, obj))
            fn(obj["spec"])
            code, out = self.lab.api("PUT", self.path(), obj)
            if code == 200:
                return out
            if code != 409:
                raise LabError("PUT %s: %s %s" % (self.vol, code, out))
            time.sleep(0.2)
        raise LabError("PUT %s: conflicts did not stop" % self.vol)

    def wait_inventory(self, count, t_start, timeout=240):
        """Waits until `count` agents published drives with host NQN and address: node -> drives."""
        limit = now() + timeout * timeout_scale()
        while True:
            code, lst = self.lab.api("GET", self.BASE + "/meshstornodedevices")
            drives = {}
            for d in (lst.get("items") or []) if code == 200 else []:
                st = d.get("status") or {}
                if st.get("hostNQN") and st.get("transportAddresses"):
                    drives.setdefault(d["spec"]["nodeName"], []).append(d["spec"]["device"])
            if len(drives) >= count:
                self.lab.mark("%d agents published their drives (from start)" % count,
                              now() - t_start)
                return drives
            for vm in self.lab.vms.values():
                if vm.proc is not None and not vm.alive() and not vm.killed:
                    raise LabError("%s stopped while waiting for the agents' drives (qemu exit %s):"
                                   " see its console log" % (vm.name, vm.exit_code), vm.name)
            if now() > limit:
                raise LabError("agents did not publish their drives: %s" % sorted(drives))
            time.sleep(0.5)

    @staticmethod
    def parts(obj):
        return {p["index"]: p for p in ((obj or {}).get("status") or {}).get("partitions") or []}

    @staticmethod
    def present(obj):
        return [m for m in obj["spec"].get("members") or [] if m.get("state") == "present"]

    @classmethod
    def all_synced(cls, obj):
        ps = cls.parts(obj)
        return bool(cls.present(obj)) and all(ps.get(m["index"], {}).get("state") == "Synced"
                                              for m in cls.present(obj))


def need_binaries(args, scenario, names, apiserver=True, operator=False):
    have = {os.path.basename(b) for b in args.bin}
    for n in names:
        if n not in have:
            raise LabError("%s needs --bin PATH/%s" % (scenario, n))
    if apiserver and not args.apiserver:
        raise LabError("%s needs --apiserver PATH/meshstor-test-apiserver" % scenario)
    if operator and not args.operator:
        raise LabError("%s needs --operator PATH/meshstor-operator" % scenario)


def finish_clean(lab, cp, names=("A", "B", "C")):
    """Raises flag "done" and waits for every node's proof that nothing of MeshStor is left;
    then checks that the API server refused no request (RBAC)."""
    lab.flag("done")
    for n in names:
        lab.wait_event(n, "clean", timeout=120)
        rc = lab.wait_exit(n, timeout=60)
        if rc != 0:
            raise LabError("%s's script failed (rc=%d)" % (n, rc), n)
    say("teardown: no MeshStor partition, export, array or controller left on any node")
    cp.check_rbac()


def scenario_agents(lab, args):
    """3 VMs running meshstor-agent against the API test server on the host: a volume by CR edits."""
    need_binaries(args, "agents", ("meshstor-agent", "meshstor-sys"))
    vol = "pvc-lab-agents"
    lab.network(["A", "B", "C"])
    cp = ControlPlane(lab, args, vol)
    drives = cp.start_agent_nodes()
    drive = {n: sorted(v)[0] for n, v in drives.items()}
    part = lambda o, index: cp.parts(o).get(index, {})

    def member(index, node, role, slot, replaces=None):
        m = {"index": index, "node": node, "drive": drive[node], "sizeBytes": 513 << 20,
             "namespaceID": 1, "role": role, "state": "present", "slot": slot}
        if replaces is not None:
            m["replaces"] = replaces
        return m

    # The operator's part, played by the scenario: placement on A (consumer) and B.
    t = now()
    cp.create({"capacityBytes": 512 << 20, "replicaCount": 2, "stripeWidth": 1,
               "memberMissingTimeout": 60, "sectorSize": 4096, "consumerNode": "lab-a",
               "members": [member(0, "lab-a", "local", 0), member(1, "lab-b", "remote", 1)]})
    synced = lambda o, idx: all(part(o, i).get("state") == "Synced" for i in idx)
    cp.wait_for("the volume staged on lab-a with both members Synced",
                lambda c, o: c == 200 and (o.get("status") or {}).get("stagedPath")
                and synced(o, [0, 1]) and o["spec"].get("formattedAt"), 240)
    lab.mark("volume created, zeroed, exported, assembled, XFS, mounted (CR to staged)", now() - t)
    lab.flag("write1")
    lab.wait_event("A", "written1", timeout=120)

    t_kill = now()
    lab.kill("B")
    cp.wait_for("member 1 Missing after B's power-off",
                lambda c, o: part(o, 1).get("state") == "Missing" and part(o, 1).get("missingSince"),
                120)
    lab.mark("SIGKILL B -> member 1 reported Missing", now() - t_kill)
    lab.flag("write2")
    lab.wait_event("A", "written2", timeout=120)
    t_restart = now()
    lab.restart("B")
    cp.wait_for("member 1 Synced again after B's return", lambda c, o: synced(o, [0, 1]), 240)
    lab.mark("restart B -> re-exported, reconnected, re-added, Synced", now() - t_restart)

    t = now()
    cp.edit(lambda spec: spec["members"].append(member(2, "lab-c", "remote", 1, replaces=1)))
    cp.wait_for("replacement member 2 on lab-c Synced", lambda c, o: synced(o, [0, 2]), 240)

    def retire(index):
        def fn(spec):
            for m in spec["members"]:
                if m["index"] == index:
                    m["state"] = "retired"
        return fn

    cp.edit(retire(1))
    cp.wait_for("member 1 retired: partition deleted on lab-b", lambda c, o: not part(o, 1), 120)
    lab.mark("C's member replaced B's (hot replace), B's retired", now() - t)
    lab.flag("verify")
    lab.wait_event("A", "verified", timeout=120)

    t = now()
    cp.edit(lambda spec: spec.update({"consumerNode": ""}))
    cp.wait_for("unstaged: lab-a tore the volume down",
                lambda c, o: not (o.get("status") or {}).get("nodeName"), 120)
    cp.edit(lambda spec: [m.update({"state": "retired"}) for m in spec["members"]])
    cp.wait_for("every member retired and deleted",
                lambda c, o: not (o.get("status") or {}).get("partitions"), 120)
    lab.mark("unstage + retire everything", now() - t)
    finish_clean(lab, cp)


def scenario_system(lab, args):
    """3 VMs with meshstor-agent + the operator and the API test server on the host: by CR edits."""
    need_binaries(args, "system", ("meshstor-agent", "meshstor-sys"), operator=True)
    vol = "pvc-lab-system"
    lab.network(["A", "B", "C"])
    cp = ControlPlane(lab, args, vol, nodes=("lab-a", "lab-b", "lab-c"), operator=True)
    cp.start_agent_nodes()
    parts, present, all_synced = cp.parts, cp.present, cp.all_synced

    # CreateVolume, then NodeStageVolume on A, as the CSI shim writes them.
    t = now()
    cp.create({"capacityBytes": 512 << 20, "replicaCount": 2, "stripeWidth": 1,
               "memberMissingTimeout": 60, "sectorSize": 4096})
    cp.edit(lambda spec: spec.update({"consumerNode": "lab-a"}))
    obj = cp.wait_for("the operator's placement, then the volume staged on lab-a and Synced",
                      lambda c, o: c == 200 and (o.get("status") or {}).get("stagedPath")
                      and all_synced(o), 300)
    lab.mark("volume placed, created, exported, assembled, formatted, mounted", now() - t)
    remote = [m for m in present(obj) if m["node"] != "lab-a"]
    if len(remote) != 1:
        raise LabError("expected one remote member, got %s" % present(obj))
    victim = remote[0]["node"]
    victim_vm = victim[-1].upper()
    say("the operator placed the second copy on %s" % victim)
    lab.flag("write1")
    lab.wait_event("A", "written1", timeout=120)

    # 1. Back within memberMissingTimeout: caught up (bitmap), no replacement.
    t_kill = now()
    lab.kill(victim_vm)
    cp.wait_for("%s's member Missing" % victim,
                lambda c, o: parts(o).get(remote[0]["index"], {}).get("state") == "Missing", 120)
    lab.mark("SIGKILL %s -> its member reported Missing" % victim_vm, now() - t_kill)
    lab.flag("write2")
    lab.wait_event("A", "written2", timeout=120)
    t = now()
    lab.restart(victim_vm)
    obj = cp.wait_for("%s back within the timeout: its member caught up" % victim,
                      lambda c, o: c == 200 and all_synced(o)
                      and any(m["node"] == victim for m in present(o)), 240)
    lab.mark("restart %s -> re-exported, re-added, Synced (no replacement)" % victim_vm, now() - t)
    if len(present(obj)) != 2:
        raise LabError("a member was replaced although %s came back in time: %s"
                       % (victim, present(obj)))

    # 2. Gone for longer than memberMissingTimeout: replaced on the third node.
    t_kill = now()
    lab.kill(victim_vm)
    cp.wait_for("%s's member Missing again" % victim,
                lambda c, o: parts(o).get(remote[0]["index"], {}).get("state") == "Missing", 120)
    obj = cp.wait_for("the replacement after memberMissingTimeout (60 s), Synced",
                      lambda c, o: c == 200 and all_synced(o)
                      and all(m["node"] != victim for m in present(o)), 400)
    lab.mark("SIGKILL %s -> replaced on another node and Synced (timeout 60 s)" % victim_vm,
             now() - t_kill)
    say("members now: %s" % [(m["index"], m["node"], m["state"]) for m in obj["spec"]["members"]])
    t = now()
    lab.restart(victim_vm)
    cp.wait_for("%s's retired member torn down after its return" % victim,
                lambda c, o: remote[0]["index"] not in parts(o), 240)
    lab.mark("%s back -> its retired partition deleted" % victim_vm, now() - t)
    lab.flag("verify")
    lab.wait_event("A", "verified", timeout=120)

    # NodeUnstageVolume, then DeleteVolume.
    t = now()
    cp.edit(lambda spec: spec.update({"consumerNode": ""}))
    cp.wait_for("unstaged", lambda c, o: c == 200 and not (o.get("status") or {}).get("nodeName"),
                120)
    cp.delete()
    cp.wait_for("the volume gone (finalizer removed after every node's teardown)",
                lambda c, o: c == 404, 240)
    lab.mark("unstage + delete (finalizer) done", now() - t)
    metrics = in_netns(lab.ns, lambda: urllib.request.urlopen(
        "http://%s:9811/metrics" % HOST_IP, timeout=5).read().decode())
    for line in metrics.splitlines():
        if line.startswith(("meshstor_operator_leader", "meshstor_operator_volumes",
                            "meshstor_operator_replacements")):
            say("operator metric: " + line)
    finish_clean(lab, cp)


def scenario_csi(lab, args):
    """The CSI shim on real kernels, driven through its sockets only: operator + API test server
    on the host, agents on 3 VMs, and on A the shim (controller and node mode) and
    meshstor-csi-client playing external-provisioner, resizer and kubelet (guest/csi-node.sh)."""
    need_binaries(args, "csi", ("meshstor-agent", "meshstor-sys", "meshstor-csi-shim",
                                "meshstor-csi-client"), operator=True)
    vol = "pvc-1abc5100-0000-4000-8000-000000000001"  # its own volume ID (pvc-<uuid>)
    lab.network(["A", "B", "C"])
    cp = ControlPlane(lab, args, vol, nodes=("lab-a", "lab-b", "lab-c"), operator=True)
    cp.start_agent_nodes(consumer_script="csi-node.sh", timeout=1200)
    lab.flag("inventory")

    # The guest drives every CSI call; the host checks what they did to the MeshStorVolume.
    started = lab.wait_event("A", "started", timeout=300)
    created = lab.wait_event("A", "created", timeout=300)
    code, obj = cp.get()
    if code != 200 or obj["spec"].get("capacityBytes") != 512 << 20 or \
            obj["spec"].get("memberMissingTimeout") != 120 or obj["spec"].get("replicaCount") != 2:
        raise LabError("after CreateVolume: the request and StorageClass parameters did not "
                       "reach the spec: %s %s" % (code, json.dumps(obj)[:2000]))
    lab.mark("CreateVolume ... ValidateVolumeCapabilities (placement waits for a consumer)",
             created[0] - started[0])
    staged = lab.wait_event("A", "staged", timeout=600)
    obj = cp.wait_for("staged on lab-a and Synced",
                      lambda c, o: c == 200 and (o.get("status") or {}).get("nodeName") == "lab-a"
                      and cp.all_synced(o), 60)
    if len(cp.present(obj)) != 2 or not any(m["node"] == "lab-a" for m in cp.present(obj)):
        raise LabError("after NodeStageVolume: expected 2 members, one on lab-a: %s"
                       % cp.present(obj))
    lab.mark("NodeStageVolume: partitions, export, connect, MD, XFS, mount", staged[0] - created[0])
    expanded = lab.wait_event("A", "expanded", timeout=900)
    code, obj = cp.get()
    if code != 200 or obj["spec"].get("capacityBytes") != 1 << 30:
        raise LabError("after ControllerExpandVolume: %s %s" % (code, json.dumps(obj)[:2000]))
    lab.mark("write, read-only publish, stats, ControllerExpand + NodeExpand to 1 GiB",
             expanded[0] - staged[0])
    deleted = lab.wait_event("A", "deleted", timeout=600)
    lab.mark("unpublish, unstage, DeleteVolume", deleted[0] - expanded[0])
    t = now()
    cp.wait_for("the volume gone after DeleteVolume (finalizer removed after every teardown)",
                lambda c, o: c == 404, 240)
    lab.mark("finalizer removed after every node's teardown", now() - t)
    finish_clean(lab, cp)


def scenario_contract(lab, args):
    """1 VM, 5 drives: a Catch2 executable (--test-bin) as root with spare drives 2 to 5."""
    if not args.test_bin:
        raise LabError("contract needs --test-bin PATH (e.g. agent_sys_lab_tests)")
    test = os.path.basename(args.test_bin)
    targs = args.test_args or ["[.privileged]"]
    env = {"LAB_test": test, "LAB_test_args": " ".join(shlex.quote(a) for a in targs)}
    lab.node("A", drives=5, mem=args.mem or 1024, script="contract.sh", env=env, timeout=lab.scenario_timeout)
    lab.start("A")
    lab.wait_event("A", "up", timeout=120)
    rc = lab.wait_exit("A", timeout=lab.scenario_timeout)
    summary = [l.split("] ", 1)[-1] for l in lab.vms["A"].tail
               if re.search(r"\] (All tests passed|test cases:|assertions:|No test cases matched|No tests ran)", l)]
    say("contract: %s %s -> exit %d" % (test, " ".join(targs), rc))
    for s in summary:
        say("contract: " + s)
    if not summary:
        say("contract: no Catch2 summary line found in the console")
    if rc != 0:
        raise LabError("%s exited with %d" % (test, rc), "A")


# ---- the fault suite (docs/faults.md) ------------------------------------------------------------

class FaultRun:
    """One fault case on the `system` control plane (API test server + operator on the host,
    meshstor-agent on A, B, C running guest/fault-node.sh): a volume staged on A with a remote
    copy, meshstor-verify writing on the consumer and reporting acknowledged writes to the host,
    the fault, then every acknowledged block verified. Prints one FAULT-ROW line and fails on
    any lost acknowledged write."""

    VOL = "pvc-lab-faults"
    SLOTS = 2048  # the verifier's ring: 8 MiB of 4 KiB blocks

    def __init__(self, lab, args, case):
        self.lab, self.args, self.case = lab, args, case
        self.cmd_seq = 0
        self.run_id = None
        self.writer = None
        self.ip = {}
        self.mismatch_detail = None

    # --- set-up
    def boot(self, mem=None, resync="2s"):
        """The control plane on the host and A, B, C running the agent; returns when the three
        agents published their drives. `mem`: MiB per VM by node name (default 768); `resync`:
        the agents' --resync (2 s: the scenarios do not wait for the default 10 s)."""
        lab = self.lab
        lab.network(["A", "B", "C"])
        self.cp = ControlPlane(lab, self.args, self.VOL, nodes=("lab-a", "lab-b", "lab-c"),
                               operator=True)
        env = {"LAB_api_port": str(API_PORT), "LAB_volume": self.VOL,
               "LAB_node_token": NODE_TOKEN, "LAB_controller_token": CONTROLLER_TOKEN,
               "LAB_resync": resync}
        for i, n in enumerate(("A", "B", "C")):
            self.ip[n] = "%s.%d" % (NET_PREFIX, i + 1)
            lab.node(n, drives=2, mem=(mem or {}).get(n, 768), ip=self.ip[n],
                     script="fault-node.sh", env=env, timeout=lab.scenario_timeout)
        t = now()
        lab.start("A", "B", "C")
        self.cp.wait_inventory(3, t)

    def setup(self, missing_timeout=60, before_create=None):
        lab = self.lab
        self.boot()
        if before_create:
            before_create()
        t = now()
        self.cp.create({"capacityBytes": 512 << 20, "replicaCount": 2, "stripeWidth": 1,
                        "memberMissingTimeout": missing_timeout, "sectorSize": 4096})
        self.cp.edit(lambda spec: spec.update({"consumerNode": "lab-a"}))
        obj = self.cp.wait_for("placement, then the volume staged on lab-a and Synced",
                               lambda c, o: c == 200 and (o.get("status") or {}).get("stagedPath")
                               and self.cp.all_synced(o), 300)
        lab.mark("volume placed and staged on lab-a", now() - t)
        remote = [m for m in self.cp.present(obj) if m["node"] != "lab-a"]
        if len(remote) != 1:
            raise LabError("expected one remote member, got %s" % self.cp.present(obj))
        self.member = remote[0]
        self.victim = remote[0]["node"][-1].upper()
        self.other = ({"B", "C"} - {self.victim}).pop()
        say("faults/%s: the remote copy (member %d) is on %s" % (self.case, self.member["index"],
                                                                 self.victim))

    # --- the command channel (guest/fault-node.sh)
    def sh(self, node, script, timeout=120, check=True):
        """Runs `script` with sh on `node`; returns (rc, output)."""
        self.cmd_seq += 1
        cid = str(self.cmd_seq)
        server = self.lab.server
        with server.lock:
            server.cmds[node].append((cid, "V=/var/lib/meshstor/staging/%s\n%s" % (self.VOL, script)))
        limit = now() + timeout * timeout_scale()
        while True:
            with self.lab.events.cond:
                res = server.results.get((node, cid))
                if res is None:
                    self.lab.events.cond.wait(0.5)
            if res is not None:
                break
            self.lab._check("%s:command %s" % (node, cid))
            if now() > limit:
                raise LabError("command %s on %s: no result within %.0f s: %s"
                               % (cid, node, timeout * timeout_scale(), script[:200]), node)
        rc, out = res
        if check and rc != 0:
            raise LabError("command on %s failed (rc=%d): %s\n%s" % (node, rc, script[:200], out[-2000:]),
                           node)
        return rc, out

    def leftovers(self, node):
        """Fails unless `meshstor-sys leftovers` finds nothing of MeshStor on any of `node`'s
        drives (partitions, nvmet subsystems and ports, MD arrays, NVMe-oF controllers)."""
        self.sh(node, "args=''\nfor d in $(awk '{ print $2 }' /run/lab/drives); do "
                "args=\"$args --drive $d\"; done\nmeshstor-sys leftovers $args", timeout=120)

    # --- the verifier
    def acked(self):
        with self.lab.server.lock:
            rec = self.lab.server.acks.get(str(self.run_id))
        return dict(rec) if rec else {"acked": 0}

    def start_writer(self, node="A"):
        self.run_id = int(time.time()) % 1000000 * 10 + 1
        self.writer = node
        self.sh(node, "meshstor-verify write --file $V/verify.dat --run %d --slots %d "
                "--ack-url http://%s:%d/ack/%d --pause-ms 5 >/run/lab/verify.log 2>&1 &\n"
                "echo $! >/run/lab/verify.pid" % (self.run_id, self.SLOTS, HOST_IP, HOST_PORT,
                                                   self.run_id))
        self.wait_acks(50, "the writer's first acknowledged writes")

    def wait_acks(self, more, why, timeout=180):
        """Waits until `more` further writes were acknowledged to the host."""
        start = self.acked()["acked"]
        limit = now() + timeout * timeout_scale()
        while self.acked()["acked"] < start + more:
            self.lab._check("acknowledged writes")
            if now() > limit:
                raise LabError("%s: only %d of %d more writes acknowledged in %.0f s"
                               % (why, self.acked()["acked"] - start, more, timeout * timeout_scale()),
                               self.writer)
            time.sleep(0.3)
        say("faults/%s: %s: %d writes acknowledged" % (self.case, why, self.acked()["acked"]))

    def stop_writer(self):
        rc, out = self.sh(self.writer, "p=$(cat /run/lab/verify.pid)\nkill -TERM $p\n"
                          "while kill -0 $p 2>/dev/null; do sleep 0.2; done\ncat /run/lab/verify.log",
                          timeout=180)
        say("faults/%s: writer stopped: %s" % (self.case, out.strip().splitlines()[-1:]))

    def verify(self, node="A"):
        rec = self.acked()
        rc, out = self.sh(node, "sync\necho 3 >/proc/sys/vm/drop_caches\n"
                          "meshstor-verify verify --file $V/verify.dat --run %d --slots %d --acked %d"
                          % (self.run_id, self.SLOTS, rec["acked"]), timeout=300, check=False)
        m = re.search(r"acknowledged=(\d+) checked=(\d+) verified=(\d+) lost=(\d+)", out)
        if not m or rc not in (0, 2):
            raise LabError("meshstor-verify verify on %s failed (rc=%d): %s" % (node, rc, out[-2000:]),
                           node)
        acked, checked, verified, lost = (int(x) for x in m.groups())
        return {"acknowledged": acked, "checked": checked, "verified": verified, "lost": lost,
                "errors": int(rec.get("errors", 0)), "mismatches": self.md_check(node),
                "max_latency_ms": int(rec.get("max-latency-ms", 0)), "detail": out.strip()}

    def md_check(self, node):
        """MD's `check` of the volume's array on `node` (the verifier reads one leg, the local
        one; this compares every leg): its mismatch_cnt, or -1 when it could not run."""
        rc, out = self.sh(node, "d=$(ls -d /sys/block/md*/md | head -n 1)\n"
                          "[ -n \"$d\" ] || exit 3\n"
                          "[ \"$(cat $d/degraded)\" = 0 ] || { echo degraded; exit 4; }\n"
                          "while [ \"$(cat $d/sync_action)\" != idle ]; do sleep 1; done\n"
                          "echo check >$d/sync_action\nsleep 1\n"
                          "while [ \"$(cat $d/sync_action)\" != idle ]; do sleep 1; done\n"
                          "echo mismatch_cnt=$(cat $d/mismatch_cnt)", timeout=600, check=False)
        m = re.search(r"mismatch_cnt=(\d+)", out)
        if rc != 0 or not m:
            say("faults/%s: md check on %s did not run (rc=%d): %s" % (self.case, node, rc, out[-500:]))
            return -1
        if int(m.group(1)) > 0 or os.environ.get("MESHSTOR_LAB_LEG_DIFF") == "always":
            self.mismatch_detail = self.leg_diff(node)
        return int(m.group(1))

    # Compares the two in-sync legs of the array byte by byte from each one's data offset and
    # prints the differing 4 KiB blocks as ranges, where each lies in XFS (allocation group and
    # block; the superblock's log position for comparison: blockget needs an unmounted
    # filesystem) and the first bytes of both legs there. Read-only.
    LEG_DIFF = r"""d=$(ls -d /sys/block/md*/md | head -n 1)
md=/dev/$(basename $(dirname $d))
set --
for l in $d/dev-*; do
  case "$(cat $l/state)" in *in_sync*) set -- "$@" "${l##*/dev-}:$(cat $l/offset)" ;; esac
done
[ $# = 2 ] || { echo "legs in sync: $*: not two"; grep . $d/dev-*/state $d/dev-*/slot; cat /proc/mdstat; exit 3; }
a=${1%:*}; ao=${1#*:}; b=${2%:*}; bo=${2#*:}
lim=$(( $(cat $d/component_size) * 1024 ))
sync; echo 3 >/proc/sys/vm/drop_caches
echo "legs: $a (data offset $ao sectors) and $b (data offset $bo sectors); $lim bytes"
cmp -l /dev/$a /dev/$b $((ao * 512)) $((bo * 512)) 2>/dev/null | awk -v lim=$lim '
  BEGIN { last = -1 } $1 <= lim { k = int(($1 - 1) / 4096); if (k != last) { print k, $1 - 1 }; last = k }' >/tmp/diff.blocks
echo "differing 4 KiB blocks: $(wc -l </tmp/diff.blocks)"
awk 'NR == 1 { s = $1; e = $1; next } $1 == e + 1 { e = $1; next }
     { print s, e; s = $1; e = $1 } END { if (NR) print s, e }' /tmp/diff.blocks >/tmp/diff.ranges
xdb() { xfs_db -r -c "$1" $md </dev/null 2>/dev/null | tail -n 1; }
echo "xfs (mounted: no blockget): $(xfs_db -r -c 'sb 0' -c 'p agblocks logstart logblocks' $md 2>/dev/null | tr '\n' ' ')"
n=0
while read s e && [ $n -lt 40 ]; do
  n=$((n + 1))
  echo "range $s-$e ($((e - s + 1)) blocks, byte $((s * 4096))): AG $(xdb "convert daddr $((s * 8)) agno") block $(xdb "convert daddr $((s * 8)) agbno")"
  at=$(awk -v k=$s '$1 == k { print $2; exit }' /tmp/diff.blocks)
  echo " first difference at byte $at; 32 bytes from $((at / 16 * 16)) on each leg:"
  echo "  $a: $(dd if=/dev/$a bs=16 skip=$(((ao * 512 + at) / 16)) count=2 2>/dev/null | od -An -v -t x1 | tr -s ' \n' ' ')"
  echo "  $b: $(dd if=/dev/$b bs=16 skip=$(((bo * 512 + at) / 16)) count=2 2>/dev/null | od -An -v -t x1 | tr -s ' \n' ' ')"
done </tmp/diff.ranges
"""

    def leg_diff(self, node):
        """After an MD check found mismatches: where the legs differ (LEG_DIFF), logged."""
        rc, out = self.sh(node, self.LEG_DIFF, timeout=900, check=False)
        say("faults/%s: the legs of %s's array compared (rc=%d):\n%s"
            % (self.case, node, rc, out.strip()[-6000:]))
        return out.strip()[-6000:]

    def row(self, result, synced_s, note="", loss_expected=False):
        r = dict(result, case=self.case, synced_s=None if synced_s is None else round(synced_s, 1),
                 note=note, accel=self.lab.accel, mismatch_detail=self.mismatch_detail)
        with open(os.path.join(self.lab.logdir, "fault-row.json"), "w") as f:
            json.dump(r, f, indent=1)
        say("FAULT-ROW | %s | acknowledged %d | verified %d of %d | lost %d | Synced again after %s"
            " | md check mismatches %d | max write latency %d ms | %s"
            % (self.case, r["acknowledged"], r["verified"], r["checked"], r["lost"],
               "%.1f s" % synced_s if synced_s is not None else "n/a", r["mismatches"],
               r["max_latency_ms"], note))
        if r["lost"] and not loss_expected:
            raise LabError("faults/%s: %d acknowledged writes LOST:\n%s"
                           % (self.case, r["lost"], result["detail"]))

    # --- faults and waits
    def part_state(self, o, index):
        return self.cp.parts(o).get(index, {}).get("state")

    def wait_missing(self, index, timeout=120):
        return self.cp.wait_for("member %d Missing" % index,
                                lambda c, o: c == 200 and self.part_state(o, index) == "Missing",
                                timeout)

    def wait_synced(self, what, pred=None, timeout=300, node=None):
        """Waits until the CR says every present member is Synced (and pred), then until the
        consumer's array in its kernel is not degraded and idle: the CR may still say Synced
        when nobody could report the loss (API server down)."""
        obj = self.cp.wait_for(what, lambda c, o: c == 200 and self.cp.all_synced(o)
                               and (pred is None or pred(o)), timeout)
        node = node or self.writer or "A"
        limit = now() + timeout * timeout_scale()
        while True:
            rc, out = self.sh(node, "d=$(ls -d /sys/block/md*/md | head -n 1)\n"
                              "echo degraded=$(cat $d/degraded) action=$(cat $d/sync_action)",
                              check=False)
            if "degraded=0 action=idle" in out:
                break
            if now() > limit:
                raise LabError("%s: the CR says Synced but %s's array is not clean: %s"
                               % (what, node, out.strip()), node)
            time.sleep(1)
        return self.cp.wait_for(what, lambda c, o: c == 200 and self.cp.all_synced(o)
                                and (pred is None or pred(o)), timeout)

    def cut(self, src, dst, on):
        """One-way partition: src's packets to dst go to a MAC address nobody has (a permanent
        ARP entry on src for dst's IP; the bridge floods them and every NIC drops them), while
        dst's packets to src and everybody's to and from the host still flow. (The host's
        kernel here has no tc actions or netfilter for a filter on the bridge.)"""
        if on:
            self.sh(src, "arp -i eth0 -s %s 02:00:00:00:77:99" % self.ip[dst])
        else:
            self.sh(src, "arp -i eth0 -d %s" % self.ip[dst])
        say("faults/%s: packets %s -> %s %s" % (self.case, src, dst, "dropped" if on else "flow again"))

    def proc(self, name):
        for n, p, _ in self.lab.procs:
            if n == name:
                return p
        raise LabError("no host process %s" % name)


def needs_feature(field, what):
    """Skips a case whose product feature (issue 14) has not landed: its CRD field is absent."""
    with open(os.path.join(REPO, "crds", "meshstorvolumes.yaml")) as f:
        if field not in f.read():
            raise Skip("needs %s (CRD field %s absent: issue 14 not merged yet)" % (what, field))


def fault_catchup(f):
    """(1) the remote member's node powered off mid-write, back within memberMissingTimeout
    (300 s here): bitmap catch-up, no replacement."""
    f.setup(missing_timeout=300)  # the node's reboot under TCG alone takes up to a minute
    f.start_writer()
    idx = f.member["index"]
    f.lab.kill(f.victim)
    f.wait_missing(idx)
    f.wait_acks(100, "degraded writes")
    t = now()
    f.lab.restart(f.victim)
    obj = f.wait_synced("%s back: its member caught up" % f.victim,
                        lambda o: any(m["index"] == idx for m in f.cp.present(o)))
    synced = now() - t
    if len(f.cp.present(obj)) != 2:
        raise LabError("a member was replaced although %s came back in time" % f.victim)
    f.wait_acks(100, "writes after the catch-up")
    f.stop_writer()
    f.row(f.verify(), synced, "back within the timeout; bitmap catch-up")


def fault_replace(f):
    """(2) the remote member's node powered off past memberMissingTimeout: replaced on the third
    node while writes go on; then the old node returns and its retired member is torn down."""
    f.setup()
    f.start_writer()
    idx = f.member["index"]
    t = now()
    f.lab.kill(f.victim)
    f.wait_missing(idx)
    f.wait_synced("the replacement on the third node Synced",
                  lambda o: all(m["node"] != f.member["node"] for m in f.cp.present(o)), 400)
    synced = now() - t
    f.lab.restart(f.victim)
    f.cp.wait_for("%s's retired member torn down after its return" % f.victim,
                  lambda c, o: c == 200 and idx not in f.cp.parts(o), 240)
    f.wait_acks(100, "writes after the old node returned")
    f.stop_writer()
    f.row(f.verify(), synced, "replaced after 60 s (time from power-off); old node back, retired")


def _partition(f, src, dst):
    f.setup(missing_timeout=300)
    f.start_writer()
    idx = f.member["index"]
    src = f.victim if src == "victim" else src
    dst = f.victim if dst == "victim" else dst
    f.cut(src, dst, True)
    f.wait_missing(idx)
    f.wait_acks(200, "writes while partitioned")
    t = now()
    f.cut(src, dst, False)
    f.wait_synced("healed: member %d Synced" % idx,
                  lambda o: any(m["index"] == idx for m in f.cp.present(o)))
    synced = now() - t
    f.wait_acks(100, "writes after healing")
    f.stop_writer()
    f.row(f.verify(), synced, "%s -> %s dropped, healed" % (src, dst))


def fault_partition_to(f):
    """(3a) packets consumer -> exporter dropped until the member is Missing, then healed."""
    _partition(f, "A", "victim")


def fault_partition_from(f):
    """(3b) packets exporter -> consumer dropped until the member is Missing, then healed."""
    _partition(f, "victim", "A")


def fault_partition_replace(f):
    """(3c) packets consumer -> exporter dropped past memberMissingTimeout (60 s): the member is
    replaced on the third node while the cut-off exporter keeps running; after healing, the
    exporter's retired member is torn down and never re-added, and nothing is left on it."""
    f.setup()
    f.start_writer()
    idx = f.member["index"]
    t = now()
    f.cut("A", f.victim, True)
    f.wait_missing(idx)
    f.wait_synced("the replacement on the third node Synced while %s is cut off" % f.victim,
                  lambda o: all(m["node"] != f.member["node"] for m in f.cp.present(o)), 400)
    synced = now() - t
    f.cut("A", f.victim, False)
    f.cp.wait_for("%s's retired member torn down after healing" % f.victim,
                  lambda c, o: c == 200 and idx not in f.cp.parts(o), 240)
    rc, out = f.sh("A", "cat /proc/mdstat", check=False)
    say("faults/%s: the consumer's array after healing:\n%s" % (f.case, out.strip()))
    f.leftovers(f.victim)
    f.wait_acks(100, "writes after healing")
    f.stop_writer()
    f.row(f.verify(), synced, "A -> %s dropped past the timeout: replaced while partitioned (time "
          "from the cut); healed: retired member torn down, nothing left on %s"
          % (f.victim, f.victim))


def _taint_dead(f, node):
    code, obj = f.lab.api("GET", "/api/v1/nodes/" + node)
    if code != 200:
        raise LabError("GET node %s: %s %s" % (node, code, obj))
    obj.setdefault("spec", {}).setdefault("taints", []).append(
        {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"})
    code, out = f.lab.api("PUT", "/api/v1/nodes/" + node, obj)
    if code != 200:
        raise LabError("tainting node %s out-of-service: %s %s" % (node, code, out))


def _consumer_dies(f, wait_for_missing, force=False):
    needs_feature("startBlocked", "the stale-member guard")
    needs_feature("fencedConsumer", "the dead-consumer failover")
    f.setup()
    f.start_writer()
    idx = f.member["index"]
    f.lab.kill(f.victim)
    if wait_for_missing:
        f.wait_missing(idx)
        f.wait_acks(200, "writes after the remote leg dropped out")
    else:
        f.wait_acks(20, "a few writes right after the remote leg dropped out", timeout=60)
    f.lab.kill("A")  # the consumer dies holding the only fresh copy
    f.lab.restart(f.victim)  # the stale copy is back
    _taint_dead(f, "lab-a")
    f.cp.wait_for("lab-a fenced (status.fencedConsumer)",
                  lambda c, o: c == 200 and ((o.get("status") or {}).get("fencedConsumer") or {})
                  .get("node") == "lab-a", 240)
    f.cp.edit(lambda spec: spec.update({"consumerNode": "lab-" + f.other.lower()}))
    obj = f.cp.wait_for("the new consumer waits for the fresher member (status.startBlocked)",
                        lambda c, o: c == 200 and (o.get("status") or {}).get("startBlocked"), 240)
    if (obj.get("status") or {}).get("stagedPath"):
        raise LabError("the volume staged from the stale copy: %s" % obj.get("status"))
    say("faults/%s: blocked as it must be: %s" % (f.case, obj["status"]["startBlocked"]))
    consumer = "lab-" + f.other.lower()
    t = now()
    if force:
        # The administrator gives up on A: start from the best remaining (stale) copy.
        def annotate():
            for _ in range(20):
                code, o = f.cp.get()
                o["metadata"].setdefault("annotations", {})["csi.meshstor.io/force-start"] = "lab-1"
                code, out = f.lab.api("PUT", f.cp.path(), o)
                if code == 200:
                    return
                time.sleep(0.2)
            raise LabError("could not set the force-start annotation: %s %s" % (code, out))
        annotate()
        obj = f.cp.wait_for("the forced start recorded (status.forcedStart)",
                            lambda c, o: c == 200 and ((o.get("status") or {}).get("forcedStart")
                                                       or {}).get("token") == "lab-1"
                            and (o.get("status") or {}).get("nodeName") == consumer, 400)
        fs = obj["status"]["forcedStart"]
        synced = now() - t
        f.row(f.verify(f.other), synced, "FORCED from members %s, missing %s, loss window since %s"
              % (fs.get("fromMembers"), fs.get("missingMembers"), fs.get("lossWindowSince")),
              loss_expected=True)
        return
    f.lab.restart("A")
    f.wait_synced("staged on %s after A's member returned" % consumer,
                  lambda o: (o.get("status") or {}).get("nodeName") == consumer, 400,
                  node=f.other)
    synced = now() - t
    rc, out = f.sh("A", "cat /proc/mdstat; grep -q '^md' /proc/mdstat && exit 9; "
                   "grep ' /var/lib/meshstor/staging/' /proc/mounts && exit 9; exit 0", check=False)
    if rc != 0:
        raise LabError("the fenced consumer A assembled or mounted the volume again:\n" + out, "A")
    f.row(f.verify(f.other), synced, "new consumer waited for the fresh member, then started")


def fault_stale_consumer(f):
    """(4) the consumer dies after a remote leg dropped out and writes continued; the pod moves
    to the third node while the stale node is back: it must wait for the fresher member."""
    _consumer_dies(f, wait_for_missing=True)


def fault_stale_forced(f):
    """(4, forced) as stale-consumer, but the administrator forces the start from the stale copy
    (annotation csi.meshstor.io/force-start): the writes since the fresh member's exit are
    lost by design, and the row must show them."""
    _consumer_dies(f, wait_for_missing=True, force=True)


def fault_consumer_dies(f):
    """(5) the consumer powered off right after a member left the array (before its agent could
    record it, possibly): the next consumer must not start from the stale member."""
    _consumer_dies(f, wait_for_missing=False)


def fault_operator_kill(f):
    """(7) kill -9 of the operator during a replacement, restarted: the replacement completes."""
    f.setup()
    f.start_writer()
    idx = f.member["index"]
    t = now()
    f.lab.kill(f.victim)
    f.wait_missing(idx)
    f.cp.wait_for("the operator added a replacement member",
                  lambda c, o: c == 200 and any(m.get("replaces") == idx
                                                for m in o["spec"].get("members") or []), 300)
    op = f.proc("operator")
    op.kill()  # SIGKILL, as kill -9
    op.wait(timeout=10)
    say("faults/%s: operator killed with SIGKILL during the replacement" % f.case)
    f.wait_acks(50, "writes with no operator")
    f.lab.host_process("operator-2", f.cp.operator_argv)
    f.wait_synced("the replacement Synced after the operator's restart",
                  lambda o: all(m["node"] != f.member["node"] for m in f.cp.present(o)), 400)
    synced = now() - t
    f.stop_writer()
    f.row(f.verify(), synced, "operator SIGKILLed mid-replacement (time from power-off)")


def fault_apiserver_down(f):
    """(8) the API server unresponsive (SIGSTOP) for 60 s during I/O and a node loss: writes go
    on; after it returns the node loss is reported and the member catches up."""
    f.setup()
    f.start_writer()
    idx = f.member["index"]
    api = f.proc("apiserver")
    before = f.acked()["acked"]
    os.kill(api.pid, signal.SIGSTOP)
    say("faults/%s: API server stopped (SIGSTOP)" % f.case)
    try:
        time.sleep(10)
        f.lab.kill(f.victim)
        time.sleep(20)
        f.lab.restart(f.victim)
        time.sleep(30)
        during = f.acked()["acked"] - before
    finally:
        os.kill(api.pid, signal.SIGCONT)
    say("faults/%s: API server back (SIGCONT); %d writes acknowledged during the 60 s"
        % (f.case, during))
    if during < 100:
        raise LabError("I/O stalled while the API server was down: %d writes in 60 s" % during, "A")
    t = now()
    f.wait_synced("converged after the API server's return: member %d Synced" % idx,
                  lambda o: any(m["index"] == idx for m in f.cp.present(o)))
    synced = now() - t
    f.wait_acks(100, "writes after the API server's return")
    f.stop_writer()
    f.row(f.verify(), synced, "60 s API outage with a node lost and back; %d writes during it"
          % during)


def fault_agent_kill(f):
    """(6) the agents SIGKILLed again and again (every 4-12 s on every node, restarted at once)
    through a volume's whole life: creation and staging, a catch-up re-add, online growth, a
    replacement, deletion. Every step must finish despite the crashes (each is idempotent and
    driven from the CR), no acknowledged write may be lost, and nothing may be left behind."""
    chaos = ("rm -f /run/lab/chaos.stop\n"
             "(while [ ! -e /run/lab/chaos.stop ]; do\n"
             "  sleep $((4 + $(od -An -N1 -tu1 /dev/urandom) % 9))\n"
             "  [ -e /run/lab/chaos.stop ] && break\n"
             "  kill -9 $(cat /run/lab/agent.pid) 2>/dev/null\n"
             "  echo \"$(date +%s) agent killed\" >>/run/lab/chaos.log\n"
             "  sleep 0.2; /run/lab/start-agent.sh\n"
             "done) >/dev/null 2>&1 &\n")

    def start_chaos(nodes=("A", "B", "C")):
        for n in nodes:
            f.sh(n, chaos)
        say("faults/%s: chaos on %s: the agent is SIGKILLed every 4-12 s" % (f.case, nodes))

    def kills():
        total = 0
        for n in ("A", "B", "C"):
            rc, out = f.sh(n, "wc -l </run/lab/chaos.log 2>/dev/null || echo 0", check=False)
            total += int((out.strip().split() or ["0"])[-1])
        return total

    f.setup(before_create=start_chaos)
    f.start_writer()
    idx = f.member["index"]
    # a catch-up re-add: the remote copy's node off until its member is Missing, then back
    f.lab.kill(f.victim)
    f.wait_missing(idx)
    f.wait_acks(50, "writes with the remote leg out")
    f.lab.restart(f.victim)
    f.sh(f.victim, "true", timeout=300)
    start_chaos((f.victim,))
    f.wait_synced("%s back: member %d re-added and Synced" % (f.victim, idx),
                  lambda o: any(m["index"] == idx for m in f.cp.present(o)), 600)
    # online growth: 512 -> 768 MiB, the filesystem grown on the consumer
    f.cp.edit(lambda spec: spec.update({"capacityBytes": 768 << 20}))
    f.cp.wait_for("grown to 768 MiB (filesystem)",
                  lambda c, o: c == 200 and ((o.get("status") or {}).get("filesystemBytes") or 0)
                  >= 768 << 20, 600)
    # a replacement: the remote copy's node off past memberMissingTimeout (60 s)
    t = now()
    f.lab.kill(f.victim)
    f.wait_missing(idx)
    f.wait_synced("the replacement Synced",
                  lambda o: all(m["node"] != f.member["node"] for m in f.cp.present(o)), 600)
    synced = now() - t
    f.wait_acks(50, "writes after the replacement")
    f.stop_writer()
    result = f.verify()
    # teardown: unstage, unexport, stop, wipe on every node, still under chaos
    f.lab.restart(f.victim)
    f.sh(f.victim, "true", timeout=300)
    start_chaos((f.victim,))
    f.cp.edit(lambda spec: spec.pop("consumerNode", None))  # as NodeUnstageVolume
    f.cp.wait_for("unstaged from lab-a", lambda c, o: c == 200
                  and not (o.get("status") or {}).get("nodeName"), 600)
    f.cp.delete()
    f.cp.wait_for("the volume deleted (every node tore it down)", lambda c, o: c == 404, 600)
    n_kills = kills()
    for n in ("A", "B", "C"):
        f.sh(n, "touch /run/lab/chaos.stop")
    time.sleep(15)  # a last restart settles
    for n in ("A", "B", "C"):
        f.leftovers(n)
    say("faults/%s: no MeshStor partition, export, array or controller left on any node"
        % f.case)
    f.row(result, synced, "%d agent SIGKILLs during create, re-add, grow, replace, delete; "
          "nothing left (replacement time from power-off)" % n_kills)


class Failpoints:
    """The agent's failpoints on the lab nodes (agent/failpoints.h, guest/fault-node.sh): arm()
    restarts a node's agent with MESHSTOR_CRASH_AT, the node's watcher restarts it without the
    failpoint once it died, and state() reports "armed ...", "fired ..." or "died without
    firing"."""

    def __init__(self, f, phase):
        self.f, self.phase = f, phase
        self.armed = {}  # node -> crash-at spec
        self.rows = []   # (stage, node, spec, outcome, seconds until the stage converged)

    def spec(self, steps):
        return ",".join("%s:%s" % (s, self.phase) for s in steps)

    def arm(self, node, steps):
        spec = self.spec(steps)
        self.f.sh(node, "/run/lab/arm-failpoint.sh '%s'" % spec)
        self.armed[node] = spec
        say("faults/%s: %s's agent armed: MESHSTOR_CRASH_AT=%s" % (self.f.case, node, spec))

    def state(self, node):
        rc, out = self.f.sh(node, "cat /run/lab/failpoint.state 2>/dev/null || true", check=False)
        return out.strip()

    def wait_fired(self, stage, nodes, timeout=300):
        """Waits until the agent of each of `nodes` died at its failpoint (for a tuple of nodes:
        of any one of them) and was restarted without it."""
        limit = now() + timeout * timeout_scale()
        pending = list(nodes)
        while pending:
            for n in list(pending):
                group = n if isinstance(n, tuple) else (n,)
                for g in group:
                    st = self.state(g)
                    if st.startswith("fired"):
                        say("faults/%s: %s: %s's agent died at %s and was restarted without it"
                            % (self.f.case, stage, g, st[len("fired "):]))
                        self.rows.append([stage, g, self.armed.pop(g, "?"), "fired", None])
                        pending.remove(n)
                        break
                    if st.startswith("died"):
                        raise LabError("%s: %s's agent died, but not at its failpoint %s"
                                       % (stage, g, self.armed.get(g)), g)
            if pending and now() > limit:
                raise LabError("%s: the failpoints of %s did not fire within %.0f s: %s"
                               % (stage, pending, timeout * timeout_scale(),
                                  {n: self.armed.get(n) for n in self.armed}))
            if pending:
                self.f.lab._check("failpoints")
                time.sleep(1)

    def disarm_all(self, stage):
        """Agents still armed (their failpoint was not reached in this stage) lose it."""
        for n in list(self.armed):
            rc, out = self.f.sh(n, "/run/lab/disarm-failpoint.sh", check=False)
            say("faults/%s: %s: %s's failpoint %s not reached; disarmed (%s)"
                % (self.f.case, stage, n, self.armed.pop(n), out.strip()))

    def converged(self, stage, t):
        for r in self.rows:
            if r[0] == stage and r[4] is None:
                r[4] = round(now() - t, 1)


# The matrix of the agent-kill-<phase> cases: each stage of a volume's life with the kernel
# steps the consumer (A) and an exporter take in it, armed just before the stage is driven.
AGENT_KILL_STEPS = (
    ("create", "md-create", "partition-create"),
    ("re-add", "md-re-add", None),
    ("grow", "md-grow", "partition-grow"),
    ("replace", ("md-add", "md-replace"), "partition-create"),
    ("unstage", "md-stop", "nvmet-unexport"),
    ("delete", "partition-delete", "partition-delete"),
)


def _agent_kill_steps(f, phase):
    """(6, deterministic) the agent SIGKILLs itself at one named kernel step (agent/failpoints.h:
    MESHSTOR_FAILPOINTS_ENABLED=1 MESHSTOR_CRASH_AT=<step>:<phase>) on the consumer and on an
    exporter in each stage of a volume's life (AGENT_KILL_STEPS), and is restarted at once
    without the failpoint: each stage must converge, no acknowledged write may be lost, and
    nothing may be left behind. --steps limits the run to some stages."""
    only = set((getattr(f.args, "steps", None) or "").replace(" ", "").split(",")) - {""}
    unknown = only - {s[0] for s in AGENT_KILL_STEPS}
    if unknown:
        raise LabError("--steps: unknown stage(s) %s; stages: %s"
                       % (", ".join(sorted(unknown)), ", ".join(s[0] for s in AGENT_KILL_STEPS)))
    fp = Failpoints(f, phase)
    steps = {s[0]: s[1:] for s in AGENT_KILL_STEPS}

    def stage_on(name):
        return not only or name in only

    def listed(x):
        return list(x) if isinstance(x, tuple) else [x]

    # create: A dies at md-create, the exporter of the remote copy at partition-create
    def before_create():
        if stage_on("create"):
            fp.arm("A", listed(steps["create"][0]))
            for n in ("B", "C"):
                fp.arm(n, listed(steps["create"][1]))
    t = now()
    f.setup(before_create=before_create)
    if stage_on("create"):
        fp.wait_fired("create", ["A", ("B", "C")])
        fp.disarm_all("create")
        fp.converged("create", t)
    f.start_writer()
    idx = f.member["index"]

    if stage_on("re-add"):
        # a catch-up: packets A -> the remote copy dropped until it is Missing, then healed
        fp.arm("A", listed(steps["re-add"][0]))
        f.cut("A", f.victim, True)
        f.wait_missing(idx)
        f.wait_acks(50, "writes with the remote leg out")
        t = now()
        f.cut("A", f.victim, False)
        fp.wait_fired("re-add", ["A"])
        f.wait_synced("re-add: member %d back and Synced" % idx,
                      lambda o: any(m["index"] == idx for m in f.cp.present(o)), 600)
        fp.converged("re-add", t)
        fp.disarm_all("re-add")

    if stage_on("grow"):
        fp.arm("A", listed(steps["grow"][0]))
        fp.arm(f.victim, listed(steps["grow"][1]))
        t = now()
        f.cp.edit(lambda spec: spec.update({"capacityBytes": 768 << 20}))
        fp.wait_fired("grow", ["A", f.victim])
        f.cp.wait_for("grow: 768 MiB (filesystem)",
                      lambda c, o: c == 200 and ((o.get("status") or {}).get("filesystemBytes")
                                                 or 0) >= 768 << 20, 600)
        fp.converged("grow", t)
        fp.disarm_all("grow")

    synced = None
    exporter = f.victim
    if stage_on("replace"):
        # the remote copy's node off past memberMissingTimeout: a replacement on the third node
        fp.arm("A", listed(steps["replace"][0]))
        fp.arm(f.other, listed(steps["replace"][1]))
        t = now()
        f.lab.kill(f.victim)
        f.wait_missing(idx)
        fp.wait_fired("replace", ["A", f.other], timeout=600)
        f.wait_synced("replace: the replacement Synced",
                      lambda o: all(m["node"] != f.member["node"] for m in f.cp.present(o)), 600)
        synced = now() - t
        fp.converged("replace", t)
        fp.disarm_all("replace")
        exporter = f.other
    f.wait_acks(50, "writes before the teardown")
    f.stop_writer()
    result = f.verify()
    if stage_on("replace"):
        f.lab.restart(f.victim)  # its retired member is torn down by its (unarmed) agent
        f.sh(f.victim, "true", timeout=300)

    if stage_on("unstage"):
        fp.arm("A", listed(steps["unstage"][0]))
        fp.arm(exporter, listed(steps["unstage"][1]))
    t = now()
    f.cp.edit(lambda spec: spec.pop("consumerNode", None))  # as NodeUnstageVolume
    if stage_on("unstage"):
        fp.wait_fired("unstage", ["A", exporter])
    f.cp.wait_for("unstaged from lab-a", lambda c, o: c == 200
                  and not (o.get("status") or {}).get("nodeName"), 600)
    if stage_on("unstage"):
        fp.converged("unstage", t)
        fp.disarm_all("unstage")

    if stage_on("delete"):
        fp.arm("A", listed(steps["delete"][0]))
        fp.arm(exporter, listed(steps["delete"][1]))
    t = now()
    f.cp.delete()
    if stage_on("delete"):
        fp.wait_fired("delete", ["A", exporter])
    f.cp.wait_for("the volume deleted (every node tore it down)", lambda c, o: c == 404, 600)
    if stage_on("delete"):
        fp.converged("delete", t)
        fp.disarm_all("delete")
    time.sleep(5)
    for n in ("A", "B", "C"):
        f.leftovers(n)
    say("faults/%s: no MeshStor partition, export, array or controller left on any node" % f.case)
    for stage, node, spec, outcome, secs in fp.rows:
        say("FAILPOINT-ROW | %s | %s | %s | %s | converged after %s s"
            % (stage, node, spec, outcome, secs))
    with open(os.path.join(f.lab.logdir, "failpoint-rows.json"), "w") as out:
        json.dump([dict(zip(("stage", "node", "crash_at", "outcome", "converged_s"), r))
                   for r in fp.rows], out, indent=1)
    f.row(result, synced, "agent SIGKILLed by failpoints (%s) at %s; restarted without; nothing "
          "left (replacement time from power-off)"
          % (phase, ", ".join("%s@%s" % (r[2], r[1]) for r in fp.rows)))


def fault_agent_kill_before(f):
    """(6) deterministic: the agent dies right before each stage's kernel step."""
    _agent_kill_steps(f, "before")


def fault_agent_kill_after(f):
    """(6) deterministic: the agent dies right after each stage's kernel step succeeded."""
    _agent_kill_steps(f, "after")


def _lease(f):
    code, o = f.lab.api("GET", "/apis/coordination.k8s.io/v1/namespaces/%s/leases/meshstor-operator"
                        % RBAC_NAMESPACE)
    return (o.get("spec") or {}) if code == 200 else {}


def fault_operators_down(f):
    """(7b) both operator replicas SIGKILLed (their Lease left to expire) for 2 minutes while the
    remote copy's node is lost: writes go on degraded and nothing is replaced; a replica started
    after the outage takes the expired Lease over and replaces the member."""
    f.setup()
    standby = f.lab.host_process("operator-standby",
                                 f.cp.operator_argv + ["--identity", "lab-operator-standby"])
    f.start_writer()
    idx = f.member["index"]
    leader = _lease(f).get("holderIdentity")
    for p in (f.proc("operator"), standby):
        p.kill()
        p.wait(timeout=10)
    t_down = now()
    say("faults/%s: both operator replicas killed (SIGKILL); the Lease was held by %s"
        % (f.case, leader))
    f.lab.kill(f.victim)
    f.wait_missing(idx)
    while now() - t_down < 120:
        f.lab._check("operators down")
        time.sleep(1)
    code, o = f.cp.get()
    if any(m.get("replaces") == idx for m in (o.get("spec") or {}).get("members") or []):
        raise LabError("a replacement was placed while no operator ran: %s" % o["spec"]["members"])
    during = f.acked()["acked"]
    f.wait_acks(100, "writes with no operator and a leg lost")
    t = now()
    f.lab.host_process("operator-new", f.cp.operator_argv + ["--identity", "lab-operator-new"])
    f.cp.wait_for("the new replica holds the Lease",
                  lambda c, o: _lease(f).get("holderIdentity") == "lab-operator-new", 120)
    took = now() - t
    lab_lease = _lease(f)
    say("faults/%s: Lease taken over %.1f s after the new replica started (%s)"
        % (f.case, took, lab_lease))
    f.wait_synced("the replacement Synced after the operators' return",
                  lambda o: all(m["node"] != f.member["node"] for m in f.cp.present(o)), 400)
    synced = now() - t
    f.stop_writer()
    f.row(f.verify(), synced, "both operators down 120 s with a node lost (%d writes acknowledged "
          "by then); a new replica took the expired Lease in %.1f s and replaced the member (time "
          "from its start)" % (during, took))


def fault_drive_removed(f):
    """(9) the exporter's NVMe drive holding the remote copy disappears (PCI remove of the
    emulated controller) mid-write: the consumer's MD fails the leg, the member is replaced on
    another drive while writes go on, and the exporter's agent keeps serving its other drive."""
    f.setup()
    f.start_writer()
    idx = f.member["index"]
    drive = f.member["drive"]
    rc, out = f.sh(f.victim, "d=$(readlink -f /sys/block/%s/device/device)\necho $d\n"
                   "echo 1 >$d/remove\nsleep 1\n[ ! -e /sys/block/%s ] && echo removed"
                   % (drive, drive))
    if "removed" not in out:
        raise LabError("PCI remove of %s on %s did not remove it: %s" % (drive, f.victim, out),
                       f.victim)
    say("faults/%s: %s's %s removed from the PCI bus (%s)"
        % (f.case, f.victim, drive, out.strip().splitlines()[0]))
    t = now()
    f.cp.wait_for("member %d Faulty or Missing" % idx,
                  lambda c, o: c == 200 and f.part_state(o, idx) in ("Faulty", "Missing"), 300)
    f.wait_acks(100, "writes after the drive's removal")
    gone = (f.member["node"], drive)
    f.wait_synced("the replacement Synced, nothing left on the removed drive",
                  lambda o: all((m["node"], m.get("drive")) != gone for m in f.cp.present(o)), 400)
    synced = now() - t
    f.wait_acks(100, "writes after the replacement")
    f.stop_writer()
    f.row(f.verify(), synced, "%s of %s removed (PCI); replaced (time from the removal)"
          % (drive, f.member["node"]))


def fault_all_reboot(f):
    """(10) every node powered off, the stale copy's first: the remote copy's node goes off
    mid-write (its member leaves the array), writes go on, then A and C go off too; the nodes
    return stale first (the remote copy's node, the third node, A last): nothing may start from
    the stale copy; when A returns it assembles from its fresh member and the stale one catches
    up."""
    needs_feature("startBlocked", "the stale-member guard")
    f.setup(missing_timeout=900)  # no replacement: the nodes come back
    f.start_writer()
    idx = f.member["index"]
    f.lab.kill(f.victim)
    f.wait_missing(idx)
    f.wait_acks(200, "writes after the remote leg dropped out")
    f.lab.kill("A")
    f.lab.kill(f.other)
    say("faults/%s: every node is off (%s first)" % (f.case, f.victim))
    f.lab.restart(f.victim)
    f.lab.restart(f.other)
    for n in (f.victim, f.other):
        f.sh(n, "true", timeout=300)  # booted, command channel up
    time.sleep(30)
    for n in (f.victim, f.other):
        rc, out = f.sh(n, "cat /proc/mdstat; grep -q '^md' /proc/mdstat && exit 9; exit 0",
                       check=False)
        if rc != 0:
            raise LabError("%s assembled an array while A (the fresh copy) was off:\n%s"
                           % (n, out), n)
    code, o = f.cp.get()
    if (o.get("status") or {}).get("nodeName") not in (None, "", "lab-a"):
        raise LabError("the volume was staged elsewhere while A was off: %s" % o.get("status"))
    t = now()
    f.lab.restart("A")
    f.wait_synced("A back: staged from its fresh member, the stale member caught up",
                  lambda o: (o.get("status") or {}).get("nodeName") == "lab-a"
                  and (o.get("status") or {}).get("stagedPath")
                  and any(m["index"] == idx for m in f.cp.present(o)), 600, node="A")
    synced = now() - t
    f.row(f.verify("A"), synced, "all 3 nodes off, back stale first; A last (time from A's "
          "restart)")


FAULT_CASES = {
    "catchup": fault_catchup,
    "replace": fault_replace,
    "partition-to": fault_partition_to,
    "partition-from": fault_partition_from,
    "partition-replace": fault_partition_replace,
    "stale-consumer": fault_stale_consumer,
    "stale-forced": fault_stale_forced,
    "consumer-dies": fault_consumer_dies,
    "operator-kill": fault_operator_kill,
    "apiserver-down": fault_apiserver_down,
    "operators-down": fault_operators_down,
    "drive-removed": fault_drive_removed,
    "all-reboot": fault_all_reboot,
    "agent-kill": fault_agent_kill,
    "agent-kill-before": fault_agent_kill_before,
    "agent-kill-after": fault_agent_kill_after,
}


def scenario_faults(lab, args):
    """Fault suite: one case (--case) with meshstor-verify proving no acknowledged write is lost."""
    need_binaries(args, "faults", ("meshstor-agent", "meshstor-sys", "meshstor-verify"),
                  operator=True)
    if args.case not in FAULT_CASES:
        raise LabError("faults needs --case, one of: %s" % ", ".join(FAULT_CASES))
    FAULT_CASES[args.case](FaultRun(lab, args, args.case))


# ---- scenario agent-rss: the real agent's memory with 100 volumes ----------------------------

AGENT_RSS_VOLUMES = 100
AGENT_STRACE_SECONDS = 10


def sections(text, entry):
    """The "== name" sections of a guest script's output: {name: [entry(line), ...]}, lines for
    which entry() gives None left out."""
    out, part = {}, None
    for line in text.splitlines():
        if line.startswith("== "):
            part = line[3:].strip()
            out[part] = []
        elif part and line.strip():
            e = entry(line)
            if e is not None:
                out[part].append(e)
    return out


def agent_syscall_profile(f, node):
    """What the idle agent on `node` asks the kernel for: `strace -f` attached for
    AGENT_STRACE_SECONDS (after the idle minute was measured: tracing slows the agent), the
    system calls counted by name, the files opened counted by path with numbers replaced by N,
    and the programs executed. Printed and returned (top 25 of each)."""
    secs = AGENT_STRACE_SECONDS
    _, text = f.sh(node, (
        "p=$(cat /run/lab/agent.pid)\n"
        "timeout -s INT %d /lab/bin/strace -f -qq -o /tmp/agent.strace -p $p >/dev/null 2>&1\n"
        "echo '== calls'\n"
        "sed -n 's/^[0-9]* *\\([a-z_0-9]*\\)(.*/\\1/p' /tmp/agent.strace | sort | uniq -c | sort -rn"
        " | head -25\n"
        "echo '== opened'\n"
        "sed -n 's/.*open[a-z0-9]*([^\"]*\"\\([^\"]*\\)\".*/\\1/p' /tmp/agent.strace"
        " | sed 's/[0-9][0-9]*/N/g' | sort | uniq -c | sort -rn | head -25\n"
        "echo '== executed'\n"
        "sed -n 's/.*execve(\"\\([^\"]*\\)\", \\[\\([^]]*\\)\\].*/\\1 \\2/p' /tmp/agent.strace"
        " | cut -c1-100 | sed 's/[0-9][0-9]*/N/g' | sort | uniq -c | sort -rn | head -25\n"
        "rm -f /tmp/agent.strace\n") % secs, timeout=secs + 120)

    def entry(line):  # "  12 openat": [what, count]
        count, _, what = line.strip().partition(" ")
        return [what, int(count)] if count.isdigit() else None

    out = dict(sections(text, entry), seconds=secs)
    for part in ("calls", "opened", "executed"):
        say("agent-rss: %s, %d s of strace, %s: %s" % (node, secs, part, ", ".join(
            "%s %d" % (w, c) for w, c in out.get(part, [])[:25]) or "none"))
    return out


def agent_cpu_profile(f, node):
    """Where the idle agent on `node` spends its CPU: `perf record` (cpu-clock, no call graphs)
    for AGENT_STRACE_SECONDS, the top symbols by share of samples, printed and returned."""
    secs = AGENT_STRACE_SECONDS
    _, text = f.sh(node, (
        "p=$(cat /run/lab/agent.pid)\n"
        "/lab/bin/perf record -q -e cpu-clock -F 499 -p $p -o /tmp/agent.perf -- sleep %d"
        " >/dev/null 2>&1\n"
        "echo '== dso'\n"
        "/lab/bin/perf report -q -i /tmp/agent.perf --stdio --no-children --sort dso"
        " 2>/dev/null | head -12\n"
        "echo '== symbol'\n"
        "/lab/bin/perf report -q -i /tmp/agent.perf --stdio --no-children --sort dso,symbol"
        " 2>/dev/null | head -30\n"
        "rm -f /tmp/agent.perf\n") % secs, timeout=secs + 300)

    def entry(line):  # "  12.35%  libc.so.6  [.] read  -  -": [what, percent]
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].endswith("%"):
            return None
        return [" ".join(w for w in parts[1].split() if w != "-"), float(parts[0].rstrip("%"))]

    out = dict(sections(text, entry), seconds=secs)
    for part in ("dso", "symbol"):
        say("agent-rss: %s, %d s of perf, by %s: %s" % (node, secs, part, "; ".join(
            "%.1f%% %s" % (p, w) for w, p in out.get(part, [])) or "no samples"))
    return out


def scenario_agent_rss(lab, args):
    """The `faults` control plane (API test server + operator on the host, meshstor-agent on
    A, B, C) with 100 volumes of 2 replicas, all staged on A (the heaviest role: A's agent runs
    100 arrays and mounts, B's and C's export about 50 each). Prints each agent's resident
    memory (VmRSS, peak VmHWM) and CPU with no volume, with the 100 settled, after an idle
    minute, and after they were unstaged and deleted; writes agent-rss.json."""
    need_binaries(args, "agent-rss", ("meshstor-agent", "meshstor-sys"), operator=True)
    count = int(os.environ.get("MESHSTOR_BENCH_AGENT_VOLUMES", str(AGENT_RSS_VOLUMES)))
    # 100 members of 512 MiB (the CRD's minimum; +1 MiB of MD metadata) on A's two sparse
    # drives: zeroed with write-zeroes, so the images stay small
    lab.disk_size = max(lab.disk_size, 28 << 30)
    f = FaultRun(lab, args, "agent-rss")
    # 100 XFS mounts; MESHSTOR_BENCH_AGENT_RESYNC=10s measures the idle minute at the default
    resync = os.environ.get("MESHSTOR_BENCH_AGENT_RESYNC", "2s")
    say("agent-rss: %d volumes, the agents' --resync %s" % (count, resync))
    f.boot(mem={"A": 2048}, resync=resync)
    nodes = ("A", "B", "C")
    names = ["rss-%03d" % i for i in range(count)]
    path = lambda name: ControlPlane.BASE + "/meshstorvolumes/" + name  # noqa: E731

    def sample(what):
        out = {}
        for n in nodes:
            _, text = f.sh(n, "p=$(cat /run/lab/agent.pid)\n"
                           "awk '/^(VmRSS|VmHWM):/ { print $1, $2 }' /proc/$p/status\n"
                           "awk '{ print \"ticks:\", $14, $15 }' /proc/$p/stat\n"
                           "timeout 5 wget -q -O - http://127.0.0.1:9810/metrics | awk"
                           " '/^meshstor_agent_pass_duration_seconds_(sum|count)/"
                           " { print $1 \":\", $2 }'")
            kv = dict(l.split(":", 1) for l in text.strip().splitlines() if ":" in l)
            utime, stime = (int(t) / 100.0 for t in kv["ticks"].split()[:2])
            metric = lambda suffix: float(next(  # noqa: E731
                (v for k, v in kv.items()
                 if k.startswith("meshstor_agent_pass_duration_seconds_" + suffix)), "0"))
            out[n] = {"rss_kib": int(kv["VmRSS"].split()[0]), "hwm_kib": int(kv["VmHWM"].split()[0]),
                      "cpu_s": round(utime + stime, 2), "user_s": utime, "system_s": stime,
                      "passes": int(metric("count")), "pass_s": round(metric("sum"), 3)}
        say("agent-rss: %-26s %s" % (what, "  ".join(
            "%s %.1f MiB (peak %.1f), %.1f CPU-s (%.1f user)" % (
                n, v["rss_kib"] / 1024, v["hwm_kib"] / 1024, v["cpu_s"], v["user_s"])
            for n, v in out.items())))
        return out

    def volumes():
        code, out = lab.api("GET", ControlPlane.BASE + "/meshstorvolumes", timeout=30)
        if code != 200:
            raise LabError("listing volumes: %s %s" % (code, out))
        return [o for o in out.get("items", []) if o["metadata"]["name"] in names]

    def wait_all(what, pred, timeout=1800):  # pred None: until none is left
        t0, limit = now(), now() + timeout * timeout_scale()
        while True:
            vs = volumes()
            done = sum(1 for o in vs if pred and pred(o))
            if (vs and done == len(vs)) or (not vs and pred is None):
                return now() - t0
            lab._check(what)
            if now() > limit:
                raise LabError("%s: %d of %d after %.0f s" % (what, done, len(vs), now() - t0))
            time.sleep(3)

    rows = {"empty": sample("no volume")}
    for name in names:
        code, out = lab.api("POST", ControlPlane.BASE + "/meshstorvolumes", {
            "apiVersion": "csi.meshstor.io/v1alpha1", "kind": "MeshStorVolume",
            "metadata": {"name": name},
            "spec": {"capacityBytes": 512 << 20, "replicaCount": 2, "stripeWidth": 1,
                     "memberMissingTimeout": 900, "sectorSize": 4096, "consumerNode": "lab-a"}})
        if code != 201:
            raise LabError("creating %s: %s %s" % (name, code, out))
    took = wait_all("%d volumes staged on lab-a and Synced" % count,
                    lambda o: (o.get("status") or {}).get("stagedPath")
                    and ControlPlane.all_synced(o))
    lab.mark("%d volumes placed, staged on lab-a and Synced" % count, took)
    time.sleep(20)  # a few resync passes (2 s here) over the settled volumes
    rows["settled"] = sample("%d volumes settled" % count)
    time.sleep(60)
    rows["idle"] = sample("after an idle minute")
    idle_cpu = {n: round(rows["idle"][n]["cpu_s"] - rows["settled"][n]["cpu_s"], 2) for n in nodes}
    idle_user = {n: round(rows["idle"][n]["user_s"] - rows["settled"][n]["user_s"], 2)
                 for n in nodes}
    idle_passes = {n: rows["idle"][n]["passes"] - rows["settled"][n]["passes"] for n in nodes}
    idle_pass_s = {n: rows["idle"][n]["pass_s"] - rows["settled"][n]["pass_s"] for n in nodes}
    say("agent-rss: idle CPU over 60 s: %s" % ", ".join(
        "%s %.2f s (%.1f %%, %.2f s user; %d passes, %.0f ms each)" % (
            n, c, c / 60 * 100, idle_user[n], idle_passes[n],
            1000 * idle_pass_s[n] / max(idle_passes[n], 1))
        for n, c in idle_cpu.items()))
    given = set(os.path.basename(b) for b in args.bin)
    if "strace" in given:
        rows["syscalls"] = {n: agent_syscall_profile(f, n) for n in nodes}
    if "perf" in given:
        rows["profile"] = {n: agent_cpu_profile(f, n) for n in nodes}

    for name in names:  # unstage (as the CSI shim does), then delete
        code, obj = lab.api("GET", path(name))
        obj["spec"].pop("consumerNode", None)
        code, out = lab.api("PUT", path(name), obj)
        if code != 200:
            raise LabError("unstaging %s: %s %s" % (name, code, out))
    took = wait_all("%d volumes unstaged" % count,
                    lambda o: not (o.get("status") or {}).get("stagedPath"))
    lab.mark("%d volumes unstaged" % count, took)
    for name in names:
        code, out = lab.api("DELETE", path(name))
        if code not in (200, 202):
            raise LabError("deleting %s: %s %s" % (name, code, out))
    took = wait_all("%d volumes deleted" % count, None)
    lab.mark("%d volumes deleted, members torn down" % count, took)
    rows["deleted"] = sample("all deleted")
    for n in nodes:
        f.leftovers(n)
    say("agent-rss: nothing left on any node (meshstor-sys leftovers)")
    out = os.path.join(args.workdir, "agent-rss.json")
    with open(out, "w") as fh:
        json.dump({"accelerator": lab.accel, "volumes": count, "samples": rows,
                   "idle_cpu_s_per_min": idle_cpu,
                   "idle_user_s_per_min": idle_user, "idle_passes_per_min": idle_passes}, fh, indent=2)
    say("results written to %s" % out)


# ---- scenario k8s: a real Kubernetes cluster ----------------------------------------------------

sys.path.insert(0, os.path.join(REPO, "e2e", "install"))
import kube_cluster  # noqa: E402  (e2e/install: etcd + kube-apiserver + controllers)

K8S_HOST_NAMES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl",
                  "kubelet")
K8S_SIDECARS = ("csi-provisioner", "csi-resizer", "csi-node-driver-registrar", "livenessprobe")
# Debian's containerd, runc and CNI plugins, copied from the host into the nodes' read-only drive
K8S_NODE_TOOLS = {"containerd": "/usr/bin/containerd",
                  "containerd-shim-runc-v2": "/usr/bin/containerd-shim-runc-v2",
                  "ctr": "/usr/bin/ctr", "runc": "/usr/sbin/runc"}
K8S_CNI = ("bridge", "host-local", "loopback")
K8S_CNI_DIR = "/usr/lib/cni"


def build_k8s_disk(cache, k8s_bin, images):
    """The nodes' read-only drive (ext4, shared by every node): kubelet, containerd, runc, ctr
    in bin/, the CNI plugins in cni/, their non-base libraries under root/, the OCI archives in
    images/. Rebuilt only when an input changed. Returns its path."""
    inputs = [(os.path.join(k8s_bin, "kubelet"), "bin/kubelet")]
    inputs += [(p, "bin/" + n) for n, p in K8S_NODE_TOOLS.items()]
    inputs += [(os.path.join(K8S_CNI_DIR, n), "cni/" + n) for n in K8S_CNI]
    inputs += [(os.path.join(images, f), "images/" + f) for f in sorted(os.listdir(images))
               if f.endswith(".oci.tar")]
    for src, _ in inputs:
        if not os.path.isfile(src):
            raise LabError("k8s: %s is missing (e2e/lab/setup.sh installs containerd, runc and "
                           "containernetworking-plugins)" % src)
    h = hashlib.sha256()
    for src, dst in inputs:
        st = os.stat(src)
        h.update(("%s %s %d %d\n" % (src, dst, st.st_size, int(st.st_mtime))).encode())
    stamp = h.hexdigest()[:32]
    d = os.path.join(cache, "k8s")
    os.makedirs(d, exist_ok=True)
    out = os.path.join(d, "k8s-ro.ext4")
    try:
        if open(out + ".stamp").read().strip() == stamp:
            return out
    except OSError:
        pass
    t = now()
    stage = os.path.join(d, "stage")
    shutil.rmtree(stage, ignore_errors=True)
    size = 0
    libs = set()
    for src, dst in inputs:
        os.makedirs(os.path.dirname(os.path.join(stage, dst)), exist_ok=True)
        shutil.copy2(src, os.path.join(stage, dst))
        size += os.path.getsize(src)
        if dst.startswith(("bin/", "cni/")):
            r = run(["ldd", src], check=False, quiet=True)
            for m in re.finditer(r"=> (/\S+)", r.stdout):
                if not re.search(r"/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so", m.group(1)):
                    libs.add(m.group(1))
    for lib in libs:
        real = os.path.realpath(lib)
        dst = os.path.join(stage, "root", lib.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(real, dst)
        size += os.path.getsize(real)
    os.makedirs(os.path.join(stage, "root"), exist_ok=True)
    with open(os.path.join(stage, "stamp"), "w") as f:
        f.write(stamp + "\n")
    mib = int(size * 1.15 / (1 << 20)) + 64
    if os.path.exists(out):
        os.unlink(out)
    run(["mkfs.ext4", "-q", "-F", "-L", "k8s-ro", "-m", "0", "-E", "root_owner=0:0", "-d", stage,
         out, "%dM" % mib])
    shutil.rmtree(stage, ignore_errors=True)
    with open(out + ".stamp", "w") as f:
        f.write(stamp + "\n")
    say("k8s: read-only node drive %s (%d MiB, %d images) built in %.1f s"
        % (out, mib, sum(1 for _, d in inputs if d.startswith("images/")), now() - t))
    return out


def build_k8s_scratch(cache, disk, size=4 << 30):
    """A template of the nodes' scratch drive: XFS with the images of the read-only drive already
    imported into containerd's k8s.io namespace (by the host's containerd: seconds, where 3
    TCG guests take minutes). Each node gets a sparse copy; its k8s-node.sh finds the stamp
    and skips the import. Rebuilt when the read-only drive changes. Returns its path."""
    d = os.path.join(cache, "k8s")
    out = os.path.join(d, "scratch-template.xfs")
    stamp = open(disk + ".stamp").read().strip()
    try:
        if open(out + ".stamp").read().strip() == stamp:
            return out
    except OSError:
        pass
    t = now()
    work = os.path.join(d, "import")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work + "/ro")
    os.makedirs(work + "/var")
    if os.path.exists(out):
        os.unlink(out)
    with open(out, "wb") as f:
        f.truncate(size)
    run(["mkfs.xfs", "-q", "-f", out])
    mounted = []
    proc = None
    try:
        run(["mount", "-o", "loop,ro", disk, work + "/ro"])
        mounted.append(work + "/ro")
        run(["mount", "-o", "loop", out, work + "/var"])
        mounted.append(work + "/var")
        os.makedirs(work + "/var/lib/containerd")
        sock = work + "/containerd.sock"
        with open(work + "/config.toml", "w") as f:
            f.write('version = 2\nroot = "%s/var/lib/containerd"\nstate = "%s/state"\n'
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    '[grpc]\n  address = "%s"\n' % (work, work, sock))
        log = open(work + "/containerd.log", "w")
        proc = subprocess.Popen(["containerd", "--config", work + "/config.toml"], stdout=log,
                                stderr=subprocess.STDOUT, preexec_fn=set_pdeathsig)
        limit = time.monotonic() + 60
        while run(["ctr", "--address", sock, "version"], check=False, quiet=True).returncode:
            if time.monotonic() > limit or proc.poll() is not None:
                raise LabError("host containerd for the image import did not start: see %s"
                               % (work + "/containerd.log"))
            time.sleep(0.3)
        for f in sorted(os.listdir(work + "/ro/images")):
            run(["ctr", "--address", sock, "-n", "k8s.io", "images", "import", "--all-platforms",
                 work + "/ro/images/" + f])
        with open(work + "/var/lib/lab-images", "w") as f:
            f.write(stamp + "\n")
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for m in reversed(mounted):
            run(["umount", m], check=False)
    shutil.rmtree(work, ignore_errors=True)
    with open(out + ".stamp", "w") as f:
        f.write(stamp + "\n")
    say("k8s: scratch drive template with the images imported (host containerd) in %.1f s"
        % (now() - t))
    return out


class K8s:
    """The scenario's cluster: kube_cluster.Cluster on HOST_IP:API_PORT inside the lab netns
    (etcd, kube-apiserver with Node,RBAC + NodeRestriction + audit log, controller-manager,
    scheduler) and kubectl as admin."""

    def __init__(self, lab, k8s_bin):
        self.lab = lab
        self.k8s_bin = k8s_bin
        self.cluster = kube_cluster.Cluster(os.path.join(lab.workdir, "cluster"), k8s_bin,
                                            log=lambda m: say("k8s: " + m), address=HOST_IP,
                                            port=API_PORT, netns=lab.ns)
        shutil.rmtree(self.cluster.workdir, ignore_errors=True)

    def start(self):
        t = now()
        self.cluster.start(timeout=180 * timeout_scale())
        # TCG nodes on a loaded host post their status late: 20 s made them flap NotReady
        self.cluster.start_controller_manager(["--node-monitor-grace-period=60s"])
        self.cluster.start_scheduler()
        self.lab.mark("control plane up (etcd, apiserver, controller-manager, scheduler)", now() - t)

    def stop(self):
        self.cluster.stop()
        for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            src = os.path.join(self.cluster.workdir, name + ".log")
            if os.path.exists(src):
                shutil.copy(src, os.path.join(self.lab.logdir, name + ".log"))

    def kubectl(self, *args, **kw):
        return self.cluster.kubectl(*args, **kw)

    def json(self, *args):
        return json.loads(self.kubectl(*(list(args) + ["-o", "json"])))

    def wait(self, what, fn, timeout):
        """Polls fn() (None/False: not yet) until it returns a value; fails after timeout s or
        when a VM stopped without being killed."""
        limit = now() + timeout * timeout_scale()
        last = None
        while True:
            try:
                v = fn()
                if v:
                    return v
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                last = e
            self.lab._check("k8s: " + what)
            if now() > limit:
                raise LabError("timed out after %.0f s waiting for %s%s"
                               % (timeout * timeout_scale(), what,
                                  " (last error: %s)" % last if last else ""))
            time.sleep(1)

    def node_ready(self, name):
        try:
            n = self.json("get", "node", name)
        except RuntimeError:
            return False
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in n["status"].get("conditions", []))

    def check_forbidden(self):
        refused = self.cluster.forbidden()
        if refused:
            raise LabError("%d requests refused by the API server (401/403), e.g.:\n  %s"
                           % (len(refused), "\n  ".join(sorted(set(refused))[:15])))
        say("RBAC: the audit log shows no refused request (401/403)")


def fetch_node_logs(lab, names=("containerd", "kubelet", "import")):
    for vm in lab.vms.values():
        if not vm.ip or not vm.alive():
            continue
        for n in names:
            try:
                data = lab.http_get(vm.ip, "/logs/%s.log" % n, timeout=10)
            except Exception:  # best effort
                continue
            with open(os.path.join(lab.logdir, "%s-%s.log" % (vm.name, n)), "w") as f:
                f.write(data)


def project_version():
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        m = re.search(r"project\(meshstor VERSION ([0-9.]+)", f.read())
    if not m:
        raise LabError("no project(meshstor VERSION ...) in CMakeLists.txt")
    return m.group(1)


def prometheus_rules(out, for_overrides):
    """The monitoring overlay's PrometheusRule .spec as a plain rule file (its `groups:` block,
    dedented), with the `for:` of the alerts in for_overrides replaced (the lab cannot wait
    10 minutes)."""
    src = os.path.join(REPO, "manifests", "overlays", "monitoring", "prometheusrule.yaml")
    lines = open(src).read().splitlines()
    start = lines.index("spec:") + 1
    text, alert = [], None
    for line in lines[start:]:
        if line and not line.startswith("  "):
            break
        line = line[2:]
        m = re.match(r"\s*- alert: (\S+)", line)
        if m:
            alert = m.group(1)
        m = re.match(r"(\s*)for: ", line)
        if m and alert in for_overrides:
            line = "%sfor: %s" % (m.group(1), for_overrides[alert])
        text.append(line)
    with open(out, "w") as f:
        f.write("\n".join(text) + "\n")
    r = run(["promtool", "check", "rules", out], check=False)
    if r.returncode != 0:
        raise LabError("promtool check rules %s: %s" % (out, r.stdout))


class Prometheus:
    """Debian's prometheus on the host in the lab netns (HOST_IP:9090), scraping the operator's
    metrics on every node (its pods use the host network) and evaluating the monitoring
    overlay's alert rules."""

    def __init__(self, lab, targets, for_overrides):
        d = os.path.join(lab.workdir, "prometheus")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        prometheus_rules(os.path.join(d, "rules.yaml"), for_overrides)
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            f.write("global: {scrape_interval: 5s, evaluation_interval: 5s}\n"
                    "rule_files: [rules.yaml]\n"
                    "scrape_configs:\n  - job_name: meshstor-operator\n"
                    "    static_configs: [{targets: [%s]}]\n"
                    % ", ".join('"%s"' % t for t in targets))
        self.lab = lab
        lab.host_process("prometheus", ["prometheus", "--config.file=" + d + "/prometheus.yml",
                                        "--storage.tsdb.path=" + d + "/data",
                                        "--web.listen-address=%s:9090" % HOST_IP])

    def alerts(self):
        """{alertname: state} of the active alerts (pending or firing)."""
        def get():
            with urllib.request.urlopen("http://%s:9090/api/v1/alerts" % HOST_IP, timeout=5) as r:
                return json.loads(r.read())
        try:
            data = in_netns(self.lab.ns, get)
        except (OSError, ValueError):
            return {}
        out = {}
        for a in data.get("data", {}).get("alerts", []):
            name = a["labels"].get("alertname")
            if out.get(name) != "firing":
                out[name] = a.get("state")
        return out


def ensure_images(build, images, k8s_bin, version):
    """The OCI archives the nodes import: tools/images.sh's (ctest `images` builds them into
    <build>/images). Missing or older than the binaries in the build tree: all are built
    (minutes); only the sidecars missing: only those (seconds)."""
    have = os.listdir(images) if os.path.isdir(images) else []
    ours = ["operator-%s.oci.tar" % version, "agent-%s.oci.tar" % version, "pause-3.10.oci.tar"]
    binaries = [os.path.join(build, p) for p in ("operator/meshstor-operator",
                                                 "csi-shim/meshstor-csi-shim",
                                                 "agent/meshstor-agent", "agent/sys/meshstor-sys")]
    for b in binaries:
        if not os.path.exists(b):
            raise LabError("k8s: %s is missing (build meshstor-agent meshstor-operator "
                           "meshstor-csi-shim meshstor-sys)" % b)
    newest = max(os.path.getmtime(b) for b in binaries)
    stale = [f for f in ours if f not in have or os.path.getmtime(os.path.join(images, f)) < newest]
    sidecars = [s for s in K8S_SIDECARS
                if not any(h.startswith(s + "-") and h.endswith(".oci.tar") for h in have)]
    cmd = [os.path.join(REPO, "tools", "images.sh"), "--build-dir", build, "--out", images,
           "--k8s-dir", k8s_bin]
    if stale:
        say("k8s: building the images (%s missing or older than the binaries): %s"
            % (", ".join(stale), " ".join(cmd)))
    elif sidecars:
        cmd.append("--sidecars-only")
        say("k8s: building the sidecar images (%s missing)" % ", ".join(sidecars))
    else:
        return
    t = now()
    r = subprocess.run(cmd)
    if r.returncode != 0:
        raise LabError("tools/images.sh failed (%d)" % r.returncode)
    say("k8s: images built in %.1f s" % (now() - t))


def scenario_k8s(lab, args):
    """A real cluster: kubelet + containerd on 3 VMs, control plane and Prometheus on the host."""
    build = os.path.abspath(args.build_dir or os.path.join(REPO, "build"))
    try:
        k8s_bin = kube_cluster.find_k8s_bin(build, K8S_HOST_NAMES + K8S_SIDECARS)
    except SystemExit as e:
        raise LabError(str(e))
    if not k8s_bin:
        raise Skip("no Kubernetes binaries: set MESHSTOR_K8S_BIN to a directory with %s "
                   "(Kubernetes 1.28+ and the CSI sidecars; see e2e/lab/README.md)"
                   % ", ".join(K8S_HOST_NAMES + K8S_SIDECARS))
    images = os.path.abspath(args.images or os.path.join(build, "images"))
    version = project_version()
    if not args.k8s_spike:
        ensure_images(os.path.abspath(args.image_build_dir or build), images, k8s_bin, version)
    disk = build_k8s_disk(lab.cache, k8s_bin, images)
    template = build_k8s_scratch(lab.cache, disk)
    lab.deadline = now() + lab.scenario_timeout  # images and drive built: the clock starts
    lab.network(["A", "B", "C"])
    k8s = K8s(lab, k8s_bin)
    lab.k8s = k8s
    k8s.start()
    nodes = {}
    for i, n in enumerate(("A", "B", "C")):
        name = "lab-" + n.lower()
        nodes[n] = name
        os.makedirs(lab.diskdir, exist_ok=True)
        scratch = os.path.join(lab.diskdir, "%s-scratch.img" % n)
        run(["cp", "--sparse=always", template, scratch])
        kc = k8s.cluster.node_kubeconfig(name)
        lab.node(n, drives=2, mem=args.mem or 1536, ip="%s.%d" % (NET_PREFIX, i + 1),
                 script="k8s-node.sh", timeout=lab.scenario_timeout,
                 env={"LAB_k8s_name": name, "LAB_pod_cidr": "10.244.%d.0/24" % (i + 1),
                      "LAB_switch_root": "1",
                      "LAB_extra_modules": "overlay bridge veth br_netfilter ext4 virtio_blk"},
                 virtio=[(disk, "k8s-ro", True), (scratch, "scratch", False)],
                 append="apparmor=0",
                 files=[("lab/k8s/ca.crt", 0o644, open(k8s.cluster.pki + "/ca.crt", "rb").read()),
                        ("lab/k8s/kubelet.kubeconfig", 0o600, kc.encode())])
    vm_of = {name: n for n, name in nodes.items()}
    t = now()
    lab.start("A", "B", "C")
    try:
        k8s_steps(lab, args, k8s, nodes, vm_of, version, t)
    finally:
        fetch_node_logs(lab)


# The writer pod: prints the checksum of each file it finds on the volume at start (the host
# compares them with what it wrote: no exec needed after a move), then waits without spawning
# a process per second (TCG nodes have little CPU to spare).
WRITER_SCRIPT = ("trap 'exit 0' TERM; cd /data && for f in a b c; do [ -f $f ] && "
                 "echo \"HAVE $(sha256sum $f)\"; done; echo STARTED; "
                 "while :; do sleep 3600 & wait $!; done")


def k8s_steps(lab, args, k8s, nodes, vm_of, version, t_boot):
    kubectl = k8s.kubectl
    for n in ("A", "B", "C"):
        lab.wait_event(n, "kubelet-started", timeout=900)
    lab.mark("3 nodes booted: containerd up, images imported, kubelet started", now() - t_boot)
    for name in nodes.values():
        k8s.wait("node %s Ready" % name, lambda: k8s.node_ready(name), 600)
    lab.mark("3 nodes Ready (from boot)", now() - t_boot)
    if args.k8s_spike:
        t = now()
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "spike", "namespace": "default"},
            "spec": {"containers": [{"name": "p", "image": "meshstor/pause:3.10",
                                     "imagePullPolicy": "Never"}]}}))
        k8s.wait("pod spike Running",
                 lambda: k8s.json("get", "pod", "spike")["status"].get("phase") == "Running", 600)
        lab.mark("pod Running", now() - t)
        say(kubectl("get", "nodes,pods", "-A", "-o", "wide"))
        k8s.check_forbidden()
        return

    # ---- 3. the manifests, as a user installs them
    t = now()
    kubectl("label", "node", *nodes.values(), "meshstor.io/storage-node=true")
    kubectl("apply", "-k", os.path.join(REPO, "manifests", "overlays", "lab"), timeout=300)
    prom = Prometheus(lab, ["%s.%d:9800" % (NET_PREFIX, i + 1) for i in range(3)],
                      {"MeshStorVolumeDegraded": "15s"})

    def installed():
        d = k8s.json("-n", "meshstor-system", "get", "deployment", "meshstor-operator")
        ds = k8s.json("-n", "meshstor-system", "get", "daemonset", "meshstor-agent")
        if (d["status"].get("availableReplicas") or 0) < 2 or \
                (ds["status"].get("numberReady") or 0) < 3:
            return False
        for name in nodes.values():
            cn = k8s.json("get", "csinode", name)
            if not any(x["name"] == "io.meshstor.csi.mesh" for x in cn["spec"].get("drivers") or []):
                return False
        return True

    k8s.wait("operator (2) and agents (3) Running, the driver in every CSINode", installed, 900)
    lab.mark("kubectl apply -k manifests/overlays/lab -> operator, agents Running, CSINode", now() - t)
    say(kubectl("-n", "meshstor-system", "get", "pods", "-o", "wide"))

    # ---- 4. StorageClass, PVC, a Deployment whose pod writes checksummed data
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "lab-r2"},
        "provisioner": "io.meshstor.csi.mesh",
        "parameters": {"replicaCount": "2", "stripeWidth": "1", "memberMissingTimeout": "60",
                       "sectorSize": "4096"},
        "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True}))
    consumer_label = "lab.meshstor.io/consumer"

    def set_consumers(names):
        for name in nodes.values():
            kubectl("label", "node", name, "--overwrite",
                    consumer_label + ("=true" if name in names else "-"))

    set_consumers(["lab-a"])
    t_pvc = now()
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "lab-r2",
                 "resources": {"requests": {"storage": "512Mi"}}}}))
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "writer", "namespace": "default"},
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"},
                 "selector": {"matchLabels": {"app": "writer"}},
                 "template": {"metadata": {"labels": {"app": "writer"}}, "spec": {
                     "nodeSelector": {consumer_label: "true"},
                     "terminationGracePeriodSeconds": 5,
                     "containers": [{"name": "app", "image": "meshstor/agent:" + version,
                                     "imagePullPolicy": "Never",
                                     "command": ["/bin/sh", "-c", WRITER_SCRIPT],
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                     "volumes": [{"name": "data",
                                  "persistentVolumeClaim": {"claimName": "data"}}]}}}}))

    def writer_pod(not_on=None):
        for p in k8s.json("get", "pods", "-l", "app=writer")["items"]:
            if p["metadata"].get("deletionTimestamp") or p["status"].get("phase") != "Running":
                continue
            if not_on and p["spec"].get("nodeName") == not_on:
                continue
            if all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}]):
                return p["metadata"]["name"], p["spec"]["nodeName"]
        return None

    pod, node = k8s.wait("the writer pod Running", writer_pod, 900)
    lab.mark("PVC created -> pod Running on %s (WaitForFirstConsumer)" % node, now() - t_pvc)
    pv = k8s.json("get", "pvc", "data")["spec"]["volumeName"]
    say("PVC data bound to %s" % pv)

    def pexec(pod, script, timeout=300):
        return kubectl("exec", pod, "-c", "app", "--", "sh", "-c", script, timeout=timeout)

    def msvol():
        return k8s.json("get", "msvol", pv)

    def settled(consumer):
        o = msvol()
        present = ControlPlane.present(o)
        return o if ((o.get("status") or {}).get("nodeName") == consumer and len(present) == 2
                     and ControlPlane.all_synced(o)
                     and any(m["node"] == consumer for m in present)) else None

    def verify(pod, sums, started=False):
        """The files written so far hold what was written: from the pod's log when it has just
        started (it prints the checksum of every file it finds, no exec into a slow TCG node),
        else with one exec."""
        if started:
            out = k8s.wait("the writer pod's start-up checksums",
                           lambda: (lambda l: l if "\nSTARTED" in "\n" + l else None)(
                               kubectl("logs", pod, "-c", "app")), 300)
            have = {l.split()[2]: l.split()[1] for l in out.splitlines()
                    if l.startswith("HAVE ")}
        else:
            out = pexec(pod, "cd /data && sha256sum %s" % " ".join(sorted(sums)))
            have = {l.split()[1]: l.split()[0] for l in out.splitlines() if len(l.split()) == 2}
        bad = {f: (want, have.get(f)) for f, want in sums.items() if have.get(f) != want}
        if bad:
            raise LabError("data lost or changed in the volume: %s (file: (written, found))" % bad)

    def write(pod, name, mib):
        out = pexec(pod, "dd if=/dev/urandom of=/data/%s bs=1M count=%d conv=fsync 2>/dev/null && "
                         "cd /data && sha256sum %s" % (name, mib, name))
        return {out.split()[1]: out.split()[0]}

    sums = write(pod, "a", 32)
    obj = k8s.wait("volume Synced on 2 nodes, staged on %s" % node, lambda: settled(node), 300)
    say("members: %s" % [(m["index"], m["node"]) for m in ControlPlane.present(obj)])


    # ---- 5. the pod re-created on the node without a member: the volume relocates
    holders = {m["node"] for m in ControlPlane.present(obj)}
    target = [n for n in nodes.values() if n not in holders][0]
    t = now()
    set_consumers([target])
    kubectl("delete", "pod", pod, "--wait=false")
    pod, node = k8s.wait("the writer pod Running on %s" % target,
                         lambda: writer_pod(not_on=node), 900)
    lab.mark("pod deleted -> re-created and Running on %s" % node, now() - t)
    obj = k8s.wait("a member on %s Synced, 2 members" % node, lambda: settled(node), 600)
    lab.mark("relocation: pod moved -> member on %s Synced, old one retired" % node, now() - t)
    verify(pod, sums, started=True)
    say("data verified on %s" % node)

    # ---- 6. kubectl drain of the consumer node
    drained = node
    set_consumers(list(nodes.values()))
    t = now()
    kubectl("drain", drained, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=600s",
            timeout=700)
    pod, node = k8s.wait("the writer pod rescheduled off %s" % drained,
                         lambda: writer_pod(not_on=drained), 900)
    lab.mark("kubectl drain %s -> pod Running on %s" % (drained, node), now() - t)
    obj = k8s.wait("volume staged on %s, Synced" % node, lambda: settled(node), 600)
    lab.mark("drain: volume follows the pod to %s, Synced" % node, now() - t)
    verify(pod, sums, started=True)
    kubectl("uncordon", drained)
    say("data verified on %s; %s uncordoned" % (node, drained))

    # ---- 7. online expansion
    t = now()
    kubectl("patch", "pvc", "data", "-p", '{"spec":{"resources":{"requests":{"storage":"1Gi"}}}}')

    # the PVC's status shows 1Gi once kubelet's NodeExpandVolume succeeded; then one df
    k8s.wait("the PVC's capacity 1Gi (node expansion done)",
             lambda: (k8s.json("get", "pvc", "data").get("status") or {})
             .get("capacity", {}).get("storage") == "1Gi", 600)
    size = int(pexec(pod, "df -k /data | tail -1").split()[1])
    if size < 900 * 1024:
        raise LabError("the PVC says 1Gi but the filesystem in the pod has %d KiB" % size)
    lab.mark("PVC patched to 1Gi -> filesystem grown in the running pod (%d KiB)" % size, now() - t)

    # ---- 8. the node holding the remote member powered off
    remote = [m for m in ControlPlane.present(obj) if m["node"] != node][0]
    victim = remote["node"]
    t = now()
    lab.kill(vm_of[victim])
    seen = {}

    def watch_alerts():
        for name, state in prom.alerts().items():
            if state == "firing" and name not in seen:
                seen[name] = now() - t
                say("alert %s firing (%.1f s after the power-off)" % (name, seen[name]))

    def missing():
        watch_alerts()
        st = ControlPlane.parts(msvol()).get(remote["index"], {}).get("state")
        return st in ("Missing", "Faulty")

    k8s.wait("member %d on %s Missing" % (remote["index"], victim), missing, 300)
    lab.mark("power-off %s -> member reported Missing (volume degraded)" % victim, now() - t)
    sums.update(write(pod, "b", 8))
    say("degraded write of 8 MiB done in the pod")

    def replaced():
        watch_alerts()
        o = msvol()
        present = ControlPlane.present(o)
        return o if (len(present) == 2 and ControlPlane.all_synced(o)
                     and all(m["node"] != victim for m in present)) else None

    obj = k8s.wait("the replacement after memberMissingTimeout (60 s), Synced", replaced, 900)
    lab.mark("power-off %s -> member replaced on another node and Synced" % victim, now() - t)
    sums.update(write(pod, "c", 8))
    if "MeshStorVolumeDegraded" not in seen:
        k8s.wait("alert MeshStorVolumeDegraded fired",
                 lambda: watch_alerts() or "MeshStorVolumeDegraded" in seen, 60)
    k8s.wait("alert MeshStorVolumeDegraded cleared",
             lambda: "MeshStorVolumeDegraded" not in prom.alerts(), 180)
    lab.mark("alert MeshStorVolumeDegraded fired and cleared (from power-off)", now() - t)
    say("alerts seen firing: %s" % ", ".join("%s after %.0f s" % kv for kv in sorted(seen.items())))
    verify(pod, sums)
    t_back = now()
    lab.restart(vm_of[victim])

    # ---- 9. delete the consumer and the PVC: PV and volume gone, nothing left on any node
    t = now()
    kubectl("delete", "deployment", "writer", "--wait=true", "--timeout=300s", timeout=330)
    kubectl("delete", "pvc", "data", "--wait=false")

    def gone():
        pvs = k8s.json("get", "pv")["items"]
        vols = k8s.json("get", "msvol")["items"]
        return not pvs and not vols

    lab.wait_event(vm_of[victim], "kubelet-started", timeout=900)
    k8s.wait("node %s Ready again" % victim, lambda: k8s.node_ready(victim), 600)
    lab.mark("%s powered on again -> Ready" % victim, now() - t_back)
    k8s.wait("PV and MeshStorVolume gone", gone, 900)
    lab.mark("PVC deleted -> PV and volume gone (every node tore down)", now() - t)
    lab.flag("done")
    for n in ("A", "B", "C"):
        lab.wait_event(n, "clean", timeout=300)
    say("no MeshStor partition, export, array or controller left on any node")
    k8s.check_forbidden()


SCENARIOS = {
    # name: (function, default scenario timeout in seconds, needs network)
    "boot": (scenario_boot, 180),
    "smoke": (scenario_smoke, 300),
    "network": (scenario_network, 480),
    "contract": (scenario_contract, 1200),
    "mesh": (scenario_mesh, 720),
    "datapath": (scenario_datapath, 1500),
    "resync": (scenario_resync, 1500),
    "agent-rss": (scenario_agent_rss, 2400),
    "agents": (scenario_agents, 900),
    "system": (scenario_system, 1200),
    "csi": (scenario_csi, 1500),
    "faults": (scenario_faults, 1500),
    "k8s": (scenario_k8s, 2400),
}


# ---- main ---------------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default=os.environ.get("MESHSTOR_LAB_CACHE") or os.path.join(REPO, "build", "lab-cache"))
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare", help="install packages, fetch the kernel, build the base image")
    sub.add_parser("clean", help="remove leftovers of killed runs (netns, taps)")
    sub.add_parser("list", help="list scenarios")
    r = sub.add_parser("run", help="run a scenario")
    r.add_argument("scenario", choices=sorted(SCENARIOS))
    r.add_argument("--workdir", help="run directory (default build/lab-runs/<scenario>); logs/ stays")
    r.add_argument("--timeout", type=float, help="scenario timeout in seconds")
    r.add_argument("--accel", choices=["auto", "tcg", "kvm"], help="default: $MESHSTOR_LAB_ACCEL or auto")
    r.add_argument("--keep", action="store_true", help="keep disk images and initrds")
    r.add_argument("--mem", type=int, help="guest memory in MiB (contract; default 1024)")
    r.add_argument("--disk-size", type=float, help="size of each sparse NVMe drive in GiB "
                   "(default: $MESHSTOR_LAB_DISK_GIB or 2)")
    r.add_argument("--bin", action="append", default=[], help="extra binary for /lab/bin (repeatable)")
    r.add_argument("--test-bin", help="contract: the Catch2 test executable to run in the VM")
    r.add_argument("--apiserver", help="agents, system: the meshstor-test-apiserver binary (host)")
    r.add_argument("--operator", help="system: the meshstor-operator binary (runs on the host)")
    r.add_argument("--case", help="faults: the fault case (docs/faults.md)")
    r.add_argument("--steps", help="faults, agent-kill-before/-after: only these stages "
                   "(comma-separated: create, re-add, grow, replace, unstage, delete)")
    r.add_argument("--build-dir", help="k8s: build tree (Kubernetes binaries unpacked into "
                   "<build>/k8s unless $MESHSTOR_K8S_BIN is set; images in <build>/images)")
    r.add_argument("--images", help="k8s: directory with the OCI archives of tools/images.sh")
    r.add_argument("--image-build-dir", help="k8s: build tree whose binaries go into the images "
                   "when they are (re)built (default: --build-dir)")
    r.add_argument("--k8s-spike", action="store_true", help="k8s: only nodes Ready + one pod")
    p.epilog = "contract: arguments after -- go to the test executable (default: [.privileged])"
    argv = sys.argv[1:]
    test_args = []
    if "--" in argv:
        test_args = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    args = p.parse_args(argv)
    args.test_args = test_args
    args.cache = os.path.abspath(args.cache)

    if args.cmd == "list":
        for n, (fn, tmo) in sorted(SCENARIOS.items()):
            print("%-9s %4d s  %s" % (n, tmo, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""))
        return 0

    interrupted = {"sig": None}

    def on_signal(sig, _frame):
        if interrupted["sig"] is None:
            interrupted["sig"] = sig
            raise Interrupted(signal.Signals(sig).name)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    try:
        if args.cmd == "clean":
            check_host()
            clean_stale()
            return 0
        if args.cmd == "prepare":
            prepare(args)
            return 0
        fn, tmo = SCENARIOS[args.scenario]
        args.workdir = args.workdir or os.path.join(REPO, "build", "lab-runs", args.scenario)
        # --bin NAME (no slash): the program of that name on PATH, e.g. Debian's fio
        args.bin = [b if os.sep in b else (shutil.which(b) or b) for b in args.bin]
        bins = list(args.bin)
        if args.test_bin:
            args.test_bin = os.path.abspath(args.test_bin)
            bins.append(args.test_bin)
        check_host()
        clean_stale()
        lab = Lab(args, args.timeout or tmo)
        t_start = now()
        ok = False
        with lab:
            try:
                prepare(args, bins, lab.payload)
                # the scenario clock starts after preparation
                lab.deadline = now() + lab.scenario_timeout
                lab.accel, note = kvm_usable(args, lab)
                say("accelerator: %s (%s)" % (lab.accel, note))
                say("scenario %s: timeout %.0f s, logs in %s" % (args.scenario, lab.scenario_timeout, lab.logdir))
                t_run = now()
                fn(lab, args)
                ok = True
                say("scenario %s PASSED in %.1f s (%.1f s with preparation)"
                    % (args.scenario, now() - t_run, now() - t_start))
            except LabError as e:
                lab.report_failure(e)
                say("scenario %s FAILED after %.1f s; logs: %s" % (args.scenario, now() - t_start, lab.logdir))
            finally:
                try:
                    lab.summary(args.scenario, ok, now() - t_start)
                except Exception as e:  # a summary problem must not hide the result
                    say("summary: %s" % e)
        return 0 if ok else 1
    except Skip as e:
        print("SKIP: %s" % e, flush=True)
        return SKIP
    except LabError as e:
        say("FAILED: %s" % e)
        return 1
    except Interrupted as e:
        say("interrupted by %s; cleaned up" % e)
        return 130


if __name__ == "__main__":
    sys.exit(main())
