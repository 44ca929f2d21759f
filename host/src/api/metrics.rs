//! `GET /metrics` and the API's own request metrics.

use super::{AppState, routes};
use crate::metrics::{self, scrape};
use crate::telemetry::request::RequestSpan;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// Reads the gauges from the database, then renders every metric. A database that does not
/// answer shows as `hub_database_up 0` with the gauges as last read: the scrape itself
/// still succeeds, so what the process counted stays visible while the database is down.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let metrics = metrics::metrics();
    let _scraping = metrics.state.scraping.lock().await;
    if let Err(error) = scrape::refresh(metrics, &state.manager).await {
        tracing::warn!(%error, "metrics scrape: the database did not answer; gauges are as last read");
        metrics.state.database_up(false);
    }
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics.render()).into_response()
}

/// Runs every API request in its span ([`RequestSpan`]: current on each poll of the handler,
/// continuing the caller's trace when the request carries a `traceparent`) and counts it by
/// method, route template (never the path itself: it holds ids) and status, with its
/// latency. One middleware for both, in place of tower-http's `TraceLayer`, which also
/// entered the span around the router's call and on every poll of the body (BENCHMARKS.md,
/// "Fewer span entries"). The span ends once the handler has answered, before the body is
/// sent.
pub async fn http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = routes::template(request.extensions().get::<MatchedPath>());
    let traceparent = request.headers().get("traceparent").and_then(|v| v.to_str().ok());
    let span = RequestSpan::start(span_name(method, route), method, route, traceparent);
    let mut handler = std::pin::pin!(next.run(request));
    let response = std::future::poll_fn(|cx| {
        let _current = span.as_ref().map(RequestSpan::attach);
        handler.as_mut().poll(cx)
    })
    .await;
    let status = response.status();
    if status.is_server_error() {
        let _current = span.as_ref().map(RequestSpan::attach);
        tracing::error!("{method} {route} answered {status}");
    }
    if let Some(span) = span {
        span.end(status.as_u16());
    }
    metrics::metrics().http_request(method, route, status.as_u16(), started.elapsed());
    response
}

/// The methods HTTP defines, and the label of any other (a method is any token a client
/// sends, so it cannot be a label as sent).
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];
const OTHER_METHOD: &str = "other";

fn method_label(method: &Method) -> &'static str {
    METHODS
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or(OTHER_METHOD)
}

/// `"{method} {route}"`, the name OpenTelemetry gives an HTTP server span, for a method label
/// and a route template, each name made once: a name allocated for each request was freed
/// by the exporter's thread (the gRPC exporter's still would be), and memory freed on
/// another thread costs the allocating one more than the allocation (BENCHMARKS.md, "Frees
/// on the exporter's thread"). The map is read without a lock: a lock taken by every
/// request is a cache line both cores fight for.
fn span_name(method: &'static str, route: &'static str) -> &'static str {
    static NAMES: std::sync::LazyLock<std::collections::HashMap<(&str, &str), String>> =
        std::sync::LazyLock::new(|| {
            let methods = METHODS.into_iter().chain([OTHER_METHOD]);
            let routes = || routes::templates().iter().copied().chain([routes::UNMATCHED]);
            methods
                .flat_map(|method| routes().map(move |route| ((method, route), format!("{method} {route}"))))
                .collect()
        });
    // Every label and template has its name; a route alone names a pair it would lack.
    NAMES.get(&(method, route)).map_or(route, String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_span_is_named_by_its_method_and_route_template_made_once() {
        let name = span_name("POST", "/webhooks/{id}");
        assert_eq!(name, "POST /webhooks/{id}");
        assert!(
            std::ptr::eq(name, span_name("POST", "/webhooks/{id}")),
            "not made again"
        );
        assert_eq!(span_name(OTHER_METHOD, routes::UNMATCHED), "other unmatched");
    }
}
