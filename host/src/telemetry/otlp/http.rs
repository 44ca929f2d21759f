//! The OTLP/HTTP span exporter: each batch of spans, already written as protobuf
//! (`batch.rs`, `protobuf.rs`), is put in one request and posted from the batch processor's
//! own thread. The upstream HTTP exporter handed each body to reqwest's blocking client,
//! whose requests run on a thread of its own: a second thread woken for every export
//! (0.4-1.0 µs a webhook at 3,000 webhooks a second, BENCHMARKS.md). Here the processor's
//! thread runs the request itself, on a runtime it alone drives.
//!
//! What it reads, as the OpenTelemetry specification names it (the `TRACES_` variable wins
//! over the general one): `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the URL as given) or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended), `…_HEADERS` (`key=value` pairs,
//! comma-separated, values percent-decoded), `…_TIMEOUT` (milliseconds, default 10,000, for
//! an export and its retries together) and `…_COMPRESSION` (only `none`: the hub sends
//! traces uncompressed). A malformed value stops the hub at start, naming the variable.
//! A failed export is tried again three times (after about 0.1, 0.2 and 0.4 s, or as a
//! `Retry-After` asks, `retry.rs`) when the collector was unreachable or answered 429, 502, 503
//! or 504, as the specification says; when it fails for good its spans are lost, and the
//! log says so once, until exports succeed again.

use super::TelemetryError;
use super::protobuf::{self, EncodedSpans};
use opentelemetry_sdk::Resource;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Where and how spans are posted, as the environment says.
#[derive(Debug)]
pub(super) struct HttpConfig {
    endpoint: reqwest::Url,
    headers: HeaderMap,
    timeout: Duration,
}

/// `OTEL_EXPORTER_OTLP_TIMEOUT`'s default: 10 s.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Retries after a first failed attempt, and the wait before the first (doubled each time).
const RETRIES: u32 = 3;
const FIRST_RETRY_AFTER: Duration = Duration::from_millis(100);

impl HttpConfig {
    pub(super) fn from_env(var: &impl Fn(&str) -> Option<String>) -> Result<Self, TelemetryError> {
        // The traces variable if set, else the general one: (its name, its value).
        let either = |signal: &'static str, general: &'static str| match var(signal) {
            Some(value) => Some((signal, value)),
            None => var(general).map(|value| (general, value)),
        };
        let (endpoint_var, endpoint) = match var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(url) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url),
            None => {
                let base = var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_else(|| "http://localhost:4318".into());
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!("{}/v1/traces", base.trim_end_matches('/')),
                )
            }
        };
        let endpoint = reqwest::Url::parse(&endpoint)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| TelemetryError::Invalid {
                var: endpoint_var,
                value: endpoint.clone(),
                expected: "an http:// or https:// URL",
            })?;
        let headers = match either("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS") {
            Some((name, value)) => headers(name, &value)?,
            None => HeaderMap::new(),
        };
        let timeout = match either("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT") {
            Some((name, value)) => value
                .trim()
                .parse()
                .ok()
                .filter(|millis| *millis > 0)
                .map(Duration::from_millis)
                .ok_or(TelemetryError::Invalid {
                    var: name,
                    value,
                    expected: "a whole number of milliseconds above zero",
                })?,
            None => DEFAULT_TIMEOUT,
        };
        if let Some((name, value)) = either(
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ) && value != "none"
        {
            return Err(TelemetryError::Unsupported {
                var: name,
                value,
                expected: "the hub sends traces uncompressed: set none or leave it unset",
            });
        }
        Ok(Self {
            endpoint,
            headers,
            timeout,
        })
    }
}

/// `key=value` pairs, comma-separated, each value percent-decoded. The values are marked
/// sensitive (they are often credentials) and never shown in an error.
fn headers(var: &'static str, list: &str) -> Result<HeaderMap, TelemetryError> {
    let mut headers = HeaderMap::new();
    for (index, entry) in list.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
        let header = entry.split_once('=').and_then(|(key, value)| {
            let name = HeaderName::from_bytes(key.trim().as_bytes()).ok()?;
            let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8().ok()?;
            let mut value = HeaderValue::from_str(&value).ok()?;
            value.set_sensitive(true);
            Some((name, value))
        });
        let (name, value) = header.ok_or(TelemetryError::Header { var, entry: index + 1 })?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Posts spans to an OTLP/HTTP collector; made by [`HttpExporter::new`], run by the batch
/// processor on its thread (never on a Tokio runtime's: [`HttpExporter::export`] blocks
/// until the collector has answered).
#[derive(Debug)]
pub(super) struct HttpExporter {
    config: HttpConfig,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    /// The last body's buffer, cleared, for the next: a batch of 512 spans is about 300 kB,
    /// and memory freshly taken from the system is zeroed page by page on first touch
    /// (70 % of this thread's samples when each body had a new buffer, BENCHMARKS.md).
    spare_body: Mutex<Vec<u8>>,
    /// What the log last said about exports ([`Health`]), so that it says it once.
    health: AtomicU8,
}

/// What the last export came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Health {
    Delivered,
    Failed,
    PartlyRejected,
}

/// Why an export attempt failed, and whether another may succeed.
struct Failure {
    message: String,
    retry: bool,
    retry_after: Option<Duration>,
}

impl HttpExporter {
    pub(super) fn new(config: HttpConfig) -> Result<Self, TelemetryError> {
        let exporter = |e: &dyn std::fmt::Display| TelemetryError::Exporter(e.to_string());
        // The client speaks TLS to an https:// endpoint.
        crate::manager::credentials::install_tls_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("healthforce-hub/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| exporter(&e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| exporter(&e))?;
        Ok(Self {
            config,
            client,
            runtime,
            spare_body: Mutex::new(Vec::new()),
            health: AtomicU8::new(Health::Delivered as u8),
        })
    }

    /// Posts `body`, trying again while the failure may pass and time is left: the
    /// collector's answer, or why there is none.
    async fn post(&self, body: bytes::Bytes) -> Result<bytes::Bytes, Failure> {
        let deadline = Instant::now() + self.config.timeout;
        let mut wait = FIRST_RETRY_AFTER;
        let mut retries = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let failure = match tokio::time::timeout(left, self.attempt(body.clone())).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(failure)) => failure,
                Err(_) => Failure {
                    message: format!(
                        "no answer within {} ms (OTEL_EXPORTER_OTLP_TIMEOUT)",
                        self.config.timeout.as_millis()
                    ),
                    retry: false,
                    retry_after: None,
                },
            };
            let pause = failure.retry_after.unwrap_or_else(|| crate::retry::jittered(wait));
            if !failure.retry || retries == RETRIES || Instant::now() + pause >= deadline {
                return Err(failure);
            }
            tokio::time::sleep(pause).await;
            retries += 1;
            wait *= 2;
        }
    }

    async fn attempt(&self, body: bytes::Bytes) -> Result<bytes::Bytes, Failure> {
        let sent = self
            .client
            .post(self.config.endpoint.clone())
            .headers(self.config.headers.clone())
            .header(CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .await;
        let response = sent.map_err(|error| Failure {
            message: format!("the collector could not be reached: {}", error_chain(&error)),
            retry: true,
            retry_after: None,
        })?;
        let status = response.status();
        if status.is_success() {
            return response.bytes().await.map_err(|error| Failure {
                message: format!("the collector's answer broke off: {}", error_chain(&error)),
                retry: true,
                retry_after: None,
            });
        }
        Err(Failure {
            message: format!("the collector answered {status}"),
            retry: matches!(status.as_u16(), 429 | 502 | 503 | 504),
            retry_after: crate::retry::retry_after(response.headers()),
        })
    }

    /// Logs what became of exports when it changed: failing, rejecting part, delivering again.
    fn report(&self, outcome: Result<Option<(i64, String)>, &str>) {
        let health = match outcome {
            Ok(None) => Health::Delivered,
            Ok(Some(_)) => Health::PartlyRejected,
            Err(_) => Health::Failed,
        };
        if self.health.swap(health as u8, Ordering::Relaxed) == health as u8 {
            return;
        }
        // The URL without a user or password it may carry.
        let mut endpoint = self.config.endpoint.clone();
        let _ = endpoint.set_password(None);
        let _ = endpoint.set_username("");
        match outcome {
            Ok(None) => tracing::info!(%endpoint, "traces reach the OTLP collector again"),
            Ok(Some((rejected, why))) => tracing::warn!(
                %endpoint,
                "the OTLP collector rejected {rejected} spans of an export ({why}); the log says so again only after an export it takes whole"
            ),
            Err(error) => tracing::warn!(
                %endpoint,
                "spans were lost: exporting them failed ({error}); check that the collector runs and the OTEL_EXPORTER_OTLP_* variables; the log says so again only after an export succeeds"
            ),
        }
    }

    /// Posts `spans` as one request, blocking this thread until the collector has answered
    /// (or the timeout has passed): why they were lost, if they were.
    pub(super) fn export(&self, resource: &Resource, spans: &EncodedSpans) -> Result<(), String> {
        let mut body = std::mem::take(&mut *self.spare_body.lock().unwrap_or_else(PoisonError::into_inner));
        body.clear();
        protobuf::export_request(resource, spans, &mut body);
        let body = bytes::Bytes::from(body);
        let outcome = self.runtime.block_on(self.post(body.clone()));
        // The buffer comes back when the client let go of every copy; if it kept one, the
        // next body gets a buffer of this one's size.
        *self.spare_body.lock().unwrap_or_else(PoisonError::into_inner) = match body.try_into_mut() {
            Ok(buffer) => buffer.into(),
            Err(body) => Vec::with_capacity(body.len()),
        };
        match outcome {
            Ok(answer) => {
                self.report(Ok(partly_rejected(&answer)));
                Ok(())
            }
            Err(failure) => {
                self.report(Err(&failure.message));
                Err(failure.message)
            }
        }
    }
}

/// The spans a collector's answer says it rejected, and why, when it rejected any.
fn partly_rejected(answer: &[u8]) -> Option<(i64, String)> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use prost::Message as _;
    let partial = ExportTraceServiceResponse::decode(answer).ok()?.partial_success?;
    (partial.rejected_spans > 0).then_some((partial.rejected_spans, partial.error_message))
}

/// An error and its sources, as one line ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    use std::sync::{Arc, Mutex};

    fn config(vars: &[(&str, &str)]) -> Result<HttpConfig, TelemetryError> {
        HttpConfig::from_env(&|name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn the_traces_endpoint_is_taken_as_given_and_the_general_one_gets_the_traces_path() {
        let general = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap();
        assert_eq!(general.endpoint.as_str(), "http://collector:4318/v1/traces");
        let both = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example/custom"),
        ])
        .unwrap();
        assert_eq!(both.endpoint.as_str(), "https://traces.example/custom");
        assert_eq!(both.timeout, DEFAULT_TIMEOUT);
        assert!(both.headers.is_empty());
        for bad in ["collector:4318", "ftp://collector", "http://"] {
            let error = config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", bad)]).unwrap_err();
            assert!(
                error.to_string().starts_with("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=")
                    && error.to_string().contains("http:// or https://"),
                "{error}"
            );
        }
    }

    #[test]
    fn headers_timeout_and_compression_are_read_and_bad_values_refused_by_name() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        let read = config(&[
            endpoint,
            ("OTEL_EXPORTER_OTLP_HEADERS", "ignored=1"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                " authorization = Bearer%20s3cret , x-tenant=dinkes,",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ])
        .unwrap();
        assert_eq!(read.headers.len(), 2, "the traces variable wins: {:?}", read.headers);
        assert_eq!(read.headers["authorization"], "Bearer s3cret");
        assert!(read.headers["authorization"].is_sensitive());
        assert_eq!(read.headers["x-tenant"], "dinkes");
        assert_eq!(read.timeout, Duration::from_millis(2500));

        let error = config(&[endpoint, ("OTEL_EXPORTER_OTLP_HEADERS", "x-ok=1,Bearer s3cret")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not a header as `name=value` (values are not shown: they may be secrets)"
        );
        assert!(!format!("{error:?}").contains("s3cret"));
        for timeout in ["10s", "0", "-1"] {
            let error = config(&[endpoint, ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", timeout)]).unwrap_err();
            assert!(error.to_string().contains("milliseconds"), "{error}");
        }
        let error = config(&[endpoint, ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]).unwrap_err();
        assert!(error.to_string().contains("uncompressed"), "{error}");
    }

    /// What a test collector got: each request's headers and body.
    pub(in crate::telemetry::otlp) type Got = Arc<Mutex<Vec<(HeaderMap, bytes::Bytes)>>>;

    /// A collector answering each export with the next of `statuses` (then 200), after
    /// `answer_after`, keeping what it got: its endpoint.
    pub(in crate::telemetry::otlp) fn collector(
        statuses: Vec<u16>,
        answer_after: Duration,
        got: Got,
    ) -> (String, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let serving = std::thread::spawn(move || {
            let statuses = Arc::new(Mutex::new(statuses.into_iter()));
            let route = axum::routing::post(move |headers: HeaderMap, body: bytes::Bytes| {
                got.lock().unwrap().push((headers, body));
                let status = statuses.lock().unwrap().next().unwrap_or(200);
                async move {
                    tokio::time::sleep(answer_after).await;
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            });
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let router = axum::Router::new().route("/v1/traces", route);
                let _ = tokio::time::timeout(Duration::from_secs(30), axum::serve(listener, router)).await;
            });
        });
        (endpoint, serving)
    }

    pub(in crate::telemetry::otlp) fn exporter(endpoint: &str, timeout_ms: &str) -> HttpExporter {
        let config = config(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20t0ken"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", timeout_ms),
        ])
        .unwrap();
        HttpExporter::new(config).unwrap()
    }

    /// Exports `one_span` as the hub would.
    fn export_one_span(exporter: &HttpExporter) -> Result<(), String> {
        let resource = Resource::builder().with_service_name("healthforce-hub").build();
        let mut spans = EncodedSpans::default();
        spans.push(&one_span());
        exporter.export(&resource, &spans)
    }

    pub(in crate::telemetry::otlp) fn one_span() -> opentelemetry_sdk::trace::SpanData {
        use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
        opentelemetry_sdk::trace::SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(2),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: "POST /webhooks/{id}".into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: vec![],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: opentelemetry::InstrumentationScope::builder("hub").build(),
        }
    }

    #[test]
    fn an_export_the_collector_is_too_busy_for_is_tried_again_until_it_is_taken() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let (endpoint, _serving) = collector(vec![503, 429], Duration::ZERO, got.clone());
        let exporter = exporter(&endpoint, "10000");
        export_one_span(&exporter).expect("taken on the third attempt");
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 3, "two refusals, then taken");
        let (headers, body) = &got[2];
        assert_eq!(headers["content-type"], "application/x-protobuf");
        assert_eq!(headers["authorization"], "Bearer t0ken");
        let request = ExportTraceServiceRequest::decode(body.clone()).unwrap();
        assert_eq!(
            request.resource_spans[0].scope_spans[0].spans[0].name,
            "POST /webhooks/{id}"
        );
        assert_eq!(got[0].1, *body, "the same body each time");
    }

    #[test]
    fn each_export_is_written_into_the_buffer_of_the_last() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let (endpoint, _serving) = collector(vec![], Duration::ZERO, got.clone());
        let exporter = exporter(&endpoint, "10000");
        let buffer = || {
            let spare = exporter.spare_body.lock().unwrap();
            (spare.as_ptr(), spare.capacity())
        };
        export_one_span(&exporter).unwrap();
        let (first, capacity) = buffer();
        assert!(
            capacity >= got.lock().unwrap()[0].1.len(),
            "the spare holds a whole body"
        );
        export_one_span(&exporter).unwrap();
        assert_eq!(
            buffer().0,
            first,
            "the second body went out in the first one's buffer and came back"
        );
        assert_eq!(got.lock().unwrap().len(), 2);
    }

    /// Held by the tests that log the exporter's warnings: `tracing` caches whether a log
    /// line is wanted when its line first runs, so one test running it without a
    /// subscriber while another sets one up could leave it unwanted for both.
    static LOGGING: Mutex<()> = Mutex::new(());

    #[test]
    fn a_collector_that_stays_down_is_logged_once_and_its_return_once() {
        let _logging = LOGGING.lock().unwrap();
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).finish();
        let got = Arc::new(Mutex::new(Vec::new()));
        let (endpoint, _serving) = collector(vec![400, 400, 400], Duration::ZERO, got);
        let endpoint = endpoint.replace("http://", "http://user:pa55word@");
        let exporter = exporter(&endpoint, "10000");
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..5 {
                let _ = export_one_span(&exporter);
            }
        });
        let lines = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(lines.matches("spans were lost").count(), 1, "{lines}");
        assert_eq!(
            lines.matches("traces reach the OTLP collector again").count(),
            1,
            "{lines}"
        );
        assert!(!lines.contains("pa55word"), "{lines}");
    }

    #[test]
    fn an_export_refused_for_good_or_sent_to_no_collector_fails_with_the_reason() {
        let _logging = LOGGING.lock().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let (endpoint, _serving) = collector(vec![400], Duration::ZERO, got.clone());
        let error = export_one_span(&exporter(&endpoint, "10000")).unwrap_err();
        assert!(
            error.to_string().contains("the collector answered 400 Bad Request"),
            "{error}"
        );
        assert_eq!(got.lock().unwrap().len(), 1, "a 400 is not tried again");

        let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}/v1/traces", nobody.local_addr().unwrap());
        drop(nobody);
        let started = Instant::now();
        let error = export_one_span(&exporter(&endpoint, "1000")).unwrap_err();
        assert!(error.to_string().contains("could not be reached"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "retries stay within the timeout"
        );
    }
}
