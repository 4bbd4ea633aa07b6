//! Children: created right, scaled through the WasmApp, repaired, rolled, removed.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use wasmpod_operator::crd::{IMAGE_VALID, WasmApp};
use wasmpod_operator::resources::{COMMAND_PLACEHOLDER, labels};

use crate::env::{TestEnv, spec, wait_for};
use crate::support::registry;

type Fut<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

/// Waits until `name` of kind `K` exists and `check` accepts it.
pub async fn wait_child<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    check: impl Fn(&K) -> bool,
) -> anyhow::Result<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    let last = std::sync::Mutex::new(None::<K>);
    let got = wait_for(what, 30, || async {
        let obj = api.get_opt(name).await?;
        let ok = obj.clone().filter(|o| check(o));
        *last.lock().unwrap() = obj;
        Ok(ok)
    })
    .await;
    got.map_err(|e| {
        let seen = last.lock().unwrap().take();
        let seen = seen.map(|o| serde_json::to_string_pretty(&o).unwrap_or_default());
        e.context(format!(
            "last seen: {}",
            seen.unwrap_or_else(|| "nothing".into())
        ))
    })
}

fn template_annotations(d: &Deployment) -> BTreeMap<String, String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default()
}

fn replicas(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.replicas)
}

async fn config_map(env: &TestEnv, name: &str, value: &str) -> anyhow::Result<()> {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.data = Some(BTreeMap::from([(
        "greeting".to_string(),
        value.to_string(),
    )]));
    env.api::<ConfigMap>()
        .patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&cm),
        )
        .await?;
    Ok(())
}

pub fn children_are_created_with_the_right_fields(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        let digest = env
            .registry
            .push("apps/hello", "v1", registry::http_artifact());
        let image = env.image("apps/hello:v1");
        config_map(env, "settings", "hi").await?;
        env.start_operator();
        let app = env
            .create_app(
                "hello",
                json!({"image": image, "replicas": 2,
                       "envFrom": [{"configMapRef": {"name": "settings"}}],
                       "autoscaling": {"maxReplicas": 4},
                       "podDisruptionBudget": {"minAvailable": 1}}),
            )
            .await?;
        let uid = app.uid().context("uid")?;

        let d = wait_child(&env.api::<Deployment>(), "hello", "the Deployment", |_| {
            true
        })
        .await?;
        let pod = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.clone())
            .context("pod spec")?;
        let c = &pod.containers[0];
        ensure!(replicas(&d) == Some(2), "replicas {:?}", replicas(&d));
        ensure!(pod.runtime_class_name.as_deref() == Some("wasmpod"));
        ensure!(
            c.image.as_deref() == Some(&format!("{image}@{digest}")[..]),
            "image {:?}",
            c.image
        );
        ensure!(
            c.command == Some(vec![COMMAND_PLACEHOLDER.to_string()]),
            "command {:?}",
            c.command
        );
        let port = &c.ports.as_ref().context("ports")?[0];
        ensure!(port.container_port == 8080 && port.name.as_deref() == Some("http"));
        ensure!(c.env_from.as_ref().is_some_and(|e| e.len() == 1));
        ensure!(template_annotations(&d).contains_key(labels::CONFIG_CHECKSUM_ANNOTATION));
        let owner = &d.owner_references()[0];
        ensure!(owner.uid == uid && owner.kind == "WasmApp" && owner.controller == Some(true));
        let managers: Vec<_> = d
            .managed_fields()
            .iter()
            .map(|m| {
                (
                    m.manager.clone().unwrap_or_default(),
                    m.operation.clone().unwrap_or_default(),
                )
            })
            .collect();
        ensure!(
            managers.contains(&("wasmpod-operator".into(), "Apply".into())),
            "server-side applied by wasmpod-operator: {managers:?}"
        );

        let svc = wait_child(&env.api::<Service>(), "hello", "the Service", |_| true).await?;
        let sp = svc.spec.context("service spec")?;
        let p = &sp.ports.context("ports")?[0];
        ensure!(p.port == 80 && p.target_port == Some(IntOrString::String("http".into())));
        ensure!(sp.selector == Some(labels::selector("hello")));

        let hpa = wait_child(
            &env.api::<HorizontalPodAutoscaler>(),
            "hello",
            "the HPA",
            |_| true,
        )
        .await?;
        let target = hpa.spec.context("hpa spec")?.scale_target_ref;
        ensure!(target.kind == "WasmApp" && target.name == "hello");
        ensure!(target.api_version.as_deref() == Some("wasmpod.io/v1alpha1"));

        let pdb = wait_child(
            &env.api::<PodDisruptionBudget>(),
            "hello",
            "the PDB",
            |_| true,
        )
        .await?;
        ensure!(pdb.spec.context("pdb spec")?.min_available == Some(IntOrString::Int(1)));

        let apps = env.api::<WasmApp>();
        let ns = env.ns.clone();
        let status = wait_for("status with the resolved image", 30, || async {
            let app = apps.get("hello").await?;
            Ok(app.status.filter(|s| {
                s.condition(IMAGE_VALID).is_some_and(|c| c.status == "True") && s.url.is_some()
            }))
        })
        .await?;
        ensure!(status.image_digest.as_deref() == Some(digest.as_str()));
        ensure!(status.component_kind == Some(wasmpod_operator::crd::ComponentKind::Http));
        ensure!(status.selector.as_deref() == Some("wasmpod.io/app=hello"));
        ensure!(status.url.as_deref() == Some(&format!("http://hello.{ns}.svc.cluster.local")[..]));
        ensure!(status.observed_generation == app.metadata.generation);
        Ok(())
    })
}

pub fn scale_subresource_moves_the_deployment(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        env.registry
            .push("apps/hello", "v1", registry::http_artifact());
        env.start_operator();
        env.create_app("hello", spec(&env.image("apps/hello:v1")))
            .await?;
        let deployments = env.api::<Deployment>();
        wait_child(&deployments, "hello", "1 replica", |d| {
            replicas(d) == Some(1)
        })
        .await?;

        let out = env.kubectl(&["scale", "wapp/hello", "--replicas=3"])?;
        ensure!(
            out.status.success(),
            "kubectl scale: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_child(&deployments, "hello", "3 replicas", |d| {
            replicas(d) == Some(3)
        })
        .await?;

        let apps = env.api::<WasmApp>();
        apps.patch_scale(
            "hello",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await?;
        wait_child(&deployments, "hello", "0 replicas", |d| {
            replicas(d) == Some(0)
        })
        .await?;
        let scale = apps.get_scale("hello").await?;
        // `replicas: 0` is omitted on the wire.
        ensure!(scale.spec.and_then(|s| s.replicas).unwrap_or(0) == 0);
        let selector = wait_for("scale selector", 30, || async {
            Ok(apps
                .get_scale("hello")
                .await?
                .status
                .and_then(|s| s.selector))
        })
        .await?;
        ensure!(selector == "wasmpod.io/app=hello", "selector {selector}");
        Ok(())
    })
}

pub fn deleted_or_edited_children_are_repaired(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        env.registry
            .push("apps/hello", "v1", registry::http_artifact());
        env.start_operator();
        env.create_app("hello", spec(&env.image("apps/hello:v1")))
            .await?;
        let deployments = env.api::<Deployment>();
        let services = env.api::<Service>();
        let first = wait_child(&deployments, "hello", "the Deployment", |_| true).await?;
        wait_child(&services, "hello", "the Service", |_| true).await?;

        deployments
            .delete("hello", &DeleteParams::default())
            .await?;
        let old_uid = first.uid();
        wait_child(&deployments, "hello", "a new Deployment", |d| {
            d.uid() != old_uid
        })
        .await?;

        let by_hand = PatchParams::default();
        services
            .patch("hello", &by_hand, &Patch::Merge(json!({"spec": {"ports": [{"name": "http", "port": 9999, "protocol": "TCP", "targetPort": "http"}]}})))
            .await?;
        deployments
            .patch(
                "hello",
                &by_hand,
                &Patch::Merge(
                    json!({"spec": {"template": {"spec": {"runtimeClassName": "runc"}}}}),
                ),
            )
            .await?;
        wait_child(&services, "hello", "the Service port restored", |s| {
            s.spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .is_some_and(|p| p[0].port == 80)
        })
        .await?;
        wait_child(&deployments, "hello", "the RuntimeClass restored", |d| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|p| p.runtime_class_name.as_deref())
                == Some("wasmpod")
        })
        .await?;
        Ok(())
    })
}

pub fn config_edits_change_the_pod_template(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        env.registry
            .push("apps/hello", "v1", registry::http_artifact());
        config_map(env, "settings", "hello").await?;
        env.start_operator();
        env.create_app(
            "hello",
            json!({"image": env.image("apps/hello:v1"),
                   "env": [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}}],
                   "volumes": [{"name": "tls", "secret": {"secretName": "tls", "optional": true}}],
                   "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": true}]}),
        )
        .await?;
        let deployments = env.api::<Deployment>();
        let sum = |d: &Deployment| {
            template_annotations(d)
                .get(labels::CONFIG_CHECKSUM_ANNOTATION)
                .cloned()
        };
        let first =
            sum(&wait_child(&deployments, "hello", "checksum", |d| sum(d).is_some()).await?);

        config_map(env, "settings", "bonjour").await?;
        let second = sum(&wait_child(
            &deployments,
            "hello",
            "checksum after the ConfigMap edit",
            |d| sum(d) != first,
        )
        .await?);

        let mut secret = Secret::default();
        secret.metadata.name = Some("tls".into());
        secret.string_data = Some(BTreeMap::from([("tls.crt".to_string(), "pem".to_string())]));
        env.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await?;
        wait_child(
            &deployments,
            "hello",
            "checksum after the Secret appeared",
            |d| sum(d) != second,
        )
        .await?;
        Ok(())
    })
}

pub fn unwanted_children_are_removed(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        env.registry.push(
            "apps/job",
            "v1",
            registry::artifact(&["wasi:cli/run@0.2.0"], None),
        );
        env.start_operator();
        env.create_app(
            "job",
            json!({"image": env.image("apps/job:v1"),
                   "autoscaling": {"maxReplicas": 2}, "podDisruptionBudget": {"maxUnavailable": 1}}),
        )
        .await?;
        let hpas = env.api::<HorizontalPodAutoscaler>();
        let pdbs = env.api::<PodDisruptionBudget>();
        let services = env.api::<Service>();
        wait_child(&hpas, "job", "the HPA", |_| true).await?;
        wait_child(&pdbs, "job", "the PDB", |_| true).await?;
        let apps = env.api::<WasmApp>();
        wait_for("the command component recognized", 30, || async {
            let s = apps.get("job").await?.status;
            Ok(s.filter(|s| {
                s.component_kind == Some(wasmpod_operator::crd::ComponentKind::Command)
            }))
        })
        .await?;
        ensure!(
            services.get_opt("job").await?.is_none(),
            "command components get no Service"
        );

        apps.patch(
            "job",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"autoscaling": null, "podDisruptionBudget": null,
                                          "service": {"type": "Headless"}}}),
            ),
        )
        .await?;
        wait_for("HPA and PDB removed", 30, || async {
            let gone = hpas.get_opt("job").await?.is_none() && pdbs.get_opt("job").await?.is_none();
            Ok(gone.then_some(()))
        })
        .await?;
        let headless =
            |s: &Service| s.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None");
        wait_child(&services, "job", "a headless Service", headless).await?;

        // clusterIP cannot change in place: the operator recreates the Service.
        apps.patch(
            "job",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"service": {"type": "ClusterIP"}}})),
        )
        .await?;
        wait_child(&services, "job", "a ClusterIP Service", |s| !headless(s)).await?;
        Ok(())
    })
}
