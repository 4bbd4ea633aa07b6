#!/usr/bin/env bash
# `make demo`: on a fresh machine, boots the local cluster with nothing of wasmpod on its node
# (WASMPOD_BARE=1), builds and pushes wasmpod's images, installs wasmpod with Helm (the installer
# puts the shim on the node and labels it), deploys a WasmApp (a Wasm HTTP component) beside a
# container app that calls it through its Service, and prints the answer and what to try next.
# Idempotent: re-running upgrades the release and re-applies the apps.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
source "$here/cluster/env.sh"
source "$CLUSTER_DIR/lib.sh"

if [[ $(cat "$STATE/wasmpod-bare" 2>/dev/null) == 0 ]] && $KUBECTL get --raw /readyz >/dev/null 2>&1; then
  log "the running cluster has wasmpod preinstalled (make cluster-up); the demo installs it with Helm on a bare one"
  "$CLUSTER_DIR/down.sh"
fi
export WASMPOD_BARE=1
"$CLUSTER_DIR/up.sh"
"$CLUSTER_DIR/push-wasmpod.sh"

HELM="$("$E2E_DIR/build-deps.sh" --print-dir helm)/helm --kubeconfig=$ADMIN_KUBECONFIG"
values=$(mktemp); trap 'rm -f "$values"' EXIT
"$CLUSTER_DIR/helm-values.sh" > "$values"
log "helm upgrade --install wasmpod charts/wasmpod (namespace wasmpod-system)"
(cd "$root" && $HELM upgrade --install wasmpod charts/wasmpod -n wasmpod-system --create-namespace \
  -f charts/wasmpod/ci/test-bed-values.yaml -f "$values" --wait --timeout 5m >/dev/null)
# helm's --wait lets a DaemonSet be short of maxUnavailable (1) ready pods: on one node, of all.
$KUBECTL -n wasmpod-system rollout status ds/wasmpod-node-installer --timeout=180s >/dev/null

K="$KUBECTL -n wasmpod-demo"
$KUBECTL create namespace wasmpod-demo --dry-run=client -o yaml | $KUBECTL apply -f - >/dev/null
$K apply -f - >/dev/null <<YAML
apiVersion: wasmpod.io/v1alpha1
kind: WasmApp
metadata: {name: hello}
spec:
  image: registry.kube-system.svc:$REGISTRY_PORT/wasmpod-test/wasm-http:artifact
  replicas: 2
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: caller}
spec:
  selector: {matchLabels: {app: caller}}
  template:
    metadata: {labels: {app: caller}}
    spec:
      containers:
      - name: caller
        image: $REGISTRY/library/busybox:1.35
        command: [sh, -c, "while true; do wget -qO- http://hello/ || echo unreachable; echo; sleep 5; done"]
YAML
wait_wasmapp_ready wasmpod-demo hello 180
wait_service_serves wasmpod-demo hello / "hello from wasmpod http"
$K rollout status deployment/caller --timeout=120s >/dev/null
answer=""
for _ in $(seq 30); do
  answer=$($K logs deploy/caller --tail=2 2>/dev/null | grep -v '^$' | tail -n1 || true)
  [[ $answer == "hello from wasmpod http" ]] && break
  sleep 1
done
cat <<MSG

wasmpod is installed with Helm (release wasmpod, namespace wasmpod-system). The container app
'caller' asked the WasmApp 'hello' at http://hello/ and got:
    $answer

Try next:
    source $STATE/env                             # kubectl, helm, crictl and KUBECONFIG
    kubectl -n wasmpod-demo get wapp -o wide      # replicas, URL, image of each WasmApp
    kubectl -n wasmpod-demo scale wapp/hello --replicas=4
    kubectl -n wasmpod-demo logs deploy/caller -f
    kubectl get node -L wasmpod.io/runtime        # labelled by the node installer
    helm -n wasmpod-system test wasmpod           # the chart's own check
    crictl stats                                  # CPU and memory per container, Wasm ones from the shim
    make cluster-logs                             # containerd (and shim) logs
    make cluster-down                             # stop it and clean up the host
MSG
[[ $answer == "hello from wasmpod http" ]]
