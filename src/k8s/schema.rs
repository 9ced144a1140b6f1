//! Rewrites generated CRD schemas into the "structural" form the API server requires.
//!
//! kube's derive already hoists enum variants and optional enums; what remains from the
//! core types is rewritten here: integer-or-string unions become
//! `x-kubernetes-int-or-string`, and free-form JSON values (`serde_json::Value`) keep
//! unknown fields instead of being schemaless.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Map, Value};

use super::CrdError;

/// Make every version's `openAPIV3Schema` of `crd` structural.
///
/// # Errors
/// [`CrdError::Json`] if the CRD does not round-trip through JSON.
pub fn structural(crd: CustomResourceDefinition) -> Result<CustomResourceDefinition, CrdError> {
    let name = crd.metadata.name.clone().unwrap_or_default();
    let json_err = |source| CrdError::Json {
        name: name.clone(),
        source,
    };
    let mut v = serde_json::to_value(crd).map_err(json_err)?;
    if let Some(versions) = v
        .pointer_mut("/spec/versions")
        .and_then(Value::as_array_mut)
    {
        for version in versions {
            if let Some(s) = version.pointer_mut("/schema/openAPIV3Schema") {
                rewrite(s, false);
            }
        }
    }
    serde_json::from_value(v).map_err(json_err)
}

/// Rewrites `node` and its subschemas. `junctor` is true for a branch of `anyOf`, `oneOf`,
/// `allOf` or `not`, where the API server forbids types and `x-kubernetes-*` extensions.
fn rewrite(node: &mut Value, junctor: bool) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    int_or_string(obj);
    for key in ["properties", "patternProperties", "definitions"] {
        if let Some(Value::Object(props)) = obj.get_mut(key) {
            for child in props.values_mut() {
                rewrite(child, false);
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = obj.get_mut(key) {
            rewrite(child, false);
        }
    }
    if let Some(child) = obj.get_mut("not") {
        rewrite(child, true);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(items)) = obj.get_mut(key) {
            for child in items {
                rewrite(child, true);
            }
        }
    }
    if !junctor {
        free_form(obj);
    }
}

/// An untagged integer-or-string enum becomes `x-kubernetes-int-or-string: true`. schemars
/// writes it as `anyOf: [{type: integer}, {type: string}]`; kube's rewriter hoists the
/// types away and leaves `anyOf: [{format: int64}, {}]`. Both forms are recognised: two
/// scalar branches, one of them an integer.
fn int_or_string(obj: &mut Map<String, Value>) {
    let Some(Value::Array(any_of)) = obj.get("anyOf") else {
        return;
    };
    let scalar = |s: &Value| {
        s.get("properties").is_none()
            && s.get("items").is_none()
            && matches!(
                s.get("type").and_then(Value::as_str),
                None | Some("integer" | "string")
            )
    };
    let integer = |s: &Value| {
        s.get("type").and_then(Value::as_str) == Some("integer")
            || matches!(
                s.get("format").and_then(Value::as_str),
                Some("int32" | "int64")
            )
    };
    if any_of.len() == 2 && any_of.iter().all(scalar) && any_of.iter().any(integer) {
        obj.remove("anyOf");
        obj.remove("type");
        obj.insert("x-kubernetes-int-or-string".into(), Value::Bool(true));
    }
}

/// A schema with no `type` (free-form JSON) keeps whatever it is given.
fn free_form(obj: &mut Map<String, Value>) {
    let typed = [
        "type",
        "anyOf",
        "oneOf",
        "allOf",
        "x-kubernetes-int-or-string",
        "$ref",
    ]
    .iter()
    .any(|k| obj.contains_key(*k));
    if !typed {
        obj.insert(
            "x-kubernetes-preserve-unknown-fields".into(),
            Value::Bool(true),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::rewrite;

    #[test]
    fn int_or_string_in_both_spellings() {
        for mut s in [
            json!({"anyOf": [{"type": "integer", "format": "int64"}, {"type": "string"}], "nullable": true}),
            json!({"anyOf": [{"format": "int64"}, {}], "nullable": true}),
        ] {
            rewrite(&mut s, false);
            assert_eq!(
                s,
                json!({"x-kubernetes-int-or-string": true, "nullable": true})
            );
        }
    }

    #[test]
    fn a_union_of_objects_is_not_int_or_string() {
        let mut s = json!({
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
        });
        let before = s.clone();
        rewrite(&mut s, false);
        assert_eq!(
            s, before,
            "junctor branches stay free of types and extensions"
        );
    }

    #[test]
    fn free_form_values_keep_unknown_fields() {
        let mut s = json!({"type": "object", "properties": {"raw": {"description": "any JSON"}}});
        rewrite(&mut s, false);
        assert_eq!(
            s["properties"]["raw"],
            json!({"description": "any JSON", "x-kubernetes-preserve-unknown-fields": true})
        );
    }
}
