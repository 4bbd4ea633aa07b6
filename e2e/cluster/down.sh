#!/usr/bin/env bash
# `make cluster-down`: stops every process cluster-up started and removes what it made: pods (and
# with them veths, netns and per-pod CNI chains), mounts, the bridge, kube-proxy/kubelet/CNI
# iptables chains, the egress/ingress guard, kubelet's cgroups, host settings, the state dirs.
# Safe to run when nothing is up, and after a half-finished cluster-up.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"

# The containerd line the cluster ran with decides which ctr/containerd binaries env.sh picks.
if [[ -s $STATE/containerd-line ]] && [[ $(cat "$STATE/containerd-line") != "$CONTAINERD" ]]; then
  exec env CONTAINERD="$(cat "$STATE/containerd-line")" "$0" "$@"
fi

t0=$(date +%s)
if [[ -d $STATE ]]; then
  exec 9> "$STATE/.lock"
  flock -w 120 9 || die "another cluster-up/down holds $STATE/.lock"
fi

"$CLUSTER_DIR/node-v2.sh" stop
"$CLUSTER_DIR/node.sh" stop
"$CLUSTER_DIR/control-plane.sh" stop
"$CLUSTER_DIR/registry.sh" stop

# Shims outlive containerd by design; ours are the ones talking to this cluster's (unique) socket.
for pid in $(pgrep -f -- "-address $CONTAINERD_SOCK " || true); do
  log "killing leftover shim $pid"; kill -KILL "$pid" 2>/dev/null || true
done

"$CLUSTER_DIR/cleanup-net.sh"

# Mounts under our dirs (overlay rootfs, netns bind mounts, kubelet volumes), deepest first.
for m in $(findmnt -rn -o TARGET | grep -E "^($STATE|$RUNDIR)(/|$)" | sort -r); do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
done

# Any process still in kubelet's pod cgroups is a container of this cluster whose shim died before
# cleaning up (e.g. a `runc init` left waiting): kill it so the cgroups can go.
# shellcheck disable=SC2013  # pids are single words
for pid in $({ cat /sys/fs/cgroup/*/kubepods/cgroup.procs /sys/fs/cgroup/*/kubepods/*/cgroup.procs \
                 /sys/fs/cgroup/*/kubepods/*/*/cgroup.procs /sys/fs/cgroup/*/kubepods/*/*/*/cgroup.procs \
                 2>/dev/null || true; } | sort -u); do
  log "killing leftover pod process $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-60))"
  kill -KILL "$pid" 2>/dev/null || true
done
sleep 0.2

# kubelet's cgroups (cgroupfs driver: /kubepods/... in every v1 hierarchy), leaves first.
for h in /sys/fs/cgroup/*/; do
  [[ -d $h/kubepods ]] || continue
  find "$h/kubepods" -depth -type d -exec rmdir {} + 2>/dev/null || log "some cgroups under $h/kubepods are busy"
done

# Files kubelet and the CNI plugins put outside our dirs.
for l in /var/log/containers/*; do
  [[ -L $l && $(readlink "$l") == "$POD_LOGS"/* ]] && rm -f "$l"
done
rmdir /var/log/containers 2>/dev/null || true
rm -f /var/lib/cni/results/"$CNI_NETWORK"-* 2>/dev/null || true
rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true

"$CLUSTER_DIR/host.sh" restore
rm -rf "$STATE" "$RUNDIR"
log "cluster down in $(( $(date +%s) - t0 ))s"
