//! Preparing one app for serving: its Wasm pulled and compiled with the node's engine settings,
//! its pod's environment resolved, the guest built with its limits and capabilities. The same
//! runtime calls as the shim's create, from the WasmApp instead of an OCI spec.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Secret};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::Api;
use kube::{Client, ResourceExt};
use oci_client::Reference;
use wasmpod_operator::crd::WasmApp;
use wasmpod_operator::image::ImageFacts;
use wasmpod_operator::image::auth;
use wasmpod_operator::resources::{self, BuildInput, CONTAINER_NAME};
use wasmpod_runtime::{
    Guest, GuestConfig, HttpServer, PodDns, Program, Settings, Traffic, WasmEngine,
};

use crate::env::{self, Objects, PodFacts, Source};
use crate::error::{Error, IoContext, Result};
use crate::pull::Registries;

/// What the activator needs besides the app.
pub struct Host {
    pub client: Client,
    pub engine: Arc<WasmEngine>,
    pub registries: Registries,
    /// Where per-app files (resolv.conf) live.
    pub state_dir: PathBuf,
    pub cluster_domain: String,
    /// The activator pod's own downward-API facts.
    pub pod: PodFacts,
    /// Requests handled or waiting per app, at most.
    pub max_held: u64,
    /// CPU one request may use.
    pub instance_cpu: Duration,
}

/// An app ready to serve.
pub struct Prepared {
    pub server: Arc<HttpServer>,
    /// The manifest digest it runs.
    pub digest: String,
}

/// Pulls, compiles and links `app`'s component and builds its guest, counting into `traffic`.
pub async fn prepare(host: &Host, app: &WasmApp, traffic: Arc<Traffic>) -> Result<Prepared> {
    let ns = app.namespace().unwrap_or_default();
    let status = app.status.clone().unwrap_or_default();
    let facts = ImageFacts::from_status(&status).ok_or_else(|| {
        Error::Unsupported("the operator has not resolved the app's image yet".into())
    })?;
    let image = facts.pinned();

    let creds = pull_credentials(host, &ns, app, &image).await?;
    let wasm = host.registries.fetch(&image, creds.as_ref()).await?;
    let engine = host.engine.clone();
    let (compiled, outcome) = tokio::task::spawn_blocking(move || engine.compile(&wasm))
        .await
        .map_err(|e| Error::Unsupported(format!("the compile task failed: {e}")))??;

    let container = pod_container(app)?;
    let objects = read_objects(host, &ns, &container).await?;
    let pod = PodFacts {
        namespace: ns.clone(),
        service_account: app
            .spec
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into()),
        labels: resources::labels::common(&app.name_any()),
        annotations: app.spec.pod_annotations.clone(),
        ..host.pod.clone()
    };
    let (env, args) = env::resolve(&container, &objects, &pod)?;
    let (settings, guest_env) = Settings::from_env(env)?;
    let program = Program::prepare(
        &host.engine.engine,
        compiled,
        wasm_world(&facts),
        &settings.grants,
    )?;
    let Program::Http(pre) = program else {
        return Err(Error::Unsupported(format!(
            "the component is a {}; only HTTP components can be served while scaled to zero",
            program.kind()
        )));
    };
    let config = GuestConfig {
        args,
        env: guest_env,
        memory_limit: memory_limit(&container)?,
        instance_cpu_limit: Some(host.instance_cpu),
        network: true,
        dns: Some(app_dns(host, &ns, &app.name_any())?),
        ca_bundle: settings.ca_bundle.clone(),
        grants: settings.grants.clone(),
        stderr: Some(crate::logs::guest_output(&ns, &app.name_any())?),
        stdout: Some(crate::logs::guest_output(&ns, &app.name_any())?),
        ..Default::default()
    };
    let guest = Guest::new(config)?;
    tracing::info!(app = %format!("{ns}/{}", app.name_any()), %image, cache = ?outcome, "prepared");
    let server = HttpServer::new(host.engine.engine.clone(), pre, guest, &settings)
        .with_max_held(host.max_held)
        .with_traffic(traffic);
    Ok(Prepared {
        server: Arc::new(server),
        digest: facts.digest,
    })
}

fn wasm_world(facts: &ImageFacts) -> Option<wasmpod_runtime::World> {
    matches!(facts.kind, wasmpod_operator::crd::ComponentKind::Http)
        .then_some(wasmpod_runtime::World::Http)
}

/// The Wasm container of the pods the operator builds for `app`: what the activator serves it
/// from (env, envFrom, args, resources).
fn pod_container(app: &WasmApp) -> Result<Container> {
    let input = BuildInput::default();
    let deployment = resources::deployment(app, &input)
        .map_err(|e| Error::Unsupported(format!("building the app's pod: {e}")))?;
    deployment
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().find(|c| c.name == CONTAINER_NAME))
        .ok_or_else(|| Error::Unsupported("the app's pod has no Wasm container".into()))
}

async fn pull_credentials(
    host: &Host,
    ns: &str,
    app: &WasmApp,
    image: &str,
) -> Result<Option<auth::Credentials>> {
    let api: Api<Secret> = Api::namespaced(host.client.clone(), ns);
    let mut secrets = Vec::new();
    for r in &app.spec.image_pull_secrets {
        if let Some(s) = api.get_opt(&r.name).await? {
            secrets.push(s);
        }
    }
    Ok(image
        .parse::<Reference>()
        .ok()
        .and_then(|r| auth::credentials_for(&secrets, r.resolve_registry(), r.repository())))
}

/// Reads the ConfigMaps and Secrets the container's env refers to.
async fn read_objects(host: &Host, ns: &str, container: &Container) -> Result<Objects> {
    let cms: Api<ConfigMap> = Api::namespaced(host.client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(host.client.clone(), ns);
    let mut objects = Objects::new();
    for (source, name) in env::referenced(container) {
        let data = match source {
            Source::ConfigMap => cms
                .get_opt(&name)
                .await?
                .map(|cm| cm.data.unwrap_or_default()),
            Source::Secret => secrets.get_opt(&name).await?.map(|s| {
                s.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .chain(s.string_data.unwrap_or_default())
                    .collect::<BTreeMap<_, _>>()
            }),
        };
        objects.insert((source, name), data);
    }
    Ok(objects)
}

/// The container's memory limit in bytes, which caps the app's linear memory here as in its pod.
fn memory_limit(container: &Container) -> Result<Option<u64>> {
    let Some(q) = container
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
    else {
        return Ok(None);
    };
    bytes_of(q).map(Some).ok_or_else(|| Error::Env {
        field: "spec.resources.limits.memory".into(),
        detail: format!("{:?} is not a memory quantity", q.0),
    })
}

/// A memory quantity in bytes: a number with an optional binary (`Ki`..`Ei`) or decimal
/// (`k`..`E`) suffix, as Kubernetes writes them.
pub fn bytes_of(q: &Quantity) -> Option<u64> {
    let s = q.0.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let factor: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    Some((value * factor).ceil() as u64)
}

/// A resolv.conf for the app's guest: the activator's name servers and options with the search
/// path of a pod in the app's namespace, so `redis` finds `redis.<ns>.svc` as in its pod.
fn app_dns(host: &Host, ns: &str, name: &str) -> Result<PodDns> {
    let own = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let d = &host.cluster_domain;
    let mut conf = format!("search {ns}.svc.{d} svc.{d} {d}\n");
    for line in own.lines() {
        if line.starts_with("nameserver") || line.starts_with("options") {
            conf.push_str(line);
            conf.push('\n');
        }
    }
    let path = host.state_dir.join(format!("{ns}_{name}.resolv.conf"));
    std::fs::write(&path, conf).io_context(|| format!("write {}", path.display()))?;
    let hosts = Path::new("/etc/hosts");
    Ok(PodDns {
        resolv_conf: path,
        hosts: hosts.exists().then(|| hosts.to_path_buf()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities_in_bytes() {
        let q = |s: &str| bytes_of(&Quantity(s.into()));
        assert_eq!(q("128Mi"), Some(128 << 20));
        assert_eq!(q("1Gi"), Some(1 << 30));
        assert_eq!(q("500M"), Some(500_000_000));
        assert_eq!(q("1.5Ki"), Some(1536));
        assert_eq!(q("4096"), Some(4096));
        assert_eq!(q("12 parsecs"), None);
        assert_eq!(q("1m"), None);
    }
}
