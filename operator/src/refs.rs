//! ConfigMaps and Secrets a WasmApp refers to, and the checksum that rolls its pods when one
//! of them changes.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Volume};
use sha2::{Digest, Sha256};

use crate::crd::WasmAppSpec;

/// Names (in the app's namespace) of the objects an app refers to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct References {
    /// ConfigMaps used by env, envFrom, volumes and capabilities.
    pub config_maps: BTreeSet<String>,
    /// Secrets used by env, envFrom, volumes and capabilities (their content rolls the pods).
    pub secrets: BTreeSet<String>,
    /// Secrets named in `imagePullSecrets` (their content re-inspects the image).
    pub pull_secrets: BTreeSet<String>,
    /// The keys the capabilities read, each with the field that names it.
    pub capability_keys: Vec<KeyReference>,
}

/// A key of a Secret or ConfigMap that a capability reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyReference {
    /// The field naming it, e.g. `spec.capabilities.config[0].valueFrom.secretKeyRef`.
    pub field: String,
    /// What it configures, e.g. `bucket "sessions"`.
    pub what: String,
    /// `Secret` or `ConfigMap`.
    pub kind: &'static str,
    /// Name of the object.
    pub name: String,
    /// The key in it.
    pub key: String,
    /// Whether a missing object or key just leaves the setting unset.
    pub optional: bool,
}

impl References {
    /// Whether `kind`/`name` is referred to; `kind` is `ConfigMap` or `Secret`.
    pub fn mentions(&self, kind: &str, name: &str) -> bool {
        match kind {
            "ConfigMap" => self.config_maps.contains(name),
            "Secret" => self.secrets.contains(name) || self.pull_secrets.contains(name),
            _ => false,
        }
    }
}

/// Collects the references of a spec.
pub fn references(spec: &WasmAppSpec) -> References {
    let mut r = References::default();
    for var in &spec.env {
        let Some(from) = &var.value_from else {
            continue;
        };
        if let Some(k) = &from.config_map_key_ref {
            r.config_maps.insert(k.name.clone());
        }
        if let Some(k) = &from.secret_key_ref {
            r.secrets.insert(k.name.clone());
        }
    }
    for from in &spec.env_from {
        if let Some(c) = &from.config_map_ref {
            r.config_maps.insert(c.name.clone());
        }
        if let Some(s) = &from.secret_ref {
            r.secrets.insert(s.name.clone());
        }
    }
    for v in &spec.volumes {
        volume_refs(v, &mut r);
    }
    r.capability_keys = capability_keys(spec);
    for k in &r.capability_keys {
        match k.kind {
            SECRET => r.secrets.insert(k.name.clone()),
            _ => r.config_maps.insert(k.name.clone()),
        };
    }
    r.pull_secrets = spec
        .image_pull_secrets
        .iter()
        .map(|s| s.name.clone())
        .collect();
    r.config_maps.retain(|n| !n.is_empty());
    r.secrets.retain(|n| !n.is_empty());
    r.pull_secrets.retain(|n| !n.is_empty());
    r
}

const SECRET: &str = "Secret";
const CONFIG_MAP: &str = "ConfigMap";

/// The Secret and ConfigMap keys `spec.capabilities` reads.
fn capability_keys(spec: &WasmAppSpec) -> Vec<KeyReference> {
    let Some(caps) = &spec.capabilities else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, b) in caps.key_value.iter().enumerate() {
        if let Some(from) = b.redis.as_ref().and_then(|r| r.url_from.as_ref()) {
            out.push(KeyReference {
                field: format!("spec.capabilities.keyValue[{i}].redis.urlFrom.secretKeyRef"),
                what: format!("bucket {:?}", b.bucket),
                kind: SECRET,
                name: from.secret_key_ref.name.clone(),
                key: from.secret_key_ref.key.clone(),
                optional: false,
            });
        }
    }
    for (i, c) in caps.config.iter().enumerate() {
        let Some(from) = &c.value_from else {
            continue;
        };
        let (kind, field, sel) = match (&from.secret_key_ref, &from.config_map_key_ref) {
            (Some(s), _) => (SECRET, "secretKeyRef", s),
            (None, Some(m)) => (CONFIG_MAP, "configMapKeyRef", m),
            (None, None) => continue,
        };
        out.push(KeyReference {
            field: format!("spec.capabilities.config[{i}].valueFrom.{field}"),
            what: format!("config {:?}", c.name),
            kind,
            name: sel.name.clone(),
            key: sel.key.clone(),
            optional: sel.optional.unwrap_or(false),
        });
    }
    out.retain(|k| !k.name.is_empty());
    out
}

fn volume_refs(v: &Volume, r: &mut References) {
    if let Some(c) = &v.config_map {
        r.config_maps.insert(c.name.clone());
    }
    if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
        r.secrets.insert(s);
    }
    for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
        if let Some(c) = &src.config_map {
            r.config_maps.insert(c.name.clone());
        }
        if let Some(s) = &src.secret {
            r.secrets.insert(s.name.clone());
        }
    }
}

/// Content of one referenced object as the checksum sees it; `None` when it does not exist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Content(pub BTreeMap<String, Vec<u8>>);

impl From<&ConfigMap> for Content {
    fn from(cm: &ConfigMap) -> Self {
        let mut m: BTreeMap<String, Vec<u8>> = cm
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect();
        for (k, v) in cm.binary_data.iter().flatten() {
            m.insert(k.clone(), v.0.clone());
        }
        Self(m)
    }
}

impl From<&Secret> for Content {
    fn from(s: &Secret) -> Self {
        let mut m: BTreeMap<String, Vec<u8>> = s
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        for (k, v) in s.string_data.iter().flatten() {
            m.insert(k.clone(), v.as_bytes().to_vec());
        }
        Self(m)
    }
}

/// Checksum over referenced objects' content, `(kind, name) → content`; missing objects count
/// as "missing" so creating them also rolls the pods. `None` when nothing is referenced.
pub fn checksum(objects: &BTreeMap<(&str, String), Option<Content>>) -> Option<String> {
    if objects.is_empty() {
        return None;
    }
    let mut h = Sha256::new();
    for ((kind, name), content) in objects {
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(name.as_bytes());
        h.update([0]);
        match content {
            None => h.update(b"\x01missing"),
            Some(Content(data)) => {
                for (k, v) in data {
                    h.update((k.len() as u64).to_le_bytes());
                    h.update(k.as_bytes());
                    h.update((v.len() as u64).to_le_bytes());
                    h.update(v);
                }
            }
        }
        h.update([0xff]);
    }
    Some(format!("sha256:{}", hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(v: serde_json::Value) -> WasmAppSpec {
        let mut v = v;
        v["image"] = "r/x:1".into();
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn collects_env_envfrom_volume_and_pull_secret_references() {
        let s = spec(json!({
            "env": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "a"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "sec-env", "key": "b"}}},
                {"name": "C", "value": "plain"}
            ],
            "envFrom": [{"configMapRef": {"name": "cm-from"}}, {"secretRef": {"name": "sec-from"}}],
            "volumes": [
                {"name": "v1", "configMap": {"name": "cm-vol"}},
                {"name": "v2", "secret": {"secretName": "sec-vol"}},
                {"name": "v3", "projected": {"sources": [
                    {"configMap": {"name": "cm-proj"}}, {"secret": {"name": "sec-proj"}}]}},
                {"name": "v4", "emptyDir": {}}
            ],
            "imagePullSecrets": [{"name": "regcred"}]
        }));
        let r = references(&s);
        assert_eq!(
            r.config_maps.iter().collect::<Vec<_>>(),
            ["cm-env", "cm-from", "cm-proj", "cm-vol"]
        );
        assert_eq!(
            r.secrets.iter().collect::<Vec<_>>(),
            ["sec-env", "sec-from", "sec-proj", "sec-vol"]
        );
        assert!(r.mentions("Secret", "regcred"));
        assert!(r.mentions("ConfigMap", "cm-vol"));
        assert!(!r.mentions("ConfigMap", "sec-vol"));
        assert_eq!(references(&spec(json!({}))), References::default());
    }

    #[test]
    fn capability_secrets_and_config_maps_are_references_with_their_fields() {
        let s = spec(json!({"capabilities": {
            "keyValue": [
                {"bucket": "default", "backend": "Memory"},
                {"bucket": "sessions", "backend": "Redis",
                 "redis": {"urlFrom": {"secretKeyRef": {"name": "redis", "key": "url"}}}}
            ],
            "config": [
                {"name": "greeting", "value": "hello"},
                {"name": "api_token", "valueFrom": {"secretKeyRef": {"name": "tokens", "key": "api"}}},
                {"name": "region", "valueFrom":
                    {"configMapKeyRef": {"name": "site", "key": "region", "optional": true}}}
            ]
        }}));
        let r = references(&s);
        assert_eq!(r.secrets.iter().collect::<Vec<_>>(), ["redis", "tokens"]);
        assert_eq!(r.config_maps.iter().collect::<Vec<_>>(), ["site"]);
        assert!(r.mentions("Secret", "redis") && r.mentions("ConfigMap", "site"));
        let keys: Vec<_> = r
            .capability_keys
            .iter()
            .map(|k| {
                (
                    k.field.as_str(),
                    k.kind,
                    k.name.as_str(),
                    k.key.as_str(),
                    k.optional,
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                (
                    "spec.capabilities.keyValue[1].redis.urlFrom.secretKeyRef",
                    "Secret",
                    "redis",
                    "url",
                    false
                ),
                (
                    "spec.capabilities.config[1].valueFrom.secretKeyRef",
                    "Secret",
                    "tokens",
                    "api",
                    false
                ),
                (
                    "spec.capabilities.config[2].valueFrom.configMapKeyRef",
                    "ConfigMap",
                    "site",
                    "region",
                    true
                ),
            ]
        );
        assert_eq!(r.capability_keys[0].what, "bucket \"sessions\"");
    }

    #[test]
    fn checksum_changes_with_content_and_presence_only() {
        let cm = |v: &str| {
            Some(Content::from(&ConfigMap {
                data: Some(BTreeMap::from([("k".to_string(), v.to_string())])),
                ..Default::default()
            }))
        };
        let one = BTreeMap::from([(("ConfigMap", "a".to_string()), cm("1"))]);
        let again = BTreeMap::from([(("ConfigMap", "a".to_string()), cm("1"))]);
        let edited = BTreeMap::from([(("ConfigMap", "a".to_string()), cm("2"))]);
        let missing = BTreeMap::from([(("ConfigMap", "a".to_string()), None)]);
        let other_kind = BTreeMap::from([(("Secret", "a".to_string()), cm("1"))]);
        let sum = checksum(&one).unwrap();
        assert!(sum.starts_with("sha256:"));
        assert_eq!(checksum(&again).unwrap(), sum);
        assert_ne!(checksum(&edited).unwrap(), sum);
        assert_ne!(checksum(&missing).unwrap(), sum);
        assert_ne!(checksum(&other_kind).unwrap(), sum);
        assert_eq!(checksum(&BTreeMap::new()), None);
    }
}
