//! Scale to zero against a real apiserver: activator ports, the opt-out, and the Serve/Proxy
//! switch of an app's Service, with the operator's poller reading test doubles.
//!
//! The apiserver tier has no controller-manager and no pods: the test plays the endpointslice
//! controller (it creates the slice the controller would keep for the app's Service; the
//! operator deletes it once the selector is gone, as the controller leaves it),
//! the Deployment controller (it writes `readyReplicas`), the activator (an `/apps` endpoint
//! behind a hand-made EndpointSlice of the `wasmpod-activator` Service) and the app's pod (an
//! `/activity` endpoint). Both listen on the host's own address (the apiserver refuses loopback
//! addresses in EndpointSlices), each on its own port: the operator runs on the host and reaches
//! those "pod IPs" directly.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use serde::Serialize;
use serde_json::json;
use wasmpod_oci::activity::{
    ACTIVATOR_APPS_PATH, ACTIVITY_PATH, ActivatorApp, ActivatorAppState, ActivatorReport, Activity,
};
use wasmpod_operator::crd::{READY, SCALED_TO_ZERO, ScalePhase, WasmApp};
use wasmpod_operator::resources::endpoints::{
    CONTROLLER_SLICE_MANAGER, SERVICE_NAME_LABEL, SLICE_MANAGED_BY_LABEL, proxy_slice_name,
};
use wasmpod_operator::resources::labels;

use crate::children::wait_child;
use crate::conditions::{message, wait_condition};
use crate::env::{TestEnv, wait_for};
use crate::support::registry;

type Fut<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

/// The host's address on its default route: an address EndpointSlices accept that the test's
/// fake hosts can listen on.
fn host_ip() -> anyhow::Result<String> {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0")?;
    // Connecting a UDP socket sends nothing; it only picks the source address.
    probe
        .connect("203.0.113.1:9")
        .context("no IPv4 default route: the fake activator needs a non-loopback address")?;
    Ok(probe.local_addr()?.ip().to_string())
}

/// A stand-in for an HTTP report endpoint: serves the current `T` as JSON at one path.
struct FakeHost<T> {
    addr: SocketAddr,
    state: Arc<Mutex<T>>,
    task: tokio::task::JoinHandle<()>,
}

impl<T: Serialize + Clone + Send + 'static> FakeHost<T> {
    async fn start(ip: &str, path: &'static str, initial: T) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .with_context(|| format!("binding {ip}:0 for a fake {path}"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(initial));
        let shared = state.clone();
        let handler = move || {
            let body = serde_json::to_string(&*shared.lock().unwrap()).unwrap();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        };
        let router = axum::Router::new().route(path, axum::routing::get(handler));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { addr, state, task })
    }

    fn update(&self, change: impl FnOnce(&mut T)) {
        change(&mut self.state.lock().unwrap());
    }
}

impl<T> Drop for FakeHost<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `wasmpod-activator` Service and a slice with the fake activator's address.
async fn activator_service(env: &TestEnv, ip: &str) -> anyhow::Result<()> {
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "wasmpod-activator"},
        "spec": {"ports": [{"name": "admin", "port": 9090, "protocol": "TCP"}]},
    }))?;
    env.api::<Service>()
        .create(&PostParams::default(), &svc)
        .await?;
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "wasmpod-activator-abcde",
                     "labels": {SERVICE_NAME_LABEL: "wasmpod-activator",
                                SLICE_MANAGED_BY_LABEL: CONTROLLER_SLICE_MANAGER}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}},
                      {"addresses": ["10.9.9.9"], "conditions": {"ready": false}}],
        "ports": [{"name": "admin", "port": 9090, "protocol": "TCP"}],
    }))?;
    env.api::<EndpointSlice>()
        .create(&PostParams::default(), &slice)
        .await?;
    Ok(())
}

/// Holds a deleted controller slice, so the test sees the step before it goes.
const HOLD: &str = "wasmpod.io/test-hold";

/// What the endpointslice controller keeps for a Service with a selector and a ready pod. A
/// finalizer holds it once the operator deletes it, until [`release`].
async fn controller_slice(env: &TestEnv, service: &str, ip: &str) -> anyhow::Result<()> {
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": format!("{service}-ctrl"), "finalizers": [HOLD],
                     "labels": {SERVICE_NAME_LABEL: service,
                                SLICE_MANAGED_BY_LABEL: CONTROLLER_SLICE_MANAGER}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }))?;
    env.api::<EndpointSlice>()
        .create(&PostParams::default(), &slice)
        .await?;
    Ok(())
}

/// Lets a held slice go, if it is being deleted; returns whether it was.
async fn release(env: &TestEnv, name: &str) -> anyhow::Result<bool> {
    let slices = env.api::<EndpointSlice>();
    let held = slices
        .get_opt(name)
        .await?
        .is_some_and(|s| s.metadata.deletion_timestamp.is_some());
    if held {
        let unhold = json!({"metadata": {"finalizers": null}});
        slices
            .patch(name, &PatchParams::default(), &Patch::Merge(&unhold))
            .await?;
    }
    Ok(held)
}

fn phase(app: &WasmApp) -> Option<ScalePhase> {
    app.status.as_ref()?.scale_to_zero.as_ref()?.phase
}

fn activator_port(app: &WasmApp) -> Option<i32> {
    app.status.as_ref()?.scale_to_zero.as_ref()?.activator_port
}

async fn wait_phase(env: &TestEnv, name: &str, want: ScalePhase) -> anyhow::Result<WasmApp> {
    let apps = env.api::<WasmApp>();
    let got = wait_for(&format!("{name} in phase {want:?}"), 40, || async {
        let app = apps.get(name).await?;
        Ok((phase(&app) == Some(want)).then_some(app))
    })
    .await;
    match got {
        Ok(app) => Ok(app),
        Err(e) => {
            let status = apps.get(name).await.ok().and_then(|a| a.status);
            Err(e.context(format!("last status: {status:#?}")))
        }
    }
}

fn selector(svc: &Service) -> Option<&std::collections::BTreeMap<String, String>> {
    svc.spec.as_ref()?.selector.as_ref()
}

fn replicas(d: &Deployment) -> Option<i32> {
    d.spec.as_ref()?.replicas
}

pub fn activator_ports_are_unique_and_opt_out_apps_stay_plain(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        env.registry
            .push("apps/hello", "v1", registry::http_artifact());
        let image = env.image("apps/hello:v1");
        let ns = env.ns.clone();
        env.start_operator_with(|o| o.scaling.activator_namespace = ns);
        let names = ["a", "b", "c", "d"];
        for name in names {
            env.create_app(name, json!({"image": image, "scaleToZero": {}}))
                .await?;
        }
        env.create_app("plain", json!({"image": image})).await?;

        let apps = env.api::<WasmApp>();
        let mut ports = BTreeSet::new();
        for name in names {
            // No activator endpoint in this namespace: the app must stay on its pods.
            let s = wait_condition(
                &apps,
                name,
                SCALED_TO_ZERO,
                "False",
                Some("ActivatorNotReady"),
            )
            .await?;
            ensure!(
                message(&s, SCALED_TO_ZERO).contains("wasmpod-activator has no ready endpoint"),
                "{name}: {}",
                message(&s, SCALED_TO_ZERO)
            );
            let port = wait_for(&format!("{name}'s activator port"), 30, || async {
                Ok(activator_port(&apps.get(name).await?))
            })
            .await?;
            ensure!((20000..=29999).contains(&port), "{name}: port {port}");
            ports.insert(port);
            let d = wait_child(&env.api::<Deployment>(), name, "the Deployment", |_| true).await?;
            let c = &d
                .spec
                .and_then(|s| s.template.spec)
                .context("pod")?
                .containers[0];
            ensure!(
                c.env.iter().flatten().any(
                    |e| e.name == "WASMPOD_ACTIVITY_PORT" && e.value.as_deref() == Some("9091")
                ),
                "{name}: activity port in the env: {:?}",
                c.env
            );
        }
        ensure!(ports.len() == names.len(), "ports are unique: {ports:?}");
        // A port is kept once given: another reconcile (a spec change) does not move it.
        let before = activator_port(&apps.get("a").await?);
        apps.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"scaleToZero": {"idleSeconds": 600}}})),
        )
        .await?;
        wait_for("a's new generation observed", 30, || async {
            let app = apps.get("a").await?;
            let seen = app.status.as_ref().and_then(|s| s.observed_generation);
            Ok((seen == app.metadata.generation).then_some(app))
        })
        .await?;
        ensure!(activator_port(&apps.get("a").await?) == before, "port kept");

        // The opt-out: reconciled like any app, and nothing of scale to zero.
        let plain = wait_condition(&apps, "plain", READY, "False", None).await?;
        ensure!(plain.scale_to_zero.is_none(), "{:?}", plain.scale_to_zero);
        ensure!(plain.condition(SCALED_TO_ZERO).is_none());
        let svc = wait_child(&env.api::<Service>(), "plain", "the Service", |_| true).await?;
        ensure!(selector(&svc) == Some(&labels::selector("plain")));
        let d = wait_child(&env.api::<Deployment>(), "plain", "the Deployment", |_| {
            true
        })
        .await?;
        let c = &d
            .spec
            .and_then(|s| s.template.spec)
            .context("pod")?
            .containers[0];
        ensure!(
            c.env
                .iter()
                .flatten()
                .all(|e| e.name != "WASMPOD_ACTIVITY_PORT")
        );
        ensure!(
            env.api::<EndpointSlice>()
                .get_opt(&proxy_slice_name("plain"))
                .await?
                .is_none(),
            "an opt-out app never gets a proxy slice"
        );
        Ok(())
    })
}

pub fn an_idle_app_hands_its_service_to_the_activator_and_back(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        if std::env::var_os("RUST_LOG").is_some() {
            wasmpod_logging::init(wasmpod_logging::LogFormat::Text);
        }
        let digest = env
            .registry
            .push("apps/idle", "v1", registry::http_artifact());
        let image = env.image("apps/idle:v1");
        let ip = host_ip()?;
        let activator = FakeHost::start(
            &ip,
            ACTIVATOR_APPS_PATH,
            ActivatorReport {
                instance: "activator-1".into(),
                apps: vec![],
            },
        )
        .await?;
        let pod = FakeHost::start(
            &ip,
            ACTIVITY_PATH,
            Activity {
                instance: "pod-1".into(),
                requests: 7,
                in_flight: 0,
            },
        )
        .await?;
        activator_service(env, &ip).await?;
        let ns = env.ns.clone();
        let (admin, activity) = (activator.addr.port(), pod.addr.port());
        env.start_operator_with(move |o| {
            o.scaling.activator_namespace = ns;
            o.scaling.activator_admin_port = admin;
            o.scaling.activity_port = activity;
            o.scaling.poll_interval = Duration::from_millis(200);
        });
        env.create_app(
            "idle",
            json!({"image": image, "scaleToZero": {"idleSeconds": 5}}),
        )
        .await?;
        let apps = env.api::<WasmApp>();
        let services = env.api::<Service>();
        let deployments = env.api::<Deployment>();
        let slices = env.api::<EndpointSlice>();
        let proxy = proxy_slice_name("idle");

        // The activator does not list the app yet: it stays on its pods.
        let s = wait_condition(
            &apps,
            "idle",
            SCALED_TO_ZERO,
            "False",
            Some("ActivatorNotReady"),
        )
        .await?;
        let port = s
            .scale_to_zero
            .as_ref()
            .and_then(|s| s.activator_port)
            .context("activator port")?;
        controller_slice(env, "idle", &ip).await?;
        let ready_app = |state, error: Option<&str>| ActivatorApp {
            namespace: env.ns.clone(),
            name: "idle".into(),
            port: u16::try_from(port).unwrap(),
            digest: Some(digest.clone()),
            state,
            error: error.map(Into::into),
            requests: 0,
            in_flight: 0,
        };
        activator.update(|r| r.apps = vec![ready_app(ActivatorAppState::Ready, None)]);
        wait_condition(&apps, "idle", SCALED_TO_ZERO, "False", Some("Serving")).await?;

        // Idle for 5 s: the proxy slice comes in, the selector goes, the pods stay for now. A
        // request at the pod then (the race of a late request) hands the Service back to them.
        wait_phase(env, "idle", ScalePhase::ScalingDown).await?;
        pod.update(|a| a.requests += 1);
        wait_phase(env, "idle", ScalePhase::Serving).await?;
        wait_child(
            &services,
            "idle",
            "the selector back after a late request",
            |s| selector(s) == Some(&labels::selector("idle")),
        )
        .await?;
        // The operator may have deleted the controller's slice already; the controller makes a
        // new one once the selector is back, and the proxy slice goes when it has the pod.
        wait_for(
            "the proxy slice deleted (the pod is ready behind the Service)",
            30,
            || async {
                release(env, "idle-ctrl").await?;
                if slices.get_opt("idle-ctrl").await?.is_none() {
                    controller_slice(env, "idle", &ip).await?;
                }
                Ok(slices.get_opt(&proxy).await?.is_none().then_some(()))
            },
        )
        .await?;
        go_to_zero(env, port, &ip).await?;

        // A request at the activator: the pods come back, then the selector, then the slice goes.
        activator.update(|r| r.apps[0].requests += 1);
        wait_phase(env, "idle", ScalePhase::ScalingUp).await?;
        wait_child(&deployments, "idle", "replicas back to 1", |d| {
            replicas(d) == Some(1)
        })
        .await?;
        let svc = services.get("idle").await?;
        ensure!(
            selector(&svc).is_none(),
            "no pod is ready yet: the activator alone"
        );
        ensure!(slices.get_opt(&proxy).await?.is_some());
        deployments
            .patch_status(
                "idle",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"replicas": 1, "readyReplicas": 1}})),
            )
            .await?;
        wait_child(&services, "idle", "the selector back", |s| {
            selector(s) == Some(&labels::selector("idle"))
        })
        .await?;
        ensure!(
            slices.get_opt(&proxy).await?.is_some(),
            "the proxy slice stays until the controller's slice has the pod"
        );
        ensure!(phase(&apps.get("idle").await?) == Some(ScalePhase::ScalingUp));
        controller_slice(env, "idle", &ip).await?;
        let back = wait_phase(env, "idle", ScalePhase::Serving).await?;
        ensure!(
            back.status
                .as_ref()
                .and_then(|s| s.scale_to_zero.as_ref()?.last_request_time.as_ref())
                .is_some(),
            "lastRequestTime recorded"
        );
        wait_for("the proxy slice deleted", 30, || async {
            Ok(slices.get_opt(&proxy).await?.is_none().then_some(()))
        })
        .await?;

        // At zero again, then the activator fails the app (say its image went bad): the pods come
        // back and the status says why.
        go_to_zero(env, port, &ip).await?;
        activator.update(|r| {
            r.apps = vec![ready_app(
                ActivatorAppState::Failed,
                Some("pulling the image: manifest unknown"),
            )]
        });
        let s = wait_condition(
            &apps,
            "idle",
            SCALED_TO_ZERO,
            "False",
            Some("ActivatorFailed"),
        )
        .await?;
        ensure!(
            message(&s, SCALED_TO_ZERO).contains("manifest unknown"),
            "{}",
            message(&s, SCALED_TO_ZERO)
        );
        ensure!(
            s.scale_to_zero.as_ref().and_then(|s| s.phase) == Some(ScalePhase::ScalingUp),
            "{:?}",
            s.scale_to_zero
        );
        wait_child(&deployments, "idle", "replicas back to 1", |d| {
            replicas(d) == Some(1)
        })
        .await?;
        drop(pod);
        Ok(())
    })
}

/// Serving → ScalingDown → AtZero, checking each step's objects. Expects the controller's slice
/// to exist and the Deployment to report its pod ready.
async fn go_to_zero(env: &TestEnv, port: i32, ip: &str) -> anyhow::Result<()> {
    let services = env.api::<Service>();
    let deployments = env.api::<Deployment>();
    let slices = env.api::<EndpointSlice>();
    wait_phase(env, "idle", ScalePhase::ScalingDown).await?;
    let slice = wait_child(
        &slices,
        &proxy_slice_name("idle"),
        "the proxy slice",
        |_| true,
    )
    .await?;
    let labels_ = slice.labels();
    ensure!(labels_.get(SERVICE_NAME_LABEL).map(String::as_str) == Some("idle"));
    ensure!(labels_.get(SLICE_MANAGED_BY_LABEL).map(String::as_str) == Some("wasmpod.io-operator"));
    ensure!(slice.owner_references()[0].name == "idle");
    let addresses: Vec<_> = slice
        .endpoints
        .iter()
        .flat_map(|e| e.addresses.clone())
        .collect();
    ensure!(
        addresses == [ip],
        "only the ready activator address: {addresses:?}"
    );
    let p = &slice.ports.as_ref().context("ports")?[0];
    ensure!(
        p.name.as_deref() == Some("http") && p.port == Some(port),
        "{p:?}"
    );
    let svc = wait_child(&services, "idle", "the Service without selector", |s| {
        selector(s).is_none()
    })
    .await?;
    ensure!(svc.spec.as_ref().and_then(|s| s.ports.as_ref()).is_some());
    let d = deployments.get("idle").await?;
    ensure!(
        replicas(&d) == Some(1),
        "the pods stay until the controller drops them"
    );

    // The controller leaves its slice of a selector-less Service: the operator deletes it.
    wait_for(
        "the operator deleting the controller's slice",
        30,
        || async { Ok(release(env, "idle-ctrl").await?.then_some(())) },
    )
    .await?;
    let app = wait_phase(env, "idle", ScalePhase::AtZero).await?;
    let d = wait_child(&deployments, "idle", "zero replicas", |d| {
        replicas(d) == Some(0)
    })
    .await?;
    // What the Deployment controller reports once the pods are gone.
    let status = json!({"status": {"observedGeneration": d.metadata.generation, "replicas": 0,
                                   "readyReplicas": 0, "updatedReplicas": 0, "availableReplicas": 0}});
    deployments
        .patch_status("idle", &PatchParams::default(), &Patch::Merge(status))
        .await?;
    let s = app.status.context("status")?;
    ensure!(
        s.condition(SCALED_TO_ZERO)
            .is_some_and(|c| c.status == "True" && c.reason == "Idle"),
        "{:?}",
        s.condition(SCALED_TO_ZERO)
    );
    let apps = env.api::<WasmApp>();
    if let Err(e) = wait_condition(&apps, "idle", READY, "True", Some("ScaledToZero")).await {
        let status = apps.get("idle").await?.status;
        return Err(e.context(format!("last status {status:#?}")));
    }
    Ok(())
}
