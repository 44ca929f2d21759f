//! Outgoing HTTP (`wasi:http/outgoing-handler`): every request is checked against the
//! connector instance's egress allow-list before any connection is made, counts against the
//! call's request quotas, gets timeouts that end within the call's deadline, and carries
//! `X-Request-ID` and `traceparent` so the external system's logs line up with ours.

use super::cassette::{Sent, Transport};
use super::log::{LogLevel, LogSink};
use super::quotas::{QuotaExceeded, Quotas};
use http::HeaderValue;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::Instrument;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Longest wait for a TCP (and TLS) connection when the plugin sets none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence between two frames of a response body when the plugin sets none.
const BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Egress {
    allow: Vec<String>,
    trace_id: String,
    logs: Arc<dyn LogSink>,
    /// When the call must end: every timeout of a request ends by then.
    deadline: Instant,
    max_requests: u32,
    sent: u32,
    in_flight: Arc<Semaphore>,
    /// The network, or a cassette recording or replaying it.
    transport: Transport,
    /// Set when the plugin went past its request quota: the call fails with it, whatever
    /// the plugin makes of the refused request.
    pub(super) breach: Option<QuotaExceeded>,
    /// Requests refused for a host off the allow-list (the plugin sees an error; metrics
    /// count them).
    pub(super) denied: u64,
}

impl Egress {
    pub fn new(
        allow: Vec<String>,
        trace_id: String,
        quotas: &Quotas,
        deadline: Instant,
        logs: Arc<dyn LogSink>,
        transport: Transport,
    ) -> Self {
        Self {
            allow,
            trace_id,
            logs,
            deadline,
            max_requests: quotas.requests,
            sent: 0,
            in_flight: Arc::new(Semaphore::new(quotas.requests_in_flight.max(1) as usize)),
            transport,
            breach: None,
            denied: 0,
        }
    }

    /// The plugin's timeouts, or ours, none later than the call's deadline.
    fn timeouts(&self, options: Option<RequestOptions>) -> RequestOptions {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let given = options.unwrap_or_default();
        let cap = |asked: Option<Duration>, default: Duration| Some(asked.unwrap_or(default).min(left));
        RequestOptions {
            connect_timeout: cap(given.connect_timeout, CONNECT_TIMEOUT),
            first_byte_timeout: cap(given.first_byte_timeout, left),
            between_bytes_timeout: cap(given.between_bytes_timeout, BETWEEN_BYTES_TIMEOUT),
        }
    }
}

/// Whether `host` (lowercase, without brackets) on `port` is allowed by `allow`: an entry
/// `host` admits any port of that host, `host:port` only that port (IPv6 as `[::1]:port`).
pub fn egress_allowed(allow: &[String], host: &str, port: Option<u16>) -> bool {
    allow.iter().any(|entry| {
        let (entry_host, entry_port) = split_host_port(entry.trim());
        entry_host.eq_ignore_ascii_case(host) && entry_port.is_none_or(|p| Some(p) == port)
    })
}

fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match entry.split_once(':') {
        Some((host, port)) if !port.contains(':') => (host, port.parse().ok()),
        _ => (entry, None),
    }
}

type ResponseFuture = Box<dyn Future<Output = Result<Sent, Error>> + Send>;

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        if !egress_allowed(&self.allow, host.trim_start_matches('[').trim_end_matches(']'), port) {
            let target = format!("{host}:{}", port.unwrap_or_default());
            tracing::warn!(%target, "plugin request denied: host not in the egress allow-list");
            self.denied += 1;
            self.logs.log(
                LogLevel::Warn,
                format!("request to {target} denied: not in this connector's egress allow-list"),
                vec![("target".into(), target)],
                false,
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        if self.sent >= self.max_requests {
            self.breach.get_or_insert(QuotaExceeded {
                quota: "requests",
                limit: self.max_requests.into(),
                what: format!("request {} of this call, to {host}", self.sent + 1),
            });
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        self.sent += 1;
        let options = self.timeouts(options);
        let in_flight = self.in_flight.clone();
        let request_id = uuid::Uuid::new_v4().to_string();
        // The host name only: a path or query may hold an id or a NIK.
        let span = tracing::debug_span!(
            "http.request",
            otel.name = %request.method(),
            otel.kind = "client",
            http.request.method = %request.method(),
            server.address = %host,
            server.port = port,
            http.response.status_code = tracing::field::Empty,
        );
        // The external system sees this request's span as the parent of its own work.
        let traceparent = crate::telemetry::context::traceparent(&span).unwrap_or_else(|| {
            let span_id = hex::encode(crate::crypto::random_bytes::<8>());
            format!("00-{}-{span_id}-01", self.trace_id)
        });
        let headers = request.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert("x-request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&traceparent) {
            headers.insert("traceparent", v);
        }
        drop(fut);
        let transport = self.transport.clone();
        Box::new(
            async move {
                // Held until the response head arrives: past `requests_in_flight`, requests wait.
                let _slot = in_flight.acquire_owned().await;
                let sent = transport.send(request, options).await;
                if let Ok((response, _)) = &sent {
                    tracing::Span::current().record("http.response.status_code", response.status().as_u16());
                }
                sent
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::egress_allowed;

    #[test]
    fn allow_list_matches_host_and_port() {
        let allow = vec!["api.example.go.id".to_string(), "127.0.0.1:8080".to_string()];
        assert!(egress_allowed(&allow, "api.example.go.id", Some(443)));
        assert!(egress_allowed(&allow, "127.0.0.1", Some(8080)));
        assert!(!egress_allowed(&allow, "127.0.0.1", Some(8081)));
        assert!(!egress_allowed(&allow, "evil.example", Some(443)));
        assert!(!egress_allowed(&allow, "api.example.go.id.evil", Some(443)));
        assert!(!egress_allowed(&[], "127.0.0.1", Some(8080)));
    }
}
