#!/usr/bin/env python3
"""`make kind-config-check`: static check of e2e/kind/kind-config.yaml and its containerd patches.

kind cannot run on the project's CI machines (no Docker engine), so this is what stops a typo in
the kind config from reaching users. No cluster needed; PyYAML + the stdlib (tomllib, Python 3.11+).

Checks:
- the YAML is a kind v1alpha4 Cluster; every node mounts the shim read-only at the path the
  runtime entry names, under the binary name containerd derives from runtime_type;
- every containerdConfigPatch (and containerd-patch-v3.toml) is valid TOML;
- merged into a representative kind node config the way kind merges patches, and put through
  containerd 2.x's v2->v3 config migration (plugins/cri/runtime/plugin.go configMigration), the
  result still has the node's runc runtime as default AND the wasmpod runtime
  (runtime_type io.containerd.wasmpod.v1). A self-test proves the check catches the classic
  mistake (a 2.x-layout patch merged into a `version = 2` node config).
Prints one PASS/FAIL line per check and `N passed, N failed` last; exit 1 on any failure.
"""
import copy
import pathlib
import sys
import tomllib

import yaml

HERE = pathlib.Path(__file__).resolve().parent
RUNTIME_TYPE = "io.containerd.wasmpod.v1"
HANDLER = "wasmpod"
V2_CRI = "io.containerd.grpc.v1.cri"
V3_RUNTIME = "io.containerd.cri.v1.runtime"

# What kind's node images ship as /etc/containerd/config.toml (kind >= 0.27 with containerd 2.x
# still writes `version = 2`), reduced to the parts that matter here.
KIND_NODE_CONFIG_V2 = """
version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  discard_unpacked_layers = true
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "/etc/containerd/cri-base.json"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = false
"""
# The same node config in containerd 2.x's own layout, for node images that switch to it.
KIND_NODE_CONFIG_V3 = """
version = 3
[plugins."io.containerd.cri.v1.images"]
  discard_unpacked_layers = true
  snapshotter = "overlayfs"
[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "registry.k8s.io/pause:3.10"
[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
    SystemdCgroup = true
"""

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
    return ok


def merge(base, patch):
    """kind's patch semantics: tables merge recursively, other values replace."""
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def migrate_cri_runtime(cfg):
    """containerd 2.x: the CRI runtime plugin's view of a config file (configMigration for v < 3:
    keys of the 1.x CRI table are copied into io.containerd.cri.v1.runtime only where that table
    does not already have them, containerd.runtimes included)."""
    plugins = cfg.get("plugins", {})
    dst = copy.deepcopy(plugins.get(V3_RUNTIME, {}))
    if cfg.get("version", 1) >= 3:
        return dst
    src = plugins.get(V2_CRI)
    if not isinstance(src, dict):
        return dst
    image_keys = {"sandbox_image", "registry", "image_decryption", "max_concurrent_downloads",
                  "image_pull_progress_timeout", "image_pull_with_sync_fs", "stats_collect_period"}
    server_keys = {"disable_tcp_service", "stream_server_address", "stream_server_port",
                   "stream_idle_timeout", "enable_tls_streaming", "x509_key_pair_streaming"}
    for k, v in src.items():
        if k in ("cni", "containerd") or k in image_keys or k in server_keys:
            continue
        dst.setdefault(k, v)
    if isinstance(src.get("cni"), dict):
        cni = dst.setdefault("cni", {})
        for k, v in src["cni"].items():
            if k == "bin_dir":
                cni.setdefault("bin_dirs", [v])
            else:
                cni.setdefault(k, v)
    if isinstance(src.get("containerd"), dict):
        ctd = dst.setdefault("containerd", {})
        for k, v in src["containerd"].items():
            if k not in ("snapshotter", "disable_snapshot_annotations", "discard_unpacked_layers"):
                ctd.setdefault(k, v)
    return dst


def runtime_problems(runtime_cfg):
    """Why containerd's CRI would not serve both runc (default) and wasmpod, or [] if it would."""
    ctd = runtime_cfg.get("containerd", {})
    runtimes = ctd.get("runtimes", {})
    problems = []
    default = ctd.get("default_runtime_name", "runc")
    if default not in runtimes:
        problems.append(f"default_runtime_name {default!r} has no runtime entry (CRI plugin fails to load)")
    w = runtimes.get(HANDLER)
    if not w:
        problems.append(f"no runtime {HANDLER!r} (pods get: no runtime for \"{HANDLER}\" is configured)")
    elif w.get("runtime_type") != RUNTIME_TYPE:
        problems.append(f"runtime {HANDLER!r} has runtime_type {w.get('runtime_type')!r}, want {RUNTIME_TYPE!r}")
    return problems


def shim_binary_name(runtime_type):
    """containerd's rule: io.containerd.NAME.VERSION -> containerd-shim-NAME-VERSION."""
    parts = runtime_type.split(".")
    return f"containerd-shim-{parts[-2]}-{parts[-1]}"


def check_installer_config(cfg_path):
    """The chart's kind config: a plain cluster; the node installer adds the runtime itself."""
    try:
        cfg = yaml.safe_load(cfg_path.read_text())
    except yaml.YAMLError as e:
        check(f"{cfg_path.name} is valid YAML", False, str(e))
        return
    check(f"{cfg_path.name}: kind Cluster, apiVersion kind.x-k8s.io/v1alpha4",
          cfg.get("kind") == "Cluster" and cfg.get("apiVersion") == "kind.x-k8s.io/v1alpha4")
    check(f"{cfg_path.name}: cluster name wasmpod (the README's kind commands use it)",
          cfg.get("name") == "wasmpod", f"name={cfg.get('name')!r}")
    nodes = cfg.get("nodes") or []
    check(f"{cfg_path.name}: one control-plane, roles control-plane/worker",
          [n.get("role") for n in nodes].count("control-plane") == 1
          and all(n.get("role") in ("control-plane", "worker") for n in nodes), f"nodes={nodes!r}")
    # A runtime entry or shim mount here would be saved by the installer as a foreign entry and
    # put back on uninstall: the chart path must start from an untouched node.
    check(f"{cfg_path.name}: no containerd patches or shim mounts (the installer does it)",
          not cfg.get("containerdConfigPatches") and not any(n.get("extraMounts") for n in nodes))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--installer":
        check_installer_config(pathlib.Path(sys.argv[2]))
        return
    # Optional argument: another rendering of the config (e2e/kind/up.sh substitutes the hostPath).
    cfg_path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "kind-config.yaml"
    try:
        cfg = yaml.safe_load(cfg_path.read_text())
    except yaml.YAMLError as e:
        check(f"{cfg_path.name} is valid YAML", False, str(e))
        return
    check(f"{cfg_path.name} is valid YAML", True)
    check("kind Cluster, apiVersion kind.x-k8s.io/v1alpha4",
          cfg.get("kind") == "Cluster" and cfg.get("apiVersion") == "kind.x-k8s.io/v1alpha4",
          f"kind={cfg.get('kind')!r} apiVersion={cfg.get('apiVersion')!r}")
    known = {"kind", "apiVersion", "name", "nodes", "networking", "featureGates", "runtimeConfig",
             "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902", "containerdConfigPatches",
             "containerdConfigPatchesJSON6902"}
    check("only known top-level kind fields", set(cfg) <= known, f"unknown: {sorted(set(cfg) - known)}")
    nodes = cfg.get("nodes") or []
    check("at least one node, roles control-plane/worker",
          bool(nodes) and all(n.get("role") in ("control-plane", "worker") for n in nodes),
          f"nodes={nodes!r}")

    patches = cfg.get("containerdConfigPatches") or []
    parsed = []
    for i, p in enumerate(patches):
        try:
            parsed.append(tomllib.loads(p))
            check(f"containerdConfigPatches[{i}] is valid TOML", True)
        except (tomllib.TOMLDecodeError, TypeError) as e:
            check(f"containerdConfigPatches[{i}] is valid TOML", False, str(e))
    check("at least one containerdConfigPatch", bool(patches))
    try:
        v3_patch = tomllib.loads((HERE / "containerd-patch-v3.toml").read_text())
        check("containerd-patch-v3.toml is valid TOML", True)
    except tomllib.TOMLDecodeError as e:
        check("containerd-patch-v3.toml is valid TOML", False, str(e))
        v3_patch = {}

    def apply(base_text, patch_list):
        node = tomllib.loads(base_text)
        for p in patch_list:
            node = merge(node, p)
        return migrate_cri_runtime(node)

    probs = runtime_problems(apply(KIND_NODE_CONFIG_V2, parsed))
    check("kind-config.yaml patches on a `version = 2` kind node: runc default + wasmpod runtime",
          not probs, "; ".join(probs))
    probs = runtime_problems(apply(KIND_NODE_CONFIG_V3, [v3_patch]))
    check("containerd-patch-v3.toml on a `version = 3` kind node: runc default + wasmpod runtime",
          not probs, "; ".join(probs))
    # Self-test of the migration model: the 2.x-layout patch on a version 2 node must be caught.
    probs = runtime_problems(apply(KIND_NODE_CONFIG_V2, [v3_patch]))
    check("self-test: a 2.x-layout patch on a `version = 2` node is detected as breaking runc",
          bool(probs), "the migration model no longer detects it")

    # The mount must put the shim where the runtime entry points, under containerd's binary name.
    paths = set()
    for p in parsed + [v3_patch]:
        rt = (p.get("plugins", {}).get(V2_CRI) or p.get("plugins", {}).get(V3_RUNTIME) or {})
        w = rt.get("containerd", {}).get("runtimes", {}).get(HANDLER, {})
        if w.get("runtime_path"):
            paths.add(w["runtime_path"])
    want_name = shim_binary_name(RUNTIME_TYPE)
    check(f"runtime_path names {want_name} (same in both layouts)",
          len(paths) == 1 and pathlib.PurePosixPath(next(iter(paths))).name == want_name, f"{paths}")
    for i, n in enumerate(nodes):
        mounts = n.get("extraMounts") or []
        shim = [m for m in mounts if m.get("containerPath") in paths]
        check(f"nodes[{i}] mounts the shim (absolute hostPath) read-only at the runtime_path",
              len(shim) == 1 and shim[0].get("readOnly") is True
              and str(shim[0].get("hostPath", "")).startswith("/"),
              f"extraMounts={mounts!r}")


if __name__ == "__main__":
    main()
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
