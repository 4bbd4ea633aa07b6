//! The app's Service and URL.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{BuildInput, Owner, PORT_NAME, labels};
use crate::Result;
use crate::crd::{ServiceType, WasmApp};

/// Default Service port for non-headless Services.
pub const DEFAULT_SERVICE_PORT: i32 = 80;

/// Whether `app` wants a Service: HTTP components (or unknown ones) and whenever
/// `spec.service` is set.
pub fn wants_service(app: &WasmApp, input: &BuildInput<'_>) -> bool {
    app.spec.service.is_some() || input.kind().serves_http()
}

/// The port the Service listens on.
pub fn service_port(app: &WasmApp) -> i32 {
    let svc = app.spec.service.as_ref();
    match svc.and_then(|s| s.port) {
        Some(port) => port,
        None if svc.is_some_and(|s| s.type_ == ServiceType::Headless) => app.spec.port,
        None => DEFAULT_SERVICE_PORT,
    }
}

/// In-cluster URL of the app's Service, e.g. `http://hello.apps.svc.cluster.local`.
pub fn service_url(app: &WasmApp, cluster_domain: &str) -> Option<String> {
    let name = app.metadata.name.as_deref()?;
    let ns = app.metadata.namespace.as_deref()?;
    let port = service_port(app);
    let suffix = if port == 80 {
        String::new()
    } else {
        format!(":{port}")
    };
    Some(format!("http://{name}.{ns}.svc.{cluster_domain}{suffix}"))
}

/// Builds the Service of `app`, or `None` when it wants none.
pub fn service(app: &WasmApp, input: &BuildInput<'_>) -> Result<Option<Service>> {
    if !wants_service(app, input) {
        return Ok(None);
    }
    let owner = Owner::of(app)?;
    let config = app.spec.service.clone().unwrap_or_default();
    let mut meta = owner.child_meta();
    if !config.annotations.is_empty() {
        meta.annotations = Some(config.annotations.clone());
    }
    let (type_, cluster_ip) = match config.type_ {
        ServiceType::ClusterIP => ("ClusterIP", None),
        ServiceType::NodePort => ("NodePort", None),
        ServiceType::LoadBalancer => ("LoadBalancer", None),
        ServiceType::Headless => ("ClusterIP", Some("None".to_string())),
    };
    Ok(Some(Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            type_: Some(type_.into()),
            cluster_ip,
            // Proxy mode: without a selector the endpointslice controller drops its slices and
            // the operator's proxy slice is the Service's only one. Server-side apply removes the
            // field because the operator owns it.
            selector: (!input.proxied).then(|| labels::selector(&owner.name)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port: service_port(app),
                target_port: Some(IntOrString::String(PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::crd::{ComponentKind, ImageFormat};
    use crate::image::ImageFacts;
    use crate::resources::fixtures::app;

    fn kind(kind: ComponentKind) -> ImageFacts {
        ImageFacts {
            image: "r/x:1".into(),
            digest: "sha256:1".into(),
            format: ImageFormat::WasmArtifact,
            kind,
            world: None,
        }
    }

    #[test]
    fn http_components_get_a_cluster_ip_service_on_port_80() {
        let app = app("hello", json!({}));
        let f = kind(ComponentKind::Http);
        let input = BuildInput {
            image: Some(&f),
            cluster_domain: "cluster.local",
            ..Default::default()
        };
        let svc = service(&app, &input).unwrap().expect("service");
        let spec = svc.spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.cluster_ip, None);
        assert_eq!(spec.selector.as_ref(), Some(&labels::selector("hello")));
        let port = &spec.ports.as_ref().unwrap()[0];
        assert_eq!(port.port, 80);
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
        assert_eq!(
            svc.metadata.owner_references.as_ref().unwrap()[0].name,
            "hello"
        );
        assert_eq!(
            service_url(&app, "cluster.local").as_deref(),
            Some("http://hello.apps.svc.cluster.local")
        );
    }

    #[test]
    fn a_proxied_service_has_no_selector_and_the_same_ports() {
        let app = app("hello", json!({"scaleToZero": {}}));
        let serve = service(&app, &BuildInput::default()).unwrap().unwrap();
        let input = BuildInput {
            proxied: true,
            ..Default::default()
        };
        let proxy = service(&app, &input).unwrap().unwrap();
        assert_eq!(proxy.spec.as_ref().unwrap().selector, None);
        assert_eq!(
            proxy.spec.as_ref().unwrap().ports,
            serve.spec.as_ref().unwrap().ports
        );
    }

    #[test]
    fn command_components_get_no_service_unless_asked() {
        let f = kind(ComponentKind::Command);
        let input = BuildInput {
            image: Some(&f),
            ..Default::default()
        };
        assert!(service(&app("job", json!({})), &input).unwrap().is_none());
        let asked = app(
            "job",
            json!({"service": {"type": "NodePort", "port": 9090}}),
        );
        let svc = service(&asked, &input).unwrap().expect("service when set");
        let spec = svc.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.ports.unwrap()[0].port, 9090);
    }

    #[test]
    fn headless_uses_cluster_ip_none_and_the_container_port() {
        let app = app(
            "h",
            json!({"port": 8081, "service": {"type": "Headless", "annotations": {"a": "b"}}}),
        );
        let svc = service(&app, &BuildInput::default()).unwrap().unwrap();
        assert_eq!(svc.metadata.annotations.as_ref().unwrap()["a"], "b");
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.ports.unwrap()[0].port, 8081);
        assert_eq!(
            service_url(&app, "example.org").as_deref(),
            Some("http://h.apps.svc.example.org:8081")
        );
    }
}
