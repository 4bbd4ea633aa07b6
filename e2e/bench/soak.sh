# Soak on the local cluster (sourced by cluster-bench.sh, which provides $K, apply and the images):
# BENCH_SOAK_MINUTES (default 10) minutes at saturation through a Service into 2 Wasm replicas,
# one wrk run per minute (-t2 -c50) from inside a pod's network namespace (a busybox pod's netns,
# entered from the node, so the load takes the pod path: ClusterIP, kube-proxy, the bridge).
# Each minute prints req/s, p99 and errors, and the RSS of the two pods' shims sampled at its
# end; memory is flat when the last minute's RSS is within noise of the second's (the first
# minute is the warm-up).
# shellcheck shell=bash

SOAK_MINUTES=${BENCH_SOAK_MINUTES:-10}

# shim_rss_kib POD: RSS in KiB of the shim process serving POD's sandbox.
shim_rss_kib() {
  local sandbox pid
  sandbox=$($CRICTL pods --namespace "$NS" --name "$1" -q | head -n 1)
  pid=$(pgrep -f "containerd-shim-wasmpod-v1.* -id $sandbox" | head -n 1)
  awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"
}

soak_bench() {
  [[ -n ${OPERATOR_PID:-} ]] || start_operator --insecure-registry "$NODE_REGISTRY"
  apply <<EOF
apiVersion: wasmpod.io/v1alpha1
kind: WasmApp
metadata: {name: soak}
spec:
  image: $(node_image "$WASM_HTTP_IMAGE")
  replicas: 2
---
apiVersion: v1
kind: Pod
metadata: {name: soak-client}
spec:
  nodeSelector: {kubernetes.io/hostname: $NODE_NAME}
  containers: [{name: sh, image: $REGISTRY/library/busybox:1.35, command: [sleep, "86400"]}]
EOF
  wait_for 60 "Service soak" $K get service soak
  wait_service_serves "$NS" soak /soak "hello from wasmpod http" 180 >/dev/null || { echo "soak never served"; return 1; }
  $K wait --for=condition=Ready pod/soak-client --timeout=120s >/dev/null
  local netns sandbox url pods m out rps p99 errors rss line first_rss last_rss
  sandbox=$($CRICTL pods --namespace "$NS" --name soak-client -q | head -n 1)
  netns=$($CRICTL inspectp -o json "$sandbox" | jq -r '.info.runtimeSpec.linux.namespaces[] | select(.type == "network") | .path')
  url="http://$(svc_ip soak)/"
  # Both replicas Ready and behind the Service before the clock starts.
  wait_for 120 "2 ready soak endpoints" bash -c "[[ \$($K get deploy soak -o jsonpath='{.status.readyReplicas}') == 2 ]]"
  pods=$($K get pods -l wasmpod.io/app=soak -o jsonpath='{.items[*].metadata.name}')
  echo
  echo "== soak: $SOAK_MINUTES min at saturation (wrk -t2 -c50, from a pod's netns) through Service soak into 2 Wasm replicas"
  printf '%-7s %10s %10s %8s   %s\n' minute "req/s" p99 errors "shim RSS KiB per pod"
  for m in $(seq 1 "$SOAK_MINUTES"); do
    out=$(nsenter --net="$netns" wrk -t2 -c50 -d60s --latency "$url" 2>&1)
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
    errors=$(echo "$out" | awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }')
    rss=""
    for p in $pods; do rss+="$(shim_rss_kib "$p") "; done
    printf '%-7s %10s %10s %8s   %s\n' "$m" "$rps" "$p99" "$errors" "$rss"
    line=$(echo "$rss" | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; print s }')
    ((m == 2)) && first_rss=$line
    last_rss=$line
  done
  if [[ -n ${first_rss:-} ]]; then
    awk -v a="$first_rss" -v b="$last_rss" 'BEGIN { printf "shim RSS after warm-up (minute 2) %d KiB, at the end %d KiB: %+.1f%%\n", a, b, (b - a) * 100 / a }'
  fi
}
