//! `spec.scaleToZero` and `status.scaleToZero`: an app that goes to zero replicas when idle,
//! while the activator (`wasmpod-activator`) answers its Service, and comes back on the first
//! request.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Default idle time before an app goes to zero.
pub const DEFAULT_IDLE_SECONDS: i32 = 300;

/// Opting in to scale to zero.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleToZero {
    /// Seconds without a request before the app's Deployment goes to 0 replicas. While it is
    /// at zero the activator answers its Service, and the first request brings the pods back.
    #[serde(default = "default_idle_seconds")]
    #[schemars(range(min = 5, max = 86400))]
    pub idle_seconds: i32,
}

impl Default for ScaleToZero {
    fn default() -> Self {
        Self {
            idle_seconds: DEFAULT_IDLE_SECONDS,
        }
    }
}

fn default_idle_seconds() -> i32 {
    DEFAULT_IDLE_SECONDS
}

/// Where the app is between its pods and the activator.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum ScalePhase {
    /// Its pods serve its Service.
    #[default]
    Serving,
    /// Idle: the activator is taking over the Service before the pods go.
    ScalingDown,
    /// No pods; the activator answers the Service.
    AtZero,
    /// A request came while at zero: pods are starting, the activator answers until one is
    /// ready.
    ScalingUp,
}

/// What the operator observed of an app that may scale to zero.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleToZeroStatus {
    /// The activator's port for this app (from 20000-29999, one per app in the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activator_port: Option<i32>,
    /// `Serving`, `ScalingDown`, `AtZero` or `ScalingUp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ScalePhase>,
    /// When the operator last saw a request for the app (at its pods or the activator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request_time: Option<Time>,
}
