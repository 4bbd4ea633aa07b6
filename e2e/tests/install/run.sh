#!/usr/bin/env bash
# The install path on a bare local cluster (WASMPOD_BARE=1: the node has no wasmpod runtime,
# RuntimeClass or label): `helm install` -> the installer labels the node -> a sample WasmApp
# answers a container pod -> `helm upgrade` rolls the operator out -> the installer reruns and is
# upgraded to another shim binary while the sample serves -> `helm uninstall` leaves
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
# A Wasm image a plain Pod runs (its entrypoint is in the image config).
WASM_POD_IMAGE=$REGISTRY/wasmpod-test/wasm-http:rootfs
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
  if grep -q '"wasmpod"' <<< "$($CRICTL info)"; then fail "containerd still serves the wasmpod runtime"; fi
}

# node_is_installed: label, runtime entry pointing at the installed shim, shim answering, CRI
# knowing the runtime, RuntimeClass scheduling onto the label.
node_is_installed() {
  [[ $(node_label) == ready ]] || fail "node label wasmpod.io/runtime='$(node_label)', want ready"
  grep -qF "runtime_path = \"$SHIM_LINK\"" "$CONTAINERD_CONFIG" ||
    { cat "$CONTAINERD_CONFIG"; fail "no runtime_path $SHIM_LINK in $CONTAINERD_CONFIG"; }
  "$SHIM_LINK" -v | grep -q containerd-shim-wasmpod-v1 || fail "$SHIM_LINK -v does not answer"
  # shellcheck disable=SC2086
  grep -q '"wasmpod"' <<< "$($CRICTL info)" || fail "containerd's CRI does not list the wasmpod runtime"
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

# --- the cgroup v2 VM node, when the cluster has it (WASMPOD_V2_NODE=1) ----------------------------

v2_label() { $KUBECTL get node "$VM_NODE" -o jsonpath='{.metadata.labels.wasmpod\.io/runtime}'; }

# wasm_pod_on NAME NODE: a plain Wasm Pod (RuntimeClass wasmpod) that may only run on NODE.
wasm_pod_on() {
  $KUBECTL -n "$APPS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  runtimeClassName: wasmpod
  nodeSelector: {kubernetes.io/hostname: $2}
  tolerations: [{key: wasmpod.io/test-node, operator: Exists}]
  containers:
  - name: app
    image: $WASM_POD_IMAGE
    ports: [{containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
EOF
}

# unschedulable POD: the scheduler refuses POD for the node selector (the RuntimeClass adds
# wasmpod.io/runtime=ready to it) and it is bound to no node.
unschedulable() {
  local msg=""
  for _ in $(seq 60); do
    msg=$($KUBECTL -n "$APPS" get events --field-selector "involvedObject.name=$1,reason=FailedScheduling" -o jsonpath='{.items[*].message}')
    [[ -n $msg ]] && break
    sleep 1
  done
  echo "scheduler on $1: $msg"
  grep -q "node affinity/selector" <<< "$msg" || fail "no FailedScheduling naming the node selector for $1: '$msg'"
  [[ -z $($KUBECTL -n "$APPS" get pod "$1" -o jsonpath='{.spec.nodeName}') ]] || fail "$1 was bound to a node"
}

# serves POD [SECONDS]: POD is Ready and answers on its pod IP from the host.
serves() {
  $KUBECTL -n "$APPS" wait --for=condition=Ready "pod/$1" --timeout="${2:-300}s" >/dev/null ||
    { $KUBECTL -n "$APPS" describe pod "$1" | tail -n 30; fail "pod $1 not Ready"; }
  local ip; ip=$($KUBECTL -n "$APPS" get pod "$1" -o jsonpath='{.status.podIP}')
  curl -sf --max-time 10 "http://$ip:8080/" | grep -qx "$ANSWER" || fail "pod $1 ($ip) does not answer '$ANSWER'"
}

# (VM) Before any install, a Wasm pod that may only run on the bare v2 node stays Pending with the
# scheduler saying why: it is never started there.
test_runtimeclass_keeps_wasm_pods_off_the_bare_v2_node() {
  v2_node_ready || skip "no cgroup v2 node (WASMPOD_V2_NODE=1)"
  [[ -z $(v2_label) ]] || fail "$VM_NODE is labelled wasmpod.io/runtime=$(v2_label) before any install"
  ! $KUBECTL get runtimeclass wasmpod >/dev/null 2>&1 || fail "RuntimeClass wasmpod exists before the install"
  # The RuntimeClass as the chart makes it (the chart's install takes it over afterwards).
  $KUBECTL create namespace "$APPS" --dry-run=client -o yaml | $KUBECTL apply -f - >/dev/null
  (cd "$ROOT" && $HELM template wasmpod charts/wasmpod -n "$SYS" --show-only templates/runtimeclass.yaml) |
    $KUBECTL apply -f - >/dev/null
  wasm_pod_on wasm-on-v2 "$VM_NODE"
  unschedulable wasm-on-v2
  $KUBECTL delete runtimeclass wasmpod >/dev/null
}

# (VM) After `helm install`, the installer has run on both nodes: the pod that waited for the v2
# node is scheduled there and serves, and a Wasm pod on the host node serves too.
test_wasm_pods_land_on_both_nodes_after_the_install() {
  v2_node_ready || skip "no cgroup v2 node (WASMPOD_V2_NODE=1)"
  [[ $(v2_label) == ready ]] || fail "$VM_NODE label wasmpod.io/runtime='$(v2_label)', want ready"
  wasm_pod_on wasm-on-host "$NODE_NAME"
  serves wasm-on-v2 300
  serves wasm-on-host
  echo "wasm-on-v2 on $($KUBECTL -n "$APPS" get pod wasm-on-v2 -o jsonpath='{.spec.nodeName}'), wasm-on-host on $NODE_NAME: both answer"
}

# (VM) `kubectl annotate node wasmpod-v2 wasmpod.io/uninstall=true` takes the runtime off that node
# only: its label and containerd's runtime go, a new Wasm pod for it stays Pending, and the host
# node keeps serving (the sample's Service, a new Wasm pod there).
test_uninstall_on_one_node_leaves_the_other_serving() {
  v2_node_ready || skip "no cgroup v2 node (WASMPOD_V2_NODE=1)"
  $KUBECTL -n "$APPS" delete pod wasm-on-v2 --wait >/dev/null
  # The upgrade before may still be rolling the installer pods: ask the one that stays.
  $KUBECTL -n "$SYS" rollout status ds/wasmpod-node-installer --timeout=300s >/dev/null ||
    fail "installer DaemonSet not rolled out before the node's uninstall"
  local pod
  pod=$($KUBECTL -n "$SYS" get pods -l app.kubernetes.io/component=node-installer --field-selector "spec.nodeName=$VM_NODE" -o name)
  [[ $pod == pod/* && $pod != *$'\n'* ]] || fail "not one installer pod on $VM_NODE: '$pod'"
  $KUBECTL annotate node "$VM_NODE" wasmpod.io/uninstall=true --overwrite >/dev/null
  for _ in $(seq 180); do [[ -z $(v2_label) ]] && break; sleep 1; done
  [[ -z $(v2_label) ]] || { $KUBECTL -n "$SYS" logs ds/wasmpod-node-installer --tail=20; fail "$VM_NODE kept label '$(v2_label)'"; }
  # (The kubelet reports containerd's runtime handlers only as it found them at its start, so the
  # node's installer says what it did.)
  [[ $($KUBECTL -n "$SYS" get "$pod" -o jsonpath='{.status.containerStatuses[0].restartCount}') == 0 ]] ||
    fail "$pod restarted: $($KUBECTL -n "$SYS" get "$pod" -o jsonpath='{.status.containerStatuses[0].lastState}')"
  # Right after the node's containerd restart the kubelet may not serve logs yet: wait for them.
  local logs=""
  for _ in $(seq 60); do
    logs=$($KUBECTL -n "$SYS" logs "$pod" 2>&1) && grep -q "runtime removed from the node" <<< "$logs" && break
    sleep 1
  done
  grep -q "uninstall requested through the node's annotation" <<< "$logs" ||
    { tail -n 20 <<< "$logs"; fail "$pod does not log the node's uninstall request"; }
  grep -q "runtime removed from the node" <<< "$logs" || { tail -n 20 <<< "$logs"; fail "$pod does not log the runtime's removal"; }
  node_is_installed
  wasm_pod_on wasm-on-v2-again "$VM_NODE"
  unschedulable wasm-on-v2-again
  $KUBECTL -n "$APPS" delete pod wasm-on-host --wait >/dev/null
  wasm_pod_on wasm-on-host "$NODE_NAME"
  serves wasm-on-host
  wait_service_serves "$APPS" hello / "$ANSWER" || fail "Service of WasmApp hello not serving after $VM_NODE's uninstall"
  # The node's installer pod is done, not failing: the DaemonSet stays fully rolled out.
  $KUBECTL -n "$SYS" rollout status ds/wasmpod-node-installer --timeout=60s >/dev/null ||
    fail "installer DaemonSet not ready after the node's uninstall"
  $KUBECTL -n "$APPS" delete pod wasm-on-v2-again wasm-on-host --wait >/dev/null
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
  # (Read whole, then searched: grep -q leaving a pipe early kills kubectl with SIGPIPE, and
  # pipefail made that a failure.)
  grep -q "restarting containerd" <<< "$($KUBECTL -n "$SYS" logs ds/wasmpod-node-installer)" ||
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

# hello_pods: uid and restart count of each of the sample's pods.
hello_pods() {
  $KUBECTL -n "$APPS" get pods -l wasmpod.io/app=hello \
    -o jsonpath='{range .items[*]}{.metadata.uid}:{.status.containerStatuses[0].restartCount}{"\n"}{end}' | sort
}

# runners_of FILE: processes on this machine whose executable is FILE (a shim runs the versioned
# file the symlink pointed at when it started); "FILE (deleted)" counts separately.
runners_of() {
  local p n=0
  for p in /proc/[0-9]*; do [[ $(readlink "$p/exe" 2>/dev/null) == "$1" ]] && n=$((n + 1)); done
  echo "$n"
}

# push_next_installer TAG: the installer image of a next release: the same installer and a shim
# binary with other bytes (trailing ones: what it does is the same, its digest is not, as for a
# rebuilt shim), pushed as wasmpod-node-installer:TAG.
push_next_installer() {
  local ctx=$WORK/installer-next
  rm -rf "$ctx"; cp -a "$CARGO_TARGET_DIR/images/wasmpod-node-installer" "$ctx"
  printf '\n# wasmpod upgrade test: %s\n' "$1" >> "$ctx/containerd-shim-wasmpod-v1"
  buildah build --quiet --isolation chroot -f "$ROOT/images/wasmpod-node-installer.Dockerfile" \
    -t "wasmpod-node-installer:$1" "$ctx" >/dev/null || fail "buildah build of the next installer"
  buildah push --quiet --tls-verify=false "wasmpod-node-installer:$1" \
    "docker://$REGISTRY/wasmpod-node-installer:$1" >/dev/null || fail "push of the next installer"
}

# installer_pods: name and Ready status of each node installer pod, one per line.
installer_pods() {
  $KUBECTL -n "$SYS" get pods -l app.kubernetes.io/component=node-installer \
    -o jsonpath='{range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}'
}

# installers_replaced OLD_PODS: none of OLD_PODS (names, one per line) is left, and as many
# installer pods as the DaemonSet wants are Ready. (`rollout status` alone can answer from a
# status that does not yet count pods deleted by hand; a pod that is still terminating would have
# its logs read in place of its successor's.)
installers_replaced() {
  local want pods name ready n=0
  want=$($KUBECTL -n "$SYS" get ds wasmpod-node-installer -o jsonpath='{.status.desiredNumberScheduled}')
  pods=$(installer_pods)
  while read -r name ready; do
    [[ -n $name ]] || continue
    grep -qx "$name" <<< "$1" && return 1
    [[ $ready == True ]] && n=$((n + 1))
  done <<< "$pods"
  ((want > 0 && n == want))
}

# installer_restarted_containerd: whether the installer pod on the host node restarted containerd.
installer_restarted_containerd() {
  local pod
  pod=$($KUBECTL -n "$SYS" get pods -l app.kubernetes.io/component=node-installer \
    --field-selector "spec.nodeName=$NODE_NAME" -o name)
  grep -q "restarting containerd" <<< "$($KUBECTL -n "$SYS" logs "$pod")"
}

# While the sample's Wasm pods serve a stream through their Service, the node installer runs
# again (its pods deleted) and is upgraded to one with another shim binary (`helm upgrade`): no
# request fails, no Wasm pod restarts or is replaced, containerd is not restarted (its config
# names the symlink, which did not change), the symlink moves to the new binary, no running shim
# loses its file, and a new Wasm pod runs the new binary.
test_installer_rerun_and_upgrade_keep_wasm_pods_serving() {
  local tag next before old new ip url old_pods
  tag=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1); next=$tag-upgrade-$(date +%s)
  wait_service_serves "$APPS" hello / "$ANSWER" || fail "Service hello not serving before the rerun"
  before=$(hello_pods)
  old=$(readlink -f "$SHIM_LINK")
  ip=$($KUBECTL -n "$APPS" get service hello -o jsonpath='{.spec.clusterIP}')
  url="http://$ip:$($KUBECTL -n "$APPS" get service hello -o jsonpath='{.spec.ports[0].port}')/during"
  stream_start "$url"

  old_pods=$(installer_pods | cut -d' ' -f1)
  $KUBECTL -n "$SYS" delete pods -l app.kubernetes.io/component=node-installer --wait=false >/dev/null
  wait_for 300 "installer pods replaced and Ready" installers_replaced "$old_pods" ||
    { stream_stop; fail "installer pods not replaced and Ready after they were deleted: $(installer_pods | tr '\n' ' ')"; }
  ! installer_restarted_containerd || { stream_stop; fail "the rerun restarted containerd, though nothing changed"; }
  [[ $(readlink -f "$SHIM_LINK") == "$old" ]] || { stream_stop; fail "the rerun changed the shim link"; }
  echo "rerun: nothing changed, containerd not restarted"

  push_next_installer "$next"
  old_pods=$(installer_pods | cut -d' ' -f1)
  (cd "$ROOT" && $HELM upgrade wasmpod "${HELM_INSTALL[@]}" --set operator.logLevel=debug \
    --set installer.image.tag="$next") >/dev/null || { stream_stop; fail "helm upgrade to installer $next"; }
  $KUBECTL -n "$SYS" rollout status ds/wasmpod-node-installer --timeout=300s >/dev/null &&
    wait_for 300 "installer pods of $next Ready" installers_replaced "$old_pods" ||
    { stream_stop; fail "installer DaemonSet not rolled out to $next: $(installer_pods | tr '\n' ' ')"; }
  new=$(readlink -f "$SHIM_LINK")
  [[ $new != "$old" ]] || { stream_stop; fail "the upgrade left the shim link at $old"; }
  ! installer_restarted_containerd || { stream_stop; fail "the upgrade restarted containerd"; }
  stream_stop
  [[ $(hello_pods) == "$before" ]] ||
    fail "the sample's pods restarted or were replaced: before '$before', after '$(hello_pods)'"
  [[ $(runners_of "$old (deleted)") == 0 ]] || fail "a running shim lost its binary $old"
  echo "upgrade: link $old -> $new, $(runners_of "$old") process(es) still on the old binary, which is kept"

  wasm_pod_on wasm-after-upgrade "$NODE_NAME"
  serves wasm-after-upgrade
  (( $(runners_of "$new") > 0 )) || fail "no process runs the new shim $new after a Wasm pod started"
  $KUBECTL -n "$APPS" delete pod wasm-after-upgrade --wait >/dev/null
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
# The cgroup v2 VM node's tests, in their place in the order, when the cluster has it.
v2() { [[ ${WASMPOD_V2_NODE:-0} == 1 ]] && printf '%s\n' "$@"; return 0; }
# shellcheck disable=SC2207  # test names have no spaces
((${#tests[@]})) || tests=(
  $(v2 test_runtimeclass_keeps_wasm_pods_off_the_bare_v2_node)
  test_helm_install_sets_up_the_bare_node
  $(v2 test_wasm_pods_land_on_both_nodes_after_the_install)
  test_helm_sample_wasmapp_answers_a_container_pod
  test_helm_upgrade_rolls_the_operator_out
  test_installer_rerun_and_upgrade_keep_wasm_pods_serving
  $(v2 test_uninstall_on_one_node_leaves_the_other_serving)
  test_helm_uninstall_leaves_nothing_behind
  test_kubectl_apply_deploy_installs_and_serves
  test_kubectl_delete_deploy_leaves_nothing_behind
)
[[ $WASMPOD_BARE == 1 ]] || { echo "the install tests need a bare cluster (WASMPOD_BARE=1)" >&2; exit 2; }
for t in "${tests[@]}"; do run_test "$t"; done
summary
