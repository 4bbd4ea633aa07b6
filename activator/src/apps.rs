//! The apps the activator serves: one slot per WasmApp that may scale to zero, with its port,
//! its prepared server (swapped when the app changes, under a listener kept open), and its
//! counters, which live as long as the process so the operator's reading never goes back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use kube::ResourceExt;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use wasmpod_oci::activity::{ActivatorApp, ActivatorAppState, ActivatorReport};
use wasmpod_operator::crd::WasmApp;
use wasmpod_operator::image::ImageFacts;
use wasmpod_runtime::{HttpServer, Traffic};

use crate::prepare::{Host, prepare};

/// `namespace/name`.
pub type Key = (String, String);

/// What an app asks of the activator, from its WasmApp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Want {
    pub port: u16,
    /// Changes whenever anything the app is served from changes.
    pub fingerprint: String,
}

impl Want {
    /// `None` unless the app opted in and the operator gave it a port and resolved its image.
    pub fn of(app: &WasmApp) -> Option<Self> {
        if app.metadata.deletion_timestamp.is_some() || app.spec.scale_to_zero.is_none() {
            return None;
        }
        let status = app.status.as_ref()?;
        let port = status.scale_to_zero.as_ref()?.activator_port?;
        let facts = ImageFacts::from_status(status)?;
        let spec = serde_json::to_vec(&app.spec).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(&spec);
        h.update(facts.pinned().as_bytes());
        h.update(port.to_be_bytes());
        Some(Self {
            port: u16::try_from(port).ok()?,
            fingerprint: hex::encode(h.finalize()),
        })
    }
}

type Current = Arc<RwLock<Option<Arc<HttpServer>>>>;

struct Slot {
    want: Want,
    state: ActivatorAppState,
    error: Option<String>,
    digest: Option<String>,
    traffic: Arc<Traffic>,
    current: Current,
    /// The accept loop and the port it listens on.
    listening: Option<(u16, JoinHandle<()>)>,
    preparing: Option<JoinHandle<()>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((_, task)) = &self.listening {
            task.abort();
        }
        if let Some(task) = &self.preparing {
            task.abort();
        }
    }
}

/// Every app the activator knows.
pub struct Apps {
    host: Arc<Host>,
    instance: String,
    slots: Mutex<HashMap<Key, Slot>>,
}

impl Apps {
    pub fn new(host: Arc<Host>) -> Arc<Self> {
        Arc::new(Self {
            host,
            instance: wasmpod_runtime::traffic::instance_id(),
            slots: Mutex::default(),
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Follows a WasmApp as it now is: prepares it when new or changed, or when `retry` and
    /// its last preparation failed; forgets it when it no longer wants the activator.
    pub fn update(self: &Arc<Self>, app: &WasmApp, retry: bool) {
        let key = (app.namespace().unwrap_or_default(), app.name_any());
        let Some(want) = Want::of(app) else {
            if self.slots().remove(&key).is_some() {
                tracing::info!(app = %format!("{}/{}", key.0, key.1), "no longer served");
            }
            return;
        };
        let mut slots = self.slots();
        let slot = slots.entry(key.clone()).or_insert_with(|| Slot {
            want: want.clone(),
            state: ActivatorAppState::Preparing,
            error: None,
            digest: None,
            traffic: Arc::default(),
            current: Arc::default(),
            listening: None,
            preparing: None,
        });
        let unchanged = slot.want == want && slot.preparing.is_some();
        let failed = slot.state == ActivatorAppState::Failed;
        if unchanged && !(retry && failed) {
            return;
        }
        slot.want = want.clone();
        if let Some(task) = slot.preparing.take() {
            task.abort();
        }
        if slot
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
        {
            slot.state = ActivatorAppState::Preparing;
        }
        let (me, app) = (self.clone(), app.clone());
        let traffic = slot.traffic.clone();
        slot.preparing = Some(tokio::spawn(async move {
            let outcome = prepare(&me.host, &app, traffic).await;
            me.prepared(&key, &want, outcome).await;
        }));
    }

    /// Records a preparation's outcome; a ready server starts answering on the app's port.
    async fn prepared(
        self: &Arc<Self>,
        key: &Key,
        want: &Want,
        outcome: crate::error::Result<crate::prepare::Prepared>,
    ) {
        let name = format!("{}/{}", key.0, key.1);
        let prepared = match outcome {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(app = %name, error = %e, "cannot serve the app");
                if let Some(slot) = self.slots().get_mut(key).filter(|s| s.want == *want) {
                    slot.state = ActivatorAppState::Failed;
                    slot.error = Some(e.to_string());
                }
                return;
            }
        };
        let needs_listener = {
            let slots = self.slots();
            let Some(slot) = slots.get(key).filter(|s| s.want == *want) else {
                return;
            };
            slot.listening
                .as_ref()
                .is_none_or(|(port, _)| *port != want.port)
        };
        let listener = if needs_listener {
            match TcpListener::bind(("0.0.0.0", want.port)).await {
                Ok(l) => Some(l),
                Err(e) => {
                    let error = format!("cannot listen on port {}: {e}", want.port);
                    tracing::warn!(app = %name, %error, "cannot serve the app");
                    if let Some(slot) = self.slots().get_mut(key).filter(|s| s.want == *want) {
                        slot.state = ActivatorAppState::Failed;
                        slot.error = Some(error);
                    }
                    return;
                }
            }
        } else {
            None
        };
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(key).filter(|s| s.want == *want) else {
            return;
        };
        *slot.current.write().unwrap_or_else(PoisonError::into_inner) = Some(prepared.server);
        if let Some(listener) = listener {
            if let Some((_, old)) = slot.listening.take() {
                old.abort();
            }
            let task = tokio::spawn(accept(listener, slot.current.clone()));
            slot.listening = Some((want.port, task));
        }
        slot.state = ActivatorAppState::Ready;
        slot.error = None;
        slot.digest = Some(prepared.digest);
        tracing::info!(app = %name, port = want.port, "serving");
    }

    /// Whether every app has been through its first preparation (served, or failed with a
    /// reason): a new activator pod is ready only then, so the operator never points a Service
    /// at a pod that would refuse its connections.
    pub fn settled(&self) -> bool {
        self.slots()
            .values()
            .all(|s| s.state != ActivatorAppState::Preparing)
    }

    /// Forgets apps that are gone from the cluster.
    pub fn retain(&self, live: &[Key]) {
        self.slots().retain(|k, _| live.contains(k));
    }

    /// The report the operator reads.
    pub fn report(&self) -> ActivatorReport {
        let mut apps: Vec<ActivatorApp> = self
            .slots()
            .iter()
            .map(|((ns, name), s)| ActivatorApp {
                namespace: ns.clone(),
                name: name.clone(),
                port: s.want.port,
                digest: s.digest.clone(),
                state: s.state,
                error: s.error.clone(),
                requests: s.traffic.requests(),
                in_flight: s.traffic.in_flight(),
            })
            .collect();
        apps.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        ActivatorReport {
            instance: self.instance.clone(),
            apps,
        }
    }
}

/// Accepts connections for one app and hands each to its current server. A connection keeps
/// the server it started with; a new image serves new connections.
async fn accept(listener: TcpListener, current: Current) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let server = current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(server) = server {
            tokio::spawn(server.serve_stream(stream));
        }
    }
}
