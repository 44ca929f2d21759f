//! The admin console, served by the hub at `/`: server-rendered HTML (maud, escaped by
//! default) with one small script for live updates, action buttons and reveals. Everything it
//! needs is compiled into the binary; nothing is fetched from elsewhere.
//!
//! Pages read through the same manager and store the API uses. Every button calls the JSON
//! API itself with the session cookie and its CSRF token, so a click meets exactly the
//! permission checks and audit of the same call made with curl (`api/routes.rs`); a button
//! is shown only to roles that may use it, and the API refuses the others anyway.

mod alerts;
mod api_keys;
mod audit;
mod connector;
pub mod i18n;
mod identity;
mod jobs;
mod keys;
mod layout;
mod overview;
mod plugins;
mod practitioners;
mod rejects;
pub mod sign_in;

use crate::api::{AppState, Problem};
use crate::auth::{Caller, Permission, session};
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use futures::Stream;
use i18n::Lang;
use maud::Markup;
use std::time::Duration;

/// The console's pages and assets, by path. The router is built from this list, and the
/// request metrics label requests with its paths.
fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/", get(overview::page)),
        ("/login", get(sign_in::page).post(sign_in::with_key)),
        ("/login/sso", get(sign_in::start_sso)),
        ("/login/callback", get(sign_in::callback)),
        ("/logout", post(sign_in::sign_out)),
        ("/lang/{code}", get(choose_language)),
        ("/events", get(overview::events)),
        ("/connectors/{id}", get(connector::page)),
        ("/connectors/{id}/events", get(connector::events)),
        ("/practitioners", get(practitioners::page)),
        ("/rejects", get(rejects::page)),
        ("/jobs", get(jobs::page)),
        ("/alerts", get(alerts::page)),
        ("/identity", get(identity::page)),
        ("/plugins", get(plugins::page)),
        ("/audit", get(audit::page)),
        ("/api-keys", get(api_keys::page)),
        ("/keys", get(keys::page)),
        (
            "/assets/console.css",
            get(|| asset(include_str!("assets/console.css"), "text/css")),
        ),
        (
            "/assets/console.js",
            get(|| asset(include_str!("assets/console.js"), "text/javascript")),
        ),
    ]
}

/// The console's paths (templates).
pub fn paths() -> impl Iterator<Item = &'static str> {
    routes().into_iter().map(|(path, _)| path)
}

pub fn router() -> Router<AppState> {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| router.route(path, handler))
        .layer(axum::middleware::from_fn(error_pages))
        .layer(axum::middleware::map_response(security_headers))
}

/// A signed-in browser: its caller, session token (for the CSRF token) and language. A page
/// that takes one sends everyone else to the sign-in page.
pub struct Signed {
    pub caller: Caller,
    pub csrf: String,
    pub lang: Lang,
    token: String,
}

impl Signed {
    /// Whether the caller may call the API route `method template` (`api/routes.rs`).
    pub fn may_call(&self, method: &axum::http::Method, template: &str) -> bool {
        let permission = crate::api::routes::permission_of(method, template);
        debug_assert!(
            permission.is_some(),
            "the console names an API route the table lacks: {method} {template}"
        );
        permission.is_some_and(|p| self.caller.may(p))
    }

    /// Refuses a page whose data comes from the API route `GET template` to a caller who may
    /// not call it.
    pub fn must_read(&self, template: &str) -> Result<(), PageError> {
        if self.may_call(&axum::http::Method::GET, template) {
            return Ok(());
        }
        let needs =
            crate::api::routes::permission_of(&axum::http::Method::GET, template).map_or("?", Permission::as_str);
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this page needs the {needs} permission, which your role {} does not grant",
                self.caller.role
            ),
        ))
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = Lang::of(&parts.headers);
        let to_sign_in = || Redirect::to("/login").into_response();
        let Some(token) = session::token_of(&parts.headers) else {
            return Err(to_sign_in());
        };
        match state.sessions.caller(token).await {
            Ok(Some(caller)) => Ok(Signed {
                caller,
                csrf: session::csrf_token(token),
                lang,
                token: token.to_string(),
            }),
            Ok(None) => Err(to_sign_in()),
            Err(error) => Err(PageError::from(Problem::internal(&error)).into_response()),
        }
    }
}

/// Connector names by id, for pages that list connectors' rows.
struct ConnectorNames(std::collections::HashMap<String, String>);

impl ConnectorNames {
    async fn load(state: &AppState) -> Result<Self, PageError> {
        let connectors = state.manager.db().list_connectors(None, 500).await?;
        Ok(Self(connectors.into_iter().map(|c| (c.id, c.name)).collect()))
    }

    /// The name of connector `id`; its id when it is gone.
    fn of<'a>(&'a self, id: &'a str) -> &'a str {
        self.0.get(id).map_or(id, String::as_str)
    }
}

/// How often a live page looks for changes: a sync batch lands every second or so, and
/// nobody reads faster than this.
const LIVE_EVERY: Duration = Duration::from_secs(2);

pub type LiveEvent = Result<Event, std::convert::Infallible>;

/// The changing part of a page, `render`ed now and again every [`LIVE_EVERY`], sent (as the
/// `live` event) when it differs from what was sent last, until the session ends. Watching
/// does not keep a session from ending idle: only requests a person makes do.
fn live_stream<F, Fut>(state: AppState, signed: Signed, render: F) -> Sse<impl Stream<Item = LiveEvent>>
where
    F: Fn(AppState, Lang) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Markup, PageError>> + Send,
{
    let stream = futures::stream::unfold(
        (state, signed, render, String::new()),
        |(state, signed, render, sent)| async move {
            // The first look is at once; every later one after a pause.
            let mut pause = !sent.is_empty();
            loop {
                if pause {
                    tokio::time::sleep(LIVE_EVERY).await;
                }
                pause = true;
                match state.sessions.still_live(&signed.token).await {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(error) => {
                        tracing::warn!(%error, "a live console page could not check its session");
                        continue;
                    }
                }
                let html = match render(state.clone(), signed.lang).await {
                    Ok(markup) => markup.into_string(),
                    Err(error) => {
                        tracing::warn!(error = %error.message, "a live console page could not be rendered");
                        continue;
                    }
                };
                if html != sent {
                    let event = Event::default().event("live").data(&html);
                    return Some((Ok(event), (state, signed, render, html)));
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A page that could not be shown: its status and what to do. [`error_pages`] renders it in
/// the browser's language.
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<Problem> for PageError {
    fn from(problem: Problem) -> Self {
        Self::new(problem.status, problem.detail)
    }
}

impl From<crate::manager::ManagerError> for PageError {
    fn from(error: crate::manager::ManagerError) -> Self {
        Problem::from(error).into()
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(error: crate::store::StoreError) -> Self {
        Problem::from(error).into()
    }
}

/// What a [`PageError`] said, carried to [`error_pages`] in the response.
#[derive(Clone)]
struct Failed(String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(Failed(self.message));
        response
    }
}

/// Renders a failed page as a page in the language of the browser that asked.
async fn error_pages(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let lang = Lang::of(request.headers());
    let response = next.run(request).await;
    let Some(Failed(message)) = response.extensions().get::<Failed>().cloned() else {
        return response;
    };
    let text = lang.text();
    let body = maud::html! {
        h1 { (text.error_title) }
        p role="alert" { (message) }
        p { a href="/" { (text.back_to_overview) } }
    };
    (response.status(), layout::bare(lang, text.error_title, body)).into_response()
}

/// `/lang/en`: keeps the choice in a cookie, and goes back to the page it was made on.
async fn choose_language(
    Path(code): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let lang = Lang::parse(&code).unwrap_or(Lang::Id);
    // Only a path on this hub: `//evil.example` or a full URL would make this an open redirect.
    let back = q
        .get("next")
        .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .map_or("/", String::as_str);
    let cookie = format!(
        "{}={}; Path=/; SameSite=Lax; Max-Age=31536000",
        i18n::COOKIE,
        lang.code()
    );
    (
        [(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ascii"))],
        Redirect::to(back),
    )
        .into_response()
}

async fn asset(body: &'static str, media: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, media), (header::CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

/// No script, style or frame from anywhere but the hub; no framing of the console by another
/// site; no sniffing; no URLs (which may hold a search) sent to other sites.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_console_md_lists_every_console_path() {
        let doc = include_str!("../../../docs/console.md");
        for path in super::paths() {
            assert!(
                doc.contains(&format!("`{path}`")),
                "docs/console.md does not list {path}"
            );
        }
    }
}
