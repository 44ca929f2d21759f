//! Backups: `hub backup`, the `[backup]` schedule, retention, and `hub restore`.
//!
//! A backup is one file taken while the hub serves — SQLite through `VACUUM INTO` (a
//! transactionally consistent copy, readers and writers go on), PostgreSQL through
//! `pg_dump --format=custom` (one snapshot) — with a manifest beside it (`<file>.json`: size,
//! SHA-256, schema version, which key-encryption key it needs). It holds what the database
//! holds: identifying fields sealed under data keys that are themselves wrapped by the
//! key-encryption key, which is *not* in the backup (docs/backups.md says where it is and
//! that it must be backed up separately).
//!
//! Each backup is recorded in the `backups` table (a scheduled one is claimed by its fire
//! time, so several hubs on one database take it once) and in the audit log, as is each
//! deletion by retention and each restore.

mod postgres;
mod sqlite;

use crate::audit::{Auditor, Event, Outcome};
use crate::config::HubConfig;
use crate::crypto::KekKind;
use crate::store::backups::FinishedBackup;
use crate::store::{Backend, Db, StoreError};
use crate::triggers::cron::{Schedule, ScheduleError};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the schedule is looked at. A daily backup can start up to this late.
const SCHEDULE_TICK: Duration = Duration::from_secs(5);

/// File names: `hub-<UTC time with milliseconds>.<sqlite|pgdump>`; retention reads the time
/// from the name, not the file's mtime, so copying backups around does not change their age.
const NAME_PREFIX: &str = "hub-";
const NAME_TIME: &str = "%Y%m%dT%H%M%S%.3fZ";
const MANIFEST_SUFFIX: &str = ".json";
const PARTIAL_SUFFIX: &str = ".partial";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("[backup] {0}")]
    Config(String),
    #[error("[backup] schedule: {0}")]
    Schedule(#[from] ScheduleError),
    #[error(
        "{tool} is not installed: install the PostgreSQL client tools of the server's major version (Debian: apt-get install postgresql-client)"
    )]
    ToolMissing { tool: &'static str },
    #[error("{tool} failed: {detail}")]
    Tool { tool: &'static str, detail: String },
    #[error(
        "{file} is not a hub backup manifest ({problem}); restore from a file `hub backup` wrote, with its .json beside it"
    )]
    Manifest { file: String, problem: String },
    #[error(
        "{file} does not match its manifest: SHA-256 {actual}, expected {expected}; the file is damaged or was changed, restore another backup"
    )]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{found} is a {backup} backup; restore it into a {backup} database (set --database-url for PostgreSQL, leave it unset for SQLite)"
    )]
    WrongBackend { found: String, backup: &'static str },
    #[error(
        "{0} already holds data; restore only into an empty data directory or an empty database, so live data is never overwritten"
    )]
    NotEmpty(String),
    #[error(
        "{0} does not exist: put the master.key that was in use when the backup was taken there first (it is not in the backup)"
    )]
    NoMasterKey(PathBuf),
    #[error(
        "the key-encryption key does not open this backup's data keys ({0}); use the master.key (or transit key) that was in use when the backup was taken"
    )]
    Keys(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

/// `[backup]`: scheduled backups and how long they are kept.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Take backups on `schedule` while the hub runs (`hub backup` works either way).
    pub enabled: bool,
    /// Where backups are written; `<data_dir>/backups` when unset. Another disk is better.
    pub dir: Option<PathBuf>,
    /// When to take one: a cron expression (docs/triggers.md), daily at 02:00 by default.
    pub schedule: String,
    /// The IANA time zone `schedule` is read in.
    pub timezone: String,
    /// Backups older than this many days are deleted after each new backup.
    pub keep_days: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            dir: None,
            schedule: "0 2 * * *".into(),
            timezone: crate::triggers::cron::DEFAULT_TIMEZONE.into(),
            keep_days: 30,
        }
    }
}

impl BackupConfig {
    /// The backup directory for a hub whose data directory is `data_dir`.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("backups"))
    }

    /// The parsed schedule, checked with the rest of the section.
    pub fn checked_schedule(&self) -> Result<Schedule, BackupError> {
        if self.keep_days == 0 {
            return Err(BackupError::Config(
                "keep_days = 0 would delete every backup: keep at least 1 day (30 by default)".into(),
            ));
        }
        Ok(Schedule::parse(&self.schedule, &self.timezone)?)
    }
}

/// What `<backup>.json` says about a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The backup's row in `backups`.
    pub id: String,
    /// The backup file's name (beside this manifest).
    pub file: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub created_at: String,
    pub bytes: u64,
    pub sha256: String,
    pub duration_ms: u64,
    /// The last database migration applied; `hub restore` brings it up to this hub's.
    pub schema_version: i64,
    pub hub_version: String,
    /// What must be at hand to read it: `local` (the master.key file) or `transit`.
    pub kek: String,
}

/// Who asked for a backup.
pub enum Trigger<'a> {
    /// `hub backup`, by `actor`.
    Manual { actor: &'a str },
    /// The `[backup]` schedule's fire time (RFC 3339).
    Scheduled { fire_key: String },
}

/// Takes backups of one hub's database into one directory and applies retention.
pub struct Backups {
    db: Db,
    audit: Auditor,
    database_url: String,
    dir: PathBuf,
    keep_days: u32,
    kek: KekKind,
}

impl Backups {
    pub fn new(db: Db, audit: Auditor, config: &HubConfig) -> Result<Self, BackupError> {
        config.backup.checked_schedule()?;
        Ok(Self {
            db,
            audit,
            database_url: config.database_url(),
            dir: config.backup.dir(&config.data_dir),
            keep_days: config.backup.keep_days,
            kek: config.keys.kek,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes one backup now, then deletes those older than `keep_days`. `None` when the
    /// scheduled fire time was already taken by another hub.
    pub async fn take(&self, trigger: Trigger<'_>) -> Result<Option<Manifest>, BackupError> {
        let id = uuid::Uuid::now_v7().to_string();
        let (actor, fire_key) = match &trigger {
            Trigger::Manual { actor } => (*actor, None),
            Trigger::Scheduled { fire_key } => ("scheduler", Some(fire_key.as_str())),
        };
        if !self.db.claim_backup(&id, fire_key).await? {
            return Ok(None);
        }
        tracing::info!(backup = %id, dir = %self.dir.display(), "backup started");
        let result = self.write(&id).await;
        let error_text = result.as_ref().err().map(ToString::to_string);
        let written = result.as_ref().ok();
        let finished = FinishedBackup {
            id: &id,
            file: written.map(|m| m.file.as_str()),
            bytes: written.map(|m| m.bytes as i64),
            sha256: written.map(|m| m.sha256.as_str()),
            error: error_text.as_deref(),
        };
        self.db.finish_backup(&finished).await?;
        let manifest = match result {
            Ok(manifest) => manifest,
            Err(error) => {
                tracing::error!(backup = %id, %error, "backup failed");
                let event = Event::new(actor, "backup.created", &id)
                    .outcome(Outcome::Failure)
                    .details(serde_json::json!({ "error": error.to_string() }));
                self.audit.record(event).await;
                return Err(error);
            }
        };
        tracing::info!(
            file = %manifest.file, bytes = manifest.bytes, sha256 = %manifest.sha256,
            duration_ms = manifest.duration_ms, "backup written"
        );
        let event = Event::new(actor, "backup.created", &manifest.file).details(serde_json::json!({
            "backup": id,
            "bytes": manifest.bytes,
            "sha256": manifest.sha256,
            "duration_ms": manifest.duration_ms,
            "backend": manifest.backend,
        }));
        self.audit.record(event).await;
        let deleted = self.prune(Utc::now()).await?;
        if !deleted.is_empty() {
            tracing::info!(count = deleted.len(), keep_days = self.keep_days, "old backups deleted");
            let event = Event::new(actor, "backup.deleted", self.dir.display().to_string())
                .details(serde_json::json!({ "files": deleted, "keep_days": self.keep_days }));
            self.audit.record(event).await;
        }
        Ok(Some(manifest))
    }

    /// Writes the backup file under a temporary name, hashes it, then renames it and writes
    /// its manifest, so a file with a manifest is always whole.
    async fn write(&self, id: &str) -> Result<Manifest, BackupError> {
        let started = Instant::now();
        let created_at = Utc::now();
        create_private_dir(&self.dir)?;
        let backend = self.db.backend();
        let file = format!("{NAME_PREFIX}{}.{}", created_at.format(NAME_TIME), extension(backend));
        let path = self.dir.join(&file);
        let partial = self.dir.join(format!("{file}{PARTIAL_SUFFIX}"));
        let dumped = match backend {
            Backend::Sqlite => sqlite::dump(&self.db, &partial).await,
            Backend::Postgres => postgres::dump(&self.database_url, &partial).await,
        };
        let hashed = match dumped.and_then(|()| make_private(&partial)) {
            Ok(()) => hash_file(partial.clone()).await,
            Err(error) => Err(error),
        };
        let (bytes, sha256) = match hashed {
            Ok(hashed) => hashed,
            Err(error) => {
                let _ = std::fs::remove_file(&partial);
                return Err(error);
            }
        };
        std::fs::rename(&partial, &path).map_err(io(format!("naming {}", path.display())))?;
        let manifest = Manifest {
            id: id.to_string(),
            file,
            backend: backend_name(backend).into(),
            created_at: crate::store::Timestamp::from(created_at).to_string(),
            bytes,
            sha256,
            duration_ms: started.elapsed().as_millis() as u64,
            schema_version: self.db.schema_version().await?,
            hub_version: env!("CARGO_PKG_VERSION").into(),
            kek: match self.kek {
                KekKind::Local => "local",
                KekKind::Transit => "transit",
            }
            .into(),
        };
        write_manifest(&path, &manifest)?;
        Ok(manifest)
    }

    /// Deletes the backups (and manifests) whose time, read from their names, is more than
    /// `keep_days` before `now`; returns their names. Other files are left alone.
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<Vec<String>, BackupError> {
        let cutoff = now - chrono::Duration::days(i64::from(self.keep_days));
        let mut deleted = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(deleted),
            Err(error) => return Err(io(format!("listing {}", self.dir.display()))(error)),
        };
        for entry in entries {
            let entry = entry.map_err(io(format!("listing {}", self.dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(taken) = backup_time(&name) else { continue };
            if taken < cutoff {
                std::fs::remove_file(entry.path()).map_err(io(format!("deleting {}", entry.path().display())))?;
                let manifest = self.dir.join(format!("{name}{MANIFEST_SUFFIX}"));
                match std::fs::remove_file(&manifest) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => return Err(io(format!("deleting {}", manifest.display()))(error)),
                }
                deleted.push(name);
            }
        }
        deleted.sort();
        Ok(deleted)
    }

    /// Takes the scheduled backups until the hub stops. The first is the first fire time
    /// after the hub started (or after the last one any hub on this database took).
    pub fn run_schedule(self: Arc<Self>, schedule: Schedule) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let started = Utc::now();
            loop {
                if let Err(error) = self.take_due(&schedule, started, Utc::now()).await {
                    tracing::error!(%error, "scheduled backup failed");
                }
                tokio::time::sleep(SCHEDULE_TICK).await;
            }
        })
    }

    async fn take_due(
        &self,
        schedule: &Schedule,
        started: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Manifest>, BackupError> {
        let since = match self.db.last_backup_fire().await? {
            Some(fired) => fired.parse().unwrap_or(started).max(started),
            None => started,
        };
        let Some(due) = schedule.latest_due(since, now) else {
            return Ok(None);
        };
        self.take(Trigger::Scheduled {
            fire_key: crate::store::Timestamp::from(due).to_string(),
        })
        .await
    }
}

/// The time in a backup file's name; `None` for any other file (manifests, partial files,
/// whatever else is in the directory).
fn backup_time(name: &str) -> Option<DateTime<Utc>> {
    let stem = name.strip_prefix(NAME_PREFIX)?;
    let stem = [Backend::Sqlite, Backend::Postgres]
        .into_iter()
        .find_map(|backend| stem.strip_suffix(&format!(".{}", extension(backend))))?;
    NaiveDateTime::parse_from_str(stem, NAME_TIME).ok().map(|t| t.and_utc())
}

fn extension(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "pgdump",
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

fn create_private_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating the backup directory {}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("restricting {} to the hub's user", dir.display())))?;
    }
    Ok(())
}

/// Backups hold ciphertext only, but still only the hub's user reads them.
fn make_private(path: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io(format!("restricting {} to the hub's user", path.display())))?;
    }
    Ok(())
}

/// Size and SHA-256 (hex) of a file, read off the async threads.
async fn hash_file(path: PathBuf) -> Result<(u64, String), BackupError> {
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let what = format!("reading {}", path.display());
        let mut file = std::fs::File::open(&path).map_err(io(what.clone()))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = file.read(&mut buffer).map_err(io(what.clone()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            bytes += n as u64;
        }
        Ok((bytes, hex::encode(hasher.finalize())))
    })
    .await
    .expect("hashing does not panic")
}

fn manifest_path(backup: &Path) -> PathBuf {
    let mut name = backup.as_os_str().to_owned();
    name.push(MANIFEST_SUFFIX);
    PathBuf::from(name)
}

fn write_manifest(backup: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let path = manifest_path(backup);
    let partial = PathBuf::from(format!("{}{PARTIAL_SUFFIX}", path.display()));
    let json = serde_json::to_vec_pretty(manifest).expect("manifests serialize");
    std::fs::write(&partial, json).map_err(io(format!("writing {}", partial.display())))?;
    make_private(&partial)?;
    std::fs::rename(&partial, &path).map_err(io(format!("naming {}", path.display())))
}

fn read_manifest(backup: &Path) -> Result<Manifest, BackupError> {
    let path = manifest_path(backup);
    let problem = |problem: String| BackupError::Manifest {
        file: path.display().to_string(),
        problem,
    };
    let text = std::fs::read(&path).map_err(|e| problem(format!("cannot read it: {e}")))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| problem(e.to_string()))?;
    let named = backup.file_name().map(|n| n.to_string_lossy().into_owned());
    if named.as_deref() != Some(manifest.file.as_str()) {
        return Err(problem(format!("it describes {}", manifest.file)));
    }
    Ok(manifest)
}

/// Brings the backup at `backup` into the empty database `config` names (its data directory's
/// SQLite file, or `database_url`), after checking it against its manifest; then opens it
/// with the configured key-encryption key and records the restore in its audit log. Refuses
/// a database that holds data.
pub async fn restore(backup: &Path, config: &HubConfig) -> Result<Manifest, BackupError> {
    let manifest = read_manifest(backup)?;
    let (bytes, sha256) = hash_file(backup.to_path_buf()).await?;
    if sha256 != manifest.sha256 || bytes != manifest.bytes {
        return Err(BackupError::Checksum {
            file: backup.display().to_string(),
            expected: manifest.sha256.clone(),
            actual: sha256,
        });
    }
    let master_key = config.data_dir.join("master.key");
    if config.keys.kek == KekKind::Local && !master_key.exists() {
        return Err(BackupError::NoMasterKey(master_key));
    }
    let wanted = match config.database_url {
        None => Backend::Sqlite,
        Some(_) => Backend::Postgres,
    };
    if manifest.backend != backend_name(wanted) {
        return Err(BackupError::WrongBackend {
            found: manifest.file.clone(),
            backup: if wanted == Backend::Sqlite {
                "postgres"
            } else {
                "sqlite"
            },
        });
    }
    let url = config.database_url();
    match wanted {
        Backend::Sqlite => sqlite::restore(backup, &config.data_dir).await?,
        Backend::Postgres => postgres::restore(backup, &url).await?,
    }
    let opened = open_restored(&url, config, &manifest).await;
    if opened.is_err() && wanted == Backend::Sqlite {
        // Nothing half-restored is left behind: the directory is as empty as it was.
        sqlite::remove(&config.data_dir);
    }
    opened?;
    Ok(manifest)
}

/// Opens a restored database (applying newer migrations), checks the key-encryption key
/// unwraps its keys, marks its own backup row finished (the copy was taken while it was
/// running) and records the restore.
async fn open_restored(url: &str, config: &HubConfig, manifest: &Manifest) -> Result<(), BackupError> {
    let db = Db::open(url).await?;
    let result = async {
        let vault = crate::connect_vault(config)
            .await
            .map_err(|e| BackupError::Keys(e.to_string()))?;
        let kek = crate::key_encryption_key(config, vault.as_ref()).map_err(|e| BackupError::Keys(e.to_string()))?;
        let keys = crate::crypto::KeyRing::load_or_init(db.clone(), kek)
            .await
            .map_err(|e| BackupError::Keys(e.to_string()))?;
        db.finish_backup(&FinishedBackup {
            id: &manifest.id,
            file: Some(&manifest.file),
            bytes: Some(manifest.bytes as i64),
            sha256: Some(&manifest.sha256),
            error: None,
        })
        .await?;
        let event = Event::new("cli", "backup.restored", &manifest.file).details(serde_json::json!({
            "backup": manifest.id,
            "created_at": manifest.created_at,
            "sha256": manifest.sha256,
            "schema_version": manifest.schema_version,
        }));
        Auditor::new(db.clone(), keys.audit).record(event).await;
        Ok(())
    }
    .await;
    db.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_backup_file_names_carry_a_time() {
        assert_eq!(
            backup_time("hub-20261130T073100.123Z.sqlite"),
            Some("2026-11-30T07:31:00.123Z".parse().unwrap())
        );
        assert!(backup_time("hub-20261130T073100.123Z.pgdump").is_some());
        for other in [
            "hub-20261130T073100.123Z.sqlite.json",
            "hub-20261130T073100.123Z.sqlite.partial",
            "hub-yesterday.sqlite",
            "notes.txt",
            "hub.db",
        ] {
            assert_eq!(backup_time(other), None, "{other}");
        }
    }

    /// docs/backups.md lists every `[backup]` setting with its default.
    #[test]
    fn the_backup_reference_matches_the_code() {
        crate::config::assert_settings_documented(
            "docs/backups.md",
            include_str!("../../../docs/backups.md"),
            &[serde_json::to_value(BackupConfig::default()).unwrap()],
        );
    }

    #[test]
    fn keeping_zero_days_is_refused() {
        let config = BackupConfig {
            keep_days: 0,
            ..Default::default()
        };
        assert!(matches!(config.checked_schedule(), Err(BackupError::Config(_))));
        assert!(BackupConfig::default().checked_schedule().is_ok());
    }
}
