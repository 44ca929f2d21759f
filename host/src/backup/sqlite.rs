//! SQLite: `VACUUM INTO` copies the database in one read transaction (consistent; writers go
//! on in WAL mode); a restore copies the file into an empty data directory.

use super::{BackupError, io};
use crate::store::Db;
use std::path::Path;

const DATABASE: &str = "hub.db";

pub(super) async fn dump(db: &Db, path: &Path) -> Result<(), BackupError> {
    let text = path
        .to_str()
        .ok_or_else(|| BackupError::Config(format!("the backup path {} is not UTF-8", path.display())))?;
    // A partial file left by a crash would make VACUUM INTO fail.
    let _ = std::fs::remove_file(path);
    // The path comes from the config, quoted as an SQL string literal; no input reaches it.
    let statement = format!("VACUUM INTO '{}'", text.replace('\'', "''"));
    crate::store::on!(db.pool(), pool => {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(pool)
            .await
            .map_err(crate::store::StoreError::from)?;
    });
    Ok(())
}

pub(super) async fn restore(backup: &Path, data_dir: &Path) -> Result<(), BackupError> {
    let target = data_dir.join(DATABASE);
    for existing in [DATABASE, "hub.db-wal"] {
        if data_dir.join(existing).exists() {
            return Err(BackupError::NotEmpty(target.display().to_string()));
        }
    }
    std::fs::create_dir_all(data_dir).map_err(io(format!("creating {}", data_dir.display())))?;
    let mut options = std::fs::OpenOptions::new();
    // create_new: a hub starting at the same moment cannot have its new database replaced.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let what = format!("copying {} to {}", backup.display(), target.display());
    let mut to = options.open(&target).map_err(io(what.clone()))?;
    let mut from = std::fs::File::open(backup).map_err(io(what.clone()))?;
    std::io::copy(&mut from, &mut to)
        .and_then(|_| to.sync_all())
        .map_err(io(what))?;
    Ok(())
}

/// Removes a restored database that turned out unusable.
pub(super) fn remove(data_dir: &Path) {
    for file in [DATABASE, "hub.db-wal", "hub.db-shm"] {
        let _ = std::fs::remove_file(data_dir.join(file));
    }
}
