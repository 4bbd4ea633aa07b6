# Test-bed targets: the local single-node cluster, its tests, kind. Included by the root Makefile
# (`include e2e/Makefile.cluster.mk`); every recipe is a script under e2e/, so each also runs by hand.
#
#   make cluster-up [CONTAINERD=2|1.7] [WASMPOD_SHIM=path]   boot (or re-check) the local cluster
#   make cluster-down                                         stop it and undo every host change
#   make cluster-logs [LOG_LINES=40]                          component logs + pods + events
#   make cluster-test [WASM_HTTP_IMAGE=.. WASM_CLIENT_IMAGE=..] tests against the running cluster
#   make cluster-config-check                                 containerd configs (2 and 1.7) load
#   make cluster-deps                                         build the pinned Go binaries
#   make kind-up / kind-down [KIND_CLUSTER=wasmpod]           kind path (needs Docker or Podman)
#   make kind-config-check                                    static check of e2e/kind config + scripts

WASMPOD_E2E := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
# CONTAINERD (2 or 1.7) and WASMPOD_SHIM default in e2e/cluster/env.sh; give them on the make
# command line (command-line variables reach the recipes' environment). Without CONTAINERD, the
# scripts use the line of the running cluster, else 2.

.PHONY: cluster-up cluster-down cluster-logs cluster-test cluster-config-check cluster-deps \
        kind-up kind-down kind-config-check

cluster-up:
	$(WASMPOD_E2E)/cluster/up.sh

cluster-down:
	$(WASMPOD_E2E)/cluster/down.sh

cluster-logs:
	$(WASMPOD_E2E)/cluster/logs.sh

cluster-test:
	$(WASMPOD_E2E)/tests/cluster/run.sh

cluster-config-check:
	$(WASMPOD_E2E)/tests/cluster/check-containerd-config.sh

cluster-deps:
	$(WASMPOD_E2E)/build-deps.sh containerd2 containerd17 crictl etcd kubernetes helm coredns

kind-up:
	$(WASMPOD_E2E)/kind/up.sh

kind-down:
	$(WASMPOD_E2E)/kind/down.sh

kind-config-check:
	$(WASMPOD_E2E)/kind/check-config.sh
	$(WASMPOD_E2E)/kind/test-scripts.sh
