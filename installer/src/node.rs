//! The installer's Kubernetes side: the node label, and whether its DaemonSet is going away.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::Result;

/// The label the RuntimeClass `wasmpod` selects on.
pub const LABEL: &str = "wasmpod.io/runtime";
/// The label's values. The RuntimeClass selects only `ready`; `removing` marks a node whose
/// installer is reverting it, so that [`uninstall_all`] (which waits for the label to be gone)
/// returns only once containerd's config is restored and the shim deleted, not as soon as
/// scheduling stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeLabel {
    /// The shim answers on the node: Wasm pods may land here.
    Ready,
    /// The uninstall is under way: no new Wasm pods, the node is not clean yet.
    Removing,
    /// No label: nothing of wasmpod on the node (or an install that failed).
    Absent,
}

impl NodeLabel {
    /// The label value, `None` for no label.
    pub fn value(self) -> Option<&'static str> {
        match self {
            Self::Ready => Some("ready"),
            Self::Removing => Some("removing"),
            Self::Absent => None,
        }
    }
}
/// Annotation that asks for an uninstall: on the installer's DaemonSet, every pod (set by the Helm
/// pre-delete hook, or by hand before `kubectl delete`); on a Node, that node's pod only.
pub const UNINSTALL_ANNOTATION: &str = "wasmpod.io/uninstall";
/// Field manager of the installer's writes.
pub const FIELD_MANAGER: &str = "wasmpod-node-installer";

/// Sets the node label to `state` (a JSON null removes it).
pub async fn set_label(client: &Client, node: &str, state: NodeLabel) -> Result<()> {
    let patch = json!({"metadata": {"labels": {LABEL: state.value()}}});
    merge_patch(&Api::<Node>::all(client.clone()), node, &patch).await
}

/// A JSON merge patch under our field manager.
async fn merge_patch<K>(api: &Api<K>, name: &str, patch: &serde_json::Value) -> Result<()>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    api.patch(name, &params, &Patch::Merge(patch)).await?;
    Ok(())
}

/// What the installer's DaemonSet says about this installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// It exists: keep the runtime installed (a pod stopping now is a rollout, drain or reboot).
    Present,
    /// It carries [`UNINSTALL_ANNOTATION`]: uninstall and stay idle.
    UninstallRequested,
    /// It is gone or being deleted, or the installer's own credentials were just revoked (its
    /// ServiceAccount or RBAC was deleted with it): uninstall.
    Deleted,
    /// The API could not tell (network, server error): keep everything as it is.
    Unknown(String),
}

impl Owner {
    /// Whether the runtime should be removed from the node.
    pub fn wants_uninstall(&self) -> bool {
        matches!(self, Self::UninstallRequested | Self::Deleted)
    }
}

/// Classifies the result of reading the DaemonSet.
pub fn classify(read: std::result::Result<Option<DaemonSet>, kube::Error>) -> Owner {
    match read {
        Ok(None) => Owner::Deleted,
        Ok(Some(ds)) if ds.metadata.deletion_timestamp.is_some() => Owner::Deleted,
        Ok(Some(ds)) if asks_uninstall(&ds) => Owner::UninstallRequested,
        Ok(Some(_)) => Owner::Present,
        Err(kube::Error::Api(s)) if s.code == 401 || s.code == 403 => Owner::Deleted,
        Err(e) => Owner::Unknown(e.to_string()),
    }
}

/// Reads the DaemonSet `name` in `namespace` and classifies it.
pub async fn owner(client: &Client, namespace: &str, name: &str) -> Owner {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), namespace);
    classify(api.get_opt(name).await)
}

/// Whether the Node `name` carries [`UNINSTALL_ANNOTATION`]`=true`; `None` when the API could
/// not tell (keep things as they are).
pub async fn node_asks_uninstall(client: &Client, name: &str) -> Option<bool> {
    match Api::<Node>::all(client.clone()).get_opt(name).await {
        Ok(Some(node)) => Some(asks_uninstall(&node)),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(node = name, error = %e, "cannot read the node's uninstall annotation");
            None
        }
    }
}

/// Whether an object carries [`UNINSTALL_ANNOTATION`]`=true` (any other value is ignored).
pub fn asks_uninstall(obj: &impl ResourceExt) -> bool {
    obj.annotations()
        .get(UNINSTALL_ANNOTATION)
        .map(String::as_str)
        == Some("true")
}

/// Annotates the DaemonSet so every installer pod uninstalls (the Helm pre-delete hook).
pub async fn request_uninstall(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"metadata": {"annotations": {UNINSTALL_ANNOTATION: "true"}}});
    merge_patch(&api, name, &patch).await
}

/// The nodes running a pod of the DaemonSet that still carry the label.
pub async fn labelled_nodes(client: &Client, namespace: &str, name: &str) -> Result<Vec<String>> {
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), namespace);
    let Some(ds) = ds.get_opt(name).await? else {
        return Ok(Vec::new());
    };
    let selector = ds
        .spec
        .and_then(|s| s.selector.match_labels)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let on: BTreeSet<String> = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter_map(|p| p.spec.and_then(|s| s.node_name))
        .collect();
    let nodes: Api<Node> = Api::all(client.clone());
    let mut still = Vec::new();
    for node in on {
        if let Some(n) = nodes.get_opt(&node).await?
            && n.labels().contains_key(LABEL)
        {
            still.push(node);
        }
    }
    Ok(still)
}

/// Asks for the uninstall and waits until no installer node carries the label any more: each
/// pod sets it to `removing` first and deletes it only once its node is reverted, so a return
/// means the nodes are clean. Returns the nodes still labelled when `timeout` ran out.
pub async fn uninstall_all(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<Vec<String>> {
    request_uninstall(client, namespace, name).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let still = labelled_nodes(client, namespace, name).await?;
        if still.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(still);
        }
        tracing::info!(nodes = ?still, "waiting for the installer pods to uninstall");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use kube::core::Status;

    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure("x", "y").with_code(code)))
    }

    #[test]
    fn daemonset_states_map_to_decisions() {
        let mut ds = DaemonSet::default();
        assert_eq!(classify(Ok(Some(ds.clone()))), Owner::Present);
        assert!(!Owner::Present.wants_uninstall());
        ds.annotations_mut()
            .insert(UNINSTALL_ANNOTATION.into(), "true".into());
        assert_eq!(classify(Ok(Some(ds.clone()))), Owner::UninstallRequested);
        ds.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert_eq!(classify(Ok(Some(ds))), Owner::Deleted);
        assert_eq!(classify(Ok(None)), Owner::Deleted);
        assert_eq!(classify(Err(api_error(401))), Owner::Deleted);
        assert_eq!(classify(Err(api_error(403))), Owner::Deleted);
        let unknown = classify(Err(api_error(503)));
        assert!(matches!(unknown, Owner::Unknown(_)));
        assert!(
            !unknown.wants_uninstall(),
            "an API hiccup on a drain must not uninstall"
        );
    }

    #[test]
    fn annotation_other_than_true_is_ignored() {
        let mut ds = DaemonSet::default();
        ds.annotations_mut()
            .insert(UNINSTALL_ANNOTATION.into(), "false".into());
        assert_eq!(classify(Ok(Some(ds))), Owner::Present);
    }

    #[test]
    fn node_annotation_asks_only_when_true() {
        let mut node = Node::default();
        assert!(!asks_uninstall(&node));
        node.annotations_mut()
            .insert(UNINSTALL_ANNOTATION.into(), "yes".into());
        assert!(!asks_uninstall(&node));
        node.annotations_mut()
            .insert(UNINSTALL_ANNOTATION.into(), "true".into());
        assert!(asks_uninstall(&node));
    }
}
