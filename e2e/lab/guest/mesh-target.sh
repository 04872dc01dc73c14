#!/bin/sh
# Scenario "mesh", exporting node (B or C), through meshstor-sys only (the agent's kernel layer):
# creates (or, after a restart, finds) its members' partitions and exports each to A's host NQN
# only. Then, driven by host flags: B checks nothing else; C tries to connect to B's export for A
# with its own host NQN (must be refused); on "<node>-release" the node unexports and deletes the
# members listed in LAB_release; on "done" everything else, then proves nothing is left.
#   LAB_members   "volume:index:drive:nsid:size_mib ..." exported by this node
#   LAB_release   "volume:index:drive:nsid" members retired on flag "<node>-release" (optional)
#   LAB_consumer  consumer node name (A); LAB_consumer_nqn its host NQN
. /lab/lib.sh

S=meshstor-sys
ADDR="${LAB_ip%/*}"
ME="lab-$(echo "$LAB_node" | tr 'A-Z' 'a-z')"  # node names are lower-case DNS labels
drives=""
export_member() {  # volume index drive nsid size_mib
  local d out
  d="$(drive "$3")"
  [ -b "$d" ] || die "drive $3 missing: $(cat /run/lab/drives)"
  out="$($S part-ensure --drive "$d" --volume "$1" --index "$2" --size-mib "$5")" || return 1
  log "partition $1/$2: $(echo $out)"
  $S export --drive "$d" --volume "$1" --index "$2" --nsid "$4" --node "$ME" \
    --consumer "$LAB_consumer" --consumer-nqn "$LAB_consumer_nqn" --addr "$ADDR" >/dev/null
}
retire_member() {  # volume index drive nsid
  $S unexport --node "$ME" --consumer "$LAB_consumer" --nsid "$4" &&
    $S part-delete --drive "$(drive "$3")" --volume "$1" --index "$2"
}
for m in $LAB_members; do
  IFS=: read -r vol idx drv nsid mib <<EOT
$m
EOT
  step "export_${vol}_$idx" "member $vol/$idx on drive $drv exported as nsid $nsid to $LAB_consumer" \
    export_member "$vol" "$idx" "$drv" "$nsid" "$mib"
  case " $drives " in *" $drv "*) ;; *) drives="$drives $drv" ;; esac
done
lab_event exported "$LAB_members"

if [ -n "${LAB_probe_refused:-}" ]; then
  # LAB_probe_refused "node:volume:index:nsid:addr": a subsystem exported to A, not to us
  IFS=: read -r pn pv pi pk pa <<EOT
$LAB_probe_refused
EOT
  lab_wait_flag exported 240
  if $S connect --node "lab-$(echo "$pn" | tr 'A-Z' 'a-z')" --consumer "$LAB_consumer" --addr "$pa" --nsid "$pk" \
    --volume "$pv" --index "$pi"; then
    die "connected to $pn's export for $LAB_consumer with this node's host NQN: the ACL let us in"
  fi
  lab_event refused "$pn"
fi

if [ -n "${LAB_release:-}" ]; then
  lab_wait_flag "$LAB_node-release" 600
  for m in $LAB_release; do
    IFS=: read -r vol idx drv nsid <<EOT
$m
EOT
    step "retire_${vol}_$idx" "retire member $vol/$idx (unexport nsid $nsid, delete partition)" \
      retire_member "$vol" "$idx" "$drv" "$nsid"
  done
  lab_event released "$LAB_release"
fi

lab_wait_flag done 900
for m in $LAB_members; do
  IFS=: read -r vol idx drv nsid mib <<EOT
$m
EOT
  step "teardown_${vol}_$idx" "teardown of member $vol/$idx" retire_member "$vol" "$idx" "$drv" "$nsid"
done
args=""
for drv in $drives; do args="$args --drive $(drive "$drv")"; done
step leftovers "nothing left: partitions, nvmet subsystems and ports" $S leftovers $args
lab_event clean
log "mesh target $LAB_node passed"
