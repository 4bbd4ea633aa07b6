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
  local k8s etcd ports ep pp ap
  if pid_alive "$pids/kube-apiserver.pid" && pid_alive "$pids/etcd.pid" && [[ -s $dir/kubeconfig ]]; then
    echo "$dir/kubeconfig"; return 0
  fi
  k8s=$("$here/../build-deps.sh" --print-dir kubernetes)
  etcd=$("$here/../build-deps.sh" --print-dir etcd)
  [[ -x $k8s/kube-apiserver && -x $etcd/etcd ]] || die "run e2e/build-deps.sh etcd kubernetes first"

  # Three distinct free loopback ports (a tiny race with other binders is acceptable for tests).
  read -r ep pp ap < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
  echo "etcd-client=$ep etcd-peer=$pp apiserver=$ap" > "$dir/ports"

  pki_ca "$pki"
  pki_leaf "$pki" apiserver /CN=kube-apiserver \
    "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,DNS:kubernetes.default.svc"
  pki_leaf "$pki" admin "/O=system:masters/CN=admin" extendedKeyUsage=clientAuth
  pki_sa_key "$pki"

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

  write_kubeconfig "$dir/kubeconfig" "https://127.0.0.1:$ap" "$pki/ca.crt" "$pki/admin.crt" "$pki/admin.key"
  if ! wait_for 60 "kube-apiserver on 127.0.0.1:$ap" curl -fsS --cacert "$pki/ca.crt" \
       --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$ap/readyz"; then
    tail -n 30 "$logs/kube-apiserver.log" "$logs/etcd.log" >&2 || true
    stop; exit 1
  fi
  echo "$dir/kubeconfig"
}

$cmd
