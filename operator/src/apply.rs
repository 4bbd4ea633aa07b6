//! Server-side apply of children and removal of unwanted ones.

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::resources::drift;
use crate::{Error, Result};

/// Field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "wasmpod-operator";

/// Applies `obj` server-side under [`FIELD_MANAGER`], forcing ownership of conflicting fields
/// (so hand edits of fields the operator sets are reverted). Returns the object as stored.
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = obj.name_any();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(obj))
        .await
        .map_err(|source| Error::Apply {
            kind: kind_of::<K>(),
            name,
            source,
        })
}

/// Applies `obj` and repairs drift that a forced apply leaves behind: when the apply is rejected
/// as invalid (e.g. a hand-added Service port collides with the operator's) or `drifted` says the
/// live object still differs, the operator-owned lists are replaced with a merge patch and the
/// object is applied again.
pub async fn apply_repairing<K>(api: &Api<K>, obj: &K, drifted: impl Fn(&K) -> bool) -> Result<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let first_error = match apply(api, obj).await {
        Ok(live) if !drifted(&live) => return Ok(live),
        Ok(_) => None,
        Err(e) if is_invalid(&e) => Some(e),
        Err(e) => return Err(e),
    };
    let name = obj.name_any();
    let kind = K::kind(&());
    let patch = drift::restore_patch(&kind, &serde_json::to_value(obj)?);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    if let Err(e) = api.patch(&name, &params, &Patch::Merge(&patch)).await {
        return Err(first_error.unwrap_or(Error::Apply {
            kind: kind_of::<K>(),
            name,
            source: e,
        }));
    }
    tracing::info!(%kind, %name, "replaced lists that someone else edited");
    apply(api, obj).await
}

fn is_invalid(e: &Error) -> bool {
    matches!(e, Error::Apply { source: kube::Error::Api(status), .. } if status.code == 422)
}

/// Whether an apply failed on a field the apiserver does not let change in place (e.g. a
/// Service's `clusterIP`), so the object must be recreated.
pub fn is_immutable_field_error(e: &Error) -> bool {
    match e {
        Error::Apply {
            source: kube::Error::Api(status),
            ..
        } => status.code == 422 && status.message.contains("immutable"),
        _ => false,
    }
}

/// Deletes `name` if it exists and is controlled by the owner with `owner_uid`. Returns whether
/// something was deleted; objects of the same name owned by someone else are left alone.
pub async fn delete_owned<K>(api: &Api<K>, name: &str, owner_uid: &str) -> Result<bool>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let Some(existing) = api.get_opt(name).await? else {
        return Ok(false);
    };
    let owned = existing
        .owner_references()
        .iter()
        .any(|o| o.uid == owner_uid && o.controller == Some(true));
    if !owned {
        return Ok(false);
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: existing.uid(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn kind_of<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()).as_ref() {
        "Deployment" => "Deployment",
        "Service" => "Service",
        "HorizontalPodAutoscaler" => "HorizontalPodAutoscaler",
        "PodDisruptionBudget" => "PodDisruptionBudget",
        "EndpointSlice" => "EndpointSlice",
        _ => "object",
    }
}
