//! Task lifecycle events sent to containerd (create, start, exit, delete, OOM).

use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim_protos::events::task::{TaskCreate, TaskDelete, TaskExit, TaskOOM, TaskStart};
use containerd_shim_protos::protobuf::MessageDyn;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::topics::{
    TASK_CREATE_EVENT_TOPIC, TASK_DELETE_EVENT_TOPIC, TASK_EXIT_EVENT_TOPIC, TASK_OOM_EVENT_TOPIC,
    TASK_START_EVENT_TOPIC,
};
use containerd_shim_protos::ttrpc::context;

/// Publishes events for one containerd namespace. Publishing is queued and retried by the
/// publisher; a failure is logged, never returned, because no RPC should fail for it.
pub struct Events {
    publisher: RemotePublisher,
    namespace: String,
}

impl Events {
    pub fn new(publisher: RemotePublisher, namespace: String) -> Self {
        Self {
            publisher,
            namespace,
        }
    }

    async fn send(&self, topic: &str, event: Box<dyn MessageDyn>) {
        let ctx = context::with_duration(std::time::Duration::from_secs(5));
        if let Err(e) = self
            .publisher
            .publish(ctx, topic, &self.namespace, event)
            .await
        {
            tracing::warn!(topic, error = %e, "publishing event failed");
        }
    }

    pub async fn create(&self, id: &str, bundle: &str, pid: u32) {
        let ev = TaskCreate {
            container_id: id.into(),
            bundle: bundle.into(),
            pid,
            ..Default::default()
        };
        self.send(TASK_CREATE_EVENT_TOPIC, Box::new(ev)).await;
    }

    pub async fn start(&self, id: &str, pid: u32) {
        let ev = TaskStart {
            container_id: id.into(),
            pid,
            ..Default::default()
        };
        self.send(TASK_START_EVENT_TOPIC, Box::new(ev)).await;
    }

    pub async fn exit(&self, id: &str, pid: u32, exit_status: u32, exited_at: &Timestamp) {
        let ev = TaskExit {
            container_id: id.into(),
            id: id.into(),
            pid,
            exit_status,
            exited_at: Some(exited_at.clone()).into(),
            ..Default::default()
        };
        self.send(TASK_EXIT_EVENT_TOPIC, Box::new(ev)).await;
    }

    pub async fn delete(&self, id: &str, pid: u32, exit_status: u32, exited_at: &Timestamp) {
        let ev = TaskDelete {
            container_id: id.into(),
            id: id.into(),
            pid,
            exit_status,
            exited_at: Some(exited_at.clone()).into(),
            ..Default::default()
        };
        self.send(TASK_DELETE_EVENT_TOPIC, Box::new(ev)).await;
    }

    pub async fn oom(&self, id: &str) {
        let ev = TaskOOM {
            container_id: id.into(),
            ..Default::default()
        };
        self.send(TASK_OOM_EVENT_TOPIC, Box::new(ev)).await;
    }
}

pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = d.as_secs() as i64;
    ts.nanos = d.subsec_nanos() as i32;
    ts
}
