#!/usr/bin/env bash
# Runs inside the cgroup v2 VM (e2e/cluster/node-v2.sh): the node's network, then containerd,
# kubelet and kube-proxy, until the VM is stopped. Logs go to the shared directory.
# The node gets the host node's layout: $STATE (a read-only view of the host's here) becomes a
# directory of the node's disk, with the shared directory kept inside, and $RUNDIR a tmpfs, so
# containerd's config and the install directory sit at the paths the chart's test-bed values
# name, writable by the node installer.
set -euo pipefail
dir=$1
# shellcheck disable=SC1091
source "$dir/env"
logs=$dir/logs
# The node's disk (node-v2.sh --disk): /dev/vda, ext4.
modprobe -q ext4 2>/dev/null || true
for _ in $(seq 100); do [[ -b /dev/vda ]] && break; sleep 0.1; done
disk=/run/node-disk
mkdir -p "$disk" && mount -t ext4 /dev/vda "$disk"
mkdir -p "$disk/state" "$disk/containerd"
mount --bind "$disk/containerd" /var/lib/containerd
mkdir -p /run/node-share && mount --bind "$dir" /run/node-share
mount --bind "$disk/state" "$STATE"
mkdir -p "$dir" && mount --bind /run/node-share "$dir"
mkdir -p "$RUNDIR" 2>/dev/null || true
mount -t tmpfs -o mode=0755 tmpfs "$RUNDIR"
cp "$dir/containerd.toml" "$CONTAINERD_CONFIG"
# restart-containerd.sh (the installer's restart command) asks the supervisor below from here.
echo "$dir" > "$RUNDIR/vm-node-share"

iface=$(ip -o link | awk -F': ' '$2 != "lo" {print $2; exit}')
ip addr add "$VM_IP/24" dev "$iface"
ip link set "$iface" up
ip route add default via "$VM_HOST_IP"
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
hostname "$VM_NODE"
mkdir -p /var/lib/kubelet /var/lib/cni /var/log/pods
mount -t tmpfs tmpfs /var/lib/kubelet
mount -t tmpfs tmpfs /var/lib/cni
mount --make-rshared /
echo "$(date +%T) network up on $iface ($VM_IP)" >> "$logs/node.log"

ctr() { "$CONTAINERD_BIN/ctr" --address "$CONTAINERD_SOCK" "$@"; }
start_containerd() {
  PATH=$CONTAINERD_BIN:$PATH "$CONTAINERD_BIN/containerd" --config "$CONTAINERD_CONFIG" >> "$logs/containerd.log" 2>&1 &
  containerd_pid=$!
  for _ in $(seq 120); do ctr version >/dev/null 2>&1 && return 0; sleep 1; done
  echo "$(date +%T) containerd did not answer" >> "$logs/node.log"
}
start_containerd
ctr -n k8s.io images import "$PAUSE_TAR" >> "$logs/node.log" 2>&1
echo "$(date +%T) containerd up" >> "$logs/node.log"
"$K8S_BIN/kubelet" --config="$dir/kubelet.yaml" --kubeconfig="$dir/kubelet.kubeconfig" \
  --node-ip="$VM_IP" --hostname-override="$VM_NODE" --v=1 >> "$logs/kubelet.log" 2>&1 &
kubelet_pid=$!
"$K8S_BIN/kube-proxy" --config="$dir/kube-proxy.yaml" --v=1 >> "$logs/kube-proxy.log" 2>&1 &
proxy_pid=$!
echo "$(date +%T) kubelet and kube-proxy started" >> "$logs/node.log"
# Supervise. A containerd restart (the installer changed its config) is asked for with a request
# file; the count of restarts done is written next to it. Pods keep running across it, as on
# any node. A new config from the host (node-v2.sh runtime) comes with the request.
# Jobs from the host (node-v2.sh run-job: the shim's containerd tests, run on this VM instead of
# booting one of their own) are run beside the node, each once: jobs/NAME.sh in, NAME.log and
# NAME.rc (its exit status, written last) out.
# The loop waits with bash's own `read -t` on a pipe nobody writes: a `sleep` process a second
# is an exec over 9p under emulation, which an idle node should not pay for.
exec {tick}<> <(:)
run_new_jobs() {
  local job
  for job in "$dir"/jobs/*.sh; do
    [[ -e $job && ! -e ${job%.sh}.started ]] || continue
    touch "${job%.sh}.started"
    echo "$(date +%T) job $(basename "$job") started" >> "$logs/node.log"
    ( rc=0; bash "$job" > "${job%.sh}.log" 2>&1 < /dev/null || rc=$?
      echo "$rc" > "${job%.sh}.rc.part" && mv "${job%.sh}.rc.part" "${job%.sh}.rc"
      echo "$(date +%T) job $(basename "$job") exited $rc" >> "$logs/node.log" ) &
  done
}
n=0
while kill -0 "$kubelet_pid" "$proxy_pid" 2>/dev/null; do
  if [[ -e $dir/restart-containerd.request ]]; then
    rm -f "$dir/restart-containerd.request"
    kill "$containerd_pid"; wait "$containerd_pid" || true
    if [[ -e $dir/containerd.toml.next ]]; then
      cp "$dir/containerd.toml.next" "$CONTAINERD_CONFIG" && rm -f "$dir/containerd.toml.next"
    fi
    start_containerd
    n=$((n + 1)); echo "$n" > "$dir/containerd-restarts"
    echo "$(date +%T) containerd restarted ($n)" >> "$logs/node.log"
  fi
  run_new_jobs
  read -rt 1 -u "$tick" || true
done
echo "$(date +%T) kubelet or kube-proxy exited" >> "$logs/node.log"
