#!/usr/bin/env bash
# `make demo`: on a fresh machine, builds everything, boots the local cluster with wasmpod,
# deploys a Wasm HTTP app (RuntimeClass wasmpod) beside a container app that calls it through
# its Service, prints the answer and what to try next. Idempotent: re-running re-deploys.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/cluster/env.sh"
"$here/cluster/up.sh"
eval "$("$here/cluster/wasm-images.sh")"
K="$KUBECTL -n wasmpod-demo"
$KUBECTL create namespace wasmpod-demo --dry-run=client -o yaml | $KUBECTL apply -f - >/dev/null
$K apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello-wasm}
spec:
  replicas: 2
  selector: {matchLabels: {app: hello-wasm}}
  template:
    metadata: {labels: {app: hello-wasm}}
    spec:
      runtimeClassName: wasmpod
      containers:
      - name: app
        image: $WASM_HTTP_IMAGE
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
        resources: {limits: {memory: 64Mi, cpu: 500m}}
---
apiVersion: v1
kind: Service
metadata: {name: hello-wasm}
spec:
  selector: {app: hello-wasm}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: caller}
spec:
  containers:
  - name: caller
    image: $REGISTRY/library/busybox:1.35
    command: [sh, -c, "while true; do wget -qO- http://hello-wasm/ || echo unreachable; sleep 5; done"]
YAML
$K rollout status deployment/hello-wasm --timeout=180s >/dev/null
$K wait --for=condition=Ready pod/caller --timeout=120s >/dev/null
answer=""
for _ in $(seq 30); do
  answer=$($K logs caller --tail=1 2>/dev/null || true)
  [[ $answer == "hello from wasmpod http" ]] && break
  sleep 1
done
cat <<MSG

The container pod 'caller' asked the Wasm service http://hello-wasm/ and got:
    $answer

Try next:
    source $STATE/env                           # kubectl, helm, crictl and KUBECONFIG
    kubectl -n wasmpod-demo get pods -o wide    # Wasm pods run under RuntimeClass wasmpod
    kubectl -n wasmpod-demo logs caller -f
    kubectl -n wasmpod-demo scale deployment/hello-wasm --replicas=4
    crictl stats                                # CPU and memory of each container, Wasm ones from the shim
    make cluster-logs                           # containerd (and shim) logs
    make cluster-down                           # stop it and clean up the host
MSG
[[ $answer == "hello from wasmpod http" ]]
