//! Command-line flags (each also settable through an environment variable).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};

use crate::controller::Options;
use crate::image::InspectorConfig;
use crate::leader::LeaseConfig;
use crate::scaling;
pub use wasmpod_logging::LogFormat;

/// wasmpod-operator: runs WasmApps as Deployments, Services, HPAs and PDBs.
#[derive(Parser, Debug, Clone)]
#[command(name = "wasmpod-operator", version, about)]
pub struct Args {
    /// Kubeconfig file; default: $KUBECONFIG, ~/.kube/config, then the in-cluster config.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Address of the HTTP server for /metrics, /healthz and /readyz (port 0 picks one).
    #[arg(long, env = "WASMPOD_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Elect a leader through a Lease, so several replicas can run side by side.
    #[arg(long, env = "WASMPOD_LEADER_ELECT", default_value_t = true, action = ArgAction::Set)]
    pub leader_elect: bool,

    /// Name of the Lease.
    #[arg(long, env = "WASMPOD_LEASE_NAME", default_value = "wasmpod-operator")]
    pub lease_name: String,

    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,

    /// Identity in the Lease; default: $POD_NAME, else host name and process id.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// Seconds a Lease stays valid after its last renewal.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,

    /// Seconds before expiry at which the leader renews the Lease.
    #[arg(long, default_value_t = 5)]
    pub lease_grace: u64,

    /// Watch only this namespace; default: all namespaces.
    #[arg(long, env = "WASMPOD_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// Registry (host:port as written in image references) to reach over plain HTTP;
    /// repeat or separate with commas.
    #[arg(
        long = "insecure-registry",
        env = "WASMPOD_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,

    /// Seconds one image inspection may take.
    #[arg(long, default_value_t = 30)]
    pub registry_timeout: u64,

    /// Cluster DNS domain, for status.url.
    #[arg(long, env = "WASMPOD_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,

    /// WasmApps reconciled at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u16,

    /// Seconds between periodic reconciles of every app (re-resolves image tags).
    #[arg(long, default_value_t = 300)]
    pub resync: u64,

    /// Namespace of the scale-to-zero activator's Service; default: the operator's own
    /// ($POD_NAMESPACE, as for the Lease).
    #[arg(long, env = "WASMPOD_ACTIVATOR_NAMESPACE")]
    pub activator_namespace: Option<String>,

    /// Name of the activator's Service; its EndpointSlices list the activator's pods.
    #[arg(long, env = "WASMPOD_ACTIVATOR_SERVICE", default_value = scaling::DEFAULT_ACTIVATOR_SERVICE)]
    pub activator_service: String,

    /// The activator's admin port, where it reports the apps it serves (`GET /apps`).
    #[arg(long, default_value_t = wasmpod_oci::names::ACTIVATOR_ADMIN_PORT)]
    pub activator_admin_port: u16,

    /// The port the pods of apps with scaleToZero report their traffic on (`GET /activity`).
    #[arg(long, default_value_t = wasmpod_oci::names::ACTIVITY_PORT)]
    pub activity_port: u16,

    /// Milliseconds between two polls of the activator and the pods for traffic.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..))]
    pub activity_poll_ms: u64,

    /// Log format.
    #[arg(long, env = "WASMPOD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Args {
    /// This instance's identity.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "wasmpod-operator".into());
            format!("{host}-{}", std::process::id())
        })
    }

    /// Controller settings.
    pub fn options(&self) -> Options {
        Options {
            namespace: self.watch_namespace.clone(),
            cluster_domain: self.cluster_domain.clone(),
            concurrency: self.concurrency,
            inspector: InspectorConfig {
                insecure_registries: self.insecure_registries.clone(),
                timeout: Duration::from_secs(self.registry_timeout),
            },
            resync: Duration::from_secs(self.resync),
            instance: self.identity(),
            scaling: scaling::Settings {
                activator_namespace: self
                    .activator_namespace
                    .clone()
                    .unwrap_or_else(|| self.lease_namespace.clone()),
                activator_service: self.activator_service.clone(),
                activator_admin_port: self.activator_admin_port,
                activity_port: self.activity_port,
                poll_interval: Duration::from_millis(self.activity_poll_ms),
                ..scaling::Settings::default()
            },
        }
    }

    /// Lease settings.
    pub fn lease(&self) -> LeaseConfig {
        LeaseConfig {
            name: self.lease_name.clone(),
            namespace: self.lease_namespace.clone(),
            identity: self.identity(),
            duration: self.lease_duration,
            grace: self.lease_grace,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_into_options() {
        let args = Args::try_parse_from([
            "wasmpod-operator",
            "--leader-elect=false",
            "--insecure-registry=localhost:5000,127.0.0.1:5001",
            "--insecure-registry",
            "reg:80",
            "--watch-namespace",
            "apps",
            "--identity",
            "op-1",
        ])
        .unwrap();
        assert!(!args.leader_elect);
        let o = args.options();
        assert_eq!(
            o.inspector.insecure_registries,
            ["localhost:5000", "127.0.0.1:5001", "reg:80"]
        );
        assert_eq!(o.namespace.as_deref(), Some("apps"));
        assert_eq!(args.lease().identity, "op-1");
        assert_eq!(o.resync, Duration::from_secs(300));
        assert_eq!(o.scaling.activator_service, "wasmpod-activator");
        assert_eq!(o.scaling.activator_admin_port, 9090);
        assert_eq!(o.scaling.activity_port, 9091);
        assert_eq!(o.scaling.poll_interval, Duration::from_secs(1));
    }

    #[test]
    fn the_activator_lives_in_the_operator_namespace_unless_told() {
        let args = Args::try_parse_from([
            "wasmpod-operator",
            "--lease-namespace=wasmpod-system",
            "--activity-poll-ms=250",
        ])
        .unwrap();
        let o = args.options();
        assert_eq!(o.scaling.activator_namespace, "wasmpod-system");
        assert_eq!(o.scaling.poll_interval, Duration::from_millis(250));
        let args = Args::try_parse_from([
            "wasmpod-operator",
            "--activator-namespace=edge",
            "--activator-service=act",
        ])
        .unwrap();
        assert_eq!(args.options().scaling.activator_namespace, "edge");
        assert_eq!(args.options().scaling.activator_service, "act");
    }
}
