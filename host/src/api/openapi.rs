//! `/openapi.json`: OpenAPI 3.1, generated from the route table and the Rust types of every
//! request and response, so it cannot drift from the code.

use super::routes::{Access, Route, table};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// Errors every authenticated route can answer, besides its own.
const ERRORS: &[(u16, &str)] = &[
    (
        400,
        "The request does not match this operation's documented schema (query, path or body: type, enum, pattern, length, range, required or unknown field); `errors` names each field",
    ),
    (401, "Missing, unknown, revoked or invalid credentials"),
    (403, "The caller's role or grants do not allow this"),
    (404, "No such object"),
    (409, "The object's state does not allow this now"),
    (
        422,
        "The request matches the schema but a rule beyond it refuses it (a plugin's own config schema, a cron expression, a plugin that is not installed); `detail` and `errors` say which",
    ),
    (
        500,
        "The hub failed; `x-request-id` identifies the request in the hub log",
    ),
];

pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths = Map::new();
    for route in table() {
        let operation = operation(&route, &mut generator);
        let item = paths.entry(route.path).or_insert_with(|| Value::Object(Map::new()));
        item[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    let mut schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "HealthForce Hub API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Manage SDMK connectors, plugins, API keys and the audit trail. \
                Authenticate with `Authorization: Bearer <API key or SSO token>`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (POST /api/v1/api-keys) or a JWT from the configured SSO",
                },
            },
        },
    })
}

fn operation(route: &Route, generator: &mut schemars::SchemaGenerator) -> Value {
    let mut parameters: Vec<Value> = path_parameters(route.path)
        .map(|name| {
            let mut schema = json!({ "type": "string" });
            if let Some((_, pattern)) = route.patterns.iter().find(|(n, _)| *n == name) {
                schema["pattern"] = json!(pattern);
            }
            json!({ "name": name, "in": "path", "required": true, "schema": schema })
        })
        .collect();
    if let Some(query) = route.query {
        let schema = query(generator).to_value();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        if let Some(properties) = schema["properties"].as_object() {
            for (name, property) in properties {
                let mut parameter = json!({
                    "name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": property,
                });
                if let Some(description) = property.get("description") {
                    parameter["description"] = description.clone();
                }
                parameters.push(parameter);
            }
        }
    }
    let mut responses = Map::new();
    let success = match route.response {
        Some(schema) => json!({
            "description": "Success",
            "content": { route.response_media: { "schema": schema(generator).to_value() } },
        }),
        None => json!({ "description": "Success" }),
    };
    responses.insert(route.status.to_string(), success);
    let public = route.access == Access::Public;
    let mut problem = |status: u16, description: &str| {
        responses.insert(
            status.to_string(),
            json!({
                "description": description,
                "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } },
            }),
        );
    };
    for (status, description) in super::listener::UNPARSABLE {
        problem(*status, description);
    }
    if !public {
        for (status, description) in ERRORS {
            problem(*status, description);
        }
    }
    for (status, description) in route.errors {
        problem(*status, description);
    }
    if !route.bodies.is_empty() {
        let limit = if route.max_body == usize::MAX {
            "the hub's configured limit".to_string()
        } else {
            format!("{} bytes", route.max_body)
        };
        problem(
            413,
            &format!("The body is over {limit}; the hub reads and drops up to 16 MiB of it before answering"),
        );
        let media: Vec<&str> = route.bodies.iter().map(|(media, _)| *media).collect();
        problem(
            415,
            &format!("The body is missing or its Content-Type is not {}", media.join(" or ")),
        );
    }
    let mut operation = json!({
        "operationId": operation_id(route),
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": parameters,
        "responses": responses,
        "security": match route.access {
            Access::Public => json!([]),
            // No credentials, or the metrics token when the hub has one.
            Access::Scrape => json!([{}, { "bearer": [] }]),
            Access::Needs(_) => json!([{ "bearer": [] }]),
        },
    });
    if let Access::Needs(permission) = route.access {
        operation["x-required-permission"] = json!(permission.as_str());
    }
    if !route.bodies.is_empty() {
        let content: Map<String, Value> = route
            .bodies
            .iter()
            .map(|(media, schema)| (media.to_string(), json!({ "schema": schema(generator).to_value() })))
            .collect();
        operation["requestBody"] = json!({ "required": true, "content": content });
    }
    operation
}

/// axum's `{id}` is OpenAPI's `{id}` too; only the names are needed.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

fn operation_id(route: &Route) -> String {
    let words: Vec<&str> = route
        .path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "api" && *s != "v1")
        .map(|s| s.trim_start_matches('{').trim_end_matches('}'))
        .collect();
    format!("{}_{}", route.method.as_str().to_ascii_lowercase(), words.join("_")).replace(['-', '.'], "_")
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string", "description": "What went wrong and what to do" },
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": { "pointer": { "type": "string", "description": "JSON pointer to the field" }, "message": { "type": "string" } },
                },
            },
        },
    })
}
