//! Pure builders: `WasmApp` (+ what the operator learned) → the children it wants.
//!
//! Nothing here talks to the apiserver; the controller applies what these functions return.

pub mod capabilities;
mod deployment;
pub mod drift;
pub mod endpoints;
pub mod labels;
mod policy;
mod service;

pub use deployment::{
    ACTIVITY_PORT_NAME, COMMAND_PLACEHOLDER, CONTAINER_NAME, PORT_NAME, activity_env, deployment,
};
pub use policy::{hpa, pdb};
pub use service::{service, service_port, service_url, wants_service};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use crate::crd::{ComponentKind, WasmApp};
use crate::image::ImageFacts;
use crate::{Error, Result};

/// Everything a builder needs besides the spec.
#[derive(Clone, Debug, Default)]
pub struct BuildInput<'a> {
    /// What is known about the image the pods should run; `None` runs `spec.image` as written.
    pub image: Option<&'a ImageFacts>,
    /// Checksum of the referenced ConfigMaps and Secrets, if any are referenced.
    pub config_checksum: Option<String>,
    /// Cluster DNS domain, for the app's URL.
    pub cluster_domain: &'a str,
    /// Scale to zero: the app is at zero, its Deployment runs no pods.
    pub at_zero: bool,
    /// Scale to zero: the operator's proxy slice gives the Service its endpoints (the
    /// activator), so the Service has no selector.
    pub proxied: bool,
}

impl BuildInput<'_> {
    /// The component kind to build for; unknown (treated as HTTP) before the image is known.
    pub fn kind(&self) -> ComponentKind {
        self.image.map_or(ComponentKind::Unknown, |i| i.kind)
    }
}

/// The children a WasmApp wants. Kinds that are `None` are not wanted and get removed.
#[derive(Clone, Debug)]
pub struct Children {
    /// Always wanted.
    pub deployment: Deployment,
    /// For HTTP components or when `spec.service` is set.
    pub service: Option<Service>,
    /// When `spec.autoscaling` is set.
    pub hpa: Option<HorizontalPodAutoscaler>,
    /// When `spec.podDisruptionBudget` is set.
    pub pdb: Option<PodDisruptionBudget>,
}

/// Builds every child of `app`.
pub fn children(app: &WasmApp, input: &BuildInput<'_>) -> Result<Children> {
    Ok(Children {
        deployment: deployment(app, input)?,
        service: service(app, input)?,
        hpa: hpa(app)?,
        pdb: pdb(app)?,
    })
}

/// Name, namespace and owner reference every child copies from its WasmApp.
pub(crate) struct Owner {
    pub name: String,
    pub namespace: String,
    pub owner_ref: OwnerReference,
}

impl Owner {
    pub fn of(app: &WasmApp) -> Result<Self> {
        let name = app
            .metadata
            .name
            .clone()
            .ok_or(Error::MissingField("WasmApp", "metadata.name"))?;
        let namespace = app
            .metadata
            .namespace
            .clone()
            .ok_or(Error::MissingField("WasmApp", "metadata.namespace"))?;
        let owner_ref = app
            .controller_owner_ref(&())
            .ok_or(Error::MissingField("WasmApp", "metadata.uid"))?;
        Ok(Self {
            name,
            namespace,
            owner_ref,
        })
    }

    /// Metadata of a child named after the app.
    pub fn child_meta(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.name.clone()),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels::common(&self.name)),
            owner_references: Some(vec![self.owner_ref.clone()]),
            ..Default::default()
        }
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::crd::{WasmApp, WasmAppSpec};

    /// A WasmApp as the apiserver would hand it out (name, namespace, uid, generation set).
    pub fn app(name: &str, spec: serde_json::Value) -> WasmApp {
        let mut spec = spec;
        if spec.get("image").is_none() {
            spec["image"] = "registry.local/hello:v1".into();
        }
        let spec: WasmAppSpec = serde_json::from_value(spec).expect("valid spec");
        let mut app = WasmApp::new(name, spec);
        app.metadata.namespace = Some("apps".into());
        app.metadata.uid = Some("0000-1111".into());
        app.metadata.generation = Some(3);
        app
    }
}
