//! One guest (a container's or an app's Wasm, with what it was given) and the stores its
//! instances run in.
//!
//! Split by concern: [`context`] (args, env, volumes, stdio, network → each instance's
//! `WasiCtx`), [`dns`] (the pod's resolver), `tls` (the roots of outgoing HTTPS), [`limits`]
//! (memory limit and usage), [`link`] (one module per host interface), [`run`] (running to
//! completion, exit statuses).

pub mod context;
pub mod dns;
pub mod limits;
pub(crate) mod link;
pub mod run;
mod tls;

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::capability::Capabilities;
use crate::error::Result;
use context::{GuestConfig, GuestContext};
use limits::{Limits, MemoryLimiter, Usage};
use link::{NameLookup, Outgoing};

/// A guest's inputs, prepared once and shared by all its instances.
pub struct Guest {
    context: GuestContext,
    limits: Limits,
}

impl Guest {
    /// Prepares what every instance of the guest is given (opens its volumes).
    pub fn new(config: GuestConfig) -> Result<Arc<Self>> {
        let limits = Limits::new(config.memory_limit, config.instance_cpu_limit);
        Ok(Arc::new(Self {
            context: GuestContext::new(config)?,
            limits,
        }))
    }

    /// Its linear memory now, and whether it hit its limit.
    pub fn usage(&self) -> &Usage {
        &self.limits.usage
    }

    pub fn memory_limit(&self) -> Option<u64> {
        self.limits.memory
    }

    /// Writes a line to the guest's stderr, prefixed `wasmpod:`.
    pub fn report(&self, line: &str) {
        self.context.report(line);
    }

    /// Releases the guest's stdio once it has exited, so readers see end-of-file when the
    /// last running instance is dropped.
    pub fn close_stdio(&self) {
        self.context.close_stdio();
    }

    /// A store for one component instance, with the guest's limits, yielding to the
    /// scheduler at every epoch tick.
    pub(crate) fn component_store(&self, engine: &Engine) -> Store<GuestState> {
        let state = GuestState {
            wasi: self.context.wasi_ctx(),
            http: WasiHttpCtx::new(),
            name_lookup: self.context.name_lookup(),
            outgoing: self.context.outgoing(),
            capabilities: self.context.capabilities(),
            table: ResourceTable::new(),
            limiter: self.limits.limiter(),
        };
        limited(
            Store::new(engine, state),
            |s| &mut s.limiter,
            self.limits.instance_ticks,
        )
    }

    pub(crate) fn p1_store(&self, engine: &Engine) -> Store<P1State> {
        let state = P1State {
            ctx: self.context.wasi_p1_ctx(),
            limiter: self.limits.limiter(),
        };
        limited(
            Store::new(engine, state),
            |s| &mut s.limiter,
            self.limits.instance_ticks,
        )
    }
}

fn limited<T: 'static>(
    mut store: Store<T>,
    mut limiter: impl (FnMut(&mut T) -> &mut MemoryLimiter) + Send + Sync + 'static,
    cpu_ticks: Option<u64>,
) -> Store<T> {
    // The limiter lives as long as the store, and so does the guard that keeps the epoch
    // ticking for it.
    let running = crate::engine::GuestRunning::enter();
    store.limiter(move |s| {
        let _ = &running;
        limiter(s) as &mut dyn wasmtime::ResourceLimiter
    });
    match cpu_ticks {
        None => store.epoch_deadline_async_yield_and_update(1),
        Some(max) => {
            // The deadline passes once per tick the instance is running in (the ticker is
            // global, the deadline is re-armed one tick ahead), so counting passes counts CPU.
            let mut used = 0u64;
            store.epoch_deadline_callback(move |_| {
                used += 1;
                if used > max {
                    return Err(wasmtime::format_err!(
                        "{CPU_LIMIT_TRAP}: the instance ran Wasm for more than {} ms",
                        max * crate::engine::EPOCH_TICK.as_millis() as u64
                    ));
                }
                Ok(wasmtime::UpdateDeadline::Yield(1))
            });
            store.set_epoch_deadline(1);
        }
    }
    store
}

/// How a trap for the CPU cap of [`GuestConfig::instance_cpu_limit`] starts.
pub const CPU_LIMIT_TRAP: &str = "CPU time limit exceeded";

/// Store data of component guests (commands and HTTP handlers). Each host interface reads
/// its part through the view its `link` module implements.
pub struct GuestState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) name_lookup: NameLookup,
    pub(crate) outgoing: Outgoing,
    pub(crate) capabilities: Arc<Capabilities>,
    pub(crate) table: ResourceTable,
    limiter: MemoryLimiter,
}

/// Store data of WASI preview 1 modules.
pub struct P1State {
    pub(crate) ctx: WasiP1Ctx,
    limiter: MemoryLimiter,
}
