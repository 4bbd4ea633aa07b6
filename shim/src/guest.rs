//! What a guest sees (args, env, volumes, stdio, network) and how command components and
//! WASI preview 1 modules run to completion.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use oci_spec::runtime::Spec;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, InstancePre, Module, ResourceLimiter, Store};
use wasmtime_wasi::cli::OutputFile;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::engine::Compiled;
use crate::source::WorldHint;

/// Environment variables that configure the shim for one container. They are removed from
/// the guest's environment.
pub const SHIM_ENV_PREFIX: &str = "WASMPOD_";
/// Exit status of a guest that trapped (as a process aborted by SIGABRT would report).
pub const TRAP_EXIT_CODE: i32 = 134;
/// Exit status of a guest stopped for going over its memory limit (as the kernel's OOM kill).
pub const OOM_EXIT_CODE: i32 = 137;

/// One volume the guest may use.
#[derive(Clone, Debug)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// Everything a guest instance is given; built once per container, reused for each instance.
pub struct GuestEnv {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Shim settings taken out of the container's env (`WASMPOD_*`).
    pub shim_env: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    /// The container's stdout and stderr; emptied when the container exits, because CRI waits
    /// for end-of-file on these FIFOs before it deletes the task.
    stdout: Mutex<Option<OutputFile>>,
    stderr: Mutex<Option<OutputFile>>,
    pub memory_limit: Option<u64>,
    /// Whether guest sockets are allowed: only when its threads run in a namespace of the
    /// pod's, never on the node's network.
    pub network: bool,
    pub usage: Arc<Usage>,
}

/// Live accounting of one container's guest memory, and whether it hit its limit.
#[derive(Debug, Default)]
pub struct Usage {
    pub memory_bytes: AtomicU64,
    pub oom: AtomicBool,
}

impl GuestEnv {
    pub fn from_spec(
        spec: &Spec,
        stdout: Option<std::fs::File>,
        stderr: Option<std::fs::File>,
        network: bool,
    ) -> Self {
        let process = spec.process().as_ref();
        let args = process.and_then(|p| p.args().clone()).unwrap_or_default();
        let (shim_env, env) = process
            .and_then(|p| p.env().clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .partition(|(k, _)| k.starts_with(SHIM_ENV_PREFIX));
        let memory_limit = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.memory().as_ref())
            .and_then(|m| m.limit())
            .and_then(|l| u64::try_from(l).ok())
            .filter(|l| *l > 0);
        Self {
            args,
            env,
            shim_env,
            preopens: preopens_from_spec(spec),
            stdout: Mutex::new(stdout.map(OutputFile::new)),
            stderr: Mutex::new(stderr.map(OutputFile::new)),
            memory_limit,
            network,
            usage: Arc::default(),
        }
    }

    pub fn shim_setting(&self, key: &str) -> Option<&str> {
        self.shim_env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn wasi_builder(&self) -> wasmtime::Result<WasiCtxBuilder> {
        let mut b = WasiCtxBuilder::new();
        b.args(&self.args).envs(&self.env);
        if let Some(out) = lock(&self.stdout).clone() {
            b.stdout(out);
        }
        if let Some(err) = lock(&self.stderr).clone() {
            b.stderr(err);
        }
        for p in &self.preopens {
            let perms = if p.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&p.host, &p.guest, perms)?;
        }
        if self.network {
            b.inherit_network();
        }
        // Name lookups would use the node's resolver configuration, not the pod's.
        b.allow_ip_name_lookup(false);
        Ok(b)
    }

    /// Writes a line to the container's stderr (what `kubectl logs` shows).
    /// Drops our handles on the container's stdio (instances still running hold their own
    /// until they are dropped).
    pub fn close_stdio(&self) {
        lock(&self.stdout).take();
        lock(&self.stderr).take();
    }

    pub fn report(&self, line: &str) {
        if let Some(err) = lock(&self.stderr).as_ref() {
            let mut s = wasmtime_wasi::cli::StdoutStream::p2_stream(err);
            let _ = s.write(bytes::Bytes::from(format!("wasmpod: {line}\n")));
        }
    }

    fn limiter(&self) -> MemoryLimiter {
        MemoryLimiter {
            limit: self.memory_limit,
            current: 0,
            usage: self.usage.clone(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Bind mounts of the spec that are directories become preopens; the guest sees nothing else
/// of any filesystem (no rootfs, no host paths).
fn preopens_from_spec(spec: &Spec) -> Vec<Preopen> {
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let opts = m.options().clone().unwrap_or_default();
        let is_bind =
            m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
        let dest = m.destination().to_string_lossy().to_string();
        if !is_bind
            || ["/proc", "/dev", "/sys"]
                .iter()
                .any(|p| dest == *p || dest.starts_with(&format!("{p}/")))
        {
            continue;
        }
        let Some(src) = m.source() else { continue };
        if !src.is_dir() {
            continue;
        }
        out.push(Preopen {
            host: src.clone(),
            guest: dest,
            read_only: opts.iter().any(|o| o == "ro"),
        });
    }
    out
}

/// Caps guest linear memory at the container's memory limit and counts it.
pub struct MemoryLimiter {
    limit: Option<u64>,
    current: u64,
    usage: Arc<Usage>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = (desired - current) as u64;
        let total = self.usage.memory_bytes.load(Ordering::Relaxed) + grow;
        if let Some(limit) = self.limit
            && total > limit
        {
            self.usage.oom.store(true, Ordering::SeqCst);
            wasmtime::bail!(
                "out of memory: guest linear memory would grow to {total} bytes, over the container's memory limit of {limit} bytes"
            );
        }
        self.current += grow;
        self.usage.memory_bytes.fetch_add(grow, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.usage
            .memory_bytes
            .fetch_sub(self.current, Ordering::Relaxed);
    }
}

/// Store data of component guests (commands and HTTP handlers).
pub struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// Store data of WASI preview 1 modules.
pub struct P1State {
    ctx: WasiP1Ctx,
    limiter: MemoryLimiter,
}

/// A store with the container's limits, yielding to the scheduler at every epoch tick.
pub fn component_store(engine: &Engine, env: &GuestEnv) -> wasmtime::Result<Store<GuestState>> {
    let state = GuestState {
        wasi: env.wasi_builder()?.build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        limiter: env.limiter(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_async_yield_and_update(1);
    Ok(store)
}

fn p1_store(engine: &Engine, env: &GuestEnv) -> wasmtime::Result<Store<P1State>> {
    let state = P1State {
        ctx: env.wasi_builder()?.build_p1(),
        limiter: env.limiter(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_async_yield_and_update(1);
    Ok(store)
}

/// A guest linked and pre-instantiated, ready to run.
pub enum Program {
    Command(CommandPre<GuestState>),
    Http(ProxyPre<GuestState>),
    P1(InstancePre<P1State>),
}

impl Program {
    pub fn kind(&self) -> &'static str {
        match self {
            Program::Command(_) => "wasi:cli command component",
            Program::Http(_) => "wasi:http component",
            Program::P1(_) => "WASI preview 1 module",
        }
    }

    /// Picks the world the guest is run in and links it. Errors say what the guest exports
    /// or imports that we cannot serve.
    pub fn prepare(
        engine: &Engine,
        compiled: Compiled,
        hint: Option<WorldHint>,
    ) -> Result<Self, String> {
        match compiled {
            Compiled::Component(c) => prepare_component(engine, c, hint),
            Compiled::Module(m) => prepare_module(engine, m),
        }
    }
}

fn prepare_component(
    engine: &Engine,
    c: Component,
    hint: Option<WorldHint>,
) -> Result<Program, String> {
    let exports: Vec<String> = c
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let has = |prefix: &str| exports.iter().any(|e| e.starts_with(prefix));
    let (http, cli) = (has("wasi:http/incoming-handler@"), has("wasi:cli/run@"));
    let world = match (hint, http, cli) {
        (Some(WorldHint::Http), true, _) | (None, true, _) => WorldHint::Http,
        (Some(WorldHint::Command), _, true) | (_, false, true) => WorldHint::Command,
        (Some(WorldHint::Command), true, false) => WorldHint::Http,
        _ => {
            return Err(format!(
                "the component exports neither wasi:cli/run nor wasi:http/incoming-handler, so there is nothing to run; its exports are [{}]",
                exports.join(", ")
            ));
        }
    };
    let mut linker: Linker<GuestState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| format!("{e:#}"))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| format!("{e:#}"))?;
    let pre = linker
        .instantiate_pre(&c)
        .map_err(|e| format!("cannot link the component: {e:#}"))?;
    match world {
        WorldHint::Http => ProxyPre::new(pre).map(Program::Http),
        WorldHint::Command => CommandPre::new(pre).map(Program::Command),
    }
    .map_err(|e| format!("the component does not match its world: {e:#}"))
}

fn prepare_module(engine: &Engine, m: Module) -> Result<Program, String> {
    if m.get_export("_start").is_none() {
        let exports: Vec<&str> = m.exports().map(|e| e.name()).collect();
        return Err(format!(
            "the core module has no _start export (a WASI preview 1 command); its exports are [{}]",
            exports.join(", ")
        ));
    }
    let mut linker: wasmtime::Linker<P1State> = wasmtime::Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s| &mut s.ctx)
        .map_err(|e| format!("{e:#}"))?;
    linker
        .instantiate_pre(&m)
        .map(Program::P1)
        .map_err(|e| format!("cannot link the module: {e:#}"))
}

/// Runs a command component or p1 module to completion and returns its exit status.
pub async fn run_to_completion(engine: &Engine, program: &Program, env: &GuestEnv) -> i32 {
    let result = match program {
        Program::Command(pre) => run_command(engine, pre, env).await,
        Program::P1(pre) => run_p1(engine, pre, env).await,
        Program::Http(_) => Ok(0),
    };
    match result {
        Ok(code) => code,
        Err(e) => exit_status_of(e, env),
    }
}

async fn run_command(
    engine: &Engine,
    pre: &CommandPre<GuestState>,
    env: &GuestEnv,
) -> wasmtime::Result<i32> {
    let mut store = component_store(engine, env)?;
    let cmd = pre.instantiate_async(&mut store).await?;
    Ok(match cmd.wasi_cli_run().call_run(&mut store).await? {
        Ok(()) => 0,
        Err(()) => 1,
    })
}

async fn run_p1(
    engine: &Engine,
    pre: &InstancePre<P1State>,
    env: &GuestEnv,
) -> wasmtime::Result<i32> {
    let mut store = p1_store(engine, env)?;
    let instance = pre.instantiate_async(&mut store).await?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    start.call_async(&mut store, ()).await?;
    Ok(0)
}

/// Turns a guest error into an exit status: `exit(n)` is n; a trap is reported on the
/// container's stderr and in the shim log.
pub fn exit_status_of(e: wasmtime::Error, env: &GuestEnv) -> i32 {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return exit.0;
    }
    let oom = env.usage.oom.load(Ordering::SeqCst);
    env.report(&format!("guest trapped: {e:?}"));
    tracing::warn!(error = ?e, oom, "guest trapped");
    if oom { OOM_EXIT_CODE } else { TRAP_EXIT_CODE }
}
