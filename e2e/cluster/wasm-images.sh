#!/usr/bin/env bash
# Builds the Wasm test images of the cluster tests and pushes them to the local registry:
#   $REGISTRY/wasmpod-test/wasm-http:rootfs     hello-http, FROM-scratch style (entrypoint file)
#   $REGISTRY/wasmpod-test/wasm-http:artifact   hello-http as the CNCF Wasm OCI artifact
#   $REGISTRY/wasmpod-test/wasm-http:layer      hello-http in a component layer
#   $REGISTRY/wasmpod-test/http-get:rootfs      http-get, a command fetching $TARGET_URL
#   $REGISTRY/wasmpod-test/memory-hog:rootfs    memory-hog, a command allocating until refused
#   $REGISTRY/wasmpod-test/kv-counter:rootfs    kv-counter, an HTTP handler over wasi:keyvalue + config
#   $REGISTRY/wasmpod-test/kv-counter-py:rootfs the same in Python (componentize-py)
# Prints `NAME=reference` lines for the tests. Idempotent and quick when warm.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"

"$E2E_DIR/components/build.sh"
pack=$("$E2E_DIR/oci-pack/build.sh")
comp=$("$E2E_DIR/components/build.sh" --print-dir)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
push() { # push NAME ARCHIVE
  skopeo copy -q --dest-tls-verify=false "oci-archive:$2" "docker://$1" >/dev/null
}
img=$REGISTRY/wasmpod-test
"$pack" rootfs --wasm "$comp/hello-http.wasm" --entrypoint /http.wasm --name "$img/wasm-http:rootfs" --out "$work/a.tar" >/dev/null
"$pack" artifact --wasm "$comp/hello-http.wasm" --name "$img/wasm-http:artifact" --out "$work/b.tar" >/dev/null
"$pack" layer --wasm "$comp/hello-http.wasm" --media-type application/vnd.bytecodealliance.wasm.component.layer.v0+wasm --name "$img/wasm-http:layer" --out "$work/c.tar" >/dev/null
"$pack" rootfs --wasm "$comp/http-get.wasm" --entrypoint /get.wasm --name "$img/http-get:rootfs" --out "$work/d.tar" >/dev/null
"$pack" rootfs --wasm "$comp/memory-hog.wasm" --entrypoint /hog.wasm --name "$img/memory-hog:rootfs" --out "$work/e.tar" >/dev/null
"$pack" rootfs --wasm "$comp/kv-counter.wasm" --entrypoint /http.wasm --name "$img/kv-counter:rootfs" --out "$work/f.tar" >/dev/null
"$pack" rootfs --wasm "$comp/kv-counter-py.wasm" --entrypoint /http.wasm --name "$img/kv-counter-py:rootfs" --out "$work/g.tar" >/dev/null
push "$img/wasm-http:rootfs" "$work/a.tar"
push "$img/wasm-http:artifact" "$work/b.tar"
push "$img/wasm-http:layer" "$work/c.tar"
push "$img/http-get:rootfs" "$work/d.tar"
push "$img/memory-hog:rootfs" "$work/e.tar"
push "$img/kv-counter:rootfs" "$work/f.tar"
push "$img/kv-counter-py:rootfs" "$work/g.tar"
echo "WASM_HTTP_IMAGE=$img/wasm-http:rootfs"
echo "WASM_ARTIFACT_IMAGE=$img/wasm-http:artifact"
echo "WASM_LAYER_IMAGE=$img/wasm-http:layer"
echo "WASM_CLIENT_IMAGE=$img/http-get:rootfs"
echo "WASM_HOG_IMAGE=$img/memory-hog:rootfs"
echo "WASM_KV_IMAGE=$img/kv-counter:rootfs"
echo "WASM_KV_PY_IMAGE=$img/kv-counter-py:rootfs"

