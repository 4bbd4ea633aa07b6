//! What the apiserver does with the CRD alone: install, print, default, reject.

use std::future::Future;
use std::pin::Pin;

use anyhow::{bail, ensure};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::json;
use wasmpod_operator::crd::WasmApp;

use crate::env::{TestEnv, crd_installed};

type Fut<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

pub fn crd_installs_with_client_side_apply_and_prints_columns(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        ensure!(crd_installed(&env.client).await?, "CRD missing");
        // The harness installed it with client-side apply: the whole object sits in the
        // last-applied annotation, which must stay under 256 KiB.
        let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
        let crd = crds.get("wasmapps.wasmpod.io").await?;
        let annotation = crd
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LAST_APPLIED))
            .map_or(0, String::len);
        ensure!(annotation > 0, "client-side apply leaves {LAST_APPLIED}");
        ensure!(annotation < 256 * 1024, "annotation is {annotation} bytes");
        let again = env.cluster.kubectl(&[
            "apply",
            "-f",
            &crate::env::repo_root().join("crds").display().to_string(),
        ])?;
        let out = String::from_utf8_lossy(&again.stdout);
        ensure!(
            again.status.success() && out.contains("unchanged"),
            "re-apply: {out}"
        );

        env.create_app("hello", json!({"image": "registry.example/hello:v1"}))
            .await?;
        for what in ["wapp", "wasmapps", "wasmpod", "all"] {
            let got = env.kubectl(&["get", what, "-o", "name"])?;
            let text = String::from_utf8_lossy(&got.stdout);
            ensure!(
                text.contains("wasmapp.wasmpod.io/hello"),
                "`kubectl get {what}` lists the app: {text} {}",
                String::from_utf8_lossy(&got.stderr)
            );
        }
        let wide = env.kubectl(&["get", "wapp", "-o", "wide"])?;
        let text = String::from_utf8_lossy(&wide.stdout);
        let header = text.lines().next().unwrap_or_default();
        for col in ["NAME", "READY", "STATUS", "URL", "AGE", "IMAGE", "DIGEST"] {
            ensure!(header.contains(col), "column {col} in `{header}`");
        }
        ensure!(
            text.contains("registry.example/hello:v1"),
            "image shown with -o wide: {text}"
        );
        let narrow = env.kubectl(&["get", "wapp"])?;
        let header = String::from_utf8_lossy(&narrow.stdout);
        ensure!(!header.contains("IMAGE"), "image only in -o wide: {header}");
        Ok(())
    })
}

fn object(name: &str, spec: serde_json::Value) -> DynamicObject {
    let mut o = DynamicObject::new(name, &ApiResource::erase::<WasmApp>(&()));
    o.data = json!({ "spec": spec });
    o
}

pub fn invalid_wasmapps_are_rejected_with_the_field_message(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        let api: Api<DynamicObject> = Api::namespaced_with(
            env.client.clone(),
            &env.ns,
            &ApiResource::erase::<WasmApp>(&()),
        );
        let img = "registry.example/app:v1";
        let cases = [
            (
                "neg",
                json!({"image": img, "replicas": -1}),
                "spec.replicas",
            ),
            ("port", json!({"image": img, "port": 70000}), "spec.port"),
            ("noimage", json!({"replicas": 1}), "spec.image"),
            (
                "spaces",
                json!({"image": "a b"}),
                "spec.image must not contain spaces",
            ),
            (
                "minmax",
                json!({"image": img, "autoscaling": {"minReplicas": 5, "maxReplicas": 2}}),
                "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas",
            ),
            (
                "pdbboth",
                json!({"image": img, "podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}),
                "set exactly one of minAvailable or maxUnavailable",
            ),
            (
                "pdbnone",
                json!({"image": img, "podDisruptionBudget": {}}),
                "set exactly one of minAvailable or maxUnavailable",
            ),
            (
                "mounts",
                json!({"image": img, "volumeMounts": [{"name": "data", "mountPath": "/data"}]}),
                "spec.volumeMounts: every mount must name a volume declared in spec.volumes",
            ),
            (
                "probe",
                json!({"image": img, "readinessProbe": {"httpGet": {}, "tcpSocket": {}}}),
                "at most one of httpGet and tcpSocket",
            ),
            (
                "labels",
                json!({"image": img, "podLabels": {"wasmpod.io/app": "other"}}),
                "spec.podLabels must not set 'wasmpod.io/app'",
            ),
            (
                "portenv",
                json!({"image": img, "env": [{"name": "WASMPOD_HTTP_PORT", "value": "9000"}]}),
                "spec.env must not set WASMPOD_HTTP_PORT: the operator sets it from spec.port",
            ),
            (
                "svc",
                json!({"image": img, "service": {"type": "Ingress"}}),
                "spec.service.type",
            ),
            (
                "9lives",
                json!({"image": img}),
                "metadata.name must be a DNS-1035 label",
            ),
        ];
        for (name, spec, needle) in cases {
            match api
                .create(&PostParams::default(), &object(name, spec.clone()))
                .await
            {
                Ok(_) => bail!("{name}: {spec} was accepted"),
                Err(kube::Error::Api(status)) => {
                    ensure!(
                        status.code == 422,
                        "{name}: HTTP {} {}",
                        status.code,
                        status.message
                    );
                    ensure!(
                        status.message.contains(needle),
                        "{name}: message does not name the field ({needle:?}): {}",
                        status.message
                    );
                }
                Err(e) => bail!("{name}: {e}"),
            }
        }

        // A minimal valid app gets the schema defaults.
        let created = api
            .create(
                &PostParams::default(),
                &object("fine", json!({"image": img})),
            )
            .await?;
        let spec = &created.data["spec"];
        ensure!(spec["replicas"] == 1, "replicas default: {spec}");
        ensure!(spec["port"] == 8080, "port default: {spec}");
        ensure!(
            spec["runtimeClassName"] == "wasmpod",
            "runtimeClassName default: {spec}"
        );
        Ok(())
    })
}

pub fn samples_pass_server_side_validation(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        let dir = crate::env::repo_root().join("deploy/samples");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let file = path.display().to_string();
            let out = env.kubectl(&["apply", "--dry-run=server", "-f", &file])?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if path.ends_with("invalid.yaml") {
                ensure!(!out.status.success(), "invalid.yaml was accepted");
                for needle in [
                    "spec.replicas",
                    "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas",
                    "set exactly one of minAvailable or maxUnavailable",
                    "every mount must name a volume declared in spec.volumes",
                    "put credentials in a Secret and use redis.urlFrom",
                ] {
                    ensure!(
                        stderr.contains(needle),
                        "invalid.yaml: no {needle:?} in {stderr}"
                    );
                }
            } else {
                ensure!(out.status.success(), "{file}: {stderr}");
            }
            checked += 1;
        }
        ensure!(checked >= 5, "checked {checked} samples");
        Ok(())
    })
}
