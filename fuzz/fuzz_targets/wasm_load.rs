//! Loading a guest the way the shim and the activator do (`WasmEngine::compile`: sniff module
//! or component, compile with wasmpod's engine settings, store in the compile cache, load the
//! artifact back): any bytes give a compiled guest or an error, never a panic.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use wasmpod_runtime::engine::{Wasm, WasmEngine};

static ENGINE: LazyLock<(tempfile::TempDir, Arc<WasmEngine>)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir for the compile cache");
    let engine = WasmEngine::new(dir.path()).expect("engine");
    (dir, engine)
});

fuzz_target!(|data: &[u8]| {
    let wasm = Wasm {
        bytes: data.to_vec(),
        digest: format!("sha256:{}", hex::encode(Sha256::digest(data))),
        world: None,
    };
    let _ = ENGINE.1.compile(&wasm);
});
