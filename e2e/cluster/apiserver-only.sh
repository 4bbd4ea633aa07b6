#!/usr/bin/env bash
# usage: apiserver-only.sh start DIR | stop DIR
# A node-less control plane for operator integration tests, like controller-runtime's envtest but
# with no download: etcd (--unsafe-no-fsync) + kube-apiserver on free loopback ports, certs and data
# in DIR, ready in a few seconds. `start` writes DIR/kubeconfig (admin, system:masters) and prints
# its path on stdout; kube-rs loads it with Config::from_custom_kubeconfig. No controllers run: no
# garbage collection, namespaces never finish deleting, pods never start. Several instances (one
# DIR each) can run side by side. `stop` kills both processes and removes what `start` made in DIR.
# Needs the binaries of `e2e/build-deps.sh etcd kubernetes`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/pki.sh"

cmd=${1:-}; dir=${2:-}
[[ ( $cmd == start || $cmd == stop ) && -n $dir ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
pids=$dir/pids logs=$dir/logs pki=$dir/pki

stop() {
  stop_daemon kube-apiserver "$pids" 10
  stop_daemon etcd "$pids" 10
  rm -rf "$dir/etcd" "$pki" "$logs" "$pids" "$dir/kubeconfig" "$dir/ports"
  rmdir "$dir" 2>/dev/null || true
}

start() {
  local k8s etcd ep pp ap
  if pid_alive "$pids/kube-apiserver.pid" && pid_alive "$pids/etcd.pid" && [[ -s $dir/kubeconfig ]]; then
    echo "$dir/kubeconfig"; return 0
  fi
  k8s=$("$here/../build-deps.sh" --print-dir kubernetes)
  etcd=$("$here/../build-deps.sh" --print-dir etcd)
  [[ -x $k8s/kube-apiserver && -x $etcd/etcd ]] || die "run e2e/build-deps.sh etcd kubernetes first"

  pki_ca "$pki"
  pki_leaf "$pki" apiserver /CN=kube-apiserver \
    "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,DNS:kubernetes.default.svc"
  pki_leaf "$pki" admin "/O=system:masters/CN=admin" extendedKeyUsage=clientAuth
  pki_sa_key "$pki"

  # A free port stays free only until someone binds it: instances started side by side (the
  # test binaries run their tests in parallel) can pick the same one. The loser exits at once,
  # and an apiserver whose etcd lost would serve another instance's data. So: both daemons
  # alive once the apiserver answers, or new ports.
  local attempt
  for attempt in 1 2 3 4 5; do
    read -r ep pp ap < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
    echo "etcd-client=$ep etcd-peer=$pp apiserver=$ap" > "$dir/ports"
    start_daemons "$k8s" "$etcd" "$ep" "$pp" "$ap"
    write_kubeconfig "$dir/kubeconfig" "https://127.0.0.1:$ap" "$pki/ca.crt" "$pki/admin.crt" "$pki/admin.key"
    if own_apiserver_ready "$ap"; then
      echo "$dir/kubeconfig"; return 0
    fi
    log "attempt $attempt: etcd or kube-apiserver did not come up on ports $ep/$pp/$ap; trying others"
    tail -n 5 "$logs/kube-apiserver.log" "$logs/etcd.log" >&2 || true
    stop_daemon kube-apiserver "$pids" 10
    stop_daemon etcd "$pids" 10
    rm -rf "$dir/etcd"
  done
  stop; exit 1
}

start_daemons() { # start_daemons K8S_DIR ETCD_DIR ETCD_CLIENT_PORT ETCD_PEER_PORT APISERVER_PORT
  local k8s=$1 etcd=$2 ep=$3 pp=$4 ap=$5
  start_daemon etcd "$pids" "$logs" "$etcd/etcd" --name=n1 --data-dir="$dir/etcd" --unsafe-no-fsync \
    --listen-client-urls="http://127.0.0.1:$ep" --advertise-client-urls="http://127.0.0.1:$ep" \
    --listen-peer-urls="http://127.0.0.1:$pp" --initial-advertise-peer-urls="http://127.0.0.1:$pp" \
    --initial-cluster="n1=http://127.0.0.1:$pp" --log-level=warn
  # envtest's defaults: small service range, RBAC, no ServiceAccount admission (no token controller).
  # No nodes, so no endpoints to reconcile for the `kubernetes` Service: since 1.37 the
  # reconciler refuses a loopback advertise address.
  start_daemon kube-apiserver "$pids" "$logs" "$k8s/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ep" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --secure-port="$ap" --service-cluster-ip-range=10.0.0.0/24 --authorization-mode=RBAC \
    --disable-admission-plugins=ServiceAccount --allow-privileged=true \
    --client-ca-file="$pki/ca.crt" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" --profiling=false --v=0 \
    --endpoint-reconciler-type=none
}

# own_apiserver_ready PORT: this instance's apiserver answers /readyz (with this instance's CA
# and client cert) while both of its daemons still run; fails as soon as one has exited.
own_apiserver_ready() {
  local deadline=$(( $(date +%s) + 60 ))
  while (( $(date +%s) < deadline )); do
    pid_alive "$pids/etcd.pid" && pid_alive "$pids/kube-apiserver.pid" || return 1
    if curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
         "https://127.0.0.1:$1/readyz" >/dev/null 2>&1; then
      pid_alive "$pids/etcd.pid" && pid_alive "$pids/kube-apiserver.pid"; return
    fi
    sleep 0.2
  done
  return 1
}

$cmd
