#!/usr/bin/env bash
# Network leftovers of the cluster, removed after its pods and daemons are gone (down.sh):
# - veths still enslaved to the bridge, then the bridge itself;
# - iptables/ip6tables chains named KUBE-* (kube-proxy, kubelet canaries) and CNI-* (bridge ipMasq,
#   portmap), with every rule that jumps to them. The egress/ingress guard is host.sh's job.
# Known limit: a CNI-* chain of another CNI user on this host would go too; nothing else here uses CNI.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"

if ip link show "$BRIDGE" >/dev/null 2>&1; then
  for v in $(ip -o link show master "$BRIDGE" | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$v" 2>/dev/null || true
  done
  ip link del "$BRIDGE" && log "removed bridge $BRIDGE"
fi

ours='^(KUBE|CNI)-'
for ipt in iptables ip6tables; do
  command -v $ipt >/dev/null || continue
  for t in filter nat mangle raw; do
    rules=$($ipt -t $t -S 2>/dev/null) || continue
    # 1. rules in other chains that jump to ours (e.g. -A FORWARD -j KUBE-FORWARD)
    while read -r -a r; do
      [[ ${r[0]:-} == -A && ! ${r[1]} =~ $ours ]] || continue
      for ((i = 2; i < ${#r[@]} - 1; i++)); do
        if [[ ${r[i]} == -j && ${r[i+1]} =~ $ours ]]; then
          # The -S line minus "-A" is the rule spec; eval undoes the quoting of comments.
          eval "$ipt -t $t -D ${r[*]:1}" 2>/dev/null || true
          break
        fi
      done
    done <<< "$rules"
    # 2. our chains: flush all first (they jump to each other), then delete them
    chains=$(awk '$1 == "-N" {print $2}' <<< "$rules" | grep -E "$ours" || true)
    for c in $chains; do $ipt -t $t -F "$c" 2>/dev/null || true; done
    for c in $chains; do $ipt -t $t -X "$c" 2>/dev/null || true; done
  done
done
log "removed KUBE-*/CNI-* iptables chains"
