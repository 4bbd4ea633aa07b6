//! The app's Deployment.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, HTTPHeader, Lifecycle, LifecycleHandler,
    PodSpec, PodTemplateSpec, Probe as K8sProbe, SleepAction, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{BuildInput, Owner, capabilities, labels};
use crate::Result;
use crate::crd::{Probe, WasmApp};

/// Name of the Wasm container in the pod.
pub const CONTAINER_NAME: &str = "app";
/// Name of the container port (the Service targets it by name).
pub const PORT_NAME: &str = "http";
/// Command given to images without an entrypoint (CNCF Wasm artifacts, Wasm-layer images):
/// containerd refuses to create a container without one. The shim loads the Wasm from the image
/// layers and does not run it.
pub const COMMAND_PLACEHOLDER: &str = "/component.wasm";

/// Builds the Deployment of `app`.
pub fn deployment(app: &WasmApp, input: &BuildInput<'_>) -> Result<Deployment> {
    let owner = Owner::of(app)?;
    let spec = &app.spec;
    let selector = labels::selector(&owner.name);

    let mut pod_labels = spec.pod_labels.clone();
    pod_labels.extend(labels::common(&owner.name));
    let mut pod_annotations = spec.pod_annotations.clone();
    if let Some(sum) = &input.config_checksum {
        pod_annotations.insert(labels::CONFIG_CHECKSUM_ANNOTATION.into(), sum.clone());
    }

    let image = input
        .image
        .map_or_else(|| spec.image.clone(), |i| i.pinned());
    let command = input
        .image
        .filter(|i| i.format.needs_command())
        .map(|_| vec![COMMAND_PLACEHOLDER.to_string()]);
    let readiness = spec
        .readiness_probe
        .as_ref()
        .map(|p| probe(p, spec.port))
        .or_else(|| {
            input
                .kind()
                .serves_http()
                .then(|| probe(&Probe::default(), spec.port))
        });

    let container = Container {
        name: CONTAINER_NAME.into(),
        image: Some(image),
        command,
        args: spec.args.clone(),
        env: Some(env(spec).into_iter().chain(activity_env(spec)).collect()),
        env_from: non_empty(spec.env_from.clone()),
        ports: Some(
            std::iter::once(ContainerPort {
                name: Some(PORT_NAME.into()),
                container_port: spec.port,
                protocol: Some("TCP".into()),
                ..Default::default()
            })
            .chain(activity_port(spec))
            .collect(),
        ),
        resources: spec.resources.clone(),
        readiness_probe: readiness,
        liveness_probe: spec.liveness_probe.as_ref().map(|p| probe(p, spec.port)),
        startup_probe: spec.startup_probe.as_ref().map(|p| probe(p, spec.port)),
        volume_mounts: non_empty(spec.volume_mounts.clone()),
        lifecycle: drain_delay(spec),
        ..Default::default()
    };

    let mut spread = spec.topology_spread_constraints.clone();
    for constraint in &mut spread {
        if constraint.label_selector.is_none() {
            constraint.label_selector = Some(LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            });
        }
    }

    let pod = PodSpec {
        runtime_class_name: Some(spec.runtime_class_name.clone()),
        containers: vec![container],
        image_pull_secrets: non_empty(spec.image_pull_secrets.clone()),
        service_account_name: spec.service_account_name.clone(),
        // The guest sees every mounted volume: mount a token only when an account is chosen.
        automount_service_account_token: spec.service_account_name.is_none().then_some(false),
        // Service links would put every Service of the namespace into the guest's environment.
        enable_service_links: Some(false),
        node_selector: non_empty_map(spec.node_selector.clone()),
        tolerations: non_empty(spec.tolerations.clone()),
        affinity: spec.affinity.clone(),
        topology_spread_constraints: non_empty(spread),
        priority_class_name: spec.priority_class_name.clone(),
        volumes: non_empty(spec.volumes.clone()),
        ..Default::default()
    };

    Ok(Deployment {
        metadata: owner.child_meta(),
        spec: Some(DeploymentSpec {
            // At zero the activator answers the Service; `spec.replicas` (the HPA's target)
            // stays as it is, so the pods come back to it.
            replicas: Some(if input.at_zero { 0 } else { spec.replicas }),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: non_empty_map(pod_annotations),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        status: None,
    })
}

/// The app's environment, led by the runtime's settings (the CRD forbids setting them in
/// `env`): the port the runtime listens on, so the port the pod declares, probes and the Service
/// target is the one served, then the capabilities the app is granted.
fn env(spec: &crate::crd::WasmAppSpec) -> Vec<EnvVar> {
    let port = EnvVar {
        name: wasmpod_oci::names::HTTP_PORT_SETTING.into(),
        value: Some(spec.port.to_string()),
        ..Default::default()
    };
    std::iter::once(port)
        .chain(capabilities::env(spec.capabilities.as_ref()))
        .chain(spec.env.iter().cloned())
        .collect()
}

/// Name of the container port where the guest reports its traffic (with `spec.scaleToZero`).
pub const ACTIVITY_PORT_NAME: &str = "activity";

/// With `spec.scaleToZero`, the runtime reports the app's traffic on
/// [`wasmpod_oci::names::ACTIVITY_PORT`] for the operator's poller. Kept out of [`env`] and last
/// in the container's list: the activator builds its environment from the same spec and has no
/// use for it.
pub fn activity_env(spec: &crate::crd::WasmAppSpec) -> Option<EnvVar> {
    spec.scale_to_zero.as_ref().map(|_| EnvVar {
        name: wasmpod_oci::names::ACTIVITY_PORT_SETTING.into(),
        value: Some(wasmpod_oci::names::ACTIVITY_PORT.to_string()),
        ..Default::default()
    })
}

fn activity_port(spec: &crate::crd::WasmAppSpec) -> Option<ContainerPort> {
    spec.scale_to_zero.as_ref().map(|_| ContainerPort {
        name: Some(ACTIVITY_PORT_NAME.into()),
        container_port: i32::from(wasmpod_oci::names::ACTIVITY_PORT),
        protocol: Some("TCP".into()),
        ..Default::default()
    })
}

/// Seconds a pod of an app that scales to zero keeps serving after it is told to stop.
pub const DRAIN_DELAY_SECONDS: i64 = 3;

/// With `spec.scaleToZero`, pods go away at every scale-down, just as the Service's endpoints
/// move to the activator: a connection kube-proxy sent to a pod an instant before would land on
/// a closed listener or a deleted address. The kubelet's `preStop` sleep keeps the pod serving
/// until kube-proxy has dropped it (the shim then drains on SIGTERM).
fn drain_delay(spec: &crate::crd::WasmAppSpec) -> Option<Lifecycle> {
    spec.scale_to_zero.as_ref().map(|_| Lifecycle {
        pre_stop: Some(LifecycleHandler {
            sleep: Some(SleepAction {
                seconds: DRAIN_DELAY_SECONDS,
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Translates a WasmApp probe; without `httpGet` or `tcpSocket` it is a TCP check of `port`.
fn probe(p: &Probe, port: i32) -> K8sProbe {
    let (http_get, tcp_socket) = match (&p.http_get, &p.tcp_socket) {
        (Some(h), _) => (
            Some(HTTPGetAction {
                path: Some(h.path.clone().unwrap_or_else(|| "/".into())),
                port: IntOrString::Int(h.port.unwrap_or(port)),
                scheme: Some("HTTP".into()),
                http_headers: non_empty(
                    h.http_headers
                        .iter()
                        .map(|x| HTTPHeader {
                            name: x.name.clone(),
                            value: x.value.clone(),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            None,
        ),
        (None, t) => (
            None,
            Some(TCPSocketAction {
                port: IntOrString::Int(t.as_ref().and_then(|t| t.port).unwrap_or(port)),
                ..Default::default()
            }),
        ),
    };
    K8sProbe {
        http_get,
        tcp_socket,
        initial_delay_seconds: p.initial_delay_seconds,
        period_seconds: p.period_seconds.or(Some(5)),
        timeout_seconds: p.timeout_seconds,
        success_threshold: p.success_threshold,
        failure_threshold: p.failure_threshold,
        ..Default::default()
    }
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn non_empty_map(m: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then_some(m)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::crd::{ComponentKind, ImageFormat};
    use crate::image::ImageFacts;
    use crate::resources::fixtures::app;

    fn facts(format: ImageFormat, kind: ComponentKind) -> ImageFacts {
        ImageFacts {
            image: "registry.local/hello:v1".into(),
            digest: "sha256:0123".into(),
            format,
            kind,
            world: None,
        }
    }

    fn container(d: &Deployment) -> &Container {
        &d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
    }

    fn pod(d: &Deployment) -> &PodSpec {
        d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    #[test]
    fn defaults_give_a_runnable_wasm_pod() {
        let app = app("hello", json!({}));
        let f = facts(ImageFormat::WasmArtifact, ComponentKind::Http);
        let input = BuildInput {
            image: Some(&f),
            ..Default::default()
        };
        let d = deployment(&app, &input).unwrap();
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(d.metadata.name.as_deref(), Some("hello"));
        assert_eq!(d.metadata.namespace.as_deref(), Some("apps"));
        let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("WasmApp", "hello", Some(true))
        );
        assert_eq!(
            spec.selector.match_labels.as_ref().unwrap(),
            &labels::selector("hello")
        );
        let pod = pod(&d);
        assert_eq!(pod.runtime_class_name.as_deref(), Some("wasmpod"));
        assert_eq!(pod.enable_service_links, Some(false));
        assert_eq!(pod.automount_service_account_token, Some(false));
        let c = container(&d);
        assert_eq!(
            c.image.as_deref(),
            Some("registry.local/hello:v1@sha256:0123")
        );
        assert_eq!(c.command, Some(vec![COMMAND_PLACEHOLDER.to_string()]));
        let port = &c.ports.as_ref().unwrap()[0];
        assert_eq!(
            (
                port.container_port,
                port.name.as_deref(),
                port.protocol.as_deref()
            ),
            (8080, Some("http"), Some("TCP"))
        );
        let ready = c.readiness_probe.as_ref().expect("default readiness probe");
        assert_eq!(
            ready.tcp_socket.as_ref().unwrap().port,
            IntOrString::Int(8080)
        );
        assert!(c.liveness_probe.is_none() && c.startup_probe.is_none());
        let template_labels = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert_eq!(template_labels[labels::APP_LABEL], "hello");
    }

    #[test]
    fn scratch_images_keep_their_entrypoint_and_command_components_get_no_probe() {
        let app = app("job", json!({"args": ["--once"]}));
        let f = facts(ImageFormat::ScratchImage, ComponentKind::Command);
        let input = BuildInput {
            image: Some(&f),
            ..Default::default()
        };
        let d = deployment(&app, &input).unwrap();
        let c = container(&d);
        assert_eq!(c.command, None);
        assert_eq!(c.args, Some(vec!["--once".to_string()]));
        assert!(c.readiness_probe.is_none());
    }

    #[test]
    fn unknown_image_runs_spec_image_unpinned_with_http_defaults() {
        let app = app("hello", json!({"port": 9000}));
        let d = deployment(&app, &BuildInput::default()).unwrap();
        let c = container(&d);
        assert_eq!(c.image.as_deref(), Some("registry.local/hello:v1"));
        assert_eq!(c.command, None);
        let ready = c.readiness_probe.as_ref().unwrap();
        assert_eq!(
            ready.tcp_socket.as_ref().unwrap().port,
            IntOrString::Int(9000)
        );
    }

    #[test]
    fn spec_fields_reach_the_pod() {
        let app = app(
            "full",
            json!({
                "replicas": 4,
                "port": 3000,
                "runtimeClassName": "wasmpod-dev",
                "serviceAccountName": "reader",
                "priorityClassName": "high",
                "imagePullSecrets": [{"name": "regcred"}],
                "env": [{"name": "A", "value": "1"},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "b"}}}],
                "envFrom": [{"secretRef": {"name": "s"}}],
                "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "100m"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "httpHeaders": [{"name": "X", "value": "y"}]},
                                   "periodSeconds": 2},
                "livenessProbe": {"tcpSocket": {"port": 3001}, "failureThreshold": 6},
                "startupProbe": {},
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "wasm", "operator": "Exists"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}],
                "podLabels": {"team": "a", "wasmpod.io/app": "spoofed"},
                "podAnnotations": {"note": "x"}
            }),
        );
        let input = BuildInput {
            config_checksum: Some("sha256:feed".into()),
            ..Default::default()
        };
        let d = deployment(&app, &input).unwrap();
        let spec = d.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(4));
        let meta = spec.template.metadata.as_ref().unwrap();
        let pod_labels = meta.labels.as_ref().unwrap();
        assert_eq!(pod_labels["team"], "a");
        assert_eq!(pod_labels[labels::APP_LABEL], "full", "selector label wins");
        let ann = meta.annotations.as_ref().unwrap();
        assert_eq!(ann["note"], "x");
        assert_eq!(ann[labels::CONFIG_CHECKSUM_ANNOTATION], "sha256:feed");

        let pod = pod(&d);
        assert_eq!(pod.runtime_class_name.as_deref(), Some("wasmpod-dev"));
        assert_eq!(pod.service_account_name.as_deref(), Some("reader"));
        assert_eq!(pod.automount_service_account_token, None);
        assert_eq!(pod.priority_class_name.as_deref(), Some("high"));
        assert_eq!(pod.image_pull_secrets.as_ref().unwrap()[0].name, "regcred");
        assert_eq!(pod.node_selector.as_ref().unwrap()["disk"], "ssd");
        assert_eq!(pod.tolerations.as_ref().unwrap().len(), 1);
        assert!(pod.affinity.as_ref().unwrap().node_affinity.is_some());
        let spread = &pod.topology_spread_constraints.as_ref().unwrap()[0];
        assert_eq!(
            spread
                .label_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref(),
            Some(&labels::selector("full")),
            "empty spread selector selects the app's pods"
        );
        assert_eq!(pod.volumes.as_ref().unwrap()[0].name, "data");

        let c = container(&d);
        let env: Vec<_> = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref()))
            .collect();
        assert_eq!(
            env,
            [
                ("WASMPOD_HTTP_PORT", Some("3000")),
                ("A", Some("1")),
                ("B", None)
            ],
            "the runtime is told the declared port, before the app's own variables"
        );
        assert_eq!(c.env_from.as_ref().unwrap().len(), 1);
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 3000);
        assert!(c.resources.as_ref().unwrap().limits.is_some());
        assert_eq!(c.volume_mounts.as_ref().unwrap()[0].read_only, Some(true));
        let ready = c.readiness_probe.as_ref().unwrap();
        let get = ready.http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some("/healthz"));
        assert_eq!(get.port, IntOrString::Int(3000));
        assert_eq!(get.http_headers.as_ref().unwrap()[0].name, "X");
        assert_eq!(ready.period_seconds, Some(2));
        let live = c.liveness_probe.as_ref().unwrap();
        assert_eq!(
            live.tcp_socket.as_ref().unwrap().port,
            IntOrString::Int(3001)
        );
        assert_eq!(live.failure_threshold, Some(6));
        let startup = c.startup_probe.as_ref().unwrap();
        assert_eq!(
            startup.tcp_socket.as_ref().unwrap().port,
            IntOrString::Int(3000)
        );
    }

    #[test]
    fn capabilities_reach_the_wasm_container_and_a_new_backend_changes_the_template() {
        let spec = |backend: serde_json::Value| {
            json!({
                "env": [{"name": "A", "value": "1"}],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "capabilities": {
                    "keyValue": [backend],
                    "config": [{"name": "greeting", "value": "hello"}],
                    "allowedOutboundHosts": ["https://api.example.com"]
                }
            })
        };
        let memory = app(
            "kv",
            spec(json!({"bucket": "default", "backend": "Memory"})),
        );
        let d = deployment(&memory, &BuildInput::default()).unwrap();
        let names: Vec<_> = container(&d)
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "WASMPOD_HTTP_PORT",
                "WASMPOD_KEYVALUE_default",
                "WASMPOD_CONFIG_greeting",
                "WASMPOD_ALLOWED_OUTBOUND_HOSTS",
                "A"
            ]
        );

        let file = app(
            "kv",
            spec(json!({"bucket": "default", "backend": "File", "file": {"path": "/data/kv"}})),
        );
        let moved = deployment(&file, &BuildInput::default()).unwrap();
        let template = |d: &Deployment| d.spec.as_ref().unwrap().template.clone();
        assert_ne!(
            template(&d),
            template(&moved),
            "a new backend is a new pod template: the pods roll"
        );
    }

    #[test]
    fn scale_to_zero_adds_the_activity_port_last_and_zero_runs_no_pods() {
        let app = app(
            "idle",
            json!({"replicas": 3, "env": [{"name": "A", "value": "1"}], "scaleToZero": {}}),
        );
        let serving = deployment(&app, &BuildInput::default()).unwrap();
        let c = container(&serving);
        let env: Vec<_> = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref()))
            .collect();
        assert_eq!(
            env,
            [
                ("WASMPOD_HTTP_PORT", Some("8080")),
                ("A", Some("1")),
                ("WASMPOD_ACTIVITY_PORT", Some("9091"))
            ]
        );
        let ports: Vec<_> = c
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (p.name.as_deref(), p.container_port))
            .collect();
        assert_eq!(ports, [(Some("http"), 8080), (Some("activity"), 9091)]);
        assert_eq!(serving.spec.as_ref().unwrap().replicas, Some(3));
        let input = BuildInput {
            at_zero: true,
            ..Default::default()
        };
        let zero = deployment(&app, &input).unwrap();
        assert_eq!(zero.spec.as_ref().unwrap().replicas, Some(0));

        let plain = deployment(&app_without_scale_to_zero(), &BuildInput::default()).unwrap();
        let c = container(&plain);
        assert!(
            c.env
                .as_ref()
                .unwrap()
                .iter()
                .all(|e| e.name != "WASMPOD_ACTIVITY_PORT")
        );
        assert_eq!(c.ports.as_ref().unwrap().len(), 1);
    }

    fn app_without_scale_to_zero() -> WasmApp {
        app("plain", json!({}))
    }

    #[test]
    fn missing_uid_is_an_error_not_an_orphan() {
        let mut app = app("x", json!({}));
        app.metadata.uid = None;
        assert!(deployment(&app, &BuildInput::default()).is_err());
    }
}
