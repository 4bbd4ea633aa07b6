#!/usr/bin/env bash
# Packs the standard test images from the components that e2e/components/build.sh built, one
# OCI archive per image: $WASMPOD_CACHE/images/<component>-<kind>.tar (default cache
# /var/cache/wasmpod), named $WASMPOD_IMAGE_PREFIX/<component>:<kind> (default prefix
# 127.0.0.1:5000/wasmpod). Output is deterministic, so re-running changes nothing.
# Prints nothing but errors; -v prints "<archive> <reference> <manifest digest>" per image.
# --push also copies each archive to its reference's registry with skopeo (plain HTTP).
#
# usage: e2e/oci-pack/pack-fixtures.sh [-v] [--push]
#
# kinds: rootfs (gzip tar layer, /app.wasm), artifact (CNCF application/wasm), layer-bca
# (application/vnd.bytecodealliance.wasm.component.layer.v0+wasm), layer-spin
# (application/vnd.wasm.content.layer.v1+wasm), layer-module
# (application/vnd.module.wasm.content.layer.v1+wasm), layer-wasm (application/wasm under an
# ordinary image config), layer-unknown (application/vnd.example.unknown).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../scripts/paths.sh"
CACHE=$WASMPOD_CACHE
PREFIX=${WASMPOD_IMAGE_PREFIX:-127.0.0.1:5000/wasmpod}
verbose=0 push=0
for a in "$@"; do
  case $a in
    -v|--verbose) verbose=1 ;;
    --push) push=1 ;;
    *) echo "usage: $0 [-v] [--push]" >&2; exit 2 ;;
  esac
done

"$here/../components/build.sh"
pack=$("$here/build.sh")
comp=$CACHE/components
out=$CACHE/images
mkdir -p "$out"

one() { # one COMPONENT KIND oci-pack-args...
  local c=$1 kind=$2; shift 2
  local ref=$PREFIX/$c:$kind file=$out/$c-$kind.tar digest
  digest=$("$pack" "$@" --wasm "$comp/$c.wasm" --name "$ref" --out "$file")
  if ((push)); then
    skopeo copy -q --dest-tls-verify=false "oci-archive:$file" "docker://$ref" >/dev/null
  fi
  if ((verbose)); then echo "$file $ref $digest"; fi
}

for c in hello-cli hello-http; do
  one "$c" rootfs rootfs
  one "$c" artifact artifact
  one "$c" layer-bca layer --media-type application/vnd.bytecodealliance.wasm.component.layer.v0+wasm
  one "$c" layer-spin layer --media-type application/vnd.wasm.content.layer.v1+wasm
  one "$c" layer-module layer --media-type application/vnd.module.wasm.content.layer.v1+wasm
  one "$c" layer-wasm layer --media-type application/wasm
done
one hello-cli layer-unknown layer --media-type application/vnd.example.unknown
one hello-p1 rootfs rootfs
one hello-p1 artifact artifact
one hello-p1 layer-module layer --media-type application/vnd.module.wasm.content.layer.v1+wasm
for c in trap-start memory-hog infinite-loop no-world; do
  one "$c" rootfs rootfs
  one "$c" artifact artifact
done
one not-wasm rootfs rootfs
one not-wasm layer-bca layer --media-type application/vnd.bytecodealliance.wasm.component.layer.v0+wasm
