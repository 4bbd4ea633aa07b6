# Shared settings of the local test cluster; sourced (never executed) by every script in e2e/cluster/.
# Every value can be overridden from the environment (or `make VAR=...`), which is how CI picks
# CONTAINERD=1.7 or another shim binary.
# shellcheck shell=bash

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_DIR=$(dirname "$CLUSTER_DIR")
# shellcheck source=../versions.env
source "$E2E_DIR/versions.env"

# Build outputs (WASMPOD_SHIM, WASMPOD_OPERATOR, WASMPOD_CACHE, ...). The shim under test may not
# exist yet: the cluster boots anyway, only wasmpod pods then fail.
# shellcheck source=../../scripts/paths.sh
source "$E2E_DIR/../scripts/paths.sh"

# One directory holds all persistent state (certs, etcd, containerd root, kubelet, registry, logs,
# pid files); one more under /run holds sockets and containerd's volatile state (netns mounts).
# Both names are private to this cluster so the shim's own tests (private containerds) never collide.
STATE=${WASMPOD_CLUSTER_STATE:-/var/lib/wasmpod-cluster}
RUNDIR=${WASMPOD_CLUSTER_RUN:-/run/wasmpod-cluster}
# containerd line: 2 (default, what kind >= 0.27 ships) or 1.7 (oldest supported). Unset, it is
# the line the running cluster was started with, so logs/test/down need no CONTAINERD=.
CONTAINERD=${CONTAINERD:-$(cat "$STATE/containerd-line" 2>/dev/null || echo 2)}
case $CONTAINERD in
  2) CONTAINERD_COMPONENT=containerd2 ;;
  1.7) CONTAINERD_COMPONENT=containerd17 ;;
  *) echo "CONTAINERD must be 2 or 1.7, not '$CONTAINERD'" >&2; exit 2 ;;
esac
# WASMPOD_BARE=1: nodes get nothing of wasmpod (no runtime entry in containerd's config, no
# RuntimeClass, no node label), as on a cluster where `helm install`/`kubectl apply -f deploy/`
# has to do it all (the install tests, `make demo`). Unset, it is the mode the running cluster
# was started with.
WASMPOD_BARE=${WASMPOD_BARE:-$(cat "$STATE/wasmpod-bare" 2>/dev/null || echo 0)}
LOGS=$STATE/logs
PIDS=$STATE/pids
PKI=$STATE/pki
KCFG=$STATE/kubeconfig            # kubeconfigs, one per user
ADMIN_KUBECONFIG=$KCFG/admin.kubeconfig
CONTAINERD_SOCK=$RUNDIR/containerd.sock
CONTAINERD_ROOT=$STATE/containerd
CONTAINERD_STATE=$RUNDIR/containerd
CONTAINERD_CONFIG=$STATE/containerd-config.toml
CONTAINERD_CERTS_D=$STATE/containerd-certs.d   # registry hosts.toml dirs (config_path)
CNI_CONF_DIR=$STATE/cni/net.d
CNI_IPAM_DIR=$STATE/cni/ipam
CNI_BIN_DIR=/usr/lib/cni                       # Debian's containernetworking-plugins
CNI_NETWORK=wasmpod-cluster
KUBELET_ROOT=$STATE/kubelet
POD_LOGS=$STATE/pod-logs
REGISTRY_DATA=$STATE/registry
# Built images are cached outside the state dir so a cluster-up after cluster-down skips the builds.
IMAGE_CACHE=$WASMPOD_CACHE/cluster-images

# Addresses. Pod and service ranges must not overlap this VM's uplink or DNS (10.255.255.53).
POD_CIDR=10.88.0.0/16          # the host node's pods
# The cgroup v2 VM node (node-v2.sh): its pods, the bridge to it, its name.
VM_POD_CIDR=10.89.0.0/24
CLUSTER_POD_CIDR=10.88.0.0/15  # both nodes' pods
VM_BRIDGE=wpvm0
VM_HOST_IP=10.77.0.1
VM_IP=10.77.0.2
VM_NODE=wasmpod-v2
SVC_CIDR=10.96.0.0/16
API_SVC_IP=10.96.0.1
DNS_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
BRIDGE=cni0
ETCD_CLIENT_PORT=${ETCD_CLIENT_PORT:-2379}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-2380}
API_PORT=6443
REGISTRY_PORT=5000
REGISTRY=127.0.0.1:$REGISTRY_PORT
# Every registry name the nodes' containerd serves from the local registry (containerd-config.sh,
# node-v2.sh): its own addresses, the in-cluster names (one image reference works for containerd
# and for pods, which inspect images through that Service), the upstream names charts use, and
# `_default` (any other registry), so a pull can never leave this machine.
REGISTRY_NAMES="$REGISTRY localhost:$REGISTRY_PORT registry.kube-system.svc:$REGISTRY_PORT
  registry.kube-system.svc.$CLUSTER_DOMAIN:$REGISTRY_PORT registry.k8s.io docker.io _default"
# The sandbox image name containerd is configured with; the locally built pause is imported as it.
PAUSE_IMAGE=registry.k8s.io/pause:3.10

# The uplink is whatever carries the default route (eth0 here, but never assume it).
UPLINK=${UPLINK:-$(ip -4 route show default | awk '{for (i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}')}
NODE_IP=${NODE_IP:-$(ip -4 -o addr show dev "$UPLINK" | awk '{print $4; exit}' | cut -d/ -f1)}
# The hostname resolves to 127.0.0.1 here, so the node name and IP are always passed explicitly.
NODE_NAME=${NODE_NAME:-$(hostname | tr '[:upper:]' '[:lower:]')}

# Binaries built by e2e/build-deps.sh (Go modules pinned in e2e/versions.env).
K8S_BIN=$("$E2E_DIR/build-deps.sh" --print-dir kubernetes)
ETCD_BIN=$("$E2E_DIR/build-deps.sh" --print-dir etcd)
CONTAINERD_BIN=$("$E2E_DIR/build-deps.sh" --print-dir "$CONTAINERD_COMPONENT")
CRICTL_BIN=$("$E2E_DIR/build-deps.sh" --print-dir crictl)
COREDNS_BIN=$("$E2E_DIR/build-deps.sh" --print-dir coredns)
KUBECTL="$K8S_BIN/kubectl --kubeconfig=$ADMIN_KUBECONFIG"
CRICTL="$CRICTL_BIN/crictl --config=$E2E_DIR/cluster/crictl.yaml --runtime-endpoint=unix://$CONTAINERD_SOCK --image-endpoint=unix://$CONTAINERD_SOCK --timeout=30s"
CTR="$CONTAINERD_BIN/ctr --address=$CONTAINERD_SOCK --namespace=k8s.io"
