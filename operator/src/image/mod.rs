//! Inspecting a WasmApp's image in its registry: resolve the digest, check it is Wasm, read the
//! component's world where the artifact states it.

pub mod auth;
pub mod cache;
pub mod classify;
mod inspect;

pub use cache::ImageCache;
pub use inspect::{ErrorContext, Inspector, InspectorConfig, map_registry_error};

use crate::crd::{ComponentKind, ImageFormat, WasmAppStatus};

/// What the operator learned about a valid Wasm image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFacts {
    /// The `spec.image` these facts belong to.
    pub image: String,
    /// Digest of the Wasm manifest (the wasm entry's manifest for an index).
    pub digest: String,
    /// How the image packages its Wasm.
    pub format: ImageFormat,
    /// What the component is.
    pub kind: ComponentKind,
    /// The component's world or main export, when the artifact names it.
    pub world: Option<String>,
}

impl ImageFacts {
    /// The reference pods run: `spec.image` pinned to the resolved digest.
    pub fn pinned(&self) -> String {
        if self.image.contains('@') {
            self.image.clone()
        } else {
            format!("{}@{}", self.image, self.digest)
        }
    }

    /// Facts recorded in a previous status, if complete.
    pub fn from_status(status: &WasmAppStatus) -> Option<Self> {
        Some(Self {
            image: status.image.clone()?,
            digest: status.image_digest.clone()?,
            format: status.image_format?,
            kind: status.component_kind.unwrap_or(ComponentKind::Unknown),
            world: status.component_world.clone(),
        })
    }
}

/// The outcome of inspecting an image; drives the `ImageValid` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageCheck {
    /// The image exists and is Wasm.
    Valid(ImageFacts),
    /// The image cannot run: `ImageValid=False`. The reason is a CamelCase word.
    Invalid {
        /// Condition reason, e.g. `ImageNotWasm`, `ImageNotFound`, `ImageAuthFailed`.
        reason: &'static str,
        /// What was found, for humans.
        message: String,
    },
    /// The registry could not answer: `ImageValid=Unknown`, retried with backoff.
    Unknown {
        /// Condition reason, e.g. `RegistryUnreachable`.
        reason: &'static str,
        /// What happened, for humans.
        message: String,
    },
}

impl ImageCheck {
    /// Reason for an invalid image reference.
    pub const INVALID_REFERENCE: &'static str = "InvalidImageReference";
    /// Reason for a manifest that is not Wasm.
    pub const NOT_WASM: &'static str = "ImageNotWasm";
    /// Reason for a missing tag, digest or repository.
    pub const NOT_FOUND: &'static str = "ImageNotFound";
    /// Reason for a refused or missing login.
    pub const AUTH_FAILED: &'static str = "ImageAuthFailed";
    /// Reason for a manifest the operator cannot read.
    pub const UNSUPPORTED: &'static str = "UnsupportedManifest";
    /// Reason for an unreachable registry.
    pub const UNREACHABLE: &'static str = "RegistryUnreachable";
    /// Reason for a registry that answered with a server error or rate limit.
    pub const UNAVAILABLE: &'static str = "RegistryUnavailable";

    /// Shorthand for [`ImageCheck::Invalid`].
    pub fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            reason,
            message: message.into(),
        }
    }

    /// Shorthand for [`ImageCheck::Unknown`].
    pub fn unknown(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Unknown {
            reason,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(image: &str) -> ImageFacts {
        ImageFacts {
            image: image.into(),
            digest: "sha256:abc".into(),
            format: ImageFormat::WasmArtifact,
            kind: ComponentKind::Http,
            world: None,
        }
    }

    #[test]
    fn pins_tags_and_keeps_digests() {
        assert_eq!(
            facts("localhost:5000/app:v1").pinned(),
            "localhost:5000/app:v1@sha256:abc"
        );
        assert_eq!(facts("app@sha256:def").pinned(), "app@sha256:def");
    }

    #[test]
    fn facts_round_trip_through_status() {
        let f = facts("r/app:v1");
        let status = WasmAppStatus {
            image: Some(f.image.clone()),
            image_digest: Some(f.digest.clone()),
            image_format: Some(f.format),
            component_kind: Some(f.kind),
            ..Default::default()
        };
        assert_eq!(ImageFacts::from_status(&status), Some(f));
        assert_eq!(ImageFacts::from_status(&WasmAppStatus::default()), None);
    }
}
