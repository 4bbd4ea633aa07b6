//! The generated CRD: committed copy up to date, small enough for client-side `kubectl apply`,
//! and carrying the subresources, columns, names and validations users rely on.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::path::PathBuf;

use kube::CustomResourceExt;
use serde_json::Value;
use wasmpod_operator::crd::{WasmApp, crd_yaml};

fn crd_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds/wasmapp.yaml")
}

fn crd_json() -> Value {
    serde_json::to_value(WasmApp::crd()).expect("CRD serializes")
}

#[test]
fn committed_crd_is_up_to_date() {
    let generated = crd_yaml().expect("CRD renders as YAML");
    let path = crd_path();
    if std::env::var_os("BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write crds/wasmapp.yaml");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "crds/wasmapp.yaml is stale: run `BLESS=1 cargo test -p wasmpod-operator --test crd` \
         (or `cargo run -p wasmpod-operator --bin crdgen > crds/wasmapp.yaml`) and commit it"
    );
}

#[test]
fn committed_crd_parses_back_to_the_generated_object() {
    let text = std::fs::read_to_string(crd_path()).expect("crds/wasmapp.yaml exists");
    let parsed: Value = serde_saphyr::from_str(&text).expect("valid YAML");
    assert_eq!(parsed, crd_json());
}

/// `kubectl apply` (client-side) stores the object as compact JSON in the
/// `kubectl.kubernetes.io/last-applied-configuration` annotation; all annotations of an object
/// together must stay under 256 KiB.
#[test]
fn crd_fits_the_last_applied_annotation_with_room_to_grow() {
    let text = std::fs::read_to_string(crd_path()).expect("crds/wasmapp.yaml exists");
    let parsed: Value = serde_saphyr::from_str(&text).expect("valid YAML");
    let annotation = serde_json::to_string(&parsed).unwrap();
    let limit = 256 * 1024;
    assert!(
        annotation.len() < limit / 2,
        "CRD is {} bytes as JSON; client-side apply allows {limit} for all annotations and we keep half of it free",
        annotation.len()
    );
}

#[test]
fn names_scope_and_categories() {
    let crd = crd_json();
    let spec = &crd["spec"];
    assert_eq!(crd["metadata"]["name"], "wasmapps.wasmpod.io");
    assert_eq!(spec["group"], "wasmpod.io");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["kind"], "WasmApp");
    assert_eq!(spec["names"]["plural"], "wasmapps");
    assert_eq!(spec["names"]["shortNames"], serde_json::json!(["wapp"]));
    assert_eq!(
        spec["names"]["categories"],
        serde_json::json!(["all", "wasmpod"])
    );
    assert_eq!(spec["versions"][0]["name"], "v1alpha1");
}

#[test]
fn status_and_scale_subresources() {
    let crd = crd_json();
    let sub = &crd["spec"]["versions"][0]["subresources"];
    assert!(sub["status"].is_object(), "status subresource: {sub}");
    assert_eq!(sub["scale"]["specReplicasPath"], ".spec.replicas");
    assert_eq!(sub["scale"]["statusReplicasPath"], ".status.replicas");
    assert_eq!(sub["scale"]["labelSelectorPath"], ".status.selector");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let spec = &schema["properties"]["spec"];
    assert_eq!(
        spec["properties"]["replicas"]["default"], 1,
        "scale needs a value"
    );
    assert_eq!(spec["properties"]["port"]["default"], 8080);
    assert_eq!(spec["properties"]["runtimeClassName"]["default"], "wasmpod");
    assert_eq!(spec["required"], serde_json::json!(["image"]));
    assert_eq!(
        schema["properties"]["status"]["properties"]["selector"]["type"],
        "string"
    );
}

#[test]
fn printer_columns() {
    let crd = crd_json();
    let cols = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("columns");
    let find = |name: &str| {
        cols.iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    assert_eq!(find("Ready")["jsonPath"], ".status.ready");
    assert_eq!(find("URL")["jsonPath"], ".status.url");
    assert_eq!(find("Age")["type"], "date");
    assert_eq!(find("Image")["jsonPath"], ".spec.image");
    assert_eq!(find("Image")["priority"], 1, "image only in -o wide");
}

fn rules(node: &Value, out: &mut Vec<(String, String)>) {
    match node {
        Value::Object(obj) => {
            if let Some(Value::Array(list)) = obj.get("x-kubernetes-validations") {
                for r in list {
                    out.push((
                        r["rule"].as_str().unwrap_or_default().to_string(),
                        r["message"].as_str().unwrap_or_default().to_string(),
                    ));
                }
            }
            obj.values().for_each(|v| rules(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| rules(v, out)),
        _ => {}
    }
}

#[test]
fn cel_rules_carry_messages_that_name_the_field() {
    let mut found = Vec::new();
    rules(&crd_json(), &mut found);
    for needle in [
        "autoscaling.minReplicas",
        "podDisruptionBudget",
        "spec.volumeMounts",
        "metadata.name",
        "spec.podLabels",
        "httpGet and tcpSocket",
        "spec.capabilities.keyValue: backend Redis needs redis.url or redis.urlFrom",
        "put credentials in a Secret and use redis.urlFrom",
        "spec.capabilities.allowedOutboundHosts",
        "spec.env must not set WASMPOD_KEYVALUE_*",
    ] {
        assert!(
            found.iter().any(|(_, m)| m.contains(needle)),
            "no rule message mentions {needle}: {found:#?}"
        );
    }
    assert!(
        found.iter().all(|(_, m)| !m.is_empty()),
        "every rule has a message"
    );
}

#[test]
fn schema_bounds_replicas_and_ports() {
    let crd = crd_json();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let p = &spec["properties"];
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    assert_eq!(num(&p["replicas"]["minimum"]), 0.0);
    assert_eq!(num(&p["port"]["minimum"]), 1.0);
    assert_eq!(num(&p["port"]["maximum"]), 65535.0);
    assert_eq!(num(&p["service"]["properties"]["port"]["maximum"]), 65535.0);
    assert_eq!(
        p["service"]["properties"]["type"]["enum"],
        serde_json::json!(["ClusterIP", "NodePort", "LoadBalancer", "Headless"])
    );
    // Embedded Kubernetes types keep their structure (validated and pruned by the apiserver).
    let volumes = &p["volumes"]["items"]["properties"];
    assert!(volumes["configMap"]["properties"]["name"].is_object());
    assert!(volumes["name"].is_object());
    assert!(p["affinity"]["properties"]["nodeAffinity"].is_object());
}

#[test]
fn capabilities_are_list_maps_with_bounded_rule_inputs() {
    let crd = crd_json();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let caps = &spec["properties"]["capabilities"]["properties"];
    for (list, key) in [("keyValue", "bucket"), ("config", "name")] {
        assert_eq!(caps[list]["x-kubernetes-list-type"], "map", "{list}");
        assert_eq!(
            caps[list]["x-kubernetes-list-map-keys"],
            serde_json::json!([key]),
            "{list}"
        );
        assert!(caps[list]["maxItems"].is_number(), "{list}");
        assert_eq!(caps[list]["items"]["properties"][key]["maxLength"], 63);
    }
    assert_eq!(
        caps["keyValue"]["items"]["properties"]["backend"]["enum"],
        serde_json::json!(["Memory", "Redis", "File"])
    );
    let hosts = &caps["allowedOutboundHosts"];
    assert!(hosts["maxItems"].is_number());
    assert_eq!(hosts["items"]["maxLength"], 300);
    assert_eq!(
        hosts["items"]["x-kubernetes-validations"][0]["rule"],
        wasmpod_operator::crd::outbound_host_rule()
    );
    let mount = &spec["properties"]["volumeMounts"]["items"]["properties"]["mountPath"];
    assert_eq!(mount["maxLength"], 1024, "the File-bucket rule compares it");
}
