//! The admin API under concurrent clients: requests per second and latency of the
//! connectors list (five connectors with run history), a practitioners page (50 rows
//! decrypted, one audit entry a request) and an audit page, at 16 and 256 clients.
//!
//! `cargo bench -p hub --bench api` (PostgreSQL too when `HUB_TEST_DATABASE_URL` is set;
//! `HUB_BENCH_REQUESTS` sets the requests per measurement, default 2,000).

#[path = "common/allocator.rs"]
mod allocator;
#[path = "common/backends.rs"]
mod backends;
#[path = "../tests/common/database.rs"]
mod database;
#[path = "common/http_load.rs"]
mod http_load;

use http_load::{load, regnakes, summary};

const KEY: &str = "bench-admin-key-0123456789abcdef";
const CONNECTORS: usize = 5;

#[tokio::main]
async fn main() {
    let requests: usize = std::env::var("HUB_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    hub::manager::credentials::install_tls_provider();
    let sim = hub_sim::RegnakesSim::new(hub_sim::RegnakesConfig {
        people: 2_000,
        ..Default::default()
    });
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for (name, base) in backends::backends() {
        let database_url = backends::database_url(&base).await;
        let dir = tempfile::tempdir().unwrap();
        let hub = http_load::start_hub(database_url, dir.path(), KEY).await;
        // Five connectors, each with a run behind it (the first stores 2,000 practitioners).
        for i in 0..CONNECTORS {
            let connector = hub
                .manager
                .create_connector(regnakes(&format!("regnakes-{i}"), &server, sim.config()), "bench")
                .await
                .unwrap();
            http_load::sync(&hub, &connector.id).await;
        }
        for concurrency in [16, 256] {
            for path in [
                "/api/v1/connectors",
                "/api/v1/practitioners?limit=50",
                "/api/v1/audit?limit=50",
            ] {
                let url = format!("{}{path}", hub.url());
                let (took, latencies) = load(&[url], KEY, requests, concurrency).await;
                println!(
                    "{name}: GET {path}, {concurrency} clients: {}",
                    summary(requests, took, &latencies)
                );
            }
        }
        hub.stop().await;
    }
}
