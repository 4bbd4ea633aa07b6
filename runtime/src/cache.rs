//! The node's cache of compiled code.
//!
//! Entries live in `<root>/<engine compatibility hash>/<wasm sha256>.cwasm`, so an engine with
//! other settings or another wasmtime version never sees them. Each entry has a sidecar
//! `.sha256` of its bytes: deserialising compiled code is only sound for bytes this engine
//! wrote, so an entry whose bytes do not match (truncated, corrupted, tampered) is thrown
//! away and recompiled instead of being trusted. Loads are `deserialize_file`, i.e. mmap:
//! every pod of the same component shares the same page-cache pages of code.
//!
//! An entry is checked once per process: the first load reads and hashes it, later loads of
//! the same digest (a restarted container of the pod) map it at once, and an entry this
//! process wrote is known good without reading it back.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::engine::Compiled;

/// Where a compiled guest came from, for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    /// Compiled now and written to the cache.
    Stored,
    /// Compiled now; the cache could not be written (logged).
    Uncached,
}

pub struct CompileCache {
    dir: PathBuf,
    /// Digests whose entry matched its checksum (or was written) in this process.
    verified: Mutex<HashSet<String>>,
}

impl CompileCache {
    pub fn open(root: &Path, engine: &Engine) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            dir: root.join(format!("{:016x}", h.finish())),
            verified: Mutex::default(),
        }
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn paths(&self, digest: &str) -> (PathBuf, PathBuf) {
        let name = digest.replace(':', "-");
        (
            self.dir.join(format!("{name}.cwasm")),
            self.dir.join(format!("{name}.sha256")),
        )
    }

    /// Looks a guest up: a verified entry is a hit; a missing, corrupt or stale one gives
    /// `None` (and is removed).
    pub fn load(
        &self,
        engine: &Engine,
        digest: &str,
        component: bool,
    ) -> Option<(Compiled, CacheOutcome)> {
        let compiled = self.map(engine, digest, component)?;
        tracing::info!(digest, "compile cache hit");
        Some((compiled, CacheOutcome::Hit))
    }

    /// Maps an entry this engine has just stored.
    pub fn load_stored(&self, engine: &Engine, digest: &str, component: bool) -> Option<Compiled> {
        self.map(engine, digest, component)
    }

    fn map(&self, engine: &Engine, digest: &str, component: bool) -> Option<Compiled> {
        let (code, sum) = self.paths(digest);
        if !self.verified().contains(digest) {
            let expected = std::fs::read_to_string(&sum).ok()?;
            let bytes = std::fs::read(&code).ok()?;
            if hex::encode(Sha256::digest(&bytes)) != expected.trim() {
                tracing::warn!(digest, path = %code.display(), "compile cache entry does not match its checksum; recompiling");
                self.discard(digest, &code, &sum);
                return None;
            }
            self.verified().insert(digest.to_string());
        }
        // SAFETY: the file's bytes matched the checksum written together with them by an
        // engine with this compatibility hash, and wasmtime checks the header again.
        let loaded = unsafe {
            if component {
                Component::deserialize_file(engine, &code).map(Compiled::Component)
            } else {
                wasmtime::Module::deserialize_file(engine, &code).map(Compiled::Module)
            }
        };
        match loaded {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(digest, error = %e, "compile cache entry rejected by wasmtime; recompiling");
                self.discard(digest, &code, &sum);
                None
            }
        }
    }

    /// Writes an entry atomically (temp file + rename, checksum last).
    pub fn store(&self, digest: &str, artifact: &[u8]) -> CacheOutcome {
        let (code, sum) = self.paths(digest);
        let result = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let tmp = code.with_extension(format!("tmp{}", std::process::id()));
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(artifact)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &code)?;
            let tmp_sum = sum.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp_sum, hex::encode(Sha256::digest(artifact)))?;
            std::fs::rename(&tmp_sum, &sum)
        })();
        match result {
            Ok(()) => {
                self.verified().insert(digest.to_string());
                tracing::info!(digest, path = %code.display(), "compile cache miss: compiled and stored");
                CacheOutcome::Stored
            }
            Err(e) => {
                tracing::warn!(digest, error = %e, "compile cache write failed");
                CacheOutcome::Uncached
            }
        }
    }

    fn discard(&self, digest: &str, code: &Path, sum: &Path) {
        self.verified().remove(digest);
        let _ = std::fs::remove_file(sum);
        let _ = std::fs::remove_file(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    const WAT: &str = r#"(module (func (export "f") (result i32) i32.const 7))"#;

    fn digest(wasm: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(wasm)))
    }

    /// Flips one byte in the middle of the entry's code.
    fn corrupt(cache: &CompileCache, digest: &str) -> PathBuf {
        let (code, _) = cache.paths(digest);
        let mut bytes = std::fs::read(&code).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&code, bytes).expect("write");
        code
    }

    #[test]
    fn second_load_is_a_hit_and_corruption_forces_a_recompile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine();
        let wasm = wat_module();
        let digest = digest(&wasm);
        let writer = CompileCache::open(dir.path(), &engine);
        assert!(writer.load(&engine, &digest, false).is_none());
        let art = engine.precompile_module(&wasm).expect("precompile");
        assert_eq!(writer.store(&digest, &art), CacheOutcome::Stored);
        assert!(matches!(
            writer.load(&engine, &digest, false),
            Some((_, CacheOutcome::Hit))
        ));

        // Another process finds the entry and checks it once; a second load needs no check.
        let reader = CompileCache::open(dir.path(), &engine);
        assert!(reader.load(&engine, &digest, false).is_some());
        assert!(reader.verified().contains(&digest));
        assert!(reader.load(&engine, &digest, false).is_some());

        // Corrupted before a process's first load: the checksum catches it.
        let code = corrupt(&writer, &digest);
        let fresh = CompileCache::open(dir.path(), &engine);
        assert!(fresh.load(&engine, &digest, false).is_none());
        assert!(!code.exists(), "a corrupt entry is removed");
        assert!(!fresh.verified().contains(&digest));
    }

    #[test]
    fn other_engine_settings_use_other_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = CompileCache::open(dir.path(), &engine());
        let mut cfg = wasmtime::Config::new();
        cfg.epoch_interruption(true);
        let b = CompileCache::open(dir.path(), &Engine::new(&cfg).expect("engine"));
        assert_ne!(a.dir, b.dir);
    }

    fn wat_module() -> Vec<u8> {
        wat::parse_str(WAT).expect("wat")
    }
}
