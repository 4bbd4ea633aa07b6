//! Drift that server-side apply alone does not undo.
//!
//! A forced apply takes back every field the operator sets, but list entries that someone else
//! added (a hand-edited Service port, an extra container) stay, and a Service keeps its old
//! `clusterIP` when an apply omits it. These checks compare the live object with the desired
//! one; the controller then replaces the list ([`restore_patch`]) or recreates the Service.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

fn port_keys(s: &Service) -> Vec<(Option<String>, i32, Option<String>, String)> {
    let mut keys: Vec<_> = s
        .spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .map(|p| {
            let target = match &p.target_port {
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i)) => {
                    i.to_string()
                }
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => {
                    s.clone()
                }
                None => String::new(),
            };
            (p.name.clone(), p.port, p.protocol.clone(), target)
        })
        .collect();
    keys.sort();
    keys
}

/// Whether the live Service's ports differ from the desired ones (node ports ignored).
pub fn service_ports_drifted(live: &Service, desired: &Service) -> bool {
    port_keys(live) != port_keys(desired)
}

fn is_headless(s: &Service) -> bool {
    s.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// Whether the Service must be recreated to switch between headless and a virtual IP.
pub fn service_needs_recreate(live: &Service, desired: &Service) -> bool {
    is_headless(live) != is_headless(desired)
}

fn container_names(d: &Deployment) -> Vec<String> {
    let mut names: Vec<String> = d
        .spec
        .iter()
        .filter_map(|s| s.template.spec.as_ref())
        .flat_map(|p| p.containers.iter().map(|c| c.name.clone()))
        .collect();
    names.sort();
    names
}

/// Whether the live Deployment runs containers the operator did not ask for.
pub fn deployment_drifted(live: &Deployment, desired: &Deployment) -> bool {
    container_names(live) != container_names(desired)
}

/// A JSON merge patch that replaces the operator-owned lists with the desired ones.
pub fn restore_patch(kind: &str, desired: &Value) -> Value {
    match kind {
        "Service" => json!({"spec": {"ports": desired["spec"]["ports"]}}),
        "Deployment" => json!({"spec": {"template": {"spec": {
            "containers": desired["spec"]["template"]["spec"]["containers"]}}}}),
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn svc(v: Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn extra_or_changed_ports_are_drift_node_ports_are_not() {
        let desired = svc(
            json!({"spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]}}),
        );
        let same = svc(json!({"spec": {"clusterIP": "10.0.0.1", "ports": [
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "nodePort": 30080}]}}));
        let edited = svc(
            json!({"spec": {"ports": [{"name": "http", "port": 9999, "protocol": "TCP", "targetPort": "http"}]}}),
        );
        let extra = svc(json!({"spec": {"ports": [
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
            {"name": "debug", "port": 9000, "protocol": "TCP", "targetPort": 9000}]}}));
        assert!(!service_ports_drifted(&same, &desired));
        assert!(service_ports_drifted(&edited, &desired));
        assert!(service_ports_drifted(&extra, &desired));
        let patch = restore_patch("Service", &serde_json::to_value(&desired).unwrap());
        assert_eq!(patch["spec"]["ports"][0]["port"], 80);
    }

    #[test]
    fn headless_switches_need_a_new_service() {
        let headless = svc(json!({"spec": {"clusterIP": "None"}}));
        let vip = svc(json!({"spec": {"clusterIP": "10.0.0.7"}}));
        let desired_vip = svc(json!({"spec": {}}));
        assert!(service_needs_recreate(&headless, &desired_vip));
        assert!(service_needs_recreate(&vip, &headless));
        assert!(!service_needs_recreate(&vip, &desired_vip));
        assert!(!service_needs_recreate(&headless, &headless));
    }

    #[test]
    fn extra_containers_are_drift() {
        let d = |names: &[&str]| -> Deployment {
            let containers: Vec<_> = names.iter().map(|n| json!({"name": n})).collect();
            serde_json::from_value(
                json!({"spec": {"selector": {}, "template": {"spec": {"containers": containers}}}}),
            )
            .unwrap()
        };
        assert!(!deployment_drifted(&d(&["app"]), &d(&["app"])));
        assert!(deployment_drifted(&d(&["app", "debug"]), &d(&["app"])));
    }
}
