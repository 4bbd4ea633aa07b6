#!/usr/bin/env bash
# usage: make-bare.sh
# Takes wasmpod off a running test-bed cluster that was booted with it, so the cluster is what a
# bare boot (WASMPOD_BARE=1) gives, without a second boot of the cluster and its VM node: the
# install suite then runs on the cluster the cluster suite used (e2e/tests/one-cluster.sh).
# Removes the test namespaces' leftovers first (their pods use the runtime about to go), then on
# every node the label and containerd's wasmpod runtime (containerd restarted, as the installer
# does), then the RuntimeClass and the WasmApp CRD.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"

[[ $WASMPOD_BARE == 1 ]] && { log "the cluster is bare already"; exit 0; }
$KUBECTL get --raw /readyz >/dev/null 2>&1 || die "cluster is not up"
t0=$(date +%s)

# The cluster suite deletes its namespaces without waiting: a pod of theirs still running under
# the wasmpod runtime would be left without it. Once a namespace is terminating nothing new starts
# in it, so its pods may go at once (a second's grace, through the kubelet: each pod's own grace
# of up to 30 s is for users' apps, not for test leftovers).
mapfile -t namespaces < <($KUBECTL get namespaces -o name | grep '^namespace/wasmpod-e2e-' || true)
if ((${#namespaces[@]})); then
  $KUBECTL delete "${namespaces[@]}" --wait=false >/dev/null 2>&1 || true
  for ns in "${namespaces[@]}"; do
    $KUBECTL -n "${ns#namespace/}" delete pods --all --grace-period=1 --wait=false >/dev/null 2>&1 || true
  done
  $KUBECTL wait --for=delete "${namespaces[@]}" --timeout=180s >/dev/null ||
    die "test namespaces still terminating after 180s: ${namespaces[*]}"
fi

$KUBECTL label nodes --all wasmpod.io/runtime- >/dev/null
echo 1 > "$STATE/wasmpod-bare"
rm -f "$CONTAINERD_CONFIG"
WASMPOD_BARE=1 "$CLUSTER_DIR/containerd-config.sh"
grep -q 'io.containerd.wasmpod.v1' "$CONTAINERD_CONFIG" && die "$CONTAINERD_CONFIG still has the wasmpod runtime"
"$CLUSTER_DIR/restart-containerd.sh"
if "$CLUSTER_DIR/node-v2.sh" status; then
  WASMPOD_BARE=1 "$CLUSTER_DIR/node-v2.sh" runtime absent
fi

$KUBECTL delete runtimeclass wasmpod --ignore-not-found >/dev/null
$KUBECTL delete crd wasmapps.wasmpod.io --ignore-not-found --timeout=60s >/dev/null
log "cluster made bare in $(( $(date +%s) - t0 ))s: no wasmpod runtime, label, RuntimeClass or CRD"
