//! Scale to zero, the operator's side: an app with `spec.scaleToZero` that sees no request for
//! `idleSeconds` hands its Service to the activator (`wasmpod-activator`) and goes to zero
//! replicas; the first request brings its pods back.
//!
//! [`port`] gives each app its port on the activator, [`tracker`] keeps what the [`poller`]
//! learns of each app's traffic and of the activator, [`decide`] is the state machine (pure),
//! and [`plan`] gathers the facts for one reconcile.

pub mod decide;
mod http;
pub mod plan;
pub mod poller;
pub mod port;
pub mod tracker;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::Store;
use wasmpod_oci::names::{ACTIVATOR_ADMIN_PORT, ACTIVITY_PORT};

use crate::crd::WasmApp;
use tracker::Tracker;

/// Name of the activator's Service (the chart's).
pub const DEFAULT_ACTIVATOR_SERVICE: &str = "wasmpod-activator";

/// Where the activator is and how often to ask it and the pods about traffic.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace of the activator's Service.
    pub activator_namespace: String,
    /// Name of the activator's Service; its EndpointSlices list the activator's pods.
    pub activator_service: String,
    /// The activator's admin port (`GET /apps`).
    pub activator_admin_port: u16,
    /// The port pods report their traffic on (`GET /activity`).
    pub activity_port: u16,
    /// Time between two polls.
    pub poll_interval: Duration,
    /// Time one poll of one endpoint may take.
    pub poll_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            activator_namespace: "default".into(),
            activator_service: DEFAULT_ACTIVATOR_SERVICE.into(),
            activator_admin_port: ACTIVATOR_ADMIN_PORT,
            activity_port: ACTIVITY_PORT,
            poll_interval: Duration::from_secs(1),
            poll_timeout: Duration::from_secs(2),
        }
    }
}

impl Settings {
    /// `namespace/name` of the activator's Service, for messages.
    pub fn service_ref(&self) -> String {
        format!("{}/{}", self.activator_namespace, self.activator_service)
    }
}

/// Scale-to-zero state shared by the reconciles and the poller.
pub struct Shared {
    tracker: Mutex<Tracker>,
    apps: OnceLock<Store<WasmApp>>,
    /// Ports handed out by reconciles whose status write the app store may not show yet, so two
    /// reconciles running at once never hand out the same port.
    claimed: Mutex<BTreeMap<String, u16>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            tracker: Mutex::new(Tracker::new(Timestamp::now())),
            apps: OnceLock::new(),
            claimed: Mutex::default(),
        }
    }
}

impl Shared {
    /// The traffic tracker.
    pub fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives the controller's WasmApp store to port allocation.
    pub fn set_apps(&self, store: Store<WasmApp>) {
        // A second controller run in the same process keeps the first store; both see the same.
        let _ = self.apps.set(store);
    }

    /// The WasmApp store, once the controller runs.
    pub fn apps(&self) -> Option<&Store<WasmApp>> {
        self.apps.get()
    }

    /// The activator port of `key` (`namespace/name`), holding `current`: see [`port::allocate`].
    pub fn port_for(&self, key: &str, current: Option<u16>) -> Option<u16> {
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        let mut held: BTreeMap<String, u16> = self
            .apps()
            .map(|s| s.state())
            .unwrap_or_default()
            .iter()
            .filter_map(|app| {
                let port = app
                    .status
                    .as_ref()?
                    .scale_to_zero
                    .as_ref()?
                    .activator_port?;
                let key = format!(
                    "{}/{}",
                    app.metadata.namespace.as_deref()?,
                    app.metadata.name.as_deref()?
                );
                Some((key, u16::try_from(port).ok()?))
            })
            .collect();
        held.extend(claimed.iter().map(|(k, p)| (k.clone(), *p)));
        let current = current.or_else(|| claimed.get(key).copied());
        let port = port::allocate(key, current, &held)?;
        claimed.insert(key.to_string(), port);
        Some(port)
    }

    /// Forgets the port claim of `key` (its app left scale to zero or is gone).
    pub fn release_port(&self, key: &str) {
        self.claimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Keeps only the claims of apps in `keys`.
    pub fn retain_ports(&self, keep: impl Fn(&str) -> bool) {
        self.claimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| keep(k));
    }
}
