#!/usr/bin/env bash
# Shim benchmarks, each printed with its ratio against the baseline measured in the same run:
#   1. start: `ctr run --rm` of a hello command component (warm cache) vs runc running a static
#      native hello, median of $RUNS runs each;
#   2. memory: RSS and PSS of every process the runtime adds for one idle HTTP container;
#   3. HTTP: requests/s and p99 of hello-http served by the shim vs `wasmtime serve` of the
#      same wasmtime version, same component, same load generator (wrk -t2 -c50), and beside
#      them the physical limit: a native hyper server giving the same answer (native-hello);
#   4. outgoing HTTP: requests/s of a handler that calls another local HTTP server for every
#      request (hello-http's /fetch), naming it by a DNS name (the pod's resolv.conf, dnsmasq in
#      the pod's netns, cached by the guest's resolver) vs by IP, same run;
#   5. key-value: requests/s of a handler incrementing a counter per request (kv-counter's
#      /increment) on the in-memory backend and on Redis (Debian's redis-server in the same
#      netns), beside the same component's plain hello route and hello-http of 3., same run.
# With BENCH_BASELINE_REF=<git ref> (e.g. the commit a change starts from), the shim built from
# that ref is measured beside this one in 1. and 3., and the ratio printed: before and after in
# the same run, on the same machine load. It is built once per commit, from a `git worktree`
# outside the clone, into $CACHE/bench-baseline/<commit>/.
# Needs root. Uses a private containerd 2.x on its own socket; traffic stays on loopback
# inside a network namespace of its own.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../.." && pwd)
source "$repo/e2e/versions.env"
source "$repo/scripts/paths.sh"
CACHE=$WASMPOD_CACHE
RUNS=${RUNS:-20}; DURATION=${DURATION:-10s}
SHIM=${SHIM:-$WASMPOD_SHIM}
CD=$("$repo/e2e/build-deps.sh" --print-dir containerd2)
PACK=$WASMPOD_TOOLS_BIN_DIR/oci-pack
COMP=$WASMPOD_COMPONENTS_DIR
WASMTIME=$CACHE/tools/wasmtime-$WASMTIME_CLI_VERSION/bin/wasmtime
BASELINE_REF=${BENCH_BASELINE_REF:-}
# The baseline shim runs under a runtime name of its own, so one containerd serves both.
BASE_RUNTIME=io.containerd.wasmpodbase.v1

# build_baseline REF: prints the path of the shim built from REF (cached per commit).
build_baseline() {
  local sha dir bin wt target shim_target
  sha=$(git -C "$repo" rev-parse --verify "$1^{commit}")
  dir=$CACHE/bench-baseline/$sha; bin=$dir/containerd-shim-wasmpodbase-v1
  if [[ ! -x $bin ]]; then
    echo "==> building the baseline shim from $1 ($sha, once)" >&2
    wt=$CACHE/bench-baseline/src-$sha; target=$CACHE/target-bench-baseline
    shim_target=$(dirname "$(dirname "$(dirname "$SHIM")")")
    # Its dependencies are mostly this build's (same Cargo.lock): start from a copy of that
    # target dir rather than compiling wasmtime again. --workspace keeps the features the
    # dependencies were built with (features are unified over the packages selected).
    if [[ ! -d $target && -d $shim_target ]]; then cp -a --reflink=auto "$shim_target" "$target"; fi
    git -C "$repo" worktree remove --force "$wt" >/dev/null 2>&1 || true
    git -C "$repo" worktree add --detach "$wt" "$sha" >/dev/null
    (cd "$wt" && CARGO_TARGET_DIR=$target nice cargo build --locked --release --quiet --workspace --bin containerd-shim-wasmpod-v1) >&2
    mkdir -p "$dir"
    cp "$target/$WASMPOD_TARGET_TRIPLE/release/containerd-shim-wasmpod-v1" "$bin.tmp" && mv "$bin.tmp" "$bin"
    git -C "$repo" worktree remove --force "$wt"
  fi
  echo "$bin"
}
BASE_PATH=
if [[ -n $BASELINE_REF ]]; then BASE_PATH=$(dirname "$(build_baseline "$BASELINE_REF")"):; fi

[[ -x $WASMTIME ]] || { echo "==> cargo install wasmtime-cli $WASMTIME_CLI_VERSION (once)" >&2;
  cargo install --quiet --locked wasmtime-cli --version "$WASMTIME_CLI_VERSION" --root "$CACHE/tools/wasmtime-$WASMTIME_CLI_VERSION"; }

work=$(mktemp -d /tmp/wpbench.XXXX); ns=wpbench; pids=()
cleanup() {
  local id
  for id in web base fetch kv; do "$CD/ctr" --address "$work/c.sock" -n bench task kill -s SIGKILL $id >/dev/null 2>&1 || true; done
  sleep 0.5
  for id in web base fetch kv; do "$CD/ctr" --address "$work/c.sock" -n bench task delete -f $id >/dev/null 2>&1 || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns delete $ns 2>/dev/null || true
  umount -R "$work/root" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
[[ -n $BASELINE_REF ]] || echo "(set BENCH_BASELINE_REF=<git ref> to measure that ref's shim beside this one)"

cat > "$work/config.toml" <<TOML
version = 3
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.podsandbox.controller.v1.podsandbox"]
[grpc]
  address = "$work/c.sock"
[ttrpc]
  address = "$work/c.sock.ttrpc"
TOML
PATH="$BASE_PATH$(dirname "$SHIM"):$CD:$PATH" WASMPOD_CACHE_DIR="$work/cache" "$CD/containerd" --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
pids+=($!)
# ctr's own warnings (cgroup v1 deprecation, non-zero exits) would drown the report.
ctr() { "$CD/ctr" --address "$work/c.sock" -n bench "$@" 2>>"$work/ctr.log"; }
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done

gcc -static -Os -o "$work/hello" "$here/hello.c"
"$PACK" rootfs --file "$work/hello" --entrypoint /hello --name bench/native:v1 --out "$work/native.tar" >/dev/null
"$PACK" rootfs --wasm "$COMP/hello-cli.wasm" --entrypoint /hello.wasm --name bench/wasm:v1 --out "$work/wasm.tar" >/dev/null
"$PACK" rootfs --wasm "$COMP/hello-http.wasm" --entrypoint /http.wasm --name bench/http:v1 --out "$work/http.tar" >/dev/null
for t in native wasm http; do ctr images import --all-platforms "$work/$t.tar" >/dev/null; done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "== start: ctr run --rm, median of $RUNS (warm compile cache)"
ctr run --rm --runtime io.containerd.wasmpod.v1 bench/wasm:v1 warm >/dev/null   # fills the cache
# Each run needs a fresh container id, so we time the runs ourselves (wall clock, µs),
# alternating kinds so drift on the machine hits all alike.
kinds=(runc wasmpod); [[ -n $BASELINE_REF ]] && kinds+=(baseline)
for kind in "${kinds[@]}"; do : > "$work/$kind.times"; done
ctr run --rm bench/native:v1 nwarm >/dev/null
[[ -n $BASELINE_REF ]] && ctr run --rm --runtime $BASE_RUNTIME bench/wasm:v1 bwarm >/dev/null
for n in $(seq "$RUNS"); do
  for kind in "${kinds[@]}"; do
    s=$(date +%s%N)
    case $kind in
      runc) ctr run --rm bench/native:v1 "n$n" >/dev/null ;;
      wasmpod) ctr run --rm --runtime io.containerd.wasmpod.v1 bench/wasm:v1 "w$n" >/dev/null ;;
      baseline) ctr run --rm --runtime $BASE_RUNTIME bench/wasm:v1 "b$n" >/dev/null ;;
    esac
    echo $(( ($(date +%s%N) - s) / 1000 )) >> "$work/$kind.times"
  done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
runc_us=$(median "$work/runc.times"); wasm_us=$(median "$work/wasmpod.times")
echo "runc (static native hello):   $(awk -v u="$runc_us" 'BEGIN{printf "%.1f ms", u/1000}')"
echo "wasmpod (hello component):    $(awk -v u="$wasm_us" 'BEGIN{printf "%.1f ms", u/1000}')"
echo "ratio wasmpod/runc:           $(ratio "$wasm_us" "$runc_us")   (target <= 0.50; runwasi measured 1.32)"
if [[ -n $BASELINE_REF ]]; then
  base_us=$(median "$work/baseline.times")
  echo "baseline shim ($BASELINE_REF):   $(awk -v u="$base_us" 'BEGIN{printf "%.1f ms", u/1000}')"
  echo "ratio wasmpod/baseline:       $(ratio "$wasm_us" "$base_us")   (< 1: this tree starts faster)"
fi

# measure_idle ID [RUNTIME]: RSS/PSS (KiB) summed over the processes serving container ID, once
# idle; leaves it serving on port 8080.
measure_idle() {
  ctr run -d --runtime "${2:-io.containerd.wasmpod.v1}" --with-ns network:/var/run/netns/$ns bench/http:v1 "$1" >/dev/null
  for _ in $(seq 100); do ip netns exec $ns curl -sf http://127.0.0.1:8080/ >/dev/null && break; sleep 0.1; done
  ip netns exec $ns curl -sf http://127.0.0.1:8080/ >/dev/null
  sleep 2
  local rss=0 pss=0 n=0 p
  for p in $(pgrep -f "containerd-shim-wasmpod(base)?-v1 .*-id $1( |$)"); do
    rss=$((rss + $(awk '/^Rss:/ {print $2}' /proc/$p/smaps_rollup)))
    pss=$((pss + $(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup)))
    n=$((n + 1))
  done
  echo "$n $rss $pss"
}
stop() { ctr task kill -s SIGKILL "$1" >/dev/null; sleep 0.5; ctr task delete -f "$1" >/dev/null 2>&1 || true; ctr containers delete "$1" >/dev/null 2>&1 || true; }

echo "== memory: idle HTTP container (processes the runtime adds, RSS and PSS)"
ip netns add $ns; ip -n $ns link set lo up
read -r n rss pss < <(measure_idle first)
echo "first pod of the component on the node (compiles it):  $n process(es), RSS $((rss / 1024)) MiB, PSS $((pss / 1024)) MiB"
stop first
read -r n rss pss < <(measure_idle web)
echo "steady state (component in the node cache):             $n process(es), RSS $((rss / 1024)) MiB, PSS $((pss / 1024)) MiB ($pss KiB)"
echo "ratio PSS vs runwasi's 32 MB (4 processes):            $(ratio "$pss" 32768)   (target: <= 5 MB in one process)"

echo "== HTTP: wrk -t2 -c50 -d$DURATION"
load() { ip netns exec $ns wrk -t2 -c50 -d"$DURATION" --latency "$1" 2>&1; }
parse_rps() { awk '/Requests\/sec/ {print $2}'; }
parse_p99() { awk '$1 == "99%" {print $2}'; }
out=$(load http://127.0.0.1:8080/); shim_rps=$(echo "$out" | parse_rps); shim_p99=$(echo "$out" | parse_p99)
stop web
if [[ -n $BASELINE_REF ]]; then
  measure_idle base $BASE_RUNTIME >/dev/null
  out=$(load http://127.0.0.1:8080/); base_rps=$(echo "$out" | parse_rps); base_p99=$(echo "$out" | parse_p99)
  stop base
fi
ip netns exec $ns "$WASMTIME" serve -Scli --addr 127.0.0.1:8081 "$COMP/hello-http.wasm" >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do ip netns exec $ns curl -sf http://127.0.0.1:8081/ >/dev/null && break; sleep 0.1; done
out=$(load http://127.0.0.1:8081/); ws_rps=$(echo "$out" | parse_rps); ws_p99=$(echo "$out" | parse_p99)
# The physical limit: native code answering the same bytes (e2e/bench/native-hello, hyper).
ip netns exec $ns "$WASMPOD_BIN_DIR/native-hello" 127.0.0.1:8082 >"$work/native.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do ip netns exec $ns curl -sf http://127.0.0.1:8082/ >/dev/null && break; sleep 0.1; done
out=$(load http://127.0.0.1:8082/); nat_rps=$(echo "$out" | parse_rps); nat_p99=$(echo "$out" | parse_p99)
echo "wasmpod shim:     $shim_rps req/s, p99 $shim_p99"
echo "wasmtime serve:   $ws_rps req/s, p99 $ws_p99"
echo "native hyper:     $nat_rps req/s, p99 $nat_p99   (the same answer from native Rust: the physical limit)"
if [[ -n $BASELINE_REF ]]; then
  echo "baseline shim:    $base_rps req/s, p99 $base_p99   ($BASELINE_REF)"
  echo "ratio vs baseline shim (same run): $(ratio "$shim_rps" "$base_rps")   (> 1: this tree serves more)"
fi
echo "ratio vs wasmtime serve (same run): $(ratio "$shim_rps" "$ws_rps")   (target >= 1.5)"
echo "ratio vs native hyper (same run): $(ratio "$shim_rps" "$nat_rps")   (share of the physical limit)"
echo "ratio vs runwasi-class 12.1k req/s: $(ratio "$shim_rps" 12100)   (target >= 1.5)"

echo "== outgoing HTTP: a handler calling a local HTTP server per request, by name vs by IP (wrk -t2 -c50 -d$DURATION)"
# The pod's name resolution as CRI sets it up: resolv.conf and hosts files mounted at /etc, a
# DNS server (dnsmasq, no upstream) answering on the pod's loopback.
gcc -static -Os -o "$work/upstream" "$repo/e2e/cluster/images/hello-http.c"
ip netns exec $ns env PORT=8090 "$work/upstream" >"$work/upstream.log" 2>&1 &
pids+=($!)
ip netns exec $ns dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --bind-interfaces --listen-address=127.0.0.1 --user=root --group=root --pid-file= \
  --host-record=upstream.bench.svc.cluster.local,127.0.0.1 --address=/#/ >"$work/dnsmasq.log" 2>&1 &
pids+=($!)
printf 'nameserver 127.0.0.1\nsearch bench.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n' > "$work/resolv.conf"
printf '127.0.0.1 localhost\n' > "$work/hosts"
ctr run -d --runtime io.containerd.wasmpod.v1 --with-ns network:/var/run/netns/$ns \
  --mount "type=bind,src=$work/resolv.conf,dst=/etc/resolv.conf,options=rbind:ro" \
  --mount "type=bind,src=$work/hosts,dst=/etc/hosts,options=rbind:ro" bench/http:v1 fetch >/dev/null
for _ in $(seq 100); do ip netns exec $ns curl -sf http://127.0.0.1:8080/ >/dev/null && break; sleep 0.1; done
by_name=http://127.0.0.1:8080/fetch?url=http://upstream:8090/by-name
by_ip=http://127.0.0.1:8080/fetch?url=http://127.0.0.1:8090/by-ip
for u in "$by_name" "$by_ip"; do
  ip netns exec $ns curl -sf "$u" | grep -q "path /by-" || { echo "GET $u does not reach the upstream: $(ip netns exec $ns curl -s "$u")"; exit 1; }
done
out=$(load "$by_name"); name_rps=$(echo "$out" | parse_rps); name_p99=$(echo "$out" | parse_p99)
out=$(load "$by_ip"); ip_rps=$(echo "$out" | parse_rps); ip_p99=$(echo "$out" | parse_p99)
stop fetch
echo "by name (upstream, search domains, DNS): $name_rps req/s, p99 $name_p99"
echo "by IP (127.0.0.1):                       $ip_rps req/s, p99 $ip_p99"
echo "ratio by name / by IP (same run):        $(ratio "$name_rps" "$ip_rps")   (near 1: lookups are cached, not asked per request)"

echo "== key-value: a handler incrementing a counter per request, in memory vs Redis (wrk -t2 -c50 -d$DURATION)"
"$PACK" rootfs --wasm "$COMP/kv-counter.wasm" --entrypoint /http.wasm --name bench/kv:v1 --out "$work/kv.tar" >/dev/null
ctr images import --all-platforms "$work/kv.tar" >/dev/null
ip netns exec $ns redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ $(ip netns exec $ns redis-cli ping 2>/dev/null) == PONG ]] && break; sleep 0.1; done
ctr run -d --runtime io.containerd.wasmpod.v1 --with-ns network:/var/run/netns/$ns \
  --env WASMPOD_KEYVALUE_mem=memory --env WASMPOD_KEYVALUE_red=redis://127.0.0.1:6379 bench/kv:v1 kv >/dev/null
for _ in $(seq 100); do ip netns exec $ns curl -sf http://127.0.0.1:8080/ >/dev/null && break; sleep 0.1; done
for b in mem red; do
  got=$(ip netns exec $ns curl -s "http://127.0.0.1:8080/increment/$b/check")
  [[ $got == check=1 ]] || { echo "kv-counter /increment/$b/check answered: $got"; exit 1; }
done
# Every answered request counted: wrk's total beside the counter the backend holds.
kv_load() { # kv_load BUCKET -> "RPS P99 REQUESTS NON2XX"
  local out; out=$(load "http://127.0.0.1:8080/increment/$1/hits")
  echo "$(echo "$out" | parse_rps) $(echo "$out" | parse_p99) $(echo "$out" | awk '/requests in/ {print $1}') $(echo "$out" | awk '/Non-2xx/ {print $NF}')"
}
out=$(load http://127.0.0.1:8080/); plain_rps=$(echo "$out" | parse_rps)
read -r mem_rps mem_p99 mem_n mem_bad < <(kv_load mem)
read -r red_rps red_p99 red_n red_bad < <(kv_load red)
mem_count=$(ip netns exec $ns curl -s http://127.0.0.1:8080/get/mem/hits)
red_count=$(ip netns exec $ns redis-cli GET red:hits)
stop kv
echo "kv-counter, plain route (no key-value):  $plain_rps req/s"
echo "increment, in memory:                    $mem_rps req/s, p99 $mem_p99   (counter $mem_count after $mem_n requests, ${mem_bad:-0} non-2xx)"
echo "increment, Redis (same netns):           $red_rps req/s, p99 $red_p99   (counter $red_count after $red_n requests, ${red_bad:-0} non-2xx)"
echo "ratio in memory / hello-http (same run): $(ratio "$mem_rps" "$shim_rps")"
echo "ratio Redis / hello-http (same run):     $(ratio "$red_rps" "$shim_rps")"
echo "ratio Redis / in memory (same run):      $(ratio "$red_rps" "$mem_rps")"
