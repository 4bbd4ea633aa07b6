//! The scale-to-zero state machine, as pure functions: what the activator can do for an app,
//! and given the phase and the facts of one reconcile, the next step.
//!
//! Knative's Serve/Proxy switch with Kubernetes' own objects: in Serve mode the app's Service
//! selects its pods; in Proxy mode the Service has no selector and an EndpointSlice of the
//! operator's points it at the activator. Every step keeps a ready endpoint behind the Service
//! while one is possible: the proxy slice goes in before the selector goes out, and comes out
//! only once the endpointslice controller's own slice has a ready pod.

use wasmpod_oci::activity::{ActivatorAppState, ActivatorReport};

use crate::crd::ScalePhase;
use crate::status::Verdict;

/// Condition reasons of `ScaledToZero`.
pub mod reason {
    /// True: at zero, the activator answers.
    pub const IDLE: &str = "Idle";
    /// False: the pods serve.
    pub const SERVING: &str = "Serving";
    /// False: the activator is taking the Service over.
    pub const SCALING_DOWN: &str = "ScalingDown";
    /// False: the pods are coming back.
    pub const SCALING_UP: &str = "ScalingUp";
    /// False: no ready activator endpoint, or it does not serve the app.
    pub const ACTIVATOR_NOT_READY: &str = "ActivatorNotReady";
    /// False: the activator cannot serve the app (its error is the message).
    pub const ACTIVATOR_FAILED: &str = "ActivatorFailed";
    /// False: only HTTP components go to zero.
    pub const NOT_HTTP: &str = "NotHTTP";
    /// False: `spec.scaleToZero` was removed while the app was not serving from its pods.
    pub const DISABLED: &str = "Disabled";
}

/// What the activator can do for one app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActivatorView {
    /// A ready activator endpoint reports the app ready with the app's digest.
    Ready,
    /// Not yet (no report since the operator started, preparing, an older digest): the app does
    /// not go to zero, but an app at zero stays there.
    Pending(String),
    /// It cannot serve the app: never go to zero, and leave zero.
    Unavailable {
        /// [`reason::ACTIVATOR_NOT_READY`] or [`reason::ACTIVATOR_FAILED`].
        reason: &'static str,
        /// Why, with the activator's own error where it gave one.
        message: String,
    },
}

/// Judges the reports of the activator's ready endpoints (`None`: not heard from yet) for the
/// app `namespace/name`, whose pods run `digest`. `service` names the activator's Service.
pub fn activator_view<'a>(
    reports: impl IntoIterator<Item = (&'a str, Option<&'a ActivatorReport>)>,
    namespace: &str,
    name: &str,
    digest: Option<&str>,
    service: &str,
) -> ActivatorView {
    let reports: Vec<_> = reports.into_iter().collect();
    let not_ready = |message: String| ActivatorView::Unavailable {
        reason: reason::ACTIVATOR_NOT_READY,
        message,
    };
    if reports.is_empty() {
        return not_ready(format!(
            "the activator Service {service} has no ready endpoint"
        ));
    }
    let heard: Vec<_> = reports
        .iter()
        .filter_map(|(address, r)| Some((*address, (*r)?.app(namespace, name))))
        .collect();
    if heard.is_empty() {
        return ActivatorView::Pending("no report from the activator yet".into());
    }
    let Some(digest) = digest else {
        return ActivatorView::Pending("the app's image digest is not known yet".into());
    };
    let apps: Vec<_> = heard
        .iter()
        .filter_map(|(address, app)| Some((*address, (*app)?)))
        .collect();
    if apps
        .iter()
        .any(|(_, a)| a.state == ActivatorAppState::Ready && a.digest.as_deref() == Some(digest))
    {
        return ActivatorView::Ready;
    }
    if let Some((address, app)) = apps
        .iter()
        .find(|(_, a)| a.state == ActivatorAppState::Failed)
    {
        return ActivatorView::Unavailable {
            reason: reason::ACTIVATOR_FAILED,
            message: format!(
                "the activator at {address} cannot serve the app: {}",
                app.error.as_deref().unwrap_or("no error given")
            ),
        };
    }
    match apps.first() {
        None => not_ready(format!(
            "the activator ({service}) does not list the app yet"
        )),
        Some((_, a)) if a.state == ActivatorAppState::Preparing => ActivatorView::Pending(format!(
            "the activator is preparing {}",
            a.digest.as_deref().unwrap_or(digest)
        )),
        Some((_, a)) => ActivatorView::Pending(format!(
            "the activator has {} ready, the pods run {digest}",
            a.digest.as_deref().unwrap_or("no digest")
        )),
    }
}

/// What one reconcile knows about an app that may scale to zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// `spec.scaleToZero` is set.
    pub enabled: bool,
    /// The component serves HTTP (`http` or `unknown`); `Some(kind)` names it when it does not.
    pub not_http: Option<&'static str>,
    /// No request for `idleSeconds`.
    pub idle: bool,
    /// A request was seen after the app last went to zero.
    pub woken: bool,
    /// What the activator can do for the app.
    pub activator: ActivatorView,
    /// Ready replicas of the app's Deployment.
    pub pods_ready: i32,
    /// Ready endpoints in the endpointslice controller's slices of the Service (not terminating).
    pub serving_endpoints: usize,
    /// Slices of the endpointslice controller for the Service, terminating ones included (the
    /// operator deletes them once the selector is gone).
    pub controller_slices: usize,
    /// The operator's proxy slice exists.
    pub proxy_slice_exists: bool,
    /// `spec.scaleToZero.idleSeconds`, for messages.
    pub idle_seconds: i32,
}

/// What to do in this reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The phase to record; `None`: the app is plain (no scale to zero, no condition).
    pub phase: Option<ScalePhase>,
    /// The Service selects the app's pods.
    pub selector: bool,
    /// The proxy EndpointSlice (Service → activator) is wanted; otherwise it is deleted.
    pub proxy_slice: bool,
    /// The Deployment runs 0 replicas.
    pub zero: bool,
    /// The `ScaledToZero` condition (none for a plain app).
    pub condition: Option<Verdict>,
    /// The pods took the Service back from the activator: record now as the last request.
    pub served_again: bool,
    /// Delete the endpointslice controller's slices of the Service: it stops syncing a Service
    /// without a selector and would leave them, stale, beside the proxy slice. Only from the
    /// reconcile after the one that removed the selector, so the controller has seen it go.
    pub drop_controller_slices: bool,
}

fn v(status: &'static str, reason: &str, message: String) -> Verdict {
    Verdict {
        status,
        reason: reason.into(),
        message,
    }
}

/// Why the app must not be (or stay) at zero, if anything says so.
fn blocker(f: &Facts) -> Option<Verdict> {
    if !f.enabled {
        return Some(v(
            "False",
            reason::DISABLED,
            "spec.scaleToZero was removed: the pods take the Service back".into(),
        ));
    }
    if let Some(kind) = f.not_http {
        return Some(v(
            "False",
            reason::NOT_HTTP,
            format!("only HTTP components scale to zero; this one is {kind}"),
        ));
    }
    match &f.activator {
        ActivatorView::Unavailable { reason, message } => Some(v("False", reason, message.clone())),
        _ => None,
    }
}

/// Pods serve: selector on; a proxy slice left from a handover stays until a pod is ready
/// behind the Service.
fn serving(f: &Facts, condition: Verdict, served_again: bool) -> Step {
    Step {
        phase: Some(ScalePhase::Serving),
        selector: true,
        proxy_slice: f.proxy_slice_exists && f.serving_endpoints == 0,
        zero: false,
        condition: Some(condition),
        served_again,
        drop_controller_slices: false,
    }
}

fn proxied(phase: ScalePhase, zero: bool, condition: Verdict) -> Step {
    Step {
        phase: Some(phase),
        selector: false,
        proxy_slice: true,
        zero,
        condition: Some(condition),
        served_again: false,
        drop_controller_slices: false,
    }
}

/// The pods come back: replicas first; the selector once a pod is ready; the proxy slice goes
/// once the controller's slice has a ready endpoint.
fn scaling_up(f: &Facts, blocked: Option<Verdict>) -> Step {
    let condition = blocked.unwrap_or_else(|| {
        v(
            "False",
            reason::SCALING_UP,
            "a request came: the pods start while the activator answers".into(),
        )
    });
    if f.pods_ready == 0 {
        return proxied(ScalePhase::ScalingUp, false, condition);
    }
    if f.serving_endpoints == 0 {
        return Step {
            selector: true,
            ..proxied(ScalePhase::ScalingUp, false, condition)
        };
    }
    let mut step = serving(f, condition, true);
    step.proxy_slice = false;
    step
}

/// The next step from `phase` given `f`.
pub fn next(phase: ScalePhase, f: &Facts) -> Step {
    let blocked = blocker(f);
    let serving_verdict = || {
        blocked.clone().unwrap_or_else(|| {
            let why = match &f.activator {
                ActivatorView::Pending(m) => format!("; not yet at zero: {m}"),
                _ => String::new(),
            };
            v(
                "False",
                reason::SERVING,
                format!(
                    "the pods serve; the app goes to zero after {}s without a request{why}",
                    f.idle_seconds
                ),
            )
        })
    };
    let may_go_down = blocked.is_none() && f.idle && f.activator == ActivatorView::Ready;
    let step = match phase {
        ScalePhase::Serving if may_go_down => proxied(
            ScalePhase::ScalingDown,
            false,
            v(
                "False",
                reason::SCALING_DOWN,
                format!(
                    "no request for {}s: the activator takes the Service over",
                    f.idle_seconds
                ),
            ),
        ),
        ScalePhase::Serving => serving(f, serving_verdict(), false),
        ScalePhase::ScalingDown if blocked.is_some() || !f.idle => {
            serving(f, serving_verdict(), false)
        }
        ScalePhase::ScalingDown => {
            let gone = f.controller_slices == 0;
            let condition = if gone {
                at_zero_verdict(f)
            } else {
                v(
                    "False",
                    reason::SCALING_DOWN,
                    "waiting for the endpointslice controller to drop the pods from the Service"
                        .into(),
                )
            };
            let phase = if gone {
                ScalePhase::AtZero
            } else {
                ScalePhase::ScalingDown
            };
            Step {
                drop_controller_slices: !gone,
                ..proxied(phase, gone, condition)
            }
        }
        ScalePhase::AtZero if blocked.is_some() || f.woken => scaling_up(f, blocked),
        ScalePhase::AtZero => proxied(ScalePhase::AtZero, true, at_zero_verdict(f)),
        ScalePhase::ScalingUp => scaling_up(f, blocked),
    };
    plain_once_disabled(f, step)
}

fn at_zero_verdict(f: &Facts) -> Verdict {
    let note = match &f.activator {
        ActivatorView::Pending(m) => format!(" ({m})"),
        _ => String::new(),
    };
    v(
        "True",
        reason::IDLE,
        format!(
            "no request for {}s: no pods, the activator answers the Service{note}",
            f.idle_seconds
        ),
    )
}

/// With `spec.scaleToZero` removed, an app that is back on its pods with no proxy slice left is
/// a plain app again.
fn plain_once_disabled(f: &Facts, step: Step) -> Step {
    if f.enabled || step.phase != Some(ScalePhase::Serving) || step.proxy_slice {
        return step;
    }
    Step {
        phase: None,
        condition: None,
        ..step
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
