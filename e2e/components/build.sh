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
#   name-lookup    wasm32-wasip2 command: resolve each argument with wasi:sockets/ip-name-lookup,
#                  or open a TCP connection to connect:IPV4:PORT
#   not-wasm       a shell script named .wasm
#   kv-counter     wasm32-wasip2 component, wasi:http/incoming-handler over wasi:keyvalue + wasi:config
#   kv-counter-py  the same in Python (componentize-py): rebuilt only when its inputs changed
#
# componentize-py (pinned, $CPY_VERSION) is pip-installed once into a venv of its own,
# $WASMPOD_CACHE/tools/componentize-py-<version> (python3 with venv and PyPI needed only then).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
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

p2=(hello-cli hello-http trap-start memory-hog infinite-loop no-world http-get name-lookup kv-counter)
cargo_build wasm32-wasip2 "${p2[@]}"
cargo_build wasm32-wasip1 hello-p1

install_file() { # install_file SRC NAME
  local src=$1 dst=$out/$2.wasm
  if ! cmp -s "$src" "$dst"; then
    cp "$src" "$dst.tmp.$$" && mv -f "$dst.tmp.$$" "$dst"
  fi
  show_file "$2"
}
show_file() { # show_file NAME: with -v, NAME's size and digest
  local dst=$out/$1.wasm
  if ((verbose)); then
    printf '%-14s %8d bytes  sha256:%s\n' "$1" "$(stat -c %s "$dst")" "$(sha256sum "$dst" | cut -d' ' -f1)"
  fi
}

rel=$CARGO_TARGET_DIR/wasm32-wasip2/release
for name in hello-cli trap-start memory-hog infinite-loop http-get name-lookup; do # binaries keep their name
  install_file "$rel/$name.wasm" "$name"
done
for name in hello-http no-world kv-counter; do # cdylibs are named with underscores
  install_file "$rel/${name//-/_}.wasm" "$name"
done
install_file "$CARGO_TARGET_DIR/wasm32-wasip1/release/hello-p1.wasm" hello-p1
install_file "$here/not-wasm/not-wasm.sh" not-wasm

# kv-counter-py: a Python component, built with componentize-py. Slow (tens of seconds), so it
# is rebuilt only when the digest of its inputs (its sources, its WIT and runtime/wit, the
# tool's version and arguments) differs from the one saved beside the output.
CPY_VERSION=0.25.1
cpy_venv=$CACHE/tools/componentize-py-$CPY_VERSION
cpy=$cpy_venv/bin/componentize-py
cpy_args=(
  -q -d ../../../runtime/wit -d wit -w wasmpod:kv-counter-py/kv-counter-py # run in kv-counter-py/
  # Both keyvalue and config call their interface `store`: name the Python modules.
  --import-interface-name wasi:keyvalue/store@0.2.0-draft=kv_store
  --import-interface-name wasi:keyvalue/atomics@0.2.0-draft=kv_atomics
  --import-interface-name wasi:keyvalue/batch@0.2.0-draft=kv_batch
  --import-interface-name wasi:config/store@0.2.0-rc.1=config_store
  componentize app
)
py_inputs=$(cd "$root" && {
  echo "componentize-py $CPY_VERSION ${cpy_args[*]}"
  find e2e/components/kv-counter-py runtime/wit -type f \( -name '*.py' -o -name '*.wit' \) \
    | LC_ALL=C sort | xargs sha256sum
} | sha256sum | cut -d' ' -f1)
py_stamp=$out/kv-counter-py.inputs
if [[ ! -f $out/kv-counter-py.wasm || $(cat "$py_stamp" 2>/dev/null) != "$py_inputs" ]]; then
  # The marker file is written last: a venv from an interrupted install is made anew.
  if [[ ! -f $cpy_venv/.installed ]]; then
    rm -rf "$cpy_venv"
    if ! { python3 -m venv "$cpy_venv" &&
      "$cpy_venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$CPY_VERSION"; } >"$log" 2>&1; then
      cat "$log" >&2
      echo "build.sh: installing componentize-py $CPY_VERSION into $cpy_venv failed" >&2
      exit 1
    fi
    # An empty site-packages for the build (componentize-py adds $VIRTUAL_ENV's to the
    # component's Python path, else python3's): the app uses only the standard library.
    mkdir -p "$cpy_venv/no-site/lib/site-packages"
    touch "$cpy_venv/.installed"
  fi
  tmp=$out/kv-counter-py.wasm.tmp.$$
  if ! (cd "$here/kv-counter-py" && VIRTUAL_ENV=$cpy_venv/no-site PYTHONDONTWRITEBYTECODE=1 \
      nice "$cpy" "${cpy_args[@]}" -o "$tmp") >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$tmp"
    echo "build.sh: componentize-py failed for kv-counter-py" >&2
    exit 1
  fi
  mv -f "$tmp" "$out/kv-counter-py.wasm"
  echo "$py_inputs" >"$py_stamp"
fi
show_file kv-counter-py
