//! The merged fixture configs, loaded by the real containerd binaries (2.2.9 and 1.7.35 from
//! `e2e/build-deps.sh containerd2 containerd17`): `containerd --config F config dump` must show
//! the `wasmpod` runtime with our type, path and SystemdCgroup, with runc still the default.
//! This is the check that the installer picked the table containerd actually reads, including
//! kind's `version = 2` file on containerd 2.x (which containerd migrates).

use std::path::{Path, PathBuf};
use std::process::Command;

use toml_edit::{DocumentMut, Item};
use wasmpod_node_installer::config::{self, SystemdCgroup};

const SHIM: &str = "/opt/wasmpod/bin/containerd-shim-wasmpod-v1";

/// containerd's bin directory for a build-deps component; fails with the command to run.
fn containerd(component: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join("e2e/build-deps.sh"))
        .args(["--print-dir", component])
        .output()
        .expect("e2e/build-deps.sh");
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("containerd");
    assert!(
        bin.exists(),
        "{} missing: run e2e/build-deps.sh containerd2 containerd17",
        bin.display()
    );
    bin
}

/// The effective config containerd reads from `text`.
fn dump(containerd: &Path, text: &str) -> DocumentMut {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, text).expect("write config");
    let out = Command::new(containerd)
        .arg("--config")
        .arg(&file)
        .args(["config", "dump"])
        .output()
        .expect("run containerd");
    assert!(
        out.status.success(),
        "{} config dump failed: {}",
        containerd.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .parse()
        .expect("dump is TOML")
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

#[test]
fn containerd_17_reads_the_merged_17_config() {
    assert_loaded(
        "containerd17",
        "containerd-1.7.toml",
        "io.containerd.grpc.v1.cri",
        true,
    );
}

#[test]
fn containerd_2_reads_the_merged_2x_config() {
    assert_loaded(
        "containerd2",
        "containerd-2.x.toml",
        "io.containerd.cri.v1.runtime",
        false,
    );
}

#[test]
fn containerd_2_migrates_the_merged_kind_node_config() {
    assert_loaded(
        "containerd2",
        "kind-node.toml",
        "io.containerd.cri.v1.runtime",
        true,
    );
}

#[test]
fn containerd_17_reads_the_merged_kind_node_config() {
    assert_loaded(
        "containerd17",
        "kind-node.toml",
        "io.containerd.grpc.v1.cri",
        true,
    );
}

#[test]
fn containerd_2_reads_a_replaced_foreign_entry() {
    assert_loaded(
        "containerd2",
        "other-wasmpod-entry.toml",
        "io.containerd.cri.v1.runtime",
        false,
    );
}
