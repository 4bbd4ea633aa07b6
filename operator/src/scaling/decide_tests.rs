use wasmpod_oci::activity::{ActivatorApp, ActivatorAppState, ActivatorReport};

use super::*;

fn facts() -> Facts {
    Facts {
        enabled: true,
        not_http: None,
        idle: false,
        woken: false,
        activator: ActivatorView::Ready,
        pods_ready: 2,
        serving_endpoints: 2,
        controller_slices: 1,
        proxy_slice_exists: false,
        idle_seconds: 300,
    }
}

fn mode(s: &Step) -> (Option<ScalePhase>, bool, bool, bool) {
    (s.phase, s.selector, s.proxy_slice, s.zero)
}

fn reason_of(s: &Step) -> (&str, &str) {
    let c = s.condition.as_ref().expect("a condition");
    (c.status, c.reason.as_str())
}

use ScalePhase::{AtZero, ScalingDown, ScalingUp, Serving};

#[test]
fn serving_stays_while_busy_and_goes_down_when_idle_with_the_activator_ready() {
    let busy = next(Serving, &facts());
    assert_eq!(mode(&busy), (Some(Serving), true, false, false));
    assert_eq!(reason_of(&busy), ("False", reason::SERVING));

    let idle = Facts {
        idle: true,
        ..facts()
    };
    let down = next(Serving, &idle);
    assert_eq!(
        mode(&down),
        (Some(ScalingDown), false, true, false),
        "step 1: proxy slice in, selector out, pods still there"
    );
    assert_eq!(reason_of(&down), ("False", reason::SCALING_DOWN));
}

#[test]
fn an_idle_app_stays_serving_when_the_activator_cannot_take_it() {
    for activator in [
        ActivatorView::Pending("preparing".into()),
        ActivatorView::Unavailable {
            reason: reason::ACTIVATOR_FAILED,
            message: "bad image".into(),
        },
    ] {
        let f = Facts {
            idle: true,
            activator,
            ..facts()
        };
        let s = next(Serving, &f);
        assert_eq!(mode(&s), (Some(Serving), true, false, false), "{f:?}");
    }
    let failed = Facts {
        idle: true,
        activator: ActivatorView::Unavailable {
            reason: reason::ACTIVATOR_FAILED,
            message: "bad image".into(),
        },
        ..facts()
    };
    let s = next(Serving, &failed);
    assert_eq!(reason_of(&s), ("False", reason::ACTIVATOR_FAILED));
    assert_eq!(s.condition.unwrap().message, "bad image");
    let not_http = Facts {
        idle: true,
        not_http: Some("command"),
        ..facts()
    };
    assert_eq!(
        reason_of(&next(Serving, &not_http)),
        ("False", reason::NOT_HTTP)
    );
}

#[test]
fn scaling_down_waits_for_the_controller_slices_then_goes_to_zero() {
    let waiting = Facts {
        idle: true,
        ..facts()
    };
    let wait = next(ScalingDown, &waiting);
    assert_eq!(mode(&wait), (Some(ScalingDown), false, true, false));
    assert!(
        wait.drop_controller_slices,
        "the controller leaves its slices of a selector-less Service: the operator deletes them"
    );
    assert!(
        !next(Serving, &waiting).drop_controller_slices,
        "not while removing the selector"
    );
    let gone = Facts {
        controller_slices: 0,
        serving_endpoints: 0,
        ..waiting
    };
    let zero = next(ScalingDown, &gone);
    assert_eq!(
        mode(&zero),
        (Some(AtZero), false, true, true),
        "step 2: replicas 0"
    );
    assert_eq!(reason_of(&zero), ("True", reason::IDLE));
}

#[test]
fn a_request_during_scaling_down_brings_the_selector_back_before_the_slice_goes() {
    // The race: the selector is already gone, the controller's slice too, a request arrives.
    let raced = Facts {
        idle: false,
        controller_slices: 0,
        serving_endpoints: 0,
        proxy_slice_exists: true,
        ..facts()
    };
    let s = next(ScalingDown, &raced);
    assert_eq!(
        mode(&s),
        (Some(Serving), true, true, false),
        "selector back, the activator keeps answering until a pod is ready behind the Service"
    );
    let back = Facts {
        serving_endpoints: 1,
        controller_slices: 1,
        ..raced
    };
    assert_eq!(
        mode(&next(Serving, &back)),
        (Some(Serving), true, false, false)
    );
    let failed = Facts {
        idle: true,
        activator: ActivatorView::Unavailable {
            reason: reason::ACTIVATOR_NOT_READY,
            message: "gone".into(),
        },
        ..facts()
    };
    assert_eq!(next(ScalingDown, &failed).phase, Some(Serving));
}

#[test]
fn at_zero_stays_until_woken_or_the_activator_fails() {
    let quiet = Facts {
        idle: true,
        pods_ready: 0,
        serving_endpoints: 0,
        controller_slices: 0,
        proxy_slice_exists: true,
        ..facts()
    };
    assert_eq!(
        mode(&next(AtZero, &quiet)),
        (Some(AtZero), false, true, true)
    );
    let pending = Facts {
        activator: ActivatorView::Pending("no report from the activator yet".into()),
        ..quiet.clone()
    };
    let held = next(AtZero, &pending);
    assert_eq!(
        mode(&held),
        (Some(AtZero), false, true, true),
        "no news is no reason to wake"
    );
    assert_eq!(reason_of(&held), ("True", reason::IDLE));

    let woken = Facts {
        woken: true,
        ..quiet.clone()
    };
    let up = next(AtZero, &woken);
    assert_eq!(mode(&up), (Some(ScalingUp), false, true, false));
    assert_eq!(reason_of(&up), ("False", reason::SCALING_UP));

    let failed = Facts {
        activator: ActivatorView::Unavailable {
            reason: reason::ACTIVATOR_FAILED,
            message: "the activator at 10.0.0.9 cannot serve the app: manifest unknown".into(),
        },
        ..quiet
    };
    let up = next(AtZero, &failed);
    assert_eq!(mode(&up), (Some(ScalingUp), false, true, false));
    let c = up.condition.unwrap();
    assert_eq!(c.reason, reason::ACTIVATOR_FAILED);
    assert!(c.message.contains("manifest unknown"));
}

#[test]
fn scaling_up_hands_the_service_back_in_order() {
    let starting = Facts {
        woken: true,
        pods_ready: 0,
        serving_endpoints: 0,
        controller_slices: 0,
        proxy_slice_exists: true,
        ..facts()
    };
    assert_eq!(
        mode(&next(ScalingUp, &starting)),
        (Some(ScalingUp), false, true, false),
        "no pod ready: the activator alone"
    );
    let one_ready = Facts {
        pods_ready: 1,
        ..starting.clone()
    };
    assert_eq!(
        mode(&next(ScalingUp, &one_ready)),
        (Some(ScalingUp), true, true, false),
        "selector back, the proxy slice stays until the controller's slice has the pod"
    );
    let behind_service = Facts {
        serving_endpoints: 1,
        controller_slices: 1,
        ..one_ready
    };
    let s = next(ScalingUp, &behind_service);
    assert_eq!(mode(&s), (Some(Serving), true, false, false));
    assert!(s.served_again);
    assert_eq!(reason_of(&s), ("False", reason::SCALING_UP));
}

#[test]
fn removing_scale_to_zero_goes_back_through_scaling_up_then_plain() {
    let off = Facts {
        enabled: false,
        pods_ready: 0,
        serving_endpoints: 0,
        controller_slices: 0,
        proxy_slice_exists: true,
        ..facts()
    };
    let up = next(AtZero, &off);
    assert_eq!(mode(&up), (Some(ScalingUp), false, true, false));
    assert_eq!(reason_of(&up), ("False", reason::DISABLED));
    let plain = next(
        Serving,
        &Facts {
            enabled: false,
            ..facts()
        },
    );
    assert_eq!(mode(&plain), (None, true, false, false));
    assert!(plain.condition.is_none());
}

fn report(state: ActivatorAppState, digest: &str, error: Option<&str>) -> ActivatorReport {
    ActivatorReport {
        instance: "a".into(),
        apps: vec![ActivatorApp {
            namespace: "apps".into(),
            name: "hello".into(),
            port: 20001,
            digest: Some(digest.into()),
            state,
            error: error.map(Into::into),
            requests: 0,
            in_flight: 0,
        }],
    }
}

fn view(reports: &[(&str, Option<&ActivatorReport>)], digest: Option<&str>) -> ActivatorView {
    activator_view(
        reports.iter().copied(),
        "apps",
        "hello",
        digest,
        "ops/wasmpod-activator",
    )
}

#[test]
fn the_activator_view_follows_its_reports() {
    let ready = report(ActivatorAppState::Ready, "sha256:1", None);
    assert_eq!(
        view(&[("10.0.0.1", Some(&ready))], Some("sha256:1")),
        ActivatorView::Ready
    );
    assert!(matches!(
        view(&[("10.0.0.1", Some(&ready))], Some("sha256:2")),
        ActivatorView::Pending(m) if m.contains("sha256:1")
    ));
    assert!(matches!(
        view(&[], Some("sha256:1")),
        ActivatorView::Unavailable { reason, message }
            if reason == reason::ACTIVATOR_NOT_READY && message.contains("ops/wasmpod-activator")
    ));
    assert!(matches!(
        view(&[("10.0.0.1", None)], Some("sha256:1")),
        ActivatorView::Pending(_)
    ));
    let other = ActivatorReport {
        instance: "a".into(),
        apps: vec![],
    };
    assert!(matches!(
        view(&[("10.0.0.1", Some(&other))], Some("sha256:1")),
        ActivatorView::Unavailable { reason, .. } if reason == reason::ACTIVATOR_NOT_READY
    ));
    let failed = report(
        ActivatorAppState::Failed,
        "sha256:1",
        Some("manifest unknown"),
    );
    assert!(matches!(
        view(&[("10.0.0.1", Some(&failed))], Some("sha256:1")),
        ActivatorView::Unavailable { reason, message }
            if reason == reason::ACTIVATOR_FAILED && message.contains("manifest unknown")
    ));
    assert_eq!(
        view(
            &[("10.0.0.1", Some(&failed)), ("10.0.0.2", Some(&ready))],
            Some("sha256:1")
        ),
        ActivatorView::Ready,
        "one endpoint that serves it is enough"
    );
    let preparing = report(ActivatorAppState::Preparing, "sha256:1", None);
    assert!(matches!(
        view(&[("10.0.0.1", Some(&preparing))], Some("sha256:1")),
        ActivatorView::Pending(_)
    ));
}
