# wasmpod: `make` prints this help. Every target installs what it needs (idempotently).
SHELL := /bin/bash
.DEFAULT_GOAL := help

export CARGO_TARGET_DIR ?= /var/cache/wasmpod/target
export WASMPOD_CACHE ?= /var/cache/wasmpod
CONTAINERD ?= 2
SHIM := $(CARGO_TARGET_DIR)/release/containerd-shim-wasmpod-v1

.PHONY: help deps build components test test-unit test-shim lint fmt bench go-deps

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## Install system packages and Rust targets the build and tests need
	@scripts/install-deps.sh

go-deps: deps ## Build containerd (2.x, 1.7) and the cluster binaries from their Go modules (cached)
	@e2e/build-deps.sh

build: deps ## Build the shim (release)
	cargo build --release -p wasmpod-shim

components: deps ## Build the Wasm test components and the OCI packer
	@e2e/components/build.sh
	@e2e/oci-pack/build.sh >/dev/null

test-unit: deps ## Unit tests of every crate
	cargo test --release --workspace --lib --bins

test-shim: build components ## Shim tests against real containerd 2.x and 1.7 (root)
	@e2e/build-deps.sh containerd2 containerd17
	cargo test --release -p wasmpod-shim --test containerd -- --test-threads=1

test: lint test-unit test-shim ## Everything CI runs (what .ci/run calls)

lint: deps ## cargo fmt --check and clippy -D warnings
	cargo fmt --all -- --check
	cargo clippy --release --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

bench: build components ## Benchmarks with ratios against their baselines
	@e2e/bench/shim-bench.sh

include e2e/Makefile.cluster.mk
