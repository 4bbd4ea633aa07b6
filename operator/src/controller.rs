//! The WasmApp controller: watches, shared context, error policy.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::crd::WasmApp;
use crate::image::{ImageCache, Inspector, InspectorConfig};
use crate::metrics::Metrics;
use crate::resources::{endpoints, labels};
use crate::watch_backoff::{NoDelay, WatchBackoff};
use crate::{Error, Result, refs, scaling};

/// Settings of the controller.
#[derive(Clone, Debug)]
pub struct Options {
    /// Watch only this namespace; `None` watches all.
    pub namespace: Option<String>,
    /// Cluster DNS domain for `status.url`.
    pub cluster_domain: String,
    /// Reconciles running at once (never two for the same app).
    pub concurrency: u16,
    /// Registry access.
    pub inspector: InspectorConfig,
    /// Periodic re-reconcile of every app (re-resolves tags).
    pub resync: Duration,
    /// Name of this instance for Events (`reportingInstance`).
    pub instance: String,
    /// Scale to zero: where the activator is, how often to poll.
    pub scaling: scaling::Settings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespace: None,
            cluster_domain: "cluster.local".into(),
            concurrency: 16,
            inspector: InspectorConfig::default(),
            resync: Duration::from_secs(300),
            instance: "wasmpod-operator".into(),
            scaling: scaling::Settings::default(),
        }
    }
}

/// State shared by every reconcile.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Publishes Events (one recorder so repeated events become series).
    pub recorder: Recorder,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Settings.
    pub options: Options,
    /// Registry inspection.
    pub inspector: Inspector,
    /// Inspection results.
    pub images: ImageCache,
    /// Scale to zero: traffic tracker, port claims.
    pub scaling: scaling::Shared,
    failures: Mutex<HashMap<ObjectRef<WasmApp>, u32>>,
}

impl Context {
    /// A context for `client`.
    pub fn new(client: Client, options: Options, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: crate::apply::FIELD_MANAGER.into(),
            instance: Some(options.instance.clone()),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            inspector: Inspector::new(options.inspector.clone()),
            images: ImageCache::default(),
            scaling: scaling::Shared::default(),
            failures: Mutex::default(),
            client,
            metrics,
            options,
        }
    }

    /// An Api for `K` in `namespace`.
    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Forgets the failure count of `app` after a successful reconcile.
    pub fn reset_failures(&self, app: &WasmApp) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ObjectRef::from(app));
    }
}

/// Requeue delay after the n-th consecutive failure: 1 s doubling to 5 min.
pub fn error_backoff(failures: u32) -> Duration {
    let secs = 1u64 << failures.saturating_sub(1).min(9);
    Duration::from_secs(secs.min(300))
}

/// Logs the failure, counts it and requeues with a per-app exponential backoff.
pub fn error_policy(app: Arc<WasmApp>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = {
        let mut map = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ObjectRef::from(app.as_ref())).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = error_backoff(failures);
    tracing::warn!(
        app = %app.name_any(),
        namespace = app.namespace().unwrap_or_default(),
        error = %error,
        kind = error.metric_label(),
        retry_in = ?delay,
        "reconcile failed"
    );
    ctx.metrics.retry();
    Action::requeue(delay)
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + DeserializeOwned,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The metadata of the objects of kind `K` in scope that `config` selects, as a watch that backs
/// off on its own (`Api<PartialObjectMeta<K>>` asks for metadata only).
fn metadata_of<K>(
    client: &Client,
    namespace: Option<&str>,
    config: watcher::Config,
) -> impl futures::Stream<Item = std::result::Result<PartialObjectMeta<K>, watcher::Error>>
+ Send
+ 'static
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    watcher(scoped::<PartialObjectMeta<K>>(client, namespace), config)
        .backoff(WatchBackoff::default())
        .touched_objects()
}

/// Maps a changed ConfigMap or Secret to the apps in its namespace that refer to it.
fn referencing_apps<K>(
    store: Store<WasmApp>,
) -> impl Fn(PartialObjectMeta<K>) -> Vec<ObjectRef<WasmApp>> + Send + Sync + 'static
where
    K: Resource<DynamicType = ()>,
{
    move |obj| {
        let kind = K::kind(&());
        apps_referring(&store, &kind, obj.name_any(), obj.namespace())
    }
}

fn apps_referring(
    store: &Store<WasmApp>,
    kind: &str,
    name: String,
    namespace: Option<String>,
) -> Vec<ObjectRef<WasmApp>> {
    store
        .state()
        .iter()
        .filter(|app| app.namespace() == namespace)
        .filter(|app| refs::references(&app.spec).mentions(kind, &name))
        .map(|app| ObjectRef::from(app.as_ref()))
        .collect()
}

/// The app cache has synced once the initial list is complete (`InitDone`), on the first list and
/// on every relist after that.
fn mark_ready_on_init_done(
    event: &watcher::Result<watcher::Event<WasmApp>>,
    ready: &AtomicBool,
    synced: &watch::Sender<bool>,
) {
    if matches!(event, Ok(watcher::Event::InitDone)) {
        synced.send_replace(true);
        if !ready.swap(true, Ordering::SeqCst) {
            tracing::info!("WasmApp cache synced: ready");
        }
    }
}

/// Resolves when shutdown is requested before the app cache synced. kube-runtime's runner starts
/// reconciling only after the sync, and its graceful shutdown stops polling the watch that would
/// bring it: waiting for a drain then never ends. With nothing started there is nothing to drain.
async fn stopped_before_sync(shutdown: impl Future<Output = ()>, synced: watch::Receiver<bool>) {
    shutdown.await;
    if *synced.borrow() {
        std::future::pending::<()>().await;
    }
}

/// Checks that the CRD is served, so a missing install fails fast with a hint.
pub async fn check_crd(client: &Client, namespace: Option<&str>) -> Result<()> {
    let apps: Api<WasmApp> = scoped(client, namespace);
    apps.list(&ListParams::default().limit(1))
        .await
        .map(|_| ())
        .map_err(Error::CrdMissing)
}

/// Runs the controller until `shutdown` resolves; in-flight reconciles finish first. `ready`
/// turns true once the app cache has synced.
pub async fn run(
    ctx: Arc<Context>,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    let client = ctx.client.clone();
    let ns = ctx.options.namespace.clone();
    let ns = ns.as_deref();
    check_crd(&client, ns).await?;
    ctx.metrics
        .set_max_concurrent(usize::from(ctx.options.concurrency));

    let children = watcher::Config::default().labels(&labels::managed_selector());
    // We own the WasmApp reflector so readiness can come from the watch stream itself: a second
    // `Store::wait_until_ready()` beside the controller's own would steal its wake-up (the store's
    // one-shot keeps only the last waiter's waker), leaving one of the two pending forever.
    let (store, writer) = reflector::store();
    let (synced_tx, synced) = watch::channel(false);
    let apps = reflector(
        writer,
        watcher(scoped::<WasmApp>(&client, ns), watcher::Config::default())
            .backoff(WatchBackoff::default()),
    )
    .inspect(move |event| mark_ready_on_init_done(event, &ready, &synced_tx))
    .applied_objects();
    let shutdown = shutdown.shared();
    let controller = Controller::for_stream(apps, store.clone());
    ctx.scaling.set_apps(store.clone());
    let (poller, wake) = start_poller(&ctx, store.clone(), ns, shutdown.clone());

    tracing::info!(
        namespace = ns.unwrap_or("<all>"),
        "starting WasmApp controller"
    );
    let run = controller
        .trigger_backoff(NoDelay)
        .owns_stream(metadata_of::<Deployment>(&client, ns, children.clone()))
        .owns_stream(metadata_of::<Service>(&client, ns, children.clone()))
        .owns_stream(metadata_of::<HorizontalPodAutoscaler>(
            &client,
            ns,
            children.clone(),
        ))
        .owns_stream(metadata_of::<PodDisruptionBudget>(
            &client,
            ns,
            children.clone(),
        ))
        .owns_stream(metadata_of::<EndpointSlice>(&client, ns, children))
        .reconcile_on(wake)
        .watches_stream(
            metadata_of::<ConfigMap>(&client, ns, watcher::Config::default()),
            referencing_apps::<ConfigMap>(store.clone()),
        )
        .watches_stream(
            metadata_of::<Secret>(&client, ns, watcher::Config::default()),
            referencing_apps::<Secret>(store),
        )
        .with_config(controller::Config::default().concurrency(ctx.options.concurrency))
        .graceful_shutdown_on(shutdown.clone())
        .run(crate::reconcile::reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(app = %obj, "reconciled"),
                Err(controller::Error::ObjectNotFound(obj)) => {
                    tracing::debug!(app = %obj, "app gone before reconcile");
                }
                Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(e) => tracing::warn!(error = %e, "controller error"),
            }
        });
    tokio::select! {
        () = run => {}
        () = stopped_before_sync(shutdown, synced) => {
            tracing::info!("shutdown before the WasmApp cache synced: nothing to drain");
        }
    }
    for task in poller {
        task.abort();
    }
    tracing::info!("WasmApp controller stopped");
    Ok(())
}

/// Starts the activity poller and the watch of the endpointslice controller's slices it reads
/// pod addresses from. Returns their tasks and the stream of apps the poller wants reconciled.
fn start_poller(
    ctx: &Arc<Context>,
    apps: Store<WasmApp>,
    ns: Option<&str>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (
    [tokio::task::JoinHandle<()>; 2],
    futures::channel::mpsc::UnboundedReceiver<ObjectRef<WasmApp>>,
) {
    let (slices, writer) = reflector::store();
    let config = watcher::Config::default().labels(&format!(
        "{}={}",
        endpoints::SLICE_MANAGED_BY_LABEL,
        endpoints::CONTROLLER_SLICE_MANAGER
    ));
    let watch = reflector(
        writer,
        watcher(scoped::<EndpointSlice>(&ctx.client, ns), config),
    )
    .default_backoff()
    .for_each(|event| async move {
        if let Err(e) = event {
            tracing::debug!(error = %e, "watching EndpointSlices");
        }
    });
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let poller = scaling::poller::run(ctx.clone(), apps, slices, tx, shutdown);
    ([tokio::spawn(watch), tokio::spawn(poller)], rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_before_sync_stops_at_once_and_after_sync_leaves_the_drain_to_kube() {
        let (tx, rx) = watch::channel(false);
        let early = stopped_before_sync(std::future::ready(()), rx.clone());
        assert!(
            tokio::time::timeout(Duration::from_secs(1), early)
                .await
                .is_ok()
        );
        tx.send_replace(true);
        let late = stopped_before_sync(std::future::ready(()), rx);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), late)
                .await
                .is_err()
        );
    }

    #[test]
    fn error_backoff_grows_and_caps() {
        assert_eq!(error_backoff(1), Duration::from_secs(1));
        assert_eq!(error_backoff(4), Duration::from_secs(8));
        assert_eq!(error_backoff(100), Duration::from_secs(300));
    }
}
