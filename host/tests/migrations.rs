//! Migrations keep the data they convert: a PostgreSQL database written before the native
//! types (0011), the partitioned observations (0012) and TIMESTAMPTZ times (0013) reads the
//! same afterwards, as do SQLite's alerts, built again by 0027; 0028 stores every sealed column
//! uncompressed on PostgreSQL, whose connections run without JIT; 0029 groups the golden
//! records' provenance by origin on both.

#[path = "common/database.rs"]
mod database;

use hub::pipeline::golden::Provenance;
use hub::store::Db;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_written_before_the_native_types_read_the_same_after() {
    let Some(url) = database::test_postgres().await else {
        return;
    };
    // The schema as of 0010, with rows in the columns 0011, 0012 and 0013 convert.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::migrate!("../migrations/postgres")
        .run_to(10, &pool)
        .await
        .unwrap();
    for statement in [
        "INSERT INTO plugins (digest, name, version, contract, manifest, component, installed_at) \
         VALUES ('d', 'p', '1.0.0', '0.2.0', '{}', '\\x00', '2026-01-01T00:00:00.000Z')",
        "INSERT INTO connectors (id, name, plugin_digest, config, egress, credentials, enabled, concurrency, \
         max_attempts, created_at, updated_at) VALUES \
         ('on', 'on', 'd', '{}', '[]', '{}', 1, 1, 3, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'), \
         ('off', 'off', 'd', '{}', '[]', '{}', 0, 1, 3, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        "INSERT INTO observations (id, connector_id, device_id, code, value, unit, effective_at, key_version, \
         details, source_system, created_at) VALUES \
         ('o1', 'on', 'dev', '8867-4', 72, '/min', '2025-03-04T05:06:07.890Z', 1, '\\x00', 'iot', \
          '2025-03-04T05:06:08.001Z'), \
         ('o2', 'on', 'dev', '8867-4', 73, '/min', '2026-11-30T01:00:00.000Z', 1, '\\x00', 'iot', \
          '2026-11-30T01:00:00.999Z')",
        // Its MAC covers the time's text: it must read back as the same text.
        "INSERT INTO audit_log (seq, at, actor, action, target, outcome, details, mac) \
         VALUES (1, '2026-02-03T04:05:06.789Z', 'admin', 'connector.create', 'on', 'ok', '{}', '\\x00')",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let db = Db::open(&url).await.unwrap();
    let connectors = db.list_connectors(None, 10).await.unwrap();
    assert_eq!(connectors[0].created_at.to_string(), "2026-01-01T00:00:00.000Z");
    let enabled: Vec<(String, bool)> = db
        .list_connectors(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.enabled))
        .collect();
    assert_eq!(enabled, [("off".to_string(), false), ("on".to_string(), true)]);
    let times: Vec<[String; 3]> = db
        .list_observations(None, None, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|o| [o.id, o.effective_at.to_string(), o.created_at.to_string()])
        .collect();
    assert_eq!(
        times,
        [
            ["o2", "2026-11-30T01:00:00.000Z", "2026-11-30T01:00:00.999Z"].map(String::from),
            ["o1", "2025-03-04T05:06:07.890Z", "2025-03-04T05:06:08.001Z"].map(String::from),
        ]
    );
    let audit = db.audit_entries(0, 10).await.unwrap();
    assert_eq!(audit[0].entry.at.to_string(), "2026-02-03T04:05:06.789Z");
    db.close().await;
}

/// 0027 builds SQLite's `alerts` again (a connector's or a subscription's): the alerts
/// raised before read the same after, open or resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_alerts_raised_before_subscriptions_had_any_read_the_same_after() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/hub.db?mode=rwc", dir.path().display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::migrate!("../migrations/sqlite").run_to(26, &pool).await.unwrap();
    sqlx::query(
        "INSERT INTO alerts (id, connector_id, run_id, kind, message, raised_at, resolved_at) VALUES \
         ('a1', 'c1', 'r1', 'credentials', 'refused', '2026-11-01T00:00:00.000Z', '2026-11-01T01:00:00.000Z'), \
         ('a2', 'c1', NULL, 'reject-rate', '21 of 100 rejected', '2026-11-02T00:00:00.000Z', NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let db = Db::open(&url).await.unwrap();
    let alerts: Vec<_> = (db.list_alerts(None, false, None, 10).await.unwrap().into_iter())
        .map(|a| {
            let resolved = a.resolved_at.map(|at| at.to_string());
            (
                a.id,
                a.connector_id,
                a.subscription_id,
                a.run_id,
                a.kind,
                a.raised_at.to_string(),
                resolved,
            )
        })
        .collect();
    let c1 = || Some("c1".to_string());
    assert_eq!(
        alerts,
        [
            (
                "a2".into(),
                c1(),
                None,
                None,
                "reject-rate".into(),
                "2026-11-02T00:00:00.000Z".into(),
                None
            ),
            (
                "a1".into(),
                c1(),
                None,
                Some("r1".into()),
                "credentials".into(),
                "2026-11-01T00:00:00.000Z".into(),
                Some("2026-11-01T01:00:00.000Z".into())
            ),
        ]
    );
    let open = (db.list_alerts(None, true, None, 10).await.unwrap().into_iter()).map(|a| a.id);
    assert_eq!(open.collect::<Vec<_>>(), ["a2"]);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stores_every_sealed_column_without_trying_to_compress_it_and_compiles_no_statement() {
    let Some(url) = database::test_postgres().await else {
        return;
    };
    let db = Db::open(&url).await.unwrap();
    let hub::store::Backed::Postgres(pool) = db.pool() else {
        panic!("a PostgreSQL URL opens a PostgreSQL pool")
    };
    let mut columns = 0;
    for sealed in hub::store::keys::SEALED_TABLES {
        for column in sealed.columns {
            let storage: i8 = sqlx::query_scalar(
                "SELECT attstorage FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2",
            )
            .bind(sealed.table)
            .bind(column)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{}.{column}: {e}", sealed.table));
            assert_eq!(storage as u8, b'e', "{}.{column} is not stored EXTERNAL", sealed.table);
            columns += 1;
        }
    }
    assert!(columns >= 20, "every sealed column was checked: {columns}");
    // Every connection of the pool, not only the first.
    let connections: Vec<_> = futures::future::join_all((0..3).map(|_| pool.acquire())).await;
    for mut connection in connections.into_iter().map(Result::unwrap) {
        let jit: String = sqlx::query_scalar("SHOW jit")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        assert_eq!(jit, "off");
    }
    db.close().await;
}

/// A practitioner and an earlier version of them, their provenance stored one entry a field
/// as before 0029: two fields from RegNakes, one from SISDMK.
const PROVENANCE_PER_FIELD: [&str; 2] = [
    "INSERT INTO practitioners (id, key_version, gender, content_hash, source_system, source_id, provenance, \
     created_at, updated_at, version_id) VALUES ('p1', 1, 'female', $1, 'regnakes', 'r1', $2, \
     '2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', 2)",
    "INSERT INTO practitioner_versions (practitioner_id, version_id, key_version, gender, source_system, \
     source_id, provenance, created_at, updated_at) VALUES ('p1', 1, 1, 'female', 'regnakes', 'r1', $2, \
     '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
];
const PER_FIELD: &str = r#"{"full_name":{"source":"regnakes","connector_id":"c1","at":"2026-01-01"},"phone":{"source":"sisdmk","connector_id":"c2","at":"2026-01-02"},"registrations.str":{"source":"regnakes","connector_id":"c1","at":"2026-01-01"}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_stored_a_field_at_a_time_reads_grouped_by_origin_after_0029() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/hub.db?mode=rwc", dir.path().display());
    let pool = sqlx::SqlitePool::connect(&sqlite).await.unwrap();
    sqlx::migrate!("../migrations/sqlite").run_to(28, &pool).await.unwrap();
    for statement in PROVENANCE_PER_FIELD {
        let query = sqlx::query(statement).bind(vec![0u8]).bind(PER_FIELD);
        query.execute(&pool).await.unwrap();
    }
    pool.close().await;
    read_grouped_by_origin(&sqlite).await;

    let Some(postgres) = database::test_postgres().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&postgres).await.unwrap();
    sqlx::migrate!("../migrations/postgres")
        .run_to(28, &pool)
        .await
        .unwrap();
    for statement in PROVENANCE_PER_FIELD {
        let query = sqlx::query(statement).bind(vec![0u8]).bind(PER_FIELD);
        query.execute(&pool).await.unwrap();
    }
    pool.close().await;
    read_grouped_by_origin(&postgres).await;
}

async fn read_grouped_by_origin(url: &str) {
    let db = Db::open(url).await.unwrap();
    let current = db.practitioners_by_id(&["p1".to_string()]).await.unwrap();
    let earlier = db.practitioner_versions("p1", None, 10).await.unwrap();
    let stored = [&current[0].provenance, &earlier[0].provenance];
    for provenance in stored {
        let provenance: Provenance = serde_json::from_str(provenance.as_deref().unwrap()).unwrap();
        let origins: Vec<(String, String, String, Vec<String>)> = (provenance.into_origins().into_iter())
            .map(|o| (o.source, o.connector_id, o.at, o.fields))
            .collect();
        let origin = |system: &str, connector: &str, at: &str, fields: &[&str]| {
            let fields = fields.iter().map(|f| f.to_string()).collect();
            (system.into(), connector.into(), at.into(), fields)
        };
        assert_eq!(
            origins,
            [
                origin("regnakes", "c1", "2026-01-01", &["full_name", "registrations.str"]),
                origin("sisdmk", "c2", "2026-01-02", &["phone"]),
            ],
            "{url}"
        );
    }
    db.close().await;
}
