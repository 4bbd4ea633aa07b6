//! Schema adjustments for the generated CRD.

use schemars::Schema;
use schemars::generate::SchemaGenerator;
use serde_json::Value;

/// Removes the `description` of every nested node, keeping the node's own.
///
/// Upstream Kubernetes types (Volume, Affinity, ...) carry long descriptions; dropping them
/// shrinks their inlined schemas several times while keeping every type and structural rule, so
/// the apiserver still validates and prunes them. Only string-valued `description` keywords are
/// removed: a property that happens to be named `description` stays.
pub fn no_descriptions(schema: &mut Schema) {
    let own = schema.get("description").cloned();
    if let Some(obj) = schema.as_object_mut() {
        for value in obj.values_mut() {
            strip(value);
        }
        obj.remove("description");
        if let Some(own) = own {
            obj.insert("description".into(), own);
        }
    }
}

/// [`no_descriptions`] for a list whose items have a `name` that CEL rules compare (volumes,
/// volume mounts): bounds the name to a DNS label (63 characters) so the apiserver's rule cost
/// estimate stays finite.
pub fn named_items(schema: &mut Schema) {
    no_descriptions(schema);
    if let Some(name) = schema
        .as_object_mut()
        .and_then(|o| o.get_mut("items"))
        .and_then(|i| i.get_mut("properties"))
        .and_then(|p| p.get_mut("name"))
        .and_then(Value::as_object_mut)
    {
        name.insert("maxLength".into(), 63.into());
    }
}

/// [`named_items`] for volume mounts, also bounding `mountPath` (to 1024 characters), which the
/// CEL rule placing File key-value buckets inside a mount compares.
pub fn mounts(schema: &mut Schema) {
    named_items(schema);
    if let Some(path) = schema
        .as_object_mut()
        .and_then(|o| o.get_mut("items"))
        .and_then(|i| i.get_mut("properties"))
        .and_then(|p| p.get_mut("mountPath"))
        .and_then(Value::as_object_mut)
    {
        path.insert("maxLength".into(), 1024.into());
    }
}

fn strip(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            if obj.get("description").is_some_and(Value::is_string) {
                obj.remove("description");
            }
            obj.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

/// Schema of `status.conditions`: a list-map keyed by `type`, so server-side apply merges
/// conditions one by one.
pub fn conditions(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "array",
        "description": "Ready, Progressing, Degraded, ImageValid and CapabilitiesReady, in the standard condition shape.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": {"type": "string", "maxLength": 316},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "reason": {"type": "string", "maxLength": 1024},
                "message": {"type": "string", "maxLength": 32768},
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_items_bounds_the_item_name() {
        let mut schema = schemars::json_schema!({
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string", "description": "x"}}}
        });
        named_items(&mut schema);
        let name = &schema.as_value()["items"]["properties"]["name"];
        assert_eq!(name["maxLength"], 63);
        assert!(name.get("description").is_none());
    }

    #[test]
    fn strips_nested_descriptions_but_keeps_own_and_properties_named_description() {
        let mut schema = schemars::json_schema!({
            "description": "top",
            "type": "object",
            "properties": {
                "a": {"type": "string", "description": "nested"},
                "description": {"type": "string", "description": "field called description"},
                "items": {"type": "array", "items": {"type": "object", "description": "deep"}}
            }
        });
        no_descriptions(&mut schema);
        let v = schema.as_value();
        assert_eq!(v["description"], "top");
        assert!(v["properties"]["a"].get("description").is_none());
        assert!(v["properties"]["description"].is_object());
        assert!(v["properties"]["description"].get("description").is_none());
        assert!(
            v["properties"]["items"]["items"]
                .get("description")
                .is_none()
        );
    }
}
