#!/usr/bin/env bash
# `make bench-cluster`: figures of wasmpod on the local cluster (`make cluster-up`), each beside
# its baseline measured in the same run, with their ratio. No figure is asserted: these are
# measurements, printed. BENCH_SECTIONS picks (default all, in this order):
#
# scale-to-zero (the activator vs the pod path):
# - first request to an app at zero: BENCH_ACTIVATIONS apps (default 20), each idle and at zero,
#   asked once through its Service's ClusterIP from the node; the activator answers (p50, p99);
# - baseline: a WasmApp without scaleToZero, from 0 replicas to its first answer through the
#   Service (replicas set to 1, then requests until one is answered: pod sandbox, shim, readiness,
#   endpoints, kube-proxy), BENCH_ACTIVATIONS rounds;
# - the activator's memory per idle precompiled app: its PSS with no app, then with
#   BENCH_ACTIVATIONS apps prepared, divided by the count.
# pod-start: a Pod created to Ready (watch), Wasm vs runc, one at a time and 10 at once, and
#   where the one-at-a-time time goes, from the CRI's timestamps (e2e/bench/pod_start.py).
# density: as many Wasm pods as the node holds vs runc in the same time (e2e/bench/density.sh).
# soak: minutes at saturation into 2 Wasm replicas, shim RSS per minute (e2e/bench/soak.sh).
#
# The operator runs on the host and the activator as two pods, as in the cluster tests
# (e2e/tests/cluster/scale-to-zero.sh, whose helpers this uses), in a namespace of its own.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../cluster/env.sh"
source "$CLUSTER_DIR/lib.sh"
source "$here/../tests/cluster/lib.sh"
source "$here/../tests/cluster/scale-to-zero.sh"
source "$here/density.sh"
source "$here/soak.sh"
SECTIONS=${BENCH_SECTIONS:-scale-to-zero pod-start density soak}
section() { [[ " $SECTIONS " == *" $1 "* ]]; }
HELLO_IMAGE=$REGISTRY/wasmpod-test/hello-http:v1

N=${BENCH_ACTIVATIONS:-20}
NS=wasmpod-bench-$(date +%s)
K="$KUBECTL -n $NS"
apply() { $K apply -f - >/dev/null; }

$KUBECTL get --raw /readyz >/dev/null 2>&1 || { echo "cluster is not up: run 'make cluster-up'"; exit 1; }
eval "$("$CLUSTER_DIR/wasm-images.sh")"
$KUBECTL create namespace "$NS" >/dev/null
wait_for 30 "default ServiceAccount in $NS" $K get serviceaccount default
cleanup() {
  kill "${OPERATOR_PID:-}" 2>/dev/null || true
  $KUBECTL delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

# percentile P FILE: the P-th percentile (nearest rank) of the numbers in FILE.
percentile() { sort -g "$2" | awk -v p="$1" '{ v[NR] = $1 } END { i = int((p * NR + 99) / 100); if (i < 1) i = 1; print v[i] }'; }

# pss_of_activator: PSS in KiB of the first activator pod's process, read from the node.
pss_of_activator() {
  local pod sandbox ctr pid
  pod=$($K get pods -l app=wasmpod-activator -o jsonpath='{.items[0].metadata.name}')
  sandbox=$($CRICTL pods --namespace "$NS" --name "$pod" -q | head -n 1)
  ctr=$($CRICTL ps --pod "$sandbox" -q | head -n 1)
  pid=$($CRICTL inspect -o json "$ctr" | jq -r .info.pid)
  awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup"
}

scale_to_zero_bench() {
local i out t0 t1 r ip a50 a99 p50 p99 per_app pss_empty pss_apps activations pod_path
start_activator
start_s2z_operator
pss_empty=$(pss_of_activator)

# --- the activator: first requests at zero -----------------------------------------------------
for i in $(seq 1 "$N"); do s2z_app "cold-$i" "$WASM_HTTP_IMAGE" 5; done
for i in $(seq 1 "$N"); do wait_activator_ready "cold-$i" >/dev/null; done
pss_apps=$(pss_of_activator)
for i in $(seq 1 "$N"); do wait_phase "cold-$i" AtZero 180; done
log "$N apps at zero"
activations=$(mktemp)
for i in $(seq 1 "$N"); do
  out=$(curl -sS -o /dev/null --max-time 10 -w '%{http_code} %{time_total}' "http://$(svc_ip "cold-$i")/cold")
  [[ $out == 200\ * ]] || { echo "cold-$i answered '$out'"; exit 1; }
  echo "${out#* }" | awk '{ printf "%.3f\n", $1 * 1000 }' >> "$activations"
done

# --- baseline: the pod path from 0 replicas --------------------------------------------------------
apply <<EOF
apiVersion: wasmpod.io/v1alpha1
kind: WasmApp
metadata: {name: podpath}
spec:
  image: $(node_image "$WASM_HTTP_IMAGE")
  replicas: 0
EOF
wait_for 60 "podpath's Service" $K get service podpath
pod_path=$(mktemp)
ip=$(svc_ip podpath)
for r in $(seq 1 "$N"); do
  wait_for 120 "podpath without pods" bash -c "[[ -z \$($K get pods -l wasmpod.io/app=podpath -o name) ]]"
  t0=$(date +%s%N)
  $K patch wapp podpath --type=merge -p '{"spec":{"replicas":1}}' >/dev/null
  until curl -s -o /dev/null --max-time 1 "http://$ip/warm"; do sleep 0.02; done
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000000 ))" >> "$pod_path"
  $K patch wapp podpath --type=merge -p '{"spec":{"replicas":0}}' >/dev/null
done

a50=$(percentile 50 "$activations"); a99=$(percentile 99 "$activations")
p50=$(percentile 50 "$pod_path"); p99=$(percentile 99 "$pod_path")
per_app=$(( (pss_apps - pss_empty) / N ))
echo
echo "== scale to zero: first request to an app at zero ($N apps, through the Service from the node)"
printf '%-48s p50 %8.1f ms   p99 %8.1f ms\n' "activator (in-process, precompiled)" "$a50" "$a99"
printf '%-48s p50 %8.1f ms   p99 %8.1f ms\n' "baseline: pod path from 0 replicas ($N rounds)" "$p50" "$p99"
awk -v a="$a50" -v p="$p50" 'BEGIN { printf "%-48s %.0fx faster at p50 (target: >= 50x, p50 <= 20 ms)\n", "ratio", p / a }'
echo "== activator memory: PSS $((pss_empty / 1024)) MiB with no app, $((pss_apps / 1024)) MiB with $N idle precompiled apps: $per_app KiB per app"
}

log "bench namespace $NS; sections: $SECTIONS"
if section scale-to-zero; then scale_to_zero_bench; fi
if section pod-start; then
  python3 "$here/pod_start.py" --kubectl "$KUBECTL" --namespace "$NS" --node "$NODE_NAME" \
    --wasm-image "$WASM_HTTP_IMAGE" --runc-image "$HELLO_IMAGE" --pods "${BENCH_POD_STARTS:-30}" \
    --crictl "$CRICTL"
fi
if section density; then density_bench; fi
if section soak; then soak_bench; fi
