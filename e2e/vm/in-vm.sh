#!/usr/bin/env bash
# usage: in-vm.sh COMMAND [ARG...]   (a job on a VM that is already up: node-v2.sh run-job)
# What guest.sh does for a VM's first command, for a later one: the hot binaries of
# $WASMPOD_VM_RAM_COPY into RAM (those already there stay), then COMMAND.
set -euo pipefail
# shellcheck disable=SC2086  # a list of paths
"$(dirname "$0")/ram-copy.sh" ${WASMPOD_VM_RAM_COPY:-}
exec "$@"
