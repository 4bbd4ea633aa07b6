# Cluster tests of scale to zero (sourced by run.sh, which provides $K, apply, start_operator and
# the images): the operator built here on the host, the activator image built here as a pod of the
# test namespace, the shim's activity port read by the operator. What is checked: an idle app goes
# to zero while its Service answers through the activator; the first request is answered and
# brings the pods back; the handover under a steady request stream loses nothing; the held-request
# cap; the CPU cap that keeps a looping app from stalling another; operator and activator
# restarts; a request racing a scale-down; an app that opted out stays up.
# shellcheck shell=bash

# Images the activator pulls from inside its pod: the registry at the node's address, which the
# host (operator) and containerd reach too.
NODE_REGISTRY=$NODE_IP:$REGISTRY_PORT
ACTIVATOR_CPU_MS=2000
ACTIVATOR_MAX_HELD=4

node_image() { echo "${1/#$REGISTRY/$NODE_REGISTRY}"; }

# start_activator: the activator image (images/build.sh, the workspace build) in the local
# registry and two replicas of it in $NS, with a Role to read WasmApps, Secrets and ConfigMaps
# there, behind the Service the operator is told to look at. Waits until both are Ready.
start_activator() {
  local tag root
  root=$(dirname "$E2E_DIR")
  tag=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
  [[ -x $WASMPOD_ACTIVATOR ]] || skip "activator $WASMPOD_ACTIVATOR not built (make build)"
  # It lists WasmApps before it is ready: on a fresh cluster the CRD may not be there yet.
  install_crd
  IMAGES=wasmpod-activator SKIP_CARGO=1 PUSH=$REGISTRY "$root/images/build.sh" >/dev/null 2>&1 ||
    fail "images/build.sh could not build the activator image"
  apply <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: wasmpod-activator}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: wasmpod-activator}
rules:
- {apiGroups: [wasmpod.io], resources: [wasmapps], verbs: [get, list, watch]}
- {apiGroups: [""], resources: [configmaps, secrets], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: wasmpod-activator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: wasmpod-activator}
subjects: [{kind: ServiceAccount, name: wasmpod-activator, namespace: $NS}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: wasmpod-activator}
spec:
  replicas: 2
  selector: {matchLabels: {app: wasmpod-activator}}
  template:
    metadata: {labels: {app: wasmpod-activator}}
    spec:
      serviceAccountName: wasmpod-activator
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: activator
        image: $REGISTRY/wasmpod-activator:$tag
        imagePullPolicy: Always
        args: [--watch-namespace=$NS, --insecure-registry=$NODE_REGISTRY, --state-dir=/state,
               --max-held-per-app=$ACTIVATOR_MAX_HELD, --request-cpu-ms=$ACTIVATOR_CPU_MS,
               --retry-seconds=5]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        ports: [{name: admin, containerPort: 9090}]
        readinessProbe: {httpGet: {path: /readyz, port: admin}, periodSeconds: 1}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
        volumeMounts: [{name: state, mountPath: /state}]
      volumes: [{name: state, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: wasmpod-activator}
spec:
  selector: {app: wasmpod-activator}
  ports: [{name: admin, port: 9090, targetPort: admin}]
EOF
  $K rollout status deploy/wasmpod-activator --timeout=120s >/dev/null || {
    $K describe pods -l app=wasmpod-activator | tail -n 30; fail "the activator did not roll out"; }
}

# start_s2z_operator: start_operator, told where the activator is and how to reach the registry
# the WasmApps of these tests name.
start_s2z_operator() {
  start_operator --insecure-registry "$NODE_REGISTRY" --activator-namespace "$NS" \
    --activator-service wasmpod-activator --activity-poll-ms 500
}

# s2z_app NAME IMAGE IDLE [EXTRA SPEC YAML]: a WasmApp that scales to zero after IDLE seconds.
s2z_app() {
  apply <<EOF
apiVersion: wasmpod.io/v1alpha1
kind: WasmApp
metadata: {name: $1}
spec:
  image: $(node_image "$2")
  scaleToZero: {idleSeconds: $3}
${4:-}
EOF
}

phase() { $K get wapp "$1" -o jsonpath='{.status.scaleToZero.phase}' 2>/dev/null; }

# wait_phase APP PHASE [SECONDS]
wait_phase() {
  local deadline=$(( $(date +%s) + ${3:-90} ))
  until [[ $(phase "$1") == "$2" ]]; do
    (( $(date +%s) < deadline )) || {
      # What says why first: CI shows the head of a failed test's output.
      echo "WasmApp $1 not in phase $2 within ${3:-90}s: phase '$(phase "$1")'"
      $K get wapp "$1" -o json | jq -r '.status.conditions[]? | "  \(.type)=\(.status) \(.reason): \(.message)"'
      $K get deploy "$1" -o jsonpath='  deploy: {.spec.replicas} wanted, {.status.readyReplicas} ready{"\n"}'
      echo "  endpoints: $(ready_targets "$1" | tr '\n' ' ')"
      tail -n 20 "$LOGS/operator-test.log"
      fail "WasmApp $1 not in phase $2 within ${3:-90}s (phase '$(phase "$1")')"; }
    sleep 0.2
  done
}

svc_ip() { $K get service "$1" -o jsonpath='{.spec.clusterIP}'; }

# ready_targets SERVICE: "ip:port" of every ready endpoint of the Service's EndpointSlices, sorted.
ready_targets() {
  $K get endpointslices -l "kubernetes.io/service-name=$1" -o json | jq -r '
    .items[] | .ports[0].port as $p | (.endpoints // [])[]
    | select(.conditions.ready != false) | .addresses[] + ":" + ($p | tostring)' | sort
}

activator_ips() { $K get pods -l app=wasmpod-activator -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}' | sort; }

# activator_requests APP: the requests every activator pod reports answering for the app, summed
# (the Service spreads requests over all of them).
activator_requests() {
  local ip
  for ip in $(activator_ips); do
    curl -sS --max-time 5 "http://$ip:9090/apps" | jq -r --arg n "$1" '.apps[] | select(.name == $n) | .requests'
  done | awk '{ s += $1 } END { print s + 0 }'
}

# wait_activator_ready APP: every activator pod reports the app Ready.
wait_activator_ready() {
  local deadline=$(( $(date +%s) + 90 )) ip states
  while :; do
    states=$(for ip in $(activator_ips); do
      curl -sS --max-time 5 "http://$ip:9090/apps" | jq -r --arg n "$1" '.apps[] | select(.name == $n) | .state'
    done | sort -u | tr '\n' ' ')
    [[ $states == "Ready " ]] && return 0
    (( $(date +%s) < deadline )) || { $K logs -l app=wasmpod-activator --tail=20; fail "activators report $1 as '$states', not Ready"; }
    sleep 0.2
  done
}

# at_zero APP: the app at zero, checked in every object: no pods wanted, the Service without
# selector, its only EndpointSlice the operator's with the activator pods at the app's port,
# ScaledToZero=True and Ready=True.
at_zero() {
  local app=$1 port want got deadline
  wait_phase "$app" AtZero
  deadline=$(( $(date +%s) + 30 ))
  until [[ $($K get deploy "$app" -o jsonpath='{.spec.replicas}') == 0 ]]; do
    (( $(date +%s) < deadline )) || fail "deploy/$app not at 0 replicas"
    sleep 0.2
  done
  [[ -z $($K get service "$app" -o jsonpath='{.spec.selector}') ]] || fail "Service $app still selects pods at zero"
  port=$($K get wapp "$app" -o jsonpath='{.status.scaleToZero.activatorPort}')
  want=$(activator_ips | sed "s/\$/:$port/" | sort)
  local deadline=$(( $(date +%s) + 30 ))
  until [[ $(ready_targets "$app") == "$want" ]]; do
    (( $(date +%s) < deadline )) ||
      fail "Service $app endpoints '$(ready_targets "$app" | tr '\n' ' ')', want the activators '$(echo "$want" | tr '\n' ' ')'"
    sleep 0.2
  done
  got=$($K get wapp "$app" -o jsonpath='{.status.conditions[?(@.type=="ScaledToZero")].status}/{.status.conditions[?(@.type=="ScaledToZero")].reason} {.status.conditions[?(@.type=="Ready")].status}')
  [[ $got == "True/Idle True" ]] || fail "WasmApp $app at zero has ScaledToZero/Ready '$got', want 'True/Idle True'"
  echo "$app at zero: Service -> $(ready_targets "$app" | tr '\n' ' ')"
}

# serving APP: pods back, the Service on its selector again, the activator's slice gone, and
# the Service's endpoints the app's pod IPs.
serving() {
  local app=$1 pods deadline
  wait_phase "$app" Serving 120
  [[ -n $($K get service "$app" -o jsonpath='{.spec.selector}') ]] || fail "Service $app has no selector while serving"
  local deadline=$(( $(date +%s) + 30 ))
  while $K get endpointslice "$app-activator" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || fail "EndpointSlice $app-activator still there while serving"
    sleep 0.2
  done
  pods=$($K get pods -l "wasmpod.io/app=$app" -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}' | sort)
  [[ -n $pods ]] || fail "no pods of $app while serving"
  ready_targets "$app" | cut -d: -f1 | grep -qxF -f <(echo "$pods") || fail "Service $app endpoints '$(ready_targets "$app" | tr '\n' ' ')' are not its pods '$pods'"
  echo "$app serving from pods $(echo "$pods" | tr '\n' ' ')"
}

# pod_requests APP: the requests the app's ready pods report on their activity port, summed.
pod_requests() {
  local ip
  for ip in $($K get pods -l "wasmpod.io/app=$1" -o json | jq -r '.items[]
      | select(.metadata.deletionTimestamp == null)
      | select(any(.status.conditions[]?; .type == "Ready" and .status == "True")) | .status.podIP'); do
    curl -s --max-time 2 "http://$ip:9091/activity" | jq -r '.requests // 0'
  done | awk '{ s += $1 } END { print s + 0 }'
}

test_scale_to_zero_idle_first_request_and_back() {
  [[ -x $WASMPOD_SHIM && -n $WASM_HTTP_IMAGE ]] || skip "shim or Wasm images not built"
  start_activator
  start_s2z_operator
  s2z_app s2z "$WASM_HTTP_IMAGE" 6
  # An app that did not opt in, beside it for the whole test.
  apply <<EOF
apiVersion: wasmpod.io/v1alpha1
kind: WasmApp
metadata: {name: always}
spec:
  image: $(node_image "$WASM_HTTP_IMAGE")
EOF
  wait_for 60 "Service s2z" $K get service s2z || fail "no Service s2z"
  wait_service_serves "$NS" s2z /first "hello from wasmpod http" 180 || fail "s2z never served"
  wait_activator_ready s2z
  at_zero s2z

  # The first request at zero: answered by the activator, through the app's own Service.
  local ip out
  ip=$(svc_ip s2z)
  out=$(curl -sS --max-time 10 -w ' %{http_code} %{time_total}s' "http://$ip/after-idle")
  echo "first request at zero: $out"
  [[ $out == "hello from wasmpod http"*" 200 "* ]] || fail "first request at zero: '$out'"
  (( $(activator_requests s2z) >= 1 )) || fail "no activator pod counted the request"
  serving s2z

  # Steady traffic to the pods keeps the app up past its idle time: the operator reads the
  # shim's activity port (the pods' own count says they served it).
  stream_start "http://$ip/steady"
  local until=$(( $(date +%s) + 12 ))
  while (( $(date +%s) < until )); do
    [[ $(phase s2z) == Serving ]] || { stream_stop; fail "s2z left Serving (phase $(phase s2z)) under steady traffic"; }
    sleep 0.5
  done
  stream_stop
  local count
  count=$(pod_requests s2z)
  echo "the pods' activity reports: $count requests"
  ((count > 0)) || fail "the pod reports no requests on its activity port"

  # The app that did not opt in never went to zero and has no activator slice.
  [[ $($K get deploy always -o jsonpath='{.status.readyReplicas}') == 1 ]] || fail "deploy/always is not at 1 ready replica"
  ! $K get endpointslice always-activator >/dev/null 2>&1 || fail "an activator slice exists for an app that did not opt in"
  [[ -z $($K get wapp always -o jsonpath='{.status.conditions[?(@.type=="ScaledToZero")].status}') ]] ||
    fail "an app that did not opt in has a ScaledToZero condition"
  [[ -z $($K get wapp always -o jsonpath='{.status.scaleToZero}') ]] || fail "an app that did not opt in has status.scaleToZero"
}

test_scale_to_zero_handover_under_steady_stream() {
  [[ -x $WASMPOD_SHIM && -n $WASM_HTTP_IMAGE ]] || skip "shim or Wasm images not built"
  start_activator
  start_s2z_operator
  s2z_app stream "$WASM_HTTP_IMAGE" 5
  wait_activator_ready stream
  at_zero stream
  # From zero to the pods under a stream that never pauses: nothing may fail, and both the
  # activator and the pods answer part of it.
  stream_start "http://$(svc_ip stream)/stream"
  serving stream
  local deadline=$(( $(date +%s) + 30 ))
  until (( $(pod_requests stream) > 0 )); do
    (( $(date +%s) < deadline )) || { stream_stop; fail "the pod never got part of the stream"; }
    sleep 0.2
  done
  stream_stop
  local by_activator
  by_activator=$(activator_requests stream)
  echo "activators: $by_activator requests, pods: $(pod_requests stream) requests"
  ((by_activator >= 1)) || fail "the activator answered none of the stream"
}

test_scale_to_zero_caps_held_requests_and_cpu() {
  [[ -x $WASMPOD_SHIM && -n $WASM_KV_IMAGE && -n $WASM_HTTP_IMAGE ]] || skip "shim or Wasm images not built"
  start_activator
  start_s2z_operator
  s2z_app capped "$WASM_KV_IMAGE" 3600 "  capabilities: {keyValue: [{bucket: counts, backend: Memory}]}"
  s2z_app other "$WASM_HTTP_IMAGE" 3600
  wait_activator_ready capped
  wait_activator_ready other
  local ip port other_port
  ip=$(activator_ips | head -n 1)
  port=$($K get wapp capped -o jsonpath='{.status.scaleToZero.activatorPort}')
  other_port=$($K get wapp other -o jsonpath='{.status.scaleToZero.activatorPort}')
  # Straight to one activator pod (not the Service, which may be on the pods): requests whose
  # bodies never finish hold the app's slots; one more is refused at once, with Retry-After.
  python3 - "$ip" "$port" "$ACTIVATOR_MAX_HELD" <<'EOF' || fail "held-request cap"
import json, socket, sys, time, urllib.request
ip, port, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
report = lambda: next(a for a in json.load(urllib.request.urlopen(f"http://{ip}:9090/apps"))["apps"] if a["name"] == "capped")
held = []
for i in range(cap):
    s = socket.create_connection((ip, port))
    s.sendall(f"PUT /set/counts/k{i} HTTP/1.1\r\nHost: capped\r\nContent-Length: 8\r\n\r\nhalf".encode())
    held.append(s)
deadline = time.time() + 30
while report()["inFlight"] < cap:
    assert time.time() < deadline, f"in flight stays {report()['inFlight']}"
    time.sleep(0.05)
s = socket.create_connection((ip, port), timeout=10)
s.sendall(b"GET / HTTP/1.1\r\nHost: capped\r\nConnection: close\r\n\r\n")
answer = b""
while chunk := s.recv(4096):
    answer += chunk
head = answer.decode(errors="replace").split("\r\n\r\n")[0]
print("one past the cap:", head.splitlines()[0], "|", [l for l in head.splitlines() if l.lower().startswith("retry-after")])
assert head.startswith("HTTP/1.1 503"), head
assert "retry-after: 1" in head.lower(), head
for s in held:
    s.sendall(b"full")
    s.settimeout(10)
    got = s.recv(4096).decode(errors="replace")
    assert got.startswith("HTTP/1.1 200"), got
print("the held requests completed: 200 x", cap)
EOF
  # A request that never stops computing does not hold up another app: it is still running
  # when the other app answers, then it is stopped at the CPU cap and answered 500.
  curl -s -o /dev/null -w '%{http_code}' --max-time 30 "http://$ip:$port/spin" > /tmp/spin.$$ &
  local spin=$! deadline=$(( $(date +%s) + 10 ))
  until [[ $(curl -sS "http://$ip:9090/apps" | jq '.apps[] | select(.name == "capped") | .inFlight') == 1 ]]; do
    (( $(date +%s) < deadline )) || fail "the spinning request never started"
    sleep 0.05
  done
  local body
  body=$(curl -sS --max-time 5 "http://$ip:$other_port/while-spinning")
  [[ $body == "hello from wasmpod http" ]] || fail "the other app answered '$body' while one spun"
  [[ $(curl -sS "http://$ip:9090/apps" | jq '.apps[] | select(.name == "capped") | .inFlight') == 1 ]] ||
    fail "the spinning request ended before the other app answered, so this proves nothing"
  echo "the other app answered while the spinning request ran"
  wait "$spin" || true
  [[ $(cat /tmp/spin.$$) == 500 ]] || fail "the spinning request ended with '$(cat /tmp/spin.$$)', want 500"
  rm -f /tmp/spin.$$
  # The activator writes the app's line to its log as the answer goes out: wait for it.
  deadline=$(( $(date +%s) + 20 ))
  until $K logs -l app=wasmpod-activator --tail=400 | grep -q "$NS/capped: .*CPU time limit exceeded"; do
    (( $(date +%s) < deadline )) || fail "no '$NS/capped: ... CPU time limit exceeded' in the activator's log"
    sleep 0.2
  done
  echo "the spinning request was stopped at the ${ACTIVATOR_CPU_MS} ms CPU cap (500)"
}

test_scale_to_zero_restarts_and_races() {
  [[ -x $WASMPOD_SHIM && -n $WASM_HTTP_IMAGE ]] || skip "shim or Wasm images not built"
  start_activator
  start_s2z_operator
  s2z_app race "$WASM_HTTP_IMAGE" 5
  wait_activator_ready race
  at_zero race

  # The operator restarts while the app is at zero: it stays at zero (no flapping, one slice),
  # and the next request still brings it back.
  kill "$OPERATOR_PID"; wait "$OPERATOR_PID" 2>/dev/null || true
  start_s2z_operator
  local until=$(( $(date +%s) + 12 ))
  while (( $(date +%s) < until )); do
    [[ $(phase race) == AtZero && $($K get deploy race -o jsonpath='{.spec.replicas}') == 0 ]] ||
      fail "after an operator restart race left zero without a request (phase $(phase race))"
    sleep 0.5
  done
  [[ $($K get endpointslices -l kubernetes.io/service-name=race -o name | wc -l) == 1 ]] ||
    fail "after an operator restart: EndpointSlices $($K get endpointslices -l kubernetes.io/service-name=race -o name)"

  # An activator pod goes away under a stream while the app is at zero: nothing fails.
  stream_start "http://$(svc_ip race)/restart"
  $K delete pod "$($K get pods -l app=wasmpod-activator -o jsonpath='{.items[0].metadata.name}')" --wait=false >/dev/null
  serving race
  $K rollout status deploy/wasmpod-activator --timeout=120s >/dev/null
  stream_stop

  # A request racing the next scale-down: sent the moment a watch shows ScalingDown (a phase of
  # one or two reconciles, which polling can miss), it is answered. Then, the moment the app is
  # AtZero, one more request goes straight to the pod on its way out, as a client whose
  # kube-proxy rules still point there would send it: the pod answers (its preStop delay), and
  # the operator must count that request like any other. Either way the app ends up serving
  # from pods again, never stranded at zero after requests it did not see.
  local answer direct svc watcher p pod_ip
  answer=$(mktemp); direct=$(mktemp); svc=$(svc_ip race)
  while read -r p; do
    if [[ $p == ScalingDown && ! -s $answer ]]; then
      curl -sS --max-time 10 -w ' %{http_code}' "http://$svc/racing" > "$answer" 2>&1 || echo " failed" >> "$answer"
      # Taken now, while the pod is certainly there: at AtZero it has only its drain delay
      # left, and a kubectl call on a busy node can take a good part of it.
      pod_ip=$($K get pods -l wasmpod.io/app=race -o jsonpath='{.items[0].status.podIP}')
    elif [[ $p == AtZero && -s $answer ]]; then
      [[ -n $pod_ip ]] || fail "race had no pod with an address during ScalingDown"
      curl -sS --max-time 10 -w ' %{http_code}' "http://$pod_ip:8080/leaving" > "$direct" 2>&1 || echo " failed" >> "$direct"
      break
    fi
  done < <(timeout 90 $K get wapp race --watch -o jsonpath='{.status.scaleToZero.phase}{"\n"}')
  watcher=$!
  kill "$watcher" 2>/dev/null || true
  [[ -s $answer ]] || fail "race never went through ScalingDown within 90 s"
  [[ -s $direct ]] || fail "race never reached AtZero after the racing request within 90 s"
  local out leaving
  out=$(cat "$answer"); leaving=$(cat "$direct"); rm -f "$answer" "$direct"
  echo "request during ScalingDown: $out; at zero, straight to the leaving pod $pod_ip: $leaving"
  [[ $out == *" 200" ]] || {
    $K get endpointslices -l kubernetes.io/service-name=race -o yaml | grep -E "name:|addresses|- 10\.|ready|port:|managed-by"
    $K get pods -o wide; $K get svc race -o yaml | grep -A3 selector
    fail "a request during ScalingDown got '$out'"; }
  [[ $leaving == *" 200" ]] || fail "the pod on its way out did not answer: '$leaving'"
  serving race

  # The image turns invalid while the app is at zero: the status says so, naming the image, and
  # the app stays at zero, served from the last good image.
  at_zero race
  local bad
  bad=$(node_image "$REDIS_IMAGE")
  $K patch wapp race --type=merge -p "{\"spec\":{\"image\":\"$bad\"}}" >/dev/null
  deadline=$(( $(date +%s) + 60 ))
  until [[ $($K get wapp race -o jsonpath='{.status.conditions[?(@.type=="ImageValid")].status}') == False ]]; do
    (( $(date +%s) < deadline )) || fail "ImageValid never turned False for $bad"
    sleep 0.2
  done
  local message
  message=$($K get wapp race -o jsonpath='{.status.conditions[?(@.type=="ImageValid")].message}')
  echo "ImageValid=False: $message"
  [[ $message == *"$bad"* ]] || fail "the ImageValid message does not name $bad: '$message'"
  wait_activator_ready race
  out=$(curl -sS --max-time 10 -w ' %{http_code}' "http://$(svc_ip race)/after-bad-image")
  [[ $out == "hello from wasmpod http"*" 200" ]] || fail "at zero with a bad new image, the app answered '$out'"
  echo "answered from the last good image: $out"
}
