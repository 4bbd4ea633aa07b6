//! `WasmApp.spec`: what the user asks for.
//!
//! Validation lives here, in the schema (ranges, lengths) and in CEL rules whose messages name
//! the field, so the apiserver rejects what users commonly get wrong without a webhook.
//! Upstream Kubernetes types are embedded with their full structure (so the apiserver validates and
//! prunes them) but without their long descriptions, which keeps the CRD well under the 256 KiB
//! limit of client-side `kubectl apply`; see [`super::schema`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvFromSource, EnvVar, LocalObjectReference, ResourceRequirements, Toleration,
    TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::WasmAppStatus;
use super::capabilities::Capabilities;
use super::scale_to_zero::ScaleToZero;
use super::schema::{mounts, named_items, no_descriptions};

/// Default number of replicas.
pub const DEFAULT_REPLICAS: i32 = 1;
/// Default container port the component listens on.
pub const DEFAULT_PORT: i32 = 8080;
/// Default RuntimeClass: the wasmpod containerd shim.
pub const DEFAULT_RUNTIME_CLASS: &str = "wasmpod";

/// A WebAssembly component run as a scaled, health-checked, discoverable service.
///
/// The operator turns it into a Deployment (pods with `runtimeClassName: wasmpod`), a Service for
/// HTTP components, an optional HorizontalPodAutoscaler and PodDisruptionBudget, and reports their
/// state in `status`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "wasmpod.io",
    version = "v1alpha1",
    kind = "WasmApp",
    plural = "wasmapps",
    singular = "wasmapp",
    namespaced,
    status = "WasmAppStatus",
    shortname = "wapp",
    category = "all",
    category = "wasmpod",
    derive = "PartialEq",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.ready",
        description = "Ready replicas over desired replicas"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        description = "Reason of the Ready condition"
    ),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.url",
        description = "In-cluster URL of the app's Service"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Image",
        type_ = "string",
        json_path = ".spec.image",
        priority = 1,
        description = "Image reference"
    ),
    printcolumn(
        name = "Digest",
        type_ = "string",
        json_path = ".status.imageDigest",
        priority = 1,
        description = "Resolved image digest"
    ),
    validation = Rule::new("self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')")
        .message("metadata.name must be a DNS-1035 label of at most 63 characters (lower case letters, digits and '-', starting with a letter): it names the app's Service")
        .reason(Reason::FieldValueInvalid)
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.name))")
        .message("spec.volumeMounts: every mount must name a volume declared in spec.volumes")
        .field_path(".volumeMounts"),
    validation = Rule::new("!has(self.podLabels) || !('wasmpod.io/app' in self.podLabels)")
        .message("spec.podLabels must not set 'wasmpod.io/app': the operator uses it to select the app's pods")
        .field_path(".podLabels"),
    validation = Rule::new("!has(self.capabilities) || !has(self.capabilities.keyValue) || self.capabilities.keyValue.all(b, !has(b.file) || (has(self.volumeMounts) && self.volumeMounts.exists(m, (b.file.path + '/').startsWith(m.mountPath.endsWith('/') ? m.mountPath : m.mountPath + '/'))))")
        .message("spec.capabilities.keyValue: the file.path of a File bucket must be inside one of spec.volumeMounts (the guest sees only its volumes)")
        .field_path(".capabilities.keyValue"),
    validation = Rule::new("!has(self.scaleToZero) || !has(self.volumes) || size(self.volumes) == 0")
        .message("spec.scaleToZero: an app with spec.volumes cannot scale to zero: while it is at zero the activator serves it, and the activator has none of its volumes")
        .field_path(".scaleToZero")
)]
pub struct WasmAppSpec {
    /// OCI reference of the Wasm component: a CNCF Wasm artifact, an image with Wasm layers, or a
    /// `FROM scratch` image holding a `.wasm` file; e.g. `ghcr.io/org/app:v1` or `…@sha256:…`.
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new("!self.contains(' ')").message("spec.image must not contain spaces"))]
    pub image: String,

    /// Secrets (type `kubernetes.io/dockerconfigjson`) used to pull the image, by the kubelet and
    /// by the operator when it inspects the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// Desired number of pods. Ignored while an autoscaler scales the app (it writes this field
    /// through the scale subresource).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 10000))]
    pub replicas: i32,

    /// Arguments passed to the component (`wasi:cli` args).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub args: Option<Vec<String>>,

    /// Environment variables; same shape as a container's `env`. `WASMPOD_HTTP_PORT` and the
    /// capability settings (`WASMPOD_KEYVALUE_*`, `WASMPOD_CONFIG_*`,
    /// `WASMPOD_ALLOWED_OUTBOUND_HOSTS`) are not among them: the operator sets them from `port`
    /// and `capabilities`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = no_descriptions, length(max = 256))]
    #[x_kube(
        validation = Rule::new("self.all(e, e.name != 'WASMPOD_HTTP_PORT')").message("spec.env must not set WASMPOD_HTTP_PORT: the operator sets it from spec.port"),
        validation = Rule::new("self.all(e, !e.name.startsWith('WASMPOD_KEYVALUE_') && !e.name.startsWith('WASMPOD_CONFIG_') && e.name != 'WASMPOD_ALLOWED_OUTBOUND_HOSTS')")
            .message("spec.env must not set WASMPOD_KEYVALUE_*, WASMPOD_CONFIG_* or WASMPOD_ALLOWED_OUTBOUND_HOSTS: the operator sets them from spec.capabilities")
    )]
    pub env: Vec<EnvVar>,

    /// ConfigMaps and Secrets whose keys become environment variables; same shape as a
    /// container's `envFrom`. Editing a referenced object rolls the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = no_descriptions, length(max = 64))]
    pub env_from: Vec<EnvFromSource>,

    /// Host capabilities: the `wasi:keyvalue` buckets the component may open and their backends,
    /// its `wasi:config` values, and where it may connect to. Secrets are referenced, never
    /// inlined, and never reach the guest. Changing a backend or a referenced Secret or ConfigMap
    /// rolls the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,

    /// Port the component listens on for HTTP: the container port, and the port the operator
    /// tells the runtime to listen on (`WASMPOD_HTTP_PORT` in the container's environment).
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// The Service in front of the pods. Created for HTTP components even when unset; set it to
    /// choose the type (including `Headless`), port or annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceConfig>,

    /// CPU and memory requests and limits; the memory limit also caps the guest's linear memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = no_descriptions)]
    pub resources: Option<ResourceRequirements>,

    /// When a pod counts as ready. Defaults to a TCP check of `port` for HTTP components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,

    /// When a pod is restarted. No default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,

    /// Holds off the other probes until it succeeds once. No default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Probe>,

    /// Horizontal autoscaling; creates a HorizontalPodAutoscaler that scales this WasmApp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,

    /// Scale to zero when idle: after `idleSeconds` without a request the app has no pods, its
    /// Service is answered by the activator (which runs the same component in-process), and the
    /// first request brings the pods back. Unset: the app never goes below its replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_to_zero: Option<ScaleToZero>,

    /// Node labels the pods must match (added to the RuntimeClass' own node selector).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Pod tolerations; same shape as a pod's `tolerations`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = no_descriptions, length(max = 64))]
    pub tolerations: Vec<Toleration>,

    /// Pod affinity and anti-affinity; same shape as a pod's `affinity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = no_descriptions)]
    pub affinity: Option<Affinity>,

    /// Topology spread constraints; same shape as a pod's `topologySpreadConstraints`. An empty
    /// `labelSelector` selects the app's own pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = no_descriptions, length(max = 16))]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,

    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,

    /// Creates a PodDisruptionBudget for the pods; set exactly one of its fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PodDisruptionBudgetConfig>,

    /// Pod volumes; same shape as a pod's `volumes`. Editing a referenced ConfigMap or Secret rolls
    /// the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = named_items, length(max = 64))]
    pub volumes: Vec<Volume>,

    /// Where volumes are mounted in the component's filesystem; the guest sees only these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = mounts, length(max = 64))]
    pub volume_mounts: Vec<VolumeMount>,

    /// ServiceAccount of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_account_name: Option<String>,

    /// RuntimeClass of the pods.
    #[serde(default = "default_runtime_class")]
    #[schemars(length(min = 1, max = 253))]
    pub runtime_class_name: String,

    /// Extra labels on the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,

    /// Extra annotations on the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
}

fn default_replicas() -> i32 {
    DEFAULT_REPLICAS
}
fn default_port() -> i32 {
    DEFAULT_PORT
}
fn default_runtime_class() -> String {
    DEFAULT_RUNTIME_CLASS.to_string()
}

/// The app's Service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConfig {
    /// Service type. `Headless` creates a ClusterIP Service with `clusterIP: None`.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,

    /// Port the Service listens on; default 80 (the container port for `Headless`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,

    /// Annotations on the Service (e.g. for a cloud load balancer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// How the app's Service is exposed.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum ServiceType {
    /// A virtual IP inside the cluster.
    #[default]
    ClusterIP,
    /// ClusterIP plus a port on every node.
    NodePort,
    /// NodePort plus an external load balancer.
    LoadBalancer,
    /// No virtual IP: DNS returns the pods' addresses.
    Headless,
}

/// A health check. With neither `httpGet` nor `tcpSocket` it is a TCP check of the app's port.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.httpGet) && has(self.tcpSocket))").message("a probe sets at most one of httpGet and tcpSocket"))]
pub struct Probe {
    /// An HTTP GET that must answer 200–399.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetProbe>,
    /// A TCP connection that must be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketProbe>,
    /// Seconds after start before the first check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds between checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub period_seconds: Option<i32>,
    /// Seconds before a check times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: Option<i32>,
    /// Consecutive successes to count as healthy again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub success_threshold: Option<i32>,
    /// Consecutive failures to count as unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: Option<i32>,
}

/// An HTTP GET health check.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpGetProbe {
    /// Request path; default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("httpGet.path must start with '/'"))]
    pub path: Option<String>,
    /// Port to probe; default the app's `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub http_headers: Vec<HttpHeader>,
}

/// One HTTP header.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct HttpHeader {
    /// Header name.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// Header value.
    #[schemars(length(max = 4096))]
    pub value: String,
}

/// A TCP health check.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TcpSocketProbe {
    /// Port to connect to; default the app's `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// Horizontal autoscaling of the app through its scale subresource.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.minReplicas) || self.minReplicas <= self.maxReplicas")
        .message("autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas")
        .field_path(".minReplicas")
)]
pub struct Autoscaling {
    /// Lower bound of the replica count; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub min_replicas: Option<i32>,
    /// Upper bound of the replica count.
    #[schemars(range(min = 1, max = 10000))]
    pub max_replicas: i32,
    /// Target average CPU use, in percent of the CPU request; default 80 when no target is set.
    /// Needs `resources.requests.cpu`.
    #[serde(
        default,
        rename = "targetCPUUtilizationPercentage",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 1000))]
    pub target_cpu_utilization_percentage: Option<i32>,
    /// Target average memory use, in percent of the memory request. Needs
    /// `resources.requests.memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_memory_utilization_percentage: Option<i32>,
}

/// The app's PodDisruptionBudget: exactly one of `minAvailable` and `maxUnavailable`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.minAvailable) != has(self.maxUnavailable)")
        .message("podDisruptionBudget: set exactly one of minAvailable or maxUnavailable")
)]
pub struct PodDisruptionBudgetConfig {
    /// Pods that must stay available during voluntary disruptions (a number or a percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// Pods that may be unavailable during voluntary disruptions (a number or a percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}
