#!/usr/bin/env bash
# Runs the cluster tests on a local cluster: boots it if it is not up, runs the tests, and
# takes it down again if this script booted it (a cluster you started yourself stays up).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../cluster/env.sh"
was_up=0
$KUBECTL get --raw /readyz >/dev/null 2>&1 && was_up=1
# WASMPOD_V2_NODE=1 adds the cgroup v2 VM node (e2e/cluster/node-v2.sh) and its tests.
# The VM node boots while the host-node tests run; run.sh waits for it before its tests.
WASMPOD_V2_NODE_WAIT=0 "$here/../../cluster/up.sh"
rc=0
"$here/run.sh" "$@" || rc=$?
if ((rc != 0)); then "$here/../../cluster/logs.sh" >&2 || true; fi
((was_up)) || "$here/../../cluster/down.sh" || rc=$?
exit $rc
