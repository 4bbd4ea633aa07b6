//! Registry credentials from `imagePullSecrets`, matched the way the kubelet matches them.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;

/// A username and password for one registry, and the Secret they came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Registry user.
    pub username: String,
    /// Registry password or token.
    pub password: String,
    /// Name of the Secret holding them (for messages).
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize, Default, Clone)]
struct DockerAuth {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Entries of a `kubernetes.io/dockerconfigjson` or legacy `kubernetes.io/dockercfg` Secret.
fn entries(secret: &Secret) -> BTreeMap<String, DockerAuth> {
    let data = secret.data.clone().unwrap_or_default();
    if let Some(json) = data.get(".dockerconfigjson") {
        return serde_json::from_slice::<DockerConfig>(&json.0)
            .map(|c| c.auths)
            .unwrap_or_default();
    }
    if let Some(json) = data.get(".dockercfg") {
        return serde_json::from_slice(&json.0).unwrap_or_default();
    }
    BTreeMap::new()
}

fn user_pass(a: &DockerAuth) -> Option<(String, String)> {
    if let (Some(u), Some(p)) = (&a.username, &a.password)
        && !u.is_empty()
    {
        return Some((u.clone(), p.clone()));
    }
    if let Some(encoded) = &a.auth {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (u, p) = text.split_once(':')?;
        return Some((u.to_string(), p.to_string()));
    }
    // An identity token is exchanged for a registry token with user "<token>".
    a.identitytoken
        .as_ref()
        .map(|t| ("<token>".to_string(), t.clone()))
}

const DOCKER_HUB: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// Normalizes a docker config key to `host[:port][/path]`.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.trim_end_matches('/');
    // `https://index.docker.io/v1/` names Docker Hub itself, not a path.
    match key.split_once('/') {
        Some((host, "v1" | "v2")) => host.to_string(),
        _ => key.to_string(),
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    if DOCKER_HUB.contains(&pattern) && DOCKER_HUB.contains(&host) {
        return true;
    }
    let (p_host, p_port) = pattern.split_once(':').unwrap_or((pattern, ""));
    let (h_host, h_port) = host.split_once(':').unwrap_or((host, ""));
    if p_port != h_port {
        return false;
    }
    let p: Vec<&str> = p_host.split('.').collect();
    let h: Vec<&str> = h_host.split('.').collect();
    p.len() == h.len()
        && p.iter()
            .zip(&h)
            .all(|(p, h)| glob(&p.to_ascii_lowercase(), &h.to_ascii_lowercase()))
}

/// `*` matches any run of characters within one DNS label.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }
    }
}

/// How well `key` matches an image in `registry` at `repository`: `None` when it does not,
/// else a score (longer keys win, as with the kubelet).
fn score(key: &str, registry: &str, repository: &str) -> Option<usize> {
    let key = normalize_key(key);
    let (host, path) = key.split_once('/').unwrap_or((&key, ""));
    if !host_matches(host, registry) {
        return None;
    }
    let under =
        path.is_empty() || repository == path || repository.starts_with(&format!("{path}/"));
    under.then_some(key.len())
}

/// Picks credentials for `registry`/`repository` from the given pull Secrets, in order.
pub fn credentials_for(
    secrets: &[Secret],
    registry: &str,
    repository: &str,
) -> Option<Credentials> {
    let mut best: Option<(usize, Credentials)> = None;
    for secret in secrets {
        let name = secret.metadata.name.clone().unwrap_or_default();
        for (key, auth) in entries(secret) {
            let Some(s) = score(&key, registry, repository) else {
                continue;
            };
            let Some((username, password)) = user_pass(&auth) else {
                continue;
            };
            if best.as_ref().is_none_or(|(b, _)| s > *b) {
                best = Some((
                    s,
                    Credentials {
                        username,
                        password,
                        secret: name.clone(),
                    },
                ));
            }
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use serde_json::json;

    use super::*;

    fn secret(name: &str, key: &str, config: serde_json::Value) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        s.data = Some(BTreeMap::from([(
            key.to_string(),
            ByteString(serde_json::to_vec(&config).unwrap()),
        )]));
        s
    }

    #[test]
    fn username_password_and_auth_field() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("bob:s3:cret");
        let secrets = [secret(
            "regcred",
            ".dockerconfigjson",
            json!({"auths": {
                "localhost:5000": {"username": "alice", "password": "pw"},
                "https://registry.example.com/v1/": {"auth": b64}
            }}),
        )];
        let c = credentials_for(&secrets, "localhost:5000", "app").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "pw"));
        assert_eq!(c.secret, "regcred");
        let c = credentials_for(&secrets, "registry.example.com", "team/app").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("bob", "s3:cret")
        );
        assert!(
            credentials_for(&secrets, "localhost:5001", "app").is_none(),
            "ports must match"
        );
        assert!(credentials_for(&secrets, "ghcr.io", "app").is_none());
    }

    #[test]
    fn docker_hub_aliases_globs_and_most_specific_path() {
        let secrets = [
            secret(
                "hub",
                ".dockerconfigjson",
                json!({"auths": {"https://index.docker.io/v1/": {"username": "h", "password": "1"}}}),
            ),
            secret(
                "wild",
                ".dockerconfigjson",
                json!({"auths": {
                    "*.corp.example": {"username": "w", "password": "2"},
                    "eu.corp.example/team": {"username": "t", "password": "3"}
                }}),
            ),
            secret(
                "legacy",
                ".dockercfg",
                json!({"quay.io": {"username": "q", "password": "4"}}),
            ),
        ];
        assert_eq!(
            credentials_for(&secrets, "docker.io", "library/x")
                .unwrap()
                .username,
            "h"
        );
        assert_eq!(
            credentials_for(&secrets, "eu.corp.example", "other/x")
                .unwrap()
                .username,
            "w"
        );
        assert_eq!(
            credentials_for(&secrets, "eu.corp.example", "team/x")
                .unwrap()
                .username,
            "t"
        );
        assert!(
            credentials_for(&secrets, "a.b.corp.example", "x").is_none(),
            "* spans one label"
        );
        assert_eq!(
            credentials_for(&secrets, "quay.io", "x").unwrap().secret,
            "legacy"
        );
    }

    #[test]
    fn debug_never_prints_the_password() {
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
            secret: "s".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
