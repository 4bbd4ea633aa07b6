#!/usr/bin/env bash
# usage: e2e/vm/test-shim.sh [--in-node] [all | TEST...]
# The shim's containerd tier (shim/tests/containerd.rs) on a cgroup v2 node: built here, run
# inside the VM of e2e/vm/run.sh (one boot) under containerd 2.x. Fails, never skips, when a
# prerequisite is missing (WASMPOD_REQUIRE_CONTAINERD=1).
# --in-node: in the VM of the cluster's cgroup v2 node instead (e2e/cluster/node-v2.sh run-job,
# beside its kubelet, with a containerd of the tests' own), which CI has booted anyway: one
# emulated boot fewer (`make test-suites`).
#
# By default the tests whose outcome depends on the kernel's cgroup and namespace behaviour
# (`make test-shim-v2`); under emulation the whole tier takes over 25 minutes, so `all`
# is for a change to the tier itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=../../scripts/paths.sh
source scripts/paths.sh
CGROUP_SENSITIVE=(
  stats_report_what_serving_the_container_costs       # the shim's leaf, threaded CPU cgroups, v2 metrics
  cpu_limit_applies_to_a_spinning_guest               # cpu.max, cgroupfs and systemd paths
  http_component_serves_in_the_pod_network_namespace_and_drains_on_sigterm
  native_containers_of_a_pod_the_pause_by_the_shim_sidecars_by_runc   # pause's and runc's cgroups beside the shim's leaf
  bad_inputs_fail_clearly_and_the_pod_shim_keeps_serving   # OOM and kill paths, one pod shim
)
in_node=0
[[ ${1:-} == --in-node ]] && { in_node=1; shift; }
tests=("$@")
((${#tests[@]})) || tests=("${CGROUP_SENSITIVE[@]}")
[[ ${tests[*]} == all ]] && tests=()

bin=$(cargo test --release --workspace --test containerd --no-run --message-format=json |
  jq -r 'select(.executable != null and .target.name == "containerd") | .executable')
[[ -x $bin ]] || { echo "$0: no test binary for shim/tests/containerd.rs" >&2; exit 1; }
# What the tier executes again and again, copied into the VM's RAM (e2e/vm/ram-copy.sh).
export WASMPOD_VM_RAM_COPY="$bin $WASMPOD_SHIM $(e2e/build-deps.sh --print-dir containerd2) \
  $WASMPOD_TOOLS_BIN_DIR/oci-pack $WASMPOD_COMPONENTS_DIR $(command -v runc) \
  $(command -v docker-registry) $(command -v skopeo)"
vm=("$root/e2e/vm/run.sh" --)
((in_node)) && vm=("$root/e2e/cluster/node-v2.sh" run-job -- "$root/e2e/vm/in-vm.sh")
cd shim
# One boot, one run of the binary per test (libtest takes a single filter).
# shellcheck disable=SC2016  # expanded inside the VM
# The cgroup-sensitive tests of this boot share one compile cache (tmpfs in the guest): none of
# them is about the cache, and a compile under emulation costs tens of seconds. (`all` includes
# the cache's own tests, which need a cache of their own each.)
shared_cache=/var/lib/wasmpod/test-cache
((${#tests[@]})) || shared_cache=""
WASMPOD_TEST_SHARED_CACHE_DIR=$shared_cache \
WASMPOD_REQUIRE_CONTAINERD=1 WASMPOD_TEST_CONTAINERD=2 "${vm[@]}" bash -c '
  bin=$1; shift; rc=0
  if (($# == 0)); then exec "$bin" --test-threads=1; fi
  # A test that hangs under emulation fails after 5 minutes instead of holding the run.
  for t; do timeout 300 "$bin" --test-threads=1 --exact "$t" || { echo "FAILED or timed out: $t" >&2; rc=1; }; done
  exit $rc' _ "$bin" "${tests[@]}"
