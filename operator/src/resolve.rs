//! Whether the Secret and ConfigMap keys an app's capabilities read exist (the
//! `CapabilitiesReady` condition).
//!
//! The kubelet resolves those keys when it starts a container; a missing one keeps the new pods
//! in `CreateContainerConfigError` until it appears (no crash loop). The operator looks first, so
//! the WasmApp says which field names what is missing. Messages name fields, objects and keys,
//! never a value.

use std::collections::BTreeMap;

use crate::refs::{Content, KeyReference};

/// Reason: a referenced Secret does not exist.
pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
/// Reason: a referenced ConfigMap does not exist.
pub const CONFIG_MAP_NOT_FOUND: &str = "ConfigMapNotFound";
/// Reason: a referenced Secret or ConfigMap lacks the key.
pub const KEY_NOT_FOUND: &str = "KeyNotFound";

/// Referenced objects, `(kind, name) → content`; `None` when the object does not exist.
pub type Objects = BTreeMap<(&'static str, String), Option<Content>>;

/// What checking the capability references found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// References checked.
    pub checked: usize,
    /// Required references that do not resolve: the pods cannot start.
    pub problems: Vec<Problem>,
    /// Optional references that do not resolve: their setting stays unset.
    pub unset: Vec<Problem>,
}

/// One reference that does not resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// [`SECRET_NOT_FOUND`], [`CONFIG_MAP_NOT_FOUND`] or [`KEY_NOT_FOUND`].
    pub reason: &'static str,
    /// The field, what it configures, the object and the key.
    pub message: String,
}

/// Checks every key reference against the objects read from the apiserver.
pub fn resolve(keys: &[KeyReference], objects: &Objects) -> Resolution {
    let mut out = Resolution {
        checked: keys.len(),
        ..Resolution::default()
    };
    for k in keys {
        let object = objects.get(&(k.kind, k.name.clone()));
        let (reason, what) = match object {
            Some(Some(Content(data))) if data.contains_key(&k.key) => continue,
            Some(Some(_)) => (
                KEY_NOT_FOUND,
                format!("key {:?} not found in {} {:?}", k.key, k.kind, k.name),
            ),
            // Not read (the caller had no access) counts as missing, like the kubelet sees it.
            Some(None) | None => (
                if k.kind == "Secret" {
                    SECRET_NOT_FOUND
                } else {
                    CONFIG_MAP_NOT_FOUND
                },
                format!("{} {:?} not found", k.kind, k.name),
            ),
        };
        let problem = Problem {
            reason,
            message: format!("{} ({}): {what}", k.field, k.what),
        };
        if k.optional {
            out.unset.push(problem);
        } else {
            out.problems.push(problem);
        }
    }
    out
}

impl Resolution {
    /// Whether every required reference resolves.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The reason of the first problem, for the conditions.
    pub fn reason(&self) -> Option<&'static str> {
        self.problems.first().map(|p| p.reason)
    }

    /// All problems in one line.
    pub fn message(&self) -> String {
        join(&self.problems)
    }

    /// The optional references left unset, in one line.
    pub fn unset_message(&self) -> String {
        join(&self.unset)
    }
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &'static str, name: &str, key: &str, optional: bool) -> KeyReference {
        KeyReference {
            field: "spec.capabilities.config[0].valueFrom.secretKeyRef".into(),
            what: "config \"api_token\"".into(),
            kind,
            name: name.into(),
            key: key.into(),
            optional,
        }
    }

    fn with(
        kind: &'static str,
        name: &str,
        keys: &[&str],
    ) -> ((&'static str, String), Option<Content>) {
        let data = keys
            .iter()
            .map(|k| ((*k).to_string(), b"s3cr3t-value".to_vec()))
            .collect();
        ((kind, name.to_string()), Some(Content(data)))
    }

    #[test]
    fn present_keys_resolve() {
        let objects = Objects::from([with("Secret", "s", &["k"]), with("ConfigMap", "c", &["r"])]);
        let r = resolve(
            &[
                key("Secret", "s", "k", false),
                key("ConfigMap", "c", "r", false),
            ],
            &objects,
        );
        assert!(r.ok());
        assert_eq!(r.checked, 2);
        assert!(r.unset.is_empty());
    }

    #[test]
    fn missing_objects_and_keys_name_the_field_object_and_key_never_the_value() {
        let objects = Objects::from([
            with("Secret", "s", &["other"]),
            (("ConfigMap", "gone".to_string()), None),
        ]);
        let r = resolve(
            &[
                key("Secret", "absent", "k", false),
                key("Secret", "s", "k", false),
                key("ConfigMap", "gone", "r", false),
            ],
            &objects,
        );
        assert!(!r.ok());
        let reasons: Vec<_> = r.problems.iter().map(|p| p.reason).collect();
        assert_eq!(
            reasons,
            [SECRET_NOT_FOUND, KEY_NOT_FOUND, CONFIG_MAP_NOT_FOUND]
        );
        assert_eq!(r.reason(), Some(SECRET_NOT_FOUND));
        assert_eq!(
            r.problems[1].message,
            "spec.capabilities.config[0].valueFrom.secretKeyRef (config \"api_token\"): \
             key \"k\" not found in Secret \"s\""
        );
        assert_eq!(
            r.problems[0].message,
            "spec.capabilities.config[0].valueFrom.secretKeyRef (config \"api_token\"): \
             Secret \"absent\" not found"
        );
        let all = r.message();
        assert!(all.contains("ConfigMap \"gone\" not found"), "{all}");
        assert!(!all.contains("s3cr3t"), "{all}");
    }

    #[test]
    fn optional_references_are_not_problems() {
        let r = resolve(&[key("Secret", "absent", "k", true)], &Objects::new());
        assert!(r.ok());
        assert_eq!(r.unset.len(), 1);
        assert!(r.unset_message().contains("Secret \"absent\" not found"));
    }
}
