#!/usr/bin/env bash
# usage: e2e/vm/run.sh [--cpus N] [--memory SIZE] [--rwdir [GUEST=]DIR]... [--network bridge=BR]
#                      [--disk IMAGE]... -- COMMAND [ARG...]
#
# Runs COMMAND as root on a cgroup v2 node: a VM booting Debian's kernel under qemu's software
# emulation (KVM cannot run a stock kernel on this machine; see e2e/vm/README.md), with this
# machine's root filesystem shared read-only, so everything built here (containerd, runc, the
# shim, test binaries) runs inside unchanged. Writes inside vanish with the VM, except under a
# --rwdir or on a --disk (a raw image: /dev/vda, /dev/vdb, ... in the guest, in that order).
# The caller's WASMPOD_*, CI and RUST_* variables and working directory carry over.
# The exit status is COMMAND's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cpus=2 memory=2G rwdirs=() net=() disks=()
while (($#)); do
  case $1 in
    --cpus) cpus=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --rwdir) rwdirs+=(--rwdir "$2"); shift 2 ;;
    --network) net=(--network "$2" --no-dhcp); shift 2 ;;
    --disk) disks+=(--disk "$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--cpus N] [--memory SIZE] [--rwdir [GUEST=]DIR]... [--network bridge=BR] [--disk IMAGE]... -- COMMAND" >&2; exit 2 ;;
  esac
done
(($#)) || { echo "$0: no command" >&2; exit 2; }

kernel=$("$here/kernel.sh")
command -v vng >/dev/null || { echo "$0: virtme-ng is not installed (scripts/install-deps.sh --vm)" >&2; exit 1; }

# What the guest needs from us travels in a file on a shared directory: vng's --exec takes one
# command line and passes no environment.
# Not under /tmp: the guest mounts a fresh tmpfs there.
# shellcheck source=../../scripts/paths.sh
source "$here/../../scripts/paths.sh"
# The guest mounts its own tmpfs on /tmp (guest.sh), hiding anything of ours there: a build
# cache or a clone under /tmp would fail inside the VM with "No such file or directory".
for p in "$WASMPOD_CACHE" "$PWD" "$here"; do
  case $(realpath -m "$p")/ in
    /tmp/*) echo "$0: $p is under /tmp, which the VM does not see: use another WASMPOD_CACHE or clone (e.g. under /var/tmp for the cache, /srv for a clone)" >&2; exit 1 ;;
  esac
done
# virtme-ng also mounts a tmpfs on /var/tmp: a clone there is not seen inside (the cache is, as it
# is shared explicitly below).
case $(realpath -m "$here")/ in
  /var/tmp/*) echo "$0: the checkout ($here) is under /var/tmp, which the VM does not see: clone it elsewhere (e.g. under /srv)" >&2; exit 1 ;;
esac
mkdir -p "$WASMPOD_CACHE/vm"
share=$(mktemp -d "$WASMPOD_CACHE/vm/job.XXXXXX")
trap 'rm -rf "$share"' EXIT
source "$here/job-script.sh"
vm_job_script set "$@" > "$share/job.sh"

# Multi-threaded TCG (one host thread per vCPU) with a bigger translation cache.
qemu_opts=${WASMPOD_VM_QEMU_OPTS:--accel tcg,thread=multi,tb-size=512}
# vng's qemu opens its stdout and stderr itself, truncating regular files: always pipe them.
# virtme-ng puts a tmpfs on /var/cache: guest.sh binds the build cache back, read-only.
vng --disable-kvm --run "$kernel" --cpus "$cpus" --memory "$memory" \
  --rodir "/mnt=$WASMPOD_CACHE" --rwdir "/media=$share" "${rwdirs[@]}" "${net[@]}" "${disks[@]}" \
  --qemu-opts="$qemu_opts" --exec "bash $here/guest.sh /media/job.sh $WASMPOD_CACHE" > >(cat) 2> >(cat >&2)
