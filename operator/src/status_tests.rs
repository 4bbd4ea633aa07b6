use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus,
};
use serde_json::json;

use super::*;
use crate::crd::{ComponentKind, ImageFormat};
use crate::resolve::{KEY_NOT_FOUND, Problem, SECRET_NOT_FOUND};
use crate::resources::fixtures::app;

fn facts() -> ImageFacts {
    ImageFacts {
        image: "registry.local/hello:v1".into(),
        digest: "sha256:aa".into(),
        format: ImageFormat::WasmArtifact,
        kind: ComponentKind::Http,
        world: Some("wasi:http/proxy@0.2.0".into()),
    }
}

fn deployment(desired: i32, generation: i64, status: DeploymentStatus) -> Deployment {
    let mut d = Deployment {
        spec: Some(DeploymentSpec {
            replicas: Some(desired),
            ..Default::default()
        }),
        status: Some(status),
        ..Default::default()
    };
    d.metadata.generation = Some(generation);
    d
}

fn settled(n: i32) -> DeploymentStatus {
    DeploymentStatus {
        observed_generation: Some(1),
        replicas: Some(n),
        ready_replicas: Some(n),
        updated_replicas: Some(n),
        available_replicas: Some(n),
        ..Default::default()
    }
}

fn cond<'a>(s: &'a WasmAppStatus, t: &str) -> &'a Condition {
    s.condition(t)
        .unwrap_or_else(|| panic!("condition {t} missing"))
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

#[test]
fn before_anything_exists_the_app_is_pending_and_image_unknown() {
    let app = app("hello", json!({}));
    let s = compute(&app, &Observation::default(), now());
    assert_eq!(cond(&s, READY).status, "False");
    assert_eq!(cond(&s, READY).reason, "Pending");
    assert_eq!(cond(&s, PROGRESSING).status, "True");
    assert_eq!(cond(&s, DEGRADED).status, "False");
    assert_eq!(cond(&s, IMAGE_VALID).status, "Unknown");
    assert_eq!(s.observed_generation, Some(3));
    assert_eq!(s.selector.as_deref(), Some("wasmpod.io/app=hello"));
    assert_eq!(s.ready.as_deref(), Some("0/1"));
    for c in &s.conditions {
        assert_eq!(c.observed_generation, Some(3));
        assert_eq!(c.last_transition_time, Time(now()));
    }
}

#[test]
fn settled_deployment_and_service_make_the_app_ready() {
    let app = app("hello", json!({"replicas": 3}));
    let f = facts();
    let check = ImageCheck::Valid(f.clone());
    let d = deployment(3, 1, settled(3));
    let obs = Observation {
        image: Some(&check),
        running: Some(&f),
        deployment: Some(&d),
        service_wanted: true,
        service_exists: true,
        url: Some("http://hello.apps.svc.cluster.local".into()),
        apply_error: None,
        capabilities: None,
        scale_to_zero: None,
    };
    let s = compute(&app, &obs, now());
    let ready = cond(&s, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Ready")
    );
    assert!(ready.message.contains("3/3"), "{}", ready.message);
    assert!(
        ready
            .message
            .contains("http://hello.apps.svc.cluster.local")
    );
    assert_eq!(cond(&s, PROGRESSING).status, "False");
    assert_eq!(cond(&s, PROGRESSING).reason, "RolloutComplete");
    assert_eq!(cond(&s, DEGRADED).status, "False");
    let image = cond(&s, IMAGE_VALID);
    assert_eq!(image.status, "True");
    assert!(image.message.contains("sha256:aa") && image.message.contains("wasi:http/proxy"));
    assert_eq!(
        (
            s.replicas,
            s.ready_replicas,
            s.updated_replicas,
            s.available_replicas
        ),
        (Some(3), Some(3), Some(3), Some(3))
    );
    assert_eq!(s.ready.as_deref(), Some("3/3"));
    assert_eq!(
        s.url.as_deref(),
        Some("http://hello.apps.svc.cluster.local")
    );
    assert_eq!(s.image_digest.as_deref(), Some("sha256:aa"));
    assert_eq!(s.component_kind, Some(ComponentKind::Http));
    assert_eq!(s.image_format, Some(ImageFormat::WasmArtifact));
}

#[test]
fn unobserved_generation_or_missing_replicas_is_rolling_out() {
    let app = app("hello", json!({"replicas": 2}));
    let stale = deployment(2, 2, settled(2)); // observedGeneration 1 < generation 2
    let short = deployment(
        2,
        1,
        DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(3),
            updated_replicas: Some(2),
            ready_replicas: Some(2),
            available_replicas: Some(1),
            ..Default::default()
        },
    );
    for d in [&stale, &short] {
        let obs = Observation {
            deployment: Some(d),
            ..Default::default()
        };
        let s = compute(&app, &obs, now());
        assert_eq!(cond(&s, READY).reason, "RollingOut");
        assert_eq!(cond(&s, READY).status, "False");
        assert_eq!(cond(&s, PROGRESSING).status, "True");
        assert_eq!(cond(&s, DEGRADED).status, "False");
    }
}

#[test]
fn stalled_rollout_and_replica_failure_are_degraded() {
    let app = app("hello", json!({}));
    let mut st = settled(0);
    st.conditions = Some(vec![DeploymentCondition {
        type_: "Progressing".into(),
        status: "False".into(),
        reason: Some("ProgressDeadlineExceeded".into()),
        message: Some("ReplicaSet \"hello-1\" has timed out progressing.".into()),
        ..Default::default()
    }]);
    let d = deployment(1, 1, st);
    let obs = Observation {
        deployment: Some(&d),
        ..Default::default()
    };
    let s = compute(&app, &obs, now());
    assert_eq!(cond(&s, DEGRADED).status, "True");
    assert_eq!(cond(&s, DEGRADED).reason, "ProgressDeadlineExceeded");
    assert_eq!(cond(&s, PROGRESSING).status, "False");
    assert!(cond(&s, READY).message.contains("timed out"));

    let mut st = settled(0);
    st.conditions = Some(vec![DeploymentCondition {
        type_: "ReplicaFailure".into(),
        status: "True".into(),
        reason: Some("FailedCreate".into()),
        message: Some("pods \"hello-\" is forbidden: RuntimeClass \"wasmpod\" not found".into()),
        ..Default::default()
    }]);
    let d = deployment(1, 1, st);
    let obs = Observation {
        deployment: Some(&d),
        ..Default::default()
    };
    let s = compute(&app, &obs, now());
    assert_eq!(cond(&s, READY).reason, "FailedCreate");
    assert_eq!(cond(&s, DEGRADED).reason, "FailedCreate");
    assert!(cond(&s, DEGRADED).message.contains("RuntimeClass"));
}

#[test]
fn invalid_image_is_degraded_and_keeps_the_previous_pods_in_status() {
    let app = app("hello", json!({"image": "registry.local/nginx:1"}));
    let previous = facts();
    let check = ImageCheck::invalid(
        ImageCheck::NOT_WASM,
        "registry.local/nginx:1 is a container image (linux/amd64), not Wasm",
    );
    let d = deployment(1, 1, settled(1));
    let obs = Observation {
        image: Some(&check),
        running: Some(&previous),
        deployment: Some(&d),
        service_wanted: true,
        service_exists: true,
        ..Default::default()
    };
    let s = compute(&app, &obs, now());
    let image = cond(&s, IMAGE_VALID);
    assert_eq!(
        (image.status.as_str(), image.reason.as_str()),
        ("False", "ImageNotWasm")
    );
    assert_eq!(cond(&s, READY).status, "False");
    assert_eq!(cond(&s, READY).reason, "ImageNotWasm");
    assert!(cond(&s, READY).message.contains("registry.local/hello:v1"));
    assert_eq!(cond(&s, DEGRADED).status, "True");
    assert_eq!(s.image.as_deref(), Some("registry.local/hello:v1"));
}

#[test]
fn unreachable_registry_is_unknown_but_does_not_block_readiness() {
    let app = app("hello", json!({}));
    let check = ImageCheck::unknown(ImageCheck::UNREACHABLE, "connection refused");
    let d = deployment(1, 1, settled(1));
    let obs = Observation {
        image: Some(&check),
        deployment: Some(&d),
        ..Default::default()
    };
    let s = compute(&app, &obs, now());
    assert_eq!(cond(&s, IMAGE_VALID).status, "Unknown");
    assert_eq!(cond(&s, IMAGE_VALID).reason, "RegistryUnreachable");
    assert_eq!(cond(&s, READY).status, "True");
    assert_eq!(cond(&s, DEGRADED).status, "False");
}

#[test]
fn missing_service_apply_errors_and_zero_replicas() {
    let app0 = app("hello", json!({"replicas": 0}));
    let d = deployment(
        0,
        1,
        DeploymentStatus {
            observed_generation: Some(1),
            ..Default::default()
        },
    );
    let obs = Observation {
        deployment: Some(&d),
        ..Default::default()
    };
    let s = compute(&app0, &obs, now());
    assert_eq!(cond(&s, READY).reason, "ScaledToZero");
    assert_eq!(cond(&s, READY).status, "True");

    let obs = Observation {
        deployment: Some(&d),
        service_wanted: true,
        ..Default::default()
    };
    assert_eq!(
        cond(&compute(&app0, &obs, now()), READY).reason,
        "ServiceMissing"
    );

    let obs = Observation {
        deployment: Some(&d),
        apply_error: Some("Deployment.apps \"hello\" is invalid".into()),
        ..Default::default()
    };
    let s = compute(&app0, &obs, now());
    assert_eq!(cond(&s, DEGRADED).reason, "ApplyFailed");
    assert_eq!(cond(&s, READY).status, "False");
}

#[test]
fn transition_time_moves_only_when_status_flips() {
    let mut app = app("hello", json!({}));
    let d = deployment(1, 1, settled(0));
    let obs = Observation {
        deployment: Some(&d),
        ..Default::default()
    };
    let t0 = now();
    let first = compute(&app, &obs, t0);
    app.status = Some(first.clone());

    let later = Timestamp::from_second(1_800_000_100).unwrap();
    let same = compute(&app, &obs, later);
    assert_eq!(same, first, "same observation, same status");

    let done = deployment(1, 1, settled(1));
    let obs = Observation {
        deployment: Some(&done),
        ..Default::default()
    };
    let flipped = compute(&app, &obs, later);
    assert_eq!(cond(&flipped, READY).status, "True");
    assert_eq!(cond(&flipped, READY).last_transition_time, Time(later));
    assert_eq!(
        cond(&flipped, DEGRADED).last_transition_time,
        Time(t0),
        "Degraded stayed False"
    );
}

fn missing(reason: &'static str, message: &str) -> Problem {
    Problem {
        reason,
        message: message.into(),
    }
}

#[test]
fn a_missing_capability_secret_holds_the_app_back_with_the_field_named() {
    let app = app("kv", json!({"replicas": 2}));
    let res = Resolution {
        checked: 2,
        problems: vec![
            missing(
                SECRET_NOT_FOUND,
                "spec.capabilities.keyValue[0].redis.urlFrom.secretKeyRef (bucket \"sessions\"): Secret \"redis\" not found",
            ),
            missing(
                KEY_NOT_FOUND,
                "spec.capabilities.config[0].valueFrom.secretKeyRef (config \"token\"): key \"k\" not found in Secret \"s\"",
            ),
        ],
        unset: vec![],
    };
    // Old pods still serve; the new ReplicaSet's pods cannot start.
    let d = deployment(
        2,
        1,
        DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(3),
            ready_replicas: Some(2),
            updated_replicas: Some(1),
            available_replicas: Some(2),
            ..Default::default()
        },
    );
    let obs = Observation {
        deployment: Some(&d),
        capabilities: Some(&res),
        ..Default::default()
    };
    let s = compute(&app, &obs, now());
    let caps = cond(&s, CAPABILITIES_READY);
    assert_eq!(
        (caps.status.as_str(), caps.reason.as_str()),
        ("False", "SecretNotFound")
    );
    assert!(
        caps.message.contains("keyValue[0].redis.urlFrom"),
        "{}",
        caps.message
    );
    assert!(
        caps.message.contains("key \"k\" not found in Secret \"s\""),
        "{}",
        caps.message
    );
    let ready = cond(&s, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "SecretNotFound")
    );
    assert!(
        ready.message.contains("Secret \"redis\" not found"),
        "{}",
        ready.message
    );
    let degraded = cond(&s, DEGRADED);
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "SecretNotFound")
    );
    assert_eq!(
        cond(&s, PROGRESSING).reason,
        "RollingOut",
        "the rollout is what it is"
    );

    // Before the Deployment exists, too.
    let obs = Observation {
        capabilities: Some(&res),
        ..Default::default()
    };
    let s = compute(&app, &obs, now());
    assert_eq!(cond(&s, READY).reason, "SecretNotFound");
    assert_eq!(cond(&s, DEGRADED).status, "True");
}

#[test]
fn resolved_or_unreferenced_capabilities_are_ready_and_optional_gaps_are_only_noted() {
    let app = app("kv", json!({}));
    let d = deployment(1, 1, settled(1));
    let s = compute(
        &app,
        &Observation {
            deployment: Some(&d),
            ..Default::default()
        },
        now(),
    );
    let caps = cond(&s, CAPABILITIES_READY);
    assert_eq!(
        (caps.status.as_str(), caps.reason.as_str()),
        ("True", "Resolved")
    );
    assert_eq!(cond(&s, READY).status, "True");

    let res = Resolution {
        checked: 1,
        problems: vec![],
        unset: vec![missing(
            SECRET_NOT_FOUND,
            "spec.capabilities.config[0].valueFrom.secretKeyRef (config \"x\"): Secret \"opt\" not found",
        )],
    };
    let s = compute(
        &app,
        &Observation {
            deployment: Some(&d),
            capabilities: Some(&res),
            ..Default::default()
        },
        now(),
    );
    let caps = cond(&s, CAPABILITIES_READY);
    assert_eq!(caps.status, "True");
    assert!(
        caps.message.contains("optional ones left unset"),
        "{}",
        caps.message
    );
    assert!(caps.message.contains("Secret \"opt\""), "{}", caps.message);
    assert_eq!(cond(&s, READY).status, "True");
    assert_eq!(cond(&s, DEGRADED).status, "False");
}

#[test]
fn at_zero_the_app_is_ready_through_the_activator_and_opting_out_drops_the_condition() {
    use crate::crd::{SCALED_TO_ZERO, ScalePhase, ScaleToZeroStatus};
    use crate::status::Verdict;

    let app = app("idle", json!({"replicas": 2, "scaleToZero": {}}));
    let d = deployment(
        0,
        1,
        DeploymentStatus {
            observed_generation: Some(1),
            ..Default::default()
        },
    );
    let at_zero = ScaleToZeroStatus {
        activator_port: Some(20001),
        phase: Some(ScalePhase::AtZero),
        last_request_time: None,
    };
    let idle = Verdict {
        status: "True",
        reason: "Idle".into(),
        message: "no request for 300s".into(),
    };
    let obs = Observation {
        deployment: Some(&d),
        service_wanted: true,
        service_exists: true,
        url: Some("http://idle.apps.svc.cluster.local".into()),
        scale_to_zero: Some((Some(at_zero.clone()), Some(idle))),
        ..Default::default()
    };
    let s = compute(&app, &obs, now());
    let ready = cond(&s, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "ScaledToZero")
    );
    assert!(ready.message.contains("activator"), "{}", ready.message);
    assert_eq!(cond(&s, SCALED_TO_ZERO).reason, "Idle");
    assert_eq!(s.scale_to_zero, Some(at_zero));

    let mut app = app;
    app.status = Some(s);
    let plain = Observation {
        scale_to_zero: Some((None, None)),
        ..obs
    };
    let s = compute(&app, &plain, now());
    assert!(s.scale_to_zero.is_none());
    assert!(s.condition(SCALED_TO_ZERO).is_none());
}
