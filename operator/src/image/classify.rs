//! Telling Wasm from container images by their manifests and configs (no I/O).

use oci_client::manifest::{OciImageIndex, OciImageManifest};
use serde::Deserialize;
use wasmpod_oci::index::{self, IndexEntry, Platform};
use wasmpod_oci::layers::{self, Layer};
use wasmpod_oci::{artifact, media_types};

use crate::crd::{ComponentKind, ImageFormat};

/// Largest config blob the operator reads.
pub const MAX_CONFIG_BYTES: i64 = 1 << 20;

/// What to do next with an image manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// A CNCF Wasm artifact: read its config to learn the component's world.
    Artifact,
    /// An image with a Wasm layer (the layer types do not say what the component is).
    WasmLayers,
    /// An ordinary image config: read it to see whether it is a `FROM scratch` Wasm image.
    ImageConfig,
    /// Not Wasm; the message says what was found.
    NotWasm(String),
}

/// Decides how to treat a manifest, by the layer rule the shim runs it with
/// ([`wasmpod_oci::layers`]): a manifest the shim would refuse is not Wasm here either.
pub fn plan(m: &OciImageManifest) -> Plan {
    let config = m.config.media_type.as_str();
    let manifest_layers = layers_of(m);
    match layers::find(config, &manifest_layers) {
        Ok(layers::Wasm::Layer(_)) if config == media_types::WASM_ARTIFACT_CONFIG => Plan::Artifact,
        Ok(layers::Wasm::Layer(_)) => Plan::WasmLayers,
        Ok(layers::Wasm::Rootfs) if media_types::is_image_config(config) => Plan::ImageConfig,
        Ok(layers::Wasm::Rootfs) => Plan::NotWasm(format!(
            "the manifest has config {config} and layers [{}]: none of them is Wasm",
            layer_types(m)
        )),
        Err(e) => Plan::NotWasm(format!("the manifest (config {config}): {e}")),
    }
}

/// A manifest's layers as the shared layer rule ([`wasmpod_oci::layers`]) takes them.
pub fn layers_of(m: &OciImageManifest) -> Vec<Layer> {
    m.layers
        .iter()
        .map(|l| Layer {
            media_type: l.media_type.clone(),
            digest: l.digest.clone(),
            size: l.size,
        })
        .collect()
}

fn layer_types(m: &OciImageManifest) -> String {
    let mut types: Vec<&str> = m.layers.iter().map(|l| l.media_type.as_str()).collect();
    types.dedup();
    types.join(", ")
}

/// The entries of an index, as the shared rule sees them.
pub fn index_entries(index: &OciImageIndex) -> Vec<IndexEntry> {
    index
        .manifests
        .iter()
        .map(|e| IndexEntry {
            media_type: e.media_type.clone(),
            digest: e.digest.clone(),
            platform: e.platform.as_ref().map(|p| Platform {
                os: p.os.to_string(),
                architecture: p.architecture.to_string(),
            }),
        })
        .collect()
}

/// The entry of an image index to validate: the one the shim will run
/// ([`wasmpod_oci::index::choose`]).
pub fn pick_entry(index: &OciImageIndex) -> Result<IndexEntry, wasmpod_oci::Error> {
    index::choose(&index_entries(index)).cloned()
}

/// The kind and world a CNCF Wasm artifact config states ([`wasmpod_oci::artifact::parse`]).
pub fn artifact_kind(config: &[u8]) -> (ComponentKind, Option<String>) {
    let a = artifact::parse(config);
    let kind = match a.kind {
        artifact::Kind::Http => ComponentKind::Http,
        artifact::Kind::Command => ComponentKind::Command,
        artifact::Kind::Module => ComponentKind::Module,
        artifact::Kind::Unknown => ComponentKind::Unknown,
    };
    (kind, a.world)
}

#[derive(Deserialize, Default)]
struct ImageConfig {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    config: Option<ProcessConfig>,
}

#[derive(Deserialize, Default)]
struct ProcessConfig {
    #[serde(default, rename = "Entrypoint")]
    entrypoint: Option<Vec<String>>,
    #[serde(default, rename = "Cmd")]
    cmd: Option<Vec<String>>,
}

/// Decides whether an ordinary image is a `FROM scratch` Wasm image: architecture `wasm`, or an
/// entrypoint naming a `.wasm` file. Returns the kind, or why it is not Wasm.
pub fn scratch_image(
    config: &[u8],
    m: &OciImageManifest,
) -> Result<(ImageFormat, ComponentKind), String> {
    let c: ImageConfig = serde_json::from_slice(config)
        .map_err(|e| format!("the image config cannot be parsed: {e}"))?;
    let process = c.config.unwrap_or_default();
    let argv: Vec<String> = process
        .entrypoint
        .unwrap_or_default()
        .into_iter()
        .chain(process.cmd.unwrap_or_default())
        .collect();
    let names_wasm = argv.first().is_some_and(|a| a.ends_with(".wasm"));
    if c.architecture == "wasm" || names_wasm {
        if argv.is_empty() {
            return Err(format!(
                "the image is for {}/wasm but has no entrypoint naming its .wasm file",
                c.os
            ));
        }
        let kind = if c.os == "wasip1" {
            ComponentKind::Module
        } else {
            ComponentKind::Unknown
        };
        return Ok((ImageFormat::ScratchImage, kind));
    }
    Err(format!(
        "it is a container image for {}/{} (layers [{}]), not Wasm: use a Wasm OCI artifact, an image with Wasm layers, or a FROM scratch image built for the wasm architecture",
        if c.os.is_empty() { "?" } else { &c.os },
        if c.architecture.is_empty() {
            "?"
        } else {
            &c.architecture
        },
        layer_types(m)
    ))
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
