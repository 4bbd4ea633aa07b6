# Fault tests on the local cluster (sourced by run.sh, after scale-to-zero.sh, whose Service
# helpers they use, and the stream of lib.sh). Each breaks one part under load and asserts that nothing was lost:
# - kill -9 of one pod's shim: that pod's containers restart and its Service serves again; a
#   bystander pod keeps serving throughout, never restarted;
# - containerd restarted under 20 running Wasm pods: every request through their Service
#   answered throughout, no pod restarted;
# - kube-apiserver restarted: the operator (same process) backs off and then reconciles a
#   WasmApp created after the restart. (Found by this test: kube-runtime backed off all watches
#   as one stream, so after the restart each watch's "too old resource version" doubled one
#   shared delay up to 30 s and nothing was reconciled for minutes; operator/src/watch_backoff.rs);
# - the operator killed while it leads, with 100 WasmApps: the standby takes the Lease over, and
#   every WasmApp has exactly one Deployment and one Service, its status caught up.
# shellcheck shell=bash

# wasm_app NAME REPLICAS: a plain WasmApp serving hello-http.
wasm_app() {
  apply <<EOF
apiVersion: wasmpod.io/v1alpha1
kind: WasmApp
metadata: {name: $1}
spec:
  image: $(node_image "$WASM_HTTP_IMAGE")
  replicas: $2
EOF
}

# restarts_of APP: "uid:restarts" of each of the app's pods, sorted.
restarts_of() {
  $K get pods -l "wasmpod.io/app=$1" -o json |
    jq -r '.items[] | "\(.metadata.uid):\([.status.containerStatuses[]?.restartCount] | add // 0)"' | sort
}

# shim_pid_of POD: the shim process serving POD's sandbox.
shim_pid_of() {
  local sandbox
  sandbox=$($CRICTL pods --namespace "$NS" --name "$1" -q | head -n 1)
  [[ -n $sandbox ]] || fail "no sandbox for pod $1"
  pgrep -f "containerd-shim-wasmpod-v1.* -id $sandbox" | head -n 1
}

test_fault_shim_killed_under_load() {
  [[ -x $WASMPOD_SHIM && -n $WASM_HTTP_IMAGE ]] || skip "shim or Wasm images not built"
  start_operator --insecure-registry "$NODE_REGISTRY"
  wasm_app victim 1
  wasm_app bystander 1
  wait_for 60 "Services" $K get service victim bystander || fail "no Services"
  wait_service_serves "$NS" victim /v "hello from wasmpod http" 180 || fail "victim never served"
  wait_service_serves "$NS" bystander /b "hello from wasmpod http" 180 || fail "bystander never served"
  local pod pid before_bystander
  pod=$($K get pods -l wasmpod.io/app=victim -o jsonpath='{.items[0].metadata.name}')
  pid=$(shim_pid_of "$pod")
  [[ -n $pid ]] || fail "no shim process for $pod"
  before_bystander=$(restarts_of bystander)

  # The bystander is under a stream the whole time; the victim's shim dies mid-load.
  stream_start "http://$(svc_ip bystander)/during"
  curl -s -o /dev/null --max-time 5 "http://$(svc_ip victim)/before" || fail "victim did not answer before the kill"
  kill -9 "$pid"
  echo "killed the shim of $pod (pid $pid)"
  # The pod's containers come back (restart count up, or the sandbox recreated), and the Service
  # answers from it again.
  local deadline=$(( $(date +%s) + 120 ))
  until [[ $($K get pod "$pod" -o jsonpath='{.status.containerStatuses[0].restartCount}') -ge 1 ]]; do
    (( $(date +%s) < deadline )) || { stream_stop; $K describe pod "$pod" | tail -n 20; fail "the victim's container never restarted"; }
    sleep 0.2
  done
  wait_service_serves "$NS" victim /after "hello from wasmpod http" 120 || { stream_stop; fail "victim's Service never served again"; }
  echo "$pod restarted $($K get pod "$pod" -o jsonpath='{.status.containerStatuses[0].restartCount}') time(s) and serves again"
  stream_stop
  [[ $(restarts_of bystander) == "$before_bystander" ]] ||
    fail "the bystander changed: '$before_bystander' -> '$(restarts_of bystander)'"
  echo "the bystander served throughout, same pod, no restart"
}

test_fault_containerd_restart_keeps_20_pods_serving() {
  [[ -x $WASMPOD_SHIM && -n $WASM_HTTP_IMAGE ]] || skip "shim or Wasm images not built"
  start_operator --insecure-registry "$NODE_REGISTRY"
  wasm_app fleet 20
  wait_for 60 "Service fleet" $K get service fleet || fail "no Service fleet"
  local deadline=$(( $(date +%s) + 300 ))
  until [[ $($K get deploy fleet -o jsonpath='{.status.readyReplicas}') == 20 ]]; do
    (( $(date +%s) < deadline )) || fail "fleet never had 20 ready pods ($($K get deploy fleet -o jsonpath='{.status.readyReplicas}'))"
    sleep 0.5
  done
  twenty_endpoints() { [[ $(ready_targets fleet | wc -l) == 20 ]]; }
  wait_for 60 "20 fleet endpoints" twenty_endpoints ||
    fail "the Service has $(ready_targets fleet | wc -l) endpoints, not 20"
  local before ips ip
  before=$(restarts_of fleet)
  stream_start "http://$(svc_ip fleet)/during"
  "$CLUSTER_DIR/restart-containerd.sh" >/dev/null 2>&1 || { stream_stop; fail "restart-containerd.sh failed"; }
  wait_for 60 "containerd answering" $CRICTL version || { stream_stop; fail "containerd did not come back"; }
  # Every pod, asked directly, answers after the restart too.
  ips=$($K get pods -l wasmpod.io/app=fleet -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}')
  for ip in $ips; do
    curl -sf -o /dev/null --max-time 5 "http://$ip:8080/after" || { stream_stop; fail "pod $ip does not answer after the restart"; }
  done
  stream_stop
  [[ $(restarts_of fleet) == "$before" ]] || fail "pods restarted or were replaced across the containerd restart"
  echo "20 pods served throughout the containerd restart, none restarted"
  $K delete wapp fleet --wait=false >/dev/null
}

test_fault_apiserver_restart_operator_resumes() {
  [[ -x $WASMPOD_SHIM && -n $WASM_HTTP_IMAGE ]] || skip "shim or Wasm images not built"
  start_operator --insecure-registry "$NODE_REGISTRY"
  wasm_app before-restart 1
  wait_for 120 "before-restart Ready" bash -c "[[ \$($K get wapp before-restart -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}') == True ]]" ||
    fail "before-restart never Ready"
  stop_daemon kube-apiserver "$PIDS" 3
  ! $KUBECTL get --raw /readyz >/dev/null 2>&1 || fail "the apiserver still answers after it was stopped"
  "$CLUSTER_DIR/control-plane.sh" start >/dev/null 2>&1 || fail "the control plane did not come back"
  kill -0 "$OPERATOR_PID" 2>/dev/null || fail "the operator exited while the apiserver was away"
  wasm_app after-restart 1
  wait_for 180 "after-restart Ready" bash -c "[[ \$($K get wapp after-restart -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}') == True ]]" ||
    { tail -n 20 "$LOGS/operator-test.log"; fail "a WasmApp created after the apiserver restart was not reconciled"; }
  kill -0 "$OPERATOR_PID" 2>/dev/null || fail "the operator exited"
  echo "the operator (pid $OPERATOR_PID, never restarted) reconciled a WasmApp created after the apiserver restart"
}

test_fault_operator_failover_with_100_apps() {
  local op=$WASMPOD_OPERATOR
  [[ -x $op ]] || skip "operator $op not built (make build)"
  install_crd
  # Two replicas electing a leader through a Lease in the test namespace, short terms.
  local i leader holder
  start_replica() {
    "$op" --kubeconfig "$ADMIN_KUBECONFIG" --http-addr 127.0.0.1:0 --leader-elect true \
      --lease-namespace "$NS" --identity "$1" --lease-duration 6 --lease-grace 2 \
      --insecure-registry "$NODE_REGISTRY" --watch-namespace "$NS" >> "$LOGS/operator-test.log" 2>&1 &
  }
  start_replica op-a; OP_A=$!
  start_replica op-b; OP_B=$!
  trap 'kill $OP_A $OP_B 2>/dev/null || true' EXIT
  apps() { # apps FROM TO ENV_VALUE: WasmApps app-FROM..app-TO at 0 replicas
    for i in $(seq "$1" "$2"); do
      printf 'apiVersion: wasmpod.io/v1alpha1\nkind: WasmApp\nmetadata: {name: app-%03d}\nspec:\n  image: %s\n  replicas: 0\n  env: [{name: ROUND, value: "%s"}]\n---\n' \
        "$i" "$(node_image "$WASM_HTTP_IMAGE")" "$3"
    done | apply
  }
  observed() { # observed: WasmApps app-* whose status saw their latest spec
    $K get wapp -o json | jq '[.items[] | select(.metadata.name | startswith("app-"))
      | select(.status.observedGeneration == .metadata.generation)] | length'
  }
  # The first 50 under the first leader.
  apps 1 50 one
  wait_for 60 "a leader" bash -c "$K get lease wasmpod-operator -o jsonpath='{.spec.holderIdentity}' | grep -q ." ||
    fail "no operator took the Lease"
  leader=$($K get lease wasmpod-operator -o jsonpath='{.spec.holderIdentity}')
  fifty_done() { [[ $(observed) == 50 ]]; }
  wait_for 120 "50 WasmApps reconciled by $leader" fifty_done || fail "the leader $leader reconciled $(observed) of 50"
  # The leader dies without a word; meanwhile the first 50 change and 50 more arrive: only the
  # standby, once it holds the Lease, can bring them about.
  if [[ $leader == op-a ]]; then kill -9 "$OP_A"; else kill -9 "$OP_B"; fi
  apps 1 100 two
  echo "killed the leader $leader; 50 WasmApps changed and 50 new"
  new_leader() { holder=$($K get lease wasmpod-operator -o jsonpath='{.spec.holderIdentity}'); [[ -n $holder && $holder != "$leader" ]]; }
  wait_for 60 "a new leader" new_leader || fail "the Lease stayed with the killed $leader"
  echo "new leader: $holder"
  local deadline=$(( $(date +%s) + 180 )) n
  until n=$(observed); ((n == 100)); do
    (( $(date +%s) < deadline )) || fail "status caught up for $n of 100 WasmApps"
    sleep 1
  done
  # Exactly one Deployment and one Service per WasmApp, each owned by it, each with the change.
  local deploys services want changed
  want=$(seq -f 'app-%03g' 1 100)
  deploys=$($K get deploy -o json | jq -r '.items[] | select(.metadata.ownerReferences[]?.kind == "WasmApp") | .metadata.name | select(startswith("app-"))' | sort)
  services=$($K get service -o json | jq -r '.items[] | select(.metadata.ownerReferences[]?.kind == "WasmApp") | .metadata.name | select(startswith("app-"))' | sort)
  [[ $deploys == "$want" ]] || fail "Deployments are not one per WasmApp: $(comm -3 <(echo "$want") <(echo "$deploys") | head)"
  [[ $services == "$want" ]] || fail "Services are not one per WasmApp: $(comm -3 <(echo "$want") <(echo "$services") | head)"
  changed=$($K get deploy -o json | jq '[.items[] | select(.metadata.name | startswith("app-"))
    | select(any(.spec.template.spec.containers[0].env[]?; .name == "ROUND" and .value == "two"))] | length')
  [[ $changed == 100 ]] || fail "$changed of 100 Deployments carry the change made after the failover"
  echo "after the failover: 100 WasmApps, 100 Deployments, 100 Services, all with the change, every status observed"
}
