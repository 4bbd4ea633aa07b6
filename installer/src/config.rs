//! Merging the `wasmpod` runtime into containerd's config file with a TOML editor: every other
//! table, key, comment and blank line stays exactly as it was, and removing the runtime again
//! gives back the original text.
//!
//! | config `version` | containerd | table |
//! |---|---|---|
//! | 2 | 1.6, 1.7 (and 2.x, which migrates it; kind's 2.x nodes still write `version = 2`) | `plugins."io.containerd.grpc.v1.cri".containerd.runtimes.wasmpod` |
//! | 3 | 2.0 - 2.2 | `plugins."io.containerd.cri.v1.runtime".containerd.runtimes.wasmpod` |
//!
//! Anything else (no `version`, i.e. the legacy version 1 layout; `version = 4` of containerd
//! 2.3+; a non-integer) is refused with a message and the file is not touched.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table, TableLike, value};

use crate::{Error, Result};

/// The runtime handler (the RuntimeClass's `handler`) and containerd's runtime type for the
/// shim: one definition, shared with the shim.
pub use wasmpod_oci::names::{HANDLER, RUNTIME_TYPE};
/// Comment above a runtime table the installer created.
pub const MARKER: &str =
    "# wasmpod runtime: managed by wasmpod-node-installer, removed when it is uninstalled";

/// Comment above a `version` key the installer added to a file that had none (empty, comments
/// only, or unrelated settings): uninstall takes it out again when nothing else needs it.
pub const VERSION_MARKER: &str =
    "# version: added by wasmpod-node-installer for its runtime, removed when it is uninstalled";

/// The two config layouts the installer edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `version = 2`: one `io.containerd.grpc.v1.cri` plugin (containerd 1.6, 1.7).
    V2,
    /// `version = 3`: CRI split into `io.containerd.cri.v1.runtime` and `.images` (containerd 2.x).
    V3,
}

impl Layout {
    /// The layout of config `version`, or why it is not supported.
    pub fn from_version(version: i64) -> std::result::Result<Self, String> {
        match version {
            2 => Ok(Self::V2),
            3 => Ok(Self::V3),
            1 => Err("config `version = 1` (containerd 1.x legacy layout) is not supported; \
                 convert it with `containerd config migrate` (containerd >= 1.7.7 or 2.x is required)"
                .into()),
            v => Err(format!(
                "unknown containerd config `version = {v}`: this installer writes versions 2 \
                 (containerd 1.6/1.7) and 3 (containerd 2.0-2.2) only, and does not guess the \
                 table names of other versions"
            )),
        }
    }

    /// The config `version` number.
    pub fn version(self) -> i64 {
        match self {
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }

    /// The CRI plugin whose `containerd.runtimes` holds runtime handlers.
    pub fn plugin(self) -> &'static str {
        match self {
            Self::V2 => "io.containerd.grpc.v1.cri",
            Self::V3 => "io.containerd.cri.v1.runtime",
        }
    }

    /// The runtime's table header, as written in a config file.
    pub fn header(self) -> String {
        format!(
            "plugins.\"{}\".containerd.runtimes.{HANDLER}",
            self.plugin()
        )
    }
}

/// How `SystemdCgroup` in the runtime's `options` is chosen (the shim creates native
/// containers through runc with that cgroup driver, which must match the kubelet's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SystemdCgroup {
    /// Copy the `runc` runtime's `options.SystemdCgroup`, if it sets one.
    #[default]
    Auto,
    /// Always this value.
    Set(bool),
}

/// The result of [`merge`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    /// The new file content.
    pub text: String,
    /// Whether it differs from the input.
    pub changed: bool,
    /// A `wasmpod` runtime table that existed before, pointing elsewhere (TOML text), to put back
    /// on uninstall.
    pub previous: Option<String>,
    /// The layout written.
    pub layout: Layout,
}

/// The layout of a parsed config. A file without `version` and without `plugins` (empty,
/// comments only, or unrelated settings) gets `default_version` when one is given.
pub fn layout(path: &Path, doc: &DocumentMut, default_version: Option<i64>) -> Result<Layout> {
    let unsupported = |message: String| Error::UnsupportedConfig {
        path: path.to_path_buf(),
        message,
    };
    let version = match doc.get("version") {
        Some(item) => item.as_integer().ok_or_else(|| {
            unsupported(format!(
                "`version` is not an integer ({})",
                item.to_string().trim()
            ))
        })?,
        None if !doc.contains_key("plugins") && default_version.is_some() => {
            default_version.unwrap_or_default()
        }
        None => {
            return Err(unsupported(
                "the config has no `version` key, so containerd reads it in the legacy version 1 \
                 layout, which this installer does not edit; add `version = 2` (containerd 1.6/1.7) \
                 or `version = 3` (2.x) after checking the file, or give --config-version for an \
                 empty config"
                    .into(),
            ));
        }
    };
    Layout::from_version(version).map_err(unsupported)
}

/// Parses a config; an error names the file and the position.
pub fn parse(path: &Path, text: &str) -> Result<DocumentMut> {
    text.parse::<DocumentMut>().map_err(|e| Error::Toml {
        path: path.to_path_buf(),
        message: e.to_string().trim().to_string(),
    })
}

/// Adds (or corrects) the `wasmpod` runtime in `text`: `runtime_type`, `runtime_path`, and
/// `options.SystemdCgroup` per `systemd`. Other keys in an existing table are kept.
pub fn merge(
    path: &Path,
    text: &str,
    runtime_path: &str,
    systemd: SystemdCgroup,
    default_version: Option<i64>,
) -> Result<Merged> {
    let mut doc = parse(path, text)?;
    let layout = layout(path, &doc, default_version)?;
    if !doc.contains_key("version") {
        // A comment-only file: keep its comments above the new key, not after the new tables.
        let comments = doc.trailing().as_str().unwrap_or_default().to_string();
        doc.set_trailing("");
        doc.insert("version", value(layout.version()));
        if let Some(mut key) = doc.key_mut("version") {
            key.leaf_decor_mut()
                .set_prefix(format!("{comments}{VERSION_MARKER}\n"));
        }
    }
    let runtimes = runtimes_mut(path, &mut doc, layout, true)?
        .ok_or_else(|| Error::Config("runtimes table not created".into()))?;
    let systemd = match systemd {
        SystemdCgroup::Set(v) => Some(v),
        SystemdCgroup::Auto => runtimes
            .get("runc")
            .and_then(|r| r.get("options"))
            .and_then(|o| o.get("SystemdCgroup"))
            .and_then(Item::as_bool),
    };
    let previous = match runtimes.get(HANDLER) {
        Some(item) if item.get("runtime_path").and_then(Item::as_str) != Some(runtime_path) => {
            Some(snippet(item))
        }
        _ => None,
    };
    if runtimes.get(HANDLER).is_none() {
        let mut table = Table::new();
        table.decor_mut().set_prefix(format!("\n{MARKER}\n"));
        runtimes.insert(HANDLER, Item::Table(table));
    }
    let entry = runtimes
        .get_mut(HANDLER)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| Error::UnsupportedConfig {
            path: path.to_path_buf(),
            message: format!("{} is not a table", layout.header()),
        })?;
    set_str(entry, "runtime_type", RUNTIME_TYPE);
    set_str(entry, "runtime_path", runtime_path);
    if let Some(v) = systemd {
        let options = child_table(entry, "options").ok_or_else(|| Error::UnsupportedConfig {
            path: path.to_path_buf(),
            message: format!("{}.options is not a table", layout.header()),
        })?;
        if options.get("SystemdCgroup").and_then(Item::as_bool) != Some(v) {
            options.insert("SystemdCgroup", value(v));
        }
    }
    let new = doc.to_string();
    Ok(Merged {
        changed: new != text,
        text: new,
        previous,
        layout,
    })
}

/// Removes the `wasmpod` runtime from `text`, or puts `previous` (from [`Merged::previous`])
/// back. Returns the new text and whether it changed.
pub fn remove(path: &Path, text: &str, previous: Option<&str>) -> Result<(String, bool)> {
    let mut doc = parse(path, text)?;
    let layout = layout(path, &doc, None)?;
    let Some(runtimes) = runtimes_mut(path, &mut doc, layout, false)? else {
        return Ok((text.to_string(), false));
    };
    match previous {
        Some(snippet) => {
            let mut old = parse(path, snippet)?;
            let mut item = old.remove(HANDLER).ok_or_else(|| {
                Error::Config(format!("saved runtime table has no `{HANDLER}`: {snippet}"))
            })?;
            clear_positions(&mut item);
            runtimes.insert(HANDLER, item);
        }
        None => {
            runtimes.remove(HANDLER);
            drop_added_version(&mut doc);
        }
    }
    let new = doc.to_string();
    Ok((new.clone(), new != text))
}

/// Takes out the `version` key [`merge`] added, with its marker, and puts the comments that were
/// above it back at the end of the file where they were: only while no plugin setting is left,
/// since without `version` containerd would read one in the legacy layout.
fn drop_added_version(doc: &mut DocumentMut) {
    let Some(prefix) = doc
        .key("version")
        .and_then(|k| k.leaf_decor().prefix())
        .and_then(|p| p.as_str())
        .map(str::to_string)
    else {
        return;
    };
    let Some(comments) = prefix.strip_suffix(&format!("{VERSION_MARKER}\n")) else {
        return;
    };
    if doc.get("plugins").is_some_and(|p| !only_empty_tables(p)) {
        return;
    }
    doc.remove("version");
    doc.remove("plugins");
    let trailing = doc.trailing().as_str().unwrap_or_default().to_string();
    doc.set_trailing(format!("{comments}{trailing}"));
}

/// Whether `item` holds no value, only (nested) tables without one.
fn only_empty_tables(item: &Item) -> bool {
    match item.as_table_like() {
        Some(t) => t.iter().all(|(_, v)| only_empty_tables(v)),
        None => item.is_none(),
    }
}

/// The `containerd.runtimes` table of the layout's CRI plugin; missing tables on the way are
/// created (implicit, so no empty headers appear) when `create`, else `None`.
fn runtimes_mut<'a>(
    path: &Path,
    doc: &'a mut DocumentMut,
    layout: Layout,
    create: bool,
) -> Result<Option<&'a mut dyn TableLike>> {
    let mut table: &mut dyn TableLike = doc.as_table_mut();
    let mut walked = String::new();
    for key in ["plugins", layout.plugin(), "containerd", "runtimes"] {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(key);
        if table.get(key).is_none() && !create {
            return Ok(None);
        }
        table = child_table(table, key).ok_or_else(|| Error::UnsupportedConfig {
            path: path.to_path_buf(),
            message: format!("`{walked}` is not a table"),
        })?;
    }
    Ok(Some(table))
}

/// `parent[key]` as a table, created implicit when missing; `None` if it is something else.
fn child_table<'a>(parent: &'a mut dyn TableLike, key: &str) -> Option<&'a mut dyn TableLike> {
    if parent.get(key).is_none() {
        let mut t = Table::new();
        t.set_implicit(true);
        parent.insert(key, Item::Table(t));
    }
    parent.get_mut(key).and_then(Item::as_table_like_mut)
}

/// Sets a string key unless it already has that value (so its formatting stays).
fn set_str(table: &mut dyn TableLike, key: &str, want: &str) {
    if table.get(key).and_then(Item::as_str) != Some(want) {
        table.insert(key, value(want));
    }
}

/// A runtime table as a small TOML document `[wasmpod] ...`, to save and restore later.
fn snippet(item: &Item) -> String {
    let mut doc = DocumentMut::new();
    let mut item = item.clone();
    clear_positions(&mut item);
    doc.insert(HANDLER, item);
    doc.to_string()
}

/// Forgets where tables stood in their old document, so they are placed beside their parent.
fn clear_positions(item: &mut Item) {
    if let Some(t) = item.as_table_mut() {
        t.set_position(None);
        for (_, child) in t.iter_mut() {
            clear_positions(child);
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
