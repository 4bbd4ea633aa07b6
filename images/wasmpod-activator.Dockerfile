# wasmpod-activator: one static binary (glibc, crt-static) on an empty base, run as a non-root
# user with a read-only root filesystem (compiled components go to an emptyDir). Staged by
# images/build.sh from the workspace build; nothing is compiled or downloaded here.
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="wasmpod-activator" \
      org.opencontainers.image.description="Serves WasmApps scaled to zero, in-process, until their pods are back" \
      org.opencontainers.image.source="https://github.com/wasmpod/wasmpod" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# Root CAs for registries reached over HTTPS, and for the guests' outgoing HTTPS.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY wasmpod-activator /usr/local/bin/wasmpod-activator
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/wasmpod-activator"]
