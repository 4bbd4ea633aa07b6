#!/usr/bin/env bash
# The one home of wasmpod's build output paths (caches live outside the clone, so warm runs are
# fast). Sourced by scripts, it sets the variables below (each can be overridden from the
# environment); run as `scripts/paths.sh NAME` it prints one of them, for make and the tests.
#
#   cache            WASMPOD_CACHE              /var/cache/wasmpod
#   target           CARGO_TARGET_DIR           $WASMPOD_CACHE/target (the workspace build)
#   triple           WASMPOD_TARGET_TRIPLE      [build] target of .cargo/config.toml
#   bin              WASMPOD_BIN_DIR            the workspace's release binaries (shim, operator,
#                                               node installer): the ones the images carry
#   shim             WASMPOD_SHIM               $WASMPOD_BIN_DIR/containerd-shim-wasmpod-v1
#   operator         WASMPOD_OPERATOR           $WASMPOD_BIN_DIR/wasmpod-operator
#   activator        WASMPOD_ACTIVATOR          $WASMPOD_BIN_DIR/wasmpod-activator
#   tools-target     WASMPOD_TOOLS_TARGET_DIR   $WASMPOD_CACHE/target-tools (e2e/oci-pack)
#   tools-bin        WASMPOD_TOOLS_BIN_DIR      its release binaries (oci-pack)
#   components       WASMPOD_COMPONENTS_DIR     $WASMPOD_CACHE/components (Wasm test components)
# shellcheck shell=bash

_paths_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WASMPOD_CACHE=${WASMPOD_CACHE:-/var/cache/wasmpod}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WASMPOD_CACHE/target}
WASMPOD_TARGET_TRIPLE=${WASMPOD_TARGET_TRIPLE:-$(sed -n 's/^target *= *"\(.*\)"/\1/p' "$_paths_root/.cargo/config.toml" | head -n1)}
WASMPOD_BIN_DIR=${WASMPOD_BIN_DIR:-$CARGO_TARGET_DIR/$WASMPOD_TARGET_TRIPLE/release}
WASMPOD_SHIM=${WASMPOD_SHIM:-$WASMPOD_BIN_DIR/containerd-shim-wasmpod-v1}
WASMPOD_OPERATOR=${WASMPOD_OPERATOR:-$WASMPOD_BIN_DIR/wasmpod-operator}
WASMPOD_ACTIVATOR=${WASMPOD_ACTIVATOR:-$WASMPOD_BIN_DIR/wasmpod-activator}
WASMPOD_TOOLS_TARGET_DIR=${WASMPOD_TOOLS_TARGET_DIR:-$WASMPOD_CACHE/target-tools}
WASMPOD_TOOLS_BIN_DIR=${WASMPOD_TOOLS_BIN_DIR:-$WASMPOD_TOOLS_TARGET_DIR/$WASMPOD_TARGET_TRIPLE/release}
WASMPOD_COMPONENTS_DIR=${WASMPOD_COMPONENTS_DIR:-$WASMPOD_CACHE/components}
export WASMPOD_CACHE CARGO_TARGET_DIR WASMPOD_TARGET_TRIPLE WASMPOD_BIN_DIR WASMPOD_SHIM \
  WASMPOD_OPERATOR WASMPOD_ACTIVATOR WASMPOD_TOOLS_TARGET_DIR WASMPOD_TOOLS_BIN_DIR WASMPOD_COMPONENTS_DIR
unset _paths_root

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  case ${1:-} in
    cache) echo "$WASMPOD_CACHE" ;;
    target) echo "$CARGO_TARGET_DIR" ;;
    triple) echo "$WASMPOD_TARGET_TRIPLE" ;;
    bin) echo "$WASMPOD_BIN_DIR" ;;
    shim) echo "$WASMPOD_SHIM" ;;
    operator) echo "$WASMPOD_OPERATOR" ;;
    activator) echo "$WASMPOD_ACTIVATOR" ;;
    tools-target) echo "$WASMPOD_TOOLS_TARGET_DIR" ;;
    tools-bin) echo "$WASMPOD_TOOLS_BIN_DIR" ;;
    components) echo "$WASMPOD_COMPONENTS_DIR" ;;
    *) echo "usage: $0 cache|target|triple|bin|shim|operator|activator|tools-target|tools-bin|components" >&2; exit 2 ;;
  esac
fi
