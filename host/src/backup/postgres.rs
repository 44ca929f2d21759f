//! PostgreSQL: `pg_dump --format=custom` (one snapshot; the hub goes on serving) and
//! `pg_restore` into an empty database. For point-in-time recovery, use WAL archiving
//! alongside (docs/backups.md).

use super::BackupError;
use std::path::Path;
use tokio::process::Command;

pub(super) async fn dump(url: &str, path: &Path) -> Result<(), BackupError> {
    let mut command = Command::new("pg_dump");
    command.args(["--format=custom", "--no-password", "--file"]).arg(path);
    run("pg_dump", command, url).await
}

pub(super) async fn restore(backup: &Path, url: &str) -> Result<(), BackupError> {
    refuse_unless_empty(url).await?;
    let mut command = Command::new("pg_restore");
    // No owner or grants: the restoring role owns what it restores, whatever role took it.
    command
        .args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
        ])
        .arg(backup);
    run("pg_restore", command, url).await
}

/// Live data is never overwritten: the database must have no tables of its own.
async fn refuse_unless_empty(url: &str) -> Result<(), BackupError> {
    use sqlx::Connection;
    let store = |e: sqlx::Error| BackupError::Store(e.into());
    let mut conn = sqlx::PgConnection::connect(url).await.map_err(store)?;
    let (tables,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(store)?;
    let _ = conn.close().await;
    if tables > 0 {
        return Err(BackupError::NotEmpty(format!(
            "the database {} ({tables} tables)",
            without_password(url).0
        )));
    }
    Ok(())
}

/// Runs a PostgreSQL client tool against `url`. The password goes in `PGPASSWORD`, not on
/// the command line, where every user of the machine could read it.
async fn run(tool: &'static str, mut command: Command, url: &str) -> Result<(), BackupError> {
    let (url, password) = without_password(url);
    command.arg("--dbname").arg(url);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command.stdin(std::process::Stdio::null()).kill_on_drop(true);
    let output = command.output().await.map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => BackupError::ToolMissing { tool },
        _ => BackupError::Tool {
            tool,
            detail: error.to_string(),
        },
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let detail = stderr.trim().lines().rev().take(5).collect::<Vec<_>>();
    Err(BackupError::Tool {
        tool,
        detail: detail.into_iter().rev().collect::<Vec<_>>().join("; "),
    })
}

/// The URL without its password, and the password (percent-decoded).
fn without_password(url: &str) -> (String, Option<String>) {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return (url.to_string(), None);
    };
    let password = parsed
        .password()
        .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
    if password.is_some() {
        let _ = parsed.set_password(None);
    }
    (parsed.to_string(), password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_decoded() {
        let (url, password) = without_password("postgres://hub:p%40ss%3Aw0rd@db.example:5432/hub?sslmode=require");
        assert_eq!(url, "postgres://hub@db.example:5432/hub?sslmode=require");
        assert_eq!(password.as_deref(), Some("p@ss:w0rd"));
        let (url, password) = without_password("postgres://postgres@127.0.0.1:5432/test");
        assert_eq!(url, "postgres://postgres@127.0.0.1:5432/test");
        assert_eq!(password, None);
    }
}
