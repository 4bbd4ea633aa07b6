//! The one rule for which entry of an image index wasmpod runs.
//!
//! # Why a rule of our own, and why this one
//!
//! containerd's CRI pulls a single manifest of an index: the entry that best matches its
//! platform matcher (entries without a platform always match). On containerd 1.7 that is the
//! node's own platform, e.g. `linux/amd64`; on 2.x the images plugin's `runtime_platforms` can
//! map the `wasmpod` handler to another platform. So which entry sits in the content store
//! depends on the node's containerd and its config, and the operator, which only sees the
//! registry, cannot know it. If the shim ran "whatever containerd pulled", an index of
//! `[linux/amd64 container image, wasip2/wasm component]` would be validated by the operator as
//! the component and run by the shim as the container image.
//!
//! So the choice is made from the index alone, by [`choose`], and both sides use it: the
//! operator validates (and pins pods to) the chosen entry; the shim runs that entry, and when
//! containerd did not pull it, [`pulled_entry`] fails with both the chosen entry and what was
//! pulled instead of silently running another manifest.
//!
//! Ranking, best first; ties go to the earlier entry, as in the index:
//! 1. architecture `wasm`, os `wasip2`: a component, what wasmpod runs natively;
//! 2. architecture `wasm` with any other os (`wasip1` modules, `wasi`, `linux`);
//! 3. the index's only entry when it has no platform (tools that wrap one manifest in an index).
//!
//! An index with none of these is a container image to the shim (a multi-platform sidecar, or
//! the pause image), so [`pulled_entry`] then returns what containerd pulled; the operator
//! reports it as not Wasm.

use std::fmt;

use crate::{Error, Result};

/// The architecture of Wasm entries.
pub const WASM_ARCH: &str = "wasm";
/// The os of WASI preview 2 (component) entries.
pub const WASIP2_OS: &str = "wasip2";

/// The platform of an index entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// e.g. `wasip2`, `linux`.
    pub os: String,
    /// e.g. `wasm`, `amd64`.
    pub architecture: String,
}

impl fmt::Display for Platform {
    /// `os/architecture`, as containerd and docker print platforms.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)
    }
}

/// One entry of an image index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Media type of the manifest it points to.
    pub media_type: String,
    /// `sha256:<hex>` of that manifest.
    pub digest: String,
    /// The platform it is for, if stated.
    pub platform: Option<Platform>,
}

impl IndexEntry {
    fn platform_name(&self) -> String {
        self.platform
            .as_ref()
            .map_or_else(|| "no platform".to_string(), Platform::to_string)
    }
}

impl fmt::Display for IndexEntry {
    /// `sha256:... (os/architecture)`, for error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.digest, self.platform_name())
    }
}

/// How well an entry fits, best first (the derived order is the ranking).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// `wasip2/wasm`.
    Wasip2,
    /// `wasm` with another os.
    OtherWasm,
    /// The only entry, without a platform.
    LoneUnplatformed,
}

/// The rank of `entry` in an index of `entries` entries, or `None` if it is not a candidate.
pub fn rank(entry: &IndexEntry, entries: usize) -> Option<Rank> {
    match &entry.platform {
        Some(p) if p.architecture == WASM_ARCH && p.os == WASIP2_OS => Some(Rank::Wasip2),
        Some(p) if p.architecture == WASM_ARCH => Some(Rank::OtherWasm),
        None if entries == 1 => Some(Rank::LoneUnplatformed),
        _ => None,
    }
}

/// The entry wasmpod runs (see the module docs), or why the index has none.
pub fn choose(entries: &[IndexEntry]) -> Result<&IndexEntry> {
    entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| rank(e, entries.len()).map(|r| (r, i, e)))
        .min_by_key(|(r, i, _)| (*r, *i))
        .map(|(_, _, e)| e)
        .ok_or_else(|| Error::NoWasmEntry {
            platforms: entries.iter().map(IndexEntry::platform_name).collect(),
        })
}

/// The entry the shim runs, given the digests containerd holds: the [`choose`]n one, which must
/// have been pulled; for an index with no Wasm entry (a container image), the first entry
/// containerd pulled, as runc would run it.
pub fn pulled_entry<'a>(entries: &'a [IndexEntry], pulled: &[&str]) -> Result<&'a IndexEntry> {
    let is_pulled = |e: &&IndexEntry| pulled.contains(&e.digest.as_str());
    match choose(entries) {
        Ok(chosen) if is_pulled(&chosen) => Ok(chosen),
        Ok(chosen) => Err(Error::EntryNotPulled {
            entry: chosen.to_string(),
            pulled: entries
                .iter()
                .filter(is_pulled)
                .map(IndexEntry::to_string)
                .collect(),
        }),
        Err(Error::NoWasmEntry { .. }) => {
            entries
                .iter()
                .find(is_pulled)
                .ok_or_else(|| Error::NothingPulled {
                    entries: entries.iter().map(IndexEntry::to_string).collect(),
                })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
