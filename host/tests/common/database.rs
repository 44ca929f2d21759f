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

/// A fresh database on the PostgreSQL server `HUB_TEST_DATABASE_URL` names; `None` when it is
/// unset, which fails in CI: no PostgreSQL case may skip there. (The benches include this
/// file for `fresh_postgres` alone.)
#[allow(dead_code)]
pub async fn test_postgres() -> Option<String> {
    match std::env::var("HUB_TEST_DATABASE_URL") {
        Ok(base) => Some(fresh_postgres(&base).await),
        Err(_) => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must set HUB_TEST_DATABASE_URL so the PostgreSQL cases run"
            );
            None
        }
    }
}
