//! An API request's span, made with OpenTelemetry directly rather than as a `tracing` span:
//! a request is polled several times while it waits (for the job queue's group commit, say),
//! and a `tracing` span pays a registry lookup, both layers' filters and the OpenTelemetry
//! layer's lock on every poll. Side by side with the hub without spans, that made spans
//! +7 % of a webhook's CPU, mostly the request's span (BENCHMARKS.md, "Side by side").
//! Here each poll only makes the request's context current ([`RequestSpan::attach`]): the
//! `tracing` spans started inside a request take it as their parent, and log lines and
//! queued jobs read their trace from it (`context.rs`, `log_format.rs`).

use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, ContextGuard, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{self, Layer};
use tracing_subscriber::registry::LookupSpan;

/// A request's span, started by [`RequestSpan::start`] and ended by [`RequestSpan::end`].
pub struct RequestSpan(Context);

impl RequestSpan {
    /// The span `name`d (`"{method} {route}"`, made once per pair rather than for each
    /// request, `api/metrics.rs`) of a request to `route` (its template: a path holds
    /// ids, and a query string may carry a NIK, so neither is recorded), a child of the
    /// caller's span when the request carries a `traceparent`; `None` when spans are off
    /// (`OTEL_SDK_DISABLED`).
    pub fn start(
        name: &'static str,
        method: &'static str,
        route: &'static str,
        traceparent: Option<&str>,
    ) -> Option<Self> {
        super::REQUEST_TRACER
            .get()
            .map(|tracer| Self::start_with(tracer, name, method, route, traceparent))
    }

    fn start_with(
        tracer: &SdkTracer,
        name: &'static str,
        method: &'static str,
        route: &'static str,
        traceparent: Option<&str>,
    ) -> Self {
        let parent = traceparent.and_then(super::context::remote_parent).unwrap_or_default();
        // Room for the status `end` adds: a vector of two would be reallocated there.
        let mut attributes = Vec::with_capacity(3);
        attributes.push(KeyValue::new("http.request.method", method));
        attributes.push(KeyValue::new("http.route", route));
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        Self(parent.with_span(span))
    }

    /// Makes this request's span the current context until the guard drops: hold it across
    /// one poll of the request's future (it cannot cross an `.await`).
    pub fn attach(&self) -> ContextGuard {
        self.0.clone().attach()
    }

    /// Ends the span with the response's status; a server error marks it failed.
    pub fn end(self, status: u16) {
        let span = self.0.span();
        span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
        if status >= 500 {
            span.set_status(Status::error(format!("answered {status}")));
        }
        span.end();
    }
}

/// Warnings and errors logged inside a request but outside any `tracing` span, as events on
/// the request's span: what the OpenTelemetry layer does for the events of `tracing` spans,
/// which ignores events outside them (`telemetry::init` puts both behind one filter).
pub(super) struct RequestEvents;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for RequestEvents {
    fn on_event(&self, event: &Event<'_>, ctx: layer::Context<'_, S>) {
        if ctx.lookup_current().is_some() {
            return;
        }
        Context::map_current(|context| {
            let span = context.span();
            if !span.span_context().is_valid() {
                return;
            }
            let mut fields = Fields::default();
            event.record(&mut fields);
            let mut attributes = vec![
                KeyValue::new("level", event.metadata().level().as_str()),
                KeyValue::new("target", event.metadata().target()),
            ];
            if !fields.rest.is_empty() {
                attributes.push(KeyValue::new("fields", fields.rest));
            }
            span.add_event(fields.message, attributes);
        });
    }
}

/// An event's message, and its other fields as `name=value` pairs.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let separator = if self.rest.is_empty() { "" } else { " " };
            let _ = write!(self.rest, "{separator}{}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::context;
    use opentelemetry::trace::TracerProvider as _;

    #[test]
    fn while_a_request_is_polled_its_span_is_the_trace_of_what_it_queues_and_logs() {
        let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .build()
            .tracer("test");
        let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let request = RequestSpan::start_with(
            &tracer,
            "POST /api/v1/connectors/{id}/run",
            "POST",
            "/api/v1/connectors/{id}/run",
            Some(caller),
        );
        assert_eq!(
            context::current_traceparent(),
            None,
            "not current before it is attached"
        );
        let current = request.attach();
        let queued = context::current_traceparent().expect("the request's traceparent");
        assert!(queued.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{queued}");
        assert_ne!(
            &queued[36..52],
            "00f067aa0ba902b7",
            "the request's own span, not the caller's"
        );
        assert_eq!(
            context::current().map(|span| span.span_id().to_string()).as_deref(),
            Some(&queued[36..52])
        );
        drop(current);
        assert_eq!(context::current_traceparent(), None, "not current after its poll");
        request.end(202);
    }

    #[test]
    fn a_warning_logged_inside_a_request_is_an_event_on_its_span() {
        use tracing_subscriber::layer::SubscriberExt;

        let kept = crate::telemetry::otlp::tests::Kept::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(kept.clone())
            .build();
        let request = RequestSpan::start_with(
            &provider.tracer("test"),
            "POST /webhooks/{id}",
            "POST",
            "/webhooks/{id}",
            None,
        );
        tracing::subscriber::with_default(tracing_subscriber::registry().with(RequestEvents), || {
            tracing::warn!("not inside a request");
            let _current = request.attach();
            tracing::warn!(connector = "kki", "audit entry not written");
        });
        request.end(500);
        let spans = kept.0.lock().unwrap();
        assert_eq!(spans.len(), 1);
        let events: Vec<_> = spans[0].events.iter().collect();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].name, "audit entry not written");
        assert!(events[0].attributes.contains(&KeyValue::new("level", "WARN")));
        assert!(
            events[0]
                .attributes
                .contains(&KeyValue::new("fields", "connector=\"kki\""))
        );
        assert_eq!(spans[0].status, Status::error("answered 500"));
    }
}
