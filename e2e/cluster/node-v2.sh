#!/usr/bin/env bash
# usage: node-v2.sh boot|start|stop|status|runtime absent|present|run-job -- COMMAND [ARG...]
# The cluster's second node, `wasmpod-v2`: containerd, kubelet and kube-proxy inside the
# cgroup v2 VM of e2e/vm (qemu TCG), joined to the host's control plane. The host and the VM
# share a private bridge ($VM_BRIDGE, $VM_HOST_IP <-> $VM_IP); each node routes the other's pod
# subnet through it. Inside the VM the node has the host node's layout (containerd's config at
# $CONTAINERD_CONFIG, its socket at $CONTAINERD_SOCK, on tmpfs), so the node installer runs
# there with the same chart values. Like the host node, it has the wasmpod runtime from the
# start unless the cluster is bare (WASMPOD_BARE=1); then only the installer puts it there.
# The VM's traffic never leaves through the uplink (guard.sh rejects forwarding from the bridge
# to $UPLINK), and it reaches the registry through a forwarder on the bridge address.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"
source "$CLUSTER_DIR/pki.sh"
source "$E2E_DIR/vm/job-script.sh"

SHARE=$STATE/node-v2            # shared read-write with the VM: configs in, logs out
DISK=$STATE/node-v2.img         # the VM's disk
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

# containerd_toml BARE: the node's containerd config; with the wasmpod runtime unless BARE is 1.
containerd_toml() {
  cat <<TOML
version = 3
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "$CONTAINERD_SOCK"
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
  if [[ $1 != 1 ]]; then
    [[ -x $WASMPOD_SHIM ]] || die "no shim at $WASMPOD_SHIM (or boot a bare cluster: WASMPOD_BARE=1)"
    cat <<TOML
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.wasmpod]
      runtime_type = "io.containerd.wasmpod.v1"
      runtime_path = "$WASMPOD_SHIM"
TOML
  fi
}

write_node_files() {
  mkdir -p "$SHARE/logs"
  rm -f "$SHARE/containerd-restarts" "$SHARE/restart-containerd.request" "$SHARE/containerd.toml.next"
  rm -rf "$SHARE/jobs"
  pki_leaf "$PKI" kubelet-v2 "/O=system:nodes/CN=system:node:$VM_NODE" "extendedKeyUsage=clientAuth"
  write_kubeconfig "$SHARE/kubelet.kubeconfig" "https://$NODE_IP:$API_PORT" "$PKI/ca.crt" "$PKI/kubelet-v2.crt" "$PKI/kubelet-v2.key"
  cp "$KCFG/kube-proxy.kubeconfig" "$SHARE/kube-proxy.kubeconfig"
  cp "$PKI/ca.crt" "$SHARE/ca.crt"
  echo "nameserver $DNS_IP" > "$SHARE/resolv.conf"
  containerd_toml "$WASMPOD_BARE" > "$SHARE/containerd.toml"
  # The registry names of the host node (env.sh), all through the forwarder.
  rm -rf "$SHARE/certs.d"
  local h
  # shellcheck disable=SC2086  # a list of names
  for h in $REGISTRY_NAMES; do
    mkdir -p "$SHARE/certs.d/$h"
    cat > "$SHARE/certs.d/$h/hosts.toml" <<TOML
server = "http://$REGISTRY"
[host."http://$VM_HOST_IP:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
TOML
  done
  mkdir -p "$SHARE/net.d"
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
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
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
STATE=$STATE RUNDIR=$RUNDIR CONTAINERD_CONFIG=$CONTAINERD_CONFIG CONTAINERD_SOCK=$CONTAINERD_SOCK
ENV
}

registry_forwarder() {
  pid_alive "$VM_PIDS/registry-forward.pid" && return 0
  start_daemon registry-forward "$VM_PIDS" "$LOGS" socat \
    "TCP-LISTEN:$REGISTRY_PORT,bind=$VM_HOST_IP,fork,reuseaddr" "TCP:127.0.0.1:$REGISTRY_PORT"
}

# boot: starts the VM (it registers itself once its kubelet runs); returns at once.
boot() {
  [[ $CONTAINERD == 2 ]] || die "the cgroup v2 node runs containerd 2 (its config is version 3); this cluster runs $CONTAINERD"
  pid_alive "$VM_PIDS/node-v2.pid" && return 0
  bridge_up
  write_node_files
  registry_forwarder
  # The node's disk (containerd's images, the node's state dir): a fresh sparse ext4 image. On
  # tmpfs, every file written would be memory charged to its writer's cgroup for good (the
  # installer's copy of the shim would push its pod past its limit, as no real disk does).
  rm -f "$DISK"; truncate -s 8G "$DISK"; mkfs.ext4 -q -F "$DISK"
  log "booting the cgroup v2 VM node $VM_NODE (software emulation: about 1.5 minutes)"
  # In RAM: what runs again for every pod (containerd's dir holds the runc shim and ctr). The
  # kubelet and kube-proxy start once; copying them would cost more than it saves.
  WASMPOD_VM_RAM_COPY="$CONTAINERD_BIN $(command -v runc) $WASMPOD_SHIM" \
    start_daemon node-v2 "$VM_PIDS" "$LOGS" "$E2E_DIR/vm/run.sh" --cpus 2 --memory 4G \
      --network "bridge=$VM_BRIDGE" --rwdir "$SHARE" --disk "$DISK" -- bash "$CLUSTER_DIR/vm-node.sh" "$SHARE"
}

# start: boots the VM unless it runs, and waits for the node to be Ready (labelled when it has
# the runtime).
start() {
  boot
  wait_for 600 "node $VM_NODE Ready" v2_node_ready
  if [[ $WASMPOD_BARE != 1 ]]; then
    $KUBECTL label node "$VM_NODE" wasmpod.io/runtime=ready --overwrite >/dev/null
    log "node $VM_NODE has the wasmpod runtime: labelled wasmpod.io/runtime=ready"
  fi
}

# runtime absent|present: the running node's containerd restarted without (or with) the wasmpod
# runtime, as if the cluster had been booted bare (or not); pods keep running. Leaves the label
# alone.
runtime() {
  local bare before
  case ${1:-} in absent) bare=1 ;; present) bare=0 ;; *) die "usage: $0 runtime absent|present" ;; esac
  v2_node_ready || die "node $VM_NODE is not Ready"
  before=$(cat "$SHARE/containerd-restarts" 2>/dev/null || echo 0)
  containerd_toml "$bare" > "$SHARE/containerd.toml.next"
  cp "$SHARE/containerd.toml.next" "$SHARE/containerd.toml"
  touch "$SHARE/restart-containerd.request"
  wait_for 300 "containerd restart on $VM_NODE" \
    bash -c "(( \$(cat '$SHARE/containerd-restarts' 2>/dev/null || echo 0) > $before ))"
  log "node $VM_NODE: containerd restarted with the wasmpod runtime $1"
}

# run-job -- COMMAND [ARG...]: runs COMMAND as root inside the node's VM, beside its kubelet
# (the VM's vm-node.sh picks it up), with the caller's working directory and its WASMPOD_*, CI,
# RUST_* and CARGO_TARGET_DIR variables, as e2e/vm/run.sh does in a VM of its own; prints
# COMMAND's output and returns its exit status. The VM must be booted (boot); the job starts once
# the node's supervisor runs, so it may wait out the rest of the boot.
run_job() {
  [[ ${1:-} == -- ]] && shift
  (($#)) || die "usage: $0 run-job -- COMMAND [ARG...]"
  pid_alive "$VM_PIDS/node-v2.pid" || die "node $VM_NODE's VM is not running (node-v2.sh boot)"
  local jobs=$SHARE/jobs name rc
  mkdir -p "$jobs"
  name=job-$$-$(date +%s%N)
  vm_job_script exec "$@" > "$jobs/$name.part"
  mv "$jobs/$name.part" "$jobs/$name.sh"
  log "job $name queued on node $VM_NODE: $1"
  until [[ -e $jobs/$name.rc ]]; do
    pid_alive "$VM_PIDS/node-v2.pid" || { cat "$jobs/$name.log" 2>/dev/null; die "node $VM_NODE's VM stopped during job $name"; }
    sleep 1
  done
  cat "$jobs/$name.log"
  rc=$(cat "$jobs/$name.rc")
  rm -f "$jobs/$name".*
  return "$rc"
}

stop() {
  stop_daemon node-v2 "$VM_PIDS" 10
  pkill -f "qemu-system-x86_64 -name virtme-ng.*$VM_BRIDGE" 2>/dev/null || true
  stop_daemon registry-forward "$VM_PIDS"
  rm -f "$DISK"
  $KUBECTL delete node "$VM_NODE" --wait=false >/dev/null 2>&1 || true
  bridge_down
}

case ${1:-} in
  boot) boot ;;
  start) start ;;
  stop) stop ;;
  status) v2_node_ready ;;
  runtime) runtime "${2:-}" ;;
  run-job) shift; run_job "$@" ;;
  *) echo "usage: $0 boot|start|stop|status|runtime absent|present|run-job -- COMMAND [ARG...]" >&2; exit 2 ;;
esac
