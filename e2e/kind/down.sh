#!/usr/bin/env bash
# `make kind-down`: deletes the kind cluster made by `make kind-up` (no-op when it does not exist).
set -euo pipefail
KIND=${KIND:-kind}
KIND_CLUSTER=${KIND_CLUSTER:-wasmpod}
command -v "$KIND" >/dev/null || { echo "[kind-down] $KIND not found; nothing to delete" >&2; exit 0; }
if "$KIND" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  "$KIND" delete cluster --name "$KIND_CLUSTER"
else
  echo "[kind-down] no kind cluster named $KIND_CLUSTER" >&2
fi
