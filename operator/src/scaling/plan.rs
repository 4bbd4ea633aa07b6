//! One reconcile's scale-to-zero step: gather the facts (activator endpoints and reports, the
//! Service's slices, ready pods, traffic), run [`decide::next`], and say what to build.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};

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
    // Not being able to see the activator is a reason to stay on the pods, not a failed
    // reconcile: the condition says why.
    let (activators, unseen) = match slices(
        ctx,
        &settings.activator_namespace,
        &settings.activator_service,
    )
    .await
    {
        Ok(found) => (endpoints::ready_addresses(&found), None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let mut own = slices(ctx, ns, &name).await?;
    if previous.phase == Some(ScalePhase::ScalingDown) {
        drop_orphaned_controller_slices(ctx, ns, &name, &mut own).await?;
    }
    let controller: Vec<_> = own
        .iter()
        .filter(|s| endpoints::is_controller_slice(s) || endpoints::is_mirrored_slice(s))
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
        (
            view,
            tracker.idle_base(&app_key, recorded),
            tracker.last_seen(&app_key),
        )
    };
    let deadline = base + SignedDuration::from_secs(i64::from(idle_seconds));
    let facts = Facts {
        enabled: config.is_some(),
        not_http: kind.filter(|k| !k.serves_http()).map(ComponentKind::as_str),
        idle: now >= deadline,
        woken: match (last_seen, recorded) {
            (Some(seen), Some(recorded)) => seen > recorded,
            (seen, None) => seen.is_some(),
            (None, Some(_)) => false,
        },
        activator: view,
        pods_ready,
        serving_endpoints: endpoints::ready_addresses(controller.iter().copied()).len(),
        controller_slices: controller.len(),
        proxy_slice_exists: own.iter().any(|s| s.name_any() == proxy_name),
        idle_seconds,
    };
    let phase = previous.phase.unwrap_or_default();
    let step = decide::next(phase, &facts);
    tracing::debug!(?phase, ?facts, ?step, "scale to zero");

    let status = step.phase.map(|p| ScaleToZeroStatus {
        activator_port: port.map(i32::from),
        phase: Some(p),
        last_request_time: if step.served_again {
            Some(Time(whole_second_up(now)))
        } else if Some(p) != previous.phase {
            // What idleness was measured from: a request after it wakes an app at zero.
            Some(Time(whole_second_up(base)))
        } else {
            previous.last_request_time.clone()
        },
    });
    if status.is_none() {
        ctx.scaling.release_port(&key);
    }
    let proxy_slice = match (step.proxy_slice, port) {
        (true, Some(port)) => Some(endpoints::proxy_slice(app, port, &activators)?),
        _ => None,
    };
    let requeue = match step.phase {
        Some(ScalePhase::ScalingDown | ScalePhase::ScalingUp) => Some(settings.poll_interval),
        Some(ScalePhase::Serving) if step.proxy_slice => Some(settings.poll_interval),
        Some(ScalePhase::Serving) if matches!(facts.activator, ActivatorView::Ready) => {
            let left = deadline
                .duration_since(now)
                .max(SignedDuration::from_secs(1));
            Some(Duration::try_from(left).unwrap_or(settings.poll_interval))
        }
        _ => None,
    };
    Ok(Some(Plan {
        step,
        status,
        proxy_slice,
        requeue,
    }))
}

/// The endpointslice and endpoints controllers skip a Service without a selector and leave what
/// they made for it: the slices, and the Endpoints object, which the mirroring controller then
/// copies into a slice of its own. Their pod addresses would stay in kube-proxy's rules after
/// the pods are gone. Once the live Service has no selector (ScalingDown applied it so), the
/// operator deletes them all; the controllers make new ones when the selector is back.
async fn drop_orphaned_controller_slices(
    ctx: &Context,
    ns: &str,
    service: &str,
    own: &mut Vec<EndpointSlice>,
) -> Result<()> {
    let live = ctx.api::<Service>(ns).get_opt(service).await?;
    let selectorless = live
        .and_then(|s| s.spec)
        .is_some_and(|spec| spec.selector.as_ref().is_none_or(|s| s.is_empty()));
    if !selectorless {
        return Ok(());
    }
    let legacy: Api<Endpoints> = ctx.api(ns);
    match legacy.delete(service, &DeleteParams::default()).await {
        Ok(_) => tracing::info!(%service, "deleted the Endpoints of a Service without selector"),
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    let api: Api<EndpointSlice> = ctx.api(ns);
    let orphaned =
        |s: &EndpointSlice| endpoints::is_controller_slice(s) || endpoints::is_mirrored_slice(s);
    for slice in own.iter().filter(|s| orphaned(s)) {
        let name = slice.name_any();
        tracing::info!(%service, slice = %name, "deleting the endpointslice controller's slice of a Service without selector");
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    own.retain(|s| !orphaned(s));
    Ok(())
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

    #[test]
    fn recorded_times_round_up_to_what_the_apiserver_keeps() {
        let t = Timestamp::from_second(100).unwrap();
        assert_eq!(whole_second_up(t), t);
        let later = t + SignedDuration::from_millis(600);
        assert_eq!(whole_second_up(later), Timestamp::from_second(101).unwrap());
        assert!(whole_second_up(later) >= later);
    }
}
