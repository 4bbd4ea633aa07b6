#!/usr/bin/env bash
# `make kind-up`: a kind cluster (kind >= 0.27, Docker or Podman) able to run wasmpod pods with the
# shim built on this host, mounted into the node (no custom node image). Idempotent: an existing
# cluster of that name is re-checked, not re-created.
# Variables: KIND_CLUSTER (wasmpod), KIND_NODE_IMAGE (kind's default), WASMPOD_SHIM (host path of
# containerd-shim-wasmpod-v1; must be linked for the node's libc: kind nodes are Debian 12).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
KIND=${KIND:-kind}
KIND_CLUSTER=${KIND_CLUSTER:-wasmpod}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-}
source "$here/../../scripts/paths.sh"   # WASMPOD_SHIM: the workspace build's shim
# kind's node runtime: docker unless KIND_EXPERIMENTAL_PROVIDER says podman.
ENGINE=${KIND_EXPERIMENTAL_PROVIDER:-docker}
KUBECTL=${KUBECTL:-kubectl}
CTX=kind-$KIND_CLUSTER
SHIM_IN_NODE=/usr/local/bin/containerd-shim-wasmpod-v1

log() { printf '[kind-up] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for t in "$KIND" "$ENGINE" "$KUBECTL"; do
  command -v "$t" >/dev/null || die "$t not found (kind needs $ENGINE; see e2e/kind/README.md)"
done
"$ENGINE" info >/dev/null 2>&1 || die "$ENGINE is installed but its engine does not answer"
[[ -x $WASMPOD_SHIM ]] || die "shim $WASMPOD_SHIM not found: build it (cargo build --release -p wasmpod-shim) or set WASMPOD_SHIM"
WASMPOD_SHIM=$(readlink -f "$WASMPOD_SHIM")   # kind needs an absolute hostPath

if "$KIND" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  log "cluster $KIND_CLUSTER exists; re-checking it"
else
  # Render the config with this host's shim path (kind does not expand variables).
  cfg=$(mktemp --suffix=.yaml); trap 'rm -f "$cfg"' EXIT
  sed "s|hostPath: .*/containerd-shim-wasmpod-v1\$|hostPath: $WASMPOD_SHIM|" \
    "$here/kind-config.yaml" > "$cfg"
  log "creating kind cluster $KIND_CLUSTER"
  "$KIND" create cluster --name "$KIND_CLUSTER" --config "$cfg" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 180s
fi

for node in $("$KIND" get nodes --name "$KIND_CLUSTER"); do
  # The patch in kind-config.yaml uses the `version = 2` table names kind's node images use. If a
  # node image writes `version = 3`, that patch is inert there: add the 2.x-layout entry and
  # restart containerd (kind nodes run systemd).
  if ! "$ENGINE" exec "$node" containerd config dump 2>/dev/null | grep -q 'runtimes.wasmpod\]'; then
    ver=$("$ENGINE" exec "$node" sed -n 's/^version *= *\([0-9]*\).*/\1/p' /etc/containerd/config.toml)
    [[ $ver == 3 ]] || die "$node: wasmpod runtime missing from containerd's config (config version '$ver')"
    log "$node: containerd config is version 3; adding containerd-patch-v3.toml and restarting containerd"
    "$ENGINE" exec -i "$node" sh -c 'cat >> /etc/containerd/config.toml' < "$here/containerd-patch-v3.toml"
    "$ENGINE" exec "$node" systemctl restart containerd
    sleep 3
  fi
  # The mounted shim must run inside the node (same architecture, compatible libc).
  "$ENGINE" exec "$node" "$SHIM_IN_NODE" -v >/dev/null ||
    die "$node: $SHIM_IN_NODE does not run inside the node (wrong libc/arch? build it static or on Debian 12)"
  # Only now mark the node as able to run wasmpod pods.
  "$KUBECTL" --context "$CTX" label node "$node" --overwrite wasmpod.io/runtime=ready >/dev/null
  log "$node: shim answers; labelled wasmpod.io/runtime=ready"
done

"$KUBECTL" --context "$CTX" apply -f "$here/../cluster/manifests/runtimeclass.yaml" >/dev/null
log "RuntimeClass wasmpod applied. Use: kubectl --context $CTX ...  Load images:"
log "  kind load image-archive --name $KIND_CLUSTER app.tar   (OCI or docker archive)"
