#!/usr/bin/env bash
# usage: scripts/ci-cold-run.sh [--warm] [REPO] [CLONE_DIR]
# Measures a cold CI run here: a clean clone of REPO (default: this checkout's repository, its
# HEAD) in CLONE_DIR (default /srv/wasmpod-cold-clone; not under /tmp or /var/tmp, where the VM
# has tmpfs of its own and would not find the clone's scripts), then `CI=true .ci/run` with every cache the run fills empty and of its own: the cargo
# target dirs and built binaries ($WASMPOD_CACHE), crates ($CARGO_HOME, so cargo-fuzz too), and
# Go's module and build caches. What a machine keeps installed stays: apt packages, rustup's
# toolchain and targets, pip's virtme-ng. Prints the wall time last. Takes the local cluster
# down first (the run boots its own).
# --warm: the same on a new clean clone, but with the caches the last run here left (the warm CI
# run: what a run costs once its caches are filled).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
warm=0
[[ ${1:-} == --warm ]] && { warm=1; shift; }
repo=${1:-$root}
base=/var/tmp/wasmpod-cold
clone=${2:-/srv/wasmpod-cold-clone}
rm -rf "$base/rustup-bin" "$clone"
((warm)) || rm -rf "$base/cache" "$base/go" "$base/cargo"
mkdir -p "$base/rustup-bin"
# rustup's proxies only: a cargo-fuzz installed earlier must not be found.
rustup_bin=$(dirname "$(command -v rustup)")
for b in cargo rustc rustup rustfmt rustdoc cargo-clippy cargo-fmt clippy-driver; do
  ln -s "$rustup_bin/$b" "$base/rustup-bin/$b"
done
export WASMPOD_CACHE=$base/cache CARGO_HOME=$base/cargo
export GOPATH=$base/go GOCACHE=$base/go/cache GOMODCACHE=$base/go/pkg/mod
PATH=$(tr ':' '\n' <<< "$PATH" | grep -vx "$rustup_bin" | paste -sd:)
export PATH=$CARGO_HOME/bin:$base/rustup-bin:$PATH
make -C "$root" cluster-down >/dev/null 2>&1 || true
git clone -q "$repo" "$clone" && cd "$clone" || exit 1
kind=cold; ((warm)) && kind=warm
echo "$kind run of $(git log --oneline -1)"
start=$(date +%s)
CI=true .ci/run; rc=$?
echo "$kind run: $(( $(date +%s) - start )) s, exit $rc"
exit $rc
