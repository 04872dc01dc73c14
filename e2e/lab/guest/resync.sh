#!/bin/sh
# Scenario "resync", consumer node A: the bitmap catch-up after a short outage at three volume
# sizes, through meshstor-sys only (the agent's kernel layer, so each array gets the agent's bitmap
# chunk for its size). Three RAID1 arrays of a local partition and one of B's (nvme-tcp,
# write-mostly), XFS on each. B is powered off by the host; LAB_write_mib MiB are written (one
# file, fsync) to every array while B is away; B returns; A reconnects and re-adds B's members
# and reports, per array, the KiB the catch-up wrote to B's leg, the bitmap chunk and the time.
#   LAB_arrays     "volume:local_drive:nsid:size_mib ..." (B exports the same nsids)
#   LAB_write_mib  MiB written to each array while B is off (default 32)
. /lab/lib.sh

S=meshstor-sys
ME="lab-$(echo "$LAB_node" | tr 'A-Z' 'a-z')"
NET="${LAB_host%.*}"
WRITE_MIB="${LAB_write_mib:-32}"
SUMS=""
kv() { sed -n "s/^$1=//p"; }

remote() {  # volume nsid -> device (connects when needed)
  $S connect --node lab-b --consumer "$ME" --addr "$NET.2" --nsid "$2" --volume "$1" --index 1 |
    kv device
}
md_dev() { $S md-state --volume "$1" | kv device; }
each() {  # each FUNCTION: FUNCTION volume drive nsid size_mib, for every array
  local a
  for a in $LAB_arrays; do
    IFS=: read -r vol drv nsid mib <<EOT
$a
EOT
    "$1" "$vol" "$drv" "$nsid" "$mib" || return 1
  done
}

create_one() {
  local l r out
  out="$($S part-ensure --drive "$(drive "$2")" --volume "$1" --index 0 --size-mib "$4")" &&
    l="$(echo "$out" | kv device)" && r="$(remote "$1" "$3")" || return 1
  $S md-create --volume "$1" --level 1 --zeroed --size-mib "$4" "$l" "$r:wm" >/dev/null &&
    $S xfs-ensure "$(md_dev "$1")" >/dev/null && mkdir -p "/mnt/$1" &&
    $S mount "$(md_dev "$1")" "/mnt/$1" && write_file "/mnt/$1/base" 16 || return 1
  log "$1: $4 MiB, local $l + remote $r, bitmap chunk" \
    "$(cat "/sys/block/$(basename "$(md_dev "$1")")/md/bitmap/chunksize") B"
}
lab_wait_flag exported 300
step create "three RAID1 arrays (local + B), XFS, 16 MiB base file each" each create_one
lab_event ready

write_one() {
  write_file "/mnt/$1/outage" "$WRITE_MIB" &&
    SUMS="${SUMS:+$SUMS
}$(sums "/mnt/$1/base" "/mnt/$1/outage")" &&
    $S md-wait --volume "$1" --until degraded --timeout-s 90 >/dev/null
}
lab_wait_flag b-killed 120
step degraded "B powered off: $WRITE_MIB MiB written to each array (fsync), all degraded" \
  each write_one
lab_event degraded

catch_up_one() {
  local n w t0 kib chunk
  n="$(remote "$1" "$3")" || return 1
  w="$(nvme_writes_kib "$n")"
  t0="$(uptime_s)"
  $S md-readd --volume "$1" "$n" &&
    $S md-wait --volume "$1" --until clean --timeout-s 300 >/dev/null || return 1
  kib=$(($(nvme_writes_kib "$n") - w))
  chunk="$(cat "/sys/block/$(basename "$(md_dev "$1")")/md/bitmap/chunksize")"
  log "$1 ($4 MiB): catch-up wrote $kib KiB to B for $((WRITE_MIB * 1024)) KiB written," \
    "bitmap chunk $chunk B, $(since "$t0") s"
  lab_event resync "volume=$1 size_mib=$4 written_kib=$((WRITE_MIB * 1024)) resync_kib=$kib" \
    "chunk_bytes=$chunk seconds=$(since "$t0")"
}
lab_wait_flag b-back 300
step catch_up "B back: reconnect, --re-add, bitmap catch-up of every array" each catch_up_one

verify() {
  local a
  for a in $LAB_arrays; do
    a="${a%%:*}"
    $S unmount "/mnt/$a" || return 1
  done
  drop_caches
  for a in $LAB_arrays; do
    a="${a%%:*}"
    $S mount "$(md_dev "$a")" "/mnt/$a" || return 1
  done
  check_sums "$SUMS"
}
step verify "remount, every file's checksum verified" verify
# The copies on B's legs are what the catch-up wrote: compare both legs of the smallest array
# (reading 4 and 16 GiB over NVMe/TCP takes too long under TCG).
small="${LAB_arrays%% *}"
step md_check "md check of ${small%%:*} (mismatch_cnt=0)" md_check "$(basename "$(md_dev "${small%%:*}")")"

teardown_one() {
  $S unmount "/mnt/$1" && $S md-stop --volume "$1" &&
    $S part-delete --drive "$(drive "$2")" --volume "$1" --index 0
}
teardown() {
  each teardown_one && $S disconnect --node lab-b --consumer "$ME" &&
    $S leftovers --drive "$(drive 1)" --drive "$(drive 2)"
}
step teardown "unmount, stop arrays, disconnect, delete partitions; nothing left on A" teardown
lab_event done
log "resync consumer passed"
