#!/usr/bin/env bash
# The install path on a bare local cluster (WASMPOD_BARE=1: the node has no wasmpod runtime,
# RuntimeClass or label): `helm install` -> the installer labels the node -> a sample WasmApp
# answers a container pod -> `helm upgrade` rolls the operator out -> `helm uninstall` leaves
# nothing behind; then the same with `kubectl apply -f deploy/` and its documented uninstall.
# The tests run in this order and build on each other. with-cluster.sh boots the cluster and
# pushes the images first; run.sh alone expects both done.
# usage: run.sh [TEST_FUNCTION...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../cluster/env.sh"
source "$CLUSTER_DIR/lib.sh"
source "$here/../cluster/lib.sh"

ROOT=$(cd "$here/../../.." && pwd)
HELM="$("$E2E_DIR/build-deps.sh" --print-dir helm)/helm --kubeconfig=$ADMIN_KUBECONFIG"
SYS=wasmpod-system
APPS=wasmpod-install-e2e
# Where charts/wasmpod/ci/test-bed-values.yaml and the deploy/ overlay put the shim.
INSTALL_DIR=$STATE/wasmpod-bin
SHIM_LINK=$INSTALL_DIR/containerd-shim-wasmpod-v1
# The sample: hello-http as a CNCF Wasm artifact (no entrypoint: the operator supplies one),
# inspected by the operator through the registry's in-cluster name.
SAMPLE_IMAGE=registry.kube-system.svc:$REGISTRY_PORT/wasmpod-test/wasm-http:artifact
BUSYBOX_IMAGE=$REGISTRY/library/busybox:1.35
ANSWER="hello from wasmpod http"
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT

"$CLUSTER_DIR/helm-values.sh" > "$WORK/node-values.yaml"
HELM_INSTALL=(charts/wasmpod -n "$SYS" -f charts/wasmpod/ci/test-bed-values.yaml
              -f "$WORK/node-values.yaml" --wait --timeout 5m)

# --- helpers -------------------------------------------------------------------------------------

node_label() { $KUBECTL get node "$NODE_NAME" -o jsonpath='{.metadata.labels.wasmpod\.io/runtime}'; }

# node_is_clean: no label, no runtime entry, no shim binary, no RuntimeClass.
node_is_clean() {
  [[ -z $(node_label) ]] || fail "node still labelled wasmpod.io/runtime=$(node_label)"
  if grep -nE 'runtimes\.wasmpod|io\.containerd\.wasmpod' "$CONTAINERD_CONFIG"; then fail "containerd config still has a wasmpod entry"; fi
  if compgen -G "$INSTALL_DIR/containerd-shim-wasmpod-v1*" >/dev/null; then
    ls -la "$INSTALL_DIR"; fail "shim binaries left in $INSTALL_DIR"
  fi
  if $KUBECTL get runtimeclass wasmpod >/dev/null 2>&1; then fail "RuntimeClass wasmpod left"; fi
  # shellcheck disable=SC2086  # $CRICTL is a command line
  if $CRICTL info | grep -q '"wasmpod"'; then fail "containerd still serves the wasmpod runtime"; fi
}

# node_is_installed: label, runtime entry pointing at the installed shim, shim answering, CRI
# knowing the runtime, RuntimeClass scheduling onto the label.
node_is_installed() {
  [[ $(node_label) == ready ]] || fail "node label wasmpod.io/runtime='$(node_label)', want ready"
  grep -qF "runtime_path = \"$SHIM_LINK\"" "$CONTAINERD_CONFIG" ||
    { cat "$CONTAINERD_CONFIG"; fail "no runtime_path $SHIM_LINK in $CONTAINERD_CONFIG"; }
  "$SHIM_LINK" -v | grep -q containerd-shim-wasmpod-v1 || fail "$SHIM_LINK -v does not answer"
  # shellcheck disable=SC2086
  $CRICTL info | grep -q '"wasmpod"' || fail "containerd's CRI does not list the wasmpod runtime"
  [[ $($KUBECTL get runtimeclass wasmpod -o jsonpath='{.scheduling.nodeSelector.wasmpod\.io/runtime}') == ready ]] ||
    fail "RuntimeClass wasmpod missing or not scheduling on wasmpod.io/runtime=ready"
}

# deploy_sample: deploy/samples/hello-http.yaml (image pointed at the local registry) in $APPS,
# Ready within 3 minutes; prints its status.url.
deploy_sample() {
  $KUBECTL create namespace "$APPS" --dry-run=client -o yaml | $KUBECTL apply -f - >/dev/null
  sed "s|image: .*|image: $SAMPLE_IMAGE|" "$ROOT/deploy/samples/hello-http.yaml" |
    $KUBECTL -n "$APPS" apply -f - >/dev/null
  if ! wait_wasmapp_ready "$APPS" hello 180; then
    $KUBECTL -n "$APPS" get wapp hello -o yaml >&2
    $KUBECTL -n "$APPS" get pods -o wide >&2
    $KUBECTL -n "$SYS" logs deploy/wasmpod-operator --tail=30 >&2 || true
    fail "WasmApp hello not Ready"
  fi
  [[ $($KUBECTL -n "$APPS" get wapp hello -o jsonpath='{.status.conditions[?(@.type=="ImageValid")].status}') == True ]] ||
    fail "ImageValid is not True: the operator in its pod could not inspect $SAMPLE_IMAGE"
  $KUBECTL -n "$APPS" get wapp hello -o jsonpath='{.status.url}'
}

# answer_from_container_pod URL NAME: a busybox pod (runc) fetches URL; prints the body.
answer_from_container_pod() {
  local url=$1 name=$2
  $KUBECTL -n "$APPS" delete pod "$name" --ignore-not-found --wait >/dev/null
  $KUBECTL -n "$APPS" run "$name" --image="$BUSYBOX_IMAGE" --restart=Never --quiet -- \
    sh -c "for i in \$(seq 30); do timeout 5 wget -qO- $url && exit 0; sleep 1; done; exit 1" >/dev/null
  local phase=""
  for _ in $(seq 90); do
    phase=$($KUBECTL -n "$APPS" get pod "$name" -o jsonpath='{.status.phase}')
    [[ $phase == Succeeded || $phase == Failed ]] && break
    sleep 1
  done
  [[ $phase == Succeeded ]] || { $KUBECTL -n "$APPS" describe pod "$name" | tail -n 20 >&2; fail "pod $name: $phase"; }
  $KUBECTL -n "$APPS" logs "$name"
}

sample_answers() {
  local url body
  url=$(deploy_sample)
  [[ $url == http://hello.$APPS.svc.* ]] || fail "status.url '$url'"
  wait_service_serves "$APPS" hello / "$ANSWER" || fail "Service of WasmApp hello not serving from the node"
  body=$(answer_from_container_pod "$url" "${1:-caller}")
  echo "container pod -> $url: $body"
  [[ $body == "$ANSWER" ]] || fail "answer '$body', want '$ANSWER'"
}

# remove_sample: the documented order (installer/README.md): delete WasmApps before uninstalling.
remove_sample() {
  $KUBECTL delete namespace "$APPS" --ignore-not-found --timeout=120s >/dev/null ||
    fail "namespace $APPS (WasmApp, its pods) not deleted within 120s"
}

# --- tests ---------------------------------------------------------------------------------------

test_helm_install_sets_up_the_bare_node() {
  node_is_clean
  (cd "$ROOT" && $HELM install wasmpod "${HELM_INSTALL[@]}" --create-namespace) ||
    { $KUBECTL -n "$SYS" get pods -o wide; $KUBECTL -n "$SYS" logs ds/wasmpod-node-installer --tail=40; fail "helm install"; }
  # `helm install --wait` counts a DaemonSet ready once all but maxUnavailable (1) pods are: on
  # a one-node cluster that is none, so it can return before the installer labelled the node.
  $KUBECTL -n "$SYS" rollout status ds/wasmpod-node-installer --timeout=180s >/dev/null ||
    { $KUBECTL -n "$SYS" logs ds/wasmpod-node-installer --tail=40; fail "installer DaemonSet not ready"; }
  node_is_installed
  $KUBECTL -n "$SYS" logs ds/wasmpod-node-installer | grep -q "restarting containerd" ||
    fail "the installer log does not show the containerd restart"
}

test_helm_sample_wasmapp_answers_a_container_pod() {
  sample_answers caller
  (cd "$ROOT" && $HELM test wasmpod -n "$SYS" --timeout 5m) || fail "helm test"
}

test_helm_upgrade_rolls_the_operator_out() {
  local old new
  old=$($KUBECTL -n "$SYS" get pods -l app.kubernetes.io/component=operator -o jsonpath='{.items[*].metadata.name}')
  [[ -n $old ]] || fail "no operator pod before the upgrade"
  (cd "$ROOT" && $HELM upgrade wasmpod "${HELM_INSTALL[@]}" --set operator.logLevel=debug) || fail "helm upgrade"
  $KUBECTL -n "$SYS" rollout status deploy/wasmpod-operator --timeout=120s >/dev/null
  [[ $($KUBECTL -n "$SYS" get deploy wasmpod-operator -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="RUST_LOG")].value}') == debug ]] ||
    fail "the upgraded Deployment does not carry RUST_LOG=debug"
  for _ in $(seq 60); do
    new=$($KUBECTL -n "$SYS" get pods -l app.kubernetes.io/component=operator -o jsonpath='{.items[*].metadata.name}')
    [[ $new != *"$old"* ]] && break
    sleep 1
  done
  [[ -n $new && $new != *"$old"* ]] || fail "operator pod $old not replaced (now: $new)"
  echo "operator pod $old -> $new"
  # The new operator works: it scales the app, which keeps answering.
  $KUBECTL -n "$APPS" scale wapp/hello --replicas=2 >/dev/null
  for _ in $(seq 120); do
    [[ $($KUBECTL -n "$APPS" get wapp hello -o jsonpath='{.status.readyReplicas}') == 2 ]] && break
    sleep 1
  done
  [[ $($KUBECTL -n "$APPS" get wapp hello -o jsonpath='{.status.readyReplicas}') == 2 ]] ||
    fail "WasmApp hello not at 2 ready replicas after the upgrade"
  sample_answers after-upgrade
}

test_helm_uninstall_leaves_nothing_behind() {
  remove_sample
  (cd "$ROOT" && $HELM uninstall wasmpod -n "$SYS" --wait --timeout 5m) || fail "helm uninstall"
  node_is_clean
  # The release's pods go through the garbage collector, after `helm uninstall --wait` returns.
  for _ in $(seq 90); do
    [[ -z $($KUBECTL -n "$SYS" get all,jobs -o name 2>/dev/null) ]] && break
    sleep 1
  done
  [[ -z $($KUBECTL -n "$SYS" get all,jobs -o name 2>/dev/null) ]] ||
    { $KUBECTL -n "$SYS" get all,jobs; fail "objects left in $SYS 90s after helm uninstall"; }
  # crds.keep (the default) keeps the CRD; nothing may hold it or the namespaces with finalizers.
  $KUBECTL get crd wasmapps.wasmpod.io >/dev/null || fail "crds.keep=true, but the CRD is gone"
  $KUBECTL delete crd wasmapps.wasmpod.io --timeout=60s >/dev/null || fail "CRD deletion stuck"
  $KUBECTL delete namespace "$SYS" --timeout=60s >/dev/null || fail "namespace $SYS deletion stuck"
}

# deploy/wasmpod.yaml with the test bed's node settings (deploy-overlay/, kubectl's kustomize).
deploy_manifests() {
  mkdir -p "$WORK/overlay"
  cp "$here"/deploy-overlay/*.yaml "$ROOT/deploy/wasmpod.yaml" "$WORK/overlay/"
  sed -i -e "s|@ROOT@|$ROOT|" -e "s|@CONTAINERD@|$CONTAINERD_BIN/containerd|" "$WORK/overlay/installer-test-bed.yaml"
  $KUBECTL kustomize "$WORK/overlay" > "$WORK/wasmpod.yaml"
  # Nothing but the node settings may differ from deploy/.
  [[ $(grep -c '^kind:' "$WORK/wasmpod.yaml") == "$(grep -c '^kind:' "$ROOT/deploy/wasmpod.yaml")" ]] ||
    fail "the overlay changed the set of objects"
}

test_kubectl_apply_deploy_installs_and_serves() {
  node_is_clean
  deploy_manifests
  $KUBECTL apply -f "$WORK/wasmpod.yaml" >/dev/null
  $KUBECTL -n "$SYS" rollout status ds/wasmpod-node-installer --timeout=180s >/dev/null ||
    { $KUBECTL -n "$SYS" logs ds/wasmpod-node-installer --tail=40; fail "installer DaemonSet not ready"; }
  $KUBECTL -n "$SYS" rollout status deploy/wasmpod-operator --timeout=180s >/dev/null ||
    { $KUBECTL -n "$SYS" logs deploy/wasmpod-operator --tail=40; fail "operator not ready"; }
  node_is_installed
  sample_answers deploy-caller
}

test_kubectl_delete_deploy_leaves_nothing_behind() {
  deploy_manifests
  remove_sample
  # The uninstall steps of deploy/wasmpod.yaml's header.
  $KUBECTL -n "$SYS" annotate ds/wasmpod-node-installer wasmpod.io/uninstall=true >/dev/null
  for _ in $(seq 120); do
    $KUBECTL get nodes -l wasmpod.io/runtime -o name | grep -q . || break
    sleep 1
  done
  [[ -z $(node_label) ]] || fail "the node kept its label 120s after the uninstall annotation"
  $KUBECTL delete -f "$WORK/wasmpod.yaml" --wait --timeout=120s >/dev/null || fail "kubectl delete -f stuck"
  node_is_clean
}

tests=("$@")
((${#tests[@]})) || tests=(
  test_helm_install_sets_up_the_bare_node
  test_helm_sample_wasmapp_answers_a_container_pod
  test_helm_upgrade_rolls_the_operator_out
  test_helm_uninstall_leaves_nothing_behind
  test_kubectl_apply_deploy_installs_and_serves
  test_kubectl_delete_deploy_leaves_nothing_behind
)
[[ $WASMPOD_BARE == 1 ]] || { echo "the install tests need a bare cluster (WASMPOD_BARE=1)" >&2; exit 2; }
for t in "${tests[@]}"; do run_test "$t"; done
summary
