#!/bin/sh
# Scenario "k8s": a Kubernetes node. containerd (Debian's, CRI, cgroupfs, runc) and the kubelet
# join the control plane that lab.py runs on the host (https://$LAB_host:6443) with this node's
# client certificate (/lab/k8s/, CN system:node:<name>, O system:nodes). Binaries, CNI plugins and
# the OCI image archives come from a read-only drive (serial k8s-ro); containerd's and kubelet's
# state live on an XFS scratch drive (serial scratch, mounted at /var) so they are not in RAM and
# survive a power-off. On flag "done" the node proves with meshstor-sys that nothing of MeshStor
# is left on its NVMe drives.
#   LAB_k8s_name  Node name (lab-a ...); LAB_pod_cidr  this node's pod subnet (CNI host-local)
. /lab/lib.sh

ME="$LAB_k8s_name"
IP="${LAB_ip%/*}"
LOGS=/var/log/lab

vdisk() {
  for _b in /sys/block/vd*; do
    [ "$(cat "$_b/serial" 2>/dev/null)" = "$1" ] && { echo "/dev/${_b##*/}"; return 0; }
  done
  return 1
}

setup_disks() {
  wait_until 20 "the read-only Kubernetes drive" vdisk k8s-ro || return 1
  wait_until 20 "the scratch drive" vdisk scratch || return 1
  mkdir -p /k8s
  mount -t ext4 -o ro "$(vdisk k8s-ro)" /k8s || return 1
  _s="$(vdisk scratch)"
  if [ "$(blkid -s TYPE -o value "$_s")" != xfs ]; then mkfs.xfs -q -f "$_s" || return 1; fi
  mount -t xfs -o noatime "$_s" /var || return 1
  mkdir -p /var/tmp /var/lib/kubelet /var/lib/containerd $LOGS
  chmod 1777 /var/tmp
  # the shared libraries the binaries need beyond the base image (runc: libseccomp)
  cp -a /k8s/root/. /
  mkdir -p /usr/local/bin
  for b in /k8s/bin/*; do ln -sf "$b" "/usr/local/bin/${b##*/}" || return 1; done
  # logs for the host: http://<ip>:8081/logs/<name>.log
  ln -sfn $LOGS /lab/www/logs
}

setup_system() {
  mkdir -p /sys/fs/cgroup
  mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || return 1
  for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || return 1
  done
  # kubelet's and the CSI node plugin's mounts propagate (Bidirectional / HostToContainer)
  mount --make-rshared / || return 1
  echo "$LAB_hostid" | tr -d '-' >/etc/machine-id
  printf '127.0.0.1 localhost\n%s %s\n' "$IP" "$ME" >/etc/hosts
  echo "nameserver 127.0.0.1" >/etc/resolv.conf
  hostname "$ME"
  sysctl -qw net.ipv4.ip_forward=1
  mkdir -p /etc/cni/net.d /etc/containerd
  cat >/etc/cni/net.d/10-lab.conflist <<EOT
{"cniVersion": "1.0.0", "name": "lab", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$LAB_pod_cidr"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOT
  cat >/etc/containerd/config.toml <<'EOT'
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
# TCG guests on a busy host: the 2 s defaults made shims time out and containers fail to start
[timeouts]
  "io.containerd.timeout.shim.cleanup" = "60s"
  "io.containerd.timeout.shim.load" = "60s"
  "io.containerd.timeout.shim.shutdown" = "60s"
  "io.containerd.timeout.task.state" = "60s"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/meshstor/pause:3.10"
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/k8s/bin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/k8s/cni"
    conf_dir = "/etc/cni/net.d"
EOT
}

start_containerd() {
  containerd --config /etc/containerd/config.toml >$LOGS/containerd.log 2>&1 &
  wait_until 60 "containerd's socket" ctr version
}

import_images() {
  # once per scratch drive and read-only drive (a restarted node keeps its images)
  [ "$(cat /var/lib/lab-images 2>/dev/null)" = "$(cat /k8s/stamp)" ] && return 0
  for f in /k8s/images/*.oci.tar; do
    [ -e "$f" ] || continue
    ctr -n k8s.io images import --all-platforms "$f" >>$LOGS/import.log 2>&1 || return 1
  done
  cat /k8s/stamp >/var/lib/lab-images
}

start_kubelet() {
  cat >/var/lib/kubelet/config.yaml <<EOT
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: /lab/k8s/ca.crt}
authorization: {mode: Webhook}
resolvConf: /etc/resolv.conf
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
makeIPTablesUtilChains: false
# the Node Lease (every 10 s) tells the control plane a node lives; a full status once a minute
nodeStatusReportFrequency: 1m
# TCG: a container start can take minutes on a busy host (the default 2m failed them in a loop)
runtimeRequestTimeout: 15m
EOT
  # cAdvisor's per-container statistics every 10 s take CPU a TCG guest lacks, and nothing
  # in the lab reads them (the flag has no config-file field)
  kubelet --config /var/lib/kubelet/config.yaml --kubeconfig /lab/k8s/kubelet.kubeconfig \
    --hostname-override "$ME" --node-ip "$IP" --v=1 \
    --housekeeping-interval=60s >$LOGS/kubelet.log 2>&1 &
}

step disks "drives: /k8s (read-only), /var (XFS scratch)" setup_disks
step system "cgroup2, shared /, CNI + containerd config" setup_system
step containerd "containerd running" start_containerd
step images "images imported" import_images
step kubelet "kubelet started" start_kubelet
lab_event kubelet-started "$(ctr -n k8s.io images ls -q | grep -c meshstor) images"
lab_timings

lab_wait_flag done 3600
# kubelet and containerd stop first: the agent container must not recreate anything
killall kubelet 2>/dev/null
args=""
for d in $(awk '{ print $2 }' /run/lab/drives); do args="$args --drive $d"; done
step leftovers "nothing of MeshStor left on $ME" meshstor-sys leftovers $args
lab_event clean
