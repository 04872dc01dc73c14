#!/bin/sh
# Scenario "network", node C: a host that B did not allow. Its connect must be refused by B's
# nvmet (fencing works across the network), and it reaches A over the bridge.
. /lab/lib.sh
NET="${LAB_host%.*}"

NQN="nqn.2024-01.io.meshstor.lab:B.A"
lab_wait_flag b-exported 240
if nvme connect -t tcp -a "$NET.2" -s "$LAB_SVCID" -n "$NQN" 2>&1; then
  die "C connected to $NQN although B allows only A"
fi
log "connect to B refused, as it must be"
ping -c 1 -W 5 "$NET.1" >/dev/null || die "A ($NET.1) not reachable over the bridge"
lab_event refused
