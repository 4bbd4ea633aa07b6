#!/usr/bin/env bash
# Builds the host tool `oci-pack` into $WASMPOD_CACHE/target-tools (default
# /var/cache/wasmpod/target-tools) and prints the binary's path on stdout; nothing else unless
# the build fails (then cargo's log goes to stderr). Warm runs take well under a second.
#
# usage: e2e/oci-pack/build.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../scripts/paths.sh"
export CARGO_TARGET_DIR=$WASMPOD_TOOLS_TARGET_DIR
mkdir -p "$CARGO_TARGET_DIR"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! (cd "$here" && nice cargo build --locked --release --bin oci-pack) >"$log" 2>&1; then
  cat "$log" >&2
  echo "oci-pack/build.sh: cargo build failed" >&2
  exit 1
fi
echo "$WASMPOD_TOOLS_BIN_DIR/oci-pack"
