#!/usr/bin/env bash
# Puts wasmpod's own images in the local registry, for installing it on the test bed:
#   $REGISTRY/wasmpod-{operator,activator,node-installer}:<version>   (charts/wasmpod/ci/test-bed-values.yaml)
#   $REGISTRY/wasmpod/...:<version>   the same, as containerd resolves ghcr.io/wasmpod/... here
#                                     (every upstream registry is served locally), for deploy/
# plus the Wasm test images (wasm-images.sh). Images come from images/build.sh (the Dockerfiles,
# buildah) out of the workspace build; SKIP_CARGO=1 (default) takes the binaries `make` built.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"
root=$(dirname "$E2E_DIR")
tag=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)

SKIP_CARGO=${SKIP_CARGO:-1} PUSH=$REGISTRY "$root/images/build.sh"
for name in wasmpod-operator wasmpod-activator wasmpod-node-installer; do
  skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
    "docker://$REGISTRY/$name:$tag" "docker://$REGISTRY/wasmpod/$name:$tag" >/dev/null
done
log "wasmpod $tag images in $REGISTRY (also as ghcr.io/wasmpod/* through the local mirror)"
"$CLUSTER_DIR/wasm-images.sh" >/dev/null
