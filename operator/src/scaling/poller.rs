//! The activity poller: beside the controller (so only while leading), every poll interval it
//! asks the activator's ready endpoints for their report (`/apps`) and the ready pods of every
//! app that may scale to zero for theirs (`/activity`), feeds the [`Tracker`], and asks the
//! controller to reconcile an app when its idle deadline passed, when a request came while it is
//! at zero, when the activator's view of it changed, and every round while it is mid-transition.
//!
//! A failed poll is logged at debug level. At the activator it counts as no news; at a ready
//! pod it counts as activity (not knowing is not idleness). Pods that just left the Service's
//! endpoints (the app went to zero) are still asked for a while: a request a pod served on its
//! way out wakes the app like any other.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures::channel::mpsc::UnboundedSender;
use futures::future::join_all;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{ObjectRef, Store};
use wasmpod_oci::activity::{ACTIVATOR_APPS_PATH, ACTIVITY_PATH, ActivatorReport, Activity};

use super::decide::{self, ActivatorView};
use super::http::get_json;
use super::tracker::{AppKey, Tracker};
use crate::controller::Context;
use crate::crd::{ScalePhase, WasmApp};
use crate::resources::endpoints::{self, SERVICE_NAME_LABEL};

/// What a round remembers of the last one, to notice changes.
#[derive(Default)]
struct Memory {
    views: HashMap<AppKey, ActivatorView>,
}

/// Polls until `shutdown` resolves. `apps` is the controller's WasmApp store, `slices` a store of
/// the endpointslice controller's slices in the watched namespaces, `trigger` the controller's
/// `reconcile_on` channel.
pub async fn run(
    ctx: Arc<Context>,
    apps: Store<WasmApp>,
    slices: Store<EndpointSlice>,
    trigger: UnboundedSender<ObjectRef<WasmApp>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut memory = Memory::default();
    let mut interval = tokio::time::interval(ctx.options.scaling.poll_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = interval.tick() => {}
        }
        for app in round(&ctx, &apps, &slices, &mut memory).await {
            if trigger.unbounded_send(app).is_err() {
                return;
            }
        }
    }
    tracing::debug!("activity poller stopped");
}

/// One round; returns the apps to reconcile.
async fn round(
    ctx: &Context,
    apps: &Store<WasmApp>,
    slices: &Store<EndpointSlice>,
    memory: &mut Memory,
) -> Vec<ObjectRef<WasmApp>> {
    let settings = &ctx.options.scaling;
    // A failed list is no news: keep the reports of the last round rather than forget them.
    let listed = activator_addresses(ctx).await;
    let activators = listed
        .clone()
        .unwrap_or_else(|| ctx.scaling.tracker().addresses());
    let reports = join_all(activators.iter().map(|a| async move {
        let addr = socket(a, settings.activator_admin_port)?;
        match get_json::<ActivatorReport>(addr, ACTIVATOR_APPS_PATH, settings.poll_timeout).await {
            Ok(r) => Some((a.clone(), r)),
            Err(e) => {
                tracing::debug!(error = %e, "no report from an activator endpoint");
                None
            }
        }
    }))
    .await;

    let apps: Vec<Arc<WasmApp>> = apps
        .state()
        .into_iter()
        .filter(|a| a.spec.scale_to_zero.is_some())
        .collect();
    let pods = poll_pods(ctx, &apps, slices).await;

    let now = Timestamp::now();
    let mut woken = HashSet::new();
    let mut tracker = ctx.scaling.tracker();
    for (address, report) in reports.into_iter().flatten() {
        woken.extend(tracker.activator_report(&address, report, now));
    }
    if listed.is_some() {
        tracker.retain_activators(&activators.iter().cloned().collect());
    }
    for (key, polled) in pods {
        let present = polled.ready.iter().map(|(a, _)| a.clone()).collect();
        for (address, reading) in polled.ready {
            match reading {
                Some(reading) => {
                    if tracker.observe(&key, &format!("pod@{address}"), &reading, now) {
                        woken.insert(key.clone());
                    }
                }
                None => tracker.unheard(&key, now),
            }
        }
        // A pod on its way out that does not answer has simply gone.
        for (address, reading) in polled.lingering {
            if let Some(reading) = reading
                && tracker.observe_lingering(&key, &address, &reading, now)
            {
                woken.insert(key.clone());
            }
        }
        tracker.retain_pods(&key, &present, now, LINGER);
    }
    let keys: HashSet<AppKey> = apps.iter().filter_map(|a| key_of(a)).collect();
    tracker.retain_apps(&keys);
    tracker.warm_up();
    ctx.scaling.retain_ports(|k| {
        keys.iter()
            .any(|(ns, n)| k.split_once('/') == Some((ns, n)))
    });

    let mut due = Vec::new();
    for app in &apps {
        let Some(key) = key_of(app) else { continue };
        let view = decide::activator_view(
            tracker.reports(&activators),
            &key.0,
            &key.1,
            app.status.as_ref().and_then(|s| s.image_digest.as_deref()),
            &settings.service_ref(),
        );
        let changed = memory.views.get(&key) != Some(&view);
        let ready = view == ActivatorView::Ready;
        memory.views.insert(key.clone(), view);
        if changed || wants_reconcile(app, &tracker, &key, ready, woken.contains(&key), now) {
            due.push(ObjectRef::from(app.as_ref()));
        }
    }
    memory.views.retain(|k, _| keys.contains(k));
    due
}

/// Whether the poller should wake the reconcile of `app` now (besides a change in what the
/// activator says of it).
fn wants_reconcile(
    app: &WasmApp,
    tracker: &Tracker,
    key: &AppKey,
    activator_ready: bool,
    request_seen: bool,
    now: Timestamp,
) -> bool {
    let s2z = app.status.as_ref().and_then(|s| s.scale_to_zero.as_ref());
    let phase = s2z.and_then(|s| s.phase).unwrap_or_default();
    let idle_seconds = app
        .spec
        .scale_to_zero
        .as_ref()
        .map_or(crate::crd::DEFAULT_IDLE_SECONDS, |c| c.idle_seconds);
    let recorded = s2z.and_then(|s| s.last_request_time.as_ref()).map(|t| t.0);
    let deadline =
        tracker.idle_base(key, recorded) + SignedDuration::from_secs(i64::from(idle_seconds));
    match phase {
        // Past the deadline only an app the activator can take is worth a reconcile; the others
        // wait for the activator's view of them to change.
        ScalePhase::Serving => {
            (activator_ready && now >= deadline) || s2z.and_then(|s| s.activator_port).is_none()
        }
        ScalePhase::AtZero => request_seen,
        ScalePhase::ScalingDown | ScalePhase::ScalingUp => true,
    }
}

fn key_of(app: &WasmApp) -> Option<AppKey> {
    Some((app.namespace()?, app.metadata.name.clone()?))
}

fn socket(address: &str, port: u16) -> Option<SocketAddr> {
    address
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port))
}

/// The activator's ready addresses, listed fresh (its Service lives outside the watched
/// namespaces).
async fn activator_addresses(ctx: &Context) -> Option<Vec<String>> {
    let settings = &ctx.options.scaling;
    let api: Api<EndpointSlice> = ctx.api(&settings.activator_namespace);
    let params = ListParams::default().labels(&format!(
        "{SERVICE_NAME_LABEL}={}",
        settings.activator_service
    ));
    match api.list(&params).await {
        Ok(list) => Some(endpoints::ready_addresses(&list.items)),
        Err(e) => {
            tracing::debug!(error = %e, service = %settings.service_ref(), "cannot list the activator's endpoints");
            None
        }
    }
}

type Readings = Vec<(String, Option<Activity>)>;

/// How long a pod that left its Service's endpoints is still asked for its counters after it
/// last answered: past the preStop delay of a pod going away, with room for a slow poll.
const LINGER: SignedDuration = SignedDuration::from_secs(10);

/// One app's pod readings: the ready endpoints behind its Service, and the pods that left them
/// lately ([`Tracker::lingering_pods`]).
struct PodReadings {
    ready: Readings,
    lingering: Readings,
}

async fn poll_addresses(
    addresses: Vec<String>,
    port: u16,
    timeout: std::time::Duration,
) -> Readings {
    join_all(addresses.into_iter().map(|a| async move {
        let reading = match socket(&a, port) {
            Some(addr) => get_json::<Activity>(addr, ACTIVITY_PATH, timeout)
                .await
                .inspect_err(|e| tracing::debug!(error = %e, "no activity report from a pod"))
                .ok(),
            None => None,
        };
        (a, reading)
    }))
    .await
}

/// Polls the ready pods behind the Service of every app that may serve from its pods, and the
/// pods that left it lately.
async fn poll_pods(
    ctx: &Context,
    apps: &[Arc<WasmApp>],
    slices: &Store<EndpointSlice>,
) -> Vec<(AppKey, PodReadings)> {
    let settings = &ctx.options.scaling;
    let all = slices.state();
    let now = Timestamp::now();
    let polls = apps.iter().filter_map(|app| {
        let key = key_of(app)?;
        let mine: Vec<_> = all
            .iter()
            .filter(|s| s.namespace().as_deref() == Some(key.0.as_str()))
            .filter(|s| s.labels().get(SERVICE_NAME_LABEL) == Some(&key.1))
            .filter(|s| endpoints::is_controller_slice(s))
            .map(AsRef::as_ref)
            .collect();
        let addresses = endpoints::ready_addresses(mine);
        let lingering = ctx
            .scaling
            .tracker()
            .lingering_pods(&key, &addresses, now, LINGER);
        let (port, timeout) = (settings.activity_port, settings.poll_timeout);
        Some(async move {
            let (ready, lingering) = futures::join!(
                poll_addresses(addresses, port, timeout),
                poll_addresses(lingering, port, timeout)
            );
            (key, PodReadings { ready, lingering })
        })
    });
    join_all(polls).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_000_000 + secs).unwrap()
    }

    fn app(phase: &str) -> WasmApp {
        serde_json::from_value(json!({
            "apiVersion": "wasmpod.io/v1alpha1", "kind": "WasmApp",
            "metadata": {"name": "hello", "namespace": "apps"},
            "spec": {"image": "r/x:1", "scaleToZero": {"idleSeconds": 10}},
            "status": {"scaleToZero": {"activatorPort": 20001, "phase": phase}},
        }))
        .unwrap()
    }

    #[test]
    fn reconciles_are_asked_for_at_the_deadline_on_a_request_at_zero_and_mid_transition() {
        let tracker = Tracker::new(at(0));
        let key = ("apps".to_string(), "hello".to_string());
        let serving = app("Serving");
        assert!(!wants_reconcile(
            &serving,
            &tracker,
            &key,
            true,
            false,
            at(5)
        ));
        assert!(wants_reconcile(
            &serving,
            &tracker,
            &key,
            true,
            false,
            at(10)
        ));
        assert!(
            !wants_reconcile(&serving, &tracker, &key, false, false, at(60)),
            "an idle app the activator cannot take waits for the activator's view to change"
        );
        let zero = app("AtZero");
        assert!(!wants_reconcile(&zero, &tracker, &key, true, false, at(60)));
        assert!(wants_reconcile(&zero, &tracker, &key, true, true, at(60)));
        for phase in ["ScalingDown", "ScalingUp"] {
            assert!(wants_reconcile(
                &app(phase),
                &tracker,
                &key,
                false,
                false,
                at(1)
            ));
        }
    }
}
