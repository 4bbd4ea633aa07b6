#!/usr/bin/env bash
# usage: restart-containerd.sh
# Restarts the cluster's containerd so it reads its config again; pods keep running (their shims
# are separate processes). Meant as the node installer's restart command on this test bed, which
# has no systemd (charts/wasmpod: installer.containerd.restartCommand; see installer/README.md).
# The installer runs it on the host, in the namespaces of PID 1, but from inside the installer
# pod's cgroups; a containerd started from there would be killed with that pod (runc kills every
# process in a hostPID container's cgroup). So the script first joins the cgroups of the running
# containerd (else PID 1's), and the containerd it starts lives where the old one did.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"

# join_cgroups_of PID: moves this shell into every cgroup (v1 hierarchies and v2) of PID.
join_cgroups_of() {
  local line controllers path dir
  while IFS= read -r line; do
    controllers=${line#*:}; controllers=${controllers%%:*}
    path=${line#*:*:}
    case $controllers in
      "") dir=/sys/fs/cgroup/unified; [[ -d $dir ]] || dir=/sys/fs/cgroup ;;
      name=*) dir=/sys/fs/cgroup/${controllers#name=} ;;
      *) dir=/sys/fs/cgroup/$controllers ;;
    esac
    if [[ -w $dir$path/cgroup.procs ]]; then
      echo $$ > "$dir$path/cgroup.procs" 2>/dev/null || log "cannot join $dir$path"
    fi
  done < "/proc/$1/cgroup"
}

# On the cgroup v2 VM node (node-v2.sh) containerd belongs to the VM's supervisor
# (vm-node.sh): ask it, and wait for the restart to be done.
if [[ -s $RUNDIR/vm-node-share ]]; then
  share=$(cat "$RUNDIR/vm-node-share")
  before=$(cat "$share/containerd-restarts" 2>/dev/null || echo 0)
  touch "$share/restart-containerd.request"
  wait_for 300 "containerd restart on this VM node" \
    bash -c "(( \$(cat '$share/containerd-restarts' 2>/dev/null || echo 0) > $before ))"
  log "containerd restarted by the VM node's supervisor"
  exit 0
fi

pid=1
if pid_alive "$PIDS/containerd.pid"; then read -r pid _ < "$PIDS/containerd.pid"; fi
join_cgroups_of "$pid"

stop_daemon containerd "$PIDS" 20
# Same command line as node.sh start, so a later cluster-up finds it "already running".
PATH=$CONTAINERD_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  start_daemon containerd "$PIDS" "$LOGS" "$CONTAINERD_BIN/containerd" --config "$CONTAINERD_CONFIG"
# shellcheck disable=SC2086  # $CRICTL is a command line, as in node.sh
wait_for 30 "containerd CRI" $CRICTL info
log "containerd restarted with $CONTAINERD_CONFIG"
