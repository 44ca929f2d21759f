//! The database backends a bench measures: SQLite, and PostgreSQL when
//! `HUB_TEST_DATABASE_URL` is set (included with `#[path]` next to `postgres.rs`).

/// Each backend's name and, for PostgreSQL, the base URL fresh databases are made beside.
pub fn backends() -> Vec<(&'static str, Option<String>)> {
    let mut backends = vec![("SQLite", None)];
    if let Ok(url) = std::env::var("HUB_TEST_DATABASE_URL") {
        backends.push(("PostgreSQL", Some(url)));
    }
    backends
}

/// A fresh database for one measurement: PostgreSQL's URL, or `None` for SQLite in the
/// hub's data directory.
pub async fn database_url(base: &Option<String>) -> Option<String> {
    match base {
        Some(base) => Some(crate::database::fresh_postgres(base).await),
        None => None,
    }
}
