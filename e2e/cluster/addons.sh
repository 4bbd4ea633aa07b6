#!/usr/bin/env bash
# Cluster add-ons, applied on every cluster-up (kubectl apply is idempotent): CoreDNS, the wasmpod
# RuntimeClass, the in-cluster name of the local registry. Also sets or clears the node label
# wasmpod.io/runtime=ready depending on whether the shim binary answers (the label is set
# only where the shim works; the RuntimeClass schedules onto it).
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"

render() { # render FILE: substitutes @VARS@ from env.sh
  sed -e "s|@REGISTRY@|$REGISTRY|g" -e "s|@REGISTRY_PORT@|$REGISTRY_PORT|g" -e "s|@NODE_IP@|$NODE_IP|g" \
      -e "s|@DNS_IP@|$DNS_IP|g" -e "s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|g" \
      -e "s|@COREDNS_VERSION@|$COREDNS_VERSION|g" "$1"
}

manifests=(coredns registry-service)
# Bare (WASMPOD_BARE=1): the RuntimeClass and the node label are the chart's and the installer's.
((WASMPOD_BARE)) || manifests+=(runtimeclass)
for m in "${manifests[@]}"; do
  render "$CLUSTER_DIR/manifests/$m.yaml"; echo '---'
done | $KUBECTL apply -f - >&2

if ((WASMPOD_BARE)); then
  log "bare cluster: no RuntimeClass wasmpod or node label until wasmpod is installed"
elif [[ -x $WASMPOD_SHIM ]] && "$WASMPOD_SHIM" -v >/dev/null 2>&1; then
  $KUBECTL label node "$NODE_NAME" --overwrite wasmpod.io/runtime=ready >/dev/null
  log "shim $WASMPOD_SHIM answers: node labelled wasmpod.io/runtime=ready"
else
  $KUBECTL label node "$NODE_NAME" wasmpod.io/runtime- >/dev/null 2>&1 || true
  log "shim $WASMPOD_SHIM not present (or not answering -v): wasmpod pods will not be scheduled"
fi
