//! One container of the pod: its lifecycle (created → running → stopped) and how it runs,
//! either in-process as Wasm or delegated to runc.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use tokio::runtime::Runtime;
use tokio::sync::watch;
use wasmpod_runtime::{
    Guest, HttpServer, Program, Settings, Stop, WasmEngine, run_to_completion, serve_activity,
    traffic,
};

use crate::cgroup::ThreadCgroup;
use crate::error::{Error, Result};
use crate::events::{Events, now};
use crate::pause::Pause;
use crate::runc::{Runc, wait_exit};
use crate::stdio::StdioPaths;

#[derive(Clone, Debug)]
pub enum Status {
    Created,
    Running,
    Stopped { code: u32, at: Timestamp },
}

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub stdio: StdioPaths,
    pub pid: u32,
    state: watch::Sender<Status>,
    pub kind: Kind,
}

pub enum Kind {
    Wasm(Box<WasmRun>),
    Native(NativeRun),
}

/// A Wasm guest, with the runtime whose threads live in the pod's namespaces and cgroup.
pub struct WasmRun {
    pub engine: Arc<WasmEngine>,
    pub program: Arc<Program>,
    pub guest: Arc<Guest>,
    pub settings: Settings,
    pub cgroup: Arc<ThreadCgroup>,
    runtime: Mutex<Option<Runtime>>,
    listeners: Mutex<Option<Listeners>>,
    stop: watch::Sender<Stop>,
    /// Signal that ended the guest, if it was killed.
    killed_by: AtomicU32,
}

/// The sockets of an HTTP guest, bound in the pod's network namespace at create.
pub struct Listeners {
    pub http: tokio::net::TcpListener,
    /// `WASMPOD_ACTIVITY_PORT`: the traffic report for scale to zero.
    pub activity: Option<tokio::net::TcpListener>,
}

pub struct NativeRun {
    pub launcher: Launcher,
    pub rootfs: PathBuf,
}

/// Who runs a native container's process.
pub enum Launcher {
    Runc(Runc),
    /// The pod sandbox's pause, started by the shim itself (see `pause`).
    Direct(Pause),
}

impl NativeRun {
    async fn start(&self) -> Result<()> {
        match &self.launcher {
            Launcher::Runc(runc) => runc.start().await,
            // Running since Create: a pause does nothing to start.
            Launcher::Direct(_) => Ok(()),
        }
    }

    async fn kill(&self, signal: u32, all: bool) -> Result<()> {
        match &self.launcher {
            Launcher::Runc(runc) => runc.kill(signal, all).await,
            Launcher::Direct(pause) => pause.kill(signal),
        }
    }

    async fn delete(&self) -> Result<()> {
        match &self.launcher {
            Launcher::Runc(runc) => runc.delete().await,
            Launcher::Direct(pause) => {
                pause.release();
                Ok(())
            }
        }
    }
}

impl WasmRun {
    pub fn new(
        engine: Arc<WasmEngine>,
        program: Program,
        guest: Arc<Guest>,
        settings: Settings,
        cgroup: Arc<ThreadCgroup>,
        runtime: Runtime,
        listeners: Option<Listeners>,
    ) -> Self {
        Self {
            engine,
            program: Arc::new(program),
            guest,
            settings,
            cgroup,
            runtime: Mutex::new(Some(runtime)),
            listeners: Mutex::new(listeners),
            stop: watch::channel(Stop::Run).0,
            killed_by: AtomicU32::new(0),
        }
    }

    /// Drops every task of the guest at its next yield point (guests yield at each epoch
    /// tick, so even a tight loop stops within milliseconds).
    fn shutdown_runtime(&self) {
        if let Ok(mut rt) = self.runtime.lock()
            && let Some(rt) = rt.take()
        {
            rt.shutdown_background();
        }
    }
}

impl Drop for WasmRun {
    fn drop(&mut self) {
        // A tokio runtime must not be dropped on an async thread; let it wind down alone.
        self.shutdown_runtime();
    }
}

impl Container {
    pub fn new(id: String, bundle: PathBuf, stdio: StdioPaths, pid: u32, kind: Kind) -> Arc<Self> {
        Arc::new(Self {
            id,
            bundle,
            stdio,
            pid,
            state: watch::channel(Status::Created).0,
            kind,
        })
    }

    pub fn status(&self) -> Status {
        self.state.borrow().clone()
    }

    /// Starts the container; its exit is published through `events` when it happens.
    pub async fn start(self: &Arc<Self>, events: Arc<Events>) -> Result<u32> {
        match self.status() {
            Status::Created => {}
            other => {
                return Err(Error::FailedPrecondition(format!(
                    "container {} cannot start: it is {other:?}",
                    self.id
                )));
            }
        }
        match &self.kind {
            Kind::Native(n) => {
                n.start().await?;
                self.state.send_replace(Status::Running);
                events.start(&self.id, self.pid).await;
                let me = self.clone();
                tokio::spawn(async move {
                    let code = match wait_exit(me.pid).await {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::error!(id = %me.id, error = %e, "lost track of the container process");
                            255
                        }
                    };
                    me.exited(code, &events).await;
                });
            }
            Kind::Wasm(w) => {
                let handle = {
                    let rt = w.runtime.lock().map_err(|_| poisoned())?;
                    let rt = rt.as_ref().ok_or_else(|| {
                        Error::FailedPrecondition(format!(
                            "container {} was killed before it started",
                            self.id
                        ))
                    })?;
                    let program = w.program.clone();
                    let guest = w.guest.clone();
                    let engine = w.engine.clone();
                    let settings = w.settings.clone();
                    let listeners = w.listeners.lock().map_err(|_| poisoned())?.take();
                    let stop = w.stop.subscribe();
                    self.state.send_replace(Status::Running);
                    rt.spawn(async move {
                        match (&*program, listeners) {
                            (Program::Http(pre), Some(listeners)) => {
                                let server = HttpServer::new(
                                    engine.engine.clone(),
                                    pre.clone(),
                                    guest,
                                    &settings,
                                );
                                if let Some(activity) = listeners.activity {
                                    tokio::spawn(serve_activity(
                                        activity,
                                        server.traffic(),
                                        traffic::instance_id(),
                                        stop.clone(),
                                    ));
                                }
                                Arc::new(server).serve(listeners.http, stop).await
                            }
                            (program, _) => {
                                run_to_completion(&engine.engine, program, &guest).await
                            }
                        }
                    })
                };
                events.start(&self.id, self.pid).await;
                let me = self.clone();
                tokio::spawn(async move {
                    let code = match handle.await {
                        Ok(code) => code as u32,
                        Err(_) => match &me.kind {
                            Kind::Wasm(w) => 128 + w.killed_by.load(Ordering::SeqCst).max(9),
                            Kind::Native(_) => 255,
                        },
                    };
                    me.exited(code, &events).await;
                });
            }
        }
        Ok(self.pid)
    }

    async fn exited(&self, code: u32, events: &Events) {
        if let Kind::Wasm(w) = &self.kind {
            if w.guest.usage().oom.load(Ordering::SeqCst) {
                events.oom(&self.id).await;
            }
            // Nothing of the guest may outlive its exit: in-flight tasks, threads, sockets,
            // and our ends of its stdio (CRI waits for their end-of-file before deleting).
            w.shutdown_runtime();
            w.guest.close_stdio();
        }
        let at = now();
        self.state.send_replace(Status::Stopped {
            code,
            at: at.clone(),
        });
        tracing::info!(id = %self.id, code, "container exited");
        events.exit(&self.id, self.pid, code, &at).await;
    }

    /// Sends a signal. Wasm guests understand SIGTERM/SIGINT (HTTP servers drain, commands
    /// stop) and SIGKILL (stop at once); other signals are ignored, as a process that does
    /// not handle them would not be.
    pub async fn kill(
        self: &Arc<Self>,
        signal: u32,
        all: bool,
        events: &Arc<Events>,
    ) -> Result<()> {
        let status = self.status();
        if let Status::Stopped { .. } = status {
            return Err(Error::NotFound(format!(
                "container {}: process already finished",
                self.id
            )));
        }
        match &self.kind {
            Kind::Native(n) => n.kill(signal, all).await,
            Kind::Wasm(w) => {
                const SIGINT: u32 = libc::SIGINT as u32;
                const SIGKILL: u32 = libc::SIGKILL as u32;
                const SIGTERM: u32 = libc::SIGTERM as u32;
                match (signal, matches!(status, Status::Created)) {
                    (SIGKILL | SIGTERM | SIGINT, true) => {
                        w.shutdown_runtime();
                        self.exited(128 + signal, events).await;
                    }
                    (SIGTERM | SIGINT, false) if matches!(*w.program, Program::Http(_)) => {
                        tracing::info!(id = %self.id, signal, "draining HTTP guest");
                        w.stop.send_replace(Stop::Drain);
                    }
                    (SIGKILL | SIGTERM | SIGINT, false) => {
                        tracing::info!(id = %self.id, signal, "stopping guest");
                        w.killed_by.store(signal, Ordering::SeqCst);
                        w.shutdown_runtime();
                    }
                    _ => tracing::info!(id = %self.id, signal, "signal ignored by the Wasm guest"),
                }
                Ok(())
            }
        }
    }

    pub async fn wait(&self) -> (u32, Timestamp) {
        let mut rx = self.state.subscribe();
        loop {
            if let Status::Stopped { code, at } = &*rx.borrow_and_update() {
                return (*code, at.clone());
            }
            if rx.changed().await.is_err() {
                return (255, now());
            }
        }
    }

    /// Releases what the container holds; the caller checked it is not running.
    pub async fn release(&self) {
        match &self.kind {
            Kind::Native(n) => {
                if let Err(e) = n.delete().await {
                    tracing::warn!(id = %self.id, error = %e, "delete of the native container failed");
                }
                unmount(&n.rootfs);
            }
            Kind::Wasm(w) => {
                w.shutdown_runtime();
                w.cgroup.remove().await;
            }
        }
    }
}

pub fn unmount(rootfs: &std::path::Path) {
    if let Err(e) = containerd_shim::mount::umount_recursive(rootfs.to_str(), 0) {
        tracing::warn!(path = %rootfs.display(), error = %e, "unmount rootfs failed");
    }
}

fn poisoned() -> Error {
    Error::FailedPrecondition("internal state lock poisoned".into())
}

/// Records whether every thread of a guest runtime joined its namespace and cgroup.
#[derive(Default)]
pub struct ThreadSetup {
    pub failed: AtomicBool,
}
