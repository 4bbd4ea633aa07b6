#!/usr/bin/env bash
# Builds the three images from images/*.Dockerfile with buildah (no Docker engine needed) out of
# static binaries built here, then optionally pushes them and writes docker archives.
#
#   images/build.sh                       build static binaries + both images
#   PUSH=127.0.0.1:5000 images/build.sh   ... and push them there over plain HTTP (the test bed)
#
# Images are named ghcr.io/wasmpod/<name>:<tag> (the chart's defaults) in buildah's local
# storage and in the archives ($CARGO_TARGET_DIR/images/<name>.tar, for `kind load
# image-archive`); pushed as $PUSH/<name>:<tag>.
#
# Variables: TAG (default: the workspace version), PUSH (registry host:port), SKIP_CARGO=1 (use
# the binaries already built), IMAGE_REPO (default ghcr.io/wasmpod), IMAGES (the images to build,
# default all three; the cluster tests need only wasmpod-activator).
#
# Binaries: the workspace build itself (`cargo build --release --workspace`), which is static
# (glibc, crt-static: see .cargo/config.toml), so the images carry exactly the binaries `make
# test` ran, and nothing is compiled twice. glibc 2.34+ has its files/dns name lookup built in,
# so the static operator resolves registry host names in an empty image.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/paths.sh"
TAG=${TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)}
IMAGE_REPO=${IMAGE_REPO:-ghcr.io/wasmpod}
PUSH=${PUSH:-}
bin=$WASMPOD_BIN_DIR
out=$CARGO_TARGET_DIR/images

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ensure_tools() {
  command -v buildah >/dev/null && return
  log "installing buildah"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends buildah >&2
}

build_binaries() {
  log "cargo build --release --workspace"
  (cd "$root" && nice cargo build --release --workspace)
}

# stage SRC DEST: copies a binary without debug info, after checking it is statically linked.
stage() {
  local src=$1 dest=$2
  [[ -x $src ]] || die "$src not built (run without SKIP_CARGO=1)"
  if readelf -d "$src" 2>/dev/null | grep -q '(NEEDED)'; then
    die "$src is dynamically linked: $(readelf -d "$src" | grep NEEDED | tr -s ' ' | cut -d' ' -f6 | tr '\n' ' ')"
  fi
  objcopy --strip-debug "$src" "$dest"
}

build_image() {
  local name=$1 ctx=$out/$1
  local ref=$IMAGE_REPO/$name:$TAG
  log "buildah build $ref"
  buildah build --quiet --isolation chroot --timestamp "$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)" \
    --build-arg "VERSION=$TAG" -f "$root/images/$name.Dockerfile" -t "$ref" "$ctx" >/dev/null
  rm -f "$out/$name.tar"
  buildah push --quiet "$ref" "docker-archive:$out/$name.tar:$ref" >/dev/null
  log "  $ref ($(du -h "$out/$name.tar" | cut -f1) archive: $out/$name.tar)"
  if [[ -n $PUSH ]]; then
    buildah push --quiet --tls-verify=false "$ref" "docker://$PUSH/$name:$TAG" >/dev/null
    log "  pushed $PUSH/$name:$TAG"
  fi
}

ensure_tools
[[ ${SKIP_CARGO:-} == 1 ]] || build_binaries
rm -rf "$out/wasmpod-operator" "$out/wasmpod-node-installer" "$out/wasmpod-activator"
mkdir -p "$out/wasmpod-operator" "$out/wasmpod-node-installer" "$out/wasmpod-activator"
stage "$bin/wasmpod-operator" "$out/wasmpod-operator/wasmpod-operator"
cp /etc/ssl/certs/ca-certificates.crt "$out/wasmpod-operator/" ||
  die "/etc/ssl/certs/ca-certificates.crt missing (apt-get install ca-certificates)"
stage "$bin/wasmpod-activator" "$out/wasmpod-activator/wasmpod-activator"
cp /etc/ssl/certs/ca-certificates.crt "$out/wasmpod-activator/"
stage "$bin/wasmpod-node-installer" "$out/wasmpod-node-installer/wasmpod-node-installer"
stage "$bin/containerd-shim-wasmpod-v1" "$out/wasmpod-node-installer/containerd-shim-wasmpod-v1"
# A smoke test of the staged binaries (stripped, static).
"$out/wasmpod-node-installer/containerd-shim-wasmpod-v1" -v >/dev/null || die "staged shim does not run"
"$out/wasmpod-operator/wasmpod-operator" --help >/dev/null || die "staged operator does not run"
"$out/wasmpod-activator/wasmpod-activator" --help >/dev/null || die "staged activator does not run"
for name in ${IMAGES:-wasmpod-operator wasmpod-activator wasmpod-node-installer}; do
  build_image "$name"
done
