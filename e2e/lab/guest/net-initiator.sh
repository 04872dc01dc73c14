#!/bin/sh
# Scenario "network", node A: RAID1 of a local partition and B's partition over nvme-tcp, then
# (driven by host flags) survives B's hard power-off and B's network cut: md0 degrades, I/O goes
# on, and after B returns, --re-add brings the leg back with a bitmap resync. Ends with checksums
# and an md check.
. /lab/lib.sh

NET="${LAB_host%.*}"
NQN="nqn.2024-01.io.meshstor.lab:B.A"
d1="$(drive 1)"
[ -b "$d1" ] || die "drive 1 missing: $(cat /run/lab/drives)"
local_p="$(part "$d1" 1)"
SUMS=""

step partition "GPT partition $local_p (320 MiB)" gpt_part "$d1" 1 320 lab-a-local
lab_wait_flag b-exported 240
step connect "nvme connect to B ($NET.2) over the bridge" nvme_connect "$NET.2" "$NQN"
remote="$(nvme_dev "$NQN")"
create() {
  mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 --bitmap=internal \
    --bitmap-chunk=4M --name=lab-net "$local_p" --write-mostly --failfast "$remote" 2>&1 &&
    sleep 0.2 && wait_until 180 "initial resync of md0" md_clean md0
}
step md_create "RAID1 create + initial resync ($local_p + $remote from B)" create
log "md0: $(md_state md0)"
fs() {
  mkfs.xfs -q -f /dev/md0 && mkdir -p /mnt/v && mount -o noatime /dev/md0 /mnt/v &&
    write_file /mnt/v/a 32 && SUMS="$(cd /mnt/v && sums a)"
}
step fs "mkfs.xfs, mount, write 32 MiB" fs
lab_event ready

# degraded_write FILE: an 8 MiB write + fsync issued while B is unreachable; it completes once md
# has failed the remote leg (keep-alive 2 s, fast_io_fail_tmo 1 s, failfast)
degraded_write() {
  write_file "/mnt/v/$1" 8 || return 1
  SUMS="$SUMS
$(cd /mnt/v && sums "$1")"
  wait_until 60 "md0 to degrade" md_degraded md0
  log "md0: $(md_state md0)"
}
# readd: waits for the nvme host to reconnect by itself, then --re-add and bitmap resync
readd() {
  wait_until 120 "nvme reconnect to B" nvme_live "$NQN"
  [ "$(nvme_dev "$NQN")" = "$remote" ] || log "note: namespace came back as $(nvme_dev "$NQN")"
  remote="$(nvme_dev "$NQN")"
  mdadm /dev/md0 --fail detached --remove detached >/dev/null 2>&1 || true
  mdadm /dev/md0 --remove failed >/dev/null 2>&1 || true
  mdadm /dev/md0 --re-add "$remote" 2>&1 || return 1
  sleep 0.2
  wait_until 120 "bitmap resync of md0" md_clean md0
  log "md0: $(md_state md0)"
}

lab_wait_flag b-killed 120
step degrade_kill "B powered off: degraded write" degraded_write d1
lab_event degraded "$LAB_TIMINGS"
lab_wait_flag b-back 240
step readd_kill "B back: reconnect, --re-add, resync" readd
lab_event resynced

lab_wait_flag b-cut 120
step degrade_cut "B cut off: degraded write" degraded_write d2
lab_event degraded2
lab_wait_flag b-uncut 120
step readd_cut "B reachable again: reconnect, --re-add, resync" readd
lab_event resynced2

verify() { umount /mnt/v && drop_caches && mount -o noatime /dev/md0 /mnt/v && (cd /mnt/v && check_sums "$SUMS"); }
step verify "remount, verify all checksums" verify
step md_check "md check (mismatch_cnt=0)" md_check md0
teardown() { umount /mnt/v && mdadm --stop /dev/md0 2>&1 && nvme disconnect -n "$NQN"; }
step teardown "umount, mdadm --stop, nvme disconnect" teardown
lab_timings
log "network initiator passed"
