//! An app's environment as its pod would have it: the kubelet's rules applied to the container
//! the operator builds (`envFrom` first, then `env` in order, later names winning, `$(VAR)`
//! expanded), with ConfigMap and Secret values read by the activator. The result goes through
//! the runtime's own settings parser, so capability grants mean the same in both hosts.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, EnvVar, ObjectFieldSelector};

use crate::error::{Error, Result};
use crate::expand::expand;

/// Which object a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    ConfigMap,
    Secret,
}

impl Source {
    fn kind(self) -> &'static str {
        match self {
            Source::ConfigMap => "ConfigMap",
            Source::Secret => "Secret",
        }
    }
}

/// The ConfigMaps and Secrets a container reads, as read: `None` for one that does not exist.
pub type Objects = HashMap<(Source, String), Option<BTreeMap<String, String>>>;

/// What the downward API would tell a pod of the app, as far as the activator can say.
#[derive(Clone, Debug, Default)]
pub struct PodFacts {
    pub namespace: String,
    /// The pod that runs the app now: the activator's own.
    pub pod_name: String,
    pub pod_ip: String,
    pub node_name: String,
    pub host_ip: String,
    pub service_account: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Variables in the order the kubelet sets them.
pub type Env = Vec<(String, String)>;

/// The objects `container` reads values from.
pub fn referenced(container: &Container) -> Vec<(Source, String)> {
    let mut out = Vec::new();
    for from in container.env_from.iter().flatten() {
        if let Some(cm) = &from.config_map_ref {
            out.push((Source::ConfigMap, cm.name.clone()));
        }
        if let Some(s) = &from.secret_ref {
            out.push((Source::Secret, s.name.clone()));
        }
    }
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else {
            continue;
        };
        if let Some(k) = &from.config_map_key_ref {
            out.push((Source::ConfigMap, k.name.clone()));
        }
        if let Some(k) = &from.secret_key_ref {
            out.push((Source::Secret, k.name.clone()));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The container's environment and args, resolved and expanded as the kubelet would.
pub fn resolve(
    container: &Container,
    objects: &Objects,
    facts: &PodFacts,
) -> Result<(Env, Vec<String>)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, name: String, value: String| match env
        .iter_mut()
        .find(|(n, _)| *n == name)
    {
        Some(slot) => slot.1 = value,
        None => env.push((name, value)),
    };
    for (i, from) in container.env_from.iter().flatten().enumerate() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (source, name, optional) = match (&from.config_map_ref, &from.secret_ref) {
            (Some(cm), _) => (Source::ConfigMap, &cm.name, cm.optional),
            (None, Some(s)) => (Source::Secret, &s.name, s.optional),
            (None, None) => continue,
        };
        match objects.get(&(source, name.clone())).cloned().flatten() {
            Some(data) => {
                for (key, value) in data {
                    let var = format!("{prefix}{key}");
                    if valid_env_name(&var) {
                        set(&mut env, var, value);
                    }
                }
            }
            None if optional == Some(true) => {}
            None => {
                return Err(Error::Env {
                    field: format!("spec.envFrom[{i}]"),
                    detail: format!("{} {name:?} not found", source.kind()),
                });
            }
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(value) = value_of(var, &env, objects, facts)? {
            set(&mut env, var.name.clone(), value);
        }
    }
    let lookup = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let args = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(|a| expand(a, lookup))
        .collect();
    Ok((env, args))
}

/// One `env` entry's value; `None` when it comes from an optional key that is missing (the
/// kubelet leaves such a variable out).
fn value_of(
    var: &EnvVar,
    env: &[(String, String)],
    objects: &Objects,
    facts: &PodFacts,
) -> Result<Option<String>> {
    let field = || format!("env {}", var.name);
    let Some(from) = &var.value_from else {
        let raw = var.value.clone().unwrap_or_default();
        let lookup = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        return Ok(Some(expand(&raw, lookup)));
    };
    let key_ref = match (&from.config_map_key_ref, &from.secret_key_ref) {
        (Some(k), _) => Some((Source::ConfigMap, &k.name, &k.key, k.optional)),
        (None, Some(k)) => Some((Source::Secret, &k.name, &k.key, k.optional)),
        (None, None) => None,
    };
    if let Some((source, name, key, optional)) = key_ref {
        let object = objects.get(&(source, name.clone())).cloned().flatten();
        let value = object.as_ref().and_then(|data| data.get(key).cloned());
        return match (value, optional == Some(true)) {
            (Some(v), _) => Ok(Some(v)),
            (None, true) => Ok(None),
            (None, false) => Err(Error::Env {
                field: field(),
                detail: match object {
                    Some(_) => format!("key {key:?} not found in {} {name:?}", source.kind()),
                    None => format!("{} {name:?} not found", source.kind()),
                },
            }),
        };
    }
    if let Some(f) = &from.field_ref {
        return field_value(f, facts).map(Some).ok_or_else(|| Error::Env {
            field: field(),
            detail: format!(
                "fieldRef {:?} has no value while the activator serves the app",
                f.field_path
            ),
        });
    }
    Err(Error::Env {
        field: field(),
        detail: "resourceFieldRef is not available while the activator serves the app; use a literal value to let the app scale to zero".into(),
    })
}

/// The downward API's fields a pod of the app would see.
fn field_value(f: &ObjectFieldSelector, facts: &PodFacts) -> Option<String> {
    let path = f.field_path.as_str();
    let keyed = |prefix: &str, map: &BTreeMap<String, String>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.get(key).cloned().unwrap_or_default())
    };
    match path {
        "metadata.name" => Some(facts.pod_name.clone()),
        "metadata.namespace" => Some(facts.namespace.clone()),
        "spec.nodeName" => Some(facts.node_name.clone()),
        "spec.serviceAccountName" => Some(facts.service_account.clone()),
        "status.podIP" | "status.podIPs" => Some(facts.pod_ip.clone()),
        "status.hostIP" | "status.hostIPs" => Some(facts.host_ip.clone()),
        _ => keyed("metadata.labels['", &facts.labels)
            .or_else(|| keyed("metadata.annotations['", &facts.annotations)),
    }
}

/// The kubelet's rule for names taken from `envFrom` (others are skipped, as it does):
/// printable ASCII without `=`.
fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(v: serde_json::Value) -> Container {
        serde_json::from_value(v).unwrap()
    }

    fn objects() -> Objects {
        let mut o = Objects::new();
        o.insert(
            (Source::ConfigMap, "cm".into()),
            Some(BTreeMap::from([
                ("GREETING".into(), "hi".into()),
                ("bad=name".into(), "x".into()),
            ])),
        );
        o.insert(
            (Source::Secret, "sec".into()),
            Some(BTreeMap::from([("password".into(), "pw".into())])),
        );
        o.insert((Source::Secret, "gone".into()), None);
        o
    }

    #[test]
    fn env_from_then_env_in_order_with_expansion() {
        let c = container(json!({
            "name": "app",
            "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
            "env": [
                {"name": "A", "value": "$(CM_GREETING) there"},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                {"name": "LIT", "value": "a $$(A) b"},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "CM_GREETING", "value": "override"},
                {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": true}}}
            ],
            "command": ["/component.wasm"],
            "args": ["--user", "$(PW)", "$(NOPE)"]
        }));
        let facts = PodFacts {
            namespace: "apps".into(),
            ..Default::default()
        };
        let (env, args) = resolve(&c, &objects(), &facts).unwrap();
        let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("hi there"));
        assert_eq!(get("PW"), Some("pw"));
        assert_eq!(get("LIT"), Some("a $(A) b"));
        assert_eq!(get("NS"), Some("apps"));
        assert_eq!(get("CM_GREETING"), Some("override"));
        assert_eq!(get("OPT"), None);
        assert_eq!(
            get("CM_bad=name"),
            None,
            "invalid names from envFrom are skipped"
        );
        assert_eq!(args, ["/component.wasm", "--user", "pw", "$(NOPE)"]);
        assert_eq!(
            referenced(&c),
            [
                (Source::ConfigMap, "cm".into()),
                (Source::Secret, "gone".into()),
                (Source::Secret, "sec".into())
            ]
        );
    }

    #[test]
    fn missing_objects_and_keys_are_named() {
        let missing_key = container(json!({"name": "app", "env": [
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "nope"}}}]}));
        let err = resolve(&missing_key, &objects(), &PodFacts::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "env PW: key \"nope\" not found in Secret \"sec\""
        );

        let missing_object = container(json!({"name": "app",
            "envFrom": [{"secretRef": {"name": "gone"}}]}));
        let err = resolve(&missing_object, &objects(), &PodFacts::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.envFrom[0]: Secret \"gone\" not found"
        );

        let resource = container(json!({"name": "app", "env": [
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}]}));
        let err = resolve(&resource, &objects(), &PodFacts::default()).unwrap_err();
        assert!(
            err.to_string().starts_with("env MEM: resourceFieldRef"),
            "{err}"
        );
    }

    #[test]
    fn downward_api_labels_and_pod_fields() {
        let c = container(json!({"name": "app", "env": [
            {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}]}));
        let facts = PodFacts {
            pod_ip: "10.0.0.7".into(),
            labels: BTreeMap::from([("tier".into(), "web".into())]),
            ..Default::default()
        };
        let err = resolve(&c, &objects(), &facts).unwrap_err();
        assert!(err.to_string().contains("metadata.uid"), "{err}");
        let c = container(json!({"name": "app", "env": [
            {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}));
        let (env, _) = resolve(&c, &objects(), &facts).unwrap();
        assert_eq!(
            env,
            [("L".into(), "web".into()), ("IP".into(), "10.0.0.7".into())]
        );
    }
}
