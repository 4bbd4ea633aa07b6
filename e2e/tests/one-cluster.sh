#!/usr/bin/env bash
# usage: one-cluster.sh [--first 'COMMAND']
# `make test-suites` (CI): the cluster suite, then the install suite, on one cluster with one
# cgroup v2 VM node (unless WASMPOD_V2_NODE=0), and with the node, the shim's cgroup-sensitive
# containerd tests inside its VM (make test-shim-v2's tests, e2e/vm/test-shim.sh --in-node) beside
# the cluster suite. Between the suites the cluster is made bare
# (e2e/cluster/make-bare.sh) instead of booted again: a second boot of the emulated node costs
# minutes of both cores. `make test-cluster` and `make test-install` still run each suite on a
# cluster of its own. A cluster that is already up is taken down first; this one is taken down at
# the end unless KEEP_CLUSTER=1.
# --first COMMAND (a shell command line; CI's host-only tiers, `make test-integration`): runs
# COMMAND once the cluster is up, before the suites. The emulated node boots and the shim's tests
# run in it meanwhile: its ~1.5 min boot and their minutes then overlap tiers that mostly wait
# on daemons of their own, instead of trailing the cluster suite. A failing COMMAND ends the run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
first=""
if [[ ${1:-} == --first ]]; then
  first=${2:?"usage: $0 [--first 'COMMAND']"}; shift 2
fi
(($# == 0)) || { echo "usage: $0 [--first 'COMMAND']" >&2; exit 2; }
source "$here/../cluster/env.sh"
if $KUBECTL get --raw /readyz >/dev/null 2>&1 || [[ -s $STATE/containerd-line ]]; then
  echo "[suites] taking the running cluster down for a fresh one" >&2
  "$CLUSTER_DIR/down.sh"
fi
export WASMPOD_REQUIRE_CLUSTER=1
# The VM node boots while --first's command or the cluster suite's host-node tests run
# (cluster/run.sh waits for it).
WASMPOD_BARE=0 WASMPOD_V2_NODE_WAIT=0 "$CLUSTER_DIR/up.sh"

rc=0
shim_v2_pid=""
if [[ ${WASMPOD_V2_NODE:-0} == 1 ]]; then
  shim_v2_log=$(mktemp)
  ( t=$(date +%s); s=0; "$here/../vm/test-shim.sh" --in-node || s=$?
    echo "[time] shim's containerd tests on the v2 node: $(( $(date +%s) - t )) s (exit $s)"; exit $s
  ) > "$shim_v2_log" 2>&1 &
  shim_v2_pid=$!
fi
if [[ -n $first ]] && ! bash -c "$first"; then
  echo "[suites] not running the suites: the command before them failed ($first)"
  [[ -z $shim_v2_pid ]] || kill "$shim_v2_pid" 2>/dev/null || true
  [[ ${KEEP_CLUSTER:-} == 1 ]] || "$CLUSTER_DIR/down.sh" || true
  exit 1
fi
t0=$(date +%s)
"$here/cluster/run.sh" || rc=1
echo "[time] cluster suite: $(( $(date +%s) - t0 )) s"
if [[ -n $shim_v2_pid ]]; then
  wait "$shim_v2_pid" || rc=1
  echo "---- the shim's containerd tests on the cgroup v2 node (e2e/vm/test-shim.sh --in-node) ----"
  cat "$shim_v2_log"; rm -f "$shim_v2_log"
fi
"$here/cluster/check-containerd-config.sh" || rc=1

t0=$(date +%s)
v2_up() { [[ ${WASMPOD_V2_NODE:-0} != 1 ]] || "$CLUSTER_DIR/node-v2.sh" start; }
if "$CLUSTER_DIR/make-bare.sh" && SKIP_CARGO=1 "$CLUSTER_DIR/push-wasmpod.sh" && v2_up; then
  "$here/install/run.sh" || rc=1
else
  echo "FAIL could not make the cluster bare for the install suite"; rc=1
fi
echo "[time] install suite: $(( $(date +%s) - t0 )) s"

if ((rc != 0)); then "$CLUSTER_DIR/logs.sh" >&2 || true; fi
[[ ${KEEP_CLUSTER:-} == 1 ]] || "$CLUSTER_DIR/down.sh" || rc=1
exit $rc
