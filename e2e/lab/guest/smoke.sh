#!/bin/sh
# Scenario "smoke" (1 node, 3 drives): the whole kernel data path inside one VM.
# GPT partitions -> nvmet-tcp export on 127.0.0.1 (allowed_hosts = this node only) -> a foreign
# host NQN is refused -> nvme connect -> MD RAID1 (local partition + NVMe-oF namespace, bitmap)
# -> XFS -> write, remount, verify checksums -> md check -> orderly teardown.
. /lab/lib.sh

NQN="nqn.2024-01.io.meshstor.lab:$LAB_node.smoke"
d1="$(drive 1)" d2="$(drive 2)"
[ -b "$d1" ] && [ -b "$d2" ] || die "drives missing: $(cat /run/lab/drives)"
local_p="$(part "$d1" 1)" export_p="$(part "$d2" 1)"

partition() {
  sgdisk --zap-all "$d1" >/dev/null && sgdisk --zap-all "$d2" >/dev/null &&
    gpt_part "$d1" 1 320 lab-local && gpt_part "$d2" 1 320 lab-export
}
step partition "GPT partitions on $d1 and $d2 (sgdisk)" partition

export_it() { nvmet_port 1 127.0.0.1 && nvmet_export "$NQN" "$export_p" 1 "$LAB_hostnqn"; }
step export "nvmet export of $export_p to $LAB_hostnqn only" export_it

refused() {
  other_id="00000000-0000-4000-8000-00000000bad1"
  if nvme connect -t tcp -a 127.0.0.1 -s "$LAB_SVCID" -n "$NQN" \
      --hostnqn="nqn.2014-08.org.nvmexpress:uuid:$other_id" --hostid="$other_id" 2>&1; then
    log "a host NQN outside allowed_hosts was able to connect"
    return 1
  fi
  dmesg | grep -q "for subsystem $NQN not allowed" || { log "no 'not allowed' from nvmet"; return 1; }
}
step refused "connect with a foreign host NQN is refused by nvmet" refused

step connect "nvme connect over tcp 127.0.0.1" nvme_connect 127.0.0.1 "$NQN"
remote="$(nvme_dev "$NQN")"
log "imported namespace: $remote ($(cat "/sys/block/${remote#/dev/}/queue/logical_block_size")-byte blocks)"

create() {
  mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 --bitmap=internal \
    --bitmap-chunk=4M --name=lab-smoke "$local_p" --write-mostly --failfast "$remote" 2>&1 &&
    sleep 0.2 && wait_until 120 "initial resync of md0" md_clean md0
}
step md_create "RAID1 create + initial resync ($local_p + $remote)" create
log "md0: $(md_state md0)"

fs() { mkfs.xfs -q -f /dev/md0 && mkdir -p /mnt/v && mount -o noatime /dev/md0 /mnt/v; }
step mkfs "mkfs.xfs + mount" fs

data() {
  write_file /mnt/v/a 32 && write_file /mnt/v/b 8 && SUMS="$(cd /mnt/v && sums a b)" &&
    umount /mnt/v && drop_caches && mount -o noatime /dev/md0 /mnt/v && (cd /mnt/v && check_sums "$SUMS")
}
step data "write 40 MiB, remount, verify sha256" data

# Target-side loss: unlink the subsystem from the port; with fast_io_fail_tmo=1 md fails the leg,
# writes go on degraded, and after relinking the host reconnects and --re-add resyncs only the
# chunks the bitmap marked dirty.
unlink_port() {
  rm "$NVMET/ports/1/subsystems/$NQN" || return 1
  write_file /mnt/v/c 4 || return 1
  SUMS="$SUMS
$(cd /mnt/v && sums c)"
  wait_until 60 "md0 to mark $remote faulty" md_degraded md0
  log "md0: $(md_state md0)"
}
step degrade "target port unlinked -> md0 degraded, degraded write" unlink_port
readd() {
  ln -s "$NVMET/subsystems/$NQN" "$NVMET/ports/1/subsystems/$NQN" || return 1
  wait_until 60 "host reconnect to $NQN" nvme_live "$NQN"
  mdadm /dev/md0 --remove failed >/dev/null 2>&1 || true
  mdadm /dev/md0 --re-add "$remote" 2>&1 || return 1
  sleep 0.2
  wait_until 120 "bitmap resync of md0" md_clean md0
  log "md0: $(md_state md0)"
}
step readd "relink, host reconnects, --re-add + bitmap resync" readd
verify() { umount /mnt/v && drop_caches && mount -o noatime /dev/md0 /mnt/v && (cd /mnt/v && check_sums "$SUMS"); }
step verify "remount, verify all checksums" verify

step md_check "md check (mismatch_cnt=0)" md_check md0

teardown() {
  umount /mnt/v && xfs_repair -n /dev/md0 >/dev/null 2>&1 && mdadm --stop /dev/md0 2>&1 &&
    nvme disconnect -n "$NQN" && ! nvme_dev "$NQN" >/dev/null
}
step teardown "umount, xfs_repair -n, mdadm --stop, nvme disconnect" teardown

lab_timings
log "smoke passed"
