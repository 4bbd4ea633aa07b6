#!/usr/bin/env bash
# Writes the pod network config: one bridge ($BRIDGE) with host-local IPAM over
# $POD_CIDR, the host as gateway (so the host reaches pod IPs and, through kube-proxy, ClusterIPs),
# masquerading for pod->outside, hairpin so a pod reaches itself through its own Service, portmap
# for hostPort. IPAM leases live under the cluster state dir, not the shared /var/lib/cni.
# containerd reports NetworkReady (and the node turns Ready) only once this file exists.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"

mkdir -p "$CNI_CONF_DIR" "$CNI_IPAM_DIR"
f=$CNI_CONF_DIR/10-$CNI_NETWORK.conflist
cat > "$f.tmp" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CNI_IPAM_DIR",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
install_if_changed "$f.tmp" "$f"   # containerd watches this dir
