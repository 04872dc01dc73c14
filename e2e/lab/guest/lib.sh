# shellcheck shell=sh
# Helpers for guest scenario scripts (busybox sh). Source with: . /lab/lib.sh
# Every helper that can fail either returns non-zero or calls die, which prints a LAB-FAIL line
# and the kernel's last messages and exits 1 (the node then reports rc=1 to the host).

NVMET=/sys/kernel/config/nvmet
LAB_SVCID=4420

uptime_s() { cut -d' ' -f1 /proc/uptime; }
# seconds since uptime T (two decimals)
since() { awk -v a="$1" -v b="$(uptime_s)" 'BEGIN { printf "%.2f", b - a }'; }
log() { echo "[$LAB_node $(uptime_s)] $*"; }
die() {
  echo "LAB-FAIL node=$LAB_node: $*"
  echo "--- $LAB_node: /proc/mdstat"; cat /proc/mdstat 2>/dev/null
  echo "--- $LAB_node: last kernel messages"; dmesg 2>/dev/null | tail -n 25
  exit 1
}

# Timings are collected as "name=seconds" and reported with lab_timings.
LAB_TIMINGS=""
# step NAME DESCRIPTION CMD...: runs CMD, dies if it fails, records its duration under NAME.
step() {
  local name="$1" desc="$2" t0 dt rc
  shift 2
  t0="$(uptime_s)"
  log "step: $desc"
  "$@" || { rc=$?; die "$desc failed (rc=$rc)"; }
  dt="$(since "$t0")"
  LAB_TIMINGS="$LAB_TIMINGS $name=$dt"
  log "done: $desc (${dt}s)"
}
timing() { LAB_TIMINGS="$LAB_TIMINGS $1=$2"; }
lab_timings() { lab_event timings "$LAB_TIMINGS"; }

# lab_event NAME [DETAIL...]: console marker for lab.py, and a POST to the host server when the
# node is on the lab network (best effort; the console marker is authoritative).
lab_event() {
  _ev="$1"
  shift
  echo "LAB-EVENT $_ev $*"
  if [ -n "${LAB_ip:-}" ]; then
    timeout 5 wget -q -O /dev/null --post-data "$*" \
      "http://$LAB_host:$LAB_port/event/$LAB_node/$_ev" 2>/dev/null || true
  fi
}
# lab_flag NAME: true when the host has raised flag NAME (host server, lab network only)
lab_flag() { timeout 3 wget -q -O /dev/null "http://$LAB_host:$LAB_port/flag/$1" 2>/dev/null; }
# lab_wait_flag NAME [TIMEOUT]: waits for the host to raise flag NAME
lab_wait_flag() {
  local t0
  t0="$(uptime_s)"
  log "waiting for host flag $1"
  until lab_flag "$1"; do
    [ "$(since "$t0" | cut -d. -f1)" -lt "${2:-600}" ] || die "host flag $1 not raised in ${2:-600}s"
    sleep 0.3
  done
}

# wait_until TIMEOUT DESCRIPTION CMD...: polls CMD every 0.1 s; dies after TIMEOUT seconds.
wait_until() {
  local tmo="$1" what="$2" t0
  shift 2
  t0="$(uptime_s)"
  until "$@" >/dev/null; do
    [ "$(since "$t0" | cut -d. -f1)" -lt "$tmo" ] || die "timed out after ${tmo}s waiting for $what"
    sleep 0.1
  done
}

# drive N: the block device of this node's N-th emulated NVMe drive (serial <node>-<N>)
drive() { awk -v s="$LAB_node-$1" '$1 == s { print $2 }' /run/lab/drives; }
# part DEV N: partition N of DEV (/dev/nvme0n1 -> /dev/nvme0n1p1)
part() {
  case "$1" in
    *[0-9]) echo "${1}p$2" ;;
    *) echo "$1$2" ;;
  esac
}
is_blk() { [ -b "$1" ]; }

# gpt_part DEV N SIZE_MIB LABEL: creates GPT partition N (1 MiB aligned) unless a partition with
# that label already exists (scripts must survive a node restart with the same disks).
gpt_part() {
  if [ "$(blkid -s PARTLABEL -o value "$(part "$1" "$2")" 2>/dev/null)" = "$4" ]; then
    log "partition $(part "$1" "$2") ($4) already exists"
    return 0
  fi
  sgdisk -n "$2:0:+$3M" -t "$2:8300" -c "$2:$4" "$1" >/dev/null || return 1
  wait_until 10 "$(part "$1" "$2")" is_blk "$(part "$1" "$2")"
}

# write_kubeconfig FILE [TOKEN]: a kubeconfig for the API test server the host runs on the lab
# bridge (http://$LAB_host:$LAB_api_port), authenticating with TOKEN (default: the node pod's
# ServiceAccount, $LAB_node_token; the server enforces the manifests' RBAC).
write_kubeconfig() {
  cat >"$1" <<EOT
apiVersion: v1
kind: Config
clusters: [{name: lab, cluster: {server: "http://$LAB_host:$LAB_api_port"}}]
contexts: [{name: lab, context: {cluster: lab, user: lab}}]
users: [{name: lab, user: {token: "${2:-$LAB_node_token}"}}]
current-context: lab
EOT
}

# ---- nvmet (target) ------------------------------------------------------------------------------
# nvmet_port ID TRADDR: TCP port ID listening on TRADDR:4420
nvmet_port() {
  _p="$NVMET/ports/$1"
  [ -d "$_p" ] && return 0
  mkdir "$_p" || return 1
  echo tcp >"$_p/addr_trtype"
  echo ipv4 >"$_p/addr_adrfam"
  echo "$2" >"$_p/addr_traddr"
  echo "$LAB_SVCID" >"$_p/addr_trsvcid"
}
# nvmet_export NQN DEV PORT_ID [HOSTNQN...]: one subsystem with DEV as namespace 1, only the given
# hosts allowed (any host when none). Serial and namespace UUID come from the partition's unique
# GUID, so they stay the same when the target reboots and the initiator reconnects transparently.
nvmet_export() {
  _nqn="$1" _dev="$2" _port="$3"
  shift 3
  _s="$NVMET/subsystems/$_nqn"
  mkdir "$_s" || return 1
  if [ $# -eq 0 ]; then
    echo 1 >"$_s/attr_allow_any_host"
  else
    echo 0 >"$_s/attr_allow_any_host"
    for _h in "$@"; do
      [ -d "$NVMET/hosts/$_h" ] || mkdir "$NVMET/hosts/$_h" || return 1
      ln -s "$NVMET/hosts/$_h" "$_s/allowed_hosts/$_h" || return 1
    done
  fi
  _uuid="$(blkid -s PARTUUID -o value "$_dev")"
  if [ -n "$_uuid" ]; then
    echo "$_uuid" | tr -d '-' | cut -c1-20 >"$_s/attr_serial"
  fi
  mkdir "$_s/namespaces/1" || return 1
  printf '%s' "$_dev" >"$_s/namespaces/1/device_path"
  [ -n "$_uuid" ] && echo "$_uuid" >"$_s/namespaces/1/device_uuid"
  echo 1 >"$_s/namespaces/1/enable" || return 1
  ln -s "$_s" "$NVMET/ports/$_port/subsystems/$_nqn"
}

# ---- nvme host (initiator) -----------------------------------------------------------------------
# nvme_dev NQN: /dev/nvmeXnY of the namespace of subsystem NQN (multipath head, not nvmeXcYnZ)
nvme_dev() {
  for _b in /sys/block/nvme*n*; do
    case "${_b##*/}" in nvme*c*n* | "nvme*n*") continue ;; esac
    [ "$(cat "$_b/device/subsysnqn" 2>/dev/null)" = "$1" ] && { echo "/dev/${_b##*/}"; return 0; }
  done
  return 1
}
# nvme_ctrl NQN: nvmeX of the fabrics controller connected to subsystem NQN
nvme_ctrl() {
  for _c in /sys/class/nvme/nvme*; do
    [ "$(cat "$_c/subsysnqn" 2>/dev/null)" = "$1" ] && { echo "${_c##*/}"; return 0; }
  done
  return 1
}
nvme_state() { cat "/sys/class/nvme/$(nvme_ctrl "$1")/state" 2>/dev/null; }
nvme_live() { [ "$(nvme_state "$1")" = live ] && nvme_dev "$1" >/dev/null; }
# nvme_connect TRADDR NQN [nvme connect options...]: connect with the lab's short timeouts, set
# fast_io_fail_tmo (nvme-cli 2.3 has no option for it), wait for the namespace
nvme_connect() {
  _a="$1" _nqn="$2"
  shift 2
  nvme connect -t tcp -a "$_a" -s "$LAB_SVCID" -n "$_nqn" --keep-alive-tmo=2 --reconnect-delay=1 \
    --ctrl-loss-tmo=600 "$@" || return 1
  _c="$(nvme_ctrl "$_nqn")" || return 1
  echo 1 >"/sys/class/nvme/$_c/fast_io_fail_tmo"
  wait_until 15 "namespace of $_nqn" nvme_dev "$_nqn"
}

# ---- md ----------------------------------------------------------------------------------------
# nvme_writes_kib DEV: KiB written to an imported namespace so far: its path devices' sectors
# written / 2 (native NVMe multipath: /dev/nvmeXnY is the head; I/O is counted on nvmeXcZnY)
nvme_writes_kib() {
  _h="${1##*/}"
  cat /sys/block/"${_h%n*}"c*n"${_h##*n}"/stat | awk '{ s += $7 } END { print int(s / 2) }'
}
md_idle() { [ "$(cat "/sys/block/$1/md/sync_action")" = idle ]; }
md_degraded() { [ "$(cat "/sys/block/$1/md/degraded")" != 0 ]; }
md_clean() { md_idle "$1" && ! md_degraded "$1"; }
md_state() { grep -A2 "^$1 " /proc/mdstat | tr -s ' \n' ' '; echo; }
# md_check MD: full md "check" pass; fails when mismatch_cnt is not 0
md_check() {
  echo check >"/sys/block/$1/md/sync_action" || return 1
  sleep 0.2
  wait_until 300 "md check of $1" md_idle "$1"
  _mm="$(cat "/sys/block/$1/md/mismatch_cnt")"
  log "$1 check: mismatch_cnt=$_mm"
  [ "$_mm" = 0 ]
}

# write_file PATH MIB: random data, fsync'd; prints nothing
write_file() { dd if=/dev/urandom of="$1" bs=1M count="$2" conv=fsync 2>/dev/null; }
# sums FILE...: sha256 lines, to compare with check_sums
sums() { sha256sum "$@"; }
check_sums() { echo "$1" | sha256sum -c -s; }
drop_caches() { sync && echo 3 >/proc/sys/vm/drop_caches; }
