//! Telling Wasm from container images by their manifests and configs (no I/O).

use oci_client::manifest::{ImageIndexEntry, OciImageIndex, OciImageManifest};
use serde::Deserialize;

use crate::crd::{ComponentKind, ImageFormat};

/// Config media type of a CNCF Wasm OCI artifact.
pub const WASM_ARTIFACT_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// Layer media types that hold Wasm.
pub const WASM_LAYER_TYPES: [&str; 4] = [
    "application/wasm",
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/vnd.module.wasm.content.layer.v1+wasm",
];
/// Config media types of ordinary images.
pub const IMAGE_CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];
/// Largest config blob the operator reads.
pub const MAX_CONFIG_BYTES: i64 = 1 << 20;

/// What to do next with an image manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// A CNCF Wasm artifact: read its config to learn the component's world.
    Artifact,
    /// An image with Wasm layers (the layer types do not say what the component is).
    WasmLayers,
    /// An ordinary image config: read it to see whether it is a `FROM scratch` Wasm image.
    ImageConfig,
    /// Not Wasm; the message says what was found.
    NotWasm(String),
}

/// Decides how to treat a manifest.
pub fn plan(m: &OciImageManifest) -> Plan {
    let config = m.config.media_type.as_str();
    if config == WASM_ARTIFACT_CONFIG {
        return Plan::Artifact;
    }
    if m.layers
        .iter()
        .any(|l| WASM_LAYER_TYPES.contains(&l.media_type.as_str()))
    {
        return Plan::WasmLayers;
    }
    if IMAGE_CONFIG_TYPES.contains(&config) {
        return Plan::ImageConfig;
    }
    Plan::NotWasm(format!(
        "the manifest has config {config} and layers [{}]: none of them is Wasm",
        layer_types(m)
    ))
}

fn layer_types(m: &OciImageManifest) -> String {
    let mut types: Vec<&str> = m.layers.iter().map(|l| l.media_type.as_str()).collect();
    types.dedup();
    types.join(", ")
}

/// Picks the Wasm entry of an image index (architecture `wasm`, preferring `wasip2`).
pub fn pick_entry(index: &OciImageIndex) -> Result<&ImageIndexEntry, String> {
    let arch = |e: &ImageIndexEntry| e.platform.as_ref().map(|p| p.architecture.to_string());
    let os = |e: &ImageIndexEntry| e.platform.as_ref().map(|p| p.os.to_string());
    let wasm: Vec<&ImageIndexEntry> = index
        .manifests
        .iter()
        .filter(|e| arch(e).as_deref() == Some("wasm"))
        .collect();
    if let Some(e) = wasm
        .iter()
        .find(|e| os(e).as_deref() == Some("wasip2"))
        .or(wasm.first())
    {
        return Ok(e);
    }
    match index.manifests.as_slice() {
        [only] if only.platform.is_none() => Ok(only),
        entries => {
            let platforms: Vec<String> = entries
                .iter()
                .map(|e| match &e.platform {
                    Some(p) => format!("{}/{}", p.os, p.architecture),
                    None => "unknown".into(),
                })
                .collect();
            Err(format!(
                "the image index has no wasm entry (platforms: {})",
                platforms.join(", ")
            ))
        }
    }
}

#[derive(Deserialize, Default)]
struct ArtifactConfig {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    component: Option<ComponentInfo>,
}

#[derive(Deserialize, Default)]
struct ComponentInfo {
    #[serde(default)]
    exports: Vec<String>,
    #[serde(default)]
    target: Option<String>,
}

/// Reads a CNCF Wasm artifact config (leniently: other producers omit required fields).
pub fn artifact_kind(config: &[u8]) -> (ComponentKind, Option<String>) {
    let c: ArtifactConfig = serde_json::from_slice(config).unwrap_or_default();
    match c.component {
        Some(comp) => {
            let find = |prefix: &str| comp.exports.iter().find(|e| e.starts_with(prefix)).cloned();
            let (kind, export) = if let Some(e) = find("wasi:http/incoming-handler") {
                (ComponentKind::Http, Some(e))
            } else if let Some(e) = find("wasi:cli/run") {
                (ComponentKind::Command, Some(e))
            } else {
                (ComponentKind::Unknown, None)
            };
            (kind, comp.target.or(export))
        }
        None if c.os.as_deref() == Some("wasip1") => (ComponentKind::Module, None),
        None => (ComponentKind::Unknown, None),
    }
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
