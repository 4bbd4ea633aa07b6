#!/usr/bin/env bash
# Prints the kernel the cgroup v2 VM boots: the newest Debian kernel installed in /boot
# (linux-image-amd64, installed by scripts/install-deps.sh; it is never the running kernel).
set -euo pipefail
k=$(ls -1 /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n1)
[[ -n $k && -d /lib/modules/${k#/boot/vmlinuz-} ]] ||
  { echo "no Debian kernel with modules in /boot (apt-get install linux-image-amd64)" >&2; exit 1; }
echo "$k"
