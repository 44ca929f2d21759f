//! A trace carried across the job queue and across HTTP: what queues a job writes the W3C
//! `traceparent` of the span it runs in into the job's row; the span that runs the job
//! continues that trace. An API request that arrives with a `traceparent` continues its
//! caller's trace the same way.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `00-<trace id>-<span id>-<flags>` of a span context.
fn format(span: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        span.trace_id(),
        span.span_id(),
        span.trace_flags().to_u8()
    )
}

/// The `traceparent` of the span being executed, when it is traced.
pub fn current_traceparent() -> Option<String> {
    traceparent(&tracing::Span::current())
}

/// The `traceparent` of `span`, when it is traced (this starts it).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span = context.span();
    let span = span.span_context();
    span.is_valid().then(|| format(span))
}

/// The trace id a `traceparent` names.
pub fn trace_id(traceparent: &str) -> Option<String> {
    parse(traceparent).map(|span| span.trace_id().to_string())
}

/// Makes `span` continue the trace `traceparent` names, as its child. Call it before the
/// span is first entered: a started span keeps its trace.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    if let Some(parent) = parse(traceparent) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
}

/// Links `span` to the trace `traceparent` names: jobs handled in one call, other than the
/// one whose trace the call continues.
pub fn link(span: &tracing::Span, traceparent: &str) {
    if let Some(linked) = parse(traceparent) {
        span.add_link(linked);
    }
}

/// A W3C `traceparent` (version 00), when it is one with non-zero ids.
fn parse(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_read_only_when_it_is_well_formed() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id(good).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(format(&parse(good).unwrap()), good);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-xyz92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
