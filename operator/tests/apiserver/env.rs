//! The apiserver-only cluster (started once per test binary) and the per-test environment: a
//! namespace, a fake registry, and an in-process operator watching only that namespace.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wasmpod_operator::controller::{self, Context, Options};
use wasmpod_operator::crd::{WasmApp, WasmAppSpec};
use wasmpod_operator::image::InspectorConfig;
use wasmpod_operator::leader::cancelled;
use wasmpod_operator::metrics::Metrics;
use wasmpod_testkit::apiserver::ApiServer;

use crate::support::registry::FakeRegistry;

pub use wasmpod_testkit::paths::repo_root;

/// A running etcd + kube-apiserver with the WasmApp CRD installed.
pub struct Cluster {
    api: ApiServer,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
}

impl Cluster {
    /// Starts the cluster and installs `crds/` with plain client-side `kubectl apply`.
    pub fn start() -> anyhow::Result<Self> {
        let api = ApiServer::start().map_err(anyhow::Error::msg)?;
        let cluster = Self {
            kubeconfig: api.kubeconfig.clone(),
            kubectl: api.kubectl.clone(),
            api,
        };
        // Never leave etcd and the apiserver running when setup fails half way.
        match cluster.install_crd() {
            Ok(()) => Ok(cluster),
            Err(e) => {
                cluster.stop();
                Err(e)
            }
        }
    }

    fn install_crd(&self) -> anyhow::Result<()> {
        let cluster = self;
        let applied = cluster.kubectl(&[
            "apply",
            "-f",
            &repo_root().join("crds").display().to_string(),
        ])?;
        if !applied.status.success() {
            bail!(
                "kubectl apply -f crds/ failed: {}",
                String::from_utf8_lossy(&applied.stderr)
            );
        }
        // `kubectl wait` errors out while the CRD has no conditions yet: poll instead.
        let jsonpath = r#"jsonpath={.status.conditions[?(@.type=="Established")].status}"#;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = cluster.kubectl(&["get", "crd", "wasmapps.wasmpod.io", "-o", jsonpath])?;
            if String::from_utf8_lossy(&out.stdout).trim() == "True" {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "CRD not established: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Stops etcd and the apiserver.
    pub fn stop(&self) {
        self.api.stop();
    }

    /// Runs kubectl against the cluster.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Command::new(&self.kubectl)
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .output()
            .context("running kubectl")
    }

    /// A fresh client.
    pub async fn client(&self) -> anyhow::Result<Client> {
        client_for(&self.kubeconfig).await
    }
}

pub async fn client_for(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// One test's world.
pub struct TestEnv {
    pub cluster: &'static Cluster,
    pub client: Client,
    pub ns: String,
    pub registry: FakeRegistry,
    pub metrics: Arc<Metrics>,
    operator: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl TestEnv {
    /// Creates namespace `ns` and a registry; the operator is not started yet.
    pub async fn new(cluster: &'static Cluster, ns: &str) -> anyhow::Result<Self> {
        let client = cluster.client().await?;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let mut n = Namespace::default();
        n.metadata.name = Some(ns.into());
        namespaces.create(&PostParams::default(), &n).await?;
        Ok(Self {
            cluster,
            client,
            ns: ns.into(),
            registry: FakeRegistry::start().await,
            metrics: Arc::new(Metrics::new()),
            operator: None,
        })
    }

    /// Starts the operator for this namespace, in process.
    pub fn start_operator(&mut self) {
        self.start_operator_with(|_| {});
    }

    /// Starts the operator for this namespace with settings changed by `tweak`.
    pub fn start_operator_with(&mut self, tweak: impl FnOnce(&mut Options)) {
        let mut options = Options {
            namespace: Some(self.ns.clone()),
            concurrency: 4,
            inspector: InspectorConfig {
                insecure_registries: vec![self.registry.host()],
                timeout: Duration::from_secs(10),
            },
            instance: format!("test-{}", self.ns),
            ..Options::default()
        };
        tweak(&mut options);
        let ctx = Arc::new(Context::new(
            self.client.clone(),
            options,
            self.metrics.clone(),
        ));
        let stop = CancellationToken::new();
        let ready = Arc::new(AtomicBool::new(false));
        let shutdown = cancelled(stop.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = controller::run(ctx, ready, shutdown).await {
                panic!("controller failed: {e}");
            }
        });
        self.operator = Some((stop, task));
    }

    /// Stops the operator and waits for it to drain.
    pub async fn stop_operator(&mut self) {
        if let Some((stop, task)) = self.operator.take() {
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// An image reference in the test registry.
    pub fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.registry.host())
    }

    /// Creates a WasmApp from a JSON spec.
    pub async fn create_app(&self, name: &str, spec: serde_json::Value) -> anyhow::Result<WasmApp> {
        let spec: WasmAppSpec = serde_json::from_value(spec)?;
        let app = WasmApp::new(name, spec);
        Ok(self
            .api::<WasmApp>()
            .create(&PostParams::default(), &app)
            .await?)
    }

    /// Runs kubectl in this namespace.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        let mut all = vec!["-n", self.ns.as_str()];
        all.extend_from_slice(args);
        self.cluster.kubectl(&all)
    }
}

/// Polls `check` every 100 ms until it yields `Some`, for at most `secs` seconds.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            bail!(
                "timed out after {secs}s waiting for {what}{}",
                last_err
                    .map(|e| format!(" (last error: {e:#})"))
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A minimal spec for an image.
pub fn spec(image: &str) -> serde_json::Value {
    json!({ "image": image })
}

/// Whether the CRD is present (sanity check for the harness).
pub async fn crd_installed(client: &Client) -> anyhow::Result<bool> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    Ok(crds.get_opt("wasmapps.wasmpod.io").await?.is_some())
}
