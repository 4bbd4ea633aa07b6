//! Turns a Create request into a ready container: mounts the rootfs, finds what to run, and
//! either hands the Wasm to the runtime (settings checked first, then compiled through the
//! code cache, linked, its guest threads placed in the pod's network namespace and cgroup) or
//! starts the native process: a pod sandbox's pause by the shim itself, anything else with runc.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use containerd_shim_protos::api::CreateTaskRequest;
use oci_spec::runtime::Spec;
use wasmpod_runtime::{Guest, Program, Wasm, WasmEngine, World};

use crate::cgroup::{ShimCgroup, ThreadCgroup};
use crate::container::{
    Container, Kind, Launcher, Listeners, NativeRun, ThreadSetup, WasmRun, unmount,
};
use crate::content::ContentStore;
use crate::error::{Error, IoContext, Result};
use crate::netns::NetNs;
use crate::pause::{Pause, PausePlan};
use crate::runc::Runc;
use crate::source::{Resolved, WasmSource, WorldHint, resolve};
use crate::spec::guest_inputs;
use crate::stdio::{StdioPaths, open_input, open_output};

pub struct Prepare<'a> {
    pub namespace: &'a str,
    pub containerd_address: &'a str,
    pub engine: &'a Arc<WasmEngine>,
    pub store: Option<&'a ContentStore>,
    pub systemd_cgroup: bool,
    pub pause_with_runc: bool,
    pub shim_cgroup: Option<&'a ShimCgroup>,
}

impl Prepare<'_> {
    pub async fn container(&self, req: &CreateTaskRequest) -> Result<Arc<Container>> {
        let bundle = Path::new(&req.bundle).to_path_buf();
        let spec = Spec::load(bundle.join("config.json"))
            .map_err(|e| Error::InvalidArgument(format!("read {}/config.json: {e}", req.bundle)))?;
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let rootfs = bundle.join("rootfs");
        for m in &req.rootfs {
            std::fs::create_dir_all(&rootfs)
                .io_context(|| format!("create {}", rootfs.display()))?;
            containerd_shim::mount::mount_rootfs(
                Some(m.type_.as_str()).filter(|t| !t.is_empty()),
                Some(m.source.as_str()).filter(|s| !s.is_empty()),
                &m.options,
                &rootfs,
            )?;
        }
        let resolved = match resolve(&req.id, &spec, &rootfs, self.store).await {
            Ok(r) => r,
            Err(e) => {
                unmount(&rootfs);
                report_to_container(&stdio, &e);
                return Err(e);
            }
        };
        let result = match resolved {
            Resolved::Native { path } => {
                tracing::info!(id = %req.id, entrypoint = %path.display(), "native container");
                self.native(req, &spec, bundle.clone(), stdio.clone(), rootfs.clone())
                    .await
            }
            Resolved::Wasm(src) => {
                // The guest never sees the rootfs; nothing stays mounted for it.
                unmount(&rootfs);
                self.wasm(req, &spec, bundle.clone(), stdio.clone(), src)
                    .await
            }
        };
        if let Err(e) = &result {
            report_to_container(&stdio, e);
        }
        result
    }

    async fn native(
        &self,
        req: &CreateTaskRequest,
        spec: &Spec,
        bundle: std::path::PathBuf,
        stdio: StdioPaths,
        rootfs: std::path::PathBuf,
    ) -> Result<Arc<Container>> {
        let created = match self.direct_pause(req, spec, &rootfs) {
            Some(plan) => Pause::spawn(
                &plan,
                spec,
                &rootfs,
                open_output(&stdio.stdout)?,
                open_output(&stdio.stderr)?,
            )
            .map(|(pause, pid)| (Launcher::Direct(pause), pid)),
            None => {
                let root = crate::runc::state_root(self.containerd_address, self.namespace);
                let runc = Runc::new(root, &req.id, &bundle, self.systemd_cgroup);
                runc.create(
                    open_input(&stdio.stdin)?,
                    open_output(&stdio.stdout)?,
                    open_output(&stdio.stderr)?,
                )
                .await
                .map(|pid| (Launcher::Runc(runc), pid))
            }
        };
        let (launcher, pid) = match created {
            Ok(c) => c,
            Err(e) => {
                unmount(&rootfs);
                return Err(e);
            }
        };
        Ok(Container::new(
            req.id.clone(),
            bundle,
            stdio,
            pid,
            Kind::Native(NativeRun { launcher, rootfs }),
        ))
    }

    /// The plan for starting this container as the pod's pause without runc, when it is a
    /// sandbox the shim can start faithfully and the runtime's options allow it.
    fn direct_pause(
        &self,
        req: &CreateTaskRequest,
        spec: &Spec,
        rootfs: &Path,
    ) -> Option<PausePlan> {
        if self.pause_with_runc {
            return None;
        }
        match PausePlan::for_sandbox(spec, rootfs) {
            Ok(plan) => {
                tracing::info!(id = %req.id, "pod sandbox: the shim starts its pause itself");
                Some(plan)
            }
            Err(why) => {
                tracing::debug!(id = %req.id, why, "native container goes to runc");
                None
            }
        }
    }

    async fn wasm(
        &self,
        req: &CreateTaskRequest,
        spec: &Spec,
        bundle: std::path::PathBuf,
        stdio: StdioPaths,
        src: WasmSource,
    ) -> Result<Arc<Container>> {
        let id = req.id.clone();
        if req.terminal {
            return Err(Error::InvalidArgument(format!(
                "container {id}: Wasm guests have no terminal; run without -t/tty"
            )));
        }
        // Settings first: a bad one fails Create before anything is compiled or set up.
        let (settings, mut config) = guest_inputs(spec).map_err(runtime_error(&id, "settings"))?;
        let WasmSource {
            bytes,
            digest,
            origin,
            world,
            ..
        } = src;
        let world = world.map(|w| match w {
            WorldHint::Command => World::Command,
            WorldHint::Http => World::Http,
        });
        let wasm = Wasm {
            bytes,
            digest: digest.clone(),
            world,
        };
        let engine = self.engine.clone();
        let (compiled, outcome) = tokio::task::spawn_blocking(move || engine.compile(&wasm))
            .await
            .map_err(|e| Error::Wasm {
                id: id.clone(),
                detail: format!("compile task failed: {e}"),
            })?
            .map_err(runtime_error(&id, &origin))?;
        let kind = compiled.kind();
        let program = Program::prepare(&self.engine.engine, compiled, world, &config.grants)
            .map_err(runtime_error(&id, &origin))?;
        tracing::info!(%id, %digest, %origin, kind, world = program.kind(), cache = ?outcome, "Wasm guest ready");

        let netns = NetNs::from_spec(spec)?;
        config.stdout = open_output(&stdio.stdout)?;
        config.stderr = open_output(&stdio.stderr)?;
        config.network = matches!(netns, NetNs::Joined(_));
        let guest = Guest::new(config).map_err(runtime_error(&id, "guest"))?;
        let cgroup = ThreadCgroup::create(spec, &id, self.shim_cgroup)
            .io_context(|| format!("set up the CPU cgroup of container {id}"))?;
        let setup = Arc::new(ThreadSetup::default());
        let http_addr = matches!(program, Program::Http(_)).then(|| settings.http_addr());
        let workers = if matches!(program, Program::Http(_)) {
            2
        } else {
            1
        };
        let runtime = {
            let (netns, cgroup, setup) = (netns.clone(), cgroup.clone(), setup.clone());
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .max_blocking_threads(4)
                .thread_name(format!("wasm-{}", &id[..id.len().min(12)]))
                .enable_all()
                .on_thread_start(move || {
                    if let Err(e) = netns.enter_current_thread() {
                        tracing::error!(error = %e, "guest thread could not join the pod network namespace");
                        setup.failed.store(true, Ordering::SeqCst);
                    }
                    if let Err(e) = cgroup.enter_current_thread() {
                        tracing::warn!(error = %e, "guest thread could not join the container cgroup");
                    }
                })
                .build()
                .io_context(|| format!("start the runtime of container {id}"))?
        };
        let bound = match http_addr {
            Some(addr) => bind_listeners(&runtime, addr, settings.activity_addr(), &id)
                .await
                .map(Some),
            None => Ok(None),
        };
        let listeners = match bound {
            Ok(l) => l,
            Err(e) => {
                runtime.shutdown_background();
                return Err(e);
            }
        };
        if setup.failed.load(Ordering::SeqCst) {
            runtime.shutdown_background();
            return Err(Error::FailedPrecondition(format!(
                "container {id}: could not enter the pod network namespace; refusing to run the guest on the node's network"
            )));
        }
        let pid = std::process::id();
        let run = WasmRun::new(
            self.engine.clone(),
            program,
            guest,
            settings,
            cgroup,
            runtime,
            listeners,
        );
        Ok(Container::new(
            id,
            bundle,
            stdio,
            pid,
            Kind::Wasm(Box::new(run)),
        ))
    }
}

/// The HTTP guest's listener and, for an app that may scale to zero, its activity listener.
async fn bind_listeners(
    runtime: &tokio::runtime::Runtime,
    http: std::net::SocketAddr,
    activity: Option<std::net::SocketAddr>,
    id: &str,
) -> Result<Listeners> {
    let http_listener = bind_in_pod(runtime, http, id).await?;
    tracing::info!(%id, addr = %http, "HTTP guest listening");
    let activity = match activity {
        Some(addr) => Some(bind_in_pod(runtime, addr, id).await?),
        None => None,
    };
    Ok(Listeners {
        http: http_listener,
        activity,
    })
}

/// Binds `addr` on a thread of the guest's runtime, so the socket belongs to the pod's network
/// namespace (a task of the runtime a caller must shut down if this fails).
async fn bind_in_pod(
    runtime: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    id: &str,
) -> Result<tokio::net::TcpListener> {
    let failure = match runtime
        .spawn(async move { tokio::net::TcpListener::bind(addr).await })
        .await
    {
        Ok(Ok(l)) => return Ok(l),
        Ok(Err(source)) => Error::Io {
            context: format!("container {id}: listen on {addr}"),
            source,
        },
        Err(e) => Error::Wasm {
            id: id.to_string(),
            detail: format!("bind task failed: {e}"),
        },
    };
    Err(failure)
}

/// Wraps an error of the runtime with the container and what the runtime was given.
fn runtime_error(id: &str, what: &str) -> impl FnOnce(wasmpod_runtime::Error) -> Error + use<> {
    let (id, what) = (id.to_string(), what.to_string());
    move |source| Error::Runtime { id, what, source }
}

/// Puts a failed create's reason into the container's log, where `kubectl logs` and
/// `ctr` users look first.
fn report_to_container(stdio: &StdioPaths, e: &Error) {
    if let Ok(Some(mut f)) = open_output(&stdio.stderr) {
        let _ = std::io::Write::write_all(&mut f, format!("wasmpod: {e}\n").as_bytes());
    }
}
