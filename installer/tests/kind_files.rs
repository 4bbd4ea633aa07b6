//! The kind files (`e2e/kind/kind-config.yaml`, its `containerd-patch-v3.toml`, and the chart's
//! `charts/wasmpod/kind-cluster.yaml`) checked against the one definition of the runtime entry:
//! the installer's own merge. A patch must hold exactly the table the installer writes into the
//! same kind node config, and the node must mount the shim where that table points, under the
//! name containerd derives from the runtime type. That containerd really reads the result (and
//! keeps runc as the default) is checked with the real binaries in `containerd_config.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod kind;

use std::path::Path;

use kind::{KindConfig, fixture, kind_merge, repo, runtime_table};
use toml_edit::DocumentMut;
use wasmpod_node_installer::config::{self, RUNTIME_TYPE, SystemdCgroup};
use wasmpod_oci::names::SHIM_BINARY;

/// What the installer writes for a shim at `runtime_path` into `node` (a fixture's name).
fn installer_table(node: &str, runtime_path: &str) -> toml_edit::Table {
    let text = fixture(node);
    let merged = config::merge(
        Path::new(node),
        &text,
        runtime_path,
        SystemdCgroup::Auto,
        None,
    )
    .expect("the installer merges the kind node config");
    let doc: DocumentMut = merged.text.parse().unwrap();
    runtime_table(&doc).expect("the merge has a wasmpod table")
}

/// The same keys and values, comments and layout aside.
fn same(a: &toml_edit::Table, b: &toml_edit::Table) -> bool {
    let norm = |t: &toml_edit::Table| {
        let mut doc = DocumentMut::new();
        doc.insert("t", toml_edit::Item::Table(t.clone()));
        let mut doc: DocumentMut = doc.to_string().parse().unwrap();
        doc.fmt();
        let text = doc.to_string();
        let mut lines: Vec<String> = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        lines
    };
    norm(a) == norm(b)
}

/// `patch`, merged into the kind node config `node` the way kind does, must hold exactly the
/// runtime table the installer writes into that node config.
fn assert_patch_is_the_installers_entry(node: &str, patch: &str, what: &str) {
    let merged = kind_merge(&fixture(node), patch);
    let patched = runtime_table(&merged)
        .unwrap_or_else(|| panic!("{what} adds no wasmpod runtime to {node}"));
    let path = patched["runtime_path"]
        .as_str()
        .expect("runtime_path")
        .to_string();
    let want = installer_table(node, &path);
    assert!(
        same(&patched, &want),
        "{what}'s runtime table differs from the installer's merge:\npatch:\n{patched}\ninstaller:\n{want}"
    );
}

#[test]
fn kind_config_patch_is_the_installers_entry_for_a_version_2_node() {
    let cfg = KindConfig::load(&repo().join("e2e/kind/kind-config.yaml"));
    assert_eq!(cfg.kind, "Cluster");
    assert_eq!(cfg.api_version, "kind.x-k8s.io/v1alpha4");
    assert_eq!(cfg.patches.len(), 1, "one containerdConfigPatch");
    assert_patch_is_the_installers_entry("kind-node.toml", &cfg.patches[0], "kind-config.yaml");
}

#[test]
fn v3_patch_is_the_installers_entry_for_a_version_3_node() {
    let patch = std::fs::read_to_string(repo().join("e2e/kind/containerd-patch-v3.toml")).unwrap();
    assert_patch_is_the_installers_entry("kind-node-v3.toml", &patch, "containerd-patch-v3.toml");
}

#[test]
fn kind_nodes_mount_the_shim_where_the_runtime_entry_points() {
    let cfg = KindConfig::load(&repo().join("e2e/kind/kind-config.yaml"));
    let node = kind_merge(&fixture("kind-node.toml"), &cfg.patches[0]);
    let table = runtime_table(&node).unwrap();
    assert_eq!(table["runtime_type"].as_str(), Some(RUNTIME_TYPE));
    let path = table["runtime_path"].as_str().unwrap();
    assert_eq!(
        Path::new(path).file_name().and_then(|n| n.to_str()),
        Some(SHIM_BINARY),
        "runtime_path must name the binary containerd derives from {RUNTIME_TYPE}"
    );
    assert!(!cfg.nodes.is_empty());
    for (i, n) in cfg.nodes.iter().enumerate() {
        let mounts: Vec<_> = n
            .mounts
            .iter()
            .filter(|m| m.container_path == path)
            .collect();
        assert_eq!(mounts.len(), 1, "nodes[{i}] mounts the shim at {path} once");
        assert!(
            mounts[0].read_only,
            "nodes[{i}]: the shim mount is read-only"
        );
        assert!(
            mounts[0].host_path.starts_with('/'),
            "nodes[{i}]: hostPath is absolute"
        );
    }
    let v3 = kind_merge(
        &fixture("kind-node-v3.toml"),
        &std::fs::read_to_string(repo().join("e2e/kind/containerd-patch-v3.toml")).unwrap(),
    );
    assert_eq!(
        runtime_table(&v3).unwrap()["runtime_path"].as_str(),
        Some(path),
        "both layouts point at the same shim"
    );
}

#[test]
fn the_charts_kind_cluster_leaves_the_node_to_the_installer() {
    let cfg = KindConfig::load(&repo().join("charts/wasmpod/kind-cluster.yaml"));
    assert_eq!(cfg.kind, "Cluster");
    assert_eq!(cfg.api_version, "kind.x-k8s.io/v1alpha4");
    assert_eq!(
        cfg.name, "wasmpod",
        "the README's kind commands use the name wasmpod"
    );
    let roles: Vec<&str> = cfg.nodes.iter().map(|n| n.role.as_str()).collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "control-plane").count(),
        1,
        "{roles:?}"
    );
    assert!(
        roles
            .iter()
            .all(|r| *r == "control-plane" || *r == "worker"),
        "{roles:?}"
    );
    // A runtime entry or shim mount here would be saved by the installer as a foreign entry and
    // put back on uninstall: the chart's path starts from an untouched node.
    assert!(cfg.patches.is_empty(), "no containerdConfigPatches");
    assert!(
        cfg.nodes.iter().all(|n| n.mounts.is_empty()),
        "no extraMounts"
    );
}
