//! `WasmApp.status`: what the operator observed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::schema::conditions;

/// Condition: the app serves with all desired replicas of the current spec.
pub const READY: &str = "Ready";
/// Condition: a rollout of the current spec is under way.
pub const PROGRESSING: &str = "Progressing";
/// Condition: something needs attention (bad image, stuck rollout, failed apply).
pub const DEGRADED: &str = "Degraded";
/// Condition: the image was found in its registry and is Wasm.
pub const IMAGE_VALID: &str = "ImageValid";
/// Condition: every Secret and ConfigMap key the capabilities read exists.
pub const CAPABILITIES_READY: &str = "CapabilitiesReady";

/// Condition: whether the app is at zero replicas with the activator answering (`True`), or why
/// it cannot go there (`False`, e.g. the activator cannot prepare it).
pub const SCALED_TO_ZERO: &str = "ScaledToZero";

/// Observed state of a WasmApp.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WasmAppStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods of the app (all versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pods passing their readiness probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Pods running the current spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    /// Pods ready for at least `minReadySeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    /// Ready over desired replicas, e.g. `2/3` (for `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Label selector of the app's pods, serialized (for the scale subresource and HPAs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// In-cluster URL of the app's Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The `spec.image` that `imageDigest` was resolved from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Digest of the Wasm manifest the pods run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// How the image packages the Wasm: `WasmArtifact`, `WasmLayers` or `ScratchImage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_format: Option<ImageFormat>,
    /// What the component is: `http`, `command`, `module`, or `unknown` when the artifact does not
    /// say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_kind: Option<ComponentKind>,
    /// The component's world or main export, where the artifact names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_world: Option<String>,
    /// Scale to zero: the activator port and where the app is (with `spec.scaleToZero`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_to_zero: Option<super::ScaleToZeroStatus>,
    /// Ready, Progressing, Degraded, ImageValid, CapabilitiesReady and ScaledToZero.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
}

/// How an image packages its Wasm.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// A CNCF Wasm OCI artifact (config `application/vnd.wasm.config.v0+json`): no entrypoint.
    WasmArtifact,
    /// An image whose layers are Wasm blobs: the shim reads the layers, not a rootfs.
    WasmLayers,
    /// An ordinary image (`FROM scratch`) whose entrypoint names the `.wasm` file in its rootfs.
    ScratchImage,
}

impl ImageFormat {
    /// Whether the image has no entrypoint of its own, so the pod needs a placeholder command
    /// (containerd refuses to create a container without one).
    pub fn needs_command(self) -> bool {
        !matches!(self, Self::ScratchImage)
    }
}

/// The kind of Wasm program an image holds.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ComponentKind {
    /// A component exporting `wasi:http/incoming-handler`: an HTTP server.
    Http,
    /// A component exporting `wasi:cli/run`: runs to completion.
    Command,
    /// A WASI preview 1 core module (`_start`).
    Module,
    /// Wasm whose kind the artifact does not state (e.g. a `FROM scratch` image); treated as HTTP.
    Unknown,
}

impl ComponentKind {
    /// Whether the app is served over HTTP (so it gets a Service and a default readiness probe).
    pub fn serves_http(self) -> bool {
        matches!(self, Self::Http | Self::Unknown)
    }

    /// The lowercase name used in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Command => "command",
            Self::Module => "module",
            Self::Unknown => "unknown",
        }
    }
}

impl WasmAppStatus {
    /// The condition of the given type, if set.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}
