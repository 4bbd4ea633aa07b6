//! Why an image cannot be run as Wasm. Each message names what was found and what was expected;
//! callers prefix the image (and container) it is about.

use crate::media_types::WASM_LAYERS;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A manifest or index that does not say unambiguously which Wasm to run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The index has no entry for the wasm architecture (and is not a lone platform-less entry).
    #[error(
        "the image index has no wasm entry (platforms: {}); expected an entry for platform wasip2/wasm, another wasm os such as wasip1/wasm, or a single entry without a platform",
        .platforms.join(", ")
    )]
    NoWasmEntry {
        /// `os/architecture` of every entry, `no platform` where it has none.
        platforms: Vec<String>,
    },
    /// The index's Wasm entry is not in containerd's content store.
    #[error(
        "containerd did not pull the index entry wasmpod runs, {entry}; it holds [{}]: let the node pull that platform (containerd 2.x: `runtime_platforms` for the wasmpod handler), or reference the entry's digest, as WasmApps do",
        .pulled.join(", ")
    )]
    EntryNotPulled {
        /// The chosen entry: its digest and platform.
        entry: String,
        /// The entries containerd holds, described the same way.
        pulled: Vec<String>,
    },
    /// None of the index's entries is in containerd's content store.
    #[error("containerd pulled none of the image index's entries [{}]", .entries.join(", "))]
    NothingPulled {
        /// Every entry: its digest and platform.
        entries: Vec<String>,
    },
    /// A CNCF Wasm artifact must have exactly one layer.
    #[error(
        "it is a CNCF Wasm artifact with {} layers ([{}]); the artifact format allows exactly one application/wasm layer",
        .types.len(),
        .types.join(", ")
    )]
    ArtifactLayers {
        /// Media types of the layers found.
        types: Vec<String>,
    },
    /// More than one layer is Wasm.
    #[error(
        "it has {} Wasm layers ([{}]); wasmpod runs exactly one Wasm binary per container",
        .wasm.len(),
        .wasm.join(", ")
    )]
    ManyWasmLayers {
        /// Media types of the Wasm layers.
        wasm: Vec<String>,
    },
    /// No Wasm layer, and some layer is not a filesystem tar either.
    #[error(
        "it has no Wasm layer: its layers have media types [{}]; expected one of [{}], or tar layers holding the .wasm file the entrypoint names",
        .types.join(", "),
        WASM_LAYERS.join(", ")
    )]
    UnknownLayers {
        /// Media types of all layers.
        types: Vec<String>,
    },
}
