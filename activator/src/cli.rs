//! The activator's flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use clap::Parser;
pub use wasmpod_logging::LogFormat;

/// Serves WasmApps scaled to zero, in-process, with the shim's runtime, until their pods are back.
#[derive(Parser, Debug, Clone)]
#[command(name = "wasmpod-activator", version)]
pub struct Args {
    /// Kubeconfig file; default: in-cluster configuration, then $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Address of /healthz, /readyz and /apps.
    #[arg(long, env = "WASMPOD_ADMIN_ADDR", default_value = "0.0.0.0:9090")]
    pub admin_addr: SocketAddr,
    /// Where compiled components and per-app files are kept (a writable volume).
    #[arg(
        long,
        env = "WASMPOD_STATE_DIR",
        default_value = "/var/lib/wasmpod-activator"
    )]
    pub state_dir: PathBuf,
    /// Serve only WasmApps of this namespace; default: all.
    #[arg(long, env = "WASMPOD_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Registry (`host:port`) spoken to over plain HTTP; repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
    /// Cluster DNS domain (the guests' search path).
    #[arg(long, env = "WASMPOD_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Requests one app may have handled or waiting at once; past it, 503 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub max_held_per_app: u64,
    /// Milliseconds of CPU one request may use before its instance is stopped.
    #[arg(long, default_value_t = 10_000)]
    pub request_cpu_ms: u64,
    /// Seconds between retries of apps that could not be prepared.
    #[arg(long, default_value_t = 30)]
    pub retry_seconds: u64,
    /// Seconds to keep serving after SIGTERM while not ready, so requests already routed here
    /// are answered while the endpoints move away.
    #[arg(long, default_value_t = 5)]
    pub shutdown_delay_seconds: u64,
    /// Log format.
    #[arg(long, env = "WASMPOD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Args {
    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(self.shutdown_delay_seconds)
    }
}
