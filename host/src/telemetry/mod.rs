//! Logs and traces.
//!
//! Logs are human-readable by default, JSON lines with `HUB_LOG_FORMAT=json`; `RUST_LOG`
//! filters them. Every line written inside a traced span starts with its `trace_id` and
//! `span_id` (`log_format.rs`).
//!
//! Traces: the hub's own spans (target `hub`) go through `tracing-opentelemetry` to an
//! OpenTelemetry SDK tracer unless `OTEL_SDK_DISABLED=true`, so run trace ids, `traceparent`
//! headers and log lines agree; they are exported by OTLP when the standard `OTEL_*` variables
//! name an endpoint (`otlp/`). `context.rs` carries a trace across the job queue. An API
//! request's span is an OpenTelemetry span of its own (`request.rs`).

pub mod context;
mod log_format;
mod otlp;
pub mod request;

pub use otlp::{LINKS_PER_SPAN, TelemetryError};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use std::sync::OnceLock;
use tracing::level_filters::LevelFilter;
use tracing::{Level, Metadata};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, filter};

/// The tracer provider of this process, once [`init`] ran: flushed by [`shutdown`].
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
/// The tracer of API requests' spans, unless spans are off (`request.rs`).
static REQUEST_TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Sets up logging and tracing for this process from the environment. A second call (tests
/// start many hubs in one process) keeps the first setup.
pub fn init() -> Result<(), TelemetryError> {
    if PROVIDER.get().is_some() {
        return Ok(());
    }
    let provider = otlp::provider_from_env(|var| std::env::var(var).ok())?;
    let tracer = provider.tracer("hub");
    if PROVIDER.set(provider).is_err() {
        return Ok(());
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter());
    let log_records = log_records_level(&filter);
    let json = std::env::var("HUB_LOG_FORMAT").as_deref() == Ok("json");
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .event_format(log_format::WithTraceIds::json(tracing_subscriber::fmt::format().json()))
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .event_format(log_format::WithTraceIds::text(tracing_subscriber::fmt::format()))
            .with_filter(filter)
            .boxed()
    };
    // A span instrumenting a future is entered on every poll of it (sqlx enters the caller's
    // span on every poll of a query's rows), so what the layer does on enter and exit is paid
    // many times a job: no busy/idle timing (two clock reads each time) and no OpenTelemetry
    // context made current (a context clone each time; `context.rs` and `log_format.rs` read
    // the ids from the tracing span, or else from the request's context, `request.rs`). No
    // thread, source-location or target attributes either: a task moves between threads,
    // and span names already say where.
    // `OTEL_SDK_DISABLED=true`: no spans at all (runs then get trace ids of their own, and
    // log lines none) — also what `benches/external/overhead.sh` measures the spans against.
    let traces = (!otlp::sdk_disabled(&|var| std::env::var(var).ok())).then(|| {
        let _ = REQUEST_TRACER.set(tracer.clone());
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_threads(false)
            .with_location(false)
            .with_target(false)
            .and_then(request::RequestEvents)
            .with_filter(filter::filter_fn(traced).with_max_level_hint(LevelFilter::DEBUG))
    });
    // A subscriber set elsewhere first (a test's) keeps its place.
    if tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .is_ok()
    {
        // Records of the `log` crate only ever become log lines (traces take the hub's own
        // spans and events), so the `log` macros stop at the log filter's level. At the
        // traces' level, Cranelift offered every debug and trace record of a plugin's
        // compilation to both filters, and sqlx a debug record of each statement.
        log::set_max_level(log_records);
    }
    Ok(())
}

/// What becomes part of a trace: the hub's spans (debug and up: they cost nothing when
/// nothing traces), and warnings and errors as events on them.
fn traced(metadata: &Metadata<'_>) -> bool {
    let ours = metadata.target().starts_with("hub");
    if metadata.is_span() {
        ours && *metadata.level() <= Level::DEBUG
    } else {
        ours && *metadata.level() <= Level::WARN
    }
}

/// What the log lines show without `RUST_LOG`: info and up, only warnings of sqlx, wasmtime
/// and Cranelift, nothing of the Vault client's (its spans carry the URI of every secret read).
fn default_filter() -> EnvFilter {
    EnvFilter::new("info,sqlx=warn,wasmtime=warn,cranelift=warn,rustify=off,vaultrs=off")
}

/// The most verbose `log` record the log lines can show.
fn log_records_level(filter: &EnvFilter) -> log::LevelFilter {
    match filter.max_level_hint().unwrap_or(LevelFilter::TRACE).into_level() {
        None => log::LevelFilter::Off,
        Some(Level::ERROR) => log::LevelFilter::Error,
        Some(Level::WARN) => log::LevelFilter::Warn,
        Some(Level::INFO) => log::LevelFilter::Info,
        Some(Level::DEBUG) => log::LevelFilter::Debug,
        Some(Level::TRACE) => log::LevelFilter::Trace,
    }
}

/// Exports the spans not yet sent; the end of `main` calls it.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        eprintln!("exporting the last traces failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_records_reach_the_filters_only_up_to_the_most_verbose_level_the_log_lines_show() {
        assert_eq!(log_records_level(&default_filter()), log::LevelFilter::Info);
        assert_eq!(
            log_records_level(&EnvFilter::new("warn,hub::pipeline=debug")),
            log::LevelFilter::Debug
        );
        assert_eq!(log_records_level(&EnvFilter::new("error")), log::LevelFilter::Error);
        assert_eq!(log_records_level(&EnvFilter::new("off")), log::LevelFilter::Off);
    }
}
