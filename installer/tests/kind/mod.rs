//! Reading kind cluster configs and applying containerd patches the way kind does.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml_edit::{DocumentMut, Item, Table};
use wasmpod_node_installer::config::HANDLER;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The parts of a kind `Cluster` (kind.x-k8s.io/v1alpha4) that matter here.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KindConfig {
    pub kind: String,
    pub api_version: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub nodes: Vec<KindNode>,
    #[serde(default, rename = "containerdConfigPatches")]
    pub patches: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KindNode {
    pub role: String,
    #[serde(default, rename = "extraMounts")]
    pub mounts: Vec<KindMount>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KindMount {
    pub host_path: String,
    pub container_path: String,
    #[serde(default)]
    pub read_only: bool,
}

impl KindConfig {
    pub fn load(path: &Path) -> Self {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// kind's patch semantics: tables merge key by key, recursively; any other value replaces.
pub fn kind_merge(node: &str, patch: &str) -> DocumentMut {
    let mut doc: DocumentMut = node.parse().expect("node config is TOML");
    let patch: DocumentMut = patch.parse().expect("patch is TOML");
    merge_table(doc.as_table_mut(), patch.as_table());
    doc
}

fn merge_table(into: &mut Table, from: &Table) {
    for (key, item) in from.iter() {
        match (into.get_mut(key), item) {
            (Some(Item::Table(dst)), Item::Table(src)) => merge_table(dst, src),
            _ => {
                into.insert(key, item.clone());
            }
        }
    }
}

/// The `wasmpod` runtime table of a config, in whichever layout its `version` says.
pub fn runtime_table(doc: &DocumentMut) -> Option<Table> {
    let plugin = match doc.get("version").and_then(Item::as_integer) {
        Some(3) => "io.containerd.cri.v1.runtime",
        _ => "io.containerd.grpc.v1.cri",
    };
    doc.get("plugins")?
        .get(plugin)?
        .get("containerd")?
        .get("runtimes")?
        .get(HANDLER)?
        .as_table()
        .cloned()
}
