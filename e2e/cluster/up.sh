#!/usr/bin/env bash
# `make cluster-up`: boots the local single-node Kubernetes cluster (or, when it is up, re-checks
# its health: every step below skips what is already done). Processes are detached (setsid/nohup)
# and outlive this script; `make cluster-down` stops them and undoes every host change.
# Variables: WASMPOD_V2_NODE=1 (also boot the cgroup v2 VM node, node-v2.sh), CONTAINERD=2|1.7, WASMPOD_SHIM=/path/to/containerd-shim-wasmpod-v1, WASMPOD_BARE=1
# (nothing of wasmpod on the node: for helm install; see env.sh).
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"

t0=$(date +%s)
trap 'log "cluster-up failed at line $LINENO ($BASH_COMMAND): see make cluster-logs (logs in $LOGS)"' ERR
[[ $(id -u) == 0 ]] || die "cluster-up needs root (mounts, iptables, containerd)"
mkdir -p "$STATE" "$RUNDIR" "$LOGS" "$PIDS"
exec 9> "$STATE/.lock"
flock -n 9 || die "another cluster-up/down is running"

# One cluster, one containerd line: switching needs a cluster-down (different config layout/root).
if [[ -s $STATE/containerd-line ]] && [[ $(cat "$STATE/containerd-line") != "$CONTAINERD" ]] &&
   pid_alive "$PIDS/containerd.pid"; then
  die "cluster runs containerd $(cat "$STATE/containerd-line"); run 'make cluster-down' before CONTAINERD=$CONTAINERD"
fi
echo "$CONTAINERD" > "$STATE/containerd-line"
if [[ -s $STATE/wasmpod-bare ]] && [[ $(cat "$STATE/wasmpod-bare") != "$WASMPOD_BARE" ]] &&
   pid_alive "$PIDS/containerd.pid"; then
  die "cluster runs with WASMPOD_BARE=$(cat "$STATE/wasmpod-bare"); run 'make cluster-down' before WASMPOD_BARE=$WASMPOD_BARE"
fi
echo "$WASMPOD_BARE" > "$STATE/wasmpod-bare"

# Binaries (a cached component costs nothing; a cold Kubernetes build takes tens of minutes).
"$E2E_DIR/build-deps.sh" "$CONTAINERD_COMPONENT" crictl etcd kubernetes coredns

"$CLUSTER_DIR/host.sh" prepare
"$CLUSTER_DIR/certs.sh"
cat > "$STATE/env" <<EOF
# source this file to use the local cluster's tools
export KUBECONFIG=$ADMIN_KUBECONFIG
export PATH=$K8S_BIN:$("$E2E_DIR/build-deps.sh" --print-dir helm):$CRICTL_BIN:\$PATH
export CONTAINER_RUNTIME_ENDPOINT=unix://$CONTAINERD_SOCK
export IMAGE_SERVICE_ENDPOINT=unix://$CONTAINERD_SOCK
EOF

"$CLUSTER_DIR/images/build.sh"
"$CLUSTER_DIR/registry.sh" start
"$CLUSTER_DIR/registry.sh" push
"$CLUSTER_DIR/control-plane.sh" start
"$CLUSTER_DIR/node.sh" start
# kube-proxy prepends its own jumps to the built-in chains; put the guard back on top.
wait_for 60 "kube-proxy rules" iptables -t nat -n -L KUBE-SERVICES
"$CLUSTER_DIR/guard.sh" ensure
# The second node, on cgroup v2 in a VM (slow to boot: only when asked, e.g. by the tests). It
# boots while the rest comes up; the end waits for it.
if [[ ${WASMPOD_V2_NODE:-0} == 1 ]]; then "$CLUSTER_DIR/node-v2.sh" boot; fi

wait_for 120 "node $NODE_NAME to register" $KUBECTL get node "$NODE_NAME"
"$CLUSTER_DIR/addons.sh"
wait_for 180 "node $NODE_NAME Ready" $KUBECTL wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
wait_for 180 "CoreDNS ready" $KUBECTL -n kube-system wait --for=condition=Available deployment/coredns --timeout=5s
# CoreDNS must answer through its ClusterIP from the host (host -> kube-proxy DNAT -> cni0 -> pod).
wait_for 60 "cluster DNS at $DNS_IP" busybox nslookup "kubernetes.default.svc.$CLUSTER_DOMAIN" "$DNS_IP"
# Pods (and the operator) reach the registry through its Service; the tests ask it once.
wait_service_serves kube-system registry /v2/ "{}"
# WASMPOD_V2_NODE_WAIT=0: return while it still boots (the cluster tests wait for it themselves,
# after their host-node tests).
if [[ ${WASMPOD_V2_NODE:-0} == 1 && ${WASMPOD_V2_NODE_WAIT:-1} == 1 ]]; then "$CLUSTER_DIR/node-v2.sh" start; fi

bare=""; ((WASMPOD_BARE)) && bare=", bare: no wasmpod runtime until it is installed"
log "cluster up in $(( $(date +%s) - t0 ))s (containerd $CONTAINERD, node $NODE_NAME at $NODE_IP$bare)"
cat >&2 <<EOF

  Use it:   source $STATE/env          (KUBECONFIG, kubectl/helm/crictl on PATH)
    or:     export KUBECONFIG=$ADMIN_KUBECONFIG
            $K8S_BIN/kubectl get nodes
  Images:   push to $REGISTRY (plain HTTP), e.g.
            skopeo copy --dest-tls-verify=false oci-archive:app.tar docker://$REGISTRY/app:v1
            pods pull "$REGISTRY/app:v1"; from inside pods the registry is
            registry.kube-system.svc:$REGISTRY_PORT (or $NODE_IP:$REGISTRY_PORT)
  Logs:     make cluster-logs    ($LOGS)
  Stop:     make cluster-down

EOF
