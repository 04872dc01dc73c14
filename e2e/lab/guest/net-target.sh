#!/bin/sh
# Scenario "network", node B: exports one partition to A only (allowed_hosts = A's host NQN) and
# serves it until the host raises flag "done". Restart-safe: after a hard power-off it finds its
# partition by label and exports it again with the same serial and namespace UUID, so A's nvme
# host reconnects to the same namespace by itself.
. /lab/lib.sh

NQN="nqn.2024-01.io.meshstor.lab:B.A"
d1="$(drive 1)"
[ -b "$d1" ] || die "drive 1 missing: $(cat /run/lab/drives)"
p="$(part "$d1" 1)"
if [ "$(blkid -s PARTLABEL -o value "$p" 2>/dev/null)" != lab-b-to-a ]; then
  step partition "GPT partition $p (320 MiB)" gpt_part "$d1" 1 320 lab-b-to-a
else
  log "restarted: $p (lab-b-to-a) already there"
fi
export_it() { nvmet_port 1 "${LAB_ip%/*}" && nvmet_export "$NQN" "$p" 1 "$LAB_allow"; }
step export "nvmet export of $p to $LAB_allow only" export_it
lab_event exported "nqn=$NQN dev=$p"
until lab_flag done; do sleep 1; done
log "host says done"
