//! An image's manifest, index and artifact config, parsed as the shim parses what containerd
//! hands it (oci-spec types, then the shared rules of `wasmpod_oci`): whatever the bytes, an
//! answer or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::image::{ImageIndex, ImageManifest};
use wasmpod_oci::index::{self, IndexEntry, Platform};
use wasmpod_oci::layers::{self, Layer};

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = serde_json::from_slice::<ImageManifest>(data) {
        let found: Vec<Layer> = manifest
            .layers()
            .iter()
            .map(|l| Layer {
                media_type: l.media_type().to_string(),
                digest: l.digest().to_string(),
                size: l.size() as i64,
            })
            .collect();
        let config = manifest.config().media_type().to_string();
        if let Ok(layers::Wasm::Layer(layer)) = layers::find(&config, &found) {
            assert!(
                found.contains(layer),
                "find answered a layer the manifest does not have"
            );
        }
    }
    if let Ok(idx) = serde_json::from_slice::<ImageIndex>(data) {
        let entries: Vec<IndexEntry> = idx
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
            .collect();
        if let Ok(chosen) = index::choose(&entries) {
            assert!(
                entries.contains(chosen),
                "choose answered an entry the index does not have"
            );
            // What the operator validated is what the shim runs once it is pulled.
            let pulled = [chosen.digest.as_str()];
            assert_eq!(index::pulled_entry(&entries, &pulled).ok(), Some(chosen));
        }
    }
    let _ = wasmpod_oci::artifact::parse(data);
});
