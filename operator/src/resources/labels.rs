//! Labels and annotations the operator puts on children and pods.

use std::collections::BTreeMap;

/// Selects an app's pods. Immutable for the app's lifetime (the Deployment selector).
pub const APP_LABEL: &str = "wasmpod.io/app";
/// `app.kubernetes.io/managed-by` value on every child; child watches filter on it.
pub const MANAGED_BY: &str = "wasmpod-operator";
/// Label key of [`MANAGED_BY`].
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Pod-template annotation holding the checksum of referenced ConfigMaps and Secrets.
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "wasmpod.io/config-checksum";

/// Label selector of an app's pods, as a map.
pub fn selector(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(APP_LABEL.to_string(), app.to_string())])
}

/// Label selector of an app's pods, serialized (`wasmpod.io/app=NAME`) for `status.selector`.
pub fn selector_string(app: &str) -> String {
    format!("{APP_LABEL}={app}")
}

/// Labels on every child object and pod.
pub fn common(app: &str) -> BTreeMap<String, String> {
    let mut labels = selector(app);
    labels.insert("app.kubernetes.io/name".into(), app.to_string());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

/// Label selector for watching the operator's children.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_is_subset_of_common_labels() {
        let common = common("hello");
        for (k, v) in selector("hello") {
            assert_eq!(common.get(&k), Some(&v));
        }
        assert_eq!(selector_string("hello"), "wasmpod.io/app=hello");
        assert_eq!(common[MANAGED_BY_LABEL], "wasmpod-operator");
    }
}
