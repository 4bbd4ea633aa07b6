#!/usr/bin/env bash
# Builds the cluster's own images as OCI archives in $IMAGE_CACHE, from static binaries made or
# installed on this machine (nothing can be pulled from the internet):
#   pause       registry.k8s.io/pause:3.10 name (the sandbox image containerd is configured with)
#   busybox     Debian's busybox-static, all applets linked in /bin: shell, wget, nslookup for tests
#   coredns     the CoreDNS binary built by e2e/build-deps.sh
#   hello-http  a tiny static C HTTP server (test workload under runc)
#   redis       Debian's redis-server and redis-cli with the shared libraries they link (key-value
#               tests)
# An archive is rebuilt only when one of its inputs changed (stamp = hash of inputs), so the
# warm path costs a few sha256sums. Prints nothing on stdout.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
source "$CLUSTER_DIR/lib.sh"

IMG=$CLUSTER_DIR/images
mkdir -p "$IMAGE_CACHE"
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT

# An archive's stamp hashes its inputs plus this script and mkimage.py.
stamp_of() { cat "$IMG/mkimage.py" "$0" "$@" | sha256sum | cut -d' ' -f1; }
up_to_date() { # up_to_date NAME INPUT...
  local n=$1; shift
  [[ -s $IMAGE_CACHE/$n.tar && $(cat "$IMAGE_CACHE/$n.stamp" 2>/dev/null) == "$(stamp_of "$@")" ]]
}
done_stamp() { local n=$1; shift; stamp_of "$@" > "$IMAGE_CACHE/$n.stamp"; }

cc_static() { # cc_static SRC OUT
  gcc -static -Os -Wall -Wextra -o "$2" "$1" && strip "$2"
}

build_pause() {
  up_to_date pause "$IMG/pause.c" && return 0
  log "building image $PAUSE_IMAGE"
  cc_static "$IMG/pause.c" "$WORK/pause"
  python3 "$IMG/mkimage.py" --out "$IMAGE_CACHE/pause.tar" --name "$PAUSE_IMAGE" \
    --add "$WORK/pause:/pause:0755" --entrypoint /pause >/dev/null
  done_stamp pause "$IMG/pause.c"
}

build_hello() {
  up_to_date hello-http "$IMG/hello-http.c" && return 0
  log "building image $REGISTRY/wasmpod-test/hello-http:v1"
  cc_static "$IMG/hello-http.c" "$WORK/hello-http"
  python3 "$IMG/mkimage.py" --out "$IMAGE_CACHE/hello-http.tar" --name "$REGISTRY/wasmpod-test/hello-http:v1" \
    --add "$WORK/hello-http:/hello-http:0755" --entrypoint /hello-http --port 8080 >/dev/null
  done_stamp hello-http "$IMG/hello-http.c"
}

build_busybox() {
  local bb=/bin/busybox a args=()
  up_to_date busybox "$bb" && return 0
  log "building image $REGISTRY/library/busybox:1.35 from Debian busybox-static"
  for a in $("$bb" --list); do [[ $a == busybox ]] || args+=(--symlink "/bin/$a:busybox"); done
  python3 "$IMG/mkimage.py" --out "$IMAGE_CACHE/busybox.tar" --name "$REGISTRY/library/busybox:1.35" \
    --add "$bb:/bin/busybox:0755" "${args[@]}" --dir /tmp --dir /etc --cmd sh >/dev/null
  done_stamp busybox "$bb"
}

build_coredns() {
  local bin=$COREDNS_BIN/coredns
  [[ -x $bin ]] || die "CoreDNS not built: run e2e/build-deps.sh coredns"
  up_to_date coredns "$bin" && return 0
  log "building image $REGISTRY/coredns/coredns:v$COREDNS_VERSION"
  python3 "$IMG/mkimage.py" --out "$IMAGE_CACHE/coredns.tar" --name "$REGISTRY/coredns/coredns:v$COREDNS_VERSION" \
    --add "$bin:/coredns:0755" --entrypoint /coredns --port 53 >/dev/null
  done_stamp coredns "$bin"
}

build_redis() {
  local bin=/usr/bin/redis-server cli=/usr/bin/redis-cli lib args=()
  [[ -x $bin && -x $cli ]] || die "redis-server not installed: run make deps"
  local libs
  libs=$(ldd "$bin" "$cli" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u)
  # shellcheck disable=SC2086 # one library path per word
  up_to_date redis "$bin" "$cli" $libs && return 0
  log "building image $REGISTRY/wasmpod-test/redis:7 from Debian redis-server"
  for lib in $libs; do args+=(--add "$(readlink -f "$lib"):$lib:0755"); done
  python3 "$IMG/mkimage.py" --out "$IMAGE_CACHE/redis.tar" --name "$REGISTRY/wasmpod-test/redis:7" \
    --add "$bin:/usr/bin/redis-server:0755" --add "$cli:/usr/bin/redis-cli:0755" "${args[@]}" --dir /data --dir /tmp \
    --entrypoint /usr/bin/redis-server --port 6379 >/dev/null
  # shellcheck disable=SC2086
  done_stamp redis "$bin" "$cli" $libs
}

build_pause
build_hello
build_redis
build_busybox
build_coredns
