//! k3s and RKE2 generate containerd's `config.toml` at every start from a Go template
//! (`config.toml.tmpl` for the version 2 layout, `config-v3.toml.tmpl` for containerd 2.x),
//! so the installer edits the template instead. A template is not TOML, so it is edited as
//! text: the runtime goes into a block between two marker comments, appended at the end of
//! the file (after the `{{ template "base" . }}` line that pulls in k3s's own config). A
//! missing template is created as that line plus the block; removing the block from a template
//! that holds nothing else deletes the file again.

use std::path::Path;

use crate::config::{HANDLER, Layout, RUNTIME_TYPE, SystemdCgroup};
use crate::{Error, Result};

/// The line that includes k3s's generated base config.
pub const BASE: &str = "{{ template \"base\" . }}";
const BEGIN: &str =
    "# BEGIN wasmpod runtime (managed by wasmpod-node-installer, removed when it is uninstalled)";
const END: &str = "# END wasmpod runtime";

/// Whether `path` names a k3s/RKE2 containerd config template.
pub fn is_template(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "tmpl")
}

/// The layout a template renders: its own `version = N` line if it has one, else the file name
/// (`config-v3.toml.tmpl` is containerd 2.x's, `config.toml.tmpl` the version 2 one).
pub fn layout(path: &Path, text: &str) -> Result<Layout> {
    let declared = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("version"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .find_map(|v| v.trim().parse::<i64>().ok());
    let version = declared.unwrap_or_else(|| {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.contains("-v3") { 3 } else { 2 }
    });
    Layout::from_version(version).map_err(|message| Error::UnsupportedConfig {
        path: path.to_path_buf(),
        message,
    })
}

/// The runtime block for `layout`. With [`SystemdCgroup::Auto`] the cgroup driver comes from
/// k3s's template data (`.SystemdCgroup`, the value k3s gives runc).
pub fn block(layout: Layout, runtime_path: &str, systemd: SystemdCgroup) -> String {
    let header = layout.header();
    let systemd = match systemd {
        SystemdCgroup::Auto => "{{ .SystemdCgroup }}".to_string(),
        SystemdCgroup::Set(v) => v.to_string(),
    };
    format!(
        "{BEGIN}\n[{header}]\n  runtime_type = \"{RUNTIME_TYPE}\"\n  runtime_path = \"{runtime_path}\"\n\
         [{header}.options]\n  SystemdCgroup = {systemd}\n{END}\n"
    )
}

/// `text` without the installer's block (and the blank line before it), and whether one was there.
fn strip(text: &str) -> (String, bool) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(begin) = lines.iter().position(|l| l.trim_end() == BEGIN) else {
        return (text.to_string(), false);
    };
    let end = lines[begin..]
        .iter()
        .position(|l| l.trim_end() == END)
        .map_or(lines.len() - 1, |i| begin + i);
    let mut kept: Vec<&str> = lines[..begin].to_vec();
    if kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    kept.extend_from_slice(&lines[end + 1..]);
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    (out, true)
}

/// The template with the runtime block; `None` text means the file does not exist yet.
/// Returns the new text and whether it changed.
pub fn merge(
    path: &Path,
    text: Option<&str>,
    runtime_path: &str,
    systemd: SystemdCgroup,
) -> Result<(String, bool)> {
    let original = text.unwrap_or("");
    let (rest, _) = strip(original);
    let table = format!("runtimes.{HANDLER}]");
    if rest.lines().any(|l| l.contains(&table)) {
        return Err(Error::UnsupportedConfig {
            path: path.to_path_buf(),
            message: format!(
                "the template already defines the `{HANDLER}` runtime outside the installer's \
                 block; remove that table so the installer can manage it"
            ),
        });
    }
    let layout = layout(path, &rest)?;
    let rest = if rest.trim().is_empty() {
        format!("{BASE}\n")
    } else {
        rest
    };
    let new = format!(
        "{}\n\n{}",
        rest.trim_end(),
        block(layout, runtime_path, systemd)
    );
    let changed = text != Some(new.as_str());
    Ok((new, changed))
}

/// The template without the runtime block: `None` when nothing but the base line would be
/// left (the file is then deleted, which renders the same config). Returns whether it changed.
pub fn remove(text: &str) -> (Option<String>, bool) {
    let (rest, had) = strip(text);
    if !had {
        return (Some(text.to_string()), false);
    }
    if rest.trim().is_empty() || rest.trim() == BASE {
        return (None, true);
    }
    (Some(rest), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIM: &str = "/opt/wasmpod/bin/containerd-shim-wasmpod-v1";

    fn fixture(name: &str) -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        std::fs::read_to_string(Path::new(dir).join(name)).unwrap()
    }

    #[test]
    fn k3s_template_gets_a_block_after_the_base_line_once() {
        let path = Path::new("/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl");
        let before = fixture("k3s-config.toml.tmpl");
        let (after, changed) = merge(path, Some(&before), SHIM, SystemdCgroup::Auto).unwrap();
        assert!(changed);
        assert!(after.starts_with(&before), "appended only:\n{after}");
        assert!(after.find(BASE).unwrap() < after.find(BEGIN).unwrap());
        assert!(after.contains(
            "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.wasmpod]\n  \
             runtime_type = \"io.containerd.wasmpod.v1\"\n  runtime_path = \"/opt/wasmpod/bin/"
        ));
        assert!(after.contains("SystemdCgroup = {{ .SystemdCgroup }}"));
        let (again, changed) = merge(path, Some(&after), SHIM, SystemdCgroup::Auto).unwrap();
        assert!(!changed, "idempotent");
        assert_eq!(again, after);
        assert_eq!(after.matches(BEGIN).count(), 1);
        let (reverted, changed) = remove(&after);
        assert!(changed);
        assert_eq!(reverted.as_deref(), Some(before.as_str()));
    }

    #[test]
    fn v3_template_uses_the_containerd_2_table() {
        let path = Path::new("/var/lib/rancher/rke2/agent/etc/containerd/config-v3.toml.tmpl");
        let before = fixture("k3s-config-v3.toml.tmpl");
        let (after, _) = merge(path, Some(&before), SHIM, SystemdCgroup::Set(true)).unwrap();
        assert!(
            after
                .contains("[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.wasmpod]")
        );
        assert!(after.contains("SystemdCgroup = true"));
        assert!(!after.contains("grpc.v1.cri"));
        // Nothing but the base line left: the file goes away on uninstall.
        assert_eq!(remove(&after), (None, true));
    }

    #[test]
    fn missing_template_is_created_with_the_base_line() {
        let path = Path::new("/x/config-v3.toml.tmpl");
        let (text, changed) = merge(path, None, SHIM, SystemdCgroup::Set(false)).unwrap();
        assert!(changed);
        assert!(text.starts_with(&format!("{BASE}\n\n{BEGIN}\n")), "{text}");
        assert_eq!(remove(&text), (None, true));
    }

    #[test]
    fn changed_runtime_path_replaces_the_block() {
        let path = Path::new("/x/config.toml.tmpl");
        let (one, _) = merge(path, None, "/old/shim", SystemdCgroup::Auto).unwrap();
        let (two, changed) = merge(path, Some(&one), SHIM, SystemdCgroup::Auto).unwrap();
        assert!(changed);
        assert!(!two.contains("/old/shim"));
        assert_eq!(two.matches(BEGIN).count(), 1);
    }

    #[test]
    fn runtime_defined_by_hand_is_refused() {
        let path = Path::new("/x/config.toml.tmpl");
        let text = format!(
            "{BASE}\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.wasmpod]\n"
        );
        let err = merge(path, Some(&text), SHIM, SystemdCgroup::Auto).unwrap_err();
        assert!(
            err.to_string().contains("outside the installer's block"),
            "{err}"
        );
    }

    #[test]
    fn declared_unknown_version_is_refused() {
        let path = Path::new("/x/config.toml.tmpl");
        let err = merge(path, Some("version = 4\n"), SHIM, SystemdCgroup::Auto).unwrap_err();
        assert!(err.to_string().contains("version = 4"), "{err}");
    }

    #[test]
    fn remove_without_a_block_changes_nothing() {
        let text = fixture("k3s-config.toml.tmpl");
        assert_eq!(remove(&text), (Some(text.clone()), false));
    }
}
