use serde_json::json;

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
        plan(&manifest(WASM_ARTIFACT_CONFIG, &["application/wasm"])),
        Plan::Artifact
    );
    for layer in WASM_LAYER_TYPES {
        assert_eq!(
            plan(&manifest("application/vnd.wasm.config.v1+json", &[layer])),
            Plan::WasmLayers
        );
    }
    assert_eq!(
        plan(&manifest(
            IMAGE_CONFIG_TYPES[0],
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
fn index_prefers_wasip2_wasm_entry_and_names_platforms_otherwise() {
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
    let err = pick_entry(&containers).unwrap_err();
    assert!(
        err.contains("linux/amd64") && err.contains("linux/arm64"),
        "{err}"
    );
}

#[test]
fn artifact_config_gives_kind_and_world() {
    let http = json!({"created": "2024-01-01T00:00:00Z", "architecture": "wasm", "os": "wasip2",
        "layerDigests": ["sha256:1"],
        "component": {"exports": ["wasi:http/incoming-handler@0.2.0"], "imports": [], "target": "wasi:http/proxy@0.2.0"}});
    assert_eq!(
        artifact_kind(http.to_string().as_bytes()),
        (ComponentKind::Http, Some("wasi:http/proxy@0.2.0".into()))
    );
    // Other producers omit `created` and `layerDigests`: still read.
    let cmd = json!({"os": "wasip2", "component": {"exports": ["wasi:cli/run@0.2.3"]}});
    assert_eq!(
        artifact_kind(cmd.to_string().as_bytes()),
        (ComponentKind::Command, Some("wasi:cli/run@0.2.3".into()))
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
        IMAGE_CONFIG_TYPES[0],
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
