//! One reconcile's scale-to-zero step: gather the facts (activator endpoints and reports, the
//! Service's slices, ready pods, traffic), run [`decide::next`], and say what to build.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::decide::{self, ActivatorView, Facts, Step};
use crate::controller::Context;
use crate::crd::{ComponentKind, ScalePhase, ScaleToZeroStatus, WasmApp};
use crate::resources::endpoints::{self, SERVICE_NAME_LABEL};
use crate::{Error, Result};

/// What the reconcile does for scale to zero.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The step [`decide::next`] chose.
    pub step: Step,
    /// `status.scaleToZero`; `None` for a plain app.
    pub status: Option<ScaleToZeroStatus>,
    /// The proxy slice to apply (before the Service) when the step wants it.
    pub proxy_slice: Option<EndpointSlice>,
    /// Names of the endpointslice controller's (live) slices of the Service, to delete when the
    /// step says so.
    pub controller_slices: Vec<String>,
    /// When to look again, if sooner than the periodic resync.
    pub requeue: Option<Duration>,
}

/// The plan for `app`, whose pods run `kind` with `digest`; `None` for an app that never had
/// scale to zero (nothing to read, nothing to clean up).
pub async fn plan(
    ctx: &Context,
    app: &WasmApp,
    ns: &str,
    kind: Option<ComponentKind>,
    digest: Option<&str>,
    now: Timestamp,
) -> Result<Option<Plan>> {
    let previous = app.status.as_ref().and_then(|s| s.scale_to_zero.clone());
    let config = app.spec.scale_to_zero.as_ref();
    if config.is_none() && previous.is_none() {
        return Ok(None);
    }
    let previous = previous.unwrap_or_default();
    let name = app.name_any();
    let key = format!("{ns}/{name}");
    let held = previous.activator_port.and_then(|p| u16::try_from(p).ok());
    let port = match config {
        Some(_) => Some(
            ctx.scaling
                .port_for(&key, held)
                .ok_or_else(|| Error::NoActivatorPort(key.clone()))?,
        ),
        None => held,
    };

    let settings = &ctx.options.scaling;
    let (activators, unseen) = activator_addresses(ctx).await;
    let own = slices(ctx, ns, &name).await?;
    let controller: Vec<_> = own
        .iter()
        // The mirroring controller's slice too: it copies the Endpoints object, which the
        // endpoints controller also leaves behind once the selector is gone.
        .filter(|s| endpoints::is_controller_slice(s) || endpoints::is_mirrored_slice(s))
        .collect();
    let live: Vec<_> = controller
        .iter()
        .copied()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .collect();
    let proxy_name = endpoints::proxy_slice_name(&name);
    let pods_ready = ctx
        .api::<Deployment>(ns)
        .get_opt(&name)
        .await?
        .and_then(|d| d.status?.ready_replicas)
        .unwrap_or(0);

    let app_key = (ns.to_string(), name.clone());
    let recorded = previous.last_request_time.as_ref().map(|t| t.0);
    let idle_seconds = config.map_or(crate::crd::DEFAULT_IDLE_SECONDS, |c| c.idle_seconds);
    let (view, base, last_seen) = {
        let tracker = ctx.scaling.tracker();
        let view = match &unseen {
            // Not being able to see the activator is a reason to stay on the pods, not a
            // failed reconcile: the condition says why.
            Some(e) => ActivatorView::Unavailable {
                reason: decide::reason::ACTIVATOR_NOT_READY,
                message: format!(
                    "cannot read the endpoints of the activator Service {}: {e}",
                    settings.service_ref()
                ),
            },
            None => decide::activator_view(
                tracker.reports(&activators),
                ns,
                &name,
                digest,
                &settings.service_ref(),
            ),
        };
        let base = tracker.idle_base(&app_key, recorded);
        (view, base, tracker.last_seen(&app_key))
    };
    let deadline = base + SignedDuration::from_secs(i64::from(idle_seconds));
    let facts = Facts {
        enabled: config.is_some(),
        not_http: kind.filter(|k| !k.serves_http()).map(ComponentKind::as_str),
        idle: now >= deadline,
        woken: woken(last_seen, recorded),
        activator: view,
        pods_ready,
        serving_endpoints: endpoints::ready_addresses(live.iter().copied()).len(),
        controller_slices: controller.len(),
        proxy_slice_exists: own.iter().any(|s| s.name_any() == proxy_name),
        idle_seconds,
    };
    let phase = previous.phase.unwrap_or_default();
    let step = decide::next(phase, &facts);
    tracing::debug!(?phase, ?facts, ?step, "scale to zero");

    let status = status_after(&step, &previous, port, base, now);
    if status.is_none() {
        ctx.scaling.release_port(&key);
    }
    let proxy_slice = match (step.proxy_slice, port) {
        (true, Some(port)) => Some(endpoints::proxy_slice(app, port, &activators)?),
        _ => None,
    };
    let requeue = requeue_after(&step, &facts, deadline, now, settings.poll_interval);
    Ok(Some(Plan {
        step,
        status,
        proxy_slice,
        controller_slices: live.iter().map(|s| s.name_any()).collect(),
        requeue,
    }))
}

/// Whether a request was seen after the one recorded (the app went to zero since).
fn woken(last_seen: Option<Timestamp>, recorded: Option<Timestamp>) -> bool {
    match (last_seen, recorded) {
        (Some(seen), Some(recorded)) => seen > recorded,
        (seen, None) => seen.is_some(),
        (None, Some(_)) => false,
    }
}

/// `status.scaleToZero` after `step`: `lastRequestTime` moves on a phase change (to what
/// idleness was measured from, so a later request wakes an app at zero) and to now when the pods
/// took the Service back.
fn status_after(
    step: &Step,
    previous: &ScaleToZeroStatus,
    port: Option<u16>,
    base: Timestamp,
    now: Timestamp,
) -> Option<ScaleToZeroStatus> {
    let phase = step.phase?;
    let last_request_time = if step.served_again {
        Some(Time(whole_second_up(now)))
    } else if Some(phase) != previous.phase {
        Some(Time(whole_second_up(base)))
    } else {
        previous.last_request_time.clone()
    };
    Some(ScaleToZeroStatus {
        activator_port: port.map(i32::from),
        phase: Some(phase),
        last_request_time,
    })
}

/// When to reconcile again: every poll mid-transition, at the idle deadline of an app the
/// activator can take; otherwise the poller or a watch event brings the next reconcile.
fn requeue_after(
    step: &Step,
    facts: &Facts,
    deadline: Timestamp,
    now: Timestamp,
    poll: Duration,
) -> Option<Duration> {
    match step.phase? {
        ScalePhase::ScalingDown | ScalePhase::ScalingUp => Some(poll),
        ScalePhase::Serving if step.proxy_slice => Some(poll),
        ScalePhase::Serving if facts.activator == ActivatorView::Ready => {
            let left = deadline
                .duration_since(now)
                .max(SignedDuration::from_secs(1));
            Some(Duration::try_from(left).unwrap_or(poll))
        }
        _ => None,
    }
}

/// The ready addresses of the activator's Service, or why they cannot be read.
async fn activator_addresses(ctx: &Context) -> (Vec<String>, Option<Error>) {
    let settings = &ctx.options.scaling;
    match slices(
        ctx,
        &settings.activator_namespace,
        &settings.activator_service,
    )
    .await
    {
        Ok(found) => (endpoints::ready_addresses(&found), None),
        Err(e) => (Vec::new(), Some(e)),
    }
}

/// `t` rounded up to a whole second: a Kubernetes `Time` keeps only seconds, and a request seen
/// at 12:00:00.6 must not look later than a recorded 12:00:00.6 read back as 12:00:00.
fn whole_second_up(t: Timestamp) -> Timestamp {
    let up = i64::from(t.subsec_nanosecond() > 0);
    Timestamp::from_second(t.as_second().saturating_add(up)).unwrap_or(t)
}

/// The EndpointSlices of Service `namespace/service`.
async fn slices(ctx: &Context, namespace: &str, service: &str) -> Result<Vec<EndpointSlice>> {
    let api: Api<EndpointSlice> = ctx.api(namespace);
    let params = ListParams::default().labels(&format!("{SERVICE_NAME_LABEL}={service}"));
    Ok(api.list(&params).await?.items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_000_000 + secs).unwrap()
    }

    #[test]
    fn a_request_after_the_recorded_one_wakes_the_app() {
        assert!(!woken(None, None));
        assert!(woken(Some(at(1)), None));
        assert!(!woken(Some(at(1)), Some(at(1))));
        assert!(woken(Some(at(2)), Some(at(1))));
        assert!(!woken(None, Some(at(1))));
    }

    #[test]
    fn last_request_time_moves_on_phase_changes_and_when_the_pods_take_over() {
        let step = |phase, served_again| Step {
            phase: Some(phase),
            selector: true,
            proxy_slice: false,
            zero: false,
            condition: None,
            served_again,
            drop_controller_slices: false,
        };
        let previous = ScaleToZeroStatus {
            activator_port: Some(20001),
            phase: Some(ScalePhase::Serving),
            last_request_time: Some(Time(at(0))),
        };
        let same = status_after(
            &step(ScalePhase::Serving, false),
            &previous,
            Some(20001),
            at(5),
            at(9),
        );
        assert_eq!(same.unwrap().last_request_time, Some(Time(at(0))));
        let down = status_after(
            &step(ScalePhase::ScalingDown, false),
            &previous,
            Some(20001),
            at(5),
            at(9),
        )
        .unwrap();
        assert_eq!(down.last_request_time, Some(Time(at(5))));
        assert_eq!(down.activator_port, Some(20001));
        let back = status_after(
            &step(ScalePhase::Serving, true),
            &previous,
            Some(20001),
            at(5),
            at(9),
        );
        assert_eq!(back.unwrap().last_request_time, Some(Time(at(9))));
        let plain = Step {
            phase: None,
            ..step(ScalePhase::Serving, false)
        };
        assert!(status_after(&plain, &previous, None, at(5), at(9)).is_none());
    }

    #[test]
    fn recorded_times_round_up_to_what_the_apiserver_keeps() {
        let t = Timestamp::from_second(100).unwrap();
        assert_eq!(whole_second_up(t), t);
        let later = t + SignedDuration::from_millis(600);
        assert_eq!(whole_second_up(later), Timestamp::from_second(101).unwrap());
        assert!(whole_second_up(later) >= later);
    }
}
