#!/usr/bin/env bash
# `make cluster-config-check`: renders the cluster's containerd config for CONTAINERD=2 and 1.7 into
# a scratch dir and has the real containerd binary of each line load it (`containerd config dump`,
# which applies containerd's own parsing and v2->v3 migration), then checks the effective settings
# that matter: the wasmpod runtime entry, runc as default, restrict_oom_score_adj, the sandbox
# image, the registry config_path, and 2.x's use_local_image_pull. No cluster, no root needed
# beyond reading the binaries; a few seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
export WASMPOD_CLUSTER_STATE=$scratch/state WASMPOD_CLUSTER_RUN=$scratch/run
export WASMPOD_SHIM=/opt/wasmpod-check/containerd-shim-wasmpod-v1

check_line() { # check_line 2|1.7
  local line=$1 dump bin
  export CONTAINERD=$line
  "$here/../../cluster/containerd-config.sh" 2>/dev/null
  bin=$("$here/../../build-deps.sh" --print-dir "$([[ $line == 2 ]] && echo containerd2 || echo containerd17)")
  [[ -x $bin/containerd ]] || fail "containerd $line not built (e2e/build-deps.sh)"
  dump=$("$bin/containerd" --config "$WASMPOD_CLUSTER_STATE/containerd-config.toml" config dump 2>&1) ||
    { echo "$dump"; fail "containerd $line rejects the config"; }
  # One TOML table per runtime in the dump; pull the lines of the wasmpod and runc tables.
  local wasm runc_t
  wasm=$(awk '/runtimes.wasmpod\]/{f=1; next} /^ *\[/{f=0} f' <<< "$dump")
  runc_t=$(awk '/runtimes.runc\]/{f=1; next} /^ *\[/{f=0} f' <<< "$dump")
  grep -Eq "runtime_type = ['\"]io.containerd.wasmpod.v1['\"]" <<< "$wasm" || { echo "$dump"; fail "no wasmpod runtime_type"; }
  grep -Eq "runtime_path = ['\"]${WASMPOD_SHIM}['\"]" <<< "$wasm" || fail "wasmpod runtime_path is not WASMPOD_SHIM"
  grep -Eq "runtime_type = ['\"]io.containerd.runc.v2['\"]" <<< "$runc_t" || fail "no runc runtime"
  grep -Eq "default_runtime_name = ['\"]runc['\"]" <<< "$dump" || fail "runc is not the default runtime"
  grep -Eq "restrict_oom_score_adj = true" <<< "$dump" || fail "restrict_oom_score_adj is not true"
  grep -Eq "netns_mounts_under_state_dir = true" <<< "$dump" || fail "netns mounts not under the state dir"
  grep -Eq "(sandbox|sandbox_image) = ['\"]registry.k8s.io/pause:3.10['\"]" <<< "$dump" || fail "sandbox image is not registry.k8s.io/pause:3.10"
  grep -Eq "config_path = ['\"]$WASMPOD_CLUSTER_STATE/containerd-certs.d['\"]" <<< "$dump" || fail "registry config_path not set"
  if [[ $line == 2 ]]; then
    grep -Eq "use_local_image_pull = true" <<< "$dump" || fail "use_local_image_pull is not true"
    grep -Eq "^version = 3" <<< "$dump" || fail "effective config is not version 3"
  fi
  echo "containerd $line: config loads; wasmpod -> $WASMPOD_SHIM, runc default, restrict_oom_score_adj"
}

test_containerd2_config_loads() { check_line 2; }
test_containerd17_config_loads() { check_line 1.7; }

run_test test_containerd2_config_loads
run_test test_containerd17_config_loads
summary || exit 1
