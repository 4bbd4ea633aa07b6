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

# install_crd: the WasmApp CRD applied and served (Established is not yet served: a first list
# right after it can get a 404, which ends the operator and leaves the activator unready).
install_crd() {
  $KUBECTL apply -f "$E2E_DIR/../crds/wasmapp.yaml" >/dev/null
  $KUBECTL wait --for condition=established crd/wasmapps.wasmpod.io --timeout=30s >/dev/null
  wait_for 30 "wasmapps served by the apiserver" $KUBECTL get wasmapps -n "$NS" ||
    fail "the apiserver does not serve wasmapps"
}

# start_operator: the CRD applied and the operator built here running for this test's namespace,
# logging to $LOGS/operator-test.log, stopped when the test's subshell exits.
start_operator() {
  local op=$WASMPOD_OPERATOR
  [[ -x $op ]] || skip "operator $op not built (make build)"
  install_crd
  "$op" --kubeconfig "$ADMIN_KUBECONFIG" --http-addr 127.0.0.1:0 --leader-elect false \
    --insecure-registry "$REGISTRY" --watch-namespace "$NS" "$@" >> "$LOGS/operator-test.log" 2>&1 &
  OPERATOR_PID=$!
  trap 'kill $OPERATOR_PID 2>/dev/null || true' EXIT
}

fail() { echo "FAILED: $*" >&2; exit 1; }

# stream_start URL: requests URL one after another (a new connection each, so kube-proxy picks
# an endpoint each time) until stream_stop; each status code goes to $STREAM.
stream_start() {
  STREAM=$(mktemp); STREAM_STOP=$(mktemp -u)
  ( while [[ ! -e $STREAM_STOP ]]; do
      curl -s -o /dev/null --max-time 10 -w '%{http_code}\n' "$1" >> "$STREAM" || echo "000" >> "$STREAM"
    done ) &
  STREAM_PID=$!
}

# stream_stop: stops the stream; fails unless every request was answered 200.
stream_stop() {
  touch "$STREAM_STOP"; wait "$STREAM_PID" || true
  local total bad
  total=$(wc -l < "$STREAM"); bad=$(grep -cvx 200 "$STREAM" || true)
  echo "stream: $total requests, $bad not 200"
  ((total > 0)) || fail "the stream sent nothing"
  ((bad == 0)) || { sort "$STREAM" | uniq -c; fail "$bad of $total requests failed"; }
}
