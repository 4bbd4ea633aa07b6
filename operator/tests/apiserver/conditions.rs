//! Status and conditions: following the Deployment, and image problems.

use std::future::Future;
use std::pin::Pin;

use anyhow::{Context as _, ensure};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use wasmpod_operator::crd::{DEGRADED, IMAGE_VALID, READY, WasmApp, WasmAppStatus};

use crate::children::wait_child;
use crate::env::{TestEnv, spec, wait_for};
use crate::support::registry;

type Fut<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

/// Waits until the app's condition `type_` has `status` (and `reason`, when given).
pub async fn wait_condition(
    apps: &Api<WasmApp>,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> anyhow::Result<WasmAppStatus> {
    let what = format!("{name}: {type_}={status} {}", reason.unwrap_or_default());
    wait_for(&what, 30, || async {
        let s = apps.get(name).await?.status;
        Ok(s.filter(|s| {
            s.condition(type_)
                .is_some_and(|c| c.status == status && reason.is_none_or(|r| c.reason == r))
        }))
    })
    .await
}

pub fn message<'a>(s: &'a WasmAppStatus, type_: &str) -> &'a str {
    s.condition(type_).map_or("", |c| c.message.as_str())
}

pub fn conditions_follow_the_deployment_status(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        env.registry
            .push("apps/hello", "v1", registry::http_artifact());
        env.start_operator();
        env.create_app(
            "hello",
            json!({"image": env.image("apps/hello:v1"), "replicas": 2}),
        )
        .await?;
        let deployments = env.api::<Deployment>();
        let apps = env.api::<WasmApp>();
        let d = wait_child(&deployments, "hello", "the Deployment", |_| true).await?;
        let s = wait_condition(&apps, "hello", READY, "False", Some("RollingOut")).await?;
        ensure!(s.condition(DEGRADED).is_some_and(|c| c.status == "False"));

        // No controller-manager here: the test plays the Deployment controller.
        let generation = d.metadata.generation.context("generation")?;
        let settled = json!({"status": {"observedGeneration": generation, "replicas": 2,
            "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}});
        deployments
            .patch_status("hello", &PatchParams::default(), &Patch::Merge(&settled))
            .await?;
        let s = wait_condition(&apps, "hello", READY, "True", Some("Ready")).await?;
        ensure!(
            s.ready.as_deref() == Some("2/2") && s.ready_replicas == Some(2),
            "{s:?}"
        );
        let ready = s.condition(READY).context("Ready")?;
        ensure!(ready.observed_generation.is_some() && !ready.message.is_empty());

        let waited = env.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "wapp/hello",
            "--timeout=20s",
        ])?;
        ensure!(
            waited.status.success(),
            "kubectl wait: {}",
            String::from_utf8_lossy(&waited.stderr)
        );

        let stalled = json!({"status": {"availableReplicas": 1, "readyReplicas": 1, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"hello-abc\" has timed out progressing."}]}});
        deployments
            .patch_status("hello", &PatchParams::default(), &Patch::Merge(&stalled))
            .await?;
        let s = wait_condition(
            &apps,
            "hello",
            DEGRADED,
            "True",
            Some("ProgressDeadlineExceeded"),
        )
        .await?;
        ensure!(
            s.condition(READY).is_some_and(|c| c.status == "False"),
            "{s:?}"
        );
        ensure!(message(&s, DEGRADED).contains("timed out"), "{s:?}");
        Ok(())
    })
}

async fn pull_secret(env: &TestEnv, name: &str, user: &str, pass: &str) -> anyhow::Result<()> {
    let config = json!({"auths": {env.registry.host(): {"username": user, "password": pass}}});
    let mut s = Secret::default();
    s.metadata.name = Some(name.into());
    s.type_ = Some("kubernetes.io/dockerconfigjson".into());
    s.data = Some(
        [(
            ".dockerconfigjson".to_string(),
            ByteString(serde_json::to_vec(&config)?),
        )]
        .into(),
    );
    env.api::<Secret>()
        .create(&PostParams::default(), &s)
        .await?;
    Ok(())
}

pub fn image_problems_set_image_valid_without_stalling_others(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        let reg = &env.registry;
        let good_digest = reg.push("apps/hello", "v1", registry::http_artifact());
        reg.push("library/nginx", "1", registry::container_image());
        reg.push("private/app", "v1", registry::http_artifact());
        reg.require_login("private/", "alice", "right");
        pull_secret(env, "wrong", "alice", "nope").await?;
        env.start_operator();

        let apps = env.api::<WasmApp>();
        let deployments = env.api::<Deployment>();
        // Nothing listens on 127.0.0.1:9: connections are refused at once.
        env.create_app("down", spec("127.0.0.1:9/apps/x:v1"))
            .await?;
        env.create_app("nginx", spec(&env.image("library/nginx:1")))
            .await?;
        env.create_app("missing", spec(&env.image("apps/hello:v404")))
            .await?;
        env.create_app("anon", spec(&env.image("private/app:v1")))
            .await?;
        env.create_app(
            "refused",
            json!({"image": env.image("private/app:v1"), "imagePullSecrets": [{"name": "wrong"}]}),
        )
        .await?;
        env.create_app("good", spec(&env.image("apps/hello:v1")))
            .await?;

        let s = wait_condition(&apps, "good", IMAGE_VALID, "True", None).await?;
        ensure!(s.image_digest.as_deref() == Some(good_digest.as_str()));

        let s = wait_condition(&apps, "nginx", IMAGE_VALID, "False", Some("ImageNotWasm")).await?;
        ensure!(message(&s, IMAGE_VALID).contains("linux/amd64"), "{s:?}");
        ensure!(
            s.condition(READY)
                .is_some_and(|c| c.status == "False" && c.reason == "ImageNotWasm")
        );
        ensure!(s.condition(DEGRADED).is_some_and(|c| c.status == "True"));
        ensure!(
            deployments.get_opt("nginx").await?.is_none(),
            "no Deployment for a container image"
        );

        let s = wait_condition(
            &apps,
            "missing",
            IMAGE_VALID,
            "False",
            Some("ImageNotFound"),
        )
        .await?;
        ensure!(
            message(&s, IMAGE_VALID).contains("apps/hello:v404"),
            "{s:?}"
        );
        let s =
            wait_condition(&apps, "anon", IMAGE_VALID, "False", Some("ImageAuthFailed")).await?;
        ensure!(
            message(&s, IMAGE_VALID).contains("no imagePullSecrets entry"),
            "{s:?}"
        );
        let s = wait_condition(
            &apps,
            "refused",
            IMAGE_VALID,
            "False",
            Some("ImageAuthFailed"),
        )
        .await?;
        ensure!(
            message(&s, IMAGE_VALID).contains("Secret \"wrong\""),
            "{s:?}"
        );
        let s = wait_condition(
            &apps,
            "down",
            IMAGE_VALID,
            "Unknown",
            Some("RegistryUnreachable"),
        )
        .await?;
        ensure!(
            s.condition(DEGRADED).is_some_and(|c| c.status == "False"),
            "{s:?}"
        );
        // The kubelet may still reach a registry the operator cannot: the app is deployed as written.
        wait_child(
            &deployments,
            "down",
            "a Deployment for the unreachable image",
            |_| true,
        )
        .await?;

        let events: Api<Event> = env.api();
        wait_for("an ImageNotWasm Warning event", 30, || async {
            let list = events.list(&ListParams::default()).await?;
            Ok(list
                .items
                .iter()
                .find(|e| {
                    e.reason.as_deref() == Some("ImageNotWasm")
                        && e.type_.as_deref() == Some("Warning")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("nginx")
                })
                .map(|_| ()))
        })
        .await?;

        // A running app whose new image is not Wasm keeps its pods on the previous digest.
        apps.patch(
            "good",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": env.image("library/nginx:1")}})),
        )
        .await?;
        let s = wait_condition(&apps, "good", IMAGE_VALID, "False", Some("ImageNotWasm")).await?;
        ensure!(
            s.image_digest.as_deref() == Some(good_digest.as_str()),
            "{s:?}"
        );
        let d = deployments.get("good").await?;
        let image = d
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|p| p.containers[0].image.clone())
            .unwrap_or_default();
        ensure!(
            image.ends_with(&good_digest),
            "pods stay on the previous image: {image}"
        );
        Ok(())
    })
}
