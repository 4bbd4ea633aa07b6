#!/usr/bin/env bash
# Prints the chart values no file in the repo can hold, because they name paths of this checkout
# and of the running containerd line: the installer's restart command and containerd binary.
# Use beside charts/wasmpod/ci/test-bed-values.yaml:
#   helm install ... -f charts/wasmpod/ci/test-bed-values.yaml -f <(e2e/cluster/helm-values.sh)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cat <<YAML
installer:
  containerd:
    restartCommand: $CLUSTER_DIR/restart-containerd.sh
    checkConfigCommand: $CONTAINERD_BIN/containerd --config {config} config dump
YAML
