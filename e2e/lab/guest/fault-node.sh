#!/bin/sh
# Scenario "faults": a node running the real meshstor-agent against the API test server on the
# host, plus a command channel: the host queues shell commands for this node (GET
# /cmd/<node> hands out the next one, once) and this script runs each with sh, then POSTs its
# exit code and output to /result/<node>/<id> (and prints LAB-EVENT cmd-<id>). The fault cases
# (lab.py FAULT_CASES) use it to start and stop meshstor-verify, kill -9 the agent, and so on.
#   LAB_api_port  the API server's port on the host bridge address
#   LAB_volume    the volume name (staging mount /var/lib/meshstor/staging/<volume>)
. /lab/lib.sh

ME="lab-$(echo "$LAB_node" | tr 'A-Z' 'a-z')"
write_kubeconfig /run/lab/kubeconfig
mkdir -p /var/lib/meshstor/staging /run/lab/cmd
# /run/lab/start-agent.sh starts the agent (again: commands of the agent-kill case use it too)
cat >/run/lab/start-agent.sh <<EOT
#!/bin/sh
meshstor-agent --kubeconfig /run/lab/kubeconfig --node-name "$ME" --address "${LAB_ip%/*}" \\
  --metrics-address :9810 --resync "${LAB_resync:-2s}" >>/run/lab/agent.log 2>&1 &
echo \$! >/run/lab/agent.pid
EOT
chmod +x /run/lab/start-agent.sh
# /run/lab/arm-failpoint.sh <crash-at> (the agent-kill-<phase> cases, docs/faults.md): restarts the
# agent with MESHSTOR_FAILPOINTS_ENABLED=1 MESHSTOR_CRASH_AT=<crash-at>, so that it SIGKILLs itself
# at that kernel step (agent/failpoints.h); a watcher restarts it WITHOUT the failpoint as soon as
# it died, and writes to /run/lab/failpoint.state what happened: "armed <crash-at>", then
# "fired <the agent's failpoint line>" or "died without firing" (disarmed by a kill -9).
# A process is alive while /proc has it and it is no zombie (PID 1 may not reap at once).
cat >/run/lab/alive.sh <<'EOT'
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
EOT
cat >/run/lab/arm-failpoint.sh <<'EOT'
#!/bin/sh
. /run/lab/alive.sh
old="$(cat /run/lab/agent.pid 2>/dev/null)"
if [ -n "$old" ]; then
  kill -9 "$old" 2>/dev/null
  while alive "$old"; do sleep 0.1; done
fi
echo "LAB-ARM $1" >>/run/lab/agent.log
echo "armed $1" >/run/lab/failpoint.state
MESHSTOR_FAILPOINTS_ENABLED=1 MESHSTOR_CRASH_AT="$1" /run/lab/start-agent.sh
pid="$(cat /run/lab/agent.pid)"
(
  while alive "$pid"; do sleep 0.1; done
  line="$(sed -n '/^LAB-ARM /h; /^LAB-ARM /!H; ${x;p}' /run/lab/agent.log |
    grep -o 'failpoint [^ ]* fired: SIGKILL' | tail -n 1)"
  /run/lab/start-agent.sh
  if [ -n "$line" ]; then
    echo "fired $line" >/run/lab/failpoint.state
  else
    echo "died without firing" >/run/lab/failpoint.state
  fi
  echo "$(date +%s) $line" >>/run/lab/failpoint.log
) >/dev/null 2>&1 </dev/null &
EOT
# /run/lab/disarm-failpoint.sh: an armed agent that has not fired yet is killed (the watcher
# restarts it without the failpoint).
cat >/run/lab/disarm-failpoint.sh <<'EOT'
#!/bin/sh
. /run/lab/alive.sh
case "$(cat /run/lab/failpoint.state 2>/dev/null)" in
  armed*)
    pid="$(cat /run/lab/agent.pid)"
    kill -9 "$pid" 2>/dev/null
    while alive "$pid"; do sleep 0.1; done
    while grep -q '^armed' /run/lab/failpoint.state; do sleep 0.1; done ;;
esac
cat /run/lab/failpoint.state 2>/dev/null
EOT
chmod +x /run/lab/arm-failpoint.sh /run/lab/disarm-failpoint.sh
start_agent() {
  /run/lab/start-agent.sh
  log "agent started as $ME (pid $(cat /run/lab/agent.pid))"
}
export ME
start_agent
# The agent's output goes to the console too (the scenario's logs are the consoles).
tail -f /run/lab/agent.log &
lab_event agent-started

base="http://$LAB_host:$LAB_port"
while :; do
  if ! timeout 5 wget -q -O /run/lab/cmd/next "$base/cmd/$LAB_node" 2>/dev/null; then
    sleep 0.3
    continue
  fi
  id="$(head -n 1 /run/lab/cmd/next)"
  tail -n +2 /run/lab/cmd/next >"/run/lab/cmd/$id.sh"
  log "command $id: $(head -c 300 "/run/lab/cmd/$id.sh")"
  # Background jobs started by the command keep their own output files; ours is only its own.
  sh "/run/lab/cmd/$id.sh" >"/run/lab/cmd/$id.out" 2>&1 </dev/null
  rc=$?
  log "command $id: rc=$rc"
  sed "s/^/[$LAB_node cmd $id] /" "/run/lab/cmd/$id.out" | tail -n 40
  i=0
  until timeout 5 wget -q -O /dev/null --post-data "rc=$rc
$(tail -c 6000 "/run/lab/cmd/$id.out")" "$base/result/$LAB_node/$id" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 20 ] || break
    sleep 0.5
  done
  echo "LAB-EVENT cmd-$id rc=$rc"
done
