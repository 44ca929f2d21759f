//! `GET /metadata`: the CapabilityStatement, built from [`super::interactions`], the list
//! the router is built from, so it says exactly what the server does.

use super::element::Element;
use super::{BASE, Reply, interactions};
use crate::api::AppState;
use axum::extract::State;

static STARTED: std::sync::LazyLock<crate::store::Timestamp> = std::sync::LazyLock::new(crate::store::Timestamp::now);

pub async fn statement(State(state): State<AppState>) -> Reply {
    Reply::new(capability_statement(&state.public_url))
}

fn capability_statement(public_url: &str) -> Element {
    let all = interactions();
    let mut types: Vec<&str> = all.iter().filter_map(|i| i.kind.resource()).collect();
    types.dedup();
    let resources: Vec<Element> = types
        .into_iter()
        .map(|resource_type| {
            let of_type: Vec<_> = all
                .iter()
                .filter(|i| i.kind.resource() == Some(resource_type))
                .collect();
            // A search by GET and by POST is one interaction with one set of parameters.
            let mut codes: Vec<&str> = of_type.iter().map(|i| i.kind.code()).collect();
            codes.dedup();
            let codes: Vec<Element> = codes
                .into_iter()
                .map(|code| Element::object().with("code", code))
                .collect();
            let params: Vec<Element> = (of_type.iter().map(|i| i.kind.params()))
                .find(|params| !params.is_empty())
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    Element::object()
                        .with("name", p.name)
                        .with("definition", p.definition)
                        .with("type", p.kind.code())
                        .with("documentation", p.documentation)
                })
                .collect();
            let includes: Vec<Element> = (of_type.iter().map(|i| i.kind.includes()))
                .find(|includes| !includes.is_empty())
                .unwrap_or_default()
                .iter()
                .map(|param| Element::from(format!("{resource_type}:{param}")))
                .collect();
            let reads = of_type.iter().any(|i| matches!(i.kind, super::Kind::Read(_)));
            let reads_versions = of_type.iter().any(|i| matches!(i.kind, super::Kind::Vread(_)));
            Element::object()
                .with("type", resource_type)
                .with(
                    "profile",
                    format!("http://hl7.org/fhir/StructureDefinition/{resource_type}"),
                )
                .with("interaction", codes)
                .with("versioning", "versioned")
                .with("readHistory", reads_versions)
                .with_some("conditionalRead", reads.then_some("not-match"))
                .with("searchInclude", includes)
                .with("searchParam", params)
        })
        .collect();
    let smart = Element::object().with(
        "coding",
        vec![
            Element::object()
                .with(
                    "system",
                    "http://terminology.hl7.org/CodeSystem/restful-security-service",
                )
                .with("code", "SMART-on-FHIR"),
        ],
    );
    let security = Element::object().with("cors", false).with("service", vec![smart]).with(
        "description",
        "Send `Authorization: Bearer` with a hub API key or an SSO access token; any hub role may read. An SSO \
             token's SMART system scopes (system/Practitioner.read, system/*.rs, ...) narrow it to the types and \
             interactions they name. Identifying elements and identifying search parameters need the pii:read \
             permission; without it they are left out and the resource is labelled REDACTED. Every read is audited.",
    );
    Element::resource("CapabilityStatement")
        .with("name", "HealthForceHub")
        .with("title", "HealthForce Hub FHIR R4 server")
        .with("status", "active")
        // What the server does changes only with its software, whose release date the
        // build does not know: the statement is dated when this process first wrote it.
        .with("date", STARTED.to_string())
        .with("publisher", "HealthForce Hub")
        .with(
            "description",
            "Read and search over the hub's golden records of Indonesian health workers (SDMK).",
        )
        .with("kind", "instance")
        .with(
            "software",
            Element::object()
                .with("name", "HealthForce Hub")
                .with("version", env!("CARGO_PKG_VERSION")),
        )
        .with(
            "implementation",
            Element::object()
                .with("description", "HealthForce Hub")
                .with("url", format!("{public_url}{BASE}")),
        )
        .with("fhirVersion", "4.0.1")
        .with("format", vec![Element::from("json"), Element::from("xml")])
        .with(
            "rest",
            vec![
                Element::object()
                    .with("mode", "server")
                    .with("security", security)
                    .with("resource", resources),
            ],
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/fhir.md's search table lists each parameter the server takes, with its type.
    #[test]
    fn the_documented_search_parameters_are_the_ones_the_server_takes() {
        let doc = include_str!("../../../docs/fhir.md");
        let table = doc.split("## Search").nth(1).expect("a Search section");
        let documented: Vec<(String, String, String)> = table
            .lines()
            .skip_while(|l| !l.starts_with("| `"))
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let code = |cell: &str| cell.trim_matches('`').to_string();
                (code(cells[1]), code(cells[2]), cells[3].to_string())
            })
            .collect();
        let served: Vec<(String, String, String)> = interactions()
            .iter()
            .filter(|i| i.method == axum::http::Method::GET)
            .flat_map(|i| {
                i.kind
                    .params()
                    .iter()
                    .map(|p| (i.kind.resource().unwrap_or_default(), p))
            })
            .map(|(resource, p)| {
                let name = match p.modifier {
                    Some(modifier) => format!("{}:{modifier}", p.name),
                    None => p.name.to_string(),
                };
                (resource.to_string(), name, p.kind.code().to_string())
            })
            .collect();
        assert_eq!(documented, served);
    }

    #[test]
    fn the_statement_lists_each_interaction_once_and_the_search_parameters() {
        let statement = serde_json::to_value(capability_statement("http://hub")).unwrap();
        let practitioner = &statement["rest"][0]["resource"][0];
        assert_eq!(practitioner["type"], "Practitioner");
        assert_eq!(
            practitioner["interaction"],
            serde_json::json!([
                { "code": "search-type" },
                { "code": "read" },
                { "code": "history-instance" },
                { "code": "vread" }
            ])
        );
        assert_eq!(practitioner["readHistory"], true);
        assert_eq!(practitioner["searchParam"].as_array().unwrap().len(), 6);
        assert_eq!(statement["implementation"]["url"], "http://hub/fhir/r4");
    }
}
