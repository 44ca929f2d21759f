//! [`Element`]: a FHIR resource as an ordered tree, written once and serialized to JSON or XML.
//! FHIR XML must list a resource's elements in the order its definition gives, and JSON
//! maps here are sorted by key, so resources are built in definition order with
//! [`Element::object`] and neither form reorders them. Empty values are left out as they are
//! built: FHIR allows no empty element, array or object.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

#[derive(Clone, Debug, PartialEq)]
pub enum Element {
    Text(String),
    Integer(i64),
    Decimal(f64),
    Bool(bool),
    /// Fields in definition order; a resource's first field is `resourceType`.
    Object(Vec<(&'static str, Element)>),
    Array(Vec<Element>),
}

impl Element {
    pub fn object() -> Self {
        Element::Object(Vec::new())
    }

    /// Adds field `name` unless `value` is empty.
    pub fn with(mut self, name: &'static str, value: impl Into<Element>) -> Self {
        let value = value.into();
        if let Element::Object(fields) = &mut self
            && !value.is_empty()
        {
            fields.push((name, value));
        }
        self
    }

    /// Adds field `name` when there is a value.
    pub fn with_some<T: Into<Element>>(self, name: &'static str, value: Option<T>) -> Self {
        match value {
            Some(value) => self.with(name, value),
            None => self,
        }
    }

    /// A resource: an object whose first field is `resourceType`.
    pub fn resource(resource_type: &str) -> Self {
        Element::object().with("resourceType", resource_type)
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Element::Text(text) => text.is_empty(),
            Element::Object(fields) => fields.is_empty(),
            Element::Array(items) => items.is_empty(),
            Element::Integer(_) | Element::Decimal(_) | Element::Bool(_) => false,
        }
    }

    /// The field `name` of an object.
    pub fn get(&self, name: &str) -> Option<&Element> {
        match self {
            Element::Object(fields) => fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The resource type, when this is a resource.
    pub fn resource_type(&self) -> Option<&str> {
        match self {
            Element::Object(fields) => match fields.first() {
                Some(("resourceType", Element::Text(t))) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }
}

impl From<&str> for Element {
    fn from(text: &str) -> Self {
        Element::Text(text.to_string())
    }
}

impl From<String> for Element {
    fn from(text: String) -> Self {
        Element::Text(text)
    }
}

impl From<&String> for Element {
    fn from(text: &String) -> Self {
        Element::Text(text.clone())
    }
}

impl From<i64> for Element {
    fn from(n: i64) -> Self {
        Element::Integer(n)
    }
}

impl From<f64> for Element {
    fn from(n: f64) -> Self {
        Element::Decimal(n)
    }
}

impl From<bool> for Element {
    fn from(b: bool) -> Self {
        Element::Bool(b)
    }
}

impl From<Vec<Element>> for Element {
    fn from(items: Vec<Element>) -> Self {
        Element::Array(items.into_iter().filter(|i| !i.is_empty()).collect())
    }
}

impl Serialize for Element {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Element::Text(text) => serializer.serialize_str(text),
            Element::Integer(n) => serializer.serialize_i64(*n),
            Element::Decimal(n) => serializer.serialize_f64(*n),
            Element::Bool(b) => serializer.serialize_bool(*b),
            Element::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (name, value) in fields {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
            Element::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Element;

    #[test]
    fn json_keeps_the_order_fields_were_added_in_and_leaves_out_empty_ones() {
        let resource = Element::resource("Practitioner")
            .with("id", "p1")
            .with("identifier", Vec::<Element>::new())
            .with_some("active", Some(true))
            .with("gender", "female")
            .with("name", vec![Element::object().with("text", "")]);
        assert_eq!(
            serde_json::to_string(&resource).unwrap(),
            r#"{"resourceType":"Practitioner","id":"p1","active":true,"gender":"female"}"#
        );
    }
}
