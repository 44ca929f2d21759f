//! Cron schedules as an integrator sets them and an operator watches them: runs fire on the
//! schedule in its time zone, `next_run_at` says when the next one comes, a schedule missed
//! while the hub was down runs once, and two hubs on one database fire every tick once.

use hub_e2e::{Backend, TestHub, backends, regnakes};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::HashSet;
use std::time::Duration;

async fn cron_runs(hub: &TestHub, id: &str) -> Vec<Value> {
    hub.all_pages(&format!("/api/v1/connectors/{id}/runs"))
        .await
        .into_iter()
        .filter(|r| r["trigger"] == "cron")
        .collect()
}

async fn set_schedule(hub: &TestHub, id: &str, schedule: &str, timezone: &str) -> (StatusCode, Value) {
    hub.call(
        Method::PATCH,
        &format!("/api/v1/connectors/{id}"),
        Some(json!({ "schedule": schedule, "timezone": timezone })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_fire_on_the_schedule_and_next_run_at_says_when() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let (sim, server) = regnakes(hub_sim::RegnakesConfig {
        people: 20,
        ..Default::default()
    })
    .await;
    let id = hub
        .regnakes_connector("scheduled", &server.base_url(), sim.config())
        .await;
    let view = hub.get(&format!("/api/v1/connectors/{id}")).await;
    assert_eq!(view["timezone"], "Asia/Jakarta", "the default zone: {view}");
    assert!(view["next_run_at"].is_null(), "no schedule, no next run: {view}");

    // Bad input names the field.
    let (status, body) = set_schedule(&hub, &id, "every hour", "Asia/Jakarta").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/schedule", "{body}");
    let (status, body) = set_schedule(&hub, &id, "0 2 * * *", "Jakarta").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/timezone", "{body}");

    // Daily at 02:00 Jakarta time: the next fire is at 19:00 UTC.
    let (status, body) = set_schedule(&hub, &id, "0 2 * * *", "Asia/Jakarta").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let next: chrono::DateTime<chrono::Utc> = body["next_run_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(next.format("%H:%M:%S").to_string(), "19:00:00", "{body}");

    // Every second: runs fire by themselves, one per tick.
    let (status, body) = set_schedule(&hub, &id, "* * * * * *", "UTC").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let (status, _) = hub.post(&format!("/api/v1/connectors/{id}/disable"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let fired = cron_runs(&hub, &id).await;
    assert!((2..=5).contains(&fired.len()), "about one run per second: {fired:?}");
    for run in &fired {
        let run = hub.wait_for_run(run["id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    let view = hub.get(&format!("/api/v1/connectors/{id}")).await;
    assert!(
        view["next_run_at"].is_null(),
        "a disabled connector has no next run: {view}"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(cron_runs(&hub, &id).await.len(), fired.len(), "disabled: nothing fires");

    // An empty schedule removes it.
    let (status, body) = hub
        .call(
            Method::PATCH,
            &format!("/api/v1/connectors/{id}"),
            Some(json!({ "schedule": "" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["schedule"].is_null(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_missed_during_downtime_runs_once() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let (sim, server) = regnakes(hub_sim::RegnakesConfig {
        people: 20,
        ..Default::default()
    })
    .await;
    let id = hub.regnakes_connector("hourly", &server.base_url(), sim.config()).await;
    let (status, body) = set_schedule(&hub, &id, "0 * * * *", "UTC").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // As if the hub had been down for five hours since its last fire.
    let five_hours_ago = hub::store::Timestamp::from(chrono::Utc::now() - chrono::Duration::hours(5)).to_string();
    sqlx::query("UPDATE connectors SET last_fired_at = $1 WHERE id = $2")
        .bind(&five_hours_ago)
        .bind(&id)
        .execute(&hub.raw_sql().await)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let fired = cron_runs(&hub, &id).await;
    assert_eq!(fired.len(), 1, "five missed ticks catch up as one run: {fired:?}");
    let run = hub.wait_for_run(fired[0]["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_one_database_fire_every_tick_once() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let first = TestHub::start(Backend::Postgres).await;
    let (replica, _replica_dir) = first.start_replica().await;

    let (sim, server) = regnakes(hub_sim::RegnakesConfig {
        people: 20,
        ..Default::default()
    })
    .await;
    let id = first
        .regnakes_connector("shared", &server.base_url(), sim.config())
        .await;
    let started = chrono::Utc::now();
    let (status, body) = set_schedule(&first, &id, "* * * * * *", "UTC").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    let (status, _) = first.post(&format!("/api/v1/connectors/{id}/disable"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let elapsed = (chrono::Utc::now() - started).num_seconds() + 1;

    let rows = sqlx::query("SELECT fire_key FROM runs WHERE connector_id = $1 AND trigger_kind = 'cron'")
        .bind(&id)
        .fetch_all(&first.raw_sql().await)
        .await
        .unwrap();
    let keys: Vec<String> = rows.iter().map(|r| r.try_get("fire_key").unwrap()).collect();
    let distinct: HashSet<&String> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len(), "a tick fired twice: {keys:?}");
    assert!(
        // (+1: a tick read just before the disable may still fire.)
        keys.len() >= 3 && keys.len() as i64 <= elapsed + 1,
        "one run per second over {elapsed} s, not one per hub: {keys:?}"
    );
    for run in cron_runs(&first, &id).await {
        let run = first.wait_for_run(run["id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    replica.stop().await;
    first.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_coalesce_while_a_slow_run_holds_the_slot() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let (sim, server) = regnakes(hub_sim::RegnakesConfig {
        people: 20,
        ..Default::default()
    })
    .await;
    sim.set_faults(hub_sim::Faults {
        latency_ms: 1_500,
        ..Default::default()
    });
    let id = hub.regnakes_connector("slow", &server.base_url(), sim.config()).await;
    let (status, body) = set_schedule(&hub, &id, "* * * * * *", "UTC").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let (status, _) = hub.post(&format!("/api/v1/connectors/{id}/disable"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let fired = cron_runs(&hub, &id).await;
    let queued = fired.iter().filter(|r| r["status"] == "queued").count();
    assert!(queued <= 1, "at most one run waits behind the slow one: {fired:?}");
    assert!(
        (1..=4).contains(&fired.len()),
        "4.5 s of ticks against runs of 1.5 s and more, not one run per tick: {fired:?}"
    );
    // Disabling stops the connector's syncs: the one running is cancelled, one still queued
    // never starts; those that ran before it succeeded.
    for run in &fired {
        let run = hub.wait_for_run(run["id"].as_str().unwrap()).await;
        let cancelled = run["error"].as_str().is_some_and(|e| e.contains("was disabled"));
        assert!(run["status"] == "succeeded" || cancelled, "{run}");
    }
}
