//! The app's HorizontalPodAutoscaler and PodDisruptionBudget.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Resource;

use super::{Owner, labels};
use crate::Result;
use crate::crd::WasmApp;

/// CPU target when autoscaling names none.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

/// Builds the HPA of `app` (targeting the WasmApp's scale subresource), or `None` without
/// `spec.autoscaling`.
pub fn hpa(app: &WasmApp) -> Result<Option<HorizontalPodAutoscaler>> {
    let Some(auto) = &app.spec.autoscaling else {
        return Ok(None);
    };
    let owner = Owner::of(app)?;
    let cpu = match (
        auto.target_cpu_utilization_percentage,
        auto.target_memory_utilization_percentage,
    ) {
        (None, None) => Some(DEFAULT_CPU_UTILIZATION),
        (cpu, _) => cpu,
    };
    let metrics = [
        ("cpu", cpu),
        ("memory", auto.target_memory_utilization_percentage),
    ]
    .into_iter()
    .filter_map(|(resource, target)| target.map(|t| resource_metric(resource, t)))
    .collect();
    Ok(Some(HorizontalPodAutoscaler {
        metadata: owner.child_meta(),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(WasmApp::api_version(&()).into_owned()),
                kind: WasmApp::kind(&()).into_owned(),
                name: owner.name.clone(),
            },
            min_replicas: Some(auto.min_replicas.unwrap_or(1)),
            max_replicas: auto.max_replicas,
            metrics: Some(metrics),
            behavior: None,
        }),
        status: None,
    }))
}

fn resource_metric(resource: &str, utilization: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: resource.into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(utilization),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

/// Builds the PDB of `app`, or `None` without `spec.podDisruptionBudget`.
pub fn pdb(app: &WasmApp) -> Result<Option<PodDisruptionBudget>> {
    let Some(config) = &app.spec.pod_disruption_budget else {
        return Ok(None);
    };
    let owner = Owner::of(app)?;
    Ok(Some(PodDisruptionBudget {
        metadata: owner.child_meta(),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(labels::selector(&owner.name)),
                ..Default::default()
            }),
            min_available: config.min_available.clone(),
            max_unavailable: config.max_unavailable.clone(),
            // A crash-looping app must not block node drains.
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
        }),
        status: None,
    }))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use serde_json::json;

    use super::*;
    use crate::resources::fixtures::app;

    #[test]
    fn no_autoscaling_no_hpa_no_pdb() {
        let app = app("a", json!({}));
        assert!(hpa(&app).unwrap().is_none());
        assert!(pdb(&app).unwrap().is_none());
    }

    #[test]
    fn hpa_targets_the_wasmapp_scale_subresource_with_default_cpu() {
        let app = app("a", json!({"autoscaling": {"maxReplicas": 5}}));
        let h = hpa(&app).unwrap().unwrap();
        let spec = h.spec.unwrap();
        assert_eq!(
            spec.scale_target_ref,
            CrossVersionObjectReference {
                api_version: Some("wasmpod.io/v1alpha1".into()),
                kind: "WasmApp".into(),
                name: "a".into(),
            }
        );
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(1), 5));
        let metrics = spec.metrics.unwrap();
        assert_eq!(metrics.len(), 1);
        let cpu = metrics[0].resource.as_ref().unwrap();
        assert_eq!(cpu.name, "cpu");
        assert_eq!(cpu.target.average_utilization, Some(80));
        assert_eq!(h.metadata.owner_references.unwrap()[0].kind, "WasmApp");
    }

    #[test]
    fn hpa_with_memory_only_and_both_targets() {
        let mem = app(
            "a",
            json!({"autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetMemoryUtilizationPercentage": 70}}),
        );
        let metrics = hpa(&mem).unwrap().unwrap().spec.unwrap().metrics.unwrap();
        let names: Vec<_> = metrics
            .iter()
            .map(|m| m.resource.as_ref().unwrap().name.as_str())
            .collect();
        assert_eq!(names, ["memory"]);

        let both = app(
            "a",
            json!({"autoscaling": {"maxReplicas": 4, "targetCPUUtilizationPercentage": 50,
                                   "targetMemoryUtilizationPercentage": 70}}),
        );
        let spec = hpa(&both).unwrap().unwrap().spec.unwrap();
        let got: Vec<_> = spec
            .metrics
            .unwrap()
            .iter()
            .map(|m| {
                let r = m.resource.as_ref().unwrap();
                (r.name.clone(), r.target.average_utilization)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("cpu".to_string(), Some(50)),
                ("memory".to_string(), Some(70))
            ]
        );
    }

    #[test]
    fn pdb_selects_the_app_and_copies_the_budget() {
        let app = app(
            "a",
            json!({"podDisruptionBudget": {"maxUnavailable": "25%"}}),
        );
        let spec = pdb(&app).unwrap().unwrap().spec.unwrap();
        assert_eq!(
            spec.max_unavailable,
            Some(IntOrString::String("25%".into()))
        );
        assert_eq!(spec.min_available, None);
        assert_eq!(
            spec.selector.unwrap().match_labels,
            Some(labels::selector("a"))
        );
    }
}
