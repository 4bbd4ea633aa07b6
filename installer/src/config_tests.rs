use std::path::Path;

use toml_edit::DocumentMut;

use super::*;

const SHIM: &str = "/opt/wasmpod/bin/containerd-shim-wasmpod-v1";

fn fixture(name: &str) -> (String, &'static Path) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let path = Path::new(dir).join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    (text, Path::new("/etc/containerd/config.toml"))
}

fn merge_fixture(name: &str) -> (String, Merged) {
    let (text, path) = fixture(name);
    let merged = merge(path, &text, SHIM, SystemdCgroup::Auto, None).unwrap();
    (text, merged)
}

/// The `wasmpod` table of `plugin`'s runtimes in a merged config.
fn runtime<'a>(doc: &'a DocumentMut, plugin: &str) -> Option<&'a toml_edit::Item> {
    doc.get("plugins")?
        .get(plugin)?
        .get("containerd")?
        .get("runtimes")?
        .get(HANDLER)
}

/// Every line of `before` appears in `after`, in the same order (the merge only adds lines).
fn assert_lines_kept(before: &str, after: &str) {
    let mut rest = after.lines();
    for line in before.lines() {
        assert!(
            rest.any(|l| l == line),
            "line {line:?} lost or moved; result:\n{after}"
        );
    }
}

#[test]
fn containerd_17_config_gets_the_grpc_cri_table_and_keeps_everything_else() {
    let (before, m) = merge_fixture("containerd-1.7.toml");
    assert!(m.changed);
    assert_eq!(m.layout, Layout::V2);
    assert_eq!(m.previous, None);
    let doc: DocumentMut = m.text.parse().unwrap();
    let rt = runtime(&doc, "io.containerd.grpc.v1.cri").expect("runtime table");
    assert_eq!(rt["runtime_type"].as_str(), Some(RUNTIME_TYPE));
    assert_eq!(rt["runtime_path"].as_str(), Some(SHIM));
    assert_eq!(
        rt["options"]["SystemdCgroup"].as_bool(),
        Some(true),
        "copied from runc's options"
    );
    assert!(runtime(&doc, "io.containerd.cri.v1.runtime").is_none());
    assert_lines_kept(&before, &m.text);
    assert!(m.text.contains(MARKER));
    // The table sits right after runc's, with a header (not as dotted keys).
    let header = "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.wasmpod]";
    let at = m.text.find(header).expect("header");
    let runc_opts = m.text.find("SystemdCgroup = true").unwrap();
    let registry = m
        .text
        .find("[plugins.\"io.containerd.grpc.v1.cri\".registry]")
        .unwrap();
    assert!(runc_opts < at && at < registry, "placement:\n{}", m.text);
}

#[test]
fn containerd_2_config_gets_the_cri_runtime_table() {
    let (before, m) = merge_fixture("containerd-2.x.toml");
    assert!(m.changed);
    assert_eq!(m.layout, Layout::V3);
    let doc: DocumentMut = m.text.parse().unwrap();
    let rt = runtime(&doc, "io.containerd.cri.v1.runtime").expect("runtime table");
    assert_eq!(rt["runtime_type"].as_str(), Some(RUNTIME_TYPE));
    assert_eq!(rt["runtime_path"].as_str(), Some(SHIM));
    assert_eq!(rt["options"]["SystemdCgroup"].as_bool(), Some(false));
    assert!(
        doc["plugins"].get("io.containerd.grpc.v1.cri").is_none(),
        "no 1.x section added to a version 3 file:\n{}",
        m.text
    );
    assert_lines_kept(&before, &m.text);
}

#[test]
fn kind_node_config_is_version_2_even_on_containerd_2() {
    let (before, m) = merge_fixture("kind-node.toml");
    assert_eq!(m.layout, Layout::V2);
    let doc: DocumentMut = m.text.parse().unwrap();
    let rt = runtime(&doc, "io.containerd.grpc.v1.cri").expect("runtime table");
    assert_eq!(rt["runtime_path"].as_str(), Some(SHIM));
    assert_eq!(rt["options"]["SystemdCgroup"].as_bool(), Some(true));
    assert_lines_kept(&before, &m.text);
}

#[test]
fn merge_then_remove_gives_back_the_original_bytes() {
    for name in [
        "containerd-1.7.toml",
        "containerd-2.x.toml",
        "kind-node.toml",
    ] {
        let (before, m) = merge_fixture(name);
        let (after, changed) = remove(Path::new(name), &m.text, m.previous.as_deref()).unwrap();
        assert!(changed, "{name}");
        assert_eq!(after, before, "{name}: uninstall must restore the file");
    }
}

/// Found by the `containerd_toml` fuzz target: an empty file came back as `version = 2`.
#[test]
fn merge_then_remove_restores_a_file_that_had_no_version() {
    for before in [
        "",
        "# only a comment\n",
        "root = \"/var/lib/containerd\"\n",
        "root = \"/x\"\n# a comment at the end\n",
    ] {
        let m = merge(
            Path::new("c.toml"),
            before,
            SHIM,
            SystemdCgroup::Auto,
            Some(2),
        )
        .unwrap();
        assert!(m.text.contains("version = 2"), "{before:?}: {}", m.text);
        let (after, changed) = remove(Path::new("c.toml"), &m.text, None).unwrap();
        assert!(changed);
        assert_eq!(after, before, "uninstall must restore {before:?}");
    }
}

#[test]
fn an_added_version_stays_while_other_plugin_settings_need_it() {
    let m = merge(Path::new("c.toml"), "", SHIM, SystemdCgroup::Auto, Some(2)).unwrap();
    let edited = format!(
        "{}\n[plugins.\"io.containerd.grpc.v1.cri\"]\nsandbox_image = \"p\"\n",
        m.text
    );
    let (after, _) = remove(Path::new("c.toml"), &edited, None).unwrap();
    assert!(after.contains("version = 2"), "{after}");
    assert!(after.contains("sandbox_image"), "{after}");
}

#[test]
fn merging_twice_changes_nothing() {
    for name in [
        "containerd-1.7.toml",
        "containerd-2.x.toml",
        "kind-node.toml",
        "other-wasmpod-entry.toml",
        "already-installed.toml",
    ] {
        let (_, first) = merge_fixture(name);
        let again = merge(
            Path::new(name),
            &first.text,
            SHIM,
            SystemdCgroup::Auto,
            None,
        )
        .unwrap();
        assert!(
            !again.changed,
            "{name}: second merge changed:\n{}",
            again.text
        );
        assert_eq!(again.text, first.text);
    }
}

#[test]
fn config_that_already_has_the_runtime_is_left_alone() {
    let (before, m) = merge_fixture("already-installed.toml");
    assert!(!m.changed);
    assert_eq!(m.text, before);
    assert_eq!(m.previous, None, "our own entry is not saved as 'previous'");
}

#[test]
fn another_wasmpod_entry_is_corrected_and_put_back_on_uninstall() {
    let (before, m) = merge_fixture("other-wasmpod-entry.toml");
    assert!(m.changed);
    let doc: DocumentMut = m.text.parse().unwrap();
    let rt = runtime(&doc, "io.containerd.cri.v1.runtime").unwrap();
    assert_eq!(rt["runtime_path"].as_str(), Some(SHIM));
    assert_eq!(
        rt["privileged_without_host_devices"].as_bool(),
        Some(true),
        "keys the installer does not manage are kept"
    );
    let previous = m.previous.as_deref().expect("old entry saved");
    assert!(previous.contains("/var/cache/wasmpod/target/release/"));
    let (after, _) = remove(Path::new("x"), &m.text, Some(previous)).unwrap();
    let restored: DocumentMut = after.parse().unwrap();
    let old: DocumentMut = before.parse().unwrap();
    assert_eq!(
        runtime(&restored, "io.containerd.cri.v1.runtime")
            .unwrap()
            .to_string(),
        runtime(&old, "io.containerd.cri.v1.runtime")
            .unwrap()
            .to_string()
    );
    assert_eq!(after, before, "byte for byte");
}

#[test]
fn broken_file_is_refused_with_its_position() {
    let (text, path) = fixture("broken.toml");
    let err = merge(path, &text, SHIM, SystemdCgroup::Auto, None).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Toml { .. }), "{msg}");
    assert!(msg.contains("/etc/containerd/config.toml"), "{msg}");
    assert!(msg.contains("line 4"), "{msg}");
    assert!(msg.contains("left untouched"), "{msg}");
}

#[test]
fn unknown_version_is_refused_with_a_clear_message() {
    let (text, path) = fixture("unknown-version.toml");
    let err = merge(path, &text, SHIM, SystemdCgroup::Auto, None).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::UnsupportedConfig { .. }), "{msg}");
    assert!(msg.contains("version = 4"), "{msg}");
    assert!(msg.contains("left untouched"), "{msg}");
    let err = remove(path, &text, None).unwrap_err();
    assert!(matches!(err, Error::UnsupportedConfig { .. }));
}

#[test]
fn legacy_version_1_layout_is_refused() {
    let (text, path) = fixture("no-version.toml");
    let err = merge(path, &text, SHIM, SystemdCgroup::Auto, Some(3)).unwrap_err();
    assert!(err.to_string().contains("no `version` key"), "{err}");
    let err = merge(path, "version = 1\n", SHIM, SystemdCgroup::Auto, None).unwrap_err();
    assert!(err.to_string().contains("config migrate"), "{err}");
    let err = merge(path, "version = \"3\"\n", SHIM, SystemdCgroup::Auto, None).unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
}

#[test]
fn empty_config_needs_a_version_and_then_gets_one() {
    let path = Path::new("/etc/containerd/config.toml");
    assert!(merge(path, "", SHIM, SystemdCgroup::Auto, None).is_err());
    let m = merge(path, "# empty\n", SHIM, SystemdCgroup::Auto, Some(3)).unwrap();
    assert_eq!(
        m.text,
        "# empty\n# version: added by wasmpod-node-installer for its runtime, removed when it is \
         uninstalled\nversion = 3\n\n# wasmpod runtime: managed by wasmpod-node-installer, removed when \
         it is uninstalled\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.wasmpod]\n\
         runtime_type = \"io.containerd.wasmpod.v1\"\n\
         runtime_path = \"/opt/wasmpod/bin/containerd-shim-wasmpod-v1\"\n"
    );
}

#[test]
fn systemd_cgroup_can_be_forced() {
    let (text, path) = fixture("containerd-1.7.toml");
    let m = merge(path, &text, SHIM, SystemdCgroup::Set(false), None).unwrap();
    let doc: DocumentMut = m.text.parse().unwrap();
    let rt = runtime(&doc, "io.containerd.grpc.v1.cri").unwrap();
    assert_eq!(rt["options"]["SystemdCgroup"].as_bool(), Some(false));
}

#[test]
fn remove_without_the_runtime_changes_nothing() {
    let (text, path) = fixture("containerd-2.x.toml");
    let (after, changed) = remove(path, &text, None).unwrap();
    assert!(!changed);
    assert_eq!(after, text);
}

#[test]
fn non_table_on_the_path_is_refused() {
    let path = Path::new("c.toml");
    let text = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\ncontainerd = \"x\"\n";
    let err = merge(path, text, SHIM, SystemdCgroup::Auto, None).unwrap_err();
    assert!(err.to_string().contains("is not a table"), "{err}");
}
