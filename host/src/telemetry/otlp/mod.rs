//! The tracer provider, exporting by OTLP when the standard variables say so:
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` turn export on;
//! `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` picks `http/protobuf` (the default) or `grpc`;
//! `OTEL_TRACES_EXPORTER=none` turns it off, `OTEL_SDK_DISABLED=true` spans too. Over HTTP the
//! batching and the exporter are the hub's own (`batch.rs`, `http.rs`, writing protobuf with
//! `protobuf.rs`), which read the `OTEL_BSP_*` and the endpoint, headers, timeout and
//! compression variables; over gRPC they are the SDK's and `opentelemetry-otlp`'s, which read
//! them themselves. The SDK reads the rest: `OTEL_TRACES_SAMPLER` (default: every trace),
//! `OTEL_SPAN_LINK_COUNT_LIMIT` (default [`LINKS_PER_SPAN`] here), `OTEL_SERVICE_NAME`
//! (default `healthforce-hub`) and `OTEL_RESOURCE_ATTRIBUTES`.

mod batch;
mod http;
mod protobuf;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, TracerProviderBuilder};

/// Links a span keeps. The span of a plugin call links the trace of every job it handles
/// but the first (whose trace it continues), and a worker claims up to `[jobs] batch`
/// jobs at once (at most this many): the SDK's default of 128 dropped the links of half a
/// claim of 256 webhooks, so their traces never reached the call that stored them.
pub const LINKS_PER_SPAN: u32 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{var}={value:?} is not supported: {expected}")]
    Unsupported {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{var}={value:?} is not valid: {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{var}: entry {entry} is not a header as `name=value` (values are not shown: they may be secrets)")]
    Header { var: &'static str, entry: usize },
    #[error("the OTLP trace exporter could not be set up: {0}; check the OTEL_EXPORTER_OTLP_* variables")]
    Exporter(String),
}

/// The protocols an OTLP endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    HttpProtobuf,
    Grpc,
}

/// How traces leave the process, as the variables `var` reads say.
#[derive(Debug, PartialEq, Eq)]
enum Export {
    Nowhere,
    Otlp(Protocol),
}

/// Whether `OTEL_SDK_DISABLED=true`: no spans made, none exported.
pub(super) fn sdk_disabled(var: &impl Fn(&str) -> Option<String>) -> bool {
    var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn export_from_env(var: &impl Fn(&str) -> Option<String>) -> Result<Export, TelemetryError> {
    if sdk_disabled(var) {
        return Ok(Export::Nowhere);
    }
    match var("OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(Export::Nowhere),
        Some(other) => {
            return Err(TelemetryError::Unsupported {
                var: "OTEL_TRACES_EXPORTER",
                value: other.into(),
                expected: "the hub exports traces by OTLP only: set otlp or none",
            });
        }
    }
    if var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() && var("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
        return Ok(Export::Nowhere);
    }
    let (protocol_var, protocol) = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
        Some(value) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Some(value)),
        None => ("OTEL_EXPORTER_OTLP_PROTOCOL", var("OTEL_EXPORTER_OTLP_PROTOCOL")),
    };
    match protocol.as_deref() {
        None | Some("http/protobuf") => Ok(Export::Otlp(Protocol::HttpProtobuf)),
        Some("grpc") => Ok(Export::Otlp(Protocol::Grpc)),
        Some(other) => Err(TelemetryError::Unsupported {
            var: protocol_var,
            value: other.into(),
            expected: "set http/protobuf or grpc (http/json is not built in)",
        }),
    }
}

/// The process's tracer provider: with a batch exporter when OTLP is configured, else
/// without one (spans still get ids, for logs and `traceparent`, and go nowhere). A gRPC
/// exporter must be built inside the Tokio runtime it sends on.
pub(super) fn provider_from_env(var: impl Fn(&str) -> Option<String>) -> Result<SdkTracerProvider, TelemetryError> {
    let builder = provider_builder(&var);
    Ok(match export_from_env(&var)? {
        Export::Nowhere => builder.build(),
        Export::Otlp(Protocol::HttpProtobuf) => {
            let exporter = http::HttpExporter::new(http::HttpConfig::from_env(&var)?)?;
            let limits = batch::BatchLimits::from_env(&var)?;
            builder
                .with_span_processor(batch::BatchProcessor::new(exporter, limits)?)
                .build()
        }
        Export::Otlp(Protocol::Grpc) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
            builder.with_batch_exporter(exporter).build()
        }
    })
}

/// A provider exporting nowhere yet: this service's resource and span limits.
fn provider_builder(var: &impl Fn(&str) -> Option<String>) -> TracerProviderBuilder {
    let mut resource = Resource::builder();
    if var("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("healthforce-hub");
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    match var("OTEL_SPAN_LINK_COUNT_LIMIT") {
        Some(_) => builder,
        None => builder.with_max_links_per_span(LINKS_PER_SPAN),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn export(vars: &[(&str, &str)]) -> Result<Export, TelemetryError> {
        export_from_env(&|name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn traces_leave_the_process_only_when_an_otlp_endpoint_is_named() {
        assert_eq!(export(&[]).unwrap(), Export::Nowhere);
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert_eq!(export(&[endpoint]).unwrap(), Export::Otlp(Protocol::HttpProtobuf));
        assert_eq!(
            export(&[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            ])
            .unwrap(),
            Export::Otlp(Protocol::Grpc)
        );
        assert_eq!(
            export(&[
                endpoint,
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
            ])
            .unwrap(),
            Export::Otlp(Protocol::HttpProtobuf),
            "the traces variable wins over the general one"
        );
        assert_eq!(
            export(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]).unwrap(),
            Export::Nowhere
        );
        assert_eq!(
            export(&[endpoint, ("OTEL_SDK_DISABLED", "true")]).unwrap(),
            Export::Nowhere
        );
    }

    #[test]
    fn an_unsupported_exporter_or_protocol_is_refused_by_name() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        let error = export(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("OTEL_EXPORTER_OTLP_PROTOCOL=\"http/json\""),
            "{error}"
        );
        let error = export(&[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")]).unwrap_err();
        assert!(error.to_string().contains("OTLP only"), "{error}");
    }

    #[test]
    fn docs_operations_lists_every_otel_variable_the_exporters_read() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md");
        let docs = std::fs::read_to_string(docs).unwrap();
        let sources = [
            include_str!("mod.rs"),
            include_str!("http.rs"),
            include_str!("batch.rs"),
        ];
        let names: std::collections::BTreeSet<&str> = sources
            .iter()
            .flat_map(|source| source.split("\"OTEL_").skip(1))
            .map(|rest| &rest[..rest.find('"').unwrap()])
            .filter(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
            .collect();
        assert!(names.len() > 15, "{names:?}");
        for name in names {
            let full = format!("OTEL_{name}");
            let documented = docs.contains(&format!("`{full}`"))
                || docs.contains(&format!("`{full}="))
                || name
                    .strip_prefix("EXPORTER_OTLP_TRACES_")
                    .is_some_and(|rest| docs.contains(&format!("`…_TRACES_{rest}`")));
            assert!(documented, "{full} is read but not in docs/operations.md's table");
        }
    }

    /// Keeps what it is given.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Kept(pub(crate) std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

    impl opentelemetry_sdk::trace::SpanExporter for Kept {
        async fn export(
            &self,
            batch: Vec<opentelemetry_sdk::trace::SpanData>,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    #[test]
    fn a_span_keeps_a_link_to_the_trace_of_every_job_of_the_largest_claim() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;

        let kept = Kept::default();
        let provider = provider_builder(&|_| None).with_simple_exporter(kept.clone()).build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::debug_span!("job");
            for job in 1..=LINKS_PER_SPAN {
                crate::telemetry::context::link(&span, &format!("00-{job:032x}-{job:016x}-01"));
            }
        });
        let spans = kept.0.lock().unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].links.len(), LINKS_PER_SPAN as usize);
        assert_eq!(spans[0].links.dropped_count, 0);
    }
}
