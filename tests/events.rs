//! The outbox: every change a sync makes has its event, in order, without identifying
//! values; a change that rolls back leaves none; a connector's changes and its alerts have
//! theirs.

use hub_e2e::{Backend, TestHub, backends, regnakes};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Every event after `after` (a seq), page by page.
async fn events_after(hub: &TestHub, after: i64) -> Vec<Value> {
    let events = hub.all_pages("/api/v1/events").await;
    events
        .into_iter()
        .filter(|e| e["seq"].as_i64().unwrap() > after)
        .collect()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// Makes every write of a practitioner fail, as a database refusing the batch would.
async fn refuse_practitioner_writes(hub: &TestHub, backend: Backend) {
    let sql = hub.raw_sql().await;
    let statements: &[&str] = match backend {
        Backend::Sqlite => &[
            "CREATE TRIGGER refuse BEFORE INSERT ON practitioners BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            "CREATE TRIGGER refuse BEFORE INSERT ON practitioners FOR EACH ROW EXECUTE FUNCTION refuse()",
        ],
    };
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(*statement))
            .execute(&sql)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_of_a_sync_has_its_event_in_order_and_a_change_rolled_back_has_none() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let (sim, server) = regnakes(hub_sim::RegnakesConfig {
            people: 120,
            ..Default::default()
        })
        .await;
        let id = hub
            .regnakes_connector("registry", &server.base_url(), sim.config())
            .await;
        let run = hub.run_to_end(&id).await;
        assert_eq!(run["status"], "succeeded", "{run}");

        // One practitioner.created per practitioner stored, then the run's end.
        let events = events_after(&hub, 0).await;
        let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in seq order ({backend:?})");
        let ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), events.len(), "stable, distinct ids ({backend:?})");
        let stored: BTreeSet<String> = (hub.all_pages("/api/v1/practitioners").await.iter())
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect();
        let created: BTreeSet<String> = (of_type(&events, "practitioner.created").iter())
            .map(|e| e["data"]["practitioner_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(created, stored, "{backend:?}");
        assert_eq!(of_type(&events, "practitioner.created").len(), stored.len());
        let created_event = of_type(&events, "practitioner.created")[0];
        assert_eq!(created_event["data"]["source"], "regnakes");
        assert_eq!(created_event["connector_id"], id.as_str());
        assert_eq!(
            created_event["subject"],
            format!(
                "practitioner/{}",
                created_event["data"]["practitioner_id"].as_str().unwrap()
            )
        );
        let ended = events.last().unwrap();
        assert_eq!(ended["type"], "run.succeeded", "the run's end comes last ({backend:?})");
        assert_eq!(ended["data"]["run_id"], run["id"]);
        assert_eq!(ended["data"]["trace_id"], run["trace_id"]);
        assert_eq!(ended["data"]["counts"]["created"], run["records_created"]);
        assert_eq!(ended["data"]["counts"]["rejected"], run["records_rejected"]);
        assert!(ended["data"]["duration_ms"].as_i64().unwrap() >= 0);

        // No event carries an identifying value.
        let text = serde_json::to_string(&events).unwrap();
        for person in sim.all_people() {
            let values = [&person.nik, &person.full_name, &person.phone, &person.str_number];
            for value in values.into_iter().filter(|v| v.len() >= 6) {
                assert!(!text.contains(value.as_str()), "an event holds {value} ({backend:?})");
            }
        }

        // A change names the golden fields it changed and where it came from.
        let last = *seqs.last().unwrap();
        let changed = sim.mutate(4);
        assert_eq!(hub.run_to_end(&id).await["status"], "succeeded");
        let events = events_after(&hub, last).await;
        let updated = of_type(&events, "practitioner.updated");
        assert_eq!(updated.len(), changed.len(), "{events:?}");
        for event in &updated {
            assert_eq!(event["data"]["fields"], serde_json::json!(["phone"]), "{event}");
            assert_eq!(event["data"]["source"], "regnakes");
        }
        assert!(of_type(&events, "practitioner.created").is_empty());

        // Events are found by time through their time-ordered ids: a replay from an
        // event's time starts at it, and pruning deletes exactly those made before a time.
        let db = hub.hub.manager.db();
        let at = |e: &Value| {
            chrono::DateTime::parse_from_rfc3339(e["occurred_at"].as_str().unwrap())
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let first_update = updated[0];
        let floor = hub::events::id_floor(at(first_update));
        let before = db.seq_before_time(&floor).await.unwrap();
        assert!(before < first_update["seq"].as_i64().unwrap(), "{backend:?}");
        assert!(before >= last, "no event of the first sync is replayed ({backend:?})");
        let floor = hub::events::id_floor(at(&events[0]) - chrono::Duration::days(1));
        assert_eq!(db.prune_events(&floor).await.unwrap(), 0, "{backend:?}");

        // A batch that rolls back stores nothing and emits nothing; the run's failure is
        // an event.
        let last = events.last().unwrap()["seq"].as_i64().unwrap();
        refuse_practitioner_writes(&hub, backend).await;
        sim.mutate(3);
        let failed = hub.run_to_end(&id).await;
        assert_eq!(failed["status"], "failed", "{failed}");
        let events = events_after(&hub, last).await;
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["run.failed"], "{backend:?}");
        assert_eq!(events[0]["data"]["run_id"], failed["id"]);
        assert!(events[0]["data"]["error"].as_str().is_some());

        // Past the retention, every event goes.
        let all = events_after(&hub, 0).await.len() as u64;
        let later = hub::events::id_floor(chrono::Utc::now() + chrono::Duration::seconds(1));
        assert_eq!(db.prune_events(&later).await.unwrap(), all, "{backend:?}");
        assert!(events_after(&hub, 0).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connectors_changes_and_its_alerts_have_their_events() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let (sim, server) = regnakes(hub_sim::RegnakesConfig {
            people: 20,
            ..Default::default()
        })
        .await;
        let id = hub
            .regnakes_connector("lifecycle", &server.base_url(), sim.config())
            .await;
        hub.set_secret(&id, "client_secret", "not-the-secret").await;
        assert_eq!(hub.run_to_end(&id).await["status"], "failed");
        hub.set_secret(&id, "client_secret", &sim.config().client_secret).await;
        assert_eq!(hub.run_to_end(&id).await["status"], "succeeded");
        let path = format!("/api/v1/connectors/{id}");
        let (status, body) = hub
            .call(Method::PATCH, &path, Some(json!({ "schedule": "0 2 * * *" })))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for action in ["disable", "enable"] {
            let (status, body) = hub.post(&format!("{path}/{action}"), json!({})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (status, body) = hub.call(Method::DELETE, &path, None).await;
        assert!(status.is_success(), "{body}");

        let events = events_after(&hub, 0).await;
        let about_connector: Vec<&Value> = events
            .iter()
            .filter(|e| e["subject"] == format!("connector/{id}"))
            .collect();
        let kinds: Vec<&str> = about_connector.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "connector.created",
                "connector.updated",
                "connector.disabled",
                "connector.enabled",
                "connector.deleted"
            ],
            "{backend:?}"
        );
        assert!(
            about_connector
                .iter()
                .all(|e| e["data"]["name"] == "lifecycle" && e["connector_id"] == id)
        );
        assert!(
            about_connector[0]["data"]["plugin"]
                .as_str()
                .unwrap()
                .starts_with("regnakes@")
        );
        assert_eq!(about_connector[1]["data"]["changed"], json!(["schedule"]));

        let alerts: Vec<&Value> = events
            .iter()
            .filter(|e| e["subject"].as_str().unwrap().starts_with("alert/"))
            .collect();
        let kinds: Vec<&str> = alerts.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["alert.raised", "alert.resolved"], "{backend:?}");
        assert_eq!(alerts[0]["subject"], alerts[1]["subject"]);
        assert_eq!(alerts[0]["data"]["kind"], "credentials");
        assert_eq!(alerts[0]["data"]["alert_id"], alerts[1]["data"]["alert_id"]);
        assert!(alerts[1]["data"]["raised_at"].is_string(), "{}", alerts[1]);
        assert!(!events.iter().any(|e| e.to_string().contains("not-the-secret")));
        let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{backend:?}: events out of seq order"
        );
    }
}
