#!/usr/bin/env bash
# `make test-install`: a fresh bare cluster (WASMPOD_BARE=1), the two images built from
# images/*.Dockerfile and pushed to its registry, the install tests, then cluster-down. A cluster
# that is already up is taken down first: these tests need one on which nothing was installed.
# Variables: SKIP_CARGO (default 1: `make` built the binaries), KEEP_CLUSTER=1 (leave it up).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../cluster/env.sh"
if $KUBECTL get --raw /readyz >/dev/null 2>&1 || [[ -s $STATE/containerd-line ]]; then
  echo "[install-tests] taking the running cluster down for a fresh bare one" >&2
  "$CLUSTER_DIR/down.sh"
fi
export WASMPOD_BARE=1
# The VM node boots while the images are built and pushed; then wait for it.
WASMPOD_V2_NODE_WAIT=0 "$CLUSTER_DIR/up.sh"
rc=0
v2_up() { [[ ${WASMPOD_V2_NODE:-0} != 1 ]] || "$CLUSTER_DIR/node-v2.sh" start; }
"$CLUSTER_DIR/push-wasmpod.sh" && v2_up && "$here/run.sh" "$@" || rc=$?
if ((rc != 0)); then "$CLUSTER_DIR/logs.sh" >&2 || true; fi
[[ ${KEEP_CLUSTER:-} == 1 ]] || "$CLUSTER_DIR/down.sh" || rc=$?
exit $rc
