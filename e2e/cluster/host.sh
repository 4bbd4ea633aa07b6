#!/usr/bin/env bash
# usage: host.sh prepare|restore
# Host preparation (run on every cluster-up: nothing here survives a reboot) and its undo.
# `prepare` records what it changes under $STATE/host so `restore` puts back exactly that.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"

SAVED=$STATE/host
# Kernel settings kubelet rewrites at start (container_manager_linux.go setupKernelTunables) or we set.
SYSCTLS="net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
kernel.keys.root_maxkeys kernel.keys.root_maxbytes"

prepare() {
  # Everything the scripts and the node need, installed only when missing (CI starts from scratch).
  ensure_packages runc containernetworking-plugins docker-registry skopeo busybox-static iptables \
    iproute2 nftables jq curl socat gcc libc6-dev openssl python3 util-linux mount
  mkdir -p "$SAVED"
  local k
  if [[ ! -e $SAVED/sysctl ]]; then
    for k in $SYSCTLS; do echo "$k=$(sysctl -n "$k")"; done > "$SAVED/sysctl"
  fi
  sysctl -qw net.ipv4.ip_forward=1    # pods route through the host (bridge plugin also sets it)
  # br_netfilter is built into this kernel (no modules); Services break silently without it.
  [[ $(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null) == 1 ]] ||
    sysctl -qw net.bridge.bridge-nf-call-iptables=1 ||
    die "bridge netfilter unavailable: kube-proxy rules would not see bridged pod traffic"
  # / is "private" here; hostPath volumes with mount propagation need it shared (kind's fix_mount).
  if [[ ! -e $SAVED/root-propagation ]]; then
    findmnt -no PROPAGATION / > "$SAVED/root-propagation"
  fi
  mount --make-rshared /
  # In this cgroup v1 hybrid host hugetlb sits in the v2 hierarchy; crun (and the shim's runc
  # delegate) want all controllers on v1, so mount hugetlb as v1.
  if [[ -d /sys/fs/cgroup/cpu ]] && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
    mkdir -p /sys/fs/cgroup/hugetlb
    if mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null; then
      touch "$SAVED/hugetlb-mounted"
    else
      rmdir /sys/fs/cgroup/hugetlb 2>/dev/null || true
      log "note: could not mount the hugetlb cgroup v1 controller; continuing without it"
    fi
  fi
  # Paths kubelet creates outside its --root-dir (the device-plugin socket dir is hard-coded) and
  # nf_tables tables iptables-nft creates on first use: remember which did not exist before us.
  if [[ ! -e $SAVED/nft-tables ]]; then
    nft list tables > "$SAVED/nft-tables" 2>/dev/null || true
    [[ -e /var/lib/kubelet ]] || touch "$SAVED/created-var-lib-kubelet"
    # The wasmpod shim keeps its runc state in /run/wasmpod (shared with other containerds).
    [[ -e /run/wasmpod ]] || touch "$SAVED/created-run-wasmpod"
  fi
  "$CLUSTER_DIR/guard.sh" ensure
}

# Drop the nf_tables tables that appeared with the cluster, when nothing but empty built-in chains
# is left in them (another user's rules keep a table alive).
remove_new_nft_tables() {
  local t
  nft list tables 2>/dev/null | while read -r t; do
    grep -qxF "$t" "$SAVED/nft-tables" && continue
    # $t is "table FAMILY NAME"; a line other than table/chain/type/brace is a rule: keep the table.
    nft list $t 2>/dev/null | grep -Evq '^\s*(table |chain |type |\}|$)' && continue
    nft delete $t 2>/dev/null || true
  done
}

restore() {
  "$CLUSTER_DIR/guard.sh" remove
  [[ -d $SAVED ]] || return 0
  if [[ -e $SAVED/hugetlb-mounted ]]; then
    rmdir /sys/fs/cgroup/hugetlb/* 2>/dev/null || true
    if umount /sys/fs/cgroup/hugetlb 2>/dev/null; then rmdir /sys/fs/cgroup/hugetlb 2>/dev/null || true; fi
  fi
  if [[ -s $SAVED/root-propagation ]]; then
    case $(head -1 "$SAVED/root-propagation") in
      private) mount --make-rprivate / ;;
      shared) ;;
      *) log "note: leaving / shared (it was $(cat "$SAVED/root-propagation"))" ;;
    esac
  fi
  [[ -e $SAVED/nft-tables ]] && remove_new_nft_tables
  [[ -e $SAVED/created-var-lib-kubelet ]] && rm -rf /var/lib/kubelet
  # Only empty dirs: anything left inside belongs to a shim of another containerd.
  [[ -e $SAVED/created-run-wasmpod && -d /run/wasmpod ]] && find /run/wasmpod -depth -type d -empty -delete
  if [[ -s $SAVED/sysctl ]]; then
    while IFS='=' read -r k v; do sysctl -qw "$k=$v" 2>/dev/null || true; done < "$SAVED/sysctl"
  fi
  rm -rf "$SAVED"
}

case ${1:-} in
  prepare) prepare ;;
  restore) restore ;;
  *) echo "usage: $0 prepare|restore" >&2; exit 2 ;;
esac
