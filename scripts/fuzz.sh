#!/usr/bin/env bash
# `make fuzz FUZZ_S=N`: every cargo-fuzz target of fuzz/ (fuzz/Cargo.toml) for N seconds each
# (default 30), on stable Rust (`--sanitizer none`: libFuzzer's coverage guidance without
# AddressSanitizer, which needs nightly; the targets are safe Rust, so what they find is panics,
# assertion failures and aborts). Before fuzzing, each target runs every input kept in
# fuzz/regressions/<target>/ once: a crash found earlier, fixed, stays fixed.
#
# The kept corpus (fuzz/corpus/<target>/) seeds each run and is only read; what a run learns goes
# to a scratch corpus outside the clone. A crash fails the run and leaves the input in
# $WASMPOD_CACHE/fuzz-artifacts/<target>/: copy it into fuzz/regressions/<target>/ with the fix.
# Installs cargo-fuzz once (cargo install), builds in $WASMPOD_CACHE/target-fuzz.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/paths.sh"
SECONDS_EACH=${FUZZ_S:-30}
TARGETS=${FUZZ_TARGETS:-oci_image containerd_toml wasm_load}
CARGO_FUZZ_VERSION=0.13.2
TARGET_DIR=$WASMPOD_CACHE/target-fuzz
WORK=$WASMPOD_CACHE/fuzz-work
ARTIFACTS=$WASMPOD_CACHE/fuzz-artifacts

if [[ $(cargo fuzz --version 2>/dev/null) != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

cd "$root/fuzz"
# fuzz COMMAND TARGET [ARG...]: cargo fuzz with this run's settings; the runtime (wasmtime) is
# built only for the target that loads Wasm (fuzz/Cargo.toml's feature wasm-load).
fuzz() {
  local features=()
  [[ $2 == wasm_load ]] && features=(--features wasm-load)
  cargo fuzz "$1" --sanitizer none --release --target-dir "$TARGET_DIR" "${features[@]}" "${@:2}"
}
rc=0
for t in $TARGETS; do
  fuzz build "$t"
  mkdir -p "$WORK/$t" "$ARTIFACTS/$t"
  for f in "$root/fuzz/regressions/$t"/*; do
    [[ -f $f ]] || continue
    fuzz run "$t" "$f" -- -runs=1 > "$WORK/$t.regression.log" 2>&1 ||
      { tail -n 30 "$WORK/$t.regression.log" >&2; echo "FAIL $t: regression input $f crashes again" >&2; rc=1; }
  done
  if [[ -n ${FUZZ_RUNS:-} ]]; then echo "== fuzz $t: $FUZZ_RUNS runs, seed 1" >&2; else echo "== fuzz $t: ${SECONDS_EACH}s" >&2; fi
  # FUZZ_RUNS: a fixed number of inputs from a fixed seed, the same every time (CI: a run that
  # passed keeps passing until the code changes); otherwise FUZZ_S seconds from a random seed.
  if [[ -n ${FUZZ_RUNS:-} ]]; then limit=(-runs="$FUZZ_RUNS" -seed=1); else limit=(-max_total_time="$SECONDS_EACH"); fi
  if ! fuzz run "$t" "$WORK/$t" "$root/fuzz/corpus/$t" -- \
      "${limit[@]}" -artifact_prefix="$ARTIFACTS/$t/" -print_final_stats=1 \
      -close_fd_mask=1 2> "$WORK/$t.log"; then
    grep -v '^ *at \|^ *[0-9]*: ' "$WORK/$t.log" | tail -n 40 >&2
    echo "FAIL $t: a crash; its input is in $ARTIFACTS/$t/" >&2
    rc=1
    continue
  fi
  grep -E "stat::number_of_executed_units|stat::new_units_added" "$WORK/$t.log" | tr '\n' ' ' >&2; echo >&2
done
exit $rc
