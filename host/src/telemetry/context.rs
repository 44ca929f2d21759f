//! A trace carried across the job queue and across HTTP: what queues a job writes the W3C
//! `traceparent` of the span it runs in into the job's row; the span that runs the job
//! continues that trace. An API request that arrives with a `traceparent` continues its
//! caller's trace the same way.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `00-<trace id>-<span id>-<flags>` of a span context. Every queued job and outbound request
/// writes one and every job reads one: written and read here byte by byte, not through the
/// ids' `u128`/`u64` formatting and parsing, which took ~3,000 instructions a webhook
/// (BENCHMARKS.md, "Tracing's cost in instructions").
fn format(span: &SpanContext) -> String {
    let mut traceparent = String::with_capacity(TRACEPARENT_LEN);
    traceparent.push_str("00-");
    push_hex(&mut traceparent, &span.trace_id().to_bytes());
    traceparent.push('-');
    push_hex(&mut traceparent, &span.span_id().to_bytes());
    traceparent.push('-');
    push_hex(&mut traceparent, &[span.trace_flags().to_u8()]);
    traceparent
}

/// Bytes of a version 00 `traceparent`.
const TRACEPARENT_LEN: usize = 55;

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
}

/// The `N` bytes `hex` spells in `2 * N` hex digits (either case).
fn from_hex<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    let mut bytes = [0; N];
    hex::decode_to_slice(hex, &mut bytes).ok()?;
    Some(bytes)
}

/// The `traceparent` of the span being executed, when it is traced.
pub fn current_traceparent() -> Option<String> {
    current().map(|span| format(&span))
}

/// The context of the span being executed, when it is traced: the current `tracing` span's,
/// else the request's (`request.rs`: it is no `tracing` span).
pub(super) fn current() -> Option<SpanContext> {
    let valid = |span: &SpanContext| span.is_valid().then(|| span.clone());
    let context = tracing::Span::current().context();
    valid(context.span().span_context())
        .or_else(|| opentelemetry::Context::map_current(|context| valid(context.span().span_context())))
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
    parse(traceparent).map(|span| {
        let mut trace_id = String::with_capacity(32);
        push_hex(&mut trace_id, &span.trace_id().to_bytes());
        trace_id
    })
}

/// Makes `span` continue the trace `traceparent` names, as its child. Call it before the
/// span is first entered: a started span keeps its trace.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    if let Some(parent) = remote_parent(traceparent) {
        let _ = span.set_parent(parent);
    }
}

/// A context whose span is the remote one `traceparent` names: the parent of a span that
/// continues a caller's or a queued job's trace.
pub(super) fn remote_parent(traceparent: &str) -> Option<opentelemetry::Context> {
    parse(traceparent).map(|caller| opentelemetry::Context::new().with_remote_span_context(caller))
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
    let bytes = traceparent.trim().as_bytes();
    if bytes.len() != TRACEPARENT_LEN || !bytes.starts_with(b"00-") || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_bytes(from_hex(&bytes[3..35])?),
        SpanId::from_bytes(from_hex(&bytes[36..52])?),
        TraceFlags::new(from_hex::<1>(&bytes[53..])?[0]),
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
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_traceparent_is_written_as_the_ids_print_and_read_back_in_either_case() {
        let span = SpanContext::new(
            TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128),
            SpanId::from(0x00f067aa0ba902b7_u64),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let written = format(&span);
        assert_eq!(written, format!("00-{}-{}-01", span.trace_id(), span.span_id()));
        assert_eq!(parse(&written.to_uppercase()), Some(span.clone()));
        assert_eq!(parse(&written), Some(span));
    }
}
