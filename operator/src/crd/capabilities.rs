//! `WasmApp.spec.capabilities`: host interfaces granted to the component and their backends.
//!
//! A capability is granted, its backend is configuration: the component imports
//! `wasi:keyvalue` or `wasi:config`, the WasmApp says which buckets it may open and where they
//! live, and which config values it reads. Secrets are referenced, never inlined: the operator
//! hands the kubelet a `secretKeyRef`, so a Secret's value never sits in the pod spec, the status,
//! an Event or a log, and reaches only the runtime (the shim removes every `WASMPOD_*` variable
//! from the guest's environment).
//!
//! The rules below reject what cannot work before anything is deployed; their messages name the
//! field. Lists and strings the rules read are bounded so the apiserver's CEL cost estimate stays
//! small.

use kube::KubeSchema;
use schemars::Schema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Host capabilities granted to the component. Absent: no key-value buckets, no config values,
/// outbound connections as for any pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// `wasi:keyvalue` buckets the component may open, each with its backend. A bucket that is
    /// not listed cannot be opened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["bucket".into()]))]
    pub key_value: Vec<KeyValueBucket>,

    /// `wasi:config/store` values, literal or from a ConfigMap or Secret key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub config: Vec<ConfigValue>,

    /// Where the component may connect to: `scheme://host[:port]` patterns, e.g.
    /// `https://api.example.com`, `http://*.svc.cluster.local:8080`, `tcp://10.0.0.0/8:5432`.
    /// Scheme `http`, `https`, `tcp`, `udp` or `*`; host a name, `*`, `*.suffix`, an IP address
    /// (`[v6]` for IPv6) or a CIDR; port a number, a range (`8000-8999`) or `*` (default 80 for
    /// http and 443 for https; required otherwise). Absent: unrestricted, like any pod; empty:
    /// nothing allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), transform = outbound_host_items)]
    pub allowed_outbound_hosts: Option<Vec<String>>,
}

/// The rule for bucket names and config keys (the shim's contract): they become part of an
/// environment variable name, and lower case never collides with the kubelet's Service links.
const NAME_RULE: &str = "self.matches('^[a-z][a-z0-9_]{0,62}$')";

/// Allowed-outbound-host patterns (RE2, as a CEL string literal): the port is optional for http
/// and https only.
const HOST_PATTERN: &str = r"'^(?:https?://HOST(?::PORT)?|(?:tcp|udp|\\*)://HOST:PORT)$'";

/// The `HOST` and `PORT` parts of [`HOST_PATTERN`].
const HOST: &str = concat!(
    r"(?:\\*",
    r"|(?:\\*\\.)?[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*",
    r"|[0-9]{1,3}(?:\\.[0-9]{1,3}){3}(?:/[0-9]{1,2})?",
    r"|\\[[0-9a-fA-F:.]+(?:/[0-9]{1,3})?\\](?:/[0-9]{1,3})?)",
);
const PORT: &str = r"(?:\\*|[0-9]{1,5}(?:-[0-9]{1,5})?)";

/// The CEL rule every `allowedOutboundHosts` entry must pass.
pub fn outbound_host_rule() -> String {
    format!(
        "self.matches({})",
        HOST_PATTERN.replace("HOST", HOST).replace("PORT", PORT)
    )
}

/// Message of [`outbound_host_rule`].
pub const OUTBOUND_HOST_MESSAGE: &str = "spec.capabilities.allowedOutboundHosts: each entry is \
    scheme://host[:port]: scheme http, https, tcp, udp or *; host a lower-case name, *, \
    *.suffix, an IP address ([v6] for IPv6) or a CIDR; port a number, a range (8000-8999) or * \
    (required for tcp, udp and *)";

/// Bounds each `allowedOutboundHosts` entry and attaches the pattern rule to the entry, so the
/// apiserver's error names the entry (`allowedOutboundHosts[2]`).
fn outbound_host_items(schema: &mut Schema) {
    if let Some(items) = schema.get_mut("items").and_then(Value::as_object_mut) {
        items.insert("maxLength".into(), 300.into());
        items.insert(
            "x-kubernetes-validations".into(),
            json!([{"rule": outbound_host_rule(), "message": OUTBOUND_HOST_MESSAGE}]),
        );
    }
}

/// One `wasi:keyvalue` bucket and its backend.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.backend != 'Redis' || has(self.redis)")
        .message("spec.capabilities.keyValue: backend Redis needs redis.url or redis.urlFrom")
        .field_path(".redis"),
    validation = Rule::new("self.backend == 'Redis' || !has(self.redis)")
        .message("spec.capabilities.keyValue: redis is only for backend Redis")
        .field_path(".redis"),
    validation = Rule::new("self.backend != 'File' || has(self.file)")
        .message("spec.capabilities.keyValue: backend File needs file.path")
        .field_path(".file"),
    validation = Rule::new("self.backend == 'File' || !has(self.file)")
        .message("spec.capabilities.keyValue: file is only for backend File")
        .field_path(".file")
)]
pub struct KeyValueBucket {
    /// The name the component opens (`wasi:keyvalue/store.open`): 1-63 lower-case letters,
    /// digits and `_`, starting with a letter.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(NAME_RULE).message("spec.capabilities.keyValue[].bucket must be 1-63 lower-case letters, digits and '_', starting with a letter"))]
    pub bucket: String,

    /// Where the bucket's data lives: `Memory` (per pod, lost when the pod stops), `Redis`
    /// (shared by all pods; needs `redis`) or `File` (a directory in one of the volumes; needs
    /// `file`).
    pub backend: KeyValueBackend,

    /// Settings of the `Redis` backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisBackend>,

    /// Settings of the `File` backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileBackend>,
}

/// Backend of a key-value bucket.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyValueBackend {
    /// In the pod's memory: per pod, lost when the pod stops.
    Memory,
    /// A Redis server, shared by every pod of the app.
    Redis,
    /// Files in a directory of one of the app's volumes.
    File,
}

/// A Redis server: exactly one of `url` and `urlFrom`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.url) != has(self.urlFrom)")
        .message("spec.capabilities.keyValue: redis needs exactly one of url or urlFrom"),
    // On the object rather than the string, so the apiserver's error does not echo the URL and
    // its credentials back (into a terminal, a CI log, an audit log).
    validation = Rule::new("!has(self.url) || !self.url.matches('^rediss?://[^/]*@')")
        .message("spec.capabilities.keyValue: redis.url must not contain credentials: put credentials in a Secret and use redis.urlFrom")
        .field_path(".url")
)]
pub struct RedisBackend {
    /// `redis://host[:port][/db]`, without credentials: a URL with credentials belongs in a
    /// Secret (`urlFrom`). TLS (`rediss://`) is not supported by the runtime yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^redis://[^/]')")
        .message("spec.capabilities.keyValue: redis.url must start with redis:// and a host (rediss://, TLS, is not supported yet)"))]
    pub url: Option<String>,

    /// The whole URL, credentials included, from a Secret key. The kubelet hands it to the
    /// runtime; it is never in the pod spec, and the guest never sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_from: Option<RedisUrlSource>,
}

/// Where a Redis URL comes from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RedisUrlSource {
    /// A key of a Secret in the app's namespace.
    pub secret_key_ref: SecretKeyRef,
}

/// A key of a Secret in the app's namespace; both must exist.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = OBJECT_NAME))]
    pub name: String,
    /// Key in the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = KEY))]
    pub key: String,
}

/// The `File` backend.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct FileBackend {
    /// Directory holding the bucket, as the container sees it: an absolute path inside one of
    /// `spec.volumeMounts`, e.g. `/data/kv`.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("self.startsWith('/') && !self.matches('(^|/)[.][.](/|$)')")
        .message("spec.capabilities.keyValue: file.path must be an absolute path without '..'"))]
    pub path: String,
}

/// One `wasi:config/store` value: exactly one of `value` and `valueFrom`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.value) != has(self.valueFrom)")
    .message("spec.capabilities.config: set exactly one of value or valueFrom"))]
pub struct ConfigValue {
    /// The key the component asks for (`wasi:config/store.get`): 1-63 lower-case letters,
    /// digits and `_`, starting with a letter.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(NAME_RULE).message("spec.capabilities.config[].name must be 1-63 lower-case letters, digits and '_', starting with a letter"))]
    pub name: String,

    /// A literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32768))]
    pub value: Option<String>,

    /// The value of a ConfigMap or Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ConfigValueSource>,
}

/// Where a config value comes from: exactly one of `configMapKeyRef` and `secretKeyRef`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.configMapKeyRef) != has(self.secretKeyRef)")
    .message("spec.capabilities.config: valueFrom needs exactly one of configMapKeyRef or secretKeyRef"))]
pub struct ConfigValueSource {
    /// A key of a ConfigMap in the app's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeyRef>,
    /// A key of a Secret in the app's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeyRef>,
}

/// A key of a ConfigMap or Secret in the app's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct KeyRef {
    /// Name of the object.
    #[schemars(length(min = 1, max = 253), regex(pattern = OBJECT_NAME))]
    pub name: String,
    /// Key in the object.
    #[schemars(length(min = 1, max = 253), regex(pattern = KEY))]
    pub key: String,
    /// When true, a missing object or key leaves the value unset instead of holding the pods
    /// back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// A DNS-1123 subdomain: the name of a ConfigMap or Secret.
const OBJECT_NAME: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A ConfigMap or Secret key.
const KEY: &str = r"^[-._a-zA-Z0-9]+$";

#[cfg(test)]
mod tests {
    use super::*;

    /// The CEL pattern as the regex engine sees it (CEL's `\\` is one backslash). The `regex`
    /// crate and the apiserver's RE2 agree on this syntax (no look-around, no back-references).
    fn host_regex() -> regex::Regex {
        let rule = outbound_host_rule();
        let literal = rule
            .strip_prefix("self.matches('")
            .and_then(|r| r.strip_suffix("')"))
            .expect("a matches() call");
        assert!(!literal.contains('\''), "one CEL string: {rule}");
        regex::Regex::new(&literal.replace(r"\\", r"\")).expect("valid pattern")
    }

    #[test]
    fn outbound_host_pattern_accepts_the_documented_forms() {
        let re = host_regex();
        for ok in [
            "https://api.example.com",
            "https://example.com:443",
            "http://*.svc.cluster.local:8080",
            "https://*",
            "http://*:*",
            "*://*:*",
            "http://localhost:8000-8999",
            "tcp://redis.cache.svc:6379",
            "tcp://10.0.0.0/8:5432",
            "udp://1.1.1.1:53",
            "https://10.1.2.3",
            "https://[2001:db8::1]",
            "https://[2001:db8::1]:8443",
            "tcp://[fd00::]/8:*",
            "tcp://[fd00::/8]:*",
        ] {
            assert!(re.is_match(ok), "{ok} rejected");
        }
    }

    #[test]
    fn outbound_host_pattern_rejects_what_the_runtime_cannot_read() {
        let re = host_regex();
        for bad in [
            "",
            "api.example.com",
            "ftp://example.com",
            "tcp://example.com",
            "udp://example.com",
            "*://example.com",
            "https://example.com/path",
            "https://example.com:",
            "https://example.com:http",
            "https://Example.com",
            "https://*example.com",
            "https://foo.*.com",
            "https://a.com,https://b.com",
            "https://user@example.com",
            "https:// example.com",
        ] {
            assert!(!re.is_match(bad), "{bad} accepted");
        }
    }

    #[test]
    fn name_rule_is_the_runtime_contract() {
        assert_eq!(
            NAME_RULE,
            format!(
                "self.matches('{}')",
                wasmpod_oci::names::CAPABILITY_NAME_PATTERN
            )
        );
    }
}
