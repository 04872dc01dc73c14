#!/bin/sh
# Scenario "csi", node A: the agent, the CSI shim in controller mode and in node mode, and
# meshstor-csi-client playing external-provisioner, external-resizer and kubelet. Every volume
# operation goes through the shim's sockets only; data is written and read through the publish
# targets as a pod would. The host checks the MeshStorVolume between the steps (events
# created, staged, expanded, deleted) and, on flag "done", this node proves with meshstor-sys
# that nothing of MeshStor is left.
#   LAB_api_port  the API server's port on the host bridge address
#   LAB_volume    the CSI volume name (the PV name external-provisioner would pass)
. /lab/lib.sh

ME="lab-$(echo "$LAB_node" | tr 'A-Z' 'a-z')"
K=/run/lab/kubeconfig          # the node pod's ServiceAccount: agent, node shim
KC=/run/lab/kubeconfig-controller  # the controller pod's: the shim in controller mode
write_kubeconfig $K
write_kubeconfig $KC "$LAB_controller_token"
mkdir -p /var/lib/meshstor/staging /run/csi
meshstor-agent --kubeconfig $K --node-name "$ME" --address "${LAB_ip%/*}" \
  --metrics-address :9810 --resync 2s &
meshstor-csi-shim --kubeconfig $KC --mode controller --endpoint unix:///run/csi/controller.sock \
  --metrics-address :9820 --wait-timeout 30s &
meshstor-csi-shim --kubeconfig $K --mode node --node-name "$ME" \
  --endpoint unix:///run/csi/node.sock --metrics-address :9821 --wait-timeout 30s &
log "agent and CSI shim (controller, node) started as $ME"

V="$LAB_volume"
# kubelet's paths for a CSI volume: the staging path and two pods' publish targets.
STAGE="/var/lib/kubelet/plugins/kubernetes.io/csi/io.meshstor.csi.mesh/$V/globalmount"
T1="/var/lib/kubelet/pods/pod-1/volumes/kubernetes.io~csi/$V/mount"
T2="/var/lib/kubelet/pods/pod-2/volumes/kubernetes.io~csi/$V/mount"
# As the sidecars and kubelet do: retry the retryable codes (Unavailable while the agent works).
CTL="meshstor-csi-client --endpoint unix:///run/csi/controller.sock --retry --timeout 600s"
NODE="meshstor-csi-client --endpoint unix:///run/csi/node.sock --retry --timeout 600s"
OUT=/run/lab/csi.out

# csi WANT DESCRIPTION CMD...: runs one CSI call; dies unless it exits WANT (0, or 10 + the gRPC
# code: 13 InvalidArgument, 15 NotFound, 16 AlreadyExists); the response is left in $OUT.
csi() {
  _want="$1" _desc="$2"
  shift 2
  _t0="$(uptime_s)"
  "$@" >$OUT 2>$OUT.err
  _rc=$?
  [ "$_rc" = "$_want" ] || die "$_desc: exit $_rc, wanted $_want: $(tail -n 3 $OUT.err) $(cat $OUT)"
  log "ok ($(since "$_t0")s, exit $_rc): $_desc: $(head -c 300 $OUT) $(tail -n 1 $OUT.err)"
}
has() { grep -q "$1" $OUT || die "expected $1 in the response: $(cat $OUT)"; }
is_xfs_mount() { grep -q " $1 xfs " /proc/mounts; }
fs_kib() { df -k "$1" | awk 'NR == 2 { print $2 }'; }

lab_event started
lab_wait_flag inventory 600

# Identity and capabilities.
csi 0 "Probe" $CTL probe
csi 0 "GetPluginInfo" $CTL plugin-info
has '"name":"io.meshstor.csi.mesh"'
csi 0 "GetPluginCapabilities" $CTL plugin-capabilities
has CONTROLLER_SERVICE
csi 0 "ControllerGetCapabilities" $CTL controller-capabilities
has CREATE_DELETE_VOLUME
has EXPAND_VOLUME
csi 0 "NodeGetCapabilities" $NODE node-capabilities
has STAGE_UNSTAGE_VOLUME
csi 0 "NodeGetInfo" $NODE node-info
has "\"node_id\":\"$ME\""
csi 0 "GetCapacity" $CTL get-capacity
has available_capacity

# CreateVolume: idempotent by name; the same name with another size is AlreadyExists.
P="--param replicaCount=2 --param memberMissingTimeout=120"
csi 0 "CreateVolume $V 512Mi" $CTL create-volume --name "$V" --capacity 512Mi $P
has "\"volume_id\":\"$V\""
csi 0 "CreateVolume again (idempotent)" $CTL create-volume --name "$V" --capacity 512Mi $P
csi 16 "CreateVolume with another size" $CTL create-volume --name "$V" --capacity 1Gi $P
csi 13 "CreateVolume with an unknown parameter" \
  $CTL create-volume --name "$V-x" --capacity 512Mi --param colour=blue
csi 0 "ValidateVolumeCapabilities" $CTL validate-capabilities --volume-id "$V"
has confirmed
lab_event created

# NodeStageVolume (kubelet retries while the agent builds the array), twice.
csi 0 "NodeStageVolume" $NODE node-stage --volume-id "$V" --staging-path "$STAGE"
csi 0 "NodeStageVolume again (idempotent)" $NODE node-stage --volume-id "$V" --staging-path "$STAGE"
is_xfs_mount "$STAGE" || die "the volume is not mounted at kubelet's staging path $STAGE"
lab_event staged

# Publish for pod 1 (read-write): write data through it.
csi 0 "NodePublishVolume rw" $NODE node-publish --volume-id "$V" --staging-path "$STAGE" --target "$T1"
csi 0 "NodePublishVolume rw again" $NODE node-publish --volume-id "$V" --staging-path "$STAGE" --target "$T1"
is_xfs_mount "$T1" || die "$T1 is not an XFS mount"
write_file "$T1/a" 32 || die "write to $T1 failed"
SUMS="$(cd "$T1" && sums a)"
# Publish for pod 2 (read-only): the same data, no writes.
csi 0 "NodePublishVolume read-only" \
  $NODE node-publish --volume-id "$V" --staging-path "$STAGE" --target "$T2" --readonly
is_xfs_mount "$T2" || die "$T2 is not an XFS mount"
grep " $T2 xfs " /proc/mounts | grep -q "[ ,]ro[ ,]" || die "$T2 is not mounted read-only"
if touch "$T2/should-fail" 2>/dev/null; then die "a write through the read-only target worked"; fi
drop_caches
(cd "$T2" && check_sums "$SUMS") || die "checksums differ through $T2"
csi 0 "NodeGetVolumeStats" $NODE node-stats --volume-id "$V" --volume-path "$T1"
has BYTES
has INODES
if grep -q '"abnormal":true' $OUT; then die "volume condition abnormal: $(cat $OUT)"; fi
before="$(fs_kib "$T1")"

# Expansion: the resizer's ControllerExpandVolume, then kubelet's NodeExpandVolume.
csi 0 "ControllerExpandVolume to 1Gi" $CTL controller-expand --volume-id "$V" --capacity 1Gi
has '"node_expansion_required":true'
csi 0 "NodeExpandVolume to 1Gi" \
  $NODE node-expand --volume-id "$V" --volume-path "$T1" --capacity 1Gi --staging-path "$STAGE"
after="$(fs_kib "$T1")"
log "filesystem at $T1: ${before} KiB -> ${after} KiB"
[ "$after" -gt $((before + 400 * 1024)) ] || die "the filesystem did not grow: $before -> $after KiB"
write_file "$T1/b" 8 || die "write after expansion failed"
SUMS="$SUMS
$(cd "$T1" && sums b)"
drop_caches
(cd "$T1" && check_sums "$SUMS") || die "checksums differ after expansion"
lab_event expanded

# Caller mistakes get exact codes.
csi 15 "NodeGetVolumeStats of an unknown volume" \
  $NODE node-stats --volume-id pvc-unknown --volume-path "$T1"
csi 15 "ControllerExpandVolume of an unknown volume" \
  $CTL controller-expand --volume-id pvc-unknown --capacity 1Gi
csi 13 "NodeStageVolume without a volume ID" $NODE node-stage --volume-id "" --staging-path "$STAGE"
csi 13 "NodePublishVolume without a target" \
  $NODE node-publish --volume-id "$V" --staging-path "$STAGE" --target ""

# Tear down as kubelet and the provisioner would, each call twice.
csi 0 "NodeUnpublishVolume pod 2" $NODE node-unpublish --volume-id "$V" --target "$T2"
csi 0 "NodeUnpublishVolume pod 1" $NODE node-unpublish --volume-id "$V" --target "$T1"
csi 0 "NodeUnpublishVolume pod 1 again" $NODE node-unpublish --volume-id "$V" --target "$T1"
is_xfs_mount "$T1" && die "$T1 is still mounted after NodeUnpublishVolume"
[ -e "$T1" ] && die "NodeUnpublishVolume left the target directory $T1"
csi 0 "NodeUnstageVolume" $NODE node-unstage --volume-id "$V" --staging-path "$STAGE"
csi 0 "NodeUnstageVolume again" $NODE node-unstage --volume-id "$V" --staging-path "$STAGE"
grep -q "^md" /proc/mdstat && die "an MD array is still running after NodeUnstageVolume"
is_xfs_mount "$STAGE" && die "$STAGE is still mounted after NodeUnstageVolume"
csi 0 "DeleteVolume" $CTL delete-volume --volume-id "$V"
csi 0 "DeleteVolume again (idempotent)" $CTL delete-volume --volume-id "$V"
lab_event deleted

lab_wait_flag done 900
killall meshstor-agent meshstor-csi-shim 2>/dev/null
sleep 1
args=""
for d in $(awk '{ print $2 }' /run/lab/drives); do args="$args --drive $d"; done
step leftovers "nothing of MeshStor left on $ME" meshstor-sys leftovers $args
lab_event clean
