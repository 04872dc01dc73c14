#!/bin/sh
# Scenario "agents": a node running the real meshstor-agent against the API test server on the
# host (http://$LAB_host:$LAB_api_port). The host drives the volume by CR edits; this script
# only keeps the agent running and, on the consumer (LAB_consumer=1), writes and verifies data in
# the volume's staging mount when the host raises flags. On flag "done" it stops the agent and
# proves with meshstor-sys that nothing of MeshStor is left on the node.
#   LAB_api_port  the API server's port on the host bridge address
#   LAB_volume    the volume name (staging mount /var/lib/meshstor/staging/<volume>)
. /lab/lib.sh

ME="lab-$(echo "$LAB_node" | tr 'A-Z' 'a-z')"
write_kubeconfig /run/lab/kubeconfig
mkdir -p /var/lib/meshstor/staging
meshstor-agent --kubeconfig /run/lab/kubeconfig --node-name "$ME" --address "${LAB_ip%/*}" \
  --metrics-address :9810 --resync 2s &
log "agent started as $ME"
lab_event agent-started

V="/var/lib/meshstor/staging/$LAB_volume"
SUMS=""
if [ "${LAB_consumer:-0}" = 1 ]; then
  lab_wait_flag write1 600
  grep -q " $V xfs " /proc/mounts || die "$V is not an XFS mount"
  write_file "$V/a" 32 || die "write to $V failed"
  SUMS="$(cd "$V" && sums a)"
  lab_event written1
  lab_wait_flag write2 600
  write_file "$V/b" 8 || die "degraded write to $V failed"
  SUMS="$SUMS
$(cd "$V" && sums b)"
  lab_event written2
  lab_wait_flag verify 600
  drop_caches
  (cd "$V" && check_sums "$SUMS") || die "checksums differ in $V"
  lab_event verified
fi

lab_wait_flag done 900
killall meshstor-agent 2>/dev/null
sleep 1
args=""
for d in $(awk '{ print $2 }' /run/lab/drives); do args="$args --drive $d"; done
step leftovers "nothing of MeshStor left on $ME" meshstor-sys leftovers $args
lab_event clean
