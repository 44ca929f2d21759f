//! A fresh PostgreSQL database per run (included with `#[path]` by the tests and benches
//! that use one).

/// Creates an empty database next to `base`'s and returns its URL.
pub async fn fresh_postgres(base: &str) -> String {
    let name = format!("hub_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{}/{name}", base.rsplit_once('/').unwrap().0)
}
