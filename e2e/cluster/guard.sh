#!/usr/bin/env bash
# usage: guard.sh ensure|remove
# iptables rules that keep cluster traffic on this machine:
# - egress guard (the issue's requirement): packets for the pod (10.88/16) or service (10.96/16)
#   ranges that would leave through the uplink are REJECTed (filter OUTPUT for the host, FORWARD
#   for pods); without it, a ClusterIP with no kube-proxy rule yet, or a pod IP before cni0
#   exists, would be routed to the default gateway.
#   Subtlety: in OUTPUT, `-o` is the interface of the route chosen *before* kube-proxy's DNAT
#   (the default route, for a ClusterIP), although the DNATed packet then leaves through cni0.
#   So OUTPUT rejects pod-range packets only when they were not DNATed, and a backstop in mangle
#   POSTROUTING, where `-o` is the final interface, DROPs (REJECT is not allowed there) anything
#   of both ranges that really leaves through the uplink.
# - ingress guard: nothing arriving on the uplink may reach the cluster's ports or pods, because
#   the apiserver, kubelet and registry relay listen on the node IP (so pods can reach them).
# Our rules live in chains of their own, jumped to from the first position of the built-in chains
# (kube-proxy prepends its jumps when it starts, so `ensure` runs again after it and moves ours back
# on top). Only nf_tables `iptables`: never iptables-legacy.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"

OUT=WASMPOD-EGRESS-GUARD
BACKSTOP=WASMPOD-EGRESS-BACKSTOP
IN=WASMPOD-INGRESS-GUARD
# TCP ports of the cluster that listen beyond loopback: registry relay, apiserver, kubelet and
# kube-proxy health/metrics, NodePorts.
PORTS=$REGISTRY_PORT,$API_PORT,10248:10259,30000:32767

jump_first() { # jump_first TABLE BUILTIN TARGET...: the jumps to TARGETs become rules 1..n of BUILTIN
  local table=$1 chain=$2 want have t i; shift 2
  want=$(printf -- "-A $chain -j %s\n" "$@")
  have=$(iptables -t "$table" -S "$chain" | sed -n "2,$(($# + 1))p")
  [[ $have == "$want" ]] && return 0
  for t in "$@"; do while iptables -t "$table" -D "$chain" -j "$t" 2>/dev/null; do :; done; done
  i=1; for t in "$@"; do iptables -t "$table" -I "$chain" $i -j "$t"; i=$((i + 1)); done
}

new_chain() { # new_chain TABLE CHAIN: create it, or empty it to refill
  iptables -t "$1" -N "$2" 2>/dev/null || iptables -t "$1" -F "$2"
}

ensure() {
  [[ -n $UPLINK ]] || die "no default route: cannot tell the uplink interface"
  new_chain filter $OUT
  iptables -A $OUT -o "$UPLINK" -d "$CLUSTER_POD_CIDR" -m conntrack ! --ctstate DNAT -j REJECT
  iptables -A $OUT -o "$UPLINK" -d "$SVC_CIDR" -j REJECT
  # The cgroup v2 VM node (node-v2.sh) reaches nothing beyond this machine.
  iptables -A $OUT -i "$VM_BRIDGE" -o "$UPLINK" -j REJECT
  new_chain mangle $BACKSTOP
  iptables -t mangle -A $BACKSTOP -o "$UPLINK" -d "$CLUSTER_POD_CIDR" -j DROP
  iptables -t mangle -A $BACKSTOP -o "$UPLINK" -d "$SVC_CIDR" -j DROP
  new_chain filter $IN
  iptables -A $IN -i "$UPLINK" -p tcp -m multiport --dports "$PORTS" -j REJECT --reject-with tcp-reset
  iptables -A $IN -i "$UPLINK" -p udp -m multiport --dports 30000:32767 -j REJECT
  iptables -A $IN -i "$UPLINK" -d "$CLUSTER_POD_CIDR" -j REJECT   # forwarded (DNATed NodePort) traffic
  jump_first filter OUTPUT $OUT
  jump_first filter FORWARD $OUT $IN
  jump_first filter INPUT $IN
  jump_first mangle POSTROUTING $BACKSTOP
  log "egress/ingress guard in place on uplink $UPLINK"
}

remove() {
  local c t
  for c in OUTPUT FORWARD INPUT; do
    for t in $OUT $IN; do while iptables -D $c -j $t 2>/dev/null; do :; done; done
  done
  while iptables -t mangle -D POSTROUTING -j $BACKSTOP 2>/dev/null; do :; done
  for t in $OUT $IN; do
    if iptables -F $t 2>/dev/null; then iptables -X $t; fi
  done
  if iptables -t mangle -F $BACKSTOP 2>/dev/null; then iptables -t mangle -X $BACKSTOP; fi
}

case ${1:-} in
  ensure) ensure ;;
  remove) remove ;;
  *) echo "usage: $0 ensure|remove" >&2; exit 2 ;;
esac
