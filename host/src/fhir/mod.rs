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
mod facility;
mod format;
mod history;
mod id;
mod observation;
mod outcome;
mod practitioner;
mod practitioner_role;
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
    pub kind: Kind,
    handler: MethodRouter<AppState>,
}

/// What an interaction does, and on which resource type.
#[derive(Clone, Copy)]
pub enum Kind {
    /// `/metadata`, the one interaction open to anyone.
    Capabilities,
    Read(&'static str),
    /// A version of a resource, by its `meta.versionId`.
    Vread(&'static str),
    /// A resource's versions.
    History(&'static str),
    /// A search of a type, with the parameters it takes.
    Search(&'static str, &'static search::Searchable),
}

impl Kind {
    /// The FHIR interaction code.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Capabilities => "capabilities",
            Kind::Read(_) => "read",
            Kind::Vread(_) => "vread",
            Kind::History(_) => "history-instance",
            Kind::Search(..) => "search-type",
        }
    }

    pub fn resource(self) -> Option<&'static str> {
        match self {
            Kind::Capabilities => None,
            Kind::Read(resource) | Kind::Vread(resource) | Kind::History(resource) | Kind::Search(resource, _) => {
                Some(resource)
            }
        }
    }

    pub fn params(self) -> &'static [search::SearchParam] {
        match self {
            Kind::Search(_, searchable) => searchable.params,
            _ => &[],
        }
    }

    /// What a search's `_include` follows.
    pub fn includes(self) -> &'static [&'static str] {
        match self {
            Kind::Search(_, searchable) => searchable.includes,
            _ => &[],
        }
    }

    /// What the interaction does, as SMART scopes name it.
    fn scope(self) -> Option<smart::Access> {
        match self {
            Kind::Capabilities => None,
            // SMART v2 counts a resource's versions and history as reading it.
            Kind::Read(_) | Kind::Vread(_) | Kind::History(_) => Some(smart::Access::Read),
            Kind::Search(..) => Some(smart::Access::Search),
        }
    }
}

/// Everything the server does.
pub fn interactions() -> Vec<Interaction> {
    let get = |path, kind, handler| Interaction {
        method: Method::GET,
        path,
        kind,
        handler,
    };
    vec![
        get(
            "/metadata",
            Kind::Capabilities,
            axum::routing::get(capability::statement),
        ),
        get(
            "/Practitioner",
            Kind::Search("Practitioner", &practitioner::SEARCH),
            axum::routing::get(practitioner::search),
        ),
        Interaction {
            method: Method::POST,
            path: "/Practitioner/_search",
            kind: Kind::Search("Practitioner", &practitioner::SEARCH),
            handler: axum::routing::post(practitioner::search_form),
        },
        get(
            "/Practitioner/{id}",
            Kind::Read("Practitioner"),
            axum::routing::get(practitioner::read),
        ),
        get(
            "/Practitioner/{id}/_history",
            Kind::History("Practitioner"),
            axum::routing::get(practitioner::history),
        ),
        get(
            "/Practitioner/{id}/_history/{version}",
            Kind::Vread("Practitioner"),
            axum::routing::get(practitioner::vread),
        ),
        get(
            "/PractitionerRole",
            Kind::Search("PractitionerRole", &practitioner_role::SEARCH),
            axum::routing::get(practitioner_role::search),
        ),
        get(
            "/PractitionerRole/{id}",
            Kind::Read("PractitionerRole"),
            axum::routing::get(practitioner_role::read),
        ),
        get(
            "/Organization",
            Kind::Search("Organization", &facility::ORGANIZATION_SEARCH),
            axum::routing::get(facility::search_organizations),
        ),
        get(
            "/Organization/{id}",
            Kind::Read("Organization"),
            axum::routing::get(facility::read_organization),
        ),
        get(
            "/Location",
            Kind::Search("Location", &facility::LOCATION_SEARCH),
            axum::routing::get(facility::search_locations),
        ),
        get(
            "/Location/{id}",
            Kind::Read("Location"),
            axum::routing::get(facility::read_location),
        ),
        get(
            "/Observation",
            Kind::Search("Observation", &observation::SEARCH),
            axum::routing::get(observation::search),
        ),
        get(
            "/Observation/{id}",
            Kind::Read("Observation"),
            axum::routing::get(observation::read),
        ),
        get(
            "/Device/{id}",
            Kind::Read("Device"),
            axum::routing::get(observation::read_device),
        ),
    ]
}

/// The server's route templates, as the metrics label requests with them.
pub fn paths() -> impl Iterator<Item = &'static str> {
    static PATHS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| interactions().iter().map(|i| format!("{BASE}{}", i.path)).collect());
    PATHS.iter().map(String::as_str)
}

/// The FHIR server's router, to nest at [`BASE`].
pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    for interaction in interactions() {
        let access = match interaction.kind {
            Kind::Capabilities => Access::Public,
            _ => Access::Needs(Permission::Read),
        };
        let handler = match (interaction.kind.resource(), interaction.kind.scope()) {
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
    let target = format!("{} {}", request.method(), request.uri().path());
    beyond_scopes(&state, caller, resource, access, target)
        .await
        .into_response()
}

/// The 403 for a caller whose SMART scopes do not allow `access` on `resource`, recorded in
/// the audit log as an `access.denied` of `target`.
pub(crate) async fn beyond_scopes(
    state: &AppState,
    caller: Option<&Caller>,
    resource: &str,
    access: smart::Access,
    target: String,
) -> crate::api::Problem {
    let actor = caller.map(|c| c.actor.clone()).unwrap_or_default();
    let wanted = match access {
        smart::Access::Read => "read (system/{resource}.read or .r)",
        smart::Access::Search => "search (system/{resource}.read or .s)",
    }
    .replace("{resource}", resource);
    let event = Event::new(&actor, "access.denied", target)
        .outcome(Outcome::Denied)
        .details(serde_json::json!({ "needs_scope": wanted }));
    state.manager.audit().record(event).await;
    crate::api::Problem::new(
        StatusCode::FORBIDDEN,
        format!(
            "this token's SMART scopes do not allow {wanted} on {resource}: ask the SSO for a token with that scope"
        ),
    )
}

/// A label of http://terminology.hl7.org/CodeSystem/v3-ObservationValue (`REDACTED`,
/// `SUBSETTED`) for `meta.security` or `meta.tag`.
pub(crate) fn label(code: &str, display: &str) -> Element {
    Element::object()
        .with("system", "http://terminology.hl7.org/CodeSystem/v3-ObservationValue")
        .with("code", code)
        .with("display", display)
}

/// 304 Not Modified when the client's copy (`If-None-Match`) is `version`: answered before
/// anything is decrypted, so nothing personal is opened or leaves the hub.
pub(crate) fn unchanged(headers: &axum::http::HeaderMap, version: i64) -> Option<Response> {
    let asked = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    format::matches_etag(asked, version)
        .then(|| (StatusCode::NOT_MODIFIED, [(header::ETAG, format::etag(version))]).into_response())
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
