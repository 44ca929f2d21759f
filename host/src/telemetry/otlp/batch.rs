//! The span processor of OTLP/HTTP export: each ended span is written as protobuf on the
//! thread that ended it (`protobuf.rs`), and freed there; the exporter's thread only puts
//! batches of those bytes in a request and posts it (`http.rs`).
//!
//! The SDK's batch processor sends each span's `SpanData` through a channel to its thread,
//! which writes and frees it there: memory a worker allocated, handed back to it through
//! the allocator's cross-thread free lists (one such allocation less a request had cut the
//! hub's CPU a webhook by 2.1 %). Against it, this processor cut the hub's CPU a webhook by
//! 2.3 % ± 0.7 %, both exporting side by side (BENCHMARKS.md, "Spans written as protobuf
//! on the thread that ends them").
//!
//! Batching is the specification's: a request holds at most `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`
//! spans (default 512) and is sent when that many have ended, or `OTEL_BSP_SCHEDULE_DELAY`
//! milliseconds (default 5,000) after the last timed send; at most `OTEL_BSP_MAX_QUEUE_SIZE`
//! spans (default 2,048) wait to be sent, and a span ended while that many wait is dropped
//! (the log says so at the first and, at shutdown, how many). A flush waits at most
//! `OTEL_BSP_EXPORT_TIMEOUT` milliseconds (default 30,000) for what it sends. A malformed
//! value stops the hub at start, naming the variable.

use super::TelemetryError;
use super::http::HttpExporter;
use super::protobuf::EncodedSpans;
use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How spans are batched, as the `OTEL_BSP_*` variables say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BatchLimits {
    max_queue: usize,
    max_batch: usize,
    delay: Duration,
    flush_timeout: Duration,
}

impl BatchLimits {
    pub(super) fn from_env(var: &impl Fn(&str) -> Option<String>) -> Result<Self, TelemetryError> {
        let read = |name: &'static str, default: u64| match var(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .ok()
                .filter(|number| *number > 0)
                .ok_or(TelemetryError::Invalid {
                    var: name,
                    value,
                    expected: "a whole number above zero",
                }),
        };
        let count = |number: u64| usize::try_from(number).unwrap_or(usize::MAX);
        let max_queue = count(read("OTEL_BSP_MAX_QUEUE_SIZE", 2048)?);
        Ok(Self {
            max_queue,
            // A batch larger than the queue could never fill.
            max_batch: count(read("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)?).min(max_queue),
            delay: Duration::from_millis(read("OTEL_BSP_SCHEDULE_DELAY", 5000)?),
            flush_timeout: Duration::from_millis(read("OTEL_BSP_EXPORT_TIMEOUT", 30_000)?),
        })
    }
}

/// Batches spans written as protobuf for an [`HttpExporter`] on a thread of its own.
#[derive(Debug)]
pub(super) struct BatchProcessor {
    shared: Arc<Shared>,
    limits: BatchLimits,
    exporter_thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the exporter's thread: a batch is ready, or the processor shuts down.
    batch_ready: Condvar,
    /// Wakes flushes and shutdowns: a batch was sent, or the exporter's thread ended.
    batch_sent: Condvar,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the batches up to `sealed` were sent, the exporter's thread ended or
    /// `timeout` passed: whether all were sent.
    fn wait_for_sent<'a>(
        &'a self,
        mut queue: MutexGuard<'a, Queue>,
        sealed: u64,
        timeout: Duration,
    ) -> (MutexGuard<'a, Queue>, bool) {
        let deadline = Instant::now() + timeout;
        while queue.sent < sealed && !queue.ended {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return (queue, false);
            };
            queue = self
                .batch_sent
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let all = queue.sent >= sealed;
        (queue, all)
    }
}

/// Emptied batches kept for the next: one being filled while another is sent needs two;
/// more would keep the memory of a burst's backlog for good.
const SPARE_BATCHES: usize = 2;

#[derive(Debug)]
struct Queue {
    /// The batch spans are added to.
    filling: EncodedSpans,
    /// Batches to send, oldest first.
    ready: VecDeque<EncodedSpans>,
    /// Sent batches, emptied, for `filling` to take next: their buffers keep their size
    /// (at most [`SPARE_BATCHES`] of them).
    spare: Vec<EncodedSpans>,
    /// Spans in `filling` and `ready`.
    waiting: usize,
    /// Batches ever put in `ready`, sent (in that order), and of those failed.
    sealed: u64,
    sent: u64,
    failed: u64,
    /// Spans dropped because the queue was full.
    dropped: u64,
    resource: Resource,
    shutting_down: bool,
    /// The exporter's thread has sent the last batch and ended.
    ended: bool,
}

impl Queue {
    /// Makes the batch being filled ready to send, if it has spans.
    fn seal(&mut self) -> bool {
        if self.filling.is_empty() {
            return false;
        }
        let next = self.spare.pop().unwrap_or_default();
        self.ready.push_back(std::mem::replace(&mut self.filling, next));
        self.sealed += 1;
        true
    }
}

impl BatchProcessor {
    pub(super) fn new(exporter: HttpExporter, limits: BatchLimits) -> Result<Self, TelemetryError> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                filling: EncodedSpans::default(),
                ready: VecDeque::new(),
                spare: Vec::new(),
                waiting: 0,
                sealed: 0,
                sent: 0,
                failed: 0,
                dropped: 0,
                resource: Resource::builder_empty().build(),
                shutting_down: false,
                ended: false,
            }),
            batch_ready: Condvar::new(),
            batch_sent: Condvar::new(),
        });
        let sending = shared.clone();
        let thread = std::thread::Builder::new()
            .name("OpenTelemetry.Traces.Export".into())
            .spawn(move || send_batches(&sending, &exporter, limits.delay))
            .map_err(|e| TelemetryError::Exporter(format!("its thread could not start: {e}")))?;
        Ok(Self {
            shared,
            limits,
            exporter_thread: Mutex::new(Some(thread)),
        })
    }

    /// Adds `span`, written as protobuf straight into the batch being filled, under the
    /// lock: written first into a buffer of this thread's and then copied in, outside the
    /// lock, the hub's CPU a webhook was 3 % higher (+1.0 % ± 0.3 % against the SDK's
    /// processor, against -2.3 % ± 0.7 %, BENCHMARKS.md); two cores seldom end spans at the
    /// same moment.
    fn add(&self, span: &SpanData) {
        let mut queue = self.shared.queue();
        if queue.shutting_down {
            return;
        }
        if queue.waiting >= self.limits.max_queue {
            queue.dropped += 1;
            let first = queue.dropped == 1;
            drop(queue);
            if first {
                tracing::warn!(
                    "spans are being dropped: {} already wait to be sent to the OTLP collector (OTEL_BSP_MAX_QUEUE_SIZE); the collector is slow or down, or spans end faster than batches of OTEL_BSP_MAX_EXPORT_BATCH_SIZE can be sent; shutdown logs how many were lost",
                    self.limits.max_queue
                );
            }
            return;
        }
        queue.filling.push(span);
        queue.waiting += 1;
        if queue.filling.len() >= self.limits.max_batch {
            queue.seal();
            drop(queue);
            self.shared.batch_ready.notify_one();
        }
    }
}

/// The exporter's thread: sends ready batches, oldest first, and every `delay` the batch
/// being filled; ends once shutdown is asked and nothing is left.
fn send_batches(shared: &Shared, exporter: &HttpExporter, delay: Duration) {
    let mut timer = Instant::now() + delay;
    let mut queue = shared.queue();
    loop {
        if let Some(mut batch) = queue.ready.pop_front() {
            queue.waiting -= batch.len();
            let resource = queue.resource.clone();
            drop(queue);
            let outcome = exporter.export(&resource, &batch);
            batch.clear();
            queue = shared.queue();
            queue.sent += 1;
            queue.failed += u64::from(outcome.is_err());
            if queue.spare.len() < SPARE_BATCHES {
                queue.spare.push(batch);
            }
            shared.batch_sent.notify_all();
            continue;
        }
        if queue.shutting_down {
            queue.ended = true;
            shared.batch_sent.notify_all();
            return;
        }
        let now = Instant::now();
        if now >= timer {
            queue.seal();
            timer = now + delay;
            continue;
        }
        queue = shared
            .batch_ready
            .wait_timeout(queue, timer - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

impl SpanProcessor for BatchProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.add(&span);
        // `span` is freed here, on the thread that made it.
    }

    fn force_flush(&self) -> OTelSdkResult {
        let mut queue = self.shared.queue();
        if queue.shutting_down {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        if queue.seal() {
            self.shared.batch_ready.notify_one();
        }
        let (sealed, failed) = (queue.sealed, queue.failed);
        let (queue, all_sent) = self.shared.wait_for_sent(queue, sealed, self.limits.flush_timeout);
        if !all_sent {
            return Err(OTelSdkError::Timeout(self.limits.flush_timeout));
        }
        if queue.failed > failed {
            return Err(OTelSdkError::InternalFailure(
                "an export failed while flushing; the log says why when exports start failing".into(),
            ));
        }
        Ok(())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let mut queue = self.shared.queue();
        if queue.shutting_down {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        queue.shutting_down = true;
        queue.seal();
        self.shared.batch_ready.notify_one();
        let sealed = queue.sealed;
        let (queue, all_sent) = self.shared.wait_for_sent(queue, sealed, timeout);
        let (dropped, ended) = (queue.dropped, queue.ended);
        drop(queue);
        if dropped > 0 {
            tracing::warn!(
                "{dropped} spans were dropped in all, {} already waiting to be sent each time; raise OTEL_BSP_MAX_QUEUE_SIZE or check the collector",
                self.limits.max_queue
            );
        }
        if ended
            && let Some(thread) = self
                .exporter_thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        {
            let _ = thread.join();
        }
        if all_sent {
            Ok(())
        } else {
            Err(OTelSdkError::Timeout(timeout))
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.shared.queue().resource = resource.clone();
    }
}

impl Drop for BatchProcessor {
    /// Lets the exporter's thread end (the provider shuts processors down first).
    fn drop(&mut self) {
        self.shared.queue().shutting_down = true;
        self.shared.batch_ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::otlp::http::tests::{Got, collector, exporter, one_span};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;

    fn limits(vars: &[(&str, &str)]) -> Result<BatchLimits, TelemetryError> {
        BatchLimits::from_env(&|name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
    }

    /// A processor sending to a collector that answers after `answer_after`, batching as
    /// `vars` say: it and what the collector got.
    fn processor(vars: &[(&str, &str)], answer_after: Duration) -> (BatchProcessor, Got) {
        let got = Got::default();
        let (endpoint, _serving) = collector(vec![], answer_after, got.clone());
        (
            BatchProcessor::new(exporter(&endpoint, "10000"), limits(vars).unwrap()).unwrap(),
            got,
        )
    }

    fn end(processor: &BatchProcessor, name: &str) {
        let mut span = one_span();
        span.name = name.to_string().into();
        processor.on_end(span);
    }

    /// The names of the spans of each request the collector got.
    fn requests(got: &Got) -> Vec<Vec<String>> {
        let got = got.lock().unwrap();
        got.iter()
            .map(|(_, body)| {
                let request = ExportTraceServiceRequest::decode(body.clone()).expect("a request decodes");
                let scope_spans = &request.resource_spans[0].scope_spans;
                scope_spans
                    .iter()
                    .flat_map(|scope| scope.spans.iter().map(|span| span.name.clone()))
                    .collect()
            })
            .collect()
    }

    /// Waits up to 10 s for the collector to have got `count` requests.
    fn wait_for_requests(got: &Got, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.lock().unwrap().len() < count {
            assert!(
                Instant::now() < deadline,
                "{} requests, not {count}",
                got.lock().unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn batching_is_read_from_the_standard_variables_and_bad_values_are_refused_by_name() {
        let defaults = limits(&[]).unwrap();
        assert_eq!(
            (
                defaults.max_queue,
                defaults.max_batch,
                defaults.delay,
                defaults.flush_timeout
            ),
            (2048, 512, Duration::from_secs(5), Duration::from_secs(30))
        );
        let set = limits(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000"),
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "2000"),
        ])
        .unwrap();
        assert_eq!(set.max_batch, 100, "a batch is never larger than the queue");
        assert_eq!(
            (set.delay, set.flush_timeout),
            (Duration::from_millis(250), Duration::from_secs(2))
        );
        for (var, value) in [
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-1"),
            ("OTEL_BSP_SCHEDULE_DELAY", "5s"),
        ] {
            let error = limits(&[(var, value)]).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("{var}=\"{value}\" is not valid: a whole number above zero")
            );
        }
    }

    #[test]
    fn a_full_batch_is_sent_at_once_and_a_flush_sends_the_rest_in_the_order_the_spans_ended() {
        let (processor, got) = processor(
            &[
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "3"),
                ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
            ],
            Duration::ZERO,
        );
        for n in 1..=7 {
            end(&processor, &format!("span {n}"));
        }
        wait_for_requests(&got, 2);
        processor.force_flush().expect("the last span is sent");
        let names = |range: std::ops::RangeInclusive<u32>| range.map(|n| format!("span {n}")).collect::<Vec<_>>();
        assert_eq!(requests(&got), [names(1..=3), names(4..=6), names(7..=7)]);
        processor.force_flush().expect("nothing left is nothing to send");
        assert_eq!(got.lock().unwrap().len(), 3);
    }

    #[test]
    fn spans_of_a_batch_that_does_not_fill_are_sent_after_the_schedule_delay() {
        let (processor, got) = processor(&[("OTEL_BSP_SCHEDULE_DELAY", "100")], Duration::ZERO);
        end(&processor, "alone");
        wait_for_requests(&got, 1);
        assert_eq!(requests(&got), [["alone"]]);
    }

    #[test]
    fn spans_ending_while_the_queue_is_full_are_dropped_and_counted_and_the_rest_sent() {
        let (processor, got) = processor(
            &[("OTEL_BSP_MAX_QUEUE_SIZE", "3"), ("OTEL_BSP_SCHEDULE_DELAY", "3600000")],
            Duration::from_millis(500),
        );
        for n in 1..=3 {
            end(&processor, &format!("sent {n}"));
        }
        // The first batch is on its way, the collector slow to answer: three more fill the
        // queue again and the next two find it full.
        wait_for_requests(&got, 1);
        for n in 4..=6 {
            end(&processor, &format!("sent {n}"));
        }
        end(&processor, "dropped");
        end(&processor, "dropped too");
        assert_eq!(processor.shared.queue().dropped, 2);
        processor.shutdown().expect("what waits is sent at shutdown");
        let sent: Vec<String> = requests(&got).concat();
        assert_eq!(sent, (1..=6).map(|n| format!("sent {n}")).collect::<Vec<_>>());
    }

    #[test]
    fn shutdown_sends_what_waits_and_spans_ended_after_it_go_nowhere() {
        let (processor, got) = processor(&[("OTEL_BSP_SCHEDULE_DELAY", "3600000")], Duration::ZERO);
        end(&processor, "before");
        processor.shutdown().expect("sent within the timeout");
        assert!(processor.exporter_thread.lock().unwrap().is_none(), "its thread ended");
        end(&processor, "after");
        assert!(matches!(processor.shutdown(), Err(OTelSdkError::AlreadyShutdown)));
        assert!(matches!(processor.force_flush(), Err(OTelSdkError::AlreadyShutdown)));
        assert_eq!(requests(&got), [["before"]]);
    }

    #[test]
    fn a_flush_whose_export_fails_says_so() {
        let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}/v1/traces", nobody.local_addr().unwrap());
        drop(nobody);
        let processor = BatchProcessor::new(exporter(&endpoint, "300"), limits(&[]).unwrap()).unwrap();
        end(&processor, "lost");
        let error = processor.force_flush().unwrap_err();
        assert!(error.to_string().contains("an export failed"), "{error}");
    }
}
