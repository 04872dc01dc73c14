#!/bin/sh
# Scenario "mesh", consumer node A, through meshstor-sys only (the agent's kernel layer):
#   R1  = RAID1 of A's local partition and B's (nvme-tcp), 320 MiB members
#   R10 = RAID10 near-2 of A0 B1 A2 B3 (mirror pairs span A and B), 176 MiB members
# (mkfs.xfs wants at least 300 MB)
# XFS on both with checksummed files. Host flags drive the failures: B powered off -> both
# degraded, writes go on; B back -> reconnect, --re-add, bitmap catch-up (bytes written to B's
# legs and time reported); C's member replaces B's in R1 (mdadm --replace, redundancy kept);
# every checksum verified after a remount; teardown leaves nothing on A.
. /lab/lib.sh

S=meshstor-sys
ME="lab-$(echo "$LAB_node" | tr 'A-Z' 'a-z')"  # node names are lower-case DNS labels
NET="${LAB_host%.*}"
R1=mesh-r1
R10=mesh-r10
SUMS1=""
SUMS10=""
kv() { sed -n "s/^$1=//p"; }  # kv KEY < key=value lines

local_member() {  # volume index drive size_mib -> device
  local out
  out="$($S part-ensure --drive "$(drive "$3")" --volume "$1" --index "$2" --size-mib "$4")" ||
    return 1
  echo "$out" | kv device
}
remote() {  # node volume index nsid -> device (connects when needed)
  local n="$1" ip
  case "$n" in B) ip="$NET.2" ;; C) ip="$NET.3" ;; *) return 1 ;; esac
  $S connect --node "lab-$(echo "$n" | tr 'A-Z' 'a-z')" --consumer "$ME" --addr "$ip" --nsid "$4" --volume "$2" \
    --index "$3" | kv device
}
md_dev() { $S md-state --volume "$1" | kv device; }

create() {
  a1="$(local_member $R1 0 1 320)" && a10_0="$(local_member $R10 0 1 176)" &&
    a10_2="$(local_member $R10 2 2 176)" || return 1
  b1="$(remote B $R1 1 1)" && b10_1="$(remote B $R10 1 2)" && b10_3="$(remote B $R10 3 3)" ||
    return 1
  log "R1 = $a1 + $b1 (B); R10 = $a10_0 $b10_1 (B) $a10_2 $b10_3 (B)"
  $S md-create --volume $R1 --level 1 --zeroed --size-mib 320 "$a1" "$b1:wm" >/dev/null &&
    $S md-create --volume $R10 --level 10 --zeroed --size-mib 176 "$a10_0" "$b10_1:wm" "$a10_2" \
      "$b10_3:wm" >/dev/null
}
fs() {
  mkdir -p /mnt/r1 /mnt/r10 &&
    $S xfs-ensure "$(md_dev $R1)" && $S xfs-ensure "$(md_dev $R10)" &&
    [ "$($S xfs-ensure "$(md_dev $R1)" | kv formatted)" = false ] &&
    $S mount "$(md_dev $R1)" /mnt/r1 && $S mount "$(md_dev $R10)" /mnt/r10 &&
    write_file /mnt/r1/a 48 && write_file /mnt/r10/a 48 &&
    SUMS1="$(cd /mnt/r1 && sums a)" && SUMS10="$(cd /mnt/r10 && sums a)"
}
lab_wait_flag exported 300
step create "partitions, connects to B, RAID1 + RAID10 created on zeroed members" create
$S md-state --volume $R1 | grep -E '^(array_state|degraded|member)=' | sed 's/^/  R1 /'
$S md-state --volume $R10 | grep -E '^(array_state|degraded|member)=' | sed 's/^/  R10 /'
step fs "XFS once (a second xfs-ensure formats nothing), mount, 48 MiB per array" fs
lab_event ready

degraded() {
  write_file /mnt/r1/b 16 && write_file /mnt/r10/b 16 || return 1
  SUMS1="$SUMS1
$(cd /mnt/r1 && sums b)"
  SUMS10="$SUMS10
$(cd /mnt/r10 && sums b)"
  $S md-wait --volume $R1 --until degraded --timeout-s 60 >/dev/null &&
    $S md-wait --volume $R10 --until degraded --timeout-s 60 >/dev/null
}
lab_wait_flag b-killed 120
step degraded "B powered off: 16 MiB written to each array, both degraded" degraded
lab_event degraded

catch_up() {  # the nvme host gave up on B (ctrl_loss_tmo): connect again, re-add, resync
  local t0 w0 w1 w3 n1 n10_1 n10_3 r1 r10
  n1="$(remote B $R1 1 1)" && n10_1="$(remote B $R10 1 2)" && n10_3="$(remote B $R10 3 3)" ||
    return 1
  w1="$(nvme_writes_kib "$n1")"
  w0="$(nvme_writes_kib "$n10_1")"
  w3="$(nvme_writes_kib "$n10_3")"
  t0="$(uptime_s)"
  $S md-readd --volume $R1 "$n1" && $S md-readd --volume $R10 "$n10_1" &&
    $S md-readd --volume $R10 "$n10_3" || return 1
  $S md-wait --volume $R1 --until clean --timeout-s 120 >/dev/null &&
    $S md-wait --volume $R10 --until clean --timeout-s 120 >/dev/null || return 1
  r1=$(($(nvme_writes_kib "$n1") - w1))
  r10=$(($(nvme_writes_kib "$n10_1") - w0 + $(nvme_writes_kib "$n10_3") - w3))
  b1="$n1"
  log "bitmap catch-up in $(since "$t0") s: R1 wrote ${r1} KiB to B's 327680 KiB leg," \
    "R10 ${r10} KiB to B's 2 x 180224 KiB legs"
  timing resync_r1_kib "$r1"
  timing resync_r10_kib "$r10"
  timing resync_s "$(since "$t0")"
  # A full rebuild writes the whole array; the bitmap limits it to the chunks written meanwhile,
  # and the agent's bitmap chunk (1 MiB at these sizes) to at most twice the 16 MiB written.
  [ "$r1" -gt 0 ] && [ "$r1" -le 32768 ] ||
    { log "R1 resync wrote $r1 KiB to B for 16384 KiB written: more than twice"; return 1; }
  [ "$r10" -gt 0 ] && [ "$r10" -le 32768 ] ||
    { log "R10 resync wrote $r10 KiB to B for 16384 KiB written: more than twice"; return 1; }
}
lab_wait_flag b-back 300
step catch_up "B back: reconnect, --re-add (event counts checked), bitmap resync" catch_up
lab_event resynced "$LAB_TIMINGS"

replace() {
  local c1 t0
  c1="$(remote C $R1 2 1)" || return 1
  t0="$(uptime_s)"
  $S md-replace --volume $R1 "$b1" "$c1:wm" || return 1
  # Done when C's member is in sync and B's has been marked faulty by md.
  $S md-wait --volume $R1 --until clean --timeout-s 180 >/dev/null || return 1
  until $S md-state --volume $R1 | grep -q "member=$(basename "$b1") .*faulty"; do
    [ "$(since "$t0" | cut -d. -f1)" -lt 180 ] || return 1
    sleep 0.2
  done
  $S md-remove --volume $R1 "$b1" || return 1
  timing replace_s "$(since "$t0")"
  $S md-state --volume $R1 | grep -E '^(degraded|member)=' | sed 's/^/  R1 /'
  [ "$($S md-state --volume $R1 | grep -c '^member=.*in_sync')" = 2 ]
}
step replace "C's member replaces B's in R1 (hot replace, then B's leg removed)" replace
lab_event replaced

verify() {
  $S unmount /mnt/r1 && $S unmount /mnt/r10 && drop_caches &&
    $S mount "$(md_dev $R1)" /mnt/r1 && $S mount "$(md_dev $R10)" /mnt/r10 &&
    (cd /mnt/r1 && check_sums "$SUMS1") && (cd /mnt/r10 && check_sums "$SUMS10")
}
step verify "remount, every checksum verified on both arrays" verify
step md_check1 "md check R1 (mismatch_cnt=0)" md_check "$(basename "$(md_dev $R1)")"
step md_check10 "md check R10 (mismatch_cnt=0)" md_check "$(basename "$(md_dev $R10)")"

teardown() {
  $S unmount /mnt/r1 && $S unmount /mnt/r10 &&
    $S md-stop --volume $R1 && $S md-stop --volume $R10 &&
    $S disconnect --node lab-b --consumer "$ME" && $S disconnect --node lab-c --consumer "$ME" &&
    $S part-delete --drive "$(drive 1)" --volume $R1 --index 0 &&
    $S part-delete --drive "$(drive 1)" --volume $R10 --index 0 &&
    $S part-delete --drive "$(drive 2)" --volume $R10 --index 2 &&
    $S leftovers --drive "$(drive 1)" --drive "$(drive 2)"
}
step teardown "unmount, stop arrays, disconnect, delete partitions; nothing left on A" teardown
lab_timings
log "mesh consumer passed"
