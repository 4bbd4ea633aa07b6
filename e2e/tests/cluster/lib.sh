# Test harness for the cluster tests: runs test functions, prints PASS/FAIL/SKIP per test and the
# summary line `N passed, N failed` last. A test is a shell function that returns 0 (pass),
# 77 (skipped, automake's convention; never counted as passed) or anything else (fail); it runs in
# a subshell with errexit, its output is shown only when it fails.
# shellcheck shell=bash

PASSED=0 FAILED=0 SKIPPED=0
FAILED_NAMES=()

run_test() { # run_test FUNCTION
  local name=$1 out rc t0
  out=$(mktemp); t0=$(date +%s)
  ( set -euo pipefail; "$name" ) > "$out" 2>&1 && rc=0 || rc=$?
  local dt=$(( $(date +%s) - t0 ))
  case $rc in
    0) PASSED=$((PASSED + 1)); echo "PASS $name (${dt}s)" ;;
    77) SKIPPED=$((SKIPPED + 1)); echo "SKIPPED $name: $(tail -n 1 "$out")" ;;
    *) FAILED=$((FAILED + 1)); FAILED_NAMES+=("$name"); echo "FAIL $name (${dt}s, exit $rc)"
       sed 's/^/    | /' "$out" | tail -n 60 ;;
  esac
  rm -f "$out"
}

# summary: prints the summary; returns non-zero when anything failed, or when a test skipped
# although the suite must run (WASMPOD_REQUIRE_CLUSTER=1 or CI=true: a prerequisite missing in CI
# is a broken CI, never a pass).
summary() {
  local required=0
  [[ ${WASMPOD_REQUIRE_CLUSTER:-} == 1 || ${CI:-} == true ]] && required=1
  if ((SKIPPED)); then
    echo "$SKIPPED skipped (not counted as passed)"
    if ((required)); then
      echo "skips are failures here (WASMPOD_REQUIRE_CLUSTER=1 or CI=true)"
      FAILED=$((FAILED + SKIPPED))
    fi
  fi
  ((FAILED == 0)) || echo "failed: ${FAILED_NAMES[*]}"
  echo "$PASSED passed, $FAILED failed"
  ((FAILED == 0))
}

skip() { echo "$*"; exit 77; }
fail() { echo "FAILED: $*" >&2; exit 1; }
