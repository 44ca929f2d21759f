//! What the hub's metrics and traces cost one webhook, in CPU time: the request's span
//! (made, made current, a job's `traceparent` taken from it, ended with its status), the
//! HTTP request metrics and the webhook metrics — everything the telemetry adds to a
//! `POST /webhooks/{id}` — done `HUB_BENCH_REQUESTS` times (default 200,000) in one process,
//! measured as the process's CPU time (every thread: the span exporter's too).
//!
//! Three variants, each in a process of its own (tracing is set up once per process): no
//! telemetry at all (the loop's own cost), spans made and exported nowhere, and spans
//! exported by OTLP/HTTP to `external/otlp_sink.py` on this machine. Divided by the hub CPU
//! per webhook that `external/webhooks.sh` prints, the difference is the telemetry's share
//! of a webhook — a figure the machine's speed moves far less than wrk's throughput.
//!
//! `cargo bench -p hub --bench telemetry` (needs python3).

#[path = "common/allocator.rs"]
mod allocator;
#[path = "common/process_cpu.rs"]
mod process_cpu;

use hub::telemetry::request::RequestSpan;
use process_cpu::process_cpu;
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

/// Which variant a child process runs; unset in the parent.
const VARIANT: &str = "HUB_BENCH_TELEMETRY_VARIANT";

fn main() {
    match std::env::var(VARIANT).ok().as_deref() {
        None => compare(),
        Some(variant) => measure(variant),
    }
}

/// Runs each variant in a child process, the exporting one against a sink started here.
fn compare() {
    let requests = requests();
    let port = free_port();
    let sink_script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/external/otlp_sink.py");
    let mut sink = Command::new("python3")
        .args([sink_script, &port.to_string()])
        .spawn()
        .expect("python3 runs the OTLP sink");
    std::thread::sleep(Duration::from_millis(500));
    let endpoint = format!("http://127.0.0.1:{port}");
    for (variant, exporting) in [("none", false), ("spans", false), ("spans+otlp", true)] {
        let mut child = Command::new(std::env::current_exe().expect("the bench's own path"));
        child.env(VARIANT, variant).env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        if exporting {
            // Every span kept until sent: with the default queue of 2,048 a loop this fast
            // would see most spans dropped, and their export go unpaid.
            child
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
                .env("OTEL_BSP_MAX_QUEUE_SIZE", (requests + 1).to_string());
        }
        let status = child.status().expect("the bench runs itself");
        assert!(status.success(), "variant {variant} failed: {status}");
    }
    // SIGTERM: the sink prints what it took.
    let _ = Command::new("kill").arg(sink.id().to_string()).status();
    let _ = sink.wait();
    println!(
        "(for each webhook, `external/webhooks.sh` prints the hub's CPU: the telemetry's share is \
         the difference above divided by it)"
    );
}

fn measure(variant: &str) {
    let requests = requests();
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let _inside = runtime.enter();
    let traced = variant != "none";
    if traced {
        hub::telemetry::init().expect("telemetry set up from the environment");
    }
    let metrics = hub::metrics::metrics();
    let cpu_before = process_cpu();
    let started = Instant::now();
    for _ in 0..requests {
        if traced {
            let span = RequestSpan::start("POST /webhooks/{id}", "POST", "/webhooks/{id}", None);
            let current = span.as_ref().map(RequestSpan::attach);
            black_box(hub::telemetry::context::current_traceparent());
            drop(current);
            if let Some(span) = span {
                span.end(202);
            }
            metrics.http_request("POST", "/webhooks/{id}", 202, started.elapsed());
            metrics.webhook("queued", started.elapsed());
        } else {
            black_box((started.elapsed(), started.elapsed()));
        }
    }
    let took = started.elapsed();
    hub::telemetry::shutdown();
    let cpu = process_cpu() - cpu_before;
    println!(
        "{variant}: {requests} webhooks' telemetry in {:.2} s wall, {:.2} s CPU (with the export's \
         flush): {:.2} µs CPU each",
        took.as_secs_f64(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / requests as f64
    );
}

fn requests() -> usize {
    std::env::var("HUB_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
