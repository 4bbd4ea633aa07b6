//! Which layer of an image manifest holds the Wasm. The shim reads that layer; the operator
//! accepts a manifest only if this finds one, or finds that the rootfs must hold the Wasm.

use crate::media_types::{WASM_ARTIFACT_CONFIG, is_tar_layer, is_wasm_layer};
use crate::{Error, Result};

/// A layer descriptor of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Its media type.
    pub media_type: String,
    /// `sha256:<hex>` of its blob.
    pub digest: String,
    /// Size of its blob in bytes (`int64` in the OCI descriptor).
    pub size: i64,
}

/// Where a manifest's Wasm is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wasm<'a> {
    /// In this layer.
    Layer(&'a Layer),
    /// Not in a layer: every layer is a filesystem tar, so the Wasm (if any) is a file in the
    /// unpacked rootfs, named by the entrypoint.
    Rootfs,
}

/// Finds the Wasm of a manifest with config media type `config` and these layers:
/// - a CNCF Wasm artifact (config [`WASM_ARTIFACT_CONFIG`]) must have exactly one layer;
/// - exactly one layer of a Wasm media type is the Wasm; several are refused, since a
///   container runs one binary and guessing would run the wrong one;
/// - no Wasm layer and only tar layers (or none) means [`Wasm::Rootfs`];
/// - no Wasm layer and some other type is refused, naming the types seen.
pub fn find<'a>(config: &str, layers: &'a [Layer]) -> Result<Wasm<'a>> {
    let types = || layers.iter().map(|l| l.media_type.clone()).collect();
    if config == WASM_ARTIFACT_CONFIG && layers.len() != 1 {
        return Err(Error::ArtifactLayers { types: types() });
    }
    let wasm: Vec<&Layer> = layers
        .iter()
        .filter(|l| is_wasm_layer(&l.media_type))
        .collect();
    match wasm.as_slice() {
        [layer] => Ok(Wasm::Layer(layer)),
        [] if layers.iter().all(|l| is_tar_layer(&l.media_type)) => Ok(Wasm::Rootfs),
        [] => Err(Error::UnknownLayers { types: types() }),
        many => Err(Error::ManyWasmLayers {
            wasm: many.iter().map(|l| l.media_type.clone()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_types::{OCI_IMAGE_CONFIG, WASM, WASM_COMPONENT_LAYER, WASM_LAYERS};

    const TAR_GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

    fn layers(types: &[&str]) -> Vec<Layer> {
        types
            .iter()
            .enumerate()
            .map(|(i, t)| Layer {
                media_type: (*t).into(),
                digest: format!("sha256:{i:02}"),
                size: 10,
            })
            .collect()
    }

    #[test]
    fn one_wasm_layer_of_any_wasm_type_is_the_wasm() {
        for t in WASM_LAYERS {
            let ls = layers(&[t]);
            assert_eq!(find(OCI_IMAGE_CONFIG, &ls), Ok(Wasm::Layer(&ls[0])), "{t}");
        }
        let ls = layers(&[WASM]);
        assert_eq!(find(WASM_ARTIFACT_CONFIG, &ls), Ok(Wasm::Layer(&ls[0])));
        // A Wasm layer next to tar layers (e.g. a config file) is still the one Wasm.
        let ls = layers(&[TAR_GZ, WASM_COMPONENT_LAYER]);
        assert_eq!(find(OCI_IMAGE_CONFIG, &ls), Ok(Wasm::Layer(&ls[1])));
    }

    #[test]
    fn tar_layers_mean_the_rootfs() {
        assert_eq!(
            find(OCI_IMAGE_CONFIG, &layers(&[TAR_GZ, TAR_GZ])),
            Ok(Wasm::Rootfs)
        );
        assert_eq!(find(OCI_IMAGE_CONFIG, &[]), Ok(Wasm::Rootfs));
    }

    #[test]
    fn ambiguous_and_unknown_layers_are_refused_naming_the_types() {
        let err = find(WASM_ARTIFACT_CONFIG, &layers(&[WASM, WASM])).unwrap_err();
        assert!(matches!(err, Error::ArtifactLayers { .. }));
        assert!(err.to_string().contains("with 2 layers"), "{err}");
        let err = find(WASM_ARTIFACT_CONFIG, &[]).unwrap_err();
        assert!(err.to_string().contains("with 0 layers"), "{err}");

        let err = find(OCI_IMAGE_CONFIG, &layers(&[WASM, WASM_COMPONENT_LAYER])).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("2 Wasm layers") && msg.contains(WASM_COMPONENT_LAYER),
            "{msg}"
        );

        let err = find(
            OCI_IMAGE_CONFIG,
            &layers(&[TAR_GZ, "application/vnd.example.blob"]),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(
                "[application/vnd.oci.image.layer.v1.tar+gzip, application/vnd.example.blob]"
            ) && msg.contains(WASM_COMPONENT_LAYER),
            "{msg}"
        );
    }
}
