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

cluster-up: ## Boot (or re-check) the local single-node cluster [CONTAINERD=2|1.7]
	$(WASMPOD_E2E)/cluster/up.sh

cluster-down: ## Stop the local cluster and undo every host change
	$(WASMPOD_E2E)/cluster/down.sh

cluster-logs: ## Show the local cluster's component logs, pods and events
	$(WASMPOD_E2E)/cluster/logs.sh

cluster-test: ## Tests against the running local cluster
	$(WASMPOD_E2E)/tests/cluster/run.sh

cluster-config-check: ## Check the generated containerd configs load (2.x and 1.7)
	$(WASMPOD_E2E)/tests/cluster/check-containerd-config.sh

cluster-deps: ## Build the pinned Go binaries of the test bed
	$(WASMPOD_E2E)/build-deps.sh containerd2 containerd17 crictl etcd kubernetes helm coredns

kind-up: ## Create a kind cluster with wasmpod (needs Docker or Podman)
	$(WASMPOD_E2E)/kind/up.sh

kind-down: ## Delete the kind cluster
	$(WASMPOD_E2E)/kind/down.sh

kind-config-check: ## Static checks of the kind configs (against the installer's merge) and scripts
	$(CARGO_TEST) --test kind_files
	$(WASMPOD_E2E)/kind/test-scripts.sh
