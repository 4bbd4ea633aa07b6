//! The runtime settings a WasmApp's capabilities become: environment variables of the Wasm
//! container that the shim reads and removes from what the guest sees.
//!
//! | capability | variable | value |
//! |---|---|---|
//! | `keyValue[]` | `WASMPOD_KEYVALUE_<bucket>` | `memory`, the Redis URL, or `file:<path>` |
//! | `config[]` | `WASMPOD_CONFIG_<name>` | the value |
//! | `allowedOutboundHosts` | `WASMPOD_ALLOWED_OUTBOUND_HOSTS` | the patterns, comma-separated; unset when absent |
//!
//! Values from Secrets and ConfigMaps become `valueFrom` references that the kubelet resolves
//! when it starts the container: they never sit in the pod spec. (The operator reads the objects
//! only to check that the keys exist and to hash them for the rollout checksum.)

use k8s_openapi::api::core::v1::{ConfigMapKeySelector, EnvVar, EnvVarSource, SecretKeySelector};
use wasmpod_oci::names::{
    ALLOWED_OUTBOUND_HOSTS_SETTING, CONFIG_SETTING_PREFIX, KEYVALUE_SETTING_PREFIX,
};

use crate::crd::{Capabilities, ConfigValue, KeyValueBackend, KeyValueBucket};

/// The environment variables granting `caps`, in spec order: buckets, config values, then the
/// outbound allow-list.
pub fn env(caps: Option<&Capabilities>) -> Vec<EnvVar> {
    let Some(caps) = caps else {
        return Vec::new();
    };
    let mut out: Vec<EnvVar> = caps.key_value.iter().map(bucket).collect();
    out.extend(caps.config.iter().map(config));
    if let Some(hosts) = &caps.allowed_outbound_hosts {
        // Set even when empty: an empty list allows nothing, an absent one everything.
        out.push(literal(
            ALLOWED_OUTBOUND_HOSTS_SETTING.into(),
            &hosts.join(","),
        ));
    }
    out
}

fn bucket(b: &KeyValueBucket) -> EnvVar {
    let name = format!("{KEYVALUE_SETTING_PREFIX}{}", b.bucket);
    let redis = b.redis.as_ref();
    match b.backend {
        KeyValueBackend::Redis => match redis.and_then(|r| r.url_from.as_ref()) {
            Some(from) => EnvVar {
                name,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: from.secret_key_ref.name.clone(),
                        key: from.secret_key_ref.key.clone(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            None => literal(name, redis.and_then(|r| r.url.as_deref()).unwrap_or("")),
        },
        KeyValueBackend::File => {
            let path = b.file.as_ref().map_or("", |f| f.path.as_str());
            literal(name, &format!("file:{path}"))
        }
        KeyValueBackend::Memory => literal(name, "memory"),
    }
}

fn config(c: &ConfigValue) -> EnvVar {
    let name = format!("{CONFIG_SETTING_PREFIX}{}", c.name);
    let Some(from) = &c.value_from else {
        return literal(name, c.value.as_deref().unwrap_or(""));
    };
    let source = match (&from.secret_key_ref, &from.config_map_key_ref) {
        (Some(s), _) => EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: s.name.clone(),
                key: s.key.clone(),
                optional: s.optional,
            }),
            ..Default::default()
        },
        (None, Some(m)) => EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: m.name.clone(),
                key: m.key.clone(),
                optional: m.optional,
            }),
            ..Default::default()
        },
        (None, None) => return literal(name, ""),
    };
    EnvVar {
        name,
        value_from: Some(source),
        ..Default::default()
    }
}

/// A variable with a literal value. The kubelet expands `$(VAR)` in values and turns `$$` into
/// `$`; doubling every `$` makes it hand the runtime exactly the value written in the WasmApp.
fn literal(name: String, value: &str) -> EnvVar {
    EnvVar {
        name,
        value: Some(value.replace('$', "$$")),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn caps(v: serde_json::Value) -> Capabilities {
        serde_json::from_value(v).expect("valid capabilities")
    }

    fn find<'a>(env: &'a [EnvVar], name: &str) -> &'a EnvVar {
        env.iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} missing from {env:?}"))
    }

    #[test]
    fn no_capabilities_no_settings_and_absent_allow_list_stays_unset() {
        assert!(env(None).is_empty());
        assert!(env(Some(&Capabilities::default())).is_empty());
        let only_kv = caps(json!({"keyValue": [{"bucket": "default", "backend": "Memory"}]}));
        let e = env(Some(&only_kv));
        assert!(
            e.iter().all(|v| v.name != ALLOWED_OUTBOUND_HOSTS_SETTING),
            "absent allowedOutboundHosts means unrestricted: no variable"
        );
    }

    #[test]
    fn buckets_become_one_setting_each_named_after_the_bucket() {
        let c = caps(json!({"keyValue": [
            {"bucket": "default", "backend": "Memory"},
            {"bucket": "cache", "backend": "Redis", "redis": {"url": "redis://redis.cache.svc:6379/0"}},
            {"bucket": "sessions", "backend": "Redis",
             "redis": {"urlFrom": {"secretKeyRef": {"name": "redis", "key": "url"}}}},
            {"bucket": "uploads", "backend": "File", "file": {"path": "/data/kv"}}
        ]}));
        let e = env(Some(&c));
        let names: Vec<_> = e.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "WASMPOD_KEYVALUE_default",
                "WASMPOD_KEYVALUE_cache",
                "WASMPOD_KEYVALUE_sessions",
                "WASMPOD_KEYVALUE_uploads"
            ]
        );
        assert_eq!(e[0].value.as_deref(), Some("memory"));
        assert_eq!(
            e[1].value.as_deref(),
            Some("redis://redis.cache.svc:6379/0")
        );
        assert_eq!(e[3].value.as_deref(), Some("file:/data/kv"));

        let secret = &e[2];
        assert_eq!(
            secret.value, None,
            "a Secret's value is never in the pod spec"
        );
        let sel = secret
            .value_from
            .as_ref()
            .and_then(|f| f.secret_key_ref.as_ref())
            .expect("secretKeyRef");
        assert_eq!((sel.name.as_str(), sel.key.as_str()), ("redis", "url"));
        assert_eq!(sel.optional, None, "a bucket's URL is never optional");
    }

    #[test]
    fn config_values_are_literal_or_references_with_their_optional_flag() {
        let c = caps(json!({"config": [
            {"name": "greeting", "value": "hello"},
            {"name": "empty", "value": ""},
            {"name": "api_token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "region", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "r", "optional": true}}}
        ]}));
        let e = env(Some(&c));
        assert_eq!(
            find(&e, "WASMPOD_CONFIG_greeting").value.as_deref(),
            Some("hello")
        );
        assert_eq!(find(&e, "WASMPOD_CONFIG_empty").value.as_deref(), Some(""));
        let token = find(&e, "WASMPOD_CONFIG_api_token");
        assert_eq!(token.value, None);
        let s = token
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (s.name.as_str(), s.key.as_str(), s.optional),
            ("s", "k", None)
        );
        let region = find(&e, "WASMPOD_CONFIG_region");
        let m = region
            .value_from
            .as_ref()
            .unwrap()
            .config_map_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (m.name.as_str(), m.key.as_str(), m.optional),
            ("cm", "r", Some(true))
        );
    }

    #[test]
    fn allow_list_is_comma_joined_and_empty_means_nothing_allowed() {
        let c = caps(json!({"allowedOutboundHosts":
            ["https://api.example.com", "http://*.svc.cluster.local:8080"]}));
        assert_eq!(
            find(&env(Some(&c)), ALLOWED_OUTBOUND_HOSTS_SETTING)
                .value
                .as_deref(),
            Some("https://api.example.com,http://*.svc.cluster.local:8080")
        );
        let none = caps(json!({"allowedOutboundHosts": []}));
        assert_eq!(
            find(&env(Some(&none)), ALLOWED_OUTBOUND_HOSTS_SETTING)
                .value
                .as_deref(),
            Some("")
        );
    }

    #[test]
    fn dollar_signs_survive_the_kubelets_variable_expansion() {
        let c = caps(json!({"config": [{"name": "price", "value": "$(HOME) costs $$5"}]}));
        assert_eq!(
            env(Some(&c))[0].value.as_deref(),
            Some("$$(HOME) costs $$$$5"),
            "the kubelet turns every $$ back into $"
        );
    }
}
