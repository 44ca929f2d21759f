//! Checks a connector instance's config against the JSON Schema in its plugin's manifest.
//!
//! Supports the subset plugin manifests use: `type`, `required`, `properties`,
//! `additionalProperties: false`, `minimum`/`maximum`, `enum`, and nested objects and arrays
//! (`items`). Every violation is reported with its JSON pointer.

use serde_json::Value;

/// One problem in a config, at a JSON pointer.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
}

pub fn validate(schema: &Value, config: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check(schema, config, "", &mut errors);
    errors
}

fn check(schema: &Value, value: &Value, pointer: &str, errors: &mut Vec<FieldError>) {
    let Some(schema) = schema.as_object() else { return };
    let mut fail = |message: String| {
        errors.push(FieldError {
            pointer: pointer_or_root(pointer),
            message,
        })
    };
    if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_matches(expected, value)
    {
        fail(format!("must be of type {expected}"));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        fail(format!("must be one of {}", Value::Array(allowed.clone())));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64).filter(|min| n < *min) {
            fail(format!("must be at least {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64).filter(|max| n > *max) {
            fail(format!("must be at most {max}"));
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(items, item, &format!("{pointer}/{i}"), errors);
        }
    }
    let Some(object) = value.as_object() else { return };
    let properties = schema.get("properties").and_then(Value::as_object);
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !object.contains_key(name) {
            errors.push(FieldError {
                pointer: format!("{pointer}/{name}"),
                message: "is required".into(),
            });
        }
    }
    for (name, field) in object {
        let field_pointer = format!("{pointer}/{name}");
        match properties.and_then(|p| p.get(name)) {
            Some(field_schema) => check(field_schema, field, &field_pointer, errors),
            None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => errors.push(FieldError {
                pointer: field_pointer,
                message: "is not a known setting of this plugin".into(),
            }),
            None => {}
        }
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn pointer_or_root(pointer: &str) -> String {
    if pointer.is_empty() { "/".into() } else { pointer.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_every_violation_with_its_pointer() {
        let schema = json!({
            "type": "object", "required": ["base_url"], "additionalProperties": false,
            "properties": { "base_url": {"type": "string"}, "per_page": {"type": "integer", "minimum": 1, "maximum": 1000} }
        });
        assert!(validate(&schema, &json!({"base_url": "http://x", "per_page": 10})).is_empty());
        let errors = validate(&schema, &json!({"per_page": 5000, "extra": 1}));
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, vec!["/base_url", "/extra", "/per_page"]);
        assert_eq!(validate(&schema, &json!([]))[0].message, "must be of type object");
    }
}
