//! The one wasmtime Engine of a host process, and compilation through the on-node code cache.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig};

use crate::cache::{CacheOutcome, CompileCache};
use crate::error::{Error, IoContext, Result, chain};
use crate::program::World;

/// How often the epoch advances. Guests yield to the scheduler at each tick, which bounds how
/// long a guest in a tight loop can hold a thread and how soon a kill takes effect.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);
/// While no guest runs, how often the ticker looks whether its engine is gone.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// Guest instances alive in this process. Ticks only matter while one runs, so the ticker
/// sleeps while there is none: an idle pod's shim (most pods of a dense node) would otherwise
/// wake 100 times a second for nothing, 65,000 wake-ups a second on a node of 650 idle pods.
static RUNNING: Running = Running {
    count: AtomicUsize::new(0),
    lock: Mutex::new(()),
    wake: Condvar::new(),
};

struct Running {
    count: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Running {
    fn enter(&'static self) -> GuestRunning {
        if self.count.fetch_add(1, Ordering::SeqCst) == 0 {
            let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.notify_all();
        }
        GuestRunning(self)
    }

    fn wait_for_a_guest(&self, recheck: Duration) {
        if self.count.load(Ordering::SeqCst) > 0 {
            return;
        }
        let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock a starting guest takes to notify: no wake-up is lost.
        if self.count.load(Ordering::SeqCst) == 0 {
            let _ = self.wake.wait_timeout(guard, recheck);
        }
    }
}

/// Held by every store (one guest instance) while it lives: the epoch ticks while any is held.
pub(crate) struct GuestRunning(&'static Running);

impl GuestRunning {
    pub(crate) fn enter() -> Self {
        RUNNING.enter()
    }
}

impl Drop for GuestRunning {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Upper bounds of the pooling allocator. They reserve address space, not memory.
const POOL_INSTANCES: u32 = 256;
/// Freed instance slots are reset (madvise) in batches. Each reset flushes the TLB of every CPU
/// running a shim thread, an IPI that is costly in VMs: one per HTTP request took a third of the
/// shim's CPU under load. Batched, a pod serves about 35% more requests per second (20.5k to
/// 28k req/s in `make bench-shim`) for about 0.5 MB more RSS after a burst.
const DECOMMIT_BATCH: usize = 32;

/// A guest to compile, as its host found it.
#[derive(Debug)]
pub struct Wasm {
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`: the compile cache key.
    pub digest: String,
    /// Which world the image's metadata says the component targets, if it says.
    pub world: Option<World>,
}

/// A compiled guest.
pub enum Compiled {
    Component(Component),
    Module(Module),
}

impl Compiled {
    pub fn kind(&self) -> &'static str {
        match self {
            Compiled::Component(_) => "component",
            Compiled::Module(_) => "core module",
        }
    }
}

/// The engine shared by every guest of this process, with its code cache.
pub struct WasmEngine {
    pub engine: Engine,
    pub cache: CompileCache,
}

impl WasmEngine {
    /// Builds the engine (pooling allocator when the host allows the reservation, on-demand
    /// otherwise) and starts the epoch ticker.
    pub fn new(cache_root: &std::path::Path) -> Result<Arc<Self>> {
        let engine = match Engine::new(&config(true)) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation");
                Engine::new(&config(false)).map_err(|e| Error::Engine(chain(&e)))?
            }
        };
        let cache = CompileCache::open(cache_root, &engine);
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                    RUNNING.wait_for_a_guest(IDLE_RECHECK);
                }
            })
            .io_context(|| "spawn the epoch thread".into())?;
        Ok(Arc::new(Self { engine, cache }))
    }

    /// Compiles `wasm`, or loads it from the cache when this engine compiled the same bytes
    /// before. Blocking: call from a blocking thread.
    pub fn compile(&self, wasm: &Wasm) -> Result<(Compiled, CacheOutcome)> {
        let is_component = is_component(&wasm.bytes);
        if let Some((compiled, outcome)) = self.cache.load(&self.engine, &wasm.digest, is_component)
        {
            return Ok((compiled, outcome));
        }
        let compile_err = |e: wasmtime::Error| Error::Compile(chain(&e));
        let artifact = if is_component {
            self.engine.precompile_component(&wasm.bytes)
        } else {
            self.engine.precompile_module(&wasm.bytes)
        }
        .map_err(compile_err)?;
        let outcome = self.cache.store(&wasm.digest, &artifact);
        let compiled = self
            .load_compiled(&wasm.digest, is_component, artifact)
            .map_err(compile_err)?;
        // Compiling grows the heap by tens of MiB that the allocator would keep; give it back
        // so a pod's shim stays small after its first start on a node.
        // SAFETY: malloc_trim only releases free heap pages.
        unsafe { libc::malloc_trim(0) };
        Ok((compiled, outcome))
    }

    fn load_compiled(
        &self,
        digest: &str,
        is_component: bool,
        artifact: Vec<u8>,
    ) -> wasmtime::Result<Compiled> {
        // Load what we just wrote, so even the first pod maps the cached file and every pod
        // of this component shares its pages; fall back to the in-memory artifact.
        if let Some(compiled) = self.cache.load_stored(&self.engine, digest, is_component) {
            return Ok(compiled);
        }
        // SAFETY: `artifact` was produced by this engine a moment ago.
        unsafe {
            if is_component {
                Component::deserialize(&self.engine, &artifact).map(Compiled::Component)
            } else {
                Module::deserialize(&self.engine, &artifact).map(Compiled::Module)
            }
        }
    }
}

fn config(pooling: bool) -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true);
    cfg.epoch_interruption(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES)
            .total_memories(POOL_INSTANCES)
            .total_tables(POOL_INSTANCES)
            .total_stacks(POOL_INSTANCES)
            .decommit_batch_size(DECOMMIT_BATCH);
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    cfg
}

/// The Wasm binary header: bytes 4..8 are version and layer; layer 1 is a component.
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[6..8] == [1, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle() -> &'static Running {
        Box::leak(Box::new(Running {
            count: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }))
    }

    #[test]
    fn the_ticker_waits_while_no_guest_runs_and_wakes_when_one_starts() {
        let running = idle();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Far longer than the test may take: only a starting guest ends this wait.
            running.wait_for_a_guest(Duration::from_secs(600));
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "returned with no guest running"
        );
        let guest = running.enter();
        assert!(
            rx.recv_timeout(Duration::from_secs(60)).is_ok(),
            "a starting guest did not wake the ticker"
        );
        // While a guest lives the ticker never waits; once it is gone it does again.
        running.wait_for_a_guest(Duration::from_secs(600));
        drop(guest);
        assert_eq!(running.count.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn header_layer_tells_components_from_modules() {
        assert!(is_component(b"\0asm\x0d\0\x01\0"));
        assert!(!is_component(b"\0asm\x01\0\0\0"));
        assert!(!is_component(b"\0asm"));
    }
}
