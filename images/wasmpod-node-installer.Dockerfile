# wasmpod-node-installer: the installer and the shim it puts on nodes (both static glibc builds,
# so the shim runs on any node's libc) on an empty base. The DaemonSet
# runs it privileged as root (it writes host files and enters the host's namespaces); the
# chart's uninstall hook runs the same image as a non-root user. The build context is staged by
# images/build.sh from binaries `make` built; nothing is compiled or downloaded here.
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="wasmpod-node-installer" \
      org.opencontainers.image.description="Installs the wasmpod containerd shim on Kubernetes nodes" \
      org.opencontainers.image.source="https://github.com/wasmpod/wasmpod" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY wasmpod-node-installer /usr/local/bin/wasmpod-node-installer
COPY containerd-shim-wasmpod-v1 /usr/local/share/wasmpod/containerd-shim-wasmpod-v1
ENTRYPOINT ["/usr/local/bin/wasmpod-node-installer"]
CMD ["install", "--wait"]
