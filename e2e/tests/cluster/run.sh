#!/usr/bin/env bash
# `make cluster-test`: tests against the running local cluster (`make cluster-up` first).
# usage: run.sh [TEST_FUNCTION...]   (default: all tests below)
# Every image comes from the local registry and is built on this machine (e2e/cluster/images);
# all traffic is host -> pod/ClusterIP through cni0 or pod -> pod: nothing leaves this machine.
# Each test uses the namespace $NS, deleted at the end (KEEP_NS=1 keeps it for debugging).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../cluster/env.sh"
source "$CLUSTER_DIR/lib.sh"
source "$here/lib.sh"
source "$here/capabilities.sh"
source "$here/scale-to-zero.sh"
source "$here/faults.sh"

HELLO_IMAGE=$REGISTRY/wasmpod-test/hello-http:v1
BUSYBOX_IMAGE=$REGISTRY/library/busybox:1.35
# The Wasm tests use images built from e2e/components and pushed by e2e/cluster/wasm-images.sh
# (a wasi:http server answering "hello from wasmpod http" as rootfs image, CNCF artifact and
# layer image, and http-get, a command that fetches $TARGET_URL). Built when the shim exists.
if [[ -x $WASMPOD_SHIM && -z ${WASM_HTTP_IMAGE:-} ]]; then
  eval "$("$CLUSTER_DIR/wasm-images.sh")"
fi
WASM_HTTP_IMAGE=${WASM_HTTP_IMAGE:-}
WASM_CLIENT_IMAGE=${WASM_CLIENT_IMAGE:-}
WASM_ARTIFACT_IMAGE=${WASM_ARTIFACT_IMAGE:-}
WASM_LAYER_IMAGE=${WASM_LAYER_IMAGE:-}
WASM_HOG_IMAGE=${WASM_HOG_IMAGE:-}
WASM_KV_IMAGE=${WASM_KV_IMAGE:-}
WASM_KV_PY_IMAGE=${WASM_KV_PY_IMAGE:-}
REDIS_IMAGE=$REGISTRY/wasmpod-test/redis:7
NS=${NS:-wasmpod-e2e-$(date +%s)-$RANDOM}
K="$KUBECTL -n $NS"

# --- helpers -------------------------------------------------------------------------------------

apply() { $K apply -f - >/dev/null; }

# wait_ready POD [SECONDS]: Ready, or dump why not and fail.
wait_ready() {
  $K wait --for=condition=Ready "pod/$1" --timeout="${2:-120}s" >/dev/null && return 0
  $K describe pod "$1" | tail -n 30; $K logs "$1" --all-containers 2>&1 | tail -n 20 || true
  fail "pod $1 not Ready"
}

# run_to_end POD [SECONDS]: waits for a restartPolicy=Never pod to finish; prints its logs;
# succeeds only when it Succeeded.
run_to_end() {
  local pod=$1 secs=${2:-120} phase deadline
  deadline=$(( $(date +%s) + secs ))
  while :; do
    phase=$($K get pod "$pod" -o jsonpath='{.status.phase}')
    [[ $phase == Succeeded || $phase == Failed ]] && break
    (( $(date +%s) < deadline )) || { $K describe pod "$pod" | tail -n 30 >&2; fail "pod $pod still $phase after ${secs}s"; }
    sleep 1
  done
  $K logs "$pod"
  [[ $phase == Succeeded ]] || { $K logs "$pod" >&2; fail "pod $pod $phase"; }
}

# busybox_client NAME SCRIPT: a one-shot busybox pod running SCRIPT with sh -c.
# (Debian's busybox 1.35 wget crashes with -T; use `timeout N wget` instead.)
busybox_client() {
  apply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1, labels: {app: $1}}
spec:
  restartPolicy: Never
  containers:
  - name: client
    image: $BUSYBOX_IMAGE
    command: [sh, -c, $(jq -Rn --arg s "$2" '$s')]
EOF
}

# hello_server NAME [NODE]: a hello-http pod (runc) with a Service NAME:80 -> 8080 in front of
# it; with NODE, pinned to that node (tolerating the VM node's taint).
hello_server() {
  local pin=""
  [[ -n ${2:-} ]] && pin="  nodeSelector: {kubernetes.io/hostname: $2}
  tolerations: [{key: wasmpod.io/test-node, operator: Exists}]"
  apply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1, labels: {app: $1}}
spec:
$pin
  containers:
  - name: hello
    image: $HELLO_IMAGE
    ports: [{containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /ready, port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: $1}
spec:
  selector: {app: $1}
  ports: [{port: 80, targetPort: 8080}]
EOF
}

# --- tests ---------------------------------------------------------------------------------------

# (1) A pod from an image built here (static C HTTP server, pushed to the local registry) runs
# under runc, the default runtime, and serves on its pod IP.
test_runc_pod_from_local_image() {
  hello_server hello
  wait_ready hello
  local ip body sandbox ctr rtype handler
  ip=$($K get pod hello -o jsonpath='{.status.podIP}')
  body=$(curl -fsS --max-time 5 "http://$ip:8080/runc")
  echo "GET http://$ip:8080/runc -> $body"
  [[ $body == "hello from hello path /runc" ]] || fail "unexpected body '$body'"
  # Which runtime ran it, as containerd's CRI reports it.
  sandbox=$($CRICTL pods --namespace "$NS" --name hello -q | head -n 1)
  ctr=$($CRICTL ps --pod "$sandbox" -q | head -n 1)
  handler=$($CRICTL inspectp -o json "$sandbox" | jq -r '.status.runtimeHandler // ""')
  rtype=$($CRICTL inspect -o json "$ctr" | jq -r '.info.runtimeType // ""')
  echo "sandbox $sandbox handler='$handler' container $ctr runtimeType=$rtype"
  [[ -z $handler || $handler == runc ]] || fail "pod ran under handler '$handler', not runc"
  [[ $rtype == io.containerd.runc.v2 ]] || fail "container runtime type '$rtype', not io.containerd.runc.v2"
  # And the image really is the one in the local registry.
  local want got
  want=$(skopeo inspect --tls-verify=false "docker://$HELLO_IMAGE" | jq -r .Digest)
  got=$($K get pod hello -o jsonpath='{.status.containerStatuses[0].imageID}')
  echo "imageID $got (registry digest $want)"
  [[ $got == *"$want" ]] || fail "pod image $got is not the registry's $want"
}

# (2) Service discovery: a container pod reaches another through its Service DNS name (short and
# fully qualified), resolved by the cluster's CoreDNS.
test_service_discovery() {
  hello_server web
  wait_ready web
  wait_service_serves "$NS" web /ready "" || fail "Service web not serving from the node"
  local svc_ip
  svc_ip=$($K get service web -o jsonpath='{.spec.clusterIP}')
  busybox_client dns-client "
    fqdn=web.$NS.svc.$CLUSTER_DOMAIN
    addr=\$(nslookup \$fqdn | awk '/^Address/ {a=\$NF} END {print a}')
    echo resolved \$fqdn to \$addr
    for i in \$(seq 30); do
      if out=\$(timeout 5 wget -qO- http://web/short) && out2=\$(timeout 5 wget -qO- http://\$fqdn/fqdn); then
        echo \"\$out\"; echo \"\$out2\"; exit 0
      fi
      sleep 1
    done
    exit 1"
  local logs
  logs=$(run_to_end dns-client)
  echo "$logs"
  grep -qx "resolved web.$NS.svc.$CLUSTER_DOMAIN to $svc_ip" <<< "$logs" || fail "DNS did not answer the ClusterIP $svc_ip"
  grep -qx "hello from web path /short" <<< "$logs" || fail "no answer through the short Service name"
  grep -qx "hello from web path /fqdn" <<< "$logs" || fail "no answer through the FQDN"
}

# (3) The RuntimeClass wasmpod exists and maps to the containerd handler wasmpod.
test_runtimeclass_wasmpod_exists() {
  local handler selector
  handler=$($KUBECTL get runtimeclass wasmpod -o jsonpath='{.handler}')
  selector=$($KUBECTL get runtimeclass wasmpod -o jsonpath='{.scheduling.nodeSelector.wasmpod\.io/runtime}')
  echo "runtimeclass wasmpod: handler=$handler nodeSelector wasmpod.io/runtime=$selector"
  [[ $handler == wasmpod ]] || fail "handler is '$handler'"
  [[ $selector == ready ]] || fail "nodeSelector wasmpod.io/runtime is '$selector'"
  grep -q 'runtime_type = "io.containerd.wasmpod.v1"' "$CONTAINERD_CONFIG" ||
    fail "containerd config has no io.containerd.wasmpod.v1 runtime"
}

# Pods reach the local registry by its in-cluster name (the operator inspects images this way), and
# containerd pulls the very same reference (hosts.toml maps the name to 127.0.0.1:5000).
test_registry_reachable_from_pods() {
  local ref=registry.kube-system.svc:$REGISTRY_PORT/wasmpod-test/hello-http:v1
  busybox_client registry-client "timeout 10 wget -qO- http://registry.kube-system.svc:$REGISTRY_PORT/v2/wasmpod-test/hello-http/tags/list"
  local logs
  logs=$(run_to_end registry-client)
  echo "catalog from a pod: $logs"
  grep -q '"tags":\["v1"\]' <<< "$logs" || fail "pod could not list tags through registry.kube-system.svc"
  apply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: pulled-by-svc-name}
spec:
  containers:
  - {name: hello, image: $ref}
EOF
  wait_ready pulled-by-svc-name
  echo "pod with image $ref is Ready"
}

# The egress guard is in place and first in line: the pod and service ranges, and anything from
# the VM node's bridge, never leave via the uplink.
test_egress_guard_in_place() {
  iptables -S OUTPUT | sed -n 2p | grep -qx -- "-A OUTPUT -j WASMPOD-EGRESS-GUARD" || fail "guard not first in OUTPUT"
  iptables -S FORWARD | sed -n 2p | grep -qx -- "-A FORWARD -j WASMPOD-EGRESS-GUARD" || fail "guard not first in FORWARD"
  local r
  for r in "-d $CLUSTER_POD_CIDR -o $UPLINK .*-j REJECT" "-d $SVC_CIDR -o $UPLINK -j REJECT" \
           "-i $VM_BRIDGE -o $UPLINK -j REJECT"; do
    iptables -S WASMPOD-EGRESS-GUARD | grep -Eq -- "$r" || fail "no egress rule matching '$r'"
  done
  iptables -t mangle -S WASMPOD-EGRESS-BACKSTOP | grep -q -- "-d $SVC_CIDR -o $UPLINK -j DROP" || fail "no backstop"
  # A ClusterIP without a Service is refused at once instead of being routed to the gateway.
  local t0=$SECONDS
  if curl -s --max-time 5 "http://10.96.255.254:80/" >/dev/null; then fail "unassigned ClusterIP answered"; fi
  (( SECONDS - t0 < 3 )) || fail "unassigned ClusterIP was not rejected at once"
  echo "egress guard on $UPLINK: rules present, unassigned ClusterIP rejected"
}

# (4) The mixed-cluster proof: a Wasm HTTP pod (RuntimeClass wasmpod) is reached by a container
# pod through its Service, and a Wasm pod reaches a container pod through its Service.
# Gated on the shim binary AND the Wasm test images; reports SKIPPED, never PASS, without them.
test_mixed_cluster_wasm_and_container_pods() {
  [[ -x $WASMPOD_SHIM ]] || skip "shim $WASMPOD_SHIM not built yet"
  [[ -n $WASM_HTTP_IMAGE && -n $WASM_CLIENT_IMAGE ]] || skip "WASM_HTTP_IMAGE/WASM_CLIENT_IMAGE not set yet"
  $KUBECTL get node "$NODE_NAME" -o jsonpath='{.metadata.labels.wasmpod\.io/runtime}' | grep -qx ready ||
    fail "node not labelled wasmpod.io/runtime=ready although the shim exists (re-run make cluster-up)"
  # Wasm server behind a Service; a container client reaches it by name.
  apply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: wasm-http, labels: {app: wasm-http}}
spec:
  runtimeClassName: wasmpod
  containers:
  - name: app
    image: $WASM_HTTP_IMAGE
    ports: [{containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: wasm-http}
spec:
  selector: {app: wasm-http}
  ports: [{port: 80, targetPort: 8080}]
EOF
  wait_ready wasm-http
  wait_service_serves "$NS" wasm-http / "hello from wasmpod http" || fail "Service wasm-http not serving from the node"
  busybox_client to-wasm 'for i in $(seq 30); do timeout 5 wget -qO- http://wasm-http/ && exit 0; sleep 1; done; exit 1'
  local logs
  logs=$(run_to_end to-wasm)
  echo "container -> wasm: $logs"
  grep -qx "hello from wasmpod http" <<< "$logs" || fail "container pod did not reach the Wasm pod"
  # Wasm client (run to completion) reaching a container server by Service name.
  hello_server web-for-wasm
  wait_ready web-for-wasm
  # The Wasm client asks once, so the Service must already be programmed: a Ready pod is not
  # enough (kube-proxy may still refuse the ClusterIP). Past this wait, a failure of the client
  # means the Wasm pod cannot reach the container.
  wait_service_serves "$NS" web-for-wasm /from-node "hello from web-for-wasm path /from-node" ||
    fail "Service web-for-wasm not serving from the node"
  apply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: wasm-client}
spec:
  runtimeClassName: wasmpod
  restartPolicy: Never
  containers:
  - name: app
    image: $WASM_CLIENT_IMAGE
    # By the Service's environment variable (expanded by the kubelet); names are
    # test_wasm_guest_resolves_names_like_its_pod's.
    env: [{name: TARGET_URL, value: "http://\$(WEB_FOR_WASM_SERVICE_HOST)/from-wasm"}]
EOF
  logs=$(run_to_end wasm-client)
  echo "wasm -> container: $logs"
  grep -q "hello from web-for-wasm path /from-wasm" <<< "$logs" || fail "Wasm pod did not reach the container pod"
}

# A Wasm guest resolves names as a container of its pod would: from the pod's resolv.conf
# (search domains: short name, name.namespace, FQDN) and hosts file (hostAliases), through the
# cluster DNS; a name that does not exist is a clean DNS error for the guest, not a hang or a
# trap; a name only in the node's /etc/hosts is not visible (127.0.0.77, so a wrong answer
# could not send anything off this machine).
test_wasm_guest_resolves_names_like_its_pod() {
  [[ -x $WASMPOD_SHIM && -n $WASM_CLIENT_IMAGE ]] || skip "shim or Wasm images not built"
  local svc_ip logs node_only=wasmpod-node-only-name
  hello_server web-by-name
  wait_ready web-by-name
  wait_service_serves "$NS" web-by-name /from-node "hello from web-by-name" || fail "Service web-by-name not serving"
  svc_ip=$($K get service web-by-name -o jsonpath='{.spec.clusterIP}')
  grep -q " $node_only\$" /etc/hosts || echo "127.0.0.77 $node_only" >> /etc/hosts
  # shellcheck disable=SC2064  # the name is fixed now
  trap "sed -i '/ $node_only\$/d' /etc/hosts" RETURN
  apply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: wasm-dns}
spec:
  runtimeClassName: wasmpod
  restartPolicy: Never
  hostAliases: [{ip: "$svc_ip", hostnames: [web-alias]}]
  containers:
  - name: app
    image: $WASM_CLIENT_IMAGE
    env:
    - name: TARGET_URL
      value: >-
        http://web-by-name/short http://web-by-name.$NS/dotted
        http://web-by-name.$NS.svc.$CLUSTER_DOMAIN/fqdn http://web-alias/alias
        http://no-such-service/missing http://$node_only/node-hosts
EOF
  local deadline=$(( $(date +%s) + 120 )) phase
  until phase=$($K get pod wasm-dns -o jsonpath='{.status.phase}') && [[ $phase == Succeeded || $phase == Failed ]]; do
    (( $(date +%s) < deadline )) || fail "pod wasm-dns still $phase after 120 s (a lookup hangs?)"
    sleep 1
  done
  logs=$($K logs wasm-dns)
  echo "$logs"
  local path
  for path in short dotted fqdn alias; do
    grep -q "hello from web-by-name path /$path" <<< "$logs" || fail "the guest did not reach web-by-name as /$path"
  done
  grep -q "GET http://no-such-service/missing failed: .*DnsError" <<< "$logs" ||
    fail "a missing name is not a clean DNS error for the guest"
  grep -q "GET http://$node_only/node-hosts failed: .*DnsError" <<< "$logs" ||
    fail "the guest resolved a name that only the node's /etc/hosts has"
  [[ $phase == Failed ]] || fail "http-get should exit 1 (two lookups must fail), pod $phase"
  # An HTTP handler calling out by name: served, and a missing name is a 502, not a trap.
  apply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: wasm-fetcher}
spec:
  runtimeClassName: wasmpod
  containers:
  - name: app
    image: $WASM_HTTP_IMAGE
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
EOF
  wait_ready wasm-fetcher
  local ip code body
  ip=$($K get pod wasm-fetcher -o jsonpath='{.status.podIP}')
  body=$(curl -fsS --max-time 15 "http://$ip:8080/fetch?url=http://web-by-name/handler") ||
    fail "the Wasm handler's /fetch by name failed"
  grep -q "hello from web-by-name path /handler" <<< "$body" || fail "the Wasm handler did not reach web-by-name: $body"
  code=$(curl -s -o /tmp/wasm-fetch-missing.$$ -w '%{http_code}' --max-time 15 "http://$ip:8080/fetch?url=http://no-such-service/")
  body=$(cat /tmp/wasm-fetch-missing.$$); rm -f /tmp/wasm-fetch-missing.$$
  [[ $code == 502 && $body == *DnsError* ]] || fail "a missing name gave the handler '$code $body', want 502 and a DnsError"
  [[ $($K get pod wasm-fetcher -o jsonpath='{.status.containerStatuses[0].restartCount}') == 0 ]] ||
    fail "the Wasm handler restarted"
}

# A CNCF Wasm artifact (config application/vnd.wasm.config.v0+json, one application/wasm layer)
# and an image with a component layer, pulled and run through CRI, beside a container sidecar
# in the same pod (the sidecar runs under runc, delegated by the shim).
test_wasm_artifact_and_layer_images_via_cri() {
  [[ -x $WASMPOD_SHIM ]] || skip "shim $WASMPOD_SHIM not built yet"
  [[ -n $WASM_ARTIFACT_IMAGE && -n $WASM_LAYER_IMAGE ]] || skip "Wasm images not built"
  local name image ip
  for name in artifact layer; do
    image=$WASM_ARTIFACT_IMAGE; [[ $name == layer ]] && image=$WASM_LAYER_IMAGE
    apply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: wasm-$name}
spec:
  runtimeClassName: wasmpod
  containers:
  - name: app
    image: $image
    command: [/app.wasm]   # CRI needs a command; the Wasm comes from the image's layer
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
  - name: sidecar
    image: $BUSYBOX_IMAGE
    command: [sh, -c, "echo sidecar up; sleep 3600"]
EOF
    wait_ready "wasm-$name"
    ip=$($K get pod "wasm-$name" -o jsonpath='{.status.podIP}')
    busybox_client "get-$name" "for i in \$(seq 20); do timeout 5 wget -qO- http://$ip:8080/ && exit 0; sleep 1; done; exit 1"
    grep -qx "hello from wasmpod http" <<< "$(run_to_end "get-$name")" || fail "$name image did not answer"
    $K logs "wasm-$name" -c sidecar | grep -qx "sidecar up" || fail "runc sidecar of the Wasm pod did not run"
  done
}

# The README's plain-Pod example, exactly as written there (image swapped for the local
# registry's CNCF artifact), answers on its pod IP; the same Pod without its `command` fails in
# CRI with "no command specified" (what the README warns of), never starting a guest.
test_readme_plain_pod_example() {
  [[ -x $WASMPOD_SHIM && -n $WASM_ARTIFACT_IMAGE ]] || skip "shim or Wasm images not built"
  local example ip reason
  example=$(awk '/<!-- plain-pod-example/ {on=1; next} on && /^```yaml/ {inblock=1; next}
                 inblock && /^```/ {exit} inblock' "$E2E_DIR/../README.md")
  grep -q 'runtimeClassName: wasmpod' <<< "$example" || fail "no plain-Pod example found in README.md"
  sed "s|image: .*|image: $WASM_ARTIFACT_IMAGE|" <<< "$example" | apply
  wait_ready hello-wasm
  ip=$($K get pod hello-wasm -o jsonpath='{.status.podIP}')
  wait_for 30 "the README example answering on $ip:8080" \
    bash -c "curl -fsS --max-time 2 http://$ip:8080/ | grep -qx 'hello from wasmpod http'" ||
    fail "the README's plain-Pod example did not answer on $ip:8080"
  sed "s|image: .*|image: $WASM_ARTIFACT_IMAGE|; /command:/d; s|name: hello-wasm|name: no-command|" <<< "$example" | apply
  wait_for 120 "pod no-command to fail in CRI" bash -c \
    "$K get pod no-command -o jsonpath='{.status.containerStatuses[0].state.waiting.message}' | grep -q 'no command specified'" ||
    { $K describe pod no-command | tail -n 20; fail "a Wasm artifact Pod without a command did not fail with 'no command specified'"; }
  reason=$($K get pod no-command -o jsonpath='{.status.containerStatuses[0].state.waiting.reason}')
  [[ $reason == CreateContainerError ]] || fail "pod without a command: waiting reason '$reason', want CreateContainerError"
}

# The operator on the full cluster (run on the host with the admin kubeconfig; its in-cluster
# install is the chart's job): a WasmApp of an HTTP component goes Ready, answers through its
# Service URL from a container pod, scales with `kubectl scale`, and one with autoscaling
# gets an HPA that targets the WasmApp. One declared on port 3000 listens there: it goes Ready
# (probes on 3000) and answers through its Service (the operator tells the runtime the port).
test_operator_wasmapp_on_cluster() {
  [[ -x $WASMPOD_SHIM && -n $WASM_HTTP_IMAGE ]] || skip "shim or Wasm images not built"
  local url
  start_operator
  apply <<EOF
apiVersion: wasmpod.io/v1alpha1
kind: WasmApp
metadata: {name: hello}
spec:
  image: $WASM_HTTP_IMAGE
---
apiVersion: wasmpod.io/v1alpha1
kind: WasmApp
metadata: {name: auto}
spec:
  image: $WASM_HTTP_IMAGE
  resources: {requests: {cpu: 50m}}
  autoscaling: {minReplicas: 1, maxReplicas: 3, targetCPUUtilizationPercentage: 80}
---
apiVersion: wasmpod.io/v1alpha1
kind: WasmApp
metadata: {name: port3000}
spec:
  image: $WASM_HTTP_IMAGE
  port: 3000
EOF
  if ! wait_wasmapp_ready "$NS" hello 120; then
    $K get wapp hello -o yaml | tail -n 40; tail -n 30 "$LOGS/operator-test.log"; fail "WasmApp hello not Ready"
  fi
  url=$($K get wapp hello -o jsonpath='{.status.url}')
  [[ -n $url ]] || fail "no status.url"
  wait_service_serves "$NS" hello / "hello from wasmpod http" || fail "Service of WasmApp hello not serving from the node"
  busybox_client via-url "for i in \$(seq 20); do timeout 5 wget -qO- $url && exit 0; sleep 1; done; exit 1"
  grep -qx "hello from wasmpod http" <<< "$(run_to_end via-url)" || fail "WasmApp did not answer at $url"
  if ! wait_wasmapp_ready "$NS" port3000 120; then
    $K get wapp port3000 -o yaml | tail -n 40; fail "WasmApp port3000 (port: 3000) not Ready"
  fi
  [[ $($K get deploy port3000 -o jsonpath='{.spec.template.spec.containers[0].ports[0].containerPort}') == 3000 ]] ||
    fail "WasmApp port3000: the container port is not 3000"
  wait_service_serves "$NS" port3000 / "hello from wasmpod http" || fail "Service of WasmApp port3000 (port 3000) not serving"
  $K scale wapp/hello --replicas=2 >/dev/null
  $K wait --for=jsonpath='{.status.readyReplicas}'=2 wapp/hello --timeout=120s >/dev/null ||
    fail "kubectl scale wapp/hello --replicas=2 did not give 2 ready replicas"
  wait_for 60 "HPA of WasmApp auto" $K get hpa auto
  [[ $($K get hpa auto -o jsonpath='{.spec.scaleTargetRef.kind}') == WasmApp ]] || fail "HPA does not target the WasmApp"
}

# cgroup_probe NODE POD_UID: runs a privileged one-shot pod on NODE that finds the pod's shim
# leaf under the node's cgroup tree and prints "LEAF PID EXE MEMORY_BYTES".
cgroup_probe() {
  local name=probe-$RANDOM
  apply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $name}
spec:
  nodeSelector: {kubernetes.io/hostname: $1}
  tolerations: [{key: wasmpod.io/test-node, operator: Exists}]
  hostPID: true
  restartPolicy: Never
  containers:
  - name: probe
    image: $BUSYBOX_IMAGE
    securityContext: {privileged: true}
    volumeMounts: [{name: cg, mountPath: /cg, readOnly: true}]
    command: [sh, -c, 'd=\$(ls -d /cg/kubepods/*/pod$2/wasmpod-* /cg/kubepods/pod$2/wasmpod-* /cg/memory/kubepods/*/pod$2/wasmpod-* /cg/memory/kubepods/pod$2/wasmpod-* 2>/dev/null | head -n1); [ -n "\$d" ] || exit 3; p=\$(head -n1 \$d/cgroup.procs); echo "\$d \$p \$(readlink /proc/\$p/exe) \$(cat \$d/memory.current 2>/dev/null || cat \$d/memory.usage_in_bytes)"']
  volumes: [{name: cg, hostPath: {path: /sys/fs/cgroup}}]
EOF
  run_to_end "$name" 300 | tail -n1
}

# wasm_pod_cost_on NODE: what a Wasm pod on NODE costs is charged to the pod. Its shim sits in
# its leaf under the pod's cgroup; the kubelet's /stats/summary (and crictl stats on the host
# node) show an idle Wasm container's memory (its share of the runtime) and CPU in the right
# units; a guest growing past its memory limit is OOMKilled with the reason shown while the
# other Wasm pod keeps serving.
wasm_pod_cost_on() {
  local node=$1 t=${2:-120} cost=cost-$1 hog=hog-$1
  apply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $cost, labels: {app: $cost}}
spec:
  runtimeClassName: wasmpod
  nodeSelector: {kubernetes.io/hostname: $node}
  tolerations: [{key: wasmpod.io/test-node, operator: Exists}]
  containers:
  - name: app
    image: $WASM_HTTP_IMAGE
    ports: [{containerPort: 8080}]
    resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 500m, memory: 128Mi}}
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
EOF
  wait_ready "$cost" "$t"
  local uid probe leaf pid exe charged
  uid=$($K get pod "$cost" -o jsonpath='{.metadata.uid}')
  probe=$(cgroup_probe "$node" "$uid") || fail "no shim cgroup under pod $uid on $node"
  read -r leaf pid exe charged <<< "$probe"
  [[ $exe == *containerd-shim-wasmpod-v1* ]] || fail "$leaf holds '$pid' ($exe), not the pod's shim"
  ((charged > 1024 * 1024)) || fail "only $charged bytes charged to the pod's shim cgroup"
  echo "shim of pod $cost on $node: pid $pid in ${leaf#/cg}, $((charged / 1024 / 1024)) MiB charged to the pod"
  # The kubelet's view, once it has sampled the container and the pod (cached for ~10 s).
  local summary mem=0 cpu=0 podmem=0 sel
  sel='.pods[] | select(.podRef.name==$pod and .podRef.namespace==$ns)'
  for _ in $(seq 90); do
    summary=$($KUBECTL get --raw "/api/v1/nodes/$node/proxy/stats/summary")
    mem=$(jq -r --arg ns "$NS" --arg pod "$cost" "$sel"' | .containers[] | select(.name=="app") | .memory.workingSetBytes // 0' <<< "$summary")
    cpu=$(jq -r --arg ns "$NS" --arg pod "$cost" "$sel"' | .containers[] | select(.name=="app") | .cpu.usageCoreNanoSeconds // 0' <<< "$summary")
    podmem=$(jq -r --arg ns "$NS" --arg pod "$cost" "$sel"' | .memory.workingSetBytes // 0' <<< "$summary")
    ((${mem:-0} > 0 && ${cpu:-0} > 0 && ${podmem:-0} > 0)) && break
    sleep 1
  done
  echo "stats/summary on $node: container app $mem B, $cpu ns CPU; pod $podmem B"
  ((mem > 1024 * 1024)) || fail "an idle Wasm container reports $mem bytes in /stats/summary (no share of the runtime)"
  ((mem < 128 * 1024 * 1024)) || fail "container memory $mem is not in bytes"
  ((cpu > 1000000)) || fail "container CPU $cpu is not in nanoseconds"
  # Pod (cAdvisor, the pod cgroup) and container (CRI, our Stats) are sampled seconds apart
  # while the shim still grows, so they are not compared exactly. Without the shim in the pod,
  # the pod would hold only its pause process (well under 1 MiB).
  ((podmem > 1024 * 1024 && podmem * 2 >= mem)) ||
    fail "pod memory $podmem (container $mem): the shim is not charged to the pod"
  if [[ $node == "$NODE_NAME" ]]; then
    local sandbox cid crimem
    sandbox=$($CRICTL pods --name "$cost" --namespace "$NS" -q 2>/dev/null | head -n1)
    cid=$($CRICTL ps --pod "$sandbox" -q 2>/dev/null | head -n1)
    crimem=$($CRICTL stats -o json "$cid" 2>/dev/null | jq -r '.stats[0].memory.workingSetBytes.value // 0')
    echo "crictl stats: container app $crimem B"
    ((crimem > 1024 * 1024)) || fail "crictl stats reports $crimem bytes for an idle Wasm container"
  fi
  apply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $hog}
spec:
  runtimeClassName: wasmpod
  nodeSelector: {kubernetes.io/hostname: $node}
  tolerations: [{key: wasmpod.io/test-node, operator: Exists}]
  restartPolicy: Never
  containers:
  - name: app
    image: $WASM_HOG_IMAGE
    resources: {limits: {memory: 64Mi}}
EOF
  local reason=""
  for _ in $(seq "$t"); do
    reason=$($K get pod "$hog" -o jsonpath='{.status.containerStatuses[0].state.terminated.reason}')
    [[ -n $reason ]] && break
    sleep 1
  done
  echo "memory-hog under 64Mi on $node: $reason"
  [[ $reason == OOMKilled ]] || { $K describe pod "$hog" | tail -n 20; fail "memory-hog ended with reason '$reason', not OOMKilled"; }
  [[ $($K get pod "$cost" -o jsonpath='{.status.containerStatuses[0].restartCount}') == 0 ]] || fail "pod $cost restarted"
  local ip; ip=$($K get pod "$cost" -o jsonpath='{.status.podIP}')
  curl -sf --max-time 10 "http://$ip:8080/" | grep -qx "hello from wasmpod http" || fail "pod $cost stopped serving"
}

test_wasm_pod_cost_is_charged_to_the_pod() {
  [[ -x $WASMPOD_SHIM ]] || skip "shim $WASMPOD_SHIM not built yet"
  [[ -n $WASM_HTTP_IMAGE && -n $WASM_HOG_IMAGE ]] || skip "WASM_HTTP_IMAGE/WASM_HOG_IMAGE not set yet"
  wasm_pod_cost_on "$NODE_NAME"
}

# --- the cgroup v2 VM node (e2e/cluster/node-v2.sh) ----------------------------------------------

# (VM) A container pod on the cgroup v2 node serves the host node through its Service and pod
# IP (each node routes the other's pod subnet over the VM bridge), and reaches a Service whose
# pod runs on the host node, by name, through the cluster DNS.
test_v2_node_runs_container_pods_across_nodes() {
  v2_node_ready || skip "no cgroup v2 node (e2e/cluster/node-v2.sh start)"
  hello_server on-host
  hello_server on-v2 "$VM_NODE"
  wait_ready on-v2 300
  [[ $($K get pod on-v2 -o jsonpath='{.spec.nodeName}') == "$VM_NODE" ]] || fail "on-v2 not on $VM_NODE"
  wait_service_serves "$NS" on-v2 /from-host "hello from on-v2 path /from-host" 120 || fail "Service on-v2 not serving from the host"
  wait_ready on-host
  wait_service_serves "$NS" on-host / "hello from on-host path /" || fail "Service on-host not serving"
  apply <<EOF
apiVersion: v1
kind: Pod
metadata: {name: v2-client}
spec:
  nodeSelector: {kubernetes.io/hostname: $VM_NODE}
  tolerations: [{key: wasmpod.io/test-node, operator: Exists}]
  restartPolicy: Never
  containers:
  - name: client
    image: $BUSYBOX_IMAGE
    command: [sh, -c, 'for i in \$(seq 30); do timeout 5 wget -qO- http://on-host/from-v2 && exit 0; sleep 1; done; exit 1']
EOF
  local logs; logs=$(run_to_end v2-client 300)
  grep -q "hello from on-host path /from-v2" <<< "$logs" || fail "a pod on $VM_NODE did not reach on-host by name: $logs"
}

# (VM) The same accounting on the cgroup v2 node (booted with the runtime, like the host node;
# the install suite has it put there by the node installer).
test_v2_wasm_pod_cost_is_charged_to_the_pod() {
  v2_node_ready || skip "no cgroup v2 node (e2e/cluster/node-v2.sh start)"
  [[ -n $WASM_HTTP_IMAGE && -n $WASM_HOG_IMAGE ]] || skip "WASM_HTTP_IMAGE/WASM_HOG_IMAGE not set yet"
  wasm_pod_cost_on "$VM_NODE" 300
}

# --- main ----------------------------------------------------------------------------------------

$KUBECTL get --raw /readyz >/dev/null 2>&1 || { echo "cluster is not up: run 'make cluster-up'"; echo "0 passed, 1 failed"; exit 1; }
cleanup() {
  [[ ${KEEP_NS:-0} == 1 ]] && { echo "keeping namespace $NS"; return; }
  $KUBECTL delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT
$KUBECTL create namespace "$NS" >/dev/null
# Pods may start only once the namespace's default ServiceAccount exists.
wait_for 30 "default ServiceAccount in $NS" $K get serviceaccount default

tests=("$@")
((${#tests[@]})) || tests=(test_runc_pod_from_local_image test_service_discovery test_runtimeclass_wasmpod_exists
                           test_registry_reachable_from_pods test_egress_guard_in_place
                           test_mixed_cluster_wasm_and_container_pods
                           test_wasm_artifact_and_layer_images_via_cri
                           test_readme_plain_pod_example
                           test_wasm_guest_resolves_names_like_its_pod
                           test_operator_wasmapp_on_cluster
                           test_wasmapp_capabilities_on_cluster
                           test_scale_to_zero_idle_first_request_and_back
                           test_scale_to_zero_handover_under_steady_stream
                           test_scale_to_zero_caps_held_requests_and_cpu
                           test_scale_to_zero_restarts_and_races
                           test_fault_shim_killed_under_load
                           test_fault_containerd_restart_keeps_20_pods_serving
                           test_fault_operator_failover_with_100_apps
                           test_wasm_pod_cost_is_charged_to_the_pod
                           test_fault_apiserver_restart_operator_resumes)
# The tests of the cgroup v2 VM node, when the cluster has it (WASMPOD_V2_NODE=1). In a default
# run they go in a lane of their own, beside the host node's tests: they mostly wait on the
# emulated node (its boot, then its pods), while the host node's tests keep the host busy.
V2_TESTS=(test_v2_node_runs_container_pods_across_nodes
          test_v2_wasm_pod_cost_is_charged_to_the_pod)
v2_lane_pid=""
if ((!$#)) && [[ ${WASMPOD_V2_NODE:-0} == 1 ]]; then
  v2_lane_log=$(mktemp)
  export WASM_HTTP_IMAGE WASM_CLIENT_IMAGE WASM_ARTIFACT_IMAGE WASM_LAYER_IMAGE WASM_HOG_IMAGE \
    WASM_KV_IMAGE WASM_KV_PY_IMAGE
  NS=$NS-v2 "$here/run.sh" "${V2_TESTS[@]}" > "$v2_lane_log" 2>&1 &
  v2_lane_pid=$!
fi
# The lane's result, once it is done; printed after this lane's summary.
v2_lane_rc=0
v2_lane_wait() {
  [[ -n $v2_lane_pid ]] || return 0
  wait "$v2_lane_pid" || v2_lane_rc=1
  v2_lane_pid=""
}
echo "cluster tests in namespace $NS (containerd $CONTAINERD)"
for t in "${tests[@]}"; do
  # The VM node may still be booting (with-cluster.sh): wait for it before its first test.
  if [[ $t == test_v2_* && ${WASMPOD_V2_NODE:-0} == 1 && -z ${v2_waited:-} ]]; then
    v2_waited=1
    "$CLUSTER_DIR/node-v2.sh" start || echo "the cgroup v2 node did not come up"
  fi
  # Taking the apiserver away would fail the other lane's kubectl calls: that test runs alone.
  [[ $t != test_fault_apiserver_restart_* ]] || v2_lane_wait
  run_test "$t"
done
rc=0
summary || rc=1
if [[ -n ${v2_lane_log:-} ]]; then
  v2_lane_wait
  echo "cgroup v2 node lane (namespace $NS-v2):"
  cat "$v2_lane_log"; rm -f "$v2_lane_log"
  ((v2_lane_rc == 0)) || rc=1
fi
exit $rc
