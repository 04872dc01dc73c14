#!/bin/sh
# Node status page for the host (busybox httpd): http://<node-ip>:8081/cgi-bin/status
echo "Content-Type: text/plain"
echo
echo "node $(hostname) uptime $(cut -d' ' -f1 /proc/uptime)"
cat /proc/mdstat
for c in /sys/class/nvme/nvme*; do
  [ -e "$c/transport" ] || continue
  echo "${c##*/} $(cat "$c/transport") $(cat "$c/subsysnqn") $(cat "$c/address" 2>/dev/null | tr '\n' ' ') state=$(cat "$c/state")"
done
echo "loadavg $(cat /proc/loadavg)"
grep -E '^(MemTotal|MemAvailable|Cached):' /proc/meminfo | tr -s ' ' | tr '\n' ' '; echo
# the processes that use the CPU (the k8s scenario's nodes run kubelet, containerd and pods)
top -b -n 1 2>/dev/null | head -25
