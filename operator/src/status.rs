//! Pure status computation: children + image check → `WasmApp.status`.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::crd::{
    CAPABILITIES_READY, DEGRADED, IMAGE_VALID, PROGRESSING, READY, SCALED_TO_ZERO, ScalePhase,
    ScaleToZeroStatus, WasmApp, WasmAppStatus,
};
use crate::image::{ImageCheck, ImageFacts};
use crate::resolve::Resolution;
use crate::resources::labels;

/// Everything the operator observed in one reconcile.
#[derive(Clone, Debug, Default)]
pub struct Observation<'a> {
    /// Result of inspecting `spec.image`; `None` before any inspection.
    pub image: Option<&'a ImageCheck>,
    /// The image the pods run (the new one when valid, else the previous one).
    pub running: Option<&'a ImageFacts>,
    /// The Deployment as applied (with its status), if it exists.
    pub deployment: Option<&'a Deployment>,
    /// Whether a Service is wanted, and whether it exists.
    pub service_wanted: bool,
    /// Whether the Service exists.
    pub service_exists: bool,
    /// URL of the Service, when it exists.
    pub url: Option<String>,
    /// Why applying children failed, if it did.
    pub apply_error: Option<String>,
    /// Whether the Secret and ConfigMap keys the capabilities read exist; `None` when not
    /// checked (nothing referenced).
    pub capabilities: Option<&'a Resolution>,
    /// Scale to zero, as this reconcile decided it: `status.scaleToZero` and the `ScaledToZero`
    /// condition (`None` for both on a plain app). `None`: the app never had scale to zero.
    pub scale_to_zero: Option<(Option<ScaleToZeroStatus>, Option<Verdict>)>,
}

impl Observation<'_> {
    fn phase(&self) -> Option<ScalePhase> {
        self.scale_to_zero
            .as_ref()
            .and_then(|(s, _)| s.as_ref()?.phase)
    }
}

/// A condition before timestamps are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

fn verdict(status: &'static str, reason: impl Into<String>, message: impl Into<String>) -> Verdict {
    Verdict {
        status,
        reason: reason.into(),
        message: message.into(),
    }
}

/// What the Deployment says about the rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Rollout {
    desired: i32,
    replicas: i32,
    ready: i32,
    updated: i32,
    available: i32,
    complete: bool,
    /// `Progressing=False/ProgressDeadlineExceeded`: message.
    stalled: Option<String>,
    /// `ReplicaFailure=True`: (reason, message).
    failure: Option<(String, String)>,
}

fn rollout(d: &Deployment, fallback_desired: i32) -> Rollout {
    let st = d.status.clone().unwrap_or_default();
    let desired = d
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(fallback_desired);
    let observed = match (d.metadata.generation, st.observed_generation) {
        (Some(generation), Some(observed)) => observed >= generation,
        (None, _) => true,
        (Some(_), None) => false,
    };
    let (replicas, ready, updated, available) = (
        st.replicas.unwrap_or(0),
        st.ready_replicas.unwrap_or(0),
        st.updated_replicas.unwrap_or(0),
        st.available_replicas.unwrap_or(0),
    );
    let conditions = st.conditions.unwrap_or_default();
    let stalled = conditions
        .iter()
        .find(|c| {
            c.type_ == "Progressing"
                && c.status == "False"
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        })
        .map(|c| c.message.clone().unwrap_or_default());
    let failure = conditions
        .iter()
        .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_else(|| "ReplicaFailure".into()),
                c.message.clone().unwrap_or_default(),
            )
        });
    Rollout {
        desired,
        replicas,
        ready,
        updated,
        available,
        complete: observed && updated >= desired && replicas <= updated && available >= desired,
        stalled,
        failure,
    }
}

/// The five conditions, in order Ready, Progressing, Degraded, ImageValid, CapabilitiesReady.
pub fn verdicts(app: &WasmApp, obs: &Observation<'_>) -> [(&'static str, Verdict); 5] {
    let image = match obs.image {
        Some(ImageCheck::Valid(f)) => verdict(
            "True",
            "ImageResolved",
            format!(
                "{} resolved to {} ({:?}, {} component{})",
                f.image,
                f.digest,
                f.format,
                f.kind.as_str(),
                f.world
                    .as_ref()
                    .map(|w| format!(", world {w}"))
                    .unwrap_or_default()
            ),
        ),
        Some(ImageCheck::Invalid { reason, message }) => verdict("False", *reason, message.clone()),
        Some(ImageCheck::Unknown { reason, message }) => {
            verdict("Unknown", *reason, message.clone())
        }
        None => verdict(
            "Unknown",
            "Inspecting",
            "the image has not been inspected yet",
        ),
    };
    let invalid = matches!(obs.image, Some(ImageCheck::Invalid { .. }));
    let r = obs.deployment.map(|d| rollout(d, app.spec.replicas));
    let counts = |r: &Rollout| {
        format!(
            "{}/{} replicas ready, {} updated, {} available",
            r.ready, r.desired, r.updated, r.available
        )
    };

    let (ready, progressing, degraded) = match (&r, invalid, &obs.apply_error) {
        (_, true, _) => {
            let still = match &r {
                Some(r) if r.replicas > 0 => format!(
                    "; {} pods keep running {}",
                    r.replicas,
                    obs.running
                        .map_or("the previous image", |f| f.image.as_str())
                ),
                _ => String::new(),
            };
            let msg = format!("{}{still}", image.message);
            (
                verdict("False", image.reason.clone(), msg.clone()),
                verdict(
                    "False",
                    image.reason.clone(),
                    "not rolling out an invalid image",
                ),
                verdict("True", image.reason.clone(), msg),
            )
        }
        (_, false, Some(err)) => (
            verdict("False", "ApplyFailed", err.clone()),
            verdict("False", "ApplyFailed", err.clone()),
            verdict("True", "ApplyFailed", err.clone()),
        ),
        (None, false, None) => held_by_capabilities(
            obs,
            (
                verdict("False", "Pending", "the Deployment does not exist yet"),
                verdict("True", "Creating", "creating the Deployment"),
                verdict("False", "AsExpected", "no problem found"),
            ),
        ),
        (Some(r), false, None) => held_by_capabilities(obs, rollout_verdicts(r, obs, counts(r))),
    };
    [
        (READY, ready),
        (PROGRESSING, progressing),
        (DEGRADED, degraded),
        (IMAGE_VALID, image),
        (CAPABILITIES_READY, capabilities_verdict(obs.capabilities)),
    ]
}

/// A missing Secret or ConfigMap key that a capability reads keeps the new pods from starting:
/// the app is not Ready and is Degraded for that reason, whatever the rollout says. The
/// Deployment is applied all the same (its new pods wait in `CreateContainerConfigError`, its old
/// ones keep serving) so the pods start as soon as the object appears.
fn held_by_capabilities(
    obs: &Observation<'_>,
    (ready, progressing, degraded): (Verdict, Verdict, Verdict),
) -> (Verdict, Verdict, Verdict) {
    match obs.capabilities.and_then(|c| Some((c.reason()?, c))) {
        Some((reason, c)) => {
            let msg = format!("{}; new pods cannot start until it exists", c.message());
            (
                verdict("False", reason, msg.clone()),
                progressing,
                verdict("True", reason, msg),
            )
        }
        None => (ready, progressing, degraded),
    }
}

/// `CapabilitiesReady`: whether every Secret and ConfigMap key the capabilities read exists.
fn capabilities_verdict(c: Option<&Resolution>) -> Verdict {
    let Some(c) = c.filter(|c| c.checked > 0) else {
        return verdict(
            "True",
            "Resolved",
            "no capability reads a Secret or ConfigMap",
        );
    };
    if let Some(reason) = c.reason() {
        return verdict("False", reason, c.message());
    }
    let mut msg = format!(
        "every Secret and ConfigMap key the capabilities read exists ({} checked)",
        c.checked
    );
    if !c.unset.is_empty() {
        msg = format!(
            "every required Secret and ConfigMap key exists; optional ones left unset: {}",
            c.unset_message()
        );
    }
    verdict("True", "Resolved", msg)
}

fn rollout_verdicts(
    r: &Rollout,
    obs: &Observation<'_>,
    counts: String,
) -> (Verdict, Verdict, Verdict) {
    let fine = verdict("False", "AsExpected", "no problem found");
    if let Some((reason, message)) = &r.failure {
        let msg = format!("{message} ({counts})");
        return (
            verdict("False", reason.clone(), msg.clone()),
            verdict("True", "RollingOut", counts),
            verdict("True", reason.clone(), msg),
        );
    }
    if let Some(message) = &r.stalled {
        let msg = format!("rollout stalled: {message} ({counts})");
        return (
            verdict("False", "ProgressDeadlineExceeded", msg.clone()),
            verdict("False", "ProgressDeadlineExceeded", msg.clone()),
            verdict("True", "ProgressDeadlineExceeded", msg),
        );
    }
    if !r.complete && obs.phase() == Some(ScalePhase::ScalingUp) {
        // The activator answers the Service while the pods start: the app serves.
        return (
            verdict(
                "True",
                "ScalingUp",
                format!("the activator answers while the pods start ({counts})"),
            ),
            verdict("True", "RollingOut", counts),
            fine,
        );
    }
    if !r.complete {
        return (
            verdict("False", "RollingOut", counts.clone()),
            verdict("True", "RollingOut", counts),
            fine,
        );
    }
    let done = verdict("False", "RolloutComplete", counts.clone());
    if obs.service_wanted && !obs.service_exists {
        return (
            verdict("False", "ServiceMissing", "the Service does not exist yet"),
            done,
            fine,
        );
    }
    let at = obs
        .url
        .as_ref()
        .map(|u| format!(", serving at {u}"))
        .unwrap_or_default();
    let ready = if r.desired == 0 && obs.phase() == Some(ScalePhase::AtZero) {
        verdict(
            "True",
            "ScaledToZero",
            format!("no pods: the activator answers the Service{at}"),
        )
    } else if r.desired == 0 {
        verdict("True", "ScaledToZero", "scaled to zero replicas")
    } else {
        verdict("True", "Ready", format!("{counts}{at}"))
    };
    (ready, done, fine)
}

/// Computes the full status. Conditions keep their `lastTransitionTime` unless their status
/// changed, so an unchanged world yields an identical status (no write, no extra reconcile).
pub fn compute(app: &WasmApp, obs: &Observation<'_>, now: Timestamp) -> WasmAppStatus {
    let previous = app.status.clone().unwrap_or_default();
    let generation = app.metadata.generation;
    let scaled = obs
        .scale_to_zero
        .as_ref()
        .and_then(|(_, v)| v.clone())
        .map(|v| (SCALED_TO_ZERO, v));
    let conditions = verdicts(app, obs)
        .into_iter()
        .chain(scaled)
        .map(|(type_, v)| condition(&previous, type_, v, generation, now))
        .collect();
    let r = obs.deployment.map(|d| rollout(d, app.spec.replicas));
    let name = app.metadata.name.clone().unwrap_or_default();
    WasmAppStatus {
        observed_generation: generation,
        replicas: r.as_ref().map(|r| r.replicas),
        ready_replicas: r.as_ref().map(|r| r.ready),
        updated_replicas: r.as_ref().map(|r| r.updated),
        available_replicas: r.as_ref().map(|r| r.available),
        ready: Some(format!(
            "{}/{}",
            r.as_ref().map_or(0, |r| r.ready),
            app.spec.replicas
        )),
        selector: Some(labels::selector_string(&name)),
        url: obs.url.clone().filter(|_| obs.service_exists),
        image: obs.running.map(|f| f.image.clone()),
        image_digest: obs.running.map(|f| f.digest.clone()),
        image_format: obs.running.map(|f| f.format),
        component_kind: obs.running.map(|f| f.kind),
        component_world: obs.running.and_then(|f| f.world.clone()),
        scale_to_zero: match &obs.scale_to_zero {
            Some((s, _)) => s.clone(),
            None => previous.scale_to_zero.clone(),
        },
        conditions,
    }
}

fn condition(
    previous: &WasmAppStatus,
    type_: &str,
    v: Verdict,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let since = previous
        .condition(type_)
        .filter(|c| c.status == v.status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.into(),
        status: v.status.into(),
        reason: v.reason,
        message: v.message,
        last_transition_time: since,
        observed_generation: generation,
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
