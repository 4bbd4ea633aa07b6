//! The operator's error type.

/// Everything that can go wrong inside the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    /// Applying a child failed.
    #[error("applying {kind} {name}: {source}")]
    Apply {
        /// Kind of the child.
        kind: &'static str,
        /// Name of the child.
        name: String,
        /// What the apiserver said.
        source: kube::Error,
    },

    /// An object lacks a field the operator needs.
    #[error("{0} has no {1}")]
    MissingField(&'static str, &'static str),

    /// (De)serialization failed.
    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),

    /// The WasmApp CRD is not installed.
    #[error(
        "the WasmApp CRD (wasmapps.wasmpod.io) is not installed or not readable: {0}; install it with `kubectl apply -f crds/`"
    )]
    CrdMissing(#[source] kube::Error),

    /// Leader election failed.
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),

    /// Leadership was lost while reconciling.
    #[error("lost the leader lease")]
    LeadershipLost,

    /// Invalid settings.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Polling a pod or the activator for traffic failed (logged, counted as no news).
    #[error("polling {url}: {message}")]
    Poll {
        /// What was polled.
        url: String,
        /// What went wrong.
        message: String,
    },

    /// Every activator port is taken.
    #[error("no free activator port for WasmApp {0}: all 10000 ports of 20000-29999 are held")]
    NoActivatorPort(String),

    /// Socket or file I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Apply { .. } => "apply",
            Self::MissingField(..) => "missing_field",
            Self::Serialization(_) => "serialization",
            Self::CrdMissing(_) => "crd_missing",
            Self::Lease(_) => "lease",
            Self::LeadershipLost => "leadership_lost",
            Self::Config(_) => "config",
            Self::Poll { .. } => "poll",
            Self::NoActivatorPort(_) => "no_activator_port",
            Self::Io(_) => "io",
        }
    }
}

/// Result with the operator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
