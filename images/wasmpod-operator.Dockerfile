# wasmpod-operator: one static binary (glibc, crt-static) on an empty base, run as a
# non-root user. The build context is staged by images/build.sh from binaries `make` built;
# nothing is compiled or downloaded here.
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="wasmpod-operator" \
      org.opencontainers.image.description="Kubernetes operator for WasmApp resources" \
      org.opencontainers.image.source="https://github.com/wasmpod/wasmpod" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# Root CAs for registries the operator inspects over HTTPS (the build host's Debian bundle).
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY wasmpod-operator /usr/local/bin/wasmpod-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/wasmpod-operator"]
