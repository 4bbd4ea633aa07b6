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

PATH=$CONTAINERD_BIN:$PATH "$CONTAINERD_BIN/containerd" --config "$dir/containerd.toml" >> "$logs/containerd.log" 2>&1 &
for _ in $(seq 120); do "$CONTAINERD_BIN/ctr" --address /run/containerd/containerd.sock version >/dev/null 2>&1 && break; sleep 1; done
"$CONTAINERD_BIN/ctr" --address /run/containerd/containerd.sock -n k8s.io images import "$PAUSE_TAR" >> "$logs/node.log" 2>&1
echo "$(date +%T) containerd up" >> "$logs/node.log"
"$K8S_BIN/kubelet" --config="$dir/kubelet.yaml" --kubeconfig="$dir/kubelet.kubeconfig" \
  --node-ip="$VM_IP" --hostname-override="$VM_NODE" --v=1 >> "$logs/kubelet.log" 2>&1 &
"$K8S_BIN/kube-proxy" --config="$dir/kube-proxy.yaml" --v=1 >> "$logs/kube-proxy.log" 2>&1 &
echo "$(date +%T) kubelet and kube-proxy started" >> "$logs/node.log"
wait -n
echo "$(date +%T) a node daemon exited" >> "$logs/node.log"
