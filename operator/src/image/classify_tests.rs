use serde_json::json;
use wasmpod_oci::media_types::{OCI_IMAGE_CONFIG, WASM, WASM_ARTIFACT_CONFIG, WASM_LAYERS};

use super::*;

fn manifest(config_type: &str, layer_types: &[&str]) -> OciImageManifest {
    let layers: Vec<_> = layer_types
        .iter()
        .map(|t| json!({"mediaType": t, "digest": "sha256:11", "size": 10}))
        .collect();
    serde_json::from_value(json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": config_type, "digest": "sha256:22", "size": 5},
        "layers": layers
    }))
    .unwrap()
}

#[test]
fn plans_by_config_and_layer_media_types() {
    assert_eq!(
        plan(&manifest(WASM_ARTIFACT_CONFIG, &[WASM])),
        Plan::Artifact
    );
    for layer in WASM_LAYERS {
        assert_eq!(
            plan(&manifest("application/vnd.wasm.config.v1+json", &[layer])),
            Plan::WasmLayers
        );
    }
    assert_eq!(
        plan(&manifest(
            OCI_IMAGE_CONFIG,
            &["application/vnd.oci.image.layer.v1.tar+gzip"]
        )),
        Plan::ImageConfig
    );
    let Plan::NotWasm(msg) = plan(&manifest(
        "application/vnd.cncf.helm.config.v1+json",
        &["application/vnd.cncf.helm.chart.content.v1.tar+gzip"],
    )) else {
        panic!("helm chart is not wasm")
    };
    assert!(
        msg.contains("application/vnd.cncf.helm.config.v1+json"),
        "{msg}"
    );
    assert!(msg.contains("helm.chart.content"), "{msg}");
}

#[test]
fn manifests_the_shim_would_refuse_are_not_wasm() {
    let Plan::NotWasm(msg) = plan(&manifest(WASM_ARTIFACT_CONFIG, &[WASM, WASM])) else {
        panic!("an artifact with two layers is refused by the shim")
    };
    assert!(msg.contains("with 2 layers"), "{msg}");
    let Plan::NotWasm(msg) = plan(&manifest(
        OCI_IMAGE_CONFIG,
        &[WASM_LAYERS[1], WASM_LAYERS[2]],
    )) else {
        panic!("two Wasm layers are refused by the shim")
    };
    assert!(msg.contains("2 Wasm layers"), "{msg}");
    let Plan::NotWasm(msg) = plan(&manifest(
        OCI_IMAGE_CONFIG,
        &["application/vnd.example.blob"],
    )) else {
        panic!("an unknown layer type is refused by the shim")
    };
    assert!(msg.contains("application/vnd.example.blob"), "{msg}");
}

#[test]
fn index_entries_keep_digests_and_platforms_for_the_shared_rule() {
    let index: OciImageIndex = serde_json::from_value(json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:a1", "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:w1", "size": 1,
             "platform": {"os": "wasip1", "architecture": "wasm"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:w2", "size": 1,
             "platform": {"os": "wasip2", "architecture": "wasm"}}
        ]
    }))
    .unwrap();
    let entries = index_entries(&index);
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[0]
            .platform
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("linux/amd64")
    );
    assert_eq!(pick_entry(&index).unwrap().digest, "sha256:w2");

    let containers: OciImageIndex = serde_json::from_value(json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:a1", "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:a2", "size": 1,
             "platform": {"os": "linux", "architecture": "arm64"}}
        ]
    }))
    .unwrap();
    let err = pick_entry(&containers).unwrap_err().to_string();
    assert!(
        err.contains("no wasm entry") && err.contains("linux/amd64") && err.contains("linux/arm64"),
        "{err}"
    );
}

#[test]
fn artifact_config_gives_kind_and_world() {
    let http = json!({"architecture": "wasm", "os": "wasip2",
        "component": {"exports": ["wasi:http/incoming-handler@0.2.0"], "target": "wasi:http/proxy@0.2.0"}});
    assert_eq!(
        artifact_kind(http.to_string().as_bytes()),
        (ComponentKind::Http, Some("wasi:http/proxy@0.2.0".into()))
    );
    let module = json!({"architecture": "wasm", "os": "wasip1"});
    assert_eq!(
        artifact_kind(module.to_string().as_bytes()),
        (ComponentKind::Module, None)
    );
    assert_eq!(artifact_kind(b"not json"), (ComponentKind::Unknown, None));
}

#[test]
fn scratch_images_need_wasm_architecture_or_a_wasm_entrypoint() {
    let m = manifest(
        OCI_IMAGE_CONFIG,
        &["application/vnd.oci.image.layer.v1.tar"],
    );
    let wasm =
        json!({"architecture": "wasm", "os": "wasip2", "config": {"Entrypoint": ["/app.wasm"]}});
    assert_eq!(
        scratch_image(wasm.to_string().as_bytes(), &m),
        Ok((ImageFormat::ScratchImage, ComponentKind::Unknown))
    );
    let untagged =
        json!({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello.wasm"]}});
    assert!(scratch_image(untagged.to_string().as_bytes(), &m).is_ok());
    let no_entry = json!({"architecture": "wasm", "os": "wasi", "config": {}});
    let err = scratch_image(no_entry.to_string().as_bytes(), &m).unwrap_err();
    assert!(err.contains("no entrypoint"), "{err}");
    let nginx = json!({"architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx"]}});
    let err = scratch_image(nginx.to_string().as_bytes(), &m).unwrap_err();
    assert!(err.contains("container image for linux/amd64"), "{err}");
    assert!(
        err.contains("application/vnd.oci.image.layer.v1.tar"),
        "{err}"
    );
}
