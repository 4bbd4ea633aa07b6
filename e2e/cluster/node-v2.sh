#!/usr/bin/env bash
# usage: node-v2.sh start|stop|status|add-shim
# The cluster's second node, `wasmpod-v2`: containerd, kubelet and kube-proxy inside the
# cgroup v2 VM of e2e/vm (qemu TCG), joined to the host's control plane. The host and the VM
# share a private bridge ($VM_BRIDGE, $VM_HOST_IP <-> $VM_IP); each node routes the other's pod
# subnet through it. Nothing of wasmpod is on this node until an installer puts it there.
# The VM's traffic never leaves through the uplink (guard.sh rejects forwarding from the bridge
# to $UPLINK), and it reaches the registry through a forwarder on the bridge address.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"
source "$CLUSTER_DIR/pki.sh"

SHARE=$STATE/node-v2            # shared read-write with the VM: configs in, logs out
VM_PIDS=$PIDS

bridge_up() {
  ip link show "$VM_BRIDGE" >/dev/null 2>&1 || ip link add "$VM_BRIDGE" type bridge
  ip addr show dev "$VM_BRIDGE" | grep -q "$VM_HOST_IP/" || ip addr add "$VM_HOST_IP/24" dev "$VM_BRIDGE"
  ip link set "$VM_BRIDGE" up
  mkdir -p /etc/qemu
  grep -qx "allow $VM_BRIDGE" /etc/qemu/bridge.conf 2>/dev/null || echo "allow $VM_BRIDGE" >> /etc/qemu/bridge.conf
  ip route replace "$VM_POD_CIDR" via "$VM_IP" dev "$VM_BRIDGE"
}

bridge_down() {
  ip route del "$VM_POD_CIDR" 2>/dev/null || true
  ip link del "$VM_BRIDGE" 2>/dev/null || true
}

write_node_files() {
  mkdir -p "$SHARE/logs"
  pki_leaf "$PKI" kubelet-v2 "/O=system:nodes/CN=system:node:$VM_NODE" "extendedKeyUsage=clientAuth"
  write_kubeconfig "$SHARE/kubelet.kubeconfig" "https://$NODE_IP:$API_PORT" "$PKI/ca.crt" "$PKI/kubelet-v2.crt" "$PKI/kubelet-v2.key"
  cp "$KCFG/kube-proxy.kubeconfig" "$SHARE/kube-proxy.kubeconfig"
  cp "$PKI/ca.crt" "$SHARE/ca.crt"
  echo "nameserver $DNS_IP" > "$SHARE/resolv.conf"
  cat > "$SHARE/containerd.toml" <<TOML
version = 3
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE_IMAGE"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "$SHARE/certs.d"
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$CNI_BIN_DIR"]
    conf_dir = "$SHARE/net.d"
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
TOML
  mkdir -p "$SHARE/certs.d/$REGISTRY" "$SHARE/net.d"
  cat > "$SHARE/certs.d/$REGISTRY/hosts.toml" <<TOML
server = "http://$REGISTRY"
[host."http://$VM_HOST_IP:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
TOML
  cat > "$SHARE/net.d/10-$CNI_NETWORK.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "$CNI_NETWORK", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "/var/lib/cni", "ranges": [[{"subnet": "$VM_POD_CIDR"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
  cat > "$SHARE/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: cgroupfs
failSwapOn: false
address: $VM_IP
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $SHARE/ca.crt}
authorization: {mode: Webhook}
readOnlyPort: 0
clusterDNS: [$DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $SHARE/resolv.conf
oomScoreAdj: 0
imageGCHighThresholdPercent: 100
evictionHard: {nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}
# Only pods that ask for this node land here: the other tests keep the fast host node.
registerWithTaints: [{key: wasmpod.io/test-node, value: cgroup-v2, effect: NoSchedule}]
# Under emulation everything is slow: give the runtime time before calling it unhealthy.
runtimeRequestTimeout: 10m
YAML
  cat > "$SHARE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $SHARE/kube-proxy.kubeconfig}
hostnameOverride: $VM_NODE
mode: iptables
clusterCIDR: $CLUSTER_POD_CIDR
oomScoreAdj: 0
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
YAML
  cat > "$SHARE/env" <<ENV
VM_IP=$VM_IP VM_HOST_IP=$VM_HOST_IP VM_NODE=$VM_NODE NODE_IP=$NODE_IP
K8S_BIN=$K8S_BIN CONTAINERD_BIN=$CONTAINERD_BIN PAUSE_TAR=$IMAGE_CACHE/pause.tar
ENV
}

registry_forwarder() {
  pid_alive "$VM_PIDS/registry-forward.pid" && return 0
  start_daemon registry-forward "$VM_PIDS" "$LOGS" socat \
    "TCP-LISTEN:$REGISTRY_PORT,bind=$VM_HOST_IP,fork,reuseaddr" "TCP:127.0.0.1:$REGISTRY_PORT"
}

start() {
  if pid_alive "$VM_PIDS/node-v2.pid" && $KUBECTL get node "$VM_NODE" >/dev/null 2>&1; then
    wait_for 600 "node $VM_NODE Ready" node_ready; return 0
  fi
  bridge_up
  write_node_files
  registry_forwarder
  log "booting the cgroup v2 VM node $VM_NODE (software emulation: a few minutes)"
  WASMPOD_VM_RAM_COPY="$K8S_BIN/kubelet $K8S_BIN/kube-proxy $CONTAINERD_BIN $(command -v runc) $WASMPOD_SHIM" \
    start_daemon node-v2 "$VM_PIDS" "$LOGS" "$E2E_DIR/vm/run.sh" --cpus 2 --memory 3G \
      --network "bridge=$VM_BRIDGE" --rwdir "$SHARE" -- bash "$CLUSTER_DIR/vm-node.sh" "$SHARE"
  wait_for 600 "node $VM_NODE Ready" node_ready
}

# Puts the wasmpod runtime into the VM node's containerd (the shim binary of this checkout, run
# from the read-only build cache), restarts it there and labels the node, as cluster-up does for
# the host node when the shim exists.
add_shim() {
  [[ -x $WASMPOD_SHIM ]] || die "no shim at $WASMPOD_SHIM"
  if ! grep -q 'runtimes.wasmpod]' "$SHARE/containerd.toml"; then
    cat >> "$SHARE/containerd.toml" <<TOML
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.wasmpod]
      runtime_type = "io.containerd.wasmpod.v1"
      runtime_path = "$WASMPOD_SHIM"
TOML
    local before; before=$(cat "$SHARE/containerd-restarts" 2>/dev/null || echo 0)
    touch "$SHARE/restart-containerd.request"
    wait_for 300 "containerd restart on $VM_NODE" \
      bash -c "[[ \$(cat '$SHARE/containerd-restarts' 2>/dev/null || echo 0) -gt $before ]]"
  fi
  $KUBECTL label node "$VM_NODE" wasmpod.io/runtime=ready --overwrite >/dev/null
  log "wasmpod runtime on $VM_NODE"
}

node_ready() {
  [[ $($KUBECTL get node "$VM_NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

stop() {
  stop_daemon node-v2 "$VM_PIDS" 10
  pkill -f "qemu-system-x86_64 -name virtme-ng.*$VM_BRIDGE" 2>/dev/null || true
  stop_daemon registry-forward "$VM_PIDS"
  $KUBECTL delete node "$VM_NODE" --wait=false >/dev/null 2>&1 || true
  bridge_down
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) node_ready ;;
  add-shim) add_shim ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
