//! The FHIR R4 server at `/fhir/r4`: read and search over the golden records, in JSON and
//! XML (docs/fhir.md).
//!
//! A request goes: [`render`] picks the format (`_format`, else `Accept`; 406 for neither
//! FHIR form) → the API's own bearer check (`api::auth::guard`, the same credentials, audit
//! and refusals) → the interaction's handler, which answers a [`Reply`] or a `Problem` →
//! [`render`] writes either as a resource (a `Problem` as an `OperationOutcome`) in the
//! chosen format. [`interactions`] is the one list of what the server does: it builds the
//! router and the `CapabilityStatement`, so the statement cannot claim what the router lacks.

mod bundle;
mod capability;
mod element;
mod format;
mod observation;
mod outcome;
mod practitioner;
mod search;
mod xml;

use crate::api::AppState;
use crate::api::routes::Access;
use crate::audit::{Event, Outcome};
use crate::auth::{Caller, Permission, smart};
use crate::store::Timestamp;
use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
pub use element::Element;
pub use format::Format;

/// Where the server is mounted.
pub const BASE: &str = "/fhir/r4";

/// One interaction the server supports.
pub struct Interaction {
    pub method: Method,
    /// Under [`BASE`], in axum path syntax.
    pub path: &'static str,
    /// The resource type it is on (`None`: the whole system, as `/metadata`).
    pub resource: Option<&'static str>,
    /// The FHIR interaction code: `read`, `search-type`, `capabilities`.
    pub code: &'static str,
    /// The search parameters of a `search-type`.
    pub params: &'static [search::SearchParam],
    pub public: bool,
    handler: MethodRouter<AppState>,
}

/// Everything the server does.
pub fn interactions() -> Vec<Interaction> {
    let read = |path, resource, handler: MethodRouter<AppState>| Interaction {
        method: Method::GET,
        path,
        resource: Some(resource),
        code: "read",
        params: &[],
        public: false,
        handler,
    };
    let search = |path, resource, params, handler: MethodRouter<AppState>| Interaction {
        code: "search-type",
        params,
        ..read(path, resource, handler)
    };
    vec![
        Interaction {
            method: Method::GET,
            path: "/metadata",
            resource: None,
            code: "capabilities",
            params: &[],
            public: true,
            handler: axum::routing::get(capability::statement),
        },
        search(
            "/Practitioner",
            "Practitioner",
            practitioner::SEARCH_PARAMS,
            axum::routing::get(practitioner::search),
        ),
        Interaction {
            method: Method::POST,
            ..search(
                "/Practitioner/_search",
                "Practitioner",
                practitioner::SEARCH_PARAMS,
                axum::routing::post(practitioner::search_form),
            )
        },
        read(
            "/Practitioner/{id}",
            "Practitioner",
            axum::routing::get(practitioner::read),
        ),
        search(
            "/Observation",
            "Observation",
            observation::SEARCH_PARAMS,
            axum::routing::get(observation::search),
        ),
        read(
            "/Observation/{id}",
            "Observation",
            axum::routing::get(observation::read),
        ),
        read("/Device/{id}", "Device", axum::routing::get(observation::read_device)),
    ]
}

/// The server's route templates, as the metrics label requests with them.
pub fn paths() -> impl Iterator<Item = &'static str> {
    static PATHS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
        interactions()
            .iter()
            .map(|i| &*Box::leak(format!("{BASE}{}", i.path).into_boxed_str()))
            .collect()
    });
    PATHS.iter().copied()
}

/// The FHIR server's router, to nest at [`BASE`].
pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    for interaction in interactions() {
        let access = if interaction.public {
            Access::Public
        } else {
            Access::Needs(Permission::Read)
        };
        let handler = match (interaction.resource, scope_access(interaction.code)) {
            (Some(resource), Some(access)) => interaction.handler.route_layer(axum::middleware::from_fn_with_state(
                (state.clone(), resource, access),
                within_scopes,
            )),
            _ => interaction.handler,
        };
        router = router.route(interaction.path, crate::api::auth::guard(access, handler, state));
    }
    router
        .fallback(|uri: axum::http::Uri| async move {
            crate::api::Problem::not_found(format!(
                "{} is no FHIR interaction this server has: GET {BASE}/metadata lists them",
                uri.path()
            ))
        })
        .method_not_allowed_fallback(|method: Method| async move {
            crate::api::Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("this FHIR server only reads and searches, so it does not accept {method}: GET {BASE}/metadata lists what it does"),
            )
        })
        .layer(axum::middleware::from_fn(render))
}

/// What an interaction does, as SMART scopes name it.
fn scope_access(code: &str) -> Option<smart::Access> {
    match code {
        "read" => Some(smart::Access::Read),
        "search-type" => Some(smart::Access::Search),
        _ => None,
    }
}

/// Lets a caller through whose SMART system scopes, if it has any, allow the interaction;
/// runs after the bearer check, which put the caller in the request.
async fn within_scopes(
    axum::extract::State((state, resource, access)): axum::extract::State<(AppState, &'static str, smart::Access)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let caller = request.extensions().get::<Caller>();
    let Some(scopes) = caller.and_then(|c| c.smart.as_ref()) else {
        return next.run(request).await;
    };
    if scopes.allow(resource, access) {
        return next.run(request).await;
    }
    let actor = caller.map(|c| c.actor.clone()).unwrap_or_default();
    let wanted = match access {
        smart::Access::Read => "read (system/{resource}.read or .r)",
        smart::Access::Search => "search (system/{resource}.read or .s)",
    }
    .replace("{resource}", resource);
    let event = Event::new(
        &actor,
        "access.denied",
        format!("{} {}", request.method(), request.uri().path()),
    )
    .outcome(Outcome::Denied)
    .details(serde_json::json!({ "needs_scope": wanted }));
    state.manager.audit().record(event).await;
    crate::api::Problem::new(
        StatusCode::FORBIDDEN,
        format!(
            "this token's SMART scopes do not allow {wanted} on {resource}: ask the SSO for a token with that scope"
        ),
    )
    .into_response()
}

/// A label of http://terminology.hl7.org/CodeSystem/v3-ObservationValue (`REDACTED`,
/// `SUBSETTED`) for `meta.security` or `meta.tag`.
pub(crate) fn label(code: &str, display: &str) -> Element {
    Element::object()
        .with("system", "http://terminology.hl7.org/CodeSystem/v3-ObservationValue")
        .with("code", code)
        .with("display", display)
}

/// A successful answer: a resource and what HTTP says about its version.
pub struct Reply {
    pub resource: Element,
    /// `meta.versionId`, sent as the weak ETag `W/"<version>"`.
    pub version: Option<i64>,
    pub last_modified: Option<Timestamp>,
}

impl Reply {
    pub fn new(resource: Element) -> Self {
        Self {
            resource,
            version: None,
            last_modified: None,
        }
    }
}

/// The resource a handler answered, for [`render`] to write.
#[derive(Clone)]
struct Rendered(Element);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = StatusCode::OK.into_response();
        let headers = response.headers_mut();
        if let Some(version) = self.version
            && let Ok(etag) = HeaderValue::from_str(&format::etag(version))
        {
            headers.insert(header::ETAG, etag);
        }
        if let Some(at) = self.last_modified
            && let Ok(date) = HeaderValue::from_str(&format::http_date(at))
        {
            headers.insert(header::LAST_MODIFIED, date);
        }
        response.extensions_mut().insert(Rendered(self.resource));
        response
    }
}

/// Picks the answer's format, and writes the handler's resource, or its problem as an
/// `OperationOutcome`, in it.
async fn render(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let format = match Format::of(request.uri().query(), request.headers()) {
        Ok(format) => format,
        Err(problem) => return write(Format::Json, false, outcome::of(&problem), problem.status, None),
    };
    let pretty = format::pretty(request.uri().query());
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(request).await;
    let (mut parts, _) = response.into_parts();
    // The client's copy is current: the version alone answers.
    let current = (parts.headers.get(header::ETAG))
        .and_then(|etag| etag.to_str().ok())
        .and_then(|etag| etag.strip_prefix("W/\"")?.strip_suffix('"')?.parse().ok())
        .zip(if_none_match.as_ref().and_then(|v| v.to_str().ok()))
        .is_some_and(|(version, asked)| format::matches_etag(asked, version));
    if current && parts.status == StatusCode::OK {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.extensions.remove::<Rendered>();
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    let resource = match (
        parts.extensions.remove::<Rendered>(),
        parts.extensions.remove::<crate::api::Problem>(),
    ) {
        (Some(Rendered(resource)), _) => resource,
        (None, Some(problem)) => outcome::of(&problem),
        // 304 Not Modified has no body.
        (None, None) => return Response::from_parts(parts, axum::body::Body::empty()),
    };
    write(format, pretty, resource, parts.status, Some(parts))
}

fn write(
    format: Format,
    pretty: bool,
    resource: Element,
    status: StatusCode,
    parts: Option<axum::http::response::Parts>,
) -> Response {
    let body = format.write(&resource, pretty);
    let mut response = match parts {
        Some(parts) => Response::from_parts(parts, axum::body::Body::from(body)),
        None => Response::new(axum::body::Body::from(body)),
    };
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
    response
}
