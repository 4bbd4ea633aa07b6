#!/usr/bin/env bash
# Builds the two images from images/*.Dockerfile with buildah (no Docker engine needed) out of
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
# the binaries already built), IMAGE_REPO (default ghcr.io/wasmpod).
#
# Binaries: the operator and the installer for x86_64-unknown-linux-musl (static, musl's DNS
# resolver works in a scratch image); the shim for x86_64-unknown-linux-gnu with crt-static
# (static glibc: wasmtime keeps glibc's allocator; the shim resolves no host names). Both
# --target builds live in their own target subdirectories, so the ordinary (dynamic) build in
# $CARGO_TARGET_DIR/release is not disturbed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/wasmpod/target}
TAG=${TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)}
IMAGE_REPO=${IMAGE_REPO:-ghcr.io/wasmpod}
PUSH=${PUSH:-}
MUSL=x86_64-unknown-linux-musl
GNU=x86_64-unknown-linux-gnu
out=$CARGO_TARGET_DIR/images

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ensure_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v musl-gcc >/dev/null || missing+=(musl-tools)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
  fi
  rustup target list --installed | grep -qx "$MUSL" || rustup target add "$MUSL" >&2
}

build_binaries() {
  log "cargo build --release --target $MUSL (operator, installer)"
  (cd "$root" && nice cargo build --release --target "$MUSL" \
    -p wasmpod-operator -p wasmpod-node-installer --bin wasmpod-operator --bin wasmpod-node-installer)
  log "cargo build --release --target $GNU with crt-static (shim)"
  (cd "$root" && RUSTFLAGS='-C target-feature=+crt-static' nice cargo build --release --target "$GNU" \
    -p wasmpod-shim --bin containerd-shim-wasmpod-v1)
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
rm -rf "$out/wasmpod-operator" "$out/wasmpod-node-installer"
mkdir -p "$out/wasmpod-operator" "$out/wasmpod-node-installer"
stage "$CARGO_TARGET_DIR/$MUSL/release/wasmpod-operator" "$out/wasmpod-operator/wasmpod-operator"
cp /etc/ssl/certs/ca-certificates.crt "$out/wasmpod-operator/" ||
  die "/etc/ssl/certs/ca-certificates.crt missing (apt-get install ca-certificates)"
stage "$CARGO_TARGET_DIR/$MUSL/release/wasmpod-node-installer" "$out/wasmpod-node-installer/wasmpod-node-installer"
stage "$CARGO_TARGET_DIR/$GNU/release/containerd-shim-wasmpod-v1" "$out/wasmpod-node-installer/containerd-shim-wasmpod-v1"
# The staged shim must run outside the build machine's libc: a smoke test of -v.
"$out/wasmpod-node-installer/containerd-shim-wasmpod-v1" -v >/dev/null || die "staged shim does not run"
build_image wasmpod-operator
build_image wasmpod-node-installer
