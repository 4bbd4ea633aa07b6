#!/usr/bin/env python3
"""Pack files into a single-layer OCI image archive (an `oci-archive:` tar), Python stdlib only.

Why: no Docker/buildah here and nothing but package registries reachable, so the test bed's images
(pause, busybox, coredns, test servers) are assembled from locally built static binaries. The
archive is reproducible (fixed mtimes, owners and gzip header), so rebuilding it gives the same
digests and pushing it again is a no-op. `ctr images import` names the image after the index
annotation io.containerd.image.name; skopeo copies it to a registry.

usage: mkimage.py --out OUT.tar --name REF [--entrypoint ARG]... [--cmd ARG]... [--env K=V]...
                  [--add SRC:DST[:MODE]]... [--symlink DST:TARGET]... [--dir DST]... [--port N]...
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import tarfile

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def layer_tar(adds, links, dirs):
    """The uncompressed layer: parent directories, files, symlinks; sorted for reproducibility."""
    entries = {}

    def parents(path):
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            entries.setdefault("/".join(parts[:i]), ("dir", None, 0o755))

    for d in dirs:
        parents(d.rstrip("/") + "/x")
    for src, dst, mode in adds:
        parents(dst)
        entries[dst.strip("/")] = ("file", src, mode)
    for dst, target in links:
        parents(dst)
        entries[dst.strip("/")] = ("link", target, 0o777)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            kind, arg, mode = entries[name]
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.mode = 0, 0, 0, mode
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, arg
                tar.addfile(info)
            else:
                with open(arg, "rb") as f:
                    data = f.read()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--name", required=True, help="full reference, e.g. registry.k8s.io/pause:3.10")
    p.add_argument("--entrypoint", action="append", default=[])
    p.add_argument("--cmd", action="append", default=[])
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--add", action="append", default=[], help="SRC:DST[:OCTAL_MODE]")
    p.add_argument("--symlink", action="append", default=[], help="DST:TARGET")
    p.add_argument("--dir", action="append", default=[])
    p.add_argument("--port", action="append", default=[])
    a = p.parse_args()

    adds = []
    for spec in a.add:
        parts = spec.split(":")
        mode = int(parts[2], 8) if len(parts) > 2 else (0o755 if os.access(parts[0], os.X_OK) else 0o644)
        adds.append((parts[0], parts[1], mode))
    links = [tuple(s.split(":", 1)) for s in a.symlink]

    raw = layer_tar(adds, links, a.dir)
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=6) as g:
        g.write(raw)
    layer = gz.getvalue()

    cfg = {"Env": a.env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
           "WorkingDir": "/"}
    if a.entrypoint:
        cfg["Entrypoint"] = a.entrypoint
    if a.cmd:
        cfg["Cmd"] = a.cmd
    if a.port:
        cfg["ExposedPorts"] = {f"{n}/tcp": {} for n in a.port}
    config = json.dumps({
        "architecture": ARCH, "os": "linux", "created": "1970-01-01T00:00:00Z", "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [sha(raw)]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "e2e/cluster/images/mkimage.py"}],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(layer),
                    "size": len(layer)}],
    }, sort_keys=True).encode()
    tag = a.name.rsplit(":", 1)[1] if ":" in a.name.rsplit("/", 1)[-1] else "latest"
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
                       "size": len(manifest),
                       "annotations": {"io.containerd.image.name": a.name,
                                       "org.opencontainers.image.ref.name": tag}}],
    }, sort_keys=True).encode()

    files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)]
    files += [("blobs/sha256/" + sha(b)[7:], b) for b in (layer, config, manifest)]
    tmp = a.out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, a.out)
    print(sha(manifest))


if __name__ == "__main__":
    main()
