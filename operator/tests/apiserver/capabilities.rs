//! `spec.capabilities`: what the CRD's rules refuse.

use std::future::Future;
use std::pin::Pin;

use anyhow::{Context as _, bail, ensure};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::json;
use wasmpod_operator::crd::WasmApp;

use crate::env::TestEnv;

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
                "redis.url must start with redis:// or rediss://",
            ),
            (
                "redis-no-host",
                redis_url("redis:///0"),
                format!("{kv0}.redis.url"),
                "redis.url must start with redis:// or rediss://",
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
                    {"bucket": "tls", "backend": "Redis", "redis": {"url": "rediss://redis.example.com:6380"}},
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
