#!/usr/bin/env bash
# Installs what building and testing wasmpod needs on a fresh Debian 12 machine. Idempotent:
# each step checks first, so a warm run takes a second or two.
set -euo pipefail

APT_PACKAGES=(
  protobuf-compiler          # containerd-client and the shim protos generate code with protoc
  runc                       # native containers of a pod (pause, sidecars)
  containernetworking-plugins
  docker-registry            # the local OCI registry of the tests
  skopeo                     # pushes OCI archives to it
  dnsmasq-base               # the DNS server of the guest DNS tests, inside a test pod's netns (no service)
  redis-server               # the key-value tests' Redis, started by the tests in a test pod's netns (no service)
  busybox-static             # shell/wget/nslookup in test images
  iptables iproute2 jq curl socat
  libc6-dev                  # static pause binary
  libssl-dev pkg-config      # oci-pack (test image packer) links OpenSSL through oci-client
  buildah                    # builds the images from their Dockerfiles without a Docker engine
  wrk hyperfine              # benchmarks
  qemu-system-x86            # the cgroup v2 VM node (e2e/vm), software-emulated
  linux-image-amd64          # its kernel (in /boot; the running kernel is not changed)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> apt-get install ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for t in wasm32-wasip2 wasm32-wasip1; do
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

# virtme-ng boots the VM node with this machine's root filesystem shared read-only.
command -v vng >/dev/null || python3 -m pip install --quiet "virtme-ng==1.42"

# The chart and kind config checks parse YAML with PyYAML.
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
