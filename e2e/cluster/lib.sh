# Helpers shared by the cluster scripts: logging, daemons with pid files, waiting. Sourced.
# shellcheck shell=bash

# Every script sourcing this names the command that failed under errexit (functions included,
# via errtrace), instead of exiting silently. Subshells ($(...)) stay quiet: their failure, when it
# matters, fails the command that used them, which is then reported.
set -o errtrace
# shellcheck disable=SC2154  # _rc is assigned inside the trap string
trap '_rc=$?; [[ $BASH_SUBSHELL == 0 ]] && log "${0##*/}: line $LINENO: \"$BASH_COMMAND\" failed (exit $_rc)"' ERR

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# wait_for SECONDS DESCRIPTION CMD...: polls CMD every 0.2 s until it succeeds or time runs out.
wait_for() {
  local secs=$1 what=$2 deadline; shift 2
  deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || { log "timed out after ${secs}s waiting for $what"; return 1; }
    sleep 0.2
  done
}

# wait_service_serves NAMESPACE SERVICE PATH WANT [SECONDS]: waits until the Service answers
# GET PATH with a body containing WANT, asked from the node through its ClusterIP and first port,
# so through the rules kube-proxy has programmed (the same ones a pod's traffic takes). A Ready
# pod is not yet a reachable Service: the EndpointSlice controller and kube-proxy follow it, and
# until they have, the ClusterIP refuses connections. On timeout prints the last answer and the
# Service's EndpointSlices, and fails.
wait_service_serves() {
  local ns=$1 svc=$2 path=$3 want=$4 secs=${5:-60} ip port deadline body=""
  ip=$($KUBECTL -n "$ns" get service "$svc" -o jsonpath='{.spec.clusterIP}') || return 1
  port=$($KUBECTL -n "$ns" get service "$svc" -o jsonpath='{.spec.ports[0].port}') || return 1
  deadline=$(( $(date +%s) + secs ))
  until body=$(curl -fsS --max-time 2 "http://$ip:$port$path" 2>&1) && [[ $body == *"$want"* ]]; do
    if (( $(date +%s) >= deadline )); then
      log "Service $ns/$svc ($ip:$port) did not answer GET $path with '$want' within ${secs}s; last answer: $body"
      $KUBECTL -n "$ns" get endpointslices -l "kubernetes.io/service-name=$svc" -o wide >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

# wait_wasmapp_ready NAMESPACE NAME [SECONDS]: waits until the operator has reconciled the
# WasmApp's current spec (status.observedGeneration = metadata.generation) and it is Ready. A
# plain `kubectl wait --for=condition=Ready` right after an apply can see the Ready of the spec
# before it.
wait_wasmapp_ready() {
  local ns=$1 name=$2 secs=${3:-180} deadline got gen observed ready
  deadline=$(( $(date +%s) + secs ))
  while :; do
    got=$($KUBECTL -n "$ns" get wasmapp "$name" -o \
      jsonpath='{.metadata.generation} {.status.observedGeneration} {.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
    read -r gen observed ready <<< "$got"
    [[ -n $gen && $gen == "$observed" && $ready == True ]] && return 0
    if (( $(date +%s) >= deadline )); then
      log "WasmApp $ns/$name not Ready at its generation within ${secs}s (generation observedGeneration Ready: $got)"
      return 1
    fi
    sleep 0.2
  done
}

# pid_alive PIDFILE: true when the process recorded in PIDFILE runs and still is the binary we started
# (its /proc/PID/exe matches the one saved beside the pid), so a reused pid is never mistaken for ours.
pid_alive() {
  local pf=$1 pid exe
  [[ -s $pf ]] || return 1
  read -r pid exe < "$pf"
  running "$pid" || return 1
  [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$exe" ]] && return 0
  # A script runs as its interpreter: then its path is an argument of the interpreter.
  tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$exe"
}

# start_daemon NAME PIDDIR LOGDIR CMD...: runs CMD in its own session (setsid) with nohup, so it
# outlives the calling shell and make (there is no init system to own it), logging to LOGDIR/NAME.log.
# A daemon already alive with the same command line is left alone, which is what makes
# `cluster-up` idempotent; one started with other arguments (scripts changed) is restarted.
start_daemon() {
  local name=$1 piddir=$2 logdir=$3 pf exe sig; shift 3
  pf=$piddir/$name.pid
  sig=$(printf '%s\0' "$@" | sha256sum | cut -d' ' -f1)
  if pid_alive "$pf"; then
    if [[ $(cat "$piddir/$name.args" 2>/dev/null) == "$sig" ]]; then
      log "$name already running (pid $(cut -d' ' -f1 "$pf"))"; return 0
    fi
    log "$name runs with other arguments: restarting it"
    stop_daemon "$name" "$piddir" 20
  fi
  mkdir -p "$piddir" "$logdir"
  echo "$sig" > "$piddir/$name.args"
  exe=$(readlink -f "$(command -v "$1")") || die "$name: $1 not found"
  log "starting $name"
  # The child writes its own pid before exec, so the pid is the daemon's even if setsid had to fork.
  # fd 9 is the cluster-up/down lock (up.sh): a daemon inheriting it would hold the lock forever.
  setsid nohup bash -c 'echo "$$ $0" > "$1"; shift; exec "$@"' "$exe" "$pf" "$@" \
    >> "$logdir/$name.log" 2>&1 < /dev/null 9>&- &
  wait_for 5 "$name pid file" test -s "$pf" || die "$name did not start"
}

# running PID: the process exists and is not a zombie. Our daemons are orphans reaped by PID 1,
# which is not an init here and reaps late, so a dead daemon can linger as a zombie.
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# stop_daemon NAME PIDDIR [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10); removes the pid file.
stop_daemon() {
  local name=$1 piddir=$2 secs=${3:-10} pf pid i
  pf=$piddir/$name.pid
  if pid_alive "$pf"; then
    read -r pid _ < "$pf"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then log "$name ignored SIGTERM; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
    for ((i = 0; i < 50; i++)); do running "$pid" || break; sleep 0.1; done
  fi
  rm -f "$pf"
}

# ensure_packages PKG...: apt-get installs only the Debian packages that are missing (CI starts fresh).
ensure_packages() {
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
}

# install_if_changed TMP DEST: moves TMP over DEST only when the content differs, so a re-run of
# cluster-up does not touch files daemons watch (kube-proxy exits when its config file is written).
install_if_changed() {
  if cmp -s "$1" "$2"; then rm -f "$1"; else mv "$1" "$2"; fi
}

# free_port: a currently unused loopback TCP port (the kernel picks it).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# v2_node_ready: the cgroup v2 VM node (node-v2.sh) is registered and Ready.
v2_node_ready() {
  [[ $($KUBECTL get node "$VM_NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
