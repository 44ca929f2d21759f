//! Observations at IoT scale: retention on both engines, and on PostgreSQL the monthly
//! partitions they are stored in.

#[path = "common/database.rs"]
mod database;

use chrono::{DateTime, TimeZone, Utc};
use hub::observations::{ObservationsConfig, maintain};
use hub::store::observations::{ObservationRecord, insert};
use hub::store::{Backend, Db};

/// SQLite, and PostgreSQL (a fresh database) when `HUB_TEST_DATABASE_URL` is set, as it must
/// be in CI.
async fn databases(dir: &std::path::Path) -> Vec<Db> {
    let sqlite = Db::open(&format!("sqlite://{}/hub.db?mode=rwc", dir.display()))
        .await
        .unwrap();
    let mut databases = vec![sqlite];
    if let Some(url) = database::test_postgres().await {
        databases.push(Db::open(&url).await.unwrap());
    }
    databases
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 8, 30, 0).unwrap()
}

fn observation(effective_at: DateTime<Utc>) -> ObservationRecord {
    ObservationRecord {
        id: uuid::Uuid::now_v7().to_string(),
        connector_id: "sensors".into(),
        device_id: "ward-3-monitor".into(),
        code: "8867-4".into(),
        value: Some(72.0),
        unit: Some("/min".into()),
        effective_at: effective_at.into(),
        key_version: 1,
        details: vec![0; 32],
        subject_key: None,
        source_system: "iot".into(),
        created_at: hub::store::Timestamp::now(),
    }
}

async fn store(db: &Db, rows: &[ObservationRecord]) -> u64 {
    let mut tx = db.begin().await.unwrap();
    let inserted = insert(&mut tx, rows).await.unwrap();
    tx.commit().await.unwrap();
    inserted
}

async fn stored_times(db: &Db) -> Vec<String> {
    let mut times: Vec<String> = db
        .list_observations(None, None, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.effective_at.to_string())
        .collect();
    times.sort();
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observations_older_than_the_retention_are_deleted_and_newer_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()).await {
        let now = at(2026, 6, 15);
        // March gets its partition (on PostgreSQL), as if the hub had run then; May has none,
        // so its rows land in the default partition.
        db.prepare_observation_partitions(at(2026, 3, 1), 0).await.unwrap();
        let created = db.prepare_observation_partitions(now, 2).await.unwrap();
        if db.backend() == Backend::Postgres {
            assert_eq!(
                created,
                ["observations_2026_06", "observations_2026_07", "observations_2026_08"]
            );
        }
        let old = [at(2025, 1, 10), at(2026, 3, 5), at(2026, 5, 1)];
        let kept = [at(2026, 5, 20), at(2026, 6, 10), at(2026, 6, 20)];
        let rows: Vec<_> = old.iter().chain(&kept).map(|t| observation(*t)).collect();
        assert_eq!(store(&db, &rows).await, 6);
        // The same device, code and time again stores nothing twice, in any partition.
        let again: Vec<_> = old.iter().chain(&kept).map(|t| observation(*t)).collect();
        assert_eq!(store(&db, &again).await, 0, "{:?}", db.backend());

        let config = ObservationsConfig { retention_days: 30 };
        let done = maintain(&db, &config, now).await.unwrap();
        assert_eq!(done.deleted, 3, "{:?}", db.backend());
        assert!(done.partitions_created.is_empty());
        let expected: Vec<String> = kept
            .iter()
            .map(|t| hub::store::Timestamp::from(*t).to_string())
            .collect();
        assert_eq!(stored_times(&db).await, expected, "{:?}", db.backend());
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_retention_every_observation_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()).await {
        let times = [at(2019, 2, 1), at(2026, 6, 1)];
        let rows: Vec<_> = times.iter().map(|t| observation(*t)).collect();
        assert_eq!(store(&db, &rows).await, 2);
        let done = maintain(&db, &ObservationsConfig::default(), at(2026, 6, 15))
            .await
            .unwrap();
        assert_eq!(done.deleted, 0);
        assert_eq!(stored_times(&db).await.len(), 2, "{:?}", db.backend());
        db.close().await;
    }
}
