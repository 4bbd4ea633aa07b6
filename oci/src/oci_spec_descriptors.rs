//! The shared rules' inputs from `oci-spec` descriptors (feature `oci-spec`): the shim reads
//! what containerd pulled with these types, and the fuzz target must read it the same way, so
//! the conversion lives once, here. The operator reads `oci-client` types and converts its own.

use oci_spec::image::{ImageIndex, ImageManifest};

use crate::index::{IndexEntry, Platform};
use crate::layers::Layer;

/// A manifest's layers, as [`crate::layers::find`] takes them.
pub fn manifest_layers(manifest: &ImageManifest) -> Vec<Layer> {
    manifest
        .layers()
        .iter()
        .map(|l| Layer {
            media_type: l.media_type().to_string(),
            digest: l.digest().to_string(),
            size: i64::try_from(l.size()).unwrap_or(i64::MAX),
        })
        .collect()
}

/// An index's entries, as [`crate::index::choose`] takes them.
pub fn index_entries(index: &ImageIndex) -> Vec<IndexEntry> {
    index
        .manifests()
        .iter()
        .map(|m| IndexEntry {
            media_type: m.media_type().to_string(),
            digest: m.digest().to_string(),
            platform: m.platform().as_ref().map(|p| Platform {
                os: p.os().to_string(),
                architecture: p.architecture().to_string(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_keep_the_platform_and_order() {
        let index: ImageIndex = serde_json::from_str(
            r#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                  {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 10,
                   "digest": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                   "platform": {"os": "wasip2", "architecture": "wasm"}},
                  {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 11,
                   "digest": "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}]}"#,
        )
        .expect("a valid index");
        let entries = index_entries(&index);
        assert_eq!(entries.len(), 2);
        let p = entries[0]
            .platform
            .as_ref()
            .expect("the first entry has a platform");
        assert_eq!((p.os.as_str(), p.architecture.as_str()), ("wasip2", "wasm"));
        assert!(entries[1].digest.starts_with("sha256:bbbb"));
        assert!(entries[1].platform.is_none());
    }

    #[test]
    fn manifest_layers_keep_type_digest_and_size() {
        let manifest: ImageManifest = serde_json::from_str(
            r#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.wasm.config.v0+json", "size": 2,
                  "digest": "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"},
                "layers": [{"mediaType": "application/wasm", "size": 1234,
                  "digest": "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"}]}"#,
        )
        .expect("a valid manifest");
        let layers = manifest_layers(&manifest);
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0].media_type, "application/wasm");
        assert_eq!(layers[0].size, 1234);
        assert!(layers[0].digest.starts_with("sha256:dddd"));
    }
}
