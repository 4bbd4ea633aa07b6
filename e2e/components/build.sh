#!/usr/bin/env bash
# Builds wasmpod's Wasm test components into $WASMPOD_CACHE/components/<name>.wasm
# (default /var/cache/wasmpod/components). Idempotent: cargo does nothing when warm and a file
# is only replaced when its content changed. Prints nothing on success (the cargo log is shown
# only on failure); -v prints one line per component (name, size, sha256).
#
# usage: e2e/components/build.sh [-v] [--print-dir]
#
#   hello-cli      wasm32-wasip2 component, wasi:cli/run
#   hello-http     wasm32-wasip2 component, wasi:http/incoming-handler
#   hello-p1       wasm32-wasip1 core module (_start)
#   trap-start     component whose main panics (traps on unreachable)
#   memory-hog     component that allocates 16 MiB chunks until it dies
#   infinite-loop  component that spins without host calls
#   no-world       component exporting only wasmpod:fixtures/greeter (no run, no http handler)
#   http-get       wasm32-wasip2 command: GET each URL of $TARGET_URL with wasi:http/outgoing-handler
#   name-lookup    wasm32-wasip2 command: resolve each argument with wasi:sockets/ip-name-lookup
#   not-wasm       a shell script named .wasm
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../scripts/paths.sh"
CACHE=$WASMPOD_CACHE
out=$WASMPOD_COMPONENTS_DIR
verbose=0
case ${1:-} in
  -v|--verbose) verbose=1 ;;
  --print-dir) echo "$out"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [-v] [--print-dir]" >&2; exit 2 ;;
esac

export CARGO_TARGET_DIR=$CACHE/target-components
mkdir -p "$out" "$CARGO_TARGET_DIR"

installed=$(rustup target list --installed)
for t in wasm32-wasip2 wasm32-wasip1; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t" >/dev/null 2>&1 || rustup target add "$t"
done

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo_build() { # cargo_build TARGET PACKAGE...
  local target=$1; shift
  local pkgs=() p
  for p in "$@"; do pkgs+=(-p "$p"); done
  if ! (cd "$here" && nice cargo build --locked --release --target "$target" "${pkgs[@]}") >"$log" 2>&1; then
    cat "$log" >&2
    echo "build.sh: cargo build --target $target failed" >&2
    exit 1
  fi
}

p2=(hello-cli hello-http trap-start memory-hog infinite-loop no-world http-get name-lookup)
cargo_build wasm32-wasip2 "${p2[@]}"
cargo_build wasm32-wasip1 hello-p1

install_file() { # install_file SRC NAME
  local src=$1 dst=$out/$2.wasm
  if ! cmp -s "$src" "$dst"; then
    cp "$src" "$dst.tmp.$$" && mv -f "$dst.tmp.$$" "$dst"
  fi
  if ((verbose)); then
    printf '%-14s %8d bytes  sha256:%s\n' "$2" "$(stat -c %s "$dst")" "$(sha256sum "$dst" | cut -d' ' -f1)"
  fi
}

rel=$CARGO_TARGET_DIR/wasm32-wasip2/release
for name in hello-cli trap-start memory-hog infinite-loop http-get name-lookup; do # binaries keep their name
  install_file "$rel/$name.wasm" "$name"
done
for name in hello-http no-world; do # cdylibs are named with underscores
  install_file "$rel/${name//-/_}.wasm" "$name"
done
install_file "$CARGO_TARGET_DIR/wasm32-wasip1/release/hello-p1.wasm" hello-p1
install_file "$here/not-wasm/not-wasm.sh" not-wasm
