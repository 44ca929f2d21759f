//! The FHIR XML form of an [`Element`] (https://hl7.org/fhir/R4/xml.html): a primitive is an
//! element with a `value` attribute, an array repeats its element, a resource is an element
//! named by its type in the FHIR namespace, and a resource inside another (a Bundle entry's)
//! is wrapped in the field's element.

use super::element::Element;
use std::fmt::Write;

const NAMESPACE: &str = "http://hl7.org/fhir";

/// `resource` as an XML document.
pub fn document(resource: &Element) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    write_resource(&mut out, resource);
    out
}

fn write_resource(out: &mut String, resource: &Element) {
    let Element::Object(fields) = resource else { return };
    let name = resource.resource_type().unwrap_or("Resource");
    let _ = write!(out, "<{name} xmlns=\"{NAMESPACE}\">");
    for (field, value) in fields.iter().skip(1) {
        write_field(out, field, value);
    }
    let _ = write!(out, "</{name}>");
}

fn write_field(out: &mut String, name: &str, value: &Element) {
    match value {
        Element::Array(items) => {
            for item in items {
                write_field(out, name, item);
            }
        }
        Element::Object(_) if value.resource_type().is_some() => {
            let _ = write!(out, "<{name}>");
            write_resource(out, value);
            let _ = write!(out, "</{name}>");
        }
        Element::Object(fields) => {
            // An extension's url is an attribute (https://hl7.org/fhir/R4/extensibility.html#xml).
            let is_extension = matches!(name, "extension" | "modifierExtension");
            let url = fields.iter().find_map(|(field, value)| match (field, value) {
                (&"url", Element::Text(url)) if is_extension => Some(url),
                _ => None,
            });
            match url {
                Some(url) => {
                    let _ = write!(out, "<{name} url=\"{}\">", escape(url));
                }
                None => {
                    let _ = write!(out, "<{name}>");
                }
            }
            for (field, value) in fields {
                if !(url.is_some() && *field == "url") {
                    write_field(out, field, value);
                }
            }
            let _ = write!(out, "</{name}>");
        }
        Element::Text(text) => primitive(out, name, text),
        Element::Integer(n) => primitive(out, name, &n.to_string()),
        Element::Decimal(n) => primitive(out, name, &serde_json::to_string(n).unwrap_or_default()),
        Element::Bool(b) => primitive(out, name, if *b { "true" } else { "false" }),
    }
}

fn primitive(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<{name} value=\"{}\"/>", escape(value));
}

/// `value` as the text of a double-quoted attribute.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Attribute values normalize whitespace; these keep theirs.
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_writes_primitives_as_value_attributes_repeats_arrays_and_wraps_inner_resources() {
        let status = Element::object()
            .with("url", "urn:x:status")
            .with("valueCode", "active");
        let practitioner = Element::resource("Practitioner")
            .with("id", "p1")
            .with("name", vec![Element::object().with("text", "Siti \"<&>\" Rahayu")])
            .with("qualification", vec![Element::object().with("extension", vec![status])]);
        let bundle = Element::resource("Bundle")
            .with("type", "searchset")
            .with("total", 2i64)
            .with(
                "entry",
                vec![
                    Element::object().with("resource", practitioner.clone()),
                    Element::object().with("resource", practitioner),
                ],
            );
        let xml = document(&bundle);
        let entry = "<entry><resource><Practitioner xmlns=\"http://hl7.org/fhir\"><id value=\"p1\"/><name><text \
                     value=\"Siti &quot;&lt;&amp;&gt;&quot; Rahayu\"/></name><qualification><extension \
                     url=\"urn:x:status\"><valueCode value=\"active\"/></extension></qualification></Practitioner>\
                     </resource></entry>";
        assert_eq!(
            xml,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Bundle xmlns=\"http://hl7.org/fhir\"><type \
                 value=\"searchset\"/><total value=\"2\"/>{entry}{entry}</Bundle>"
            )
        );
    }
}
