#!/usr/bin/env bash
# Builds the test bed's Go programs from their Go modules at the versions pinned in e2e/versions.env,
# into a versioned cache outside the clone ($WASMPOD_CACHE/deps/<name>-<version>/bin). A component
# whose binaries are already there is skipped, so a warm run takes seconds.
#
# usage: e2e/build-deps.sh [component...]   components: containerd2 containerd17 crictl etcd
#                                           kubernetes helm coredns (default: all)
# prints nothing on stdout but, with --print-dir NAME, the bin dir of one component.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=../scripts/paths.sh
source "$here/../scripts/paths.sh"
CACHE=$WASMPOD_CACHE
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOPATH=${GOPATH:-/root/go} GOCACHE=${GOCACHE:-/root/.cache/go-build}

version_of() {
  case $1 in
    containerd2) echo "$CONTAINERD2_VERSION" ;;
    containerd17) echo "$CONTAINERD17_VERSION" ;;
    crictl) echo "$CRICTL_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    kubernetes) echo "$KUBERNETES_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    *) echo "unknown component '$1'" >&2; return 1 ;;
  esac
}
# A recipe suffix names a change in how a component is built, so a cached build from the old recipe
# is not taken for the new one.
recipe_of() { case $1 in helm) echo "-k8s$HELM_K8S_MINOR" ;; coredns) echo "-slim" ;; esac; }
bin_dir() { echo "$CACHE/deps/$1-$(version_of "$1")$(recipe_of "$1")/bin"; }

if [[ ${1:-} == --print-dir ]]; then bin_dir "$2"; exit 0; fi

# A throwaway main module per component: several of these projects carry `replace` lines that
# `go install pkg@version` refuses, so we require them from a module of our own instead.
wrapper() { # wrapper DIR GOVERSION
  rm -rf "$1" && mkdir -p "$1" && printf 'module local/wasmpodbuild\n\ngo %s\n' "$2" > "$1/go.mod"
}

build_containerd() { # build_containerd MODULE VERSION OUT
  local mod=$1 v=$2 out=$3 w; w=$(mktemp -d)
  wrapper "$w" 1.24.0
  (cd "$w" && go get "$mod@v$v" >/dev/null 2>&1 || go get "$mod@v$v"
   local ld="-s -w -X $mod/version.Version=v$v -X $mod/version.Revision=go-module"
   go build -trimpath -ldflags "$ld" -o "$out/" "$mod/cmd/containerd" "$mod/cmd/ctr" "$mod/cmd/containerd-shim-runc-v2")
  rm -rf "$w"
}

build_kubernetes() { # upstream's staging modules are v0.0.0 + replace; pin each to its tag
  local v=$1 out=$2 w minor cmds m ld p staging upstream gover godebug; w=$(mktemp -d); minor=$(echo "$v" | cut -d. -f2)
  cmds="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"
  # Read upstream's staging list while $w has no go.mod yet: a half-written go.mod would make this
  # `go mod download` fail, silently leaving the replace block empty (=> "k8s.io/api@v0.0.0: 403").
  upstream=$(cd "$w" && go mod download -json "k8s.io/kubernetes@v$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging=$(sed -n 's#^\s*k8s.io/\([a-z0-9-]*\) => ./staging.*#\1#p' "$upstream")
  [[ -n $staging ]] || { echo "could not read the staging modules of k8s.io/kubernetes@v$v" >&2; return 1; }
  # Upstream's own go and godebug lines, so the binaries keep upstream's runtime defaults.
  gover=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream"); godebug=$(sed -n 's/^godebug \(.*\)$/\1/p' "$upstream")
  printf 'module local/k8sbuild\n\ngo %s\n\ngodebug %s\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' \
    "$gover" "$godebug" "$v" > "$w/go.mod"
  for m in $staging; do
    printf '\tk8s.io/%s => k8s.io/%s v0.%s\n' "$m" "$m" "${v#1.}" >> "$w/go.mod"
  done
  echo ')' >> "$w/go.mod"
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=v$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  (cd "$w" && go get $(for c in $cmds; do printf 'k8s.io/kubernetes/cmd/%s@v%s ' "$c" "$v"; done) &&
   go build -trimpath -tags selinux,notest,grpcnotrace,providerless -ldflags "$ld" -o "$out/" \
     $(for c in $cmds; do printf 'k8s.io/kubernetes/cmd/%s ' "$c"; done))
  rm -rf "$w"
}

build_etcd() {
  local v=$1 out=$2 w; w=$(mktemp -d); wrapper "$w" 1.25.0
  (cd "$w" && go get "go.etcd.io/etcd/server/v3@v$v" "go.etcd.io/etcd/etcdctl/v3@v$v" &&
   go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 &&
   go build -trimpath -ldflags "-s -w" -o "$out/etcdctl" go.etcd.io/etcd/etcdctl/v3)
  rm -rf "$w"
}

# cri-tools through a wrapper module, because the Go proxy here
# - has no sum.golang.org entry for sigs.k8s.io/cri-tools at any version (404): skip the sumdb for it;
# - refuses its @v/list (403), which `go install pkg@v` needs for its deprecation check;
# - does not serve the k8s.io/* v0.34.0-rc.2 pre-releases cri-tools 1.34.0 requires: we raise them
#   to the released staging tags of the same minor (CRICTL_K8S_LIBS), as MVS allows.
build_crictl() {
  local v=$1 out=$2 w k m; w=$(mktemp -d); wrapper "$w" 1.24.0; k="v$CRICTL_K8S_LIBS"
  (cd "$w" && GONOSUMDB=sigs.k8s.io/cri-tools go get "sigs.k8s.io/cri-tools@v$v" \
     $(for m in api apimachinery client-go cri-api cri-client kubectl kubelet cli-runtime component-base; do
         printf 'k8s.io/%s@%s ' "$m" "$k"; done) &&
   GONOSUMDB=sigs.k8s.io/cri-tools go build -trimpath \
     -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$v" -o "$out/" sigs.k8s.io/cri-tools/cmd/crictl)
  rm -rf "$w"
}

build_install() { # build_install PKG VERSION OUT LDFLAGS
  GOBIN=$3 go install -trimpath -ldflags "-s -w $4" "$1@v$2"
}

# As helm's Makefile does: the Kubernetes version offline rendering (`helm template`) assumes is
# major.minor of the client-go it was built with, not the source default v1.20.
build_helm() {
  local ld="-X helm.sh/helm/v3/internal/version.version=v$1" p
  for p in pkg/chartutil pkg/lint/rules; do
    ld="$ld -X helm.sh/helm/v3/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/$p.k8sVersionMinor=$HELM_K8S_MINOR"
  done
  build_install helm.sh/helm/v3/cmd/helm "$1" "$2" "$ld"
}

# CoreDNS with only the plugins the cluster's Corefile uses (e2e/cluster/manifests/coredns.yaml),
# as CoreDNS documents for custom builds: its own main package pulls in every plugin, and with
# them cloud SDKs (route53, azure, clouddns), tracing and etcd clients, which doubled the build.
# A plugin missing here fails CoreDNS at start, naming the directive.
COREDNS_PLUGINS="errors health ready kubernetes metrics cache reload loadbalance"
build_coredns() { # build_coredns VERSION OUT
  local v=$1 out=$2 w p; w=$(mktemp -d)
  wrapper "$w" 1.24.0
  {
    printf 'package main\n\nimport (\n\t"github.com/coredns/coredns/coremain"\n'
    for p in $COREDNS_PLUGINS; do printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$p"; done
    printf ')\n\nfunc main() { coremain.Run() }\n'
  } > "$w/main.go"
  (cd "$w" && go get "github.com/coredns/coredns@v$v" >/dev/null 2>&1 || go get "github.com/coredns/coredns@v$v"
   go build -trimpath -ldflags "-s -w" -o "$out/coredns" .)
  rm -rf "$w"
}

build_one() {
  local c=$1 v out tmp start
  v=$(version_of "$c"); out=$(bin_dir "$c")
  if [[ -f $out/.complete ]]; then echo "==> $c $v: cached in $out" >&2; return 0; fi
  echo "==> $c $v: building into $out" >&2
  start=$(date +%s); tmp="$out.partial"; rm -rf "$tmp"; mkdir -p "$tmp"
  case $c in
    containerd2) build_containerd github.com/containerd/containerd/v2 "$v" "$tmp" ;;
    containerd17) build_containerd github.com/containerd/containerd "$v" "$tmp" ;;
    crictl) build_crictl "$v" "$tmp" ;;
    etcd) build_etcd "$v" "$tmp" ;;
    kubernetes) build_kubernetes "$v" "$tmp" ;;
    helm) build_helm "$v" "$tmp" ;;
    coredns) build_coredns "$v" "$tmp" ;;
  esac
  touch "$tmp/.complete"; rm -rf "$out"; mv "$tmp" "$out"
  echo "==> $c $v: built in $(( $(date +%s) - start ))s" >&2
}

comps=("$@")
((${#comps[@]})) || comps=(containerd2 containerd17 crictl etcd kubernetes helm coredns)
for c in "${comps[@]}"; do build_one "$c"; done
