//! What the hosts of an app report about its traffic, and what the operator reads to scale it
//! to and from zero (`spec.scaleToZero` of a WasmApp).
//!
//! Two producers, one consumer:
//! - a pod's HTTP guest, when its container has [`crate::names::ACTIVITY_PORT_SETTING`], answers
//!   `GET` [`ACTIVITY_PATH`] on that port with an [`Activity`];
//! - the activator answers `GET` [`ACTIVATOR_APPS_PATH`] on its admin port with an
//!   [`ActivatorReport`] naming every app it is ready to serve;
//! - the operator polls both, and an app idle for its `idleSeconds` goes to zero.
//!
//! Counters only grow while the process lives. A new process (a restarted pod or activator) has
//! a new `instance`, so a reader never takes a reset for a decrease.

use serde::{Deserialize, Serialize};

/// Where a pod's guest reports its [`Activity`].
pub const ACTIVITY_PATH: &str = "/activity";
/// Where the activator reports its [`ActivatorReport`].
pub const ACTIVATOR_APPS_PATH: &str = "/apps";

/// The traffic one host has seen for one app since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// Names this process: a new one means the counters started again.
    pub instance: String,
    /// Requests answered or under way since the process started.
    pub requests: u64,
    /// Requests under way now (including those waiting for a slot).
    pub in_flight: u64,
}

/// Whether the activator can serve an app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivatorAppState {
    /// Pulling or compiling the component.
    Preparing,
    /// Compiled and listening on its port: requests there are answered.
    Ready,
    /// It cannot serve the app; `error` says why (bad image, bad capability binding).
    Failed,
}

/// One app as the activator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivatorApp {
    pub namespace: String,
    pub name: String,
    /// The port the activator serves it on (the WasmApp's `status.scaleToZero.activatorPort`).
    pub port: u16,
    /// The manifest digest of the component it prepared (`status.imageDigest` when it read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub state: ActivatorAppState,
    /// Why it is `Failed`, naming the image, the field or the variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Requests for the app (its counters, as in [`Activity`]; the report's `instance` applies).
    pub requests: u64,
    pub in_flight: u64,
}

/// The activator's answer at [`ACTIVATOR_APPS_PATH`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivatorReport {
    pub instance: String,
    pub apps: Vec<ActivatorApp>,
}

impl ActivatorReport {
    /// The app `namespace/name`, if the activator knows it.
    pub fn app(&self, namespace: &str, name: &str) -> Option<&ActivatorApp> {
        self.apps
            .iter()
            .find(|a| a.namespace == namespace && a.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_in_camel_case() {
        let report = ActivatorReport {
            instance: "a1".into(),
            apps: vec![ActivatorApp {
                namespace: "apps".into(),
                name: "hello".into(),
                port: 20001,
                digest: Some("sha256:ab".into()),
                state: ActivatorAppState::Ready,
                error: None,
                requests: 3,
                in_flight: 1,
            }],
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["apps"][0]["inFlight"], 1);
        assert_eq!(json["apps"][0]["state"], "Ready");
        let back: ActivatorReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
        assert!(back.app("apps", "hello").is_some());
        assert!(back.app("other", "hello").is_none());
    }
}
