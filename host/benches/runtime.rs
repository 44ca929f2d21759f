//! Plugin instantiate + trivial call with the pooling allocator, and compile vs. cached load.
//!
//! `cargo bench -p hub --bench runtime`

#[path = "common/allocator.rs"]
mod allocator;
mod common;

use common::BenchJob;
use hub::runtime::{Backends, JobSpec, Limits, Runtime, SyncRequest};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let package = hub::bundled::fixture("hostile").expect("fixture built by host/build.rs");
    let digest = package.digest();

    let started = Instant::now();
    let runtime = Runtime::new(Limits::default(), dir.path().join("cache")).unwrap();
    let plugin = runtime.load(&digest, &package.component).await.unwrap();
    let cold = started.elapsed();
    drop((plugin, runtime));
    let started = Instant::now();
    let runtime = Runtime::new(Limits::default(), dir.path().join("cache")).unwrap();
    let plugin = runtime.load(&digest, &package.component).await.unwrap();
    let cached = started.elapsed();
    println!(
        "load component: compile {:.0} ms, from disk cache {:.1} ms",
        ms(cold),
        ms(cached)
    );

    let job = Backends::of(Arc::new(BenchJob::new(None, false)));
    let spec = JobSpec::new(vec![], "0".repeat(32));
    let request = SyncRequest {
        run_id: "bench".into(),
        cursor: None,
        config: r#"{"mode":"trivial"}"#.into(),
    };
    let call = || runtime.sync(&plugin, spec.clone(), job.clone(), request.clone());
    for _ in 0..500 {
        call().await.unwrap().unwrap();
    }
    let iterations = 20_000;
    let mut samples = Vec::with_capacity(iterations);
    let all = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        call().await.unwrap().unwrap();
        samples.push(t.elapsed());
    }
    let total = all.elapsed();
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "instantiate + trivial sync call: mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs ({iterations} calls, {:.0} calls/s)",
        us(total / iterations as u32),
        us(pick(0.50)),
        us(pick(0.99)),
        iterations as f64 / total.as_secs_f64()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
