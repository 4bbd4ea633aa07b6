# wasmpod: `make` prints this help. Every target installs what it needs (idempotently); the
# tests need root (containerd, network namespaces, a local cluster).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Build output paths have one home, scripts/paths.sh (caches outside the clone).
export WASMPOD_CACHE ?= $(shell scripts/paths.sh cache)
export CARGO_TARGET_DIR ?= $(shell scripts/paths.sh target)
# Always select the whole workspace: cargo unifies features over the selected packages, so
# building one package alone would compile the shared dependencies a second time.
CARGO_TEST := cargo test --release --workspace
# The cluster and install suites join the cgroup v2 VM node (e2e/cluster/node-v2.sh) and run its
# tests too; V2_NODE=0 leaves it out (faster, the host node only).
V2_NODE ?= 1
# The kubelet's maxPods while `make bench-cluster` runs (its density figure aims at 1,000 pods).
BENCH_MAX_PODS ?= 1100

.PHONY: help deps go-deps build components generate verify lint fmt images chart-lint chart-dry-run test-shim-v2 test-build bench-cluster \
        check test test-unit test-integration test-shim test-operator test-installer test-cluster test-install test-suites \
        bench bench-shim bench-operator fuzz fuzz-ci

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## Install system packages and Rust targets the build and tests need
	@scripts/install-deps.sh

go-deps: deps ## Build containerd 2.x/1.7 and the Kubernetes binaries from their Go modules (cached)
	@e2e/build-deps.sh

build: deps ## Build the shim and the operator (release)
	cargo build --release --workspace

components: deps ## Build the Wasm test components and the OCI packer
	@e2e/components/build.sh
	@e2e/oci-pack/build.sh >/dev/null

generate: ## Regenerate crds/wasmapp.yaml, the chart's CRD template and deploy/wasmpod.yaml
	BLESS=1 $(CARGO_TEST) --test crd
	@scripts/chart.sh generate

verify: ## Fail when a generated file (CRD, chart CRD, deploy/) is stale
	$(CARGO_TEST) --test crd
	@scripts/chart.sh verify

lint: deps ## cargo fmt --check and clippy -D warnings
	cargo fmt --all -- --check
	rustfmt --edition 2024 --check fuzz/fuzz_targets/*.rs
	cargo clippy --release --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all
	rustfmt --edition 2024 fuzz/fuzz_targets/*.rs

test-unit: deps ## Unit tests of every crate
	$(CARGO_TEST) --lib --bins

# The integration tiers below skip, with the reason, when a prerequisite is missing; the
# WASMPOD_REQUIRE_* variables (and CI=true) make them fail instead (wasmpod-testkit).
test-shim: build components ## Shim under real containerd 2.x and 1.7, driven by ctr
	@e2e/build-deps.sh containerd2 containerd17
	WASMPOD_REQUIRE_CONTAINERD=1 WASMPOD_TEST_CONTAINERD=2 $(CARGO_TEST) --test containerd --test capabilities -- --test-threads=1
	WASMPOD_REQUIRE_CONTAINERD=1 WASMPOD_TEST_CONTAINERD=1.7 $(CARGO_TEST) --test containerd --test capabilities -- --test-threads=1

test-shim-v2: build components ## Shim's cgroup-sensitive tests under containerd 2.x on a cgroup v2 VM (e2e/vm: qemu)
	@e2e/build-deps.sh containerd2
	@e2e/vm/test-shim.sh

test-operator: deps ## Operator and installer against a real etcd + kube-apiserver; CRD, image, samples
	@e2e/build-deps.sh etcd kubernetes
	$(CARGO_TEST) --test crd --test image --test samples
	WASMPOD_REQUIRE_APISERVER=1 $(CARGO_TEST) --test apiserver

test-installer: deps ## Installer: merged configs loaded by real containerd 2.x and 1.7
	@e2e/build-deps.sh containerd2 containerd17
	WASMPOD_REQUIRE_CONTAINERD=1 $(CARGO_TEST) --test containerd_config

chart-lint: deps ## helm lint (6 value sets) + render checks of charts/wasmpod
	@e2e/build-deps.sh helm
	@scripts/chart.sh lint

chart-dry-run: deps ## Chart + deploy/ server-side dry-run against a throwaway kube-apiserver
	@e2e/build-deps.sh etcd kubernetes helm
	@scripts/chart.sh dry-run

images: build ## wasmpod-operator/wasmpod-node-installer images (buildah) from the build; PUSH=127.0.0.1:5000 pushes
	@SKIP_CARGO=1 PUSH=$(PUSH) images/build.sh

test-cluster: build components go-deps ## Local cluster (+ the cgroup v2 VM node unless V2_NODE=0): runc, DNS, Wasm and mixed pods, accounting
	@WASMPOD_V2_NODE=$(V2_NODE) WASMPOD_REQUIRE_CLUSTER=1 e2e/tests/cluster/with-cluster.sh
	@e2e/tests/cluster/check-containerd-config.sh

test-install: build components go-deps ## Fresh bare cluster (+ VM node unless V2_NODE=0): images, helm install/test/upgrade/uninstall, per-node uninstall, kubectl apply/delete -f deploy/
	@WASMPOD_V2_NODE=$(V2_NODE) WASMPOD_REQUIRE_CLUSTER=1 e2e/tests/install/with-cluster.sh

# CI's form of the two above: both suites on one cluster and one VM node (made bare in between).
test-suites: build components go-deps ## test-cluster (+ test-shim-v2's tests in the VM node), then test-install, on one cluster and VM node (made bare in between)
	@WASMPOD_V2_NODE=$(V2_NODE) e2e/tests/one-cluster.sh

# Every test binary of the workspace in one cargo run: the crates then compile side by side (an
# operator's unit tests beside the shim's), instead of three runs that each end on one crate.
test-build: deps ## Build every test binary of the workspace (release), no test run
	$(CARGO_TEST) --no-run --lib --bins --tests

check: lint test-build verify test-unit kind-config-check ## The fast lane: fmt, clippy, unit tests, generated files, static kind checks (no root, no cluster)

# $(call timed,TARGET...): runs each make target in turn, each printing its wall time
# ("[time] TARGET: N s"), so a CI log says where its minutes went.
timed = $(foreach t,$(1),scripts/timed.sh $(t) $(MAKE) --no-print-directory $(t) &&) true

# The host-only tiers, then both cluster suites on one cluster. With the cgroup v2 node
# (V2_NODE=1) the cluster comes up first: its emulated node boots and runs the shim's v2 tests
# (one emulated boot fewer than test-shim-v2) while the host-only tiers run, which mostly wait on
# daemons of their own. Without it, test-shim-v2 boots its own VM beside the host-only tiers;
# its output comes in one piece when it ends.
HOST_TIERS = test-shim test-operator test-installer chart-lint chart-dry-run fuzz-ci
test-integration: build components go-deps ## Every tier that needs real containerd, an apiserver or the cluster
ifeq ($(V2_NODE),1)
	@scripts/timed.sh test-suites env WASMPOD_V2_NODE=1 e2e/tests/one-cluster.sh --first '$(call timed,$(HOST_TIERS))'
else
	@scripts/beside.sh '$(call timed,test-shim-v2)' -- bash -c '$(call timed,$(HOST_TIERS))'
	@$(call timed,test-suites)
endif

# `check` first: a simple mistake fails in minutes, before anything else is built. Then the Go
# binaries and the Wasm test components, one after the other: on a cold machine each of them
# keeps both cores busy, and side by side they only thrash (measured: `check` beside them took
# 58 min instead of 22); warm, they are checks of a few seconds.
test: deps ## Everything CI runs (.ci/run): `check`, then the integration tiers
	@$(call timed,check go-deps components test-integration)

bench: bench-shim bench-operator bench-cluster ## All benchmarks, with ratios against their baselines

bench-shim: build components ## Shim: start vs runc, idle memory, HTTP vs wasmtime serve and native hyper; BENCH_BASELINE_REF=<ref> adds that ref's shim
	@e2e/build-deps.sh containerd2
	@e2e/bench/shim-bench.sh

bench-cluster: build components go-deps ## Cluster: scale to zero vs the pod path, pod start and density vs runc, soak; BENCH_SECTIONS= picks
	@WASMPOD_MAX_PODS=$(BENCH_MAX_PODS) e2e/cluster/up.sh >/dev/null
	@e2e/bench/cluster-bench.sh

bench-operator: deps ## Operator: 1000 WasmApps against etcd + kube-apiserver
	@e2e/build-deps.sh etcd kubernetes
	cargo bench --workspace --bench apps

FUZZ_S ?= 30
# CI's short run, beside the VM tier: the regression inputs and a fixed set of inputs to the targets
# whose instrumented build is small. wasm_load instruments all of wasmtime (17 min cold on 2
# cores), so it runs in `make fuzz` only.
fuzz-ci: deps ## `make fuzz` for 20000 inputs per target from a fixed seed (deterministic), without wasm_load
	@FUZZ_RUNS=20000 FUZZ_TARGETS="oci_image containerd_toml" scripts/fuzz.sh

fuzz: deps ## cargo-fuzz targets (OCI image parsing, containerd TOML merge, Wasm loading), FUZZ_S seconds each, after their regression inputs
	@FUZZ_S=$(FUZZ_S) scripts/fuzz.sh

include e2e/Makefile.cluster.mk

.PHONY: demo
demo: build components go-deps ## The main job: local cluster, wasmpod installed with Helm, a WasmApp answering a container app
	@e2e/demo.sh
