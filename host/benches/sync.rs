//! Sync throughput, RegNakes simulator → plugin → pipeline → database, and where the time
//! goes: the plugin side (HTTP, JSON, mapping, crossing into the host) timed with batches
//! dropped, the pipeline side (validate, match, encrypt, store) timed on the same batches,
//! the database alone (the same rows upserted again, no pipeline), the whole sync through a
//! hub, and a full re-read of the same records with the cursor cleared.
//!
//! `cargo bench -p hub --bench sync` (PostgreSQL too when `HUB_TEST_DATABASE_URL` is set;
//! `HUB_BENCH_PEOPLE` sets the registry size, default 100,000).

#[path = "common/allocator.rs"]
mod allocator;
mod common;
#[path = "../tests/common/database.rs"]
mod database;

use common::BenchJob;
use hub::Hub;
use hub::config::HubConfig;
use hub::crypto::{Kek, KeyRing, LocalMasterKey};
use hub::manager::{CredentialSpec, NewConnector};
use hub::pipeline::{BatchSource, Pipeline};
use hub::runtime::{Backends, JobSpec, Limits, Runtime, SyncRequest};
use hub::store::Db;
use hub_sim::{RegnakesConfig, RegnakesSim};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PER_PAGE: u32 = 1000;

#[tokio::main]
async fn main() {
    let people: usize = std::env::var("HUB_BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let sim_config = RegnakesConfig {
        people,
        ..RegnakesConfig::default()
    };
    let sim = RegnakesSim::new(sim_config.clone());
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let credential = CredentialSpec {
        token_url: format!("{}/oauth/token", server.base_url()),
        client_id: sim_config.client_id.clone(),
        client_secret: "secret".into(),
        scope: None,
    };
    println!("RegNakes simulator: {people} people, {PER_PAGE} per page");

    // Plugin side alone.
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(Limits::default(), dir.path().join("cache")).unwrap();
    let package = hub::bundled::REGNAKES.package().unwrap();
    let plugin = runtime.load(&package.digest(), &package.component).await.unwrap();
    let job = Arc::new(BenchJob::new(
        Some((credential.clone(), sim_config.client_secret.clone())),
        true,
    ));
    let config = serde_json::json!({ "base_url": server.base_url(), "per_page": PER_PAGE }).to_string();
    let spec = JobSpec::new(vec![server.addr.to_string()], "0".repeat(32));
    let started = Instant::now();
    let request = SyncRequest {
        run_id: "bench".into(),
        cursor: None,
        config: config.clone(),
    };
    runtime
        .sync(&plugin, spec, Backends::of(job.clone()), request)
        .await
        .unwrap()
        .unwrap();
    let plugin_side = started.elapsed();
    let batches = std::mem::take(&mut *job.batches.lock().unwrap());
    let records: usize = batches.iter().map(Vec::len).sum();
    report("plugin side (fetch, parse, map, emit dropped)", records, plugin_side);

    let mut backends = vec![("SQLite", None)];
    if let Ok(url) = std::env::var("HUB_TEST_DATABASE_URL") {
        backends.push(("PostgreSQL", Some(url)));
    }
    // The boundary check alone (every text of every record, before any rule reads it).
    let quotas = hub::runtime::Quotas::default();
    let started = Instant::now();
    for batch in &batches {
        for record in batch {
            std::hint::black_box(hub::pipeline::boundary::check(record, &quotas)).unwrap();
        }
    }
    report("boundary check alone (text, dates, sizes)", records, started.elapsed());

    for (name, base_url) in backends {
        // Pipeline side alone, on the batches the plugin produced.
        let dir = tempfile::tempdir().unwrap();
        let db_url = match &base_url {
            Some(base) => database::fresh_postgres(base).await,
            None => format!("sqlite://{}?mode=rwc", dir.path().join("hub.db").display()),
        };
        let db = Db::open(&db_url).await.unwrap();
        let kek = Kek::Local(Box::new(
            LocalMasterKey::open_or_create(&dir.path().join("master.key")).unwrap(),
        ));
        let pipeline = Pipeline::new(
            db.clone(),
            Arc::new(KeyRing::load_or_init(db.clone(), kek).await.unwrap()),
        );
        let started = Instant::now();
        for batch in batches.clone() {
            pipeline
                .ingest(
                    BatchSource {
                        connector_id: "bench",
                        run_id: None,
                        quotas: &Default::default(),
                        creates: hub_registry::CreatePolicy::WithActiveStr,
                    },
                    batch,
                )
                .await
                .unwrap();
        }
        let pipeline_side = started.elapsed();
        report(
            &format!("{name}: pipeline side (validate, match, encrypt, upsert)"),
            records,
            pipeline_side,
        );

        // The database alone: the rows the pipeline wrote (golden records and per-source
        // records, sealed), upserted again into a fresh database in batches of the page size.
        let stored = stored_rows(&db).await;
        db.close().await;
        let raw_dir = tempfile::tempdir().unwrap();
        let raw_url = match &base_url {
            Some(base) => database::fresh_postgres(base).await,
            None => format!("sqlite://{}?mode=rwc", raw_dir.path().join("hub.db").display()),
        };
        let raw = Db::open(&raw_url).await.unwrap();
        let started = Instant::now();
        for (practitioners, sources) in &stored {
            let mut tx = raw.begin().await.unwrap();
            hub::store::practitioners::upsert(&mut tx, practitioners).await.unwrap();
            hub::store::practitioners::upsert_contributions(&mut tx, sources)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let raw_upsert = started.elapsed();
        let rows: usize = stored.iter().map(|(p, _)| p.len()).sum();
        report(
            &format!("{name}: raw upsert of the same rows, no pipeline"),
            rows,
            raw_upsert,
        );
        println!(
            "{name}: pipeline side / raw upsert = {:.0} %",
            100.0 * (rows as f64 / pipeline_side.as_secs_f64()) / (rows as f64 / raw_upsert.as_secs_f64())
        );
        raw.close().await;

        // The whole path through a running hub.
        let dir = tempfile::tempdir().unwrap();
        let database_url = match &base_url {
            Some(base) => Some(database::fresh_postgres(base).await),
            None => None,
        };
        let hub_config = HubConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            database_url,
            admin_key: Some(hub::config::SecretString::new("bench-admin-key-0123456789abcdef")),
            keys: hub::crypto::KeysConfig {
                reload_secs: 1,
                ..Default::default()
            },
            ..HubConfig::default()
        };
        let hub_database = hub_config.database_url();
        let hub = Hub::start(hub_config).await.unwrap();
        let connector = hub
            .manager
            .create_connector(
                NewConnector {
                    config: serde_json::from_str(&config).unwrap(),
                    egress: Some(vec![server.addr.to_string()]),
                    credentials: BTreeMap::from([("regnakes".to_string(), credential.clone())]),
                    secrets: BTreeMap::from([("secret".to_string(), sim_config.client_secret.clone())]),
                    enabled: true,
                    ..NewConnector::new("regnakes", "regnakes")
                },
                "bench",
            )
            .await
            .unwrap();
        let started = Instant::now();
        let run = sync(&hub, &connector.id).await;
        report(
            &format!("{name}: whole sync through the hub"),
            run.records_received as usize,
            started.elapsed(),
        );

        // The same 100,000 again with the cursor cleared: every record unchanged.
        sqlx::any::install_default_drivers();
        let raw_sql = sqlx::AnyPool::connect(&hub_database).await.unwrap();
        sqlx::query("DELETE FROM connector_state WHERE connector_id = $1")
            .bind(&connector.id)
            .execute(&raw_sql)
            .await
            .unwrap();
        raw_sql.close().await;
        let started = Instant::now();
        let reread = sync(&hub, &connector.id).await;
        assert_eq!(reread.records_created + reread.records_updated, 0, "{reread:?}");
        report(
            &format!("{name}: full re-read, every record unchanged"),
            reread.records_received as usize,
            started.elapsed(),
        );

        // Data key rotation over everything that sync stored (the job first waits two key
        // reload intervals, 2 s here, for replicas; that wait is left out of the figure).
        let started = Instant::now();
        hub.manager.rotate_data_key("bench").await.unwrap();
        let rotation = loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let rotation = hub.manager.keys_status().await.unwrap().rotation.unwrap();
            if rotation.status != "running" {
                break rotation;
            }
        };
        assert_eq!(rotation.status, "done", "{:?}", rotation.error);
        report(
            &format!("{name}: data key rotation (rows re-encrypted)"),
            rotation.done as usize,
            started.elapsed().saturating_sub(Duration::from_secs(2)),
        );
        hub.stop().await;
    }
}

/// Runs a sync of `connector` to its end.
async fn sync(hub: &Hub, connector: &str) -> hub::store::runs::RunRecord {
    let run = hub.manager.runs().request(connector, "bench", "bench").await.unwrap();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let run = hub.manager.db().run(&run.id).await.unwrap().unwrap();
        if run.status == "succeeded" || run.status == "failed" {
            assert_eq!(run.status, "succeeded", "{:?}", run.error);
            return run;
        }
    }
}

/// Every stored practitioner with its per-source records, in pages of [`PER_PAGE`].
async fn stored_rows(
    db: &Db,
) -> Vec<(
    Vec<hub::store::practitioners::SealedPractitioner>,
    Vec<hub::store::practitioners::SealedContribution>,
)> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = db.list_practitioners(after.as_deref(), PER_PAGE as i64).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        let ids: Vec<String> = page.iter().map(|p| p.id.clone()).collect();
        let mut tx = db.begin().await.unwrap();
        let sources = hub::store::practitioners::contributions(&mut tx, &ids).await.unwrap();
        pages.push((page, sources));
    }
    pages
}

fn report(what: &str, records: usize, took: Duration) {
    println!(
        "{what}: {records} records in {:.2} s = {:.0} records/s",
        took.as_secs_f64(),
        records as f64 / took.as_secs_f64()
    );
}
