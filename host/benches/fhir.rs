//! The FHIR server with 100,000 practitioners stored (issue 19; goal: p99 < 50 ms at 50
//! clients): a search by identifier (a different NIK each request), by name and birth date
//! (blind keys of words and dates), a practitioner's roles with the practitioner included,
//! and 100-resource pages,
//! beside the REST API's same reads and the store's own search and page with no HTTP,
//! decryption or audit (the database's speed, the limit the server approaches).
//!
//! `cargo bench -p hub --bench fhir` (PostgreSQL too when `HUB_TEST_DATABASE_URL` is set;
//! `HUB_BENCH_PEOPLE` sets the practitioners, default 100,000; `HUB_BENCH_REQUESTS` the
//! requests per line, default 2,000; `HUB_BENCH_LINES` only the lines whose name holds it, as
//! when profiling one). Each line is measured after a quarter as many requests not counted
//! (`warm_up`).

#[path = "common/allocator.rs"]
mod allocator;
#[path = "common/backends.rs"]
mod backends;
#[path = "../tests/common/database.rs"]
mod database;
#[path = "common/http_load.rs"]
mod http_load;
#[path = "common/process_cpu.rs"]
mod process_cpu;

use futures::StreamExt;
use http_load::{load, regnakes, summary};
use hub::Hub;
use hub::store::practitioners::Condition;
use hub::store::search::Search;
use process_cpu::process_cpu;
use std::time::{Duration, Instant};

const KEY: &str = "bench-admin-key-0123456789abcdef";
const CLIENTS: usize = 50;
const NIK_SYSTEM: &str = "https://fhir.kemkes.go.id/id/nik";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Whether line `what` runs: every line unless `HUB_BENCH_LINES` is set.
fn chosen(what: &str) -> bool {
    std::env::var("HUB_BENCH_LINES").map_or(true, |only| what.contains(&only))
}

#[tokio::main]
async fn main() {
    let people = setting("HUB_BENCH_PEOPLE", 100_000);
    let requests = setting("HUB_BENCH_REQUESTS", 2_000);
    hub::manager::credentials::install_tls_provider();
    let sim = hub_sim::RegnakesSim::new(hub_sim::RegnakesConfig {
        people,
        ..Default::default()
    });
    let people_sample: Vec<hub_sim::people::Person> = sim.valid_people().into_iter().take(1_000).collect();
    let niks: Vec<String> = people_sample.iter().map(|p| p.nik.clone()).collect();
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for (name, base) in backends::backends() {
        let database_url = backends::database_url(&base).await;
        let dir = tempfile::tempdir().unwrap();
        let hub = http_load::start_hub(database_url, dir.path(), KEY).await;
        let connector = hub
            .manager
            .create_connector(regnakes("regnakes", &server, sim.config()), "bench")
            .await
            .unwrap();
        let started = Instant::now();
        http_load::sync(&hub, &connector.id).await;
        let stored = hub.manager.db().count_practitioners().await.unwrap();
        println!(
            "{name}: {stored} practitioners stored in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let url = |path: &str| format!("{}{path}", hub.url());
        let by_nik: Vec<String> = (niks.iter())
            .map(|nik| url(&format!("/fhir/r4/Practitioner?identifier={NIK_SYSTEM}%7C{nik}")))
            .collect();
        let rest_by_nik: Vec<String> = niks
            .iter()
            .map(|nik| url(&format!("/api/v1/practitioners?nik={nik}")))
            .collect();
        let by_name: Vec<String> = (people_sample.iter())
            .filter_map(|p| {
                let name: String = form_urlencoded::byte_serialize(p.full_name.as_bytes()).collect();
                Some(url(&format!(
                    "/fhir/r4/Practitioner?name={name}&birthdate={}",
                    p.birth_date?
                )))
            })
            .collect();
        let pages = cursors(&hub, 20).await;
        let roles: Vec<String> = (pages.iter())
            .map(|id| {
                url(&format!(
                    "/fhir/r4/PractitionerRole?practitioner={id}&_include=PractitionerRole:practitioner"
                ))
            })
            .collect();
        let fhir_pages: Vec<String> = (pages.iter())
            .map(|c| url(&format!("/fhir/r4/Practitioner?_count=100&_cursor={c}")))
            .collect();
        let rest_pages: Vec<String> = (pages.iter())
            .map(|c| url(&format!("/api/v1/practitioners?limit=100&cursor={c}")))
            .collect();
        let first_page = vec![url("/fhir/r4/Practitioner?_count=100")];
        for (what, urls) in [
            ("FHIR Practitioner?identifier=<NIK>", &by_nik),
            (
                "FHIR Practitioner?_count=100 (the first page, counting the total)",
                &first_page,
            ),
            ("REST /api/v1/practitioners?nik=<NIK>", &rest_by_nik),
            ("FHIR Practitioner?name=<full name>&birthdate=<date>", &by_name),
            (
                "FHIR PractitionerRole?practitioner=<id>&_include=PractitionerRole:practitioner",
                &roles,
            ),
            ("FHIR Practitioner?_count=100 (20 pages)", &fhir_pages),
            ("REST /api/v1/practitioners?limit=100 (20 pages)", &rest_pages),
        ] {
            if !chosen(what) {
                continue;
            }
            load(urls, KEY, warm_up(requests), CLIENTS).await;
            let cpu = process_cpu();
            let (took, latencies) = load(urls, KEY, requests, CLIENTS).await;
            println!(
                "{name}: {what}, {CLIENTS} clients: {}; {}",
                summary(requests, took, &latencies),
                cpu_each(process_cpu() - cpu, requests)
            );
        }
        let db = hub.manager.db();
        let blind = &hub.manager.keys().blind;
        let by_nik_alone = "the store's search by NIK alone (no HTTP, decryption or audit)";
        store_line(name, by_nik_alone, requests, |i| {
            let search = Search {
                all_of: vec![vec![Condition::NikIndex(blind.nik(&niks[i % niks.len()]))]],
                after: None,
            };
            async move {
                let (rows, _) = db.search_practitioners(&search, 50, true).await.unwrap();
                assert!(!rows.is_empty(), "a stored NIK not found");
            }
        })
        .await;
        let page_alone = "the store's page of 100 alone (no HTTP, decryption or audit)";
        store_line(name, page_alone, requests, |i| {
            let cursor = &pages[i % pages.len()];
            async move {
                let rows = db.list_practitioners(Some(cursor), 100).await.unwrap();
                assert!(!rows.is_empty(), "an empty page");
            }
        })
        .await;
        hub.stop().await;
    }
}

/// Requests sent before a line's measured ones, not counted: right after the sync of
/// 100,000 people the database is still vacuuming and analyzing in the background and its
/// caches are cold, and a line of 3,000 requests (two seconds) measured that as its p99
/// (PostgreSQL's identifier search: p99 72 ms in 3,000 requests, 40 ms in 30,000).
fn warm_up(requests: usize) -> usize {
    requests / 4
}

/// Cursors spread over the stored practitioners: the last id of every `count`th page of
/// 1,000.
async fn cursors(hub: &Hub, count: usize) -> Vec<String> {
    let all = hub.manager.db().count_practitioners().await.unwrap() as usize;
    let mut cursors = Vec::new();
    let mut after: Option<String> = None;
    let step = (all / count).max(1) as i64;
    while cursors.len() < count {
        let page = hub
            .manager
            .db()
            .list_practitioners(after.as_deref(), step)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursors.push(last.id.clone());
        after = Some(last.id.clone());
    }
    cursors
}

/// The line `what`, when chosen: `count` calls of `call` straight on the store, `CLIENTS`
/// at once — the database's own speed beside the server's.
async fn store_line<F: Future<Output = ()>>(name: &str, what: &str, count: usize, call: impl Fn(usize) -> F) {
    if !chosen(what) {
        return;
    }
    let calls = |count: usize| {
        futures::stream::iter(0..count)
            .map(|i| {
                let call = call(i);
                async move {
                    let sent = Instant::now();
                    call.await;
                    sent.elapsed()
                }
            })
            .buffer_unordered(CLIENTS)
            .collect::<Vec<Duration>>()
    };
    calls(warm_up(count)).await;
    let cpu = process_cpu();
    let started = Instant::now();
    let mut latencies = calls(count).await;
    latencies.sort();
    println!(
        "{name}: {what}, {CLIENTS} at once: {}; {}",
        summary(count, started.elapsed(), &latencies),
        cpu_each(process_cpu() - cpu, count)
    );
}

/// "N µs of this process's CPU a request": the server's and the load generator's (or the
/// store's) work, but not the database's, which runs apart on PostgreSQL.
fn cpu_each(cpu: Duration, requests: usize) -> String {
    format!(
        "{:.0} µs of this process's CPU a request",
        cpu.as_secs_f64() * 1e6 / requests as f64
    )
}
