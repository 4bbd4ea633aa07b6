#!/usr/bin/env bash
# usage: control-plane.sh start|stop
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler. Each runs detached with a pid file and a log in $LOGS; `start` skips
# what already runs and waits until the apiserver answers /readyz.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"

KC=$KCFG
start() {
  install -d -m 700 "$STATE/etcd"   # etcd warns about anything wider
  # The data dir is scratch for a test cluster, but fsync is kept: cluster-up is not a benchmark
  # and a crash should not corrupt what tests left behind for debugging.
  start_daemon etcd "$PIDS" "$LOGS" "$ETCD_BIN/etcd" --name=n1 --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="n1=http://127.0.0.1:$ETCD_PEER_PORT" \
    --log-level=warn
  wait_for 30 etcd curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health"

  start_daemon kube-apiserver "$PIDS" "$LOGS" "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-address="$NODE_IP" --bind-address=0.0.0.0 --secure-port="$API_PORT" \
    --service-cluster-ip-range="$SVC_CIDR" --service-node-port-range=30000-32767 \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
    --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet.crt" --kubelet-client-key="$PKI/apiserver-kubelet.key" \
    --kubelet-preferred-address-types=InternalIP,InternalDNS,Hostname \
    --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --profiling=false --v=1
  wait_for 90 "kube-apiserver /readyz" $KUBECTL get --raw /readyz

  start_daemon kube-controller-manager "$PIDS" "$LOGS" "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$KC/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$KC/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$KC/controller-manager.kubeconfig" --bind-address=127.0.0.1 \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --controllers='*' --service-cluster-ip-range="$SVC_CIDR" --leader-elect=false --profiling=false --v=1

  start_daemon kube-scheduler "$PIDS" "$LOGS" "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$KC/scheduler.kubeconfig" --authentication-kubeconfig="$KC/scheduler.kubeconfig" \
    --authorization-kubeconfig="$KC/scheduler.kubeconfig" --bind-address=127.0.0.1 --leader-elect=false \
    --profiling=false --v=1
}

stop() { # reverse order: nothing writes to etcd once the apiserver is gone
  stop_daemon kube-scheduler "$PIDS"
  stop_daemon kube-controller-manager "$PIDS"
  # Its graceful shutdown waits for long-running requests that nobody will finish (over 20 s
  # every time); the cluster's state is thrown away with it, so a short wait is enough.
  stop_daemon kube-apiserver "$PIDS" 3
  stop_daemon etcd "$PIDS" 20
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
