//! Backups: taken while the hub syncs, they hold ciphertext only, come back whole into an
//! empty data directory or database, read only with the key-encryption key that was in use,
//! never overwrite live data, and are kept for `keep_days`.

use hub::backup::{BackupError, Manifest, Trigger};
use hub_e2e::{Backend, TestHub, backends, fresh_postgres, regnakes, test_config};
use hub_sim::needles::Needles;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_a_sync_restores_whole_and_reads_only_with_its_master_key() {
    for backend in backends() {
        backup_during_sync(backend).await;
    }
}

async fn backup_during_sync(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let (registry, server) = regnakes(hub_sim::RegnakesConfig {
        people: 3_000,
        ..Default::default()
    })
    .await;
    // Slow pages keep the sync running while the backup is taken.
    registry.set_faults(hub_sim::Faults {
        latency_ms: 60,
        ..Default::default()
    });
    let id = hub
        .regnakes_connector("regnakes", &server.base_url(), registry.config())
        .await;
    let db = hub.hub.manager.db();
    let run = hub.hub.manager.runs().request(&id, "test", "test").await.unwrap();
    let mut stored_before = 0;
    for _ in 0..600 {
        stored_before = db.count_practitioners().await.unwrap();
        if stored_before > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stored_before > 0,
        "{backend:?}: the sync stored people before the backup"
    );
    let manifest = take(&hub).await;
    let run = hub.wait_for_run(&run.id).await;
    assert_eq!(run["status"], "succeeded", "{backend:?}: {run}");
    let stored_after = db.count_practitioners().await.unwrap();
    assert!(stored_after > 0);

    let file = hub.hub.backups.dir().join(&manifest.file);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), manifest.bytes);
    // A sample of the people stored (the scan is linear in needles times bytes).
    let stored = registry.valid_people();
    Needles::people(&stored[..500]).assert_absent(&format!("{backend:?} backup"), &readable(&file, backend));

    // Into a fresh place, with the master key that was in use.
    let (config, data_dir) = fresh_place(backend, &hub).await;
    let restored = hub::backup::restore(&file, &config).await.unwrap();
    assert_eq!(restored, manifest);
    // Counted before a hub starts on it: that hub resumes the sync the backup caught running.
    let restored_db = hub::store::Db::open(&config.database_url()).await.unwrap();
    let count = restored_db.count_practitioners().await.unwrap();
    restored_db.close().await;
    let again = TestHub::start_on(backend, config, data_dir).await;
    let people: HashMap<String, String> = registry
        .all_people()
        .into_iter()
        .map(|p| (p.nik, p.full_name))
        .collect();
    let listed = again.all_pages("/api/v1/practitioners").await;
    assert!(listed.len() as i64 >= count);
    assert!(
        stored_before <= count && count <= stored_after,
        "{backend:?}: the backup holds {count} people, taken between {stored_before} and {stored_after}"
    );
    for practitioner in &listed {
        let nik = practitioner["nik"].as_str().expect("NIK readable");
        assert_eq!(
            Some(&practitioner["full_name"]),
            people.get(nik).map(|n| Value::from(n.as_str())).as_ref(),
            "{backend:?}: the restored practitioner decrypts to the registry's person"
        );
    }
    // One snapshot: the audit chain (appended to by the sync throughout) is whole, and the
    // restore is on it.
    let audit = again.hub.manager.audit();
    assert!(audit.verify().await.unwrap() > 0, "{backend:?}");
    let entries = audited(&again, "backup.restored").await;
    assert_eq!(entries.len(), 1, "{backend:?}: {entries:?}");
    assert_eq!(entries[0]["target"], manifest.file.as_str());
    again.hub.stop().await;

    // Without that master key: refused, and nothing is left behind to start on.
    let (config, data_dir) = fresh_place(backend, &hub).await;
    std::fs::write(config.data_dir.join("master.key"), [9u8; 32]).unwrap();
    let error = hub::backup::restore(&file, &config).await.unwrap_err();
    assert!(matches!(error, BackupError::Keys(_)), "{backend:?}: {error}");
    assert!(error.to_string().contains("master.key"), "{error}");
    match backend {
        Backend::Sqlite => assert!(
            !config.data_dir.join("hub.db").exists(),
            "the failed restore left a database"
        ),
        Backend::Postgres => {
            let error = hub::Hub::start(config)
                .await
                .err()
                .expect("a hub does not start on data it cannot read");
            assert!(error.to_string().contains("could not be unwrapped"), "{error}");
        }
    }
    drop(data_dir);
    hub.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_live_data_a_damaged_file_and_the_other_backends_backup() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let manifest = take(&hub).await;
        let file = hub.hub.backups.dir().join(&manifest.file);

        // Into the live hub's own data directory or database.
        let error = hub::backup::restore(&file, &hub.config).await.unwrap_err();
        assert!(matches!(error, BackupError::NotEmpty(_)), "{backend:?}: {error}");
        assert!(error.to_string().contains("already holds data"), "{error}");
        assert_eq!(
            hub.get("/api/v1/connectors").await["items"].as_array().unwrap().len(),
            0
        );

        // One changed byte.
        let damaged_dir = tempfile::tempdir().unwrap();
        let damaged = damaged_dir.path().join(&manifest.file);
        let mut bytes = std::fs::read(&file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(&damaged, bytes).unwrap();
        std::fs::copy(manifest_of(&file), manifest_of(&damaged)).unwrap();
        let (config, _data_dir) = fresh_place(backend, &hub).await;
        let error = hub::backup::restore(&damaged, &config).await.unwrap_err();
        assert!(matches!(error, BackupError::Checksum { .. }), "{backend:?}: {error}");

        // No manifest beside it.
        std::fs::remove_file(manifest_of(&damaged)).unwrap();
        let error = hub::backup::restore(&damaged, &config).await.unwrap_err();
        assert!(matches!(error, BackupError::Manifest { .. }), "{backend:?}: {error}");

        // A SQLite backup into PostgreSQL, or the other way round.
        let other = match backend {
            Backend::Sqlite if backends().contains(&Backend::Postgres) => Some(Some(fresh_postgres().await)),
            Backend::Postgres => Some(None),
            Backend::Sqlite => None,
        };
        if let Some(database_url) = other {
            let mut config = config.clone();
            config.database_url = database_url;
            let error = hub::backup::restore(&file, &config).await.unwrap_err();
            assert!(
                matches!(error, BackupError::WrongBackend { .. }),
                "{backend:?}: {error}"
            );
        }
        hub.hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_exactly_the_backups_older_than_keep_days_and_audits_it() {
    let hub = TestHub::start_with(Backend::Sqlite, |config| config.backup.keep_days = 30).await;
    let dir = hub.hub.backups.dir().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    let now = chrono::Utc::now();
    let name = |age: chrono::Duration, ext: &str| format!("hub-{}.{ext}", (now - age).format("%Y%m%dT%H%M%S%.3fZ"));
    let days = chrono::Duration::days;
    let old = [
        name(days(31), "sqlite"),
        name(days(45), "pgdump"),
        name(days(400), "sqlite"),
    ];
    let kept = [
        name(days(30) - chrono::Duration::hours(1), "sqlite"),
        name(days(1), "pgdump"),
        "notes.txt".to_string(),
        format!("{}.partial", name(days(40), "sqlite")),
    ];
    for file in old.iter().chain(&kept) {
        std::fs::write(dir.join(file), b"x").unwrap();
    }
    for file in old.iter().chain(&kept[..2]) {
        std::fs::write(dir.join(format!("{file}.json")), b"{}").unwrap();
    }

    let manifest = take(&hub).await;

    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected: Vec<String> = kept
        .iter()
        .cloned()
        .chain(kept[..2].iter().map(|f| format!("{f}.json")))
        .chain([manifest.file.clone(), format!("{}.json", manifest.file)])
        .collect();
    expected.sort();
    assert_eq!(left, expected);

    let audit = audited(&hub, "backup.deleted").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    let mut deleted = old.to_vec();
    deleted.sort();
    assert_eq!(audit[0]["details"]["files"], serde_json::json!(deleted));
    let created = audited(&hub, "backup.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["details"]["sha256"], manifest.sha256.as_str());
    assert_eq!(created[0]["details"]["bytes"], manifest.bytes);
    hub.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_are_taken_once_per_fire_time_by_every_hub_on_the_database() {
    for backend in backends() {
        let hub = TestHub::start_with(backend, |config| {
            config.backup.enabled = true;
            config.backup.schedule = "*/3 * * * * *".into();
        })
        .await;
        // On PostgreSQL a second replica with its own backup directory races for each fire.
        let replica = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(hub.start_replica().await),
        };
        let mut dirs = vec![hub.hub.backups.dir().to_path_buf()];
        dirs.extend(replica.iter().map(|(r, _)| r.backups.dir().to_path_buf()));
        let mut files = Vec::new();
        for _ in 0..300 {
            files = backup_files(&dirs);
            if files.len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            files.len() >= 2,
            "{backend:?}: two scheduled backups within 30 s: {files:?}"
        );
        // The replica's directory (and the backups it took) stays until they are counted.
        let mut replica_dir = None;
        if let Some((replica, dir)) = replica {
            replica.stop().await;
            replica_dir = Some(dir);
        }
        hub.hub.stop().await;
        let db = hub_e2e::raw_pool(&hub.config.database_url()).await;
        let rows: Vec<(Option<String>, String)> =
            sqlx::query_as::<_, (Option<String>, String)>("SELECT fire_key, status FROM backups ORDER BY fire_key")
                .fetch_all(&db)
                .await
                .unwrap();
        db.close().await;
        let files = backup_files(&dirs);
        assert!(rows.iter().all(|(fire, _)| fire.is_some()), "{rows:?}");
        // The hubs stopped wherever they were: a backup may be cut short (running, its file
        // not yet named), never taken twice.
        let succeeded = rows.iter().filter(|(_, s)| s == "succeeded").count();
        let running = rows.iter().filter(|(_, s)| s == "running").count();
        assert_eq!(succeeded + running, rows.len(), "{backend:?}: {rows:?}");
        assert!(
            succeeded <= files.len() && files.len() <= succeeded + running,
            "{backend:?}: one file per fire time: {rows:?} {files:?}"
        );
        drop(replica_dir);
    }
}

/// The audit entries of `action`.
async fn audited(hub: &TestHub, action: &str) -> Vec<Value> {
    let entries = hub.all_pages("/api/v1/audit").await;
    entries.into_iter().filter(|e| e["action"] == action).collect()
}

/// A backup by hand, through the running hub.
async fn take(hub: &TestHub) -> Manifest {
    hub.hub
        .backups
        .take(Trigger::Manual { actor: "test" })
        .await
        .expect("backup taken")
        .expect("a manual backup is never claimed elsewhere")
}

/// An empty data directory holding the first hub's master key, and for PostgreSQL an empty
/// database.
async fn fresh_place(backend: Backend, hub: &TestHub) -> (hub::config::HubConfig, tempfile::TempDir) {
    let dir = hub.data_dir_sharing_keys();
    let database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_postgres().await),
    };
    (test_config(dir.path(), database_url), dir)
}

/// The backup's bytes as a reader would see them: the SQLite file, or the custom-format
/// dump (compressed) turned back into SQL text.
fn readable(file: &Path, backend: Backend) -> Vec<u8> {
    match backend {
        Backend::Sqlite => std::fs::read(file).unwrap(),
        Backend::Postgres => {
            let output = std::process::Command::new("pg_restore")
                .arg("--file=-")
                .arg(file)
                .output()
                .expect("pg_restore runs");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            assert!(output.stdout.len() > 10_000);
            output.stdout
        }
    }
}

fn manifest_of(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.json", file.display()))
}

/// Backup files (not manifests) in `dirs`.
fn backup_files(dirs: &[PathBuf]) -> Vec<String> {
    dirs.iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sqlite") || name.ends_with(".pgdump"))
        .collect()
}
