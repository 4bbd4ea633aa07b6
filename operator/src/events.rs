//! Events on a WasmApp when its conditions change or children are removed.

use kube::Resource;
use kube::runtime::events::{Event, EventType};

use crate::controller::Context;
use crate::crd::{
    DEGRADED, IMAGE_VALID, READY, SCALED_TO_ZERO, ScalePhase, WasmApp, WasmAppStatus,
};
use crate::scaling::decide::reason;

/// One Event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Normal or Warning.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: String,
    /// What happened (at most 1 kB).
    pub message: String,
    /// What the operator did.
    pub action: &'static str,
}

fn flipped<'a>(
    old: Option<&'a WasmAppStatus>,
    new: &'a WasmAppStatus,
    type_: &str,
    to: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    let now = new.condition(type_).filter(|c| c.status == to)?;
    let before = old.and_then(|o| o.condition(type_));
    let same = before.is_some_and(|b| b.status == now.status && b.reason == now.reason);
    (!same).then_some(now)
}

/// The Events a status change deserves: image verdicts, becoming Ready, becoming Degraded, and
/// removed children.
pub fn notes(old: Option<&WasmAppStatus>, new: &WasmAppStatus, deleted: &[String]) -> Vec<Note> {
    let mut out = Vec::new();
    if let Some(c) = flipped(old, new, IMAGE_VALID, "False") {
        out.push(Note {
            warning: true,
            reason: c.reason.clone(),
            message: c.message.clone(),
            action: "InspectImage",
        });
    }
    if let Some(c) = flipped(old, new, IMAGE_VALID, "Unknown") {
        out.push(Note {
            warning: true,
            reason: c.reason.clone(),
            message: c.message.clone(),
            action: "InspectImage",
        });
    }
    if let Some(c) = flipped(old, new, IMAGE_VALID, "True") {
        out.push(Note {
            warning: false,
            reason: c.reason.clone(),
            message: c.message.clone(),
            action: "InspectImage",
        });
    }
    if let Some(c) = flipped(old, new, DEGRADED, "True")
        && new
            .condition(IMAGE_VALID)
            .is_none_or(|i| i.status != "False")
    {
        out.push(Note {
            warning: true,
            reason: c.reason.clone(),
            message: c.message.clone(),
            action: "Reconcile",
        });
    }
    let scale = scale_notes(old, new);
    // A scale-to-zero phase change also moves Ready between its reasons (Ready, ScaledToZero,
    // ScalingUp): the phase's Event says it once.
    let phase_changed = scale.iter().any(|n| n.action == "Scale" && !n.warning);
    if let Some(c) = flipped(old, new, READY, "True")
        && !phase_changed
    {
        out.push(Note {
            warning: false,
            reason: c.reason.clone(),
            message: c.message.clone(),
            action: "Reconcile",
        });
    }
    out.extend(scale);
    for child in deleted {
        out.push(Note {
            warning: false,
            reason: "ChildRemoved".into(),
            message: format!("deleted {child}: no longer wanted by the spec"),
            action: "Delete",
        });
    }
    for n in &mut out {
        if n.message.len() > 1000 {
            let cut = (0..=1000)
                .rev()
                .find(|i| n.message.is_char_boundary(*i))
                .unwrap_or(0);
            n.message.truncate(cut);
        }
    }
    out
}

/// Scale to zero: a Normal Event on each phase change, a Warning when the activator fails the
/// app.
fn scale_notes(old: Option<&WasmAppStatus>, new: &WasmAppStatus) -> Vec<Note> {
    let phase = |s: Option<&WasmAppStatus>| s?.scale_to_zero.as_ref()?.phase;
    let message = new
        .condition(SCALED_TO_ZERO)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    if let Some(now) = phase(Some(new))
        && phase(old).unwrap_or_default() != now
    {
        let reason = match now {
            ScalePhase::Serving => "Serving",
            ScalePhase::ScalingDown => "ScalingDown",
            ScalePhase::AtZero => "ScaledToZero",
            ScalePhase::ScalingUp => "ScalingUp",
        };
        out.push(Note {
            warning: false,
            reason: reason.into(),
            message: message.clone(),
            action: "Scale",
        });
    }
    if let Some(c) = flipped(old, new, SCALED_TO_ZERO, "False")
        && c.reason == reason::ACTIVATOR_FAILED
    {
        out.push(Note {
            warning: true,
            reason: c.reason.clone(),
            message: c.message.clone(),
            action: "Scale",
        });
    }
    out
}

/// Publishes the Events for a status change; failures are logged, never fatal.
pub async fn publish(
    ctx: &Context,
    app: &WasmApp,
    old: Option<&WasmAppStatus>,
    new: &WasmAppStatus,
    deleted: &[String],
) {
    let reference = app.object_ref(&());
    for n in notes(old, new, deleted) {
        let event = Event {
            type_: if n.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: n.reason,
            note: Some(n.message),
            action: n.action.into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, "cannot publish event");
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn status(conds: &[(&str, &str, &str)]) -> WasmAppStatus {
        WasmAppStatus {
            conditions: conds
                .iter()
                .map(|(t, s, r)| Condition {
                    type_: (*t).into(),
                    status: (*s).into(),
                    reason: (*r).into(),
                    message: format!("{t} is {s}"),
                    last_transition_time: Time(Timestamp::UNIX_EPOCH),
                    observed_generation: Some(1),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn image_failure_warns_once() {
        let new = status(&[
            (IMAGE_VALID, "False", "ImageNotWasm"),
            (DEGRADED, "True", "ImageNotWasm"),
        ]);
        let first = notes(None, &new, &[]);
        assert_eq!(
            first.len(),
            1,
            "Degraded for the image is not repeated: {first:?}"
        );
        assert!(first[0].warning);
        assert_eq!(first[0].reason, "ImageNotWasm");
        assert!(
            notes(Some(&new), &new, &[]).is_empty(),
            "no change, no event"
        );
    }

    #[test]
    fn ready_resolved_degraded_and_removed_children() {
        let old = status(&[
            (READY, "False", "RollingOut"),
            (IMAGE_VALID, "Unknown", "Inspecting"),
        ]);
        let new = status(&[
            (READY, "True", "Ready"),
            (IMAGE_VALID, "True", "ImageResolved"),
        ]);
        let got = notes(Some(&old), &new, &["Service hello".to_string()]);
        let reasons: Vec<_> = got.iter().map(|n| (n.warning, n.reason.as_str())).collect();
        assert_eq!(
            reasons,
            [
                (false, "ImageResolved"),
                (false, "Ready"),
                (false, "ChildRemoved")
            ]
        );
        let stalled = status(&[(DEGRADED, "True", "ProgressDeadlineExceeded")]);
        let got = notes(Some(&old), &stalled, &[]);
        assert_eq!(got[0].reason, "ProgressDeadlineExceeded");
        assert!(got[0].warning);
    }

    #[test]
    fn scale_phases_and_activator_failures_are_events() {
        use crate::crd::{SCALED_TO_ZERO, ScalePhase, ScaleToZeroStatus};
        let with = |phase, conds: &[(&str, &str, &str)]| WasmAppStatus {
            scale_to_zero: Some(ScaleToZeroStatus {
                activator_port: Some(20001),
                phase: Some(phase),
                last_request_time: None,
            }),
            ..status(conds)
        };
        let serving = with(
            ScalePhase::Serving,
            &[
                (READY, "True", "Ready"),
                (SCALED_TO_ZERO, "False", "Serving"),
            ],
        );
        let zero = with(
            ScalePhase::AtZero,
            &[
                (READY, "True", "ScaledToZero"),
                (SCALED_TO_ZERO, "True", "Idle"),
            ],
        );
        let got = notes(Some(&serving), &zero, &[]);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].warning, got[0].reason.as_str()),
            (false, "ScaledToZero")
        );
        assert!(notes(Some(&zero), &zero, &[]).is_empty());
        let failed = with(
            ScalePhase::ScalingUp,
            &[(SCALED_TO_ZERO, "False", "ActivatorFailed")],
        );
        let got: Vec<_> = notes(Some(&zero), &failed, &[])
            .into_iter()
            .map(|n| (n.warning, n.reason))
            .collect();
        assert_eq!(
            got,
            [
                (false, "ScalingUp".to_string()),
                (true, "ActivatorFailed".to_string())
            ]
        );
    }
}
