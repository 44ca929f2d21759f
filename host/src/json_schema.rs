//! A JSON Schema checker for the subset the hub writes and reads: plugin config schemas in
//! manifests, and the schemas of API request bodies (generated from their Rust types, so the
//! OpenAPI document shows exactly what this checks).
//!
//! Keywords: `type` (one or a list), `enum`, `const`, `minimum`/`maximum`,
//! `minLength`/`maxLength` (in characters), `pattern`, `items`, `minItems`/`maxItems`,
//! `required`, `properties`, `additionalProperties` (`false` or a schema), `anyOf`/`oneOf`
//! (one branch must hold), and `$ref` into `$defs`. Every violation is reported with its JSON
//! pointer.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// One problem in a config, at a JSON pointer.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
}

pub fn validate(schema: &Value, value: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    Checker { root: schema }.check(schema, value, "", &mut errors);
    errors
}

struct Checker<'a> {
    /// Where `$ref`s point into.
    root: &'a Value,
}

impl Checker<'_> {
    fn check(&self, schema: &Value, value: &Value, pointer: &str, errors: &mut Vec<FieldError>) {
        let Some(schema) = schema.as_object() else { return };
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            match target.strip_prefix('#').and_then(|p| self.root.pointer(p)) {
                Some(referenced) => self.check(referenced, value, pointer, errors),
                None => fail(
                    errors,
                    pointer,
                    format!("cannot be checked: the schema's $ref {target} is dangling"),
                ),
            }
        }
        if let Some(expected) = schema.get("type")
            && !type_matches(expected, value)
        {
            fail(errors, pointer, format!("must be of type {}", type_names(expected)));
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            fail(
                errors,
                pointer,
                format!("must be one of {}", Value::Array(allowed.clone())),
            );
        }
        if let Some(constant) = schema.get("const")
            && constant != value
        {
            fail(errors, pointer, format!("must be {constant}"));
        }
        for keyword in ["anyOf", "oneOf"] {
            if let Some(branches) = schema.get(keyword).and_then(Value::as_array)
                && !branches.iter().any(|b| validate_in(self.root, b, value))
            {
                fail(errors, pointer, "matches none of the allowed forms".into());
            }
        }
        if let Some(n) = value.as_f64() {
            if let Some(min) = number(schema, "minimum").filter(|min| n < *min) {
                fail(errors, pointer, format!("must be at least {min}"));
            }
            if let Some(max) = number(schema, "maximum").filter(|max| n > *max) {
                fail(errors, pointer, format!("must be at most {max}"));
            }
        }
        if let Some(text) = value.as_str() {
            let chars = text.chars().count() as f64;
            if let Some(min) = number(schema, "minLength").filter(|min| chars < *min) {
                fail(errors, pointer, format!("must be at least {min} characters"));
            }
            if let Some(max) = number(schema, "maxLength").filter(|max| chars > *max) {
                fail(errors, pointer, format!("must be at most {max} characters"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                match compiled(pattern) {
                    Some(regex) if regex.is_match(text) => {}
                    Some(_) => fail(errors, pointer, format!("must match {pattern}")),
                    None => fail(
                        errors,
                        pointer,
                        format!("cannot be checked: the pattern {pattern} is not a regular expression"),
                    ),
                }
            }
        }
        if let Some(array) = value.as_array() {
            let len = array.len() as f64;
            if let Some(min) = number(schema, "minItems").filter(|min| len < *min) {
                fail(errors, pointer, format!("must have at least {min} items"));
            }
            if let Some(max) = number(schema, "maxItems").filter(|max| len > *max) {
                fail(errors, pointer, format!("must have at most {max} items"));
            }
            if let Some(items) = schema.get("items") {
                for (i, item) in array.iter().enumerate() {
                    self.check(items, item, &format!("{pointer}/{i}"), errors);
                }
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
                fail(errors, &format!("{pointer}/{name}"), "is required".into());
            }
        }
        for (name, field) in object {
            let field_pointer = format!("{pointer}/{name}");
            match (properties.and_then(|p| p.get(name)), schema.get("additionalProperties")) {
                (Some(field_schema), _) => self.check(field_schema, field, &field_pointer, errors),
                (None, Some(Value::Bool(false))) => fail(errors, &field_pointer, "is not a known field".into()),
                (None, Some(other)) => self.check(other, field, &field_pointer, errors),
                (None, None) => {}
            }
        }
    }
}

fn validate_in(root: &Value, schema: &Value, value: &Value) -> bool {
    let mut errors = Vec::new();
    Checker { root }.check(schema, value, "", &mut errors);
    errors.is_empty()
}

fn fail(errors: &mut Vec<FieldError>, pointer: &str, message: String) {
    errors.push(FieldError {
        pointer: pointer_or_root(pointer),
        message,
    });
}

fn number(schema: &serde_json::Map<String, Value>, keyword: &str) -> Option<f64> {
    schema.get(keyword).and_then(Value::as_f64)
}

/// Whether `text` matches the regular expression `pattern` (false when it is none).
pub fn matches(pattern: &str, text: &str) -> bool {
    compiled(pattern).is_some_and(|regex| regex.is_match(text))
}

/// Patterns compiled once: schemas are few and fixed (a manifest's, a request type's).
fn compiled(pattern: &str) -> Option<regex::Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| regex::Regex::new(pattern).ok())
        .clone()
}

fn type_names(expected: &Value) -> String {
    match expected {
        Value::Array(names) => names.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        other => other.as_str().unwrap_or("?").to_string(),
    }
}

fn type_matches(expected: &Value, value: &Value) -> bool {
    match expected {
        Value::Array(names) => names.iter().any(|name| type_matches(name, value)),
        Value::String(name) => type_named(name, value),
        _ => true,
    }
}

fn type_named(expected: &str, value: &Value) -> bool {
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
