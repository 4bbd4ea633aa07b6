//! The shim binary's entry: `-v`, `-info`, and the `start`, `delete` and serve actions that
//! containerd runs it with.
//!
//! Process model: `start` (run by containerd once per container) spawns one long-lived
//! server per pod, keyed by the `io.kubernetes.cri.sandbox-id` annotation, and prints its
//! socket address. That server runs every Wasm container of the pod in-process and hands
//! native containers (the pause container, sidecars) to runc. The server answers the task
//! API under both `containerd.task.v2.Task` (containerd 1.7) and `v3` (2.x); `start` replies
//! with a bare address, i.e. version 2, which every containerd we support accepts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim::{ExitSignal, Flags, StartOpts};
use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim_async::create_task;
use containerd_shim_protos::ttrpc::r#async::Server;
use containerd_shim_protos::ttrpc::r#async::transport::Listener;
use containerd_shim_protos::types::introspection::{RuntimeInfo, RuntimeVersion};
use wasmpod_oci::names::{RUNTIME_TYPE, SHIM_BINARY};
use wasmpod_runtime::WasmEngine;

use crate::cgroup::{CgroupsPath, ShimCgroup};
use crate::error::{Error, IoContext, Result};
use crate::events::Events;
use crate::service::Service;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";
const TASK_V3: &str = "containerd.task.v3.Task";
const TASK_V2: &str = "containerd.task.v2.Task";
/// Where compiled code is cached on the node (override: `WASMPOD_CACHE_DIR` in containerd's
/// environment).
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/wasmpod/cache";

/// Runs the shim; returns the process exit code.
pub fn main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .iter()
        .skip(1)
        .any(|a| a == "-v" || a == "--version" || a == "-version")
    {
        println!("{SHIM_BINARY} {VERSION} ({RUNTIME_TYPE}, wasmtime 48)");
        return 0;
    }
    let flags = match containerd_shim::parse(&args[1..]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{SHIM_BINARY}: {e}");
            return 2;
        }
    };
    if flags.info {
        return report(write_info());
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{SHIM_BINARY}: start runtime: {e}");
            return 1;
        }
    };
    let result = rt.block_on(async {
        match flags.action.as_str() {
            "start" => start(&flags).await,
            "delete" => delete(&flags).await,
            "" => serve(&flags).await,
            other => Err(Error::InvalidArgument(format!("unknown action {other:?}"))),
        }
    });
    rt.shutdown_background();
    report(result)
}

fn report(r: Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{SHIM_BINARY}: {e}");
            1
        }
    }
}

fn write_info() -> Result<()> {
    let mut version = RuntimeVersion::new();
    version.version = VERSION.into();
    version.revision = option_env!("WASMPOD_REVISION").unwrap_or("").into();
    let mut info = RuntimeInfo::new();
    info.name = RUNTIME_TYPE.into();
    info.version = Some(version).into();
    let bytes = info
        .write_to_bytes()
        .map_err(|e| Error::InvalidArgument(format!("encode runtime info: {e}")))?;
    std::io::stdout()
        .write_all(&bytes)
        .io_context(|| "write runtime info".into())
}

/// `start`: make sure the pod's server runs, and print its address.
async fn start(flags: &Flags) -> Result<()> {
    let grouping = grouping_id(Path::new("config.json")).unwrap_or_else(|| flags.id.clone());
    let opts = StartOpts {
        id: flags.id.clone(),
        publish_binary: flags.publish_binary.clone(),
        address: flags.address.clone(),
        ttrpc_address: std::env::var("TTRPC_ADDRESS").unwrap_or_default(),
        namespace: flags.namespace.clone(),
        debug: flags.debug,
        ..Default::default()
    };
    let running = opts.socket_address(&grouping);
    // Every container after a pod's first: its server answers already, so start nothing
    // (the shim crate's spawn would start a second server, only to see it fail to bind).
    let address = if served(&running) {
        running
    } else {
        containerd_shim::spawn(opts, &grouping, Vec::new()).await?
    };
    // containerd 1.7 reconnects after a restart through this file.
    std::fs::write("address", &address).io_context(|| "write address file".into())?;
    print!("{address}");
    std::io::stdout()
        .flush()
        .io_context(|| "flush stdout".into())
}

/// Whether a server answers on this `unix://` address.
fn served(address: &str) -> bool {
    let path = address.strip_prefix("unix://").unwrap_or(address);
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// The pod a container belongs to, from its OCI spec annotations.
fn grouping_id(config: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config).ok()?;
    let spec: serde_json::Value = serde_json::from_str(&text).ok()?;
    spec["annotations"][SANDBOX_ID_ANNOTATION]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// `delete`: clean up after a container whose server is gone.
async fn delete(flags: &Flags) -> Result<()> {
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir().io_context(|| "current dir".into())?
    } else {
        PathBuf::from(&flags.bundle)
    };
    let root = crate::runc::state_root(&flags.address, &flags.namespace);
    if root.join(&flags.id).exists() {
        let runc = crate::runc::Runc::new(root, &flags.id, &bundle, false);
        if let Err(e) = runc.delete().await {
            eprintln!("cleanup of {}: {e}", flags.id);
        }
    }
    crate::container::unmount(&bundle.join("rootfs"));
    let resp = DeleteResponse {
        exit_status: 128 + 9,
        exited_at: Some(crate::events::now()).into(),
        ..Default::default()
    };
    let bytes = resp
        .write_to_bytes()
        .map_err(|e| Error::InvalidArgument(format!("encode delete response: {e}")))?;
    std::io::stdout()
        .write_all(&bytes)
        .io_context(|| "write delete response".into())
}

/// The pod's server.
async fn serve(flags: &Flags) -> Result<()> {
    crate::runc::set_subreaper().io_context(|| "become child subreaper".into())?;
    crate::logging::init(flags.debug);
    // The socket before anything else: a second server of the pod (two starts at once)
    // fails here, before it joins the pod's cgroup or builds an engine.
    let socket = flags
        .socket
        .strip_prefix("unix://")
        .unwrap_or(&flags.socket)
        .to_string();
    let listener = bind(&socket).inspect_err(|e| {
        tracing::warn!(socket, error = %e, "a second server for the pod gives way");
    })?;
    // Then, before the engine allocates anything: memory is charged to the cgroup that
    // faulted it in and never moves with the process.
    let shim_cgroup = join_pod_cgroup(Path::new("config.json"), &flags.id);
    let cache_dir = std::env::var("WASMPOD_CACHE_DIR").unwrap_or_else(|_| DEFAULT_CACHE_DIR.into());
    let engine = WasmEngine::new(Path::new(&cache_dir))
        .map_err(|e| Error::FailedPrecondition(format!("start the Wasm engine: {e}")))?;
    let ttrpc_address = std::env::var("TTRPC_ADDRESS")
        .map_err(|_| Error::InvalidArgument("TTRPC_ADDRESS is not set".into()))?;
    let publisher = RemotePublisher::new(&ttrpc_address).await?;
    let exit = Arc::new(ExitSignal::default());
    let service = Arc::new(Service::new(
        flags.namespace.clone(),
        flags.address.clone(),
        engine,
        Events::new(publisher, flags.namespace.clone()),
        exit.clone(),
        shim_cgroup.clone(),
    ));
    let mut services = create_task(service.clone());
    if let Some(v2) = create_task(service).remove(TASK_V3) {
        services.insert(TASK_V2.to_string(), v2);
    }
    let listener = Listener::try_from(listener).io_context(|| format!("listen on {socket}"))?;
    let mut server = Server::new()
        .add_listener(listener)
        .register_service(services);
    server
        .start()
        .await
        .map_err(|e| Error::InvalidArgument(format!("start ttrpc server: {e}")))?;
    // Our stdout is the pipe `start` waits on: closing it says we are ready.
    // SAFETY: dup2 on the process's own standard descriptors.
    unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) };
    tracing::info!(socket, pid = std::process::id(), "shim serving");
    exit.wait().await;
    let _ = server.shutdown().await;
    let _ = std::fs::remove_file(&socket);
    if let Some(cg) = shim_cgroup {
        cg.leave();
    }
    Ok(())
}

/// Moves the shim into its leaf under the pod's cgroup, read from the first container's
/// spec (the sandbox's, in Kubernetes). Without one, or when the kernel refuses, the shim
/// stays where containerd started it and says so.
fn join_pod_cgroup(config: &Path, id: &str) -> Option<Arc<ShimCgroup>> {
    let text = std::fs::read_to_string(config).ok()?;
    let spec: serde_json::Value = serde_json::from_str(&text).ok()?;
    let path = spec["linux"]["cgroupsPath"]
        .as_str()
        .filter(|p| !p.is_empty())?;
    let group = grouping_id(config).unwrap_or_else(|| id.to_string());
    match ShimCgroup::join(&CgroupsPath::parse(path), &group) {
        Ok(cg) => {
            tracing::info!(leaf = %cg.leaf().display(), version = ?cg.version(), "shim charged to its pod's cgroup");
            Some(Arc::new(cg))
        }
        Err(e) => {
            tracing::warn!(cgroups_path = path, error = %e, "could not join the pod's cgroup; the shim's memory and CPU are charged outside the pod");
            None
        }
    }
}

fn bind(socket: &str) -> Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = Path::new(socket).parent() {
        std::fs::create_dir_all(dir).io_context(|| format!("create {}", dir.display()))?;
    }
    match std::os::unix::net::UnixListener::bind(socket) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            // A socket file from a dead server: nobody answers on it, so replace it.
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Err(Error::FailedPrecondition(format!(
                    "{socket} is served by another shim"
                )));
            }
            std::fs::remove_file(socket).io_context(|| format!("remove stale {socket}"))?;
            std::os::unix::net::UnixListener::bind(socket).io_context(|| format!("bind {socket}"))
        }
        other => other.io_context(|| format!("bind {socket}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_of_a_pod_share_a_grouping_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("config.json");
        std::fs::write(
            &cfg,
            r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#,
        )
        .expect("write");
        assert_eq!(grouping_id(&cfg).as_deref(), Some("pod1"));
        std::fs::write(&cfg, r#"{"annotations":{}}"#).expect("write");
        assert_eq!(grouping_id(&cfg), None);
    }
}
