//! The task service: containerd's RPCs for every container of this pod.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim::{ExitSignal, TtrpcContext};
use containerd_shim_protos::api::{
    CheckpointTaskRequest, CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest,
    CreateTaskResponse, DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest,
    PauseRequest, PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest,
    StartRequest, StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse,
    Status as ApiStatus, UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim_protos::shim_async::Task;
use containerd_shim_protos::ttrpc;
use containerd_shim_protos::types::task::ProcessInfo;
use tokio::sync::{Mutex, OnceCell};
use wasmpod_runtime::WasmEngine;

use crate::cgroup::ShimCgroup;
use crate::container::{Container, Status};
use crate::content::ContentStore;
use crate::error::Error;
use crate::events::Events;
use crate::prepare::Prepare;
use crate::stats;

type TtrpcResult<T> = ttrpc::Result<T>;

pub struct Service {
    namespace: String,
    grpc_address: String,
    engine: Arc<WasmEngine>,
    events: Arc<Events>,
    store: OnceCell<Option<ContentStore>>,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    exit: Arc<ExitSignal>,
    shim_cgroup: Option<Arc<ShimCgroup>>,
}

impl Service {
    pub fn new(
        namespace: String,
        grpc_address: String,
        engine: Arc<WasmEngine>,
        events: Events,
        exit: Arc<ExitSignal>,
        shim_cgroup: Option<Arc<ShimCgroup>>,
    ) -> Self {
        Self {
            namespace,
            grpc_address,
            engine,
            events: Arc::new(events),
            store: OnceCell::new(),
            containers: Mutex::default(),
            exit,
            shim_cgroup,
        }
    }

    /// containerd's API, connected on first use; `None` (logged) when it cannot be reached,
    /// in which case images are read from the rootfs only.
    async fn store(&self) -> Option<&ContentStore> {
        self.store
            .get_or_init(|| async {
                match ContentStore::connect(&self.grpc_address, &self.namespace).await {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!(error = %e, "containerd API unreachable; Wasm layers cannot be read");
                        None
                    }
                }
            })
            .await
            .as_ref()
    }

    async fn get(&self, id: &str) -> Result<Arc<Container>, Error> {
        self.containers
            .lock()
            .await
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(id.to_string()))
    }
}

fn no_exec(exec_id: &str) -> Result<(), Error> {
    if exec_id.is_empty() {
        Ok(())
    } else {
        Err(Error::NotFound(format!("exec process {exec_id}")))
    }
}

fn unimplemented(what: &str) -> ttrpc::Error {
    Error::Unimplemented(format!(
        "{what} is not supported by the wasmpod shim (Wasm guests run in-process; there is no process to {what} into)"
    ))
    .into()
}

#[async_trait]
impl Task for Service {
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> TtrpcResult<CreateTaskResponse> {
        if self.containers.lock().await.contains_key(&req.id) {
            return Err(Error::AlreadyExists(req.id).into());
        }
        let store = self.store().await;
        let prepare = Prepare {
            namespace: &self.namespace,
            containerd_address: &self.grpc_address,
            engine: &self.engine,
            store,
            systemd_cgroup: crate::options::systemd_cgroup(req.options.as_ref()),
            pause_with_runc: crate::options::pause_with_runc(req.options.as_ref()),
            shim_cgroup: self.shim_cgroup.as_deref(),
        };
        let container = match prepare.container(&req).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(id = %req.id, error = %e, "create failed");
                return Err(e.into());
            }
        };
        let pid = container.pid;
        self.containers
            .lock()
            .await
            .insert(req.id.clone(), container);
        self.events.create(&req.id, &req.bundle, pid).await;
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    async fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        no_exec(&req.exec_id)?;
        let c = self.get(&req.id).await?;
        let pid = c.start(self.events.clone()).await?;
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    async fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        no_exec(&req.exec_id)?;
        let c = self.get(&req.id).await?;
        let mut resp = StateResponse {
            id: c.id.clone(),
            bundle: c.bundle.display().to_string(),
            pid: c.pid,
            stdin: c.stdio.stdin.clone(),
            stdout: c.stdio.stdout.clone(),
            stderr: c.stdio.stderr.clone(),
            terminal: c.stdio.terminal,
            ..Default::default()
        };
        resp.status = match c.status() {
            Status::Created => ApiStatus::CREATED,
            Status::Running => ApiStatus::RUNNING,
            Status::Stopped { code, at } => {
                resp.exit_status = code;
                resp.exited_at = Some(at).into();
                ApiStatus::STOPPED
            }
        }
        .into();
        Ok(resp)
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        no_exec(&req.exec_id)?;
        let c = self.get(&req.id).await?;
        c.kill(req.signal, req.all, &self.events).await?;
        Ok(Empty::new())
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        no_exec(&req.exec_id)?;
        let c = self.get(&req.id).await?;
        let (code, at) = c.wait().await;
        Ok(WaitResponse {
            exit_status: code,
            exited_at: Some(at).into(),
            ..Default::default()
        })
    }

    async fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        no_exec(&req.exec_id)?;
        let c = self.get(&req.id).await?;
        let (code, at) = match c.status() {
            Status::Running => {
                return Err(Error::FailedPrecondition(format!(
                    "container {} is running; kill it before deleting it",
                    req.id
                ))
                .into());
            }
            Status::Stopped { code, at } => (code, at),
            Status::Created => (0, crate::events::now()),
        };
        c.release().await;
        self.containers.lock().await.remove(&req.id);
        self.events.delete(&req.id, c.pid, code, &at).await;
        Ok(DeleteResponse {
            pid: c.pid,
            exit_status: code,
            exited_at: Some(at).into(),
            ..Default::default()
        })
    }

    async fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        let c = self.get(&req.id).await?;
        Ok(PidsResponse {
            processes: vec![ProcessInfo {
                pid: c.pid,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    async fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        let c = self.get(&req.id).await?;
        let share = match &self.shim_cgroup {
            Some(cg) if matches!(c.kind, crate::container::Kind::Wasm(_)) => {
                let all: Vec<Arc<Container>> =
                    self.containers.lock().await.values().cloned().collect();
                stats::runtime_share(cg, &all)
            }
            _ => stats::RuntimeShare::default(),
        };
        let stats = stats::collect(&c, share)?;
        Ok(StatsResponse {
            stats: Some(stats).into(),
            ..Default::default()
        })
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: ConnectRequest,
    ) -> TtrpcResult<ConnectResponse> {
        let task_pid = match self.get(&req.id).await {
            Ok(c) => c.pid,
            Err(_) => 0,
        };
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, _req: ShutdownRequest) -> TtrpcResult<Empty> {
        // One shim serves the whole pod: containerd asks after every delete, but we stay
        // while any container remains.
        if self.containers.lock().await.is_empty() {
            tracing::info!("last container gone; shim exiting");
            self.exit.signal();
        }
        Ok(Empty::new())
    }

    async fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        // Guests read no stdin, so closing it is already done.
        self.get(&req.id).await?;
        Ok(Empty::new())
    }

    async fn exec(&self, _ctx: &TtrpcContext, _req: ExecProcessRequest) -> TtrpcResult<Empty> {
        Err(unimplemented("exec"))
    }

    async fn resize_pty(&self, _ctx: &TtrpcContext, _req: ResizePtyRequest) -> TtrpcResult<Empty> {
        Err(unimplemented("resize a terminal"))
    }

    async fn pause(&self, _ctx: &TtrpcContext, _req: PauseRequest) -> TtrpcResult<Empty> {
        Err(unimplemented("pause"))
    }

    async fn resume(&self, _ctx: &TtrpcContext, _req: ResumeRequest) -> TtrpcResult<Empty> {
        Err(unimplemented("resume"))
    }

    async fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: CheckpointTaskRequest,
    ) -> TtrpcResult<Empty> {
        Err(unimplemented("checkpoint"))
    }

    async fn update(&self, _ctx: &TtrpcContext, _req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        Err(unimplemented("update resources of"))
    }
}
