//! An OTLP `ExportTraceServiceRequest` in protobuf, written straight from the SDK's spans.
//! The upstream exporter first copies every span into `opentelemetry-proto`'s structs (each
//! id, name, key and string value a new allocation, the scopes grouped through a hash map)
//! and prost then measures every nested message again at each level: under callgrind that
//! was 11,000 instructions a webhook, most of the exporter thread's 13,500 (BENCHMARKS.md,
//! "What is left, part by part"). Here each field is written once, and a nested message's
//! length is written in front of it when it is done.
//!
//! Each span is written on its own ([`EncodedSpans::push`], on the thread that ended it:
//! `batch.rs`), the request around a batch of them later ([`export_request`]).
//!
//! Field numbers are those of `opentelemetry/proto/trace/v1/trace.proto`,
//! `common/v1/common.proto` and `resource/v1/resource.proto`; what is written is what
//! `opentelemetry-proto`'s own conversion makes, which the tests decode and compare.

use opentelemetry::trace::{SpanContext, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use std::time::{SystemTime, UNIX_EPOCH};

/// Spans written as the `spans` entries of a `ScopeSpans`, one run of bytes for each
/// instrumentation scope in the order the scopes came. Emptied by [`clear`](Self::clear),
/// which keeps the buffers for the next batch.
#[derive(Debug, Default)]
pub(super) struct EncodedSpans {
    spans: usize,
    scopes: Vec<(InstrumentationScope, Vec<u8>)>,
}

impl EncodedSpans {
    /// Writes `span` after the others of its scope.
    pub(super) fn push(&mut self, span: &SpanData) {
        let scope = &span.instrumentation_scope;
        let known = self.scopes.iter().position(|(known, _)| known == scope);
        let at = match known {
            Some(at) if !self.scopes[at].1.is_empty() => at,
            _ => {
                // The scope's first span of this batch: its run goes after the others' (the
                // scopes are written in the order they came), in its own buffer or one left
                // empty by an earlier batch.
                let run = match known {
                    Some(at) => self.scopes.remove(at),
                    None => match self.scopes.iter().position(|(_, spans)| spans.is_empty()) {
                        Some(free) => (scope.clone(), self.scopes.remove(free).1),
                        None => (scope.clone(), Vec::new()),
                    },
                };
                self.scopes.push(run);
                self.scopes.len() - 1
            }
        };
        span_entry(&mut self.scopes[at].1, span);
        self.spans += 1;
    }

    /// How many spans were pushed since the last [`clear`](Self::clear).
    pub(super) fn len(&self) -> usize {
        self.spans
    }

    pub(super) fn is_empty(&self) -> bool {
        self.spans == 0
    }

    pub(super) fn clear(&mut self) {
        self.spans = 0;
        for (_, spans) in &mut self.scopes {
            spans.clear();
        }
    }

    /// The scopes that have spans, with their spans' bytes.
    fn scopes(&self) -> impl Iterator<Item = &(InstrumentationScope, Vec<u8>)> {
        self.scopes.iter().filter(|(_, spans)| !spans.is_empty())
    }
}

/// `span` as an entry of `ScopeSpans.spans`, written after what `out` holds.
fn span_entry(out: &mut Vec<u8>, span: &SpanData) {
    message(out, 2, |out| self::span(out, span));
}

/// The request exporting `spans`, all of one process (`resource`).
pub(super) fn export_request(resource: &Resource, spans: &EncodedSpans, out: &mut Vec<u8>) {
    // ExportTraceServiceRequest.resource_spans
    message(out, 1, |out| {
        // ResourceSpans.resource
        message(out, 1, |out| {
            for (key, value) in resource.iter() {
                message(out, 1, |out| key_value(out, key.as_str(), value));
            }
        });
        for (scope, spans) in spans.scopes() {
            // ResourceSpans.scope_spans
            message(out, 2, |out| {
                message(out, 1, |out| instrumentation_scope(out, scope));
                out.extend_from_slice(spans);
                string(out, 3, scope.schema_url().unwrap_or_default());
            });
        }
        string(out, 3, resource.schema_url().unwrap_or_default());
    });
}

fn instrumentation_scope(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    string(out, 1, scope.name());
    string(out, 2, scope.version().unwrap_or_default());
    attributes(out, 3, scope.attributes());
}

fn span(out: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    bytes(out, 1, &context.trace_id().to_bytes());
    bytes(out, 2, &context.span_id().to_bytes());
    trace_state(out, 3, context);
    if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        bytes(out, 4, &span.parent_span_id.to_bytes());
    }
    string(out, 5, &span.name);
    uint(out, 6, span_kind(&span.span_kind));
    fixed64(out, 7, nanos(span.start_time));
    fixed64(out, 8, nanos(span.end_time));
    attributes(out, 9, span.attributes.iter());
    uint(out, 10, span.dropped_attributes_count.into());
    for event in span.events.iter() {
        message(out, 11, |out| {
            fixed64(out, 1, nanos(event.timestamp));
            string(out, 2, &event.name);
            attributes(out, 3, event.attributes.iter());
            uint(out, 4, event.dropped_attributes_count.into());
        });
    }
    uint(out, 12, span.events.dropped_count.into());
    for link in span.links.iter() {
        message(out, 13, |out| {
            bytes(out, 1, &link.span_context.trace_id().to_bytes());
            bytes(out, 2, &link.span_context.span_id().to_bytes());
            trace_state(out, 3, &link.span_context);
            attributes(out, 4, link.attributes.iter());
            uint(out, 5, link.dropped_attributes_count.into());
            fixed32(out, 6, flags(&link.span_context, link.span_context.is_remote()));
        });
    }
    uint(out, 14, span.links.dropped_count.into());
    // Span.status, always present.
    message(out, 15, |out| {
        let (message, code) = match &span.status {
            Status::Unset => ("", 0),
            Status::Ok => ("", 1),
            Status::Error { description } => (description.as_ref(), 2),
        };
        string(out, 2, message);
        uint(out, 3, code);
    });
    fixed32(out, 16, flags(context, span.parent_span_is_remote));
}

/// `SpanFlags`: the W3C trace flags, and whether the parent (of a link: the linked span)
/// is remote, with the bit saying that this is known.
fn flags(context: &SpanContext, remote: bool) -> u32 {
    const HAS_IS_REMOTE: u32 = 0x100;
    const IS_REMOTE: u32 = 0x200;
    u32::from(context.trace_flags().to_u8()) | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 }
}

fn span_kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn trace_state(out: &mut Vec<u8>, field: u32, context: &SpanContext) {
    // `header` allocates only for a non-empty state, which the hub never sets.
    string(out, field, &context.trace_state().header());
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

fn attributes<'a>(out: &mut Vec<u8>, field: u32, attributes: impl Iterator<Item = &'a KeyValue>) {
    for attribute in attributes {
        message(out, field, |out| {
            key_value(out, attribute.key.as_str(), &attribute.value)
        });
    }
}

fn key_value(out: &mut Vec<u8>, key: &str, value: &Value) {
    string(out, 1, key);
    // KeyValue.value, always present.
    message(out, 2, |out| any_value(out, value));
}

/// The fields of an `AnyValue`: a oneof, so written even when it holds its type's default.
fn any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(value) => any_string(out, value.as_str()),
        Value::Bool(value) => any_bool(out, *value),
        Value::I64(value) => any_i64(out, *value),
        Value::F64(value) => any_f64(out, *value),
        Value::Array(array) => message(out, 5, |out| array_values(out, array)),
        // A kind of value newer than this encoder: written as an empty AnyValue.
        _ => {}
    }
}

fn any_string(out: &mut Vec<u8>, value: &str) {
    tag(out, 1, LEN);
    length_delimited(out, value.as_bytes());
}

fn any_bool(out: &mut Vec<u8>, value: bool) {
    tag(out, 2, VARINT);
    varint(out, u64::from(value));
}

fn any_i64(out: &mut Vec<u8>, value: i64) {
    tag(out, 3, VARINT);
    // int64 is two's complement: a negative number takes ten bytes.
    varint(out, value as u64);
}

fn any_f64(out: &mut Vec<u8>, value: f64) {
    tag(out, 4, I64);
    out.extend_from_slice(&value.to_le_bytes());
}

/// An `ArrayValue`'s values, each an `AnyValue`.
fn array_values(out: &mut Vec<u8>, array: &Array) {
    fn each<T: Copy>(out: &mut Vec<u8>, values: &[T], write: fn(&mut Vec<u8>, T)) {
        for value in values {
            message(out, 1, |out| write(out, *value));
        }
    }
    match array {
        Array::Bool(values) => each(out, values, any_bool),
        Array::I64(values) => each(out, values, any_i64),
        Array::F64(values) => each(out, values, any_f64),
        Array::String(values) => {
            for value in values {
                message(out, 1, |out| any_string(out, value.as_str()));
            }
        }
        _ => {}
    }
}

/// Protobuf wire types.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

fn tag(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire_type)));
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    // 7 bits a byte; zero still takes one.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn length_delimited(out: &mut Vec<u8>, bytes: &[u8]) {
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A proto3 scalar: left out when it is zero, as it decodes to zero anyway.
fn uint(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(out, field, VARINT);
        varint(out, value);
    }
}

fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(out, field, I64);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

fn fixed32(out: &mut Vec<u8>, field: u32, value: u32) {
    if value != 0 {
        tag(out, field, I32);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    bytes(out, field, value.as_bytes());
}

fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    if !value.is_empty() {
        tag(out, field, LEN);
        length_delimited(out, value);
    }
}

/// A nested message, always written (an empty one too: it decodes as present). Its length
/// comes first but is known only once `body` has written it: one byte is kept for it, which
/// holds the length of most (attributes, links, statuses), and a longer message is moved
/// along by the bytes its length needs beyond that — a few hundred bytes for a span.
fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    tag(out, field, LEN);
    let at = out.len();
    out.push(0);
    body(out);
    let len = out.len() - at - 1;
    let width = varint_len(len as u64);
    if width > 1 {
        out.splice(at + 1..at + 1, std::iter::repeat_n(0, width - 1));
    }
    let mut rest = len as u64;
    for byte in &mut out[at..at + width] {
        *byte = if rest >= 0x80 { rest as u8 | 0x80 } else { rest as u8 };
        rest >>= 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Event, Link, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry::{InstrumentationScope, StringValue};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message as _;
    use std::time::Duration;

    /// What `opentelemetry-proto`'s conversion and prost make of `spans`, decoded, against
    /// what this encoder writes, decoded.
    fn assert_encoded_as_upstream(resource: &Resource, spans: Vec<SpanData>) {
        assert_pushed_as_upstream(resource, &mut EncodedSpans::default(), spans);
    }

    /// The same, `spans` pushed into `encoded`.
    fn assert_pushed_as_upstream(resource: &Resource, encoded: &mut EncodedSpans, spans: Vec<SpanData>) {
        for span in &spans {
            encoded.push(span);
        }
        assert_eq!(encoded.len(), spans.len());
        let mut ours = Vec::new();
        export_request(resource, encoded, &mut ours);
        let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).expect("our bytes decode");
        let upstream = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(spans, &resource.into()),
        };
        assert_eq!(decoded, upstream);
    }

    fn context(trace: u128, span: u64, remote: bool, state: TraceState) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            remote,
            state,
        )
    }

    fn span(name: impl Into<std::borrow::Cow<'static, str>>, scope: &InstrumentationScope) -> SpanData {
        let start = UNIX_EPOCH + Duration::from_nanos(1_764_800_000_123_456_789);
        SpanData {
            span_context: context(
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
                0x00f0_67aa_0ba9_02b7,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: name.into(),
            start_time: start,
            end_time: start + Duration::from_micros(1_250),
            attributes: vec![],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: scope.clone(),
        }
    }

    #[test]
    fn a_request_span_and_a_job_span_with_links_are_written_as_the_upstream_exporter_writes_them() {
        let resource = Resource::builder()
            .with_service_name("healthforce-hub")
            .with_attribute(KeyValue::new("service.version", "0.1.0"))
            .build();
        let hub = InstrumentationScope::builder("hub").build();
        let mut request = span("POST /webhooks/{id}", &hub);
        request.span_kind = SpanKind::Server;
        request.attributes = vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.route", "/webhooks/{id}"),
            KeyValue::new("http.response.status_code", 202_i64),
        ];
        let mut job = span("job", &hub);
        job.span_context = context(7, 8, false, TraceState::NONE);
        job.parent_span_id = request.span_context.span_id();
        job.parent_span_is_remote = true;
        job.links.links = (1..=300_u64)
            .map(|n| Link::with_context(context(u128::from(n) << 64 | 1, n, true, TraceState::NONE)))
            .collect();
        job.status = Status::error("the plugin trapped");
        assert_encoded_as_upstream(&resource, vec![request, job]);
    }

    #[test]
    fn every_kind_of_value_scope_event_and_count_is_written_as_upstream_writes_it() {
        let resource = Resource::builder_empty()
            .with_schema_url(
                [KeyValue::new("host.name", "hub-1")],
                "https://opentelemetry.io/schemas/1.26.0",
            )
            .build();
        let hub = InstrumentationScope::builder("hub").build();
        let other = InstrumentationScope::builder("plugin-sdk")
            .with_version("2.1.0")
            .with_schema_url("https://opentelemetry.io/schemas/1.26.0")
            .with_attributes([KeyValue::new("scope.kind", "test")])
            .build();
        let mut every_value = span("é".repeat(100), &other);
        every_value.span_kind = SpanKind::Client;
        every_value.span_context = context(1, 2, true, TraceState::from_key_value([("hub", "1")]).unwrap());
        every_value.parent_span_id = SpanId::from(3);
        every_value.attributes = vec![
            KeyValue::new("empty", ""),
            KeyValue::new("yes", true),
            KeyValue::new("no", false),
            KeyValue::new("zero", 0_i64),
            KeyValue::new("negative", -42_i64),
            KeyValue::new("largest", i64::MAX),
            KeyValue::new("ratio", -0.25_f64),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("ints", Value::Array(Array::I64(vec![-1, 0, 1 << 40]))),
            KeyValue::new("floats", Value::Array(Array::F64(vec![1.5, 0.0]))),
            KeyValue::new(
                "strings",
                Value::Array(Array::String(vec![StringValue::from("a"), "".into()])),
            ),
            KeyValue::new("long", "x".repeat(20_000)),
        ];
        every_value.dropped_attributes_count = 3;
        every_value.events.events = vec![
            Event::new(
                "retrying",
                UNIX_EPOCH + Duration::from_secs(5),
                vec![KeyValue::new("attempt", 2_i64)],
                1,
            ),
            Event::with_name("nothing else"),
        ];
        every_value.events.dropped_count = 4;
        every_value.links.links = vec![Link::new(
            context(9, 10, false, TraceState::NONE),
            vec![KeyValue::new("why", "batch")],
            2,
        )];
        every_value.links.dropped_count = 5;
        every_value.status = Status::Ok;
        let mut before_1970 = span("", &hub);
        before_1970.start_time = UNIX_EPOCH - Duration::from_secs(1);
        let spans = vec![span("first", &hub), every_value, before_1970, span("last", &other)];
        assert_encoded_as_upstream(&resource, spans);
    }

    #[test]
    fn a_batch_cleared_for_the_next_holds_only_the_spans_pushed_since() {
        let resource = Resource::builder().with_service_name("healthforce-hub").build();
        let hub = InstrumentationScope::builder("hub").build();
        let other = InstrumentationScope::builder("plugin-sdk").build();
        let third = InstrumentationScope::builder("third").with_version("1").build();
        let mut encoded = EncodedSpans::default();
        encoded.push(&span("gone", &hub));
        encoded.push(&span("gone too", &other));
        encoded.clear();
        assert!(encoded.is_empty());
        let spans = vec![
            span("kept", &other),
            span("in a new scope", &third),
            span("again", &other),
        ];
        assert_pushed_as_upstream(&resource, &mut encoded, spans);
    }

    #[test]
    fn nothing_to_export_is_a_request_for_the_resource_alone() {
        let resource = Resource::builder_empty().build();
        assert_encoded_as_upstream(&resource, vec![]);
    }

    #[test]
    fn a_length_takes_as_many_bytes_as_its_varint_needs() {
        for (value, len) in [(0, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (u64::MAX, 10)] {
            let mut out = Vec::new();
            varint(&mut out, value);
            assert_eq!((varint_len(value), out.len()), (len, len), "{value}");
        }
    }
}
