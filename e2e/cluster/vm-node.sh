#!/usr/bin/env bash
# Runs inside the cgroup v2 VM (e2e/cluster/node-v2.sh): the node's network, then containerd,
# kubelet and kube-proxy, until the VM is stopped. Logs go to the shared directory.
set -euo pipefail
dir=$1
# shellcheck disable=SC1091
source "$dir/env"
logs=$dir/logs
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

start_containerd() {
  PATH=$CONTAINERD_BIN:$PATH "$CONTAINERD_BIN/containerd" --config "$dir/containerd.toml" >> "$logs/containerd.log" 2>&1 &
  containerd_pid=$!
  for _ in $(seq 120); do "$CONTAINERD_BIN/ctr" --address /run/containerd/containerd.sock version >/dev/null 2>&1 && return 0; sleep 1; done
  echo "$(date +%T) containerd did not answer" >> "$logs/node.log"
}
start_containerd
"$CONTAINERD_BIN/ctr" --address /run/containerd/containerd.sock -n k8s.io images import "$PAUSE_TAR" >> "$logs/node.log" 2>&1
echo "$(date +%T) containerd up" >> "$logs/node.log"
"$K8S_BIN/kubelet" --config="$dir/kubelet.yaml" --kubeconfig="$dir/kubelet.kubeconfig" \
  --node-ip="$VM_IP" --hostname-override="$VM_NODE" --v=1 >> "$logs/kubelet.log" 2>&1 &
kubelet_pid=$!
"$K8S_BIN/kube-proxy" --config="$dir/kube-proxy.yaml" --v=1 >> "$logs/kube-proxy.log" 2>&1 &
proxy_pid=$!
echo "$(date +%T) kubelet and kube-proxy started" >> "$logs/node.log"
# Supervise. The host asks for a containerd restart (a changed config) with a request file; pods
# keep running across it, as on any node.
n=0
while kill -0 "$kubelet_pid" "$proxy_pid" 2>/dev/null; do
  if [[ -e $dir/restart-containerd.request ]]; then
    rm -f "$dir/restart-containerd.request"
    kill "$containerd_pid"; wait "$containerd_pid" || true
    start_containerd
    n=$((n + 1)); echo "$n" > "$dir/containerd-restarts"
    echo "$(date +%T) containerd restarted ($n)" >> "$logs/node.log"
  fi
  sleep 1
done
echo "$(date +%T) kubelet or kube-proxy exited" >> "$logs/node.log"
