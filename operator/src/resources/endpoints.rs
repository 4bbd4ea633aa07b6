//! The proxy EndpointSlice that points an app's Service at the activator while the app scales
//! to zero, and reading the EndpointSlices of a Service.
//!
//! kube-proxy (and any other consumer of a Service) uses every EndpointSlice labelled
//! `kubernetes.io/service-name: <service>`. The endpointslice controller manages the slices of
//! Services with a selector and leaves alone slices another manager claims through
//! `endpointslice.kubernetes.io/managed-by`: that is how the operator adds the activator behind
//! the Service without the controller removing it.

use std::collections::BTreeSet;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::ResourceExt;

use super::{Owner, PORT_NAME};
use crate::Result;
use crate::crd::WasmApp;

/// Label naming the Service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming who manages an EndpointSlice.
pub const SLICE_MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The endpointslice controller's value of [`SLICE_MANAGED_BY_LABEL`].
pub const CONTROLLER_SLICE_MANAGER: &str = "endpointslice-controller.k8s.io";
/// The operator's value of [`SLICE_MANAGED_BY_LABEL`] (anything but the controller's).
pub const PROXY_SLICE_MANAGER: &str = "wasmpod.io-operator";

/// Name of the proxy slice of app `app`.
pub fn proxy_slice_name(app: &str) -> String {
    format!("{app}-activator")
}

/// The proxy slice of `app`: the activator's ready `addresses` on the app's `activator_port`,
/// under the Service's port name so the Service's port maps onto it.
pub fn proxy_slice(
    app: &WasmApp,
    activator_port: u16,
    addresses: &[String],
) -> Result<EndpointSlice> {
    let owner = Owner::of(app)?;
    let mut meta = owner.child_meta();
    meta.name = Some(proxy_slice_name(&owner.name));
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.insert(SERVICE_NAME_LABEL.into(), owner.name.clone());
    labels.insert(SLICE_MANAGED_BY_LABEL.into(), PROXY_SLICE_MANAGER.into());
    Ok(EndpointSlice {
        metadata: meta,
        address_type: "IPv4".into(),
        endpoints: addresses
            .iter()
            .map(|a| Endpoint {
                addresses: vec![a.clone()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                }),
                ..Default::default()
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            name: Some(PORT_NAME.into()),
            port: Some(i32::from(activator_port)),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    })
}

/// Whether the endpointslice controller manages `slice`.
pub fn is_controller_slice(slice: &EndpointSlice) -> bool {
    slice
        .labels()
        .get(SLICE_MANAGED_BY_LABEL)
        .map(String::as_str)
        == Some(CONTROLLER_SLICE_MANAGER)
}

/// Whether the endpointslice mirroring controller made `slice` from the Service's Endpoints
/// object (which it does for Services without a selector).
pub fn is_mirrored_slice(slice: &EndpointSlice) -> bool {
    slice
        .labels()
        .get(SLICE_MANAGED_BY_LABEL)
        .map(String::as_str)
        == Some("endpointslicemirroring-controller.k8s.io")
}

/// The ready IPv4 addresses of `slices`, sorted and without duplicates. An endpoint without a
/// `ready` condition counts as ready, as the EndpointSlice API says consumers should read it.
pub fn ready_addresses<'a>(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> Vec<String> {
    slices
        .into_iter()
        .filter(|s| s.address_type == "IPv4")
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .flat_map(|e| e.addresses.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::resources::fixtures::app;

    fn slice(manager: &str, endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "s", "labels": {SLICE_MANAGED_BY_LABEL: manager}},
            "addressType": "IPv4",
            "endpoints": endpoints,
        }))
        .unwrap()
    }

    #[test]
    fn the_proxy_slice_points_the_service_port_at_the_activator() {
        let app = app("hello", json!({"scaleToZero": {}}));
        let s = proxy_slice(&app, 20017, &["10.1.0.5".into(), "10.1.0.6".into()]).unwrap();
        assert_eq!(s.metadata.name.as_deref(), Some("hello-activator"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("apps"));
        let labels = s.labels();
        assert_eq!(labels[SERVICE_NAME_LABEL], "hello");
        assert_eq!(labels[SLICE_MANAGED_BY_LABEL], PROXY_SLICE_MANAGER);
        assert_ne!(PROXY_SLICE_MANAGER, CONTROLLER_SLICE_MANAGER);
        assert_eq!(s.owner_references()[0].name, "hello");
        assert_eq!(s.address_type, "IPv4");
        assert_eq!(ready_addresses([&s]), ["10.1.0.5", "10.1.0.6"]);
        let port = &s.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port, port.protocol.as_deref()),
            (Some("http"), Some(20017), Some("TCP"))
        );
        assert!(!is_controller_slice(&s));
    }

    #[test]
    fn ready_addresses_skip_unready_endpoints_and_other_families() {
        let a = slice(
            CONTROLLER_SLICE_MANAGER,
            json!([
                {"addresses": ["10.0.0.2"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.1"]},
            ]),
        );
        let mut v6 = slice(
            CONTROLLER_SLICE_MANAGER,
            json!([{"addresses": ["fd00::1"]}]),
        );
        v6.address_type = "IPv6".into();
        assert!(is_controller_slice(&a));
        assert_eq!(ready_addresses([&a, &v6, &a]), ["10.0.0.1", "10.0.0.2"]);
    }
}
