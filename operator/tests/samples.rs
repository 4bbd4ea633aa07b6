//! The sample WasmApps in deploy/samples parse as WasmApps (the apiserver checks them too, in
//! tests/apiserver).

#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::path::PathBuf;

use serde::Deserialize;
use wasmpod_operator::crd::WasmApp;

fn samples() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/samples");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_sample_wasmapp_deserializes() {
    let mut apps = 0;
    for (name, text) in samples() {
        for doc in serde_saphyr::from_multiple::<serde_json::Value>(&text).unwrap() {
            if doc["kind"] != "WasmApp" {
                continue;
            }
            let app =
                WasmApp::deserialize(&doc).unwrap_or_else(|e| panic!("{name}: not a WasmApp: {e}"));
            assert!(!app.spec.image.is_empty(), "{name}");
            apps += 1;
        }
    }
    assert!(apps >= 5, "found {apps} sample WasmApps");
}
