//! One reconcile of one WasmApp: inspect the image, build and apply the children, remove the
//! unwanted ones, write the status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use oci_client::Reference;

use crate::apply::{self, FIELD_MANAGER};
use crate::controller::Context;
use crate::crd::{WasmApp, WasmAppStatus};
use crate::image::auth::{self, Credentials};
use crate::image::{ImageCheck, ImageFacts, cache};
use crate::refs::{self, Content, References};
use crate::resolve::{self, Objects};
use crate::resources::{self, BuildInput, Children, drift, endpoints};
use crate::scaling::plan::{self, Plan};
use crate::status::{self, Observation};
use crate::{Error, Result, events};

/// Reconciles one WasmApp; records metrics around [`reconcile_app`].
pub async fn reconcile(app: Arc<WasmApp>, ctx: Arc<Context>) -> Result<Action> {
    let timer = ctx.metrics.start_reconcile();
    let result = reconcile_app(&app, &ctx).await;
    match &result {
        Ok((_, label)) => {
            timer.finish(label);
            ctx.reset_failures(&app);
        }
        Err(_) => timer.finish("error"),
    }
    result.map(|(action, _)| action)
}

/// What applying the children produced.
#[derive(Default)]
struct Applied {
    deployment: Option<Deployment>,
    service_exists: bool,
    deleted: Vec<String>,
    error: Option<Error>,
}

#[tracing::instrument(skip_all, fields(app = %app.name_any(), namespace = app.namespace().unwrap_or_default()))]
async fn reconcile_app(app: &WasmApp, ctx: &Context) -> Result<(Action, &'static str)> {
    if app.meta().deletion_timestamp.is_some() {
        // Owner-reference garbage collection removes the children.
        return Ok((Action::await_change(), "success"));
    }
    let ns = app
        .namespace()
        .ok_or(Error::MissingField("WasmApp", "metadata.namespace"))?;
    let uid = app
        .uid()
        .ok_or(Error::MissingField("WasmApp", "metadata.uid"))?;
    let refs = refs::references(&app.spec);

    let (creds, missing_secrets) = pull_credentials(ctx, &ns, &refs, &app.spec.image).await?;
    let (check, retry) = inspect(ctx, &app.spec.image, creds.as_ref(), &missing_secrets).await;
    let previous = app.status.as_ref().and_then(ImageFacts::from_status);
    let running = match &check {
        ImageCheck::Valid(facts) => Some(facts.clone()),
        // Keep the pods on the last good image rather than rolling out one that cannot run.
        ImageCheck::Invalid { .. } => previous,
        ImageCheck::Unknown { .. } => previous.filter(|p| p.image == app.spec.image),
    };
    let invalid = matches!(check, ImageCheck::Invalid { .. });

    let objects = referenced_objects(ctx, &ns, &refs).await?;
    let capabilities = resolve::resolve(&refs.capability_keys, &objects);
    let kind = running
        .as_ref()
        .map(|f| f.kind)
        .or_else(|| app.status.as_ref().and_then(|s| s.component_kind));
    let digest = running.as_ref().map(|f| f.digest.as_str());
    let scale = plan::plan(ctx, app, &ns, kind, digest, Timestamp::now()).await?;
    let input = BuildInput {
        image: running.as_ref(),
        config_checksum: refs::checksum(&objects),
        cluster_domain: &ctx.options.cluster_domain,
        at_zero: scale.as_ref().is_some_and(|p| p.step.zero),
        proxied: scale.as_ref().is_some_and(|p| !p.step.selector),
    };
    let children = resources::children(app, &input)?;
    let applied = if invalid && running.is_none() {
        // Nothing good to run: create nothing, report what exists.
        Applied {
            deployment: ctx.api::<Deployment>(&ns).get_opt(&app.name_any()).await?,
            ..Applied::default()
        }
    } else {
        // The proxy slice goes in before the Service loses its selector; if it cannot, the
        // Service is left as it is and the reconcile retries.
        if let Some(slice) = scale.as_ref().and_then(|p| p.proxy_slice.as_ref()) {
            apply::apply(&ctx.api::<EndpointSlice>(&ns), slice).await?;
        }
        let mut applied = apply_children(ctx, &ns, &uid, &children).await;
        if let Some(p) = scale.as_ref().filter(|p| p.step.drop_controller_slices)
            && applied.error.is_none()
        {
            drop_controller_slices(ctx, &ns, &app.name_any(), &p.controller_slices).await?;
        }
        // ... and comes out only after the Service has its selector back.
        if scale.as_ref().is_some_and(|p| !p.step.proxy_slice) && applied.error.is_none() {
            // Not a "ChildRemoved": the slice comes and goes with the phase, not the spec.
            let name = endpoints::proxy_slice_name(&app.name_any());
            let slices = ctx.api::<EndpointSlice>(&ns);
            if let Err(e) = apply::delete_owned(&slices, &name, &uid).await {
                keep_first(&mut applied.error, e);
            }
        }
        applied
    };

    let observation = Observation {
        image: Some(&check),
        running: running.as_ref(),
        deployment: applied.deployment.as_ref(),
        service_wanted: children.service.is_some() && !(invalid && running.is_none()),
        service_exists: applied.service_exists,
        url: resources::service_url(app, &ctx.options.cluster_domain),
        apply_error: applied.error.as_ref().map(ToString::to_string),
        capabilities: Some(&capabilities),
        scale_to_zero: scale
            .as_ref()
            .map(|p| (p.status.clone(), p.step.condition.clone())),
    };
    let new_status = status::compute(app, &observation, Timestamp::now());
    if app.status.as_ref() != Some(&new_status) {
        write_status(ctx, app, &ns, &new_status).await?;
    }
    events::publish(ctx, app, app.status.as_ref(), &new_status, &applied.deleted).await;

    if let Some(error) = applied.error {
        return Err(error);
    }
    let retry = [retry, scale.as_ref().and_then(|p: &Plan| p.requeue)]
        .into_iter()
        .flatten()
        .min();
    Ok(match retry {
        Some(delay) if delay < ctx.options.resync => (Action::requeue(delay), "requeue_after"),
        _ => (Action::requeue(ctx.options.resync), "success"),
    })
}

/// Reads the pull Secrets and picks credentials for the image's registry. Missing Secrets are
/// reported by name (the kubelet also pulls without them).
async fn pull_credentials(
    ctx: &Context,
    ns: &str,
    refs: &References,
    image: &str,
) -> Result<(Option<Credentials>, Vec<String>)> {
    let api = ctx.api::<Secret>(ns);
    let mut secrets = Vec::new();
    let mut missing = Vec::new();
    for name in &refs.pull_secrets {
        match api.get_opt(name).await? {
            Some(s) => secrets.push(s),
            None => missing.push(name.clone()),
        }
    }
    let creds = image
        .parse::<Reference>()
        .ok()
        .and_then(|r| auth::credentials_for(&secrets, r.resolve_registry(), r.repository()));
    Ok((creds, missing))
}

/// Inspects the image through the cache. Returns the check and, for results that should be
/// retried soon (unknown, invalid), the delay.
async fn inspect(
    ctx: &Context,
    image: &str,
    creds: Option<&Credentials>,
    missing_secrets: &[String],
) -> (ImageCheck, Option<Duration>) {
    let key = cache::key(image, creds);
    let (check, fresh_for) = match ctx.images.get(&key, Instant::now()) {
        Some(hit) => hit,
        None => {
            let check = ctx.inspector.inspect(image, creds).await;
            ctx.metrics.inspection(match check {
                ImageCheck::Valid(_) => "valid",
                ImageCheck::Invalid { .. } => "invalid",
                ImageCheck::Unknown { .. } => "unknown",
            });
            let ttl = ctx.images.put(&key, check.clone(), Instant::now());
            (check, ttl)
        }
    };
    let check = match check {
        ImageCheck::Invalid { reason, message }
            if reason == ImageCheck::AUTH_FAILED && !missing_secrets.is_empty() =>
        {
            ImageCheck::Invalid {
                reason,
                message: format!(
                    "{message} (imagePullSecrets not found: {})",
                    missing_secrets.join(", ")
                ),
            }
        }
        other => other,
    };
    let retry = (!matches!(check, ImageCheck::Valid(_))).then_some(fresh_for);
    (check, retry)
}

/// Reads the referenced ConfigMaps and Secrets: for the checksum that rolls the pods and for
/// checking the keys capabilities read. Their content stays in memory; nothing logs it.
async fn referenced_objects(ctx: &Context, ns: &str, refs: &References) -> Result<Objects> {
    let mut objects = Objects::new();
    let cms = ctx.api::<ConfigMap>(ns);
    for name in &refs.config_maps {
        let content = cms.get_opt(name).await?.as_ref().map(Content::from);
        objects.insert(("ConfigMap", name.clone()), content);
    }
    let secrets = ctx.api::<Secret>(ns);
    for name in &refs.secrets {
        let content = secrets.get_opt(name).await?.as_ref().map(Content::from);
        objects.insert(("Secret", name.clone()), content);
    }
    Ok(objects)
}

/// Applies wanted children and deletes unwanted ones. Every child is attempted; the first error
/// is kept for the status and the retry.
async fn apply_children(ctx: &Context, ns: &str, uid: &str, c: &Children) -> Applied {
    let mut out = Applied::default();
    let name = c.deployment.name_any();
    let deployments = ctx.api::<Deployment>(ns);
    let drifted = |live: &Deployment| drift::deployment_drifted(live, &c.deployment);
    match apply::apply_repairing(&deployments, &c.deployment, drifted).await {
        Ok(d) => out.deployment = Some(d),
        Err(e) => out.error = Some(e),
    }
    let services = ctx.api::<Service>(ns);
    match &c.service {
        Some(svc) => match apply_service(&services, svc).await {
            Ok(()) => out.service_exists = true,
            Err(e) => keep_first(&mut out.error, e),
        },
        None => remove(&services, &name, uid, "Service", &mut out).await,
    }
    let hpas = ctx.api::<HorizontalPodAutoscaler>(ns);
    match &c.hpa {
        Some(h) => {
            if let Err(e) = apply::apply(&hpas, h).await {
                keep_first(&mut out.error, e);
            }
        }
        None => remove(&hpas, &name, uid, "HorizontalPodAutoscaler", &mut out).await,
    }
    let pdbs = ctx.api::<PodDisruptionBudget>(ns);
    match &c.pdb {
        Some(p) => {
            if let Err(e) = apply::apply(&pdbs, p).await {
                keep_first(&mut out.error, e);
            }
        }
        None => remove(&pdbs, &name, uid, "PodDisruptionBudget", &mut out).await,
    }
    out
}

/// Applies the Service, repairing hand-edited ports; a Service that must switch between
/// headless and a virtual IP (`clusterIP` cannot change in place) is deleted and created again.
async fn apply_service(api: &Api<Service>, svc: &Service) -> Result<()> {
    let drifted = |live: &Service| drift::service_ports_drifted(live, svc);
    match apply::apply_repairing(api, svc, drifted).await {
        Ok(live) if !drift::service_needs_recreate(&live, svc) => return Ok(()),
        Ok(_) => {}
        Err(e) if apply::is_immutable_field_error(&e) => {}
        Err(e) => return Err(e),
    }
    tracing::info!(service = %svc.name_any(), "recreating the Service to change its clusterIP");
    api.delete(&svc.name_any(), &DeleteParams::background())
        .await?;
    apply::apply(api, svc).await.map(|_| ())
}

async fn remove<K>(api: &Api<K>, name: &str, uid: &str, kind: &str, out: &mut Applied)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    match apply::delete_owned(api, name, uid).await {
        Ok(true) => out.deleted.push(format!("{kind} {name}")),
        Ok(false) => {}
        Err(e) => keep_first(&mut out.error, e),
    }
}

/// Deletes the endpointslice controller's slices of a Service that lost its selector: the
/// controller no longer syncs them, so they would keep listing pods that are about to go. The
/// same for the Service's Endpoints object, which the endpoints controller leaves too and the
/// mirroring controller copies into a slice (deleted with it).
async fn drop_controller_slices(
    ctx: &Context,
    ns: &str,
    service: &str,
    names: &[String],
) -> Result<()> {
    match ctx
        .api::<Endpoints>(ns)
        .delete(service, &DeleteParams::background())
        .await
    {
        Ok(_) => tracing::debug!(%service, "deleted the Endpoints of a Service without selector"),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    let api = ctx.api::<EndpointSlice>(ns);
    for name in names {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => tracing::debug!(slice = %name, "deleted the endpointslice controller's slice"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn keep_first(slot: &mut Option<Error>, e: Error) {
    if slot.is_none() {
        *slot = Some(e);
    } else {
        tracing::warn!(error = %e, "another child failed too");
    }
}

/// Writes the status through the status subresource (server-side apply, same field manager).
async fn write_status(
    ctx: &Context,
    app: &WasmApp,
    ns: &str,
    status: &WasmAppStatus,
) -> Result<()> {
    let body = serde_json::json!({
        "apiVersion": WasmApp::api_version(&()),
        "kind": WasmApp::kind(&()),
        "status": status,
    });
    ctx.api::<WasmApp>(ns)
        .patch_status(
            &app.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(())
}
