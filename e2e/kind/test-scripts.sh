#!/usr/bin/env bash
# Exercises e2e/kind/up.sh and down.sh against stand-ins for kind, docker and kubectl (this machine
# has no container engine): each stand-in records its arguments, and the test asserts what the
# scripts asked for. Covers: the config handed to kind (shim hostPath substituted, nothing else
# changed), the version = 3 fallback, the -v check inside the node, the node label, the
# RuntimeClass, idempotent re-run and down. Part of `make kind-config-check`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/cluster/lib.sh"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
bin=$work/bin; mkdir -p "$bin"
touch "$work/shim"; chmod +x "$work/shim"

# kind: `get clusters` lists $work/clusters; `create` copies the --config file it got and
# "creates" the cluster; `get nodes` prints one node; `delete` removes it.
cat > "$bin/kind" <<'EOF'
#!/usr/bin/env bash
echo "kind $*" >> "$WORK/calls"
case "$1 $2" in
  "get clusters") cat "$WORK/clusters" 2>/dev/null || true ;;
  "get nodes") echo wasmpod-control-plane ;;
  "create cluster") while (($#)); do [[ $1 == --config ]] && cp "$2" "$WORK/created-config.yaml"; shift; done
                    echo wasmpod > "$WORK/clusters" ;;
  "delete cluster") rm -f "$WORK/clusters" ;;
esac
EOF
# docker: `exec NODE containerd config dump` shows the runtime only when $WORK/dump-has-runtime
# exists; `exec NODE sed ...` prints the config version from $WORK/config-version.
cat > "$bin/docker" <<'EOF'
#!/usr/bin/env bash
echo "docker $*" >> "$WORK/calls"
[[ $1 == info ]] && exit 0
[[ $1 == exec ]] || exit 0
shift; [[ $1 == -i ]] && { shift; cat > "$WORK/appended"; touch "$WORK/dump-has-runtime"; exit 0; }
shift
case "$1 $2" in
  "containerd config") [[ -e $WORK/dump-has-runtime ]] && echo "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.wasmpod]"; exit 0 ;;
  "sed -n") cat "$WORK/config-version" ;;
esac
exit 0
EOF
cat > "$bin/kubectl" <<'EOF'
#!/usr/bin/env bash
echo "kubectl $*" >> "$WORK/calls"
EOF
chmod +x "$bin"/*
export WORK=$work PATH=$bin:$PATH WASMPOD_SHIM=$work/shim KIND_CLUSTER=wasmpod

test_kind_up_on_version2_node() {
  : > "$WORK/calls"; rm -f "$WORK/clusters" "$WORK/appended"; touch "$WORK/dump-has-runtime"
  "$here/up.sh"
  grep -q "^kind create cluster --name wasmpod --config " "$WORK/calls" || fail "kind create not called"
  grep -q "hostPath: $WORK/shim$" "$WORK/created-config.yaml" || fail "shim hostPath not substituted"
  # Apart from the substituted hostPath, kind gets kind-config.yaml as it is (which
  # installer/tests/kind_files.rs checks against the installer's merge).
  local norm='s|hostPath: .*$|hostPath: SHIM|'
  diff <(sed "$norm" "$WORK/created-config.yaml") <(sed "$norm" "$here/kind-config.yaml") ||
    fail "the config handed to kind differs from kind-config.yaml beyond the shim's hostPath"
  grep -q "^docker exec wasmpod-control-plane /usr/local/bin/containerd-shim-wasmpod-v1 -v$" "$WORK/calls" ||
    fail "shim -v not checked inside the node"
  grep -q "^kubectl --context kind-wasmpod label node wasmpod-control-plane --overwrite wasmpod.io/runtime=ready$" "$WORK/calls" ||
    fail "node not labelled"
  grep -q "^kubectl --context kind-wasmpod apply -f .*runtimeclass.yaml$" "$WORK/calls" || fail "RuntimeClass not applied"
  [[ ! -e $WORK/appended ]] || fail "v3 patch appended although the runtime was present"
}

test_kind_up_rerun_does_not_recreate() {
  : > "$WORK/calls"
  "$here/up.sh"
  ! grep -q "^kind create" "$WORK/calls" || fail "existing cluster re-created"
  grep -q "label node" "$WORK/calls" || fail "re-run did not re-check the node"
}

test_kind_up_on_version3_node_appends_v3_patch() {
  : > "$WORK/calls"; rm -f "$WORK/clusters" "$WORK/dump-has-runtime"; echo 3 > "$WORK/config-version"
  "$here/up.sh"
  cmp -s "$WORK/appended" "$here/containerd-patch-v3.toml" || fail "containerd-patch-v3.toml not appended"
  grep -q "^docker exec wasmpod-control-plane systemctl restart containerd$" "$WORK/calls" || fail "containerd not restarted"
}

test_kind_up_fails_without_runtime_on_version2_node() {
  rm -f "$WORK/clusters" "$WORK/dump-has-runtime"; echo 2 > "$WORK/config-version"
  if "$here/up.sh" 2>/dev/null; then fail "up.sh succeeded although the runtime is missing"; fi
}

test_kind_up_fails_without_shim() {
  if WASMPOD_SHIM=$WORK/missing "$here/up.sh" 2>/dev/null; then fail "up.sh succeeded without a shim"; fi
}

test_kind_down() {
  echo wasmpod > "$WORK/clusters"; : > "$WORK/calls"
  "$here/down.sh"
  grep -q "^kind delete cluster --name wasmpod$" "$WORK/calls" || fail "kind delete not called"
  "$here/down.sh" 2>/dev/null   # nothing left: still succeeds
}

for t in test_kind_up_on_version2_node test_kind_up_rerun_does_not_recreate \
         test_kind_up_on_version3_node_appends_v3_patch test_kind_up_fails_without_runtime_on_version2_node \
         test_kind_up_fails_without_shim test_kind_down; do
  run_test "$t"
done
summary || exit 1
