//! Media types wasmpod reads. Wasm layers are recognised by exact type; tar layers by the
//! `.tar` in their type, because their compression suffixes vary (`+gzip`, `+zstd`, Docker's
//! `.tar.gzip`, foreign-layer variants).

/// The single layer of the CNCF Wasm OCI artifact.
pub const WASM: &str = "application/wasm";
/// A Wasm component layer as written by wkg and other Bytecode Alliance tools.
pub const WASM_COMPONENT_LAYER: &str =
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";
/// A Wasm layer of an ordinary image (runwasi's convention).
pub const WASM_CONTENT_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// A core-module Wasm layer of an ordinary image.
pub const WASM_MODULE_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// Every layer media type that carries a Wasm binary.
pub const WASM_LAYERS: [&str; 4] = [
    WASM,
    WASM_COMPONENT_LAYER,
    WASM_CONTENT_LAYER,
    WASM_MODULE_LAYER,
];

/// Config media type of the CNCF Wasm OCI artifact (see [`crate::artifact`]).
pub const WASM_ARTIFACT_CONFIG: &str = "application/vnd.wasm.config.v0+json";

/// An OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker's manifest list, the index's predecessor.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Media types of an image index.
pub const INDEXES: [&str; 2] = [OCI_INDEX, DOCKER_MANIFEST_LIST];

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker's image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Config of an ordinary OCI image.
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Config of an ordinary Docker image.
pub const DOCKER_IMAGE_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Config media types of ordinary images (whose rootfs may hold a `.wasm` file).
pub const IMAGE_CONFIGS: [&str; 2] = [OCI_IMAGE_CONFIG, DOCKER_IMAGE_CONFIG];

/// Whether a layer of this type is a Wasm binary.
pub fn is_wasm_layer(media_type: &str) -> bool {
    WASM_LAYERS.contains(&media_type)
}

/// Whether a layer of this type is a filesystem tar that containerd unpacks into the rootfs.
pub fn is_tar_layer(media_type: &str) -> bool {
    media_type.contains(".tar")
}

/// Whether a manifest of this type is an image index.
pub fn is_index(media_type: &str) -> bool {
    INDEXES.contains(&media_type)
}

/// Whether a config of this type is an ordinary image config.
pub fn is_image_config(media_type: &str) -> bool {
    IMAGE_CONFIGS.contains(&media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_layers_are_told_apart_from_wasm_and_unknown_ones() {
        assert!(is_tar_layer("application/vnd.oci.image.layer.v1.tar+gzip"));
        assert!(is_tar_layer("application/vnd.oci.image.layer.v1.tar"));
        assert!(is_tar_layer(
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        ));
        assert!(!is_tar_layer("application/vnd.example.unknown"));
        for wasm in WASM_LAYERS {
            assert!(is_wasm_layer(wasm) && !is_tar_layer(wasm), "{wasm}");
        }
        assert!(!is_wasm_layer("application/vnd.oci.image.layer.v1.tar"));
    }

    #[test]
    fn indexes_and_configs() {
        assert!(is_index(OCI_INDEX) && is_index(DOCKER_MANIFEST_LIST));
        assert!(!is_index(OCI_MANIFEST));
        assert!(is_image_config(OCI_IMAGE_CONFIG) && is_image_config(DOCKER_IMAGE_CONFIG));
        assert!(!is_image_config(WASM_ARTIFACT_CONFIG));
    }
}
