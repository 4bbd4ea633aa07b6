//! A guest's settings: the `WASMPOD_*` variables of its environment, parsed and checked at
//! once so a bad value fails before anything is set up, and removed from what the guest sees.

use std::net::SocketAddr;
use std::num::{NonZeroU16, NonZeroUsize};
use std::path::{Component, PathBuf};
use std::str::FromStr;

use crate::capability::Grants;
use crate::capability::keyvalue::Backend;
use crate::capability::outbound::AllowList;
use crate::error::{Error, Result};

/// Environment variables with this prefix configure the runtime, never the guest.
pub const SETTING_PREFIX: &str = "WASMPOD_";
/// The port an HTTP guest listens on.
pub const HTTP_PORT: &str = wasmpod_oci::names::HTTP_PORT_SETTING;
/// How many requests an HTTP guest handles at once; more wait in line.
pub const HTTP_MAX_CONCURRENCY: &str = "WASMPOD_HTTP_MAX_CONCURRENCY";
/// A PEM file of CA certificates the guest's outgoing HTTPS requests trust besides the
/// webpki (Mozilla) roots, as the container sees it: a file in one of its volumes.
pub const CA_BUNDLE: &str = "WASMPOD_CA_BUNDLE";
/// `WASMPOD_KEYVALUE_<bucket>=<backend>` grants the key-value bucket `<bucket>`, backed by
/// `memory`, `redis://...` or `file:<dir>` (see [`crate::capability::keyvalue::Backend`]).
pub const KEYVALUE_PREFIX: &str = wasmpod_oci::names::KEYVALUE_SETTING_PREFIX;
/// `WASMPOD_CONFIG_<key>=<value>` is `wasi:config` value `<key>`.
pub const CONFIG_PREFIX: &str = wasmpod_oci::names::CONFIG_SETTING_PREFIX;
/// Where the guest may connect: see [`crate::capability::outbound`]. Unset: anywhere its pod
/// can; empty: nowhere.
pub const ALLOWED_OUTBOUND_HOSTS: &str = wasmpod_oci::names::ALLOWED_OUTBOUND_HOSTS_SETTING;
/// The port on which an HTTP guest also reports its traffic for scale to zero (`GET
/// /activity`, see [`crate::traffic`]). Unset: no such listener.
pub const ACTIVITY_PORT: &str = wasmpod_oci::names::ACTIVITY_PORT_SETTING;
/// Every setting, for the message that rejects an unknown one.
pub const KNOWN_SETTINGS: [&str; 7] = [
    HTTP_PORT,
    ACTIVITY_PORT,
    HTTP_MAX_CONCURRENCY,
    CA_BUNDLE,
    "WASMPOD_KEYVALUE_<bucket>",
    "WASMPOD_CONFIG_<key>",
    ALLOWED_OUTBOUND_HOSTS,
];
/// Bucket names and config keys: lowercase, so they never look like the kubelet's
/// (uppercase) Service-link variables, and valid in an env var name on every Kubernetes.
const GRANT_NAME_RULE: &str = "names of buckets and config keys are lowercase letters, digits and _, starting with a letter, at most 63";

pub const DEFAULT_HTTP_PORT: NonZeroU16 = NonZeroU16::new(8080).expect("8080 is not zero");
pub const DEFAULT_HTTP_MAX_CONCURRENCY: NonZeroUsize =
    NonZeroUsize::new(256).expect("256 is not zero");

/// The settings of one guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub http_port: NonZeroU16,
    pub http_max_concurrency: NonZeroUsize,
    /// `WASMPOD_ACTIVITY_PORT`: where the traffic report is served, if anywhere.
    pub activity_port: Option<NonZeroU16>,
    /// `WASMPOD_CA_BUNDLE`: the container's path of extra CA certificates.
    pub ca_bundle: Option<PathBuf>,
    /// Key-value buckets, config values and the outbound allow-list.
    pub grants: Grants,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http_port: DEFAULT_HTTP_PORT,
            http_max_concurrency: DEFAULT_HTTP_MAX_CONCURRENCY,
            activity_port: None,
            ca_bundle: None,
            grants: Grants::default(),
        }
    }
}

impl Settings {
    /// Takes the settings out of a guest's environment: returns them and the variables the
    /// guest sees. Any bad or unknown `WASMPOD_*` variable is an error naming it and its value,
    /// except the kubelet's service links of a Service whose name starts with `wasmpod`
    /// (`WASMPOD_OPERATOR_SERVICE_HOST`, ...), which are the guest's like any other.
    pub fn from_env(
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Vec<(String, String)>)> {
        let mut settings = Settings::default();
        let mut guest_env = Vec::new();
        for (name, value) in env {
            if !name.starts_with(SETTING_PREFIX) {
                guest_env.push((name, value));
                continue;
            }
            match name.as_str() {
                HTTP_PORT => settings.http_port = parse(&name, &value, "a port number (1-65535)")?,
                HTTP_MAX_CONCURRENCY => {
                    settings.http_max_concurrency = parse(&name, &value, "a positive number")?
                }
                ACTIVITY_PORT => {
                    settings.activity_port = Some(parse(&name, &value, "a port number (1-65535)")?)
                }
                CA_BUNDLE => settings.ca_bundle = Some(container_path(&name, &value)?),
                ALLOWED_OUTBOUND_HOSTS => {
                    settings.grants.allowed_outbound = Some(
                        AllowList::parse(&value)
                            .map_err(|detail| Error::InvalidGrant { name, detail })?,
                    );
                }
                _ if grant_name(&name, KEYVALUE_PREFIX).is_some() => {
                    let bucket = grant_name(&name, KEYVALUE_PREFIX).unwrap_or_default();
                    let backend = Backend::parse(&value).map_err(|detail| Error::InvalidGrant {
                        name: name.clone(),
                        detail,
                    })?;
                    settings.grants.buckets.insert(bucket.to_string(), backend);
                }
                _ if grant_name(&name, CONFIG_PREFIX).is_some() => {
                    let key = grant_name(&name, CONFIG_PREFIX).unwrap_or_default();
                    settings.grants.config.insert(key.to_string(), value);
                }
                _ if is_service_link(&name) => guest_env.push((name, value)),
                _ if name.starts_with(KEYVALUE_PREFIX) || name.starts_with(CONFIG_PREFIX) => {
                    return Err(Error::InvalidGrant {
                        name,
                        detail: GRANT_NAME_RULE.into(),
                    });
                }
                _ => return Err(Error::UnknownSetting { name, value }),
            }
        }
        Ok((settings, guest_env))
    }

    /// Where an HTTP guest listens: every address of its network namespace.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], self.http_port.get()))
    }

    /// Where the traffic report is served, if it is: every address of the pod's network
    /// namespace, like the app itself, so the operator reaches it at the pod's IP.
    pub fn activity_addr(&self) -> Option<SocketAddr> {
        self.activity_port
            .map(|p| SocketAddr::from(([0, 0, 0, 0], p.get())))
    }
}

/// The bucket or key a granting variable names after `prefix`, if it is a valid one.
fn grant_name<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(prefix)?;
    let mut bytes = rest.bytes();
    let valid = rest.len() <= 63
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    valid.then_some(rest)
}

/// Whether `name` is one of the variables the kubelet writes for a Service in the pod's
/// namespace (`<SVC>_SERVICE_HOST`, `<SVC>_SERVICE_PORT[_<PORT NAME>]`, `<SVC>_PORT`,
/// `<SVC>_PORT_<N>_<PROTO>[_PROTO|_PORT|_ADDR]`). Our own settings are matched before this.
fn is_service_link(name: &str) -> bool {
    if name.ends_with("_SERVICE_HOST") || name.contains("_SERVICE_PORT") || name.ends_with("_PORT")
    {
        return true;
    }
    let parts: Vec<&str> = name.rsplitn(4, '_').collect();
    let is_proto = |p: &str| matches!(p, "TCP" | "UDP" | "SCTP");
    let is_num = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        // <SVC>_PORT_<N>_<PROTO>
        [proto, n, port, _] if is_proto(proto) && is_num(n) && *port == "PORT" => true,
        // <SVC>_PORT_<N>_<PROTO>_{PROTO,PORT,ADDR}
        [field, proto, n, rest] if matches!(*field, "PROTO" | "PORT" | "ADDR") => {
            is_proto(proto) && is_num(n) && rest.ends_with("_PORT")
        }
        _ => false,
    }
}

/// A path as the container sees it: absolute, and without `..`, which could only mean
/// leaving the volume it names.
fn container_path(name: &str, value: &str) -> Result<PathBuf> {
    let path = PathBuf::from(value);
    if path.is_absolute() && !path.components().any(|c| c == Component::ParentDir) {
        return Ok(path);
    }
    Err(Error::InvalidSetting {
        name: name.into(),
        value: value.into(),
        expected: "an absolute path without `..` (the container's view)",
    })
}

fn parse<T: FromStr>(name: &str, value: &str, expected: &'static str) -> Result<T> {
    value.parse().map_err(|_| Error::InvalidSetting {
        name: name.into(),
        value: value.into(),
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_leave_the_guest_env_and_default_when_absent() {
        let (s, guest) = Settings::from_env(env(&[("A", "1"), ("B", "2")])).expect("parse");
        assert_eq!(s, Settings::default());
        assert_eq!(guest, env(&[("A", "1"), ("B", "2")]));

        let (s, guest) = Settings::from_env(env(&[
            ("A", "1"),
            (HTTP_PORT, "9000"),
            (HTTP_MAX_CONCURRENCY, "8"),
            (CA_BUNDLE, "/etc/ssl/extra/ca.pem"),
            (ACTIVITY_PORT, "9091"),
        ]))
        .expect("parse");
        assert_eq!(
            s.activity_addr().map(|a| a.to_string()).as_deref(),
            Some("0.0.0.0:9091")
        );
        assert_eq!(
            s.ca_bundle.as_deref(),
            Some(std::path::Path::new("/etc/ssl/extra/ca.pem"))
        );
        assert_eq!(s.http_port.get(), 9000);
        assert_eq!(s.http_max_concurrency.get(), 8);
        assert_eq!(s.http_addr().to_string(), "0.0.0.0:9000");
        assert_eq!(guest, env(&[("A", "1")]));
    }

    #[test]
    fn grants_are_taken_by_lowercase_name_and_never_reach_the_guest() {
        let (s, guest) = Settings::from_env(env(&[
            ("A", "1"),
            ("WASMPOD_KEYVALUE_default", "memory"),
            (
                "WASMPOD_KEYVALUE_sessions",
                "redis://:pw@redis.cache:6379/1",
            ),
            ("WASMPOD_KEYVALUE_files", "file:/data/kv"),
            ("WASMPOD_CONFIG_greeting", "hello"),
            ("WASMPOD_CONFIG_api_token", "s3cret"),
            (ALLOWED_OUTBOUND_HOSTS, "https://api.example.com"),
            // A Service named wasmpod-config-db: the kubelet's links stay the guest's.
            ("WASMPOD_CONFIG_DB_SERVICE_HOST", "10.96.0.7"),
        ]))
        .expect("parse");
        assert_eq!(
            guest,
            env(&[("A", "1"), ("WASMPOD_CONFIG_DB_SERVICE_HOST", "10.96.0.7")])
        );
        let g = &s.grants;
        assert_eq!(g.buckets.len(), 3);
        assert_eq!(g.buckets["default"], Backend::Memory);
        assert_eq!(g.config["greeting"], "hello");
        assert_eq!(g.config["api_token"], "s3cret");
        assert!(g.allowed_outbound.is_some());
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains(":pw@"),
            "{shown}"
        );
    }

    #[test]
    fn bad_grants_name_the_variable_and_never_a_password() {
        for (name, value, says) in [
            ("WASMPOD_KEYVALUE_Cache", "memory", "lowercase"),
            ("WASMPOD_KEYVALUE_1st", "memory", "lowercase"),
            ("WASMPOD_CONFIG_db-host", "x", "lowercase"),
            (
                "WASMPOD_KEYVALUE_cache",
                "mysql://x",
                "not a key-value backend",
            ),
            (
                "WASMPOD_KEYVALUE_cache",
                "rediss://:pw@x:6380",
                "not supported yet",
            ),
            (ALLOWED_OUTBOUND_HOSTS, "example.com", "example.com"),
        ] {
            let err = Settings::from_env(env(&[(name, value)])).expect_err(name);
            assert!(err.is_invalid_input(), "{err}");
            let text = err.to_string();
            assert!(text.starts_with(name) && text.contains(says), "{text}");
            assert!(!text.contains(":pw@"), "{text}");
        }
    }

    #[test]
    fn service_links_of_wasmpod_named_services_reach_the_guest() {
        let links = env(&[
            ("WASMPOD_OPERATOR_SERVICE_HOST", "10.96.0.9"),
            ("WASMPOD_OPERATOR_SERVICE_PORT", "8080"),
            ("WASMPOD_OPERATOR_SERVICE_PORT_METRICS", "8080"),
            ("WASMPOD_OPERATOR_PORT", "tcp://10.96.0.9:8080"),
            ("WASMPOD_OPERATOR_PORT_8080_TCP", "tcp://10.96.0.9:8080"),
            ("WASMPOD_OPERATOR_PORT_8080_TCP_PROTO", "tcp"),
            ("WASMPOD_OPERATOR_PORT_8080_TCP_PORT", "8080"),
            ("WASMPOD_OPERATOR_PORT_8080_TCP_ADDR", "10.96.0.9"),
        ]);
        let (s, guest) = Settings::from_env(links.clone()).expect("service links are no settings");
        assert_eq!(s, Settings::default());
        assert_eq!(guest, links);
    }

    #[test]
    fn bad_and_unknown_settings_name_the_variable_and_value() {
        for (name, value) in [
            (HTTP_PORT, "0"),
            (HTTP_PORT, "65536"),
            (HTTP_PORT, "http"),
            (HTTP_MAX_CONCURRENCY, "0"),
            (HTTP_MAX_CONCURRENCY, "-1"),
            (CA_BUNDLE, "ca.pem"),
            (CA_BUNDLE, "/etc/ssl/../../ca.pem"),
            ("WASMPOD_HTTP_PROT", "8080"),
        ] {
            let err = Settings::from_env(env(&[(name, value)])).expect_err(name);
            assert!(err.is_invalid_input(), "{err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("{name}={value} is not")),
                "{err}"
            );
        }
    }
}
