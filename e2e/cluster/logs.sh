#!/usr/bin/env bash
# `make cluster-logs`: the last lines of every component log (etcd, apiserver, controller-manager,
# scheduler, containerd, kubelet, kube-proxy, registry), then pod states.
# usage: logs.sh [LINES] [COMPONENT...]   LINES defaults to 40 (or env LOG_LINES)
set -euo pipefail
source "$(dirname "$0")/env.sh"

n=${1:-${LOG_LINES:-40}}; shift || true
[[ -d $LOGS ]] || { echo "no cluster logs in $LOGS (cluster not up?)"; exit 0; }
comps=("$@")
((${#comps[@]})) || comps=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy registry registry-node-ip)
for c in "${comps[@]}"; do
  f=$LOGS/$c.log
  [[ -f $f ]] || continue
  running=stopped
  if [[ -s $PIDS/$c.pid ]] && [[ -d /proc/$(cut -d' ' -f1 "$PIDS/$c.pid") ]]; then running="pid $(cut -d' ' -f1 "$PIDS/$c.pid")"; fi
  printf '\n===== %s (%s) %s =====\n' "$c" "$running" "$f"
  tail -n "$n" "$f"
done
# The cgroup v2 VM node's own logs (node-v2.sh), written inside the VM to the shared dir.
for f in "$STATE"/node-v2/logs/*.log; do
  [[ -f $f ]] || continue
  printf '\n===== node-v2: %s =====\n' "$f"
  tail -n "$n" "$f"
done
if [[ -s $ADMIN_KUBECONFIG ]] && $KUBECTL get --raw /readyz >/dev/null 2>&1; then
  printf '\n===== pods =====\n'
  $KUBECTL get pods -A -o wide 2>&1 || true
  printf '\n===== recent events =====\n'
  $KUBECTL get events -A --sort-by=.lastTimestamp 2>&1 | tail -n "$n" || true
fi
