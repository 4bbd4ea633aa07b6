#!/usr/bin/env bash
# Runs inside the VM of e2e/vm/run.sh as its first command: makes the guest a usable node,
# then runs the job file's command.
set -euo pipefail
job=$1 cache=$2
mkdir -p "$cache" && mount --bind /mnt "$cache"
# The caller's environment, working directory and command.
# shellcheck disable=SC1090
source "$job"
# /tmp and containerd's usual dirs are overlays on a 9p root: overlayfs cannot use them as an
# upper directory for containers' rootfs, so give them real tmpfs.
for d in /tmp /var/lib/containerd /run/containerd /var/lib/wasmpod; do
  mkdir -p "$d" && mount -t tmpfs -o mode=1777 tmpfs "$d"
done
for m in overlay veth bridge br_netfilter nf_tables nft_chain_nat nft_compat nf_nat nf_conntrack \
  xt_conntrack xt_MASQUERADE xt_mark xt_comment iptable_nat iptable_filter ip_tables vxlan; do
  modprobe -q "$m" 2>/dev/null || true
done
ip link set lo up
# What runs again and again, into RAM (ram-copy.sh says why).
# shellcheck disable=SC2086  # a list of paths
"$(dirname "$0")/ram-copy.sh" ${WASMPOD_VM_RAM_COPY:-}
echo "wasmpod-vm: $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup), $(nproc) cpus" >&2
exec "$@"
