//! `spec.capabilities`: what the CRD's rules refuse, and what the operator does with a Secret
//! or key that does not exist (yet).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{EnvVar, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use wasmpod_operator::crd::{CAPABILITIES_READY, DEGRADED, READY, WasmApp};
use wasmpod_operator::resources::labels;

use crate::children::wait_child;
use crate::conditions::{message, wait_condition};
use crate::env::{TestEnv, wait_for};
use crate::support::registry;

type Fut<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

const IMG: &str = "registry.example/app:v1";

fn object(name: &str, spec: serde_json::Value) -> DynamicObject {
    let mut o = DynamicObject::new(name, &ApiResource::erase::<WasmApp>(&()));
    o.data = json!({ "spec": spec });
    o
}

/// A spec with `capabilities` and a volume mounted at `/data`.
fn with_caps(caps: serde_json::Value) -> serde_json::Value {
    json!({"image": IMG, "capabilities": caps,
           "volumes": [{"name": "data", "emptyDir": {}}],
           "volumeMounts": [{"name": "data", "mountPath": "/data"}]})
}

fn kv(bucket: serde_json::Value) -> serde_json::Value {
    with_caps(json!({"keyValue": [bucket]}))
}

fn redis_url(url: &str) -> serde_json::Value {
    kv(json!({"bucket": "cache", "backend": "Redis", "redis": {"url": url}}))
}

fn config(entry: serde_json::Value) -> serde_json::Value {
    with_caps(json!({"config": [entry]}))
}

fn hosts(list: serde_json::Value) -> serde_json::Value {
    with_caps(json!({"allowedOutboundHosts": list}))
}

pub fn capability_rules_reject_nonsense_with_the_field_message(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        let api: Api<DynamicObject> = Api::namespaced_with(
            env.client.clone(),
            &env.ns,
            &ApiResource::erase::<WasmApp>(&()),
        );
        let url_from = json!({"urlFrom": {"secretKeyRef": {"name": "redis", "key": "url"}}});
        let kv0 = "spec.capabilities.keyValue[0]";
        let needs_url = "backend Redis needs redis.url or redis.urlFrom";
        let one_url = "redis needs exactly one of url or urlFrom";
        let only_redis = "redis is only for backend Redis";
        let only_file = "file is only for backend File";
        let abs = "file.path must be an absolute path without '..'";
        let name_rule = "must be 1-63 lower-case letters, digits and '_', starting with a letter";
        let env_rule = "spec.env must not set WASMPOD_KEYVALUE_*, WASMPOD_CONFIG_* or WASMPOD_ALLOWED_OUTBOUND_HOSTS: the operator sets them from spec.capabilities";
        let host_rule = "each entry is scheme://host[:port]";
        // (object name, spec, the field path and the message the apiserver must name)
        let cases: Vec<(&str, serde_json::Value, String, &str)> = vec![
            (
                "unknown-backend",
                kv(json!({"bucket": "a", "backend": "Etcd"})),
                format!("{kv0}.backend"),
                r#"supported values: "Memory", "Redis", "File""#,
            ),
            (
                "no-backend",
                kv(json!({"bucket": "a"})),
                format!("{kv0}.backend"),
                "Required value",
            ),
            (
                "redis-without-url",
                kv(json!({"bucket": "a", "backend": "Redis"})),
                format!("{kv0}.redis"),
                needs_url,
            ),
            (
                "redis-empty",
                kv(json!({"bucket": "a", "backend": "Redis", "redis": {}})),
                format!("{kv0}.redis"),
                one_url,
            ),
            (
                "redis-both-urls",
                kv(json!({"bucket": "a", "backend": "Redis", "redis":
                    {"url": "redis://r:6379", "urlFrom": url_from["urlFrom"].clone()}})),
                format!("{kv0}.redis"),
                one_url,
            ),
            (
                "redis-with-file",
                kv(
                    json!({"bucket": "a", "backend": "Redis", "redis": url_from.clone(),
                          "file": {"path": "/data/kv"}}),
                ),
                format!("{kv0}.file"),
                only_file,
            ),
            (
                "memory-with-redis",
                kv(json!({"bucket": "a", "backend": "Memory", "redis": url_from.clone()})),
                format!("{kv0}.redis"),
                only_redis,
            ),
            (
                "memory-with-file",
                kv(json!({"bucket": "a", "backend": "Memory", "file": {"path": "/data/kv"}})),
                format!("{kv0}.file"),
                only_file,
            ),
            (
                "file-without-path",
                kv(json!({"bucket": "a", "backend": "File"})),
                format!("{kv0}.file"),
                "backend File needs file.path",
            ),
            (
                "file-relative",
                kv(json!({"bucket": "a", "backend": "File", "file": {"path": "data/kv"}})),
                format!("{kv0}.file.path"),
                abs,
            ),
            (
                "file-dotdot",
                kv(json!({"bucket": "a", "backend": "File", "file": {"path": "/data/../etc"}})),
                format!("{kv0}.file.path"),
                abs,
            ),
            (
                "file-outside-mounts",
                kv(json!({"bucket": "a", "backend": "File", "file": {"path": "/var/kv"}})),
                "spec.capabilities.keyValue".into(),
                "the file.path of a File bucket must be inside one of spec.volumeMounts",
            ),
            (
                "file-mount-prefix-is-not-a-parent",
                kv(json!({"bucket": "a", "backend": "File", "file": {"path": "/database"}})),
                "spec.capabilities.keyValue".into(),
                "must be inside one of spec.volumeMounts",
            ),
            (
                "redis-credentials",
                redis_url("redis://default:hunter2@redis.cache:6379/0"),
                format!("{kv0}.redis.url"),
                "redis.url must not contain credentials: put credentials in a Secret and use redis.urlFrom",
            ),
            (
                "redis-scheme",
                redis_url("http://redis.cache:6379"),
                format!("{kv0}.redis.url"),
                "redis.url must start with redis:// and a host",
            ),
            (
                "redis-tls",
                redis_url("rediss://redis.example.com:6380"),
                format!("{kv0}.redis.url"),
                "rediss://, TLS, is not supported yet",
            ),
            (
                "redis-no-host",
                redis_url("redis:///0"),
                format!("{kv0}.redis.url"),
                "redis.url must start with redis:// and a host",
            ),
            (
                "bucket-upper",
                kv(json!({"bucket": "Sessions", "backend": "Memory"})),
                format!("{kv0}.bucket"),
                name_rule,
            ),
            (
                "bucket-dash",
                kv(json!({"bucket": "my-bucket", "backend": "Memory"})),
                format!("{kv0}.bucket"),
                name_rule,
            ),
            (
                "bucket-twice",
                with_caps(json!({"keyValue": [{"bucket": "a", "backend": "Memory"},
                                              {"bucket": "a", "backend": "Memory"}]})),
                "spec.capabilities.keyValue[1]".into(),
                "Duplicate value",
            ),
            (
                "url-from-without-key",
                kv(json!({"bucket": "a", "backend": "Redis",
                          "redis": {"urlFrom": {"secretKeyRef": {"name": "redis"}}}})),
                format!("{kv0}.redis.urlFrom.secretKeyRef.key"),
                "Required value",
            ),
            (
                "config-name",
                config(json!({"name": "api-token", "value": "x"})),
                "spec.capabilities.config[0].name".into(),
                name_rule,
            ),
            (
                "config-neither",
                config(json!({"name": "a"})),
                "spec.capabilities.config[0]".into(),
                "set exactly one of value or valueFrom",
            ),
            (
                "config-both",
                config(json!({"name": "a", "value": "x",
                              "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}})),
                "spec.capabilities.config[0]".into(),
                "set exactly one of value or valueFrom",
            ),
            (
                "config-two-sources",
                config(json!({"name": "a", "valueFrom": {
                    "secretKeyRef": {"name": "s", "key": "k"},
                    "configMapKeyRef": {"name": "c", "key": "k"}}})),
                "spec.capabilities.config[0].valueFrom".into(),
                "valueFrom needs exactly one of configMapKeyRef or secretKeyRef",
            ),
            (
                "config-no-source",
                config(json!({"name": "a", "valueFrom": {}})),
                "spec.capabilities.config[0].valueFrom".into(),
                "valueFrom needs exactly one of configMapKeyRef or secretKeyRef",
            ),
            (
                "config-bad-secret-name",
                config(
                    json!({"name": "a", "valueFrom": {"secretKeyRef": {"name": "Bad_Name", "key": "k"}}}),
                ),
                "spec.capabilities.config[0].valueFrom.secretKeyRef.name".into(),
                "should match",
            ),
            (
                "env-keyvalue",
                json!({"image": IMG, "env": [{"name": "WASMPOD_KEYVALUE_cache", "value": "memory"}]}),
                "spec.env".into(),
                env_rule,
            ),
            (
                "env-config",
                json!({"image": IMG, "env": [{"name": "WASMPOD_CONFIG_token", "value": "x"}]}),
                "spec.env".into(),
                env_rule,
            ),
            (
                "env-hosts",
                json!({"image": IMG, "env": [{"name": "WASMPOD_ALLOWED_OUTBOUND_HOSTS", "value": ""}]}),
                "spec.env".into(),
                env_rule,
            ),
        ];
        let bad_hosts = [
            "api.example.com",
            "ftp://example.com",
            "tcp://db.example.com",
            "*://example.com",
            "https://example.com/path",
            "https://Example.com",
            "https://a.com,https://b.com",
        ];
        let host_cases = bad_hosts.iter().map(|h| {
            (
                "bad-host",
                hosts(json!(["https://ok.example.com", h])),
                "spec.capabilities.allowedOutboundHosts[1]".to_string(),
                host_rule,
            )
        });
        for (name, spec, path, needle) in cases.into_iter().chain(host_cases) {
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
                        status.message.contains(&format!("{path}:"))
                            && status.message.contains(needle),
                        "{name}: message does not name {path} with {needle:?}: {}",
                        status.message
                    );
                    ensure!(
                        !status.message.contains("hunter2"),
                        "{name}: the error echoes the credentials: {}",
                        status.message
                    );
                }
                Err(e) => bail!("{name}: {e}"),
            }
        }

        // What the rules accept, and what the apiserver keeps of it.
        let full = json!({
            "image": IMG,
            "volumes": [{"name": "data", "emptyDir": {}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data/"}],
            "capabilities": {
                "keyValue": [
                    {"bucket": "default", "backend": "Memory"},
                    {"bucket": "cache", "backend": "Redis", "redis": {"url": "redis://redis.cache.svc:6379/0"}},
                    {"bucket": "sessions", "backend": "Redis",
                     "redis": {"urlFrom": {"secretKeyRef": {"name": "redis", "key": "url"}}}},
                    {"bucket": "uploads", "backend": "File", "file": {"path": "/data/kv"}},
                    {"bucket": "root", "backend": "File", "file": {"path": "/data"}}
                ],
                "config": [
                    {"name": "greeting", "value": "hello"},
                    {"name": "empty", "value": ""},
                    {"name": "api_token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                    {"name": "region", "valueFrom": {"configMapKeyRef": {"name": "site", "key": "region.name", "optional": true}}}
                ],
                "allowedOutboundHosts": [
                    "https://api.example.com", "http://*.svc.cluster.local:8080", "https://*",
                    "tcp://10.0.0.0/8:5432", "udp://[fd00::1]:53", "*://*:*", "http://localhost:8000-8999"
                ]
            }
        });
        let created = api
            .create(&PostParams::default(), &object("full", full.clone()))
            .await
            .context("the full example is accepted")?;
        ensure!(
            created.data["spec"]["capabilities"] == full["capabilities"],
            "kept as written: {}",
            created.data["spec"]["capabilities"]
        );
        let none = api
            .create(
                &PostParams::default(),
                &object("deny-all", hosts(json!([]))),
            )
            .await?;
        ensure!(
            none.data["spec"]["capabilities"]["allowedOutboundHosts"] == json!([]),
            "an empty allow-list (nothing allowed) stays distinct from an absent one: {}",
            none.data["spec"]
        );
        Ok(())
    })
}

fn env_of(d: &Deployment) -> Vec<EnvVar> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers[0].env.clone())
        .unwrap_or_default()
}

fn var<'a>(env: &'a [EnvVar], name: &str) -> Option<&'a EnvVar> {
    env.iter().find(|e| e.name == name)
}

fn checksum(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(labels::CONFIG_CHECKSUM_ANNOTATION).cloned())
}

async fn put_secret(env: &TestEnv, name: &str, data: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut s = Secret::default();
    s.metadata.name = Some(name.into());
    s.string_data = Some(
        data.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect::<BTreeMap<_, _>>(),
    );
    env.api::<Secret>()
        .patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&s))
        .await?;
    Ok(())
}

pub fn missing_capability_secret_is_a_condition_until_it_exists(env: &mut TestEnv) -> Fut<'_> {
    Box::pin(async move {
        const VALUE: &str = "s3cr3t-value";
        env.registry
            .push("apps/hello", "v1", registry::http_artifact());
        env.start_operator();
        env.create_app(
            "kv",
            json!({"image": env.image("apps/hello:v1"), "capabilities": {
                "keyValue": [{"bucket": "sessions", "backend": "Redis",
                              "redis": {"urlFrom": {"secretKeyRef": {"name": "redis", "key": "url"}}}}],
                "config": [
                    {"name": "greeting", "value": "hello"},
                    {"name": "token", "valueFrom": {"secretKeyRef": {"name": "tokens", "key": "api"}}},
                    {"name": "region", "valueFrom": {"configMapKeyRef": {"name": "site", "key": "region", "optional": true}}}
                ],
                "allowedOutboundHosts": ["https://api.example.com"]
            }}),
        )
        .await?;
        let apps = env.api::<WasmApp>();
        let deployments = env.api::<Deployment>();

        let s = wait_condition(
            &apps,
            "kv",
            CAPABILITIES_READY,
            "False",
            Some("SecretNotFound"),
        )
        .await?;
        let msg = message(&s, CAPABILITIES_READY);
        for needle in [
            r#"spec.capabilities.keyValue[0].redis.urlFrom.secretKeyRef (bucket "sessions"): Secret "redis" not found"#,
            r#"spec.capabilities.config[1].valueFrom.secretKeyRef (config "token"): Secret "tokens" not found"#,
        ] {
            ensure!(msg.contains(needle), "no {needle:?} in {msg:?}");
        }
        ensure!(
            !msg.contains("site"),
            "optional references are no problem: {msg}"
        );
        let ready = s.condition(READY).context("Ready")?;
        ensure!(
            ready.status == "False" && ready.reason == "SecretNotFound",
            "{ready:?}"
        );
        ensure!(
            s.condition(DEGRADED)
                .is_some_and(|c| c.status == "True" && c.reason == "SecretNotFound"),
            "{s:?}"
        );

        // The Deployment is applied all the same: its pods start once the Secret exists.
        let d = wait_child(&deployments, "kv", "the Deployment", |_| true).await?;
        let vars = env_of(&d);
        let url = var(&vars, "WASMPOD_KEYVALUE_sessions").context("bucket setting")?;
        let sel = url
            .value_from
            .as_ref()
            .and_then(|f| f.secret_key_ref.as_ref())
            .context("secretKeyRef")?;
        ensure!(url.value.is_none() && sel.name == "redis" && sel.key == "url");
        ensure!(
            var(&vars, "WASMPOD_CONFIG_greeting").and_then(|v| v.value.as_deref()) == Some("hello")
        );
        ensure!(
            var(&vars, "WASMPOD_ALLOWED_OUTBOUND_HOSTS").and_then(|v| v.value.as_deref())
                == Some("https://api.example.com")
        );
        let first = checksum(&d);
        ensure!(first.is_some(), "referenced Secrets give a checksum");

        let events: Api<Event> = env.api();
        wait_for("a SecretNotFound Warning event", 30, || async {
            let list = events.list(&ListParams::default()).await?;
            Ok(list
                .items
                .iter()
                .find(|e| {
                    e.reason.as_deref() == Some("SecretNotFound")
                        && e.type_.as_deref() == Some("Warning")
                })
                .map(|_| ()))
        })
        .await?;

        // The Secret appears without the key: the condition says which key.
        put_secret(env, "redis", &[("uri", VALUE)]).await?;
        let s = wait_condition(
            &apps,
            "kv",
            CAPABILITIES_READY,
            "False",
            Some("KeyNotFound"),
        )
        .await?;
        let msg = message(&s, CAPABILITIES_READY);
        ensure!(
            msg.contains(r#"key "url" not found in Secret "redis""#)
                && msg.contains(r#"Secret "tokens" not found"#),
            "{msg}"
        );

        let url = format!("redis://:{VALUE}@redis:6379/0");
        put_secret(env, "redis", &[("url", url.as_str())]).await?;
        put_secret(env, "tokens", &[("api", VALUE)]).await?;
        let s = wait_condition(&apps, "kv", CAPABILITIES_READY, "True", Some("Resolved")).await?;
        ensure!(
            message(&s, CAPABILITIES_READY).contains(r#"ConfigMap "site" not found"#),
            "an unset optional value is noted: {s:?}"
        );
        ensure!(
            s.condition(READY).is_some_and(|c| c.reason == "RollingOut"),
            "no controller-manager here: the rollout waits, the Secret no longer does: {s:?}"
        );
        ensure!(
            s.condition(DEGRADED).is_some_and(|c| c.status == "False"),
            "{s:?}"
        );
        wait_child(&deployments, "kv", "a new checksum: the pods roll", |d| {
            checksum(d) != first
        })
        .await?;

        // A new backend is a new pod template.
        apps.patch(
            "kv",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"capabilities": {"keyValue": [
                {"bucket": "sessions", "backend": "Memory"}]}}})),
        )
        .await?;
        wait_child(&deployments, "kv", "the bucket on Memory", |d| {
            var(&env_of(d), "WASMPOD_KEYVALUE_sessions").and_then(|v| v.value.as_deref())
                == Some("memory")
        })
        .await?;

        // The value never left the Secret: not in the pod spec, the status or an Event.
        let d = serde_json::to_string(&deployments.get("kv").await?)?;
        let app = serde_json::to_string(&apps.get("kv").await?)?;
        let evs = serde_json::to_string(&events.list(&ListParams::default()).await?.items)?;
        for (what, text) in [("Deployment", d), ("WasmApp", app), ("Events", evs)] {
            ensure!(!text.contains(VALUE), "the Secret's value is in the {what}");
        }
        Ok(())
    })
}
