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
# where MeshStor's processes wait: per thread state and kernel wait channel, and their children
for p in /proc/[0-9]*; do
  case "$(cat "$p/comm" 2>/dev/null)" in meshstor*) ;; *) continue ;; esac
  echo "== ${p#/proc/} $(tr '\0' ' ' <"$p/cmdline" | cut -c1-120)"
  for t in "$p"/task/*; do
    echo "  ${t##*/} $(cat "$t/comm") $(cut -d' ' -f3 "$t/stat") $(cat "$t/wchan" 2>/dev/null)"
  done
  for c in /proc/[0-9]*; do
    [ "$(cut -d' ' -f4 "$c/stat" 2>/dev/null)" = "${p#/proc/}" ] || continue
    echo "  child ${c#/proc/}: $(tr '\0' ' ' <"$c/cmdline" | cut -c1-160)"
  done
done
