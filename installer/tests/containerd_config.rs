//! The merged fixture configs, loaded by the real containerd binaries (2.2.9 and 1.7.35 from
//! `e2e/build-deps.sh containerd2 containerd17`): `containerd --config F config dump` must show
//! the `wasmpod` runtime with our type, path and SystemdCgroup, with runc still the default.
//! This is the check that the installer picked the table containerd actually reads, including
//! kind's `version = 2` file on containerd 2.x (which containerd migrates).

use std::path::{Path, PathBuf};
use std::process::Command;

mod kind;

use toml_edit::{DocumentMut, Item};
use wasmpod_node_installer::config::{self, SystemdCgroup};
use wasmpod_testkit::{Tier, paths, tests};

const SHIM: &str = "/opt/wasmpod/bin/containerd-shim-wasmpod-v1";

/// The containerd binary of a build-deps component.
fn containerd(component: &str) -> PathBuf {
    paths::deps_dir(component)
        .unwrap_or_else(|e| panic!("{e}"))
        .join("containerd")
}

/// Why the tier cannot run here: a containerd binary not built.
fn missing_prerequisites() -> Option<String> {
    paths::first_missing(["containerd2", "containerd17"].map(|c| {
        let bin = paths::deps_dir(c).unwrap_or_default().join("containerd");
        paths::missing_file(&bin, "e2e/build-deps.sh containerd2 containerd17")
    }))
}

/// The effective config containerd reads from `text`.
fn dump(containerd: &Path, text: &str) -> DocumentMut {
    try_dump(containerd, text).unwrap_or_else(|e| panic!("{e}"))
}

/// [`dump`], or containerd's complaint.
fn try_dump(containerd: &Path, text: &str) -> Result<DocumentMut, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, text).expect("write config");
    let out = Command::new(containerd)
        .arg("--config")
        .arg(&file)
        .args(["config", "dump"])
        .output()
        .expect("run containerd");
    if !out.status.success() {
        return Err(format!(
            "{} config dump failed: {}",
            containerd.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .parse()
        .map_err(|e| format!("config dump is not TOML: {e}"))
}

/// Why the CRI runtime plugin of `doc` would not serve runc (the default) and wasmpod, if so.
fn cri_problem(doc: &DocumentMut, plugin: &str) -> Option<String> {
    let ctd = &doc["plugins"][plugin]["containerd"];
    let default = ctd["default_runtime_name"].as_str().unwrap_or("runc");
    if ctd["runtimes"][default]["runtime_type"].as_str().is_none() {
        return Some(format!("the default runtime {default:?} has no entry"));
    }
    if ctd["runtimes"]["wasmpod"]["runtime_type"].as_str() != Some(config::RUNTIME_TYPE) {
        return Some("no wasmpod runtime of type io.containerd.wasmpod.v1".into());
    }
    None
}

/// A kind node config with a kind patch applied the way kind applies it, as containerd 2 sees it.
fn kind_node_with_patch(node: &str, patch: &str) -> Result<DocumentMut, String> {
    let merged = kind::kind_merge(&kind::fixture(node), patch);
    try_dump(&containerd("containerd2"), &merged.to_string())
}

fn kind_config_patch() -> String {
    let cfg = kind::KindConfig::load(&kind::repo().join("e2e/kind/kind-config.yaml"));
    cfg.patches
        .into_iter()
        .next()
        .expect("a containerdConfigPatch")
}

fn v3_patch() -> String {
    std::fs::read_to_string(kind::repo().join("e2e/kind/containerd-patch-v3.toml"))
        .expect("v3 patch")
}

fn containerd_2_serves_the_kind_config_patch_on_a_version_2_node() {
    let doc = kind_node_with_patch("kind-node.toml", &kind_config_patch())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cri_problem(&doc, "io.containerd.cri.v1.runtime"), None);
}

fn containerd_2_serves_the_v3_patch_on_a_version_3_node() {
    let doc =
        kind_node_with_patch("kind-node-v3.toml", &v3_patch()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cri_problem(&doc, "io.containerd.cri.v1.runtime"), None);
}

/// The classic mistake the two patches exist for, shown on the real binary: a 2.x-layout table
/// merged into a `version = 2` node makes containerd's migration skip the node's own runtimes.
fn a_2x_layout_patch_on_a_version_2_node_is_caught() {
    let problem = match kind_node_with_patch("kind-node.toml", &v3_patch()) {
        Ok(doc) => cri_problem(&doc, "io.containerd.cri.v1.runtime"),
        Err(e) => Some(e),
    };
    assert!(
        problem.is_some(),
        "containerd 2 served runc and wasmpod although a 2.x-layout patch went into a version 2 file"
    );
}

fn runtimes<'a>(doc: &'a DocumentMut, plugin: &str) -> &'a Item {
    &doc["plugins"][plugin]["containerd"]["runtimes"]
}

fn assert_loaded(component: &str, fixture: &str, plugin: &str, systemd: bool) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let text = std::fs::read_to_string(Path::new(dir).join(fixture)).expect("fixture");
    let merged =
        config::merge(Path::new(fixture), &text, SHIM, SystemdCgroup::Auto, None).expect("merge");
    let doc = dump(&containerd(component), &merged.text);
    let rts = runtimes(&doc, plugin);
    let wasmpod = &rts["wasmpod"];
    let ctx = format!("{component} {fixture}");
    assert_eq!(
        wasmpod["runtime_type"].as_str(),
        Some(config::RUNTIME_TYPE),
        "{ctx}"
    );
    assert_eq!(wasmpod["runtime_path"].as_str(), Some(SHIM), "{ctx}");
    assert_eq!(
        wasmpod["options"]["SystemdCgroup"].as_bool(),
        Some(systemd),
        "{ctx}"
    );
    assert_eq!(
        rts["runc"]["runtime_type"].as_str(),
        Some("io.containerd.runc.v2"),
        "{ctx}: runc kept"
    );
    assert_eq!(
        doc["plugins"][plugin]["containerd"]["default_runtime_name"].as_str(),
        Some("runc"),
        "{ctx}: runc stays the default"
    );
}

fn containerd_17_reads_the_merged_17_config() {
    assert_loaded(
        "containerd17",
        "containerd-1.7.toml",
        "io.containerd.grpc.v1.cri",
        true,
    );
}

fn containerd_2_reads_the_merged_2x_config() {
    assert_loaded(
        "containerd2",
        "containerd-2.x.toml",
        "io.containerd.cri.v1.runtime",
        false,
    );
}

fn containerd_2_migrates_the_merged_kind_node_config() {
    assert_loaded(
        "containerd2",
        "kind-node.toml",
        "io.containerd.cri.v1.runtime",
        true,
    );
}

fn containerd_17_reads_the_merged_kind_node_config() {
    assert_loaded(
        "containerd17",
        "kind-node.toml",
        "io.containerd.grpc.v1.cri",
        true,
    );
}

fn containerd_2_reads_a_replaced_foreign_entry() {
    assert_loaded(
        "containerd2",
        "other-wasmpod-entry.toml",
        "io.containerd.cri.v1.runtime",
        false,
    );
}

fn main() {
    let tier = Tier {
        name: "installer configs loaded by real containerd",
        require_var: "WASMPOD_REQUIRE_CONTAINERD",
    };
    tier.run(
        missing_prerequisites(),
        tests![
            containerd_17_reads_the_merged_17_config,
            containerd_2_reads_the_merged_2x_config,
            containerd_2_migrates_the_merged_kind_node_config,
            containerd_17_reads_the_merged_kind_node_config,
            containerd_2_reads_a_replaced_foreign_entry,
            containerd_2_serves_the_kind_config_patch_on_a_version_2_node,
            containerd_2_serves_the_v3_patch_on_a_version_3_node,
            a_2x_layout_patch_on_a_version_2_node_is_caught,
        ],
    );
}
