#!/bin/sh
# Scenario "datapath", consumer node A: fio against the legs and the arrays built from them, all
# through meshstor-sys (the agent's kernel layer) so the arrays are the product's (1 MiB data
# offset, internal bitmap, remote legs write-mostly, created on zeroed members: no initial resync).
#   local    A's raw partition                     (dp-raw/0, drive 1)
#   remote   B's raw partition over NVMe/TCP       (dp-raw/1, nsid 1)
#   raid1    A local + B remote (write-mostly)     (dp-r1/0 + dp-r1/1, nsid 2)
#   raid10   near-2 of A0 B1 A2 B3                 (dp-r10, nsid 3 and 4)
# Workloads (O_DIRECT, QD1 psync): 4 KiB random writes with O_SYNC, 4 KiB random reads, 128 KiB
# sequential writes and reads. Each result is one LAB-EVENT "fio" line the host turns into a table.
#   LAB_runtime   seconds per fio job (default 10)
. /lab/lib.sh

S=meshstor-sys
ME="lab-$(echo "$LAB_node" | tr 'A-Z' 'a-z')"
NET="${LAB_host%.*}"
RUNTIME="${LAB_runtime:-10}"
kv() { sed -n "s/^$1=//p"; }

local_member() {  # volume index drive size_mib -> device
  $S part-ensure --drive "$(drive "$3")" --volume "$1" --index "$2" --size-mib "$4" | kv device
}
remote() {  # volume index nsid -> device
  $S connect --node lab-b --consumer "$ME" --addr "$NET.2" --nsid "$3" --volume "$1" \
    --index "$2" | kv device
}
md_dev() { $S md-state --volume "$1" | kv device; }

setup() {
  LOCAL="$(local_member dp-raw 0 1 256)" && REMOTE="$(remote dp-raw 1 1)" &&
    r1a="$(local_member dp-r1 0 1 256)" && r1b="$(remote dp-r1 1 2)" &&
    r10a0="$(local_member dp-r10 0 1 128)" && r10b1="$(remote dp-r10 1 3)" &&
    r10a2="$(local_member dp-r10 2 2 128)" && r10b3="$(remote dp-r10 3 4)" || return 1
  $S md-create --volume dp-r1 --level 1 --zeroed --size-mib 256 "$r1a" "$r1b:wm" >/dev/null &&
    $S md-create --volume dp-r10 --level 10 --zeroed --size-mib 128 "$r10a0" "$r10b1:wm" \
      "$r10a2" "$r10b3:wm" >/dev/null || return 1
  RAID1="$(md_dev dp-r1)" && RAID10="$(md_dev dp-r10)" || return 1
  log "local=$LOCAL remote=$REMOTE raid1=$RAID1 raid10=$RAID10"
  md_clean "${RAID1##*/}" && md_clean "${RAID10##*/}"
}

# one TARGET DEVICE JOB: runs one fio job, reports iops, mean and p99 completion latency (µs) and
# bandwidth (KiB/s) of the direction the job exercises (terse v3 fields).
one() {
  local rw bs extra out f_iops f_mean f_p99 f_bw
  case "$3" in
    randwrite4k) rw=randwrite bs=4k extra="--sync=1" ;;
    randread4k) rw=randread bs=4k extra="" ;;
    seqwrite128k) rw=write bs=128k extra="" ;;
    seqread128k) rw=read bs=128k extra="" ;;
    *) return 1 ;;
  esac
  case "$rw" in
    *write) f_bw=48 f_iops=49 f_mean=57 f_p99=71 ;;
    *) f_bw=7 f_iops=8 f_mean=16 f_p99=30 ;;
  esac
  # shellcheck disable=SC2086
  out="$(fio --name="$1-$3" --filename="$2" --rw=$rw --bs=$bs $extra --direct=1 \
    --ioengine=psync --iodepth=1 --size=96M --runtime="$RUNTIME" --ramp_time=1 --time_based \
    --randseed=42 --output-format=terse --terse-version=3)" || return 1
  echo "$out" | awk -F';' -v t="$1" -v j="$3" -v bw="$f_bw" -v io="$f_iops" -v m="$f_mean" \
    -v p="$f_p99" '$1 == 3 {
      split($p, q, "="); printf "target=%s job=%s iops=%s lat_mean_us=%.1f lat_p99_us=%s bw_kib=%s\n",
        t, j, $io, $m, q[2], $bw }' >/tmp/fio.line
  [ -s /tmp/fio.line ] || return 1
  lab_event fio "$(cat /tmp/fio.line)"
}

lab_wait_flag exported 300
step setup "legs, RAID1 and RAID10 (zeroed members: no initial resync)" setup
# Reads first on the written-once legs would read zeroes the device never stored (NVMe may shortcut
# unwritten blocks): write every target sequentially once before measuring.
for t in "local:$LOCAL" "remote:$REMOTE" "raid1:$RAID1" "raid10:$RAID10"; do
  step "fill_${t%%:*}" "fill ${t%%:*} (${t#*:}) once" \
    fio --name=fill --filename="${t#*:}" --rw=write --bs=1M --size=96M --direct=1 \
    --ioengine=psync --output-format=terse
done
for job in randwrite4k randread4k seqwrite128k seqread128k; do
  for t in "local:$LOCAL" "remote:$REMOTE" "raid1:$RAID1" "raid10:$RAID10"; do
    step "fio_${t%%:*}_$job" "fio $job on ${t%%:*} (${RUNTIME} s)" one "${t%%:*}" "${t#*:}" "$job"
  done
done
step check_r1 "RAID1 still clean after the runs" md_clean "${RAID1##*/}"

teardown() {
  $S md-stop --volume dp-r1 && $S md-stop --volume dp-r10 &&
    $S disconnect --node lab-b --consumer "$ME" &&
    $S part-delete --drive "$(drive 1)" --volume dp-raw --index 0 &&
    $S part-delete --drive "$(drive 1)" --volume dp-r1 --index 0 &&
    $S part-delete --drive "$(drive 1)" --volume dp-r10 --index 0 &&
    $S part-delete --drive "$(drive 2)" --volume dp-r10 --index 2 &&
    $S leftovers --drive "$(drive 1)" --drive "$(drive 2)"
}
step teardown "stop arrays, disconnect, delete partitions; nothing left on A" teardown
lab_event done
log "datapath consumer passed"
