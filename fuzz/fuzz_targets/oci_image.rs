//! An image's manifest, index and artifact config, parsed as the shim parses what containerd
//! hands it (oci-spec types converted by `wasmpod_oci`'s own conversion, then its shared rules): whatever the bytes, an
//! answer or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::image::{ImageIndex, ImageManifest};
use wasmpod_oci::index;
use wasmpod_oci::layers;
use wasmpod_oci::oci_spec_descriptors::{index_entries, manifest_layers};

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = serde_json::from_slice::<ImageManifest>(data) {
        let found = manifest_layers(&manifest);
        let config = manifest.config().media_type().to_string();
        if let Ok(layers::Wasm::Layer(layer)) = layers::find(&config, &found) {
            assert!(
                found.contains(layer),
                "find answered a layer the manifest does not have"
            );
        }
    }
    if let Ok(idx) = serde_json::from_slice::<ImageIndex>(data) {
        let entries = index_entries(&idx);
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
