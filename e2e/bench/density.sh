# Density on the local cluster's host node (sourced by cluster-bench.sh, which provides $K, apply,
# percentile, the images and $NS): as many Wasm HTTP pods as the node will hold, then runc pods of
# the same behaviour for the same time, each figure beside the other.
#
# For each runtime: a Deployment on the host node, no probes (a probe per pod per second would be
# the load measured), grown in waves of BENCH_DENSITY_WAVE pods (default 50): the next wave once
# the last is Ready, up to BENCH_DENSITY pods (default 1000) or BENCH_DENSITY_SECONDS (default
# 300). All at once does not work on this 2-core node for either runtime: 1000 sandboxes asked
# for together time out in containerd (CRI deadline exceeded) and the kubelet retries them in a
# storm (measured: 1 of 1000 Wasm pods Ready after 4 min). Then every Ready pod is asked GET /
# once from the node, and the memory of the processes the runtime added is read: the PSS of every
# shim, pause and (runc) app process after the run, minus the same sum before it, divided by the
# pods Ready. runc gets the time Wasm took (at least 60 s).
# The kubelet's maxPods is raised for the run by `make bench-cluster` (WASMPOD_MAX_PODS).
# shellcheck shell=bash

DENSITY=${BENCH_DENSITY:-1000}
DENSITY_SECONDS=${BENCH_DENSITY_SECONDS:-300}
DENSITY_WAVE=${BENCH_DENSITY_WAVE:-50}

# runtime_pss_kib KIND: PSS in KiB summed over the processes a pod of KIND adds on the node.
runtime_pss_kib() {
  local pattern p exe total=0 pss
  case $1 in
    wasm) pattern='^(containerd-shim-wasmpod-v1.*|pause)$' ;;
    runc) pattern='^(containerd-shim-runc-v2|pause|hello-http)$' ;;
  esac
  # By executable, not comm: comm is cut at 15 characters, and both shims are "containerd-shim".
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    [[ ${exe##*/} =~ $pattern ]] || continue
    pss=$(awk '/^Pss:/ { print $2 }' "$p/smaps_rollup" 2>/dev/null) || continue
    total=$((total + ${pss:-0}))
  done
  echo "$total"
}

# procs_cpu_ticks REGEX: CPU time (clock ticks) used so far by the running processes whose
# executable's name matches.
procs_cpu_ticks() {
  local p exe t ticks=0
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    [[ ${exe##*/} =~ $1 ]] || continue
    # utime and stime: fields 14 and 15, counted after the ")" that ends the command name.
    t=$(sed 's/.*) //' "$p/stat" 2>/dev/null | awk '{ print $12 + $13 }') || continue
    ticks=$((ticks + ${t:-0}))
  done
  echo "$ticks"
}

# cpu_parts KIND: CPU time (ticks) used so far by the node as a whole and by the parts a pod
# start goes through: "node pods kubelet containerd control-plane". pods is the kubepods
# cgroup (every pod's processes, exited ones included; a Wasm pod's shim joins its pod's
# cgroup) plus, for runc, its shims, which stay beside containerd.
cpu_parts() {
  local hz pods_ns=0 f shims=0
  hz=$(getconf CLK_TCK)
  for f in /sys/fs/cgroup/cpuacct/kubepods/cpuacct.usage /sys/fs/cgroup/kubepods/cpu.stat \
    /sys/fs/cgroup/kubepods.slice/cpu.stat; do
    [[ -r $f ]] || continue
    case $f in
      *cpuacct.usage) pods_ns=$(cat "$f") ;;
      *) pods_ns=$(awk '$1 == "usage_usec" { print $2 * 1000 }' "$f") ;;
    esac
    break
  done
  [[ $1 == runc ]] && shims=$(procs_cpu_ticks '^containerd-shim-runc-v2$')
  echo "$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat)" \
    "$((pods_ns / (1000000000 / hz) + shims))" \
    "$(procs_cpu_ticks '^kubelet$')" "$(procs_cpu_ticks '^containerd$')" \
    "$(procs_cpu_ticks '^(kube-apiserver|etcd|kube-scheduler|kube-controller-manager|kube-proxy)$')"
}

# cpu_split BEFORE AFTER: where the node's CPU went between two cpu_parts, in seconds.
cpu_split() {
  awk -v b="$1" -v a="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    n = split(b, x, " "); split(a, y, " ")
    for (i = 1; i <= n; i++) d[i] = (y[i] - x[i]) / hz
    printf "node %.0f s of CPU: pods %.0f s (%.0f%%), kubelet %.0f s, containerd %.0f s, apiserver/etcd/scheduler/controllers/proxy %.0f s, other (CNI plugins, runc, iptables...) %.0f s",
      d[1], d[2], (d[1] > 0 ? 100 * d[2] / d[1] : 0), d[3], d[4], d[5], d[1] - d[2] - d[3] - d[4] - d[5] }'
}

# density_run KIND RUNTIMECLASS IMAGE SECONDS: prints "ready seconds answering pss_kib", then on
# a second line where the node's CPU went while the pods were growing (cpu_split).
density_run() {
  local kind=$1 class=$2 image=$3 secs=$4 before after t0 ready=0 elapsed=0 ips answering=0 ip
  local cpu_before cpu_after
  before=$(runtime_pss_kib "$kind")
  apply <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: density-$kind}
spec:
  replicas: 0
  selector: {matchLabels: {app: density-$kind}}
  template:
    metadata: {labels: {app: density-$kind}}
    spec:
      ${class:+runtimeClassName: $class}
      nodeSelector: {kubernetes.io/hostname: $NODE_NAME}
      terminationGracePeriodSeconds: 0
      enableServiceLinks: false
      automountServiceAccountToken: false
      containers:
      - {name: app, image: $image, imagePullPolicy: IfNotPresent, ports: [{containerPort: 8080}]}
EOF
  local wanted=0
  cpu_before=$(cpu_parts "$kind")
  t0=$(date +%s%N)
  while :; do
    ready=$($K get deploy "density-$kind" -o jsonpath='{.status.readyReplicas}')
    ready=${ready:-0}
    elapsed=$(( ($(date +%s%N) - t0) / 1000000 ))
    ((ready >= DENSITY || elapsed >= secs * 1000)) && break
    if ((ready >= wanted)); then
      wanted=$(( wanted + DENSITY_WAVE > DENSITY ? DENSITY : wanted + DENSITY_WAVE ))
      $K scale deploy "density-$kind" --replicas="$wanted" >/dev/null
    fi
    sleep 1
  done
  cpu_after=$(cpu_parts "$kind")
  ips=$($K get pods -l "app=density-$kind" -o json | jq -r '.items[]
    | select(any(.status.conditions[]?; .type == "Ready" and .status == "True")) | .status.podIP')
  for ip in $ips; do
    curl -s -o /dev/null --max-time 5 "http://$ip:8080/" && answering=$((answering + 1))
  done
  after=$(runtime_pss_kib "$kind")
  echo "$ready $elapsed $answering $((after - before))"
  cpu_split "$cpu_before" "$cpu_after"
  echo
  $K scale deploy "density-$kind" --replicas=0 >/dev/null
  wait_for 900 "density-$kind pods gone" bash -c "[[ -z \$($K get pods -l app=density-$kind -o name) ]]"
  $K delete deploy "density-$kind" >/dev/null
}

density_bench() {
  # More pods than the kernel's default neighbour table holds answer on one bridge: raise it for
  # the run, restore it after.
  local sysctls=(net.ipv4.neigh.default.gc_thresh1 net.ipv4.neigh.default.gc_thresh2 net.ipv4.neigh.default.gc_thresh3)
  local saved=() s
  for s in "${sysctls[@]}"; do saved+=("$(sysctl -n "$s")"); done
  sysctl -q -w net.ipv4.neigh.default.gc_thresh1=4096 net.ipv4.neigh.default.gc_thresh2=8192 \
    net.ipv4.neigh.default.gc_thresh3=16384
  log "density: $DENSITY Wasm pods (at most ${DENSITY_SECONDS}s)"
  local w_run r_run
  w_run=$(density_run wasm wasmpod "$WASM_HTTP_IMAGE" "$DENSITY_SECONDS")
  read -r w_ready w_ms w_ok w_pss <<<"${w_run%%$'\n'*}"
  local runc_secs=$(( (w_ms + 999) / 1000 ))
  ((runc_secs >= 60)) || runc_secs=60
  log "density: runc pods for ${runc_secs}s"
  r_run=$(density_run runc "" "$HELLO_IMAGE" "$runc_secs")
  read -r r_ready r_ms r_ok r_pss <<<"${r_run%%$'\n'*}"
  for s in 0 1 2; do sysctl -q -w "${sysctls[$s]}=${saved[$s]}"; done
  echo
  # The node's own pod capacity (the kubelet's maxPods as it runs), not what was asked of up.sh.
  local max_pods
  max_pods=$($K get node "$NODE_NAME" -o jsonpath='{.status.capacity.pods}')
  echo "== density: one node, up to $DENSITY pods in waves of $DENSITY_WAVE, no probes (maxPods $max_pods)"
  printf '%-8s %5d Ready in %6.1f s, %5d answering, runtime PSS %7d MiB, %6d KiB per pod\n' \
    wasm "$w_ready" "$(awk -v m="$w_ms" 'BEGIN { print m / 1000 }')" "$w_ok" "$((w_pss / 1024))" "$((w_pss / (w_ready > 0 ? w_ready : 1)))"
  printf '%-8s %5d Ready in %6.1f s, %5d answering, runtime PSS %7d MiB, %6d KiB per pod\n' \
    runc "$r_ready" "$(awk -v m="$r_ms" 'BEGIN { print m / 1000 }')" "$r_ok" "$((r_pss / 1024))" "$((r_pss / (r_ready > 0 ? r_ready : 1)))"
  awk -v wr="$w_ready" -v rr="$r_ready" -v wp="$w_pss" -v rp="$r_pss" 'BEGIN {
    wk = wr > 0 ? wp / wr : 0; rk = rr > 0 ? rp / rr : 0
    printf "ratio wasm/runc: %.2fx the pods Ready in the same time, %.2fx the runtime PSS per pod\n",
      (rr > 0 ? wr / rr : 0), (rk > 0 ? wk / rk : 0) }'
  echo "while growing, wasm: ${w_run#*$'\n'}"
  echo "while growing, runc: ${r_run#*$'\n'}"
  echo "goal: 1000 Wasm pods Ready within 300 s, runtime PSS <= 5 MB per pod (runc: shim + pause + app; Wasm: shim with the app in it + pause)"
}
