//! Hostile plugins fail their own jobs and nothing else (issue 12): wall-clock deadlines on
//! host calls, cancellation by disable and delete, quotas on what a plugin hands the host,
//! hostile text rejected row by row, one person per NIK — each on SQLite and PostgreSQL,
//! with a well-behaved RegNakes connector syncing alongside and `/healthz` watched.

use hub_e2e::hostile::{Watch, hostile, hostile_hub, no_other_dead_jobs, silent_server, start_run, well_behaved};
use hub_e2e::{Backend, backends};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_stuck_in_host_calls_are_stopped_by_the_wall_clock_deadline_and_free_their_workers() {
    for backend in backends() {
        let hub = hostile_hub(backend, |c| {
            c.limits.call_deadline_secs = 3;
            c.jobs.sync_workers = 2;
        })
        .await;
        let (silent, _server) = silent_server().await;
        let watch = Watch::start(&hub);
        let (mut stuck, mut stuck_connectors) = (Vec::new(), Vec::new());
        for (name, mode) in [
            ("slow-1", "slow"),
            ("slow-2", "slow"),
            ("sleep-1", "sleep"),
            ("sleep-2", "sleep"),
        ] {
            let config = json!({ "mode": mode, "url": format!("http://{silent}"), "count": 400 });
            let id = hostile(&hub, name, config, json!({ "egress": [silent] })).await;
            stuck.push(start_run(&hub, &id).await);
            stuck_connectors.push(id);
        }
        // Both sync workers are taken by stuck plugins; this run must still get one.
        let (good, _sim) = well_behaved(&hub).await;
        let started = Instant::now();
        let good_run = hub.run_to_end(&good).await;
        assert_eq!(good_run["status"], "succeeded", "{backend:?}: {good_run}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{backend:?}: the normal run waited {:?} for a worker",
            started.elapsed()
        );
        for run_id in &stuck {
            let run = hub.wait_for_run(run_id).await;
            assert_eq!(run["status"], "failed", "{backend:?}: {run}");
            let error = run["error"].as_str().unwrap();
            assert!(error.contains("wall-clock deadline of 3.0 s"), "{backend:?}: {run}");
        }
        let (slowest, _) = watch.finish().await;
        assert!(slowest < 1_000, "{backend:?}: /healthz took {slowest} ms");
        let stuck_connectors: Vec<&str> = stuck_connectors.iter().map(String::as_str).collect();
        no_other_dead_jobs(&hub, &stuck_connectors).await;
        hub.hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_or_deleting_a_connector_stops_its_running_sync_at_once() {
    for backend in backends() {
        let hub = hostile_hub(backend, |_| {}).await;
        let sleeper = json!({ "mode": "sleep", "count": 600 });
        let disabled = hostile(&hub, "to-disable", sleeper.clone(), json!({})).await;
        let deleted = hostile(&hub, "to-delete", sleeper, json!({})).await;
        let runs = [start_run(&hub, &disabled).await, start_run(&hub, &deleted).await];
        for run_id in &runs {
            for _ in 0..100 {
                if hub.get(&format!("/api/v1/runs/{run_id}")).await["status"] == "running" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let asked = Instant::now();
        let (status, _) = hub
            .post(&format!("/api/v1/connectors/{disabled}/disable"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = hub
            .call(reqwest::Method::DELETE, &format!("/api/v1/connectors/{deleted}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        for (run_id, why) in runs.iter().zip(["disabled", "deleted"]) {
            let run = hub.wait_for_run(run_id).await;
            assert_eq!(run["status"], "failed", "{backend:?}: {run}");
            assert!(
                run["error"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("was {why} while the job ran")),
                "{backend:?}: {run}"
            );
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "{backend:?}: {:?}",
            asked.elapsed()
        );
        let audit = hub.all_pages("/api/v1/audit").await;
        for action in ["connector.disable", "connector.delete"] {
            assert!(
                audit.iter().any(|e| e["action"] == action),
                "{backend:?}: no {action} entry"
            );
        }
        hub.hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_cursor_and_request_quotas_fail_the_run_naming_the_quota() {
    for backend in backends() {
        let hub = hostile_hub(backend, |_| {}).await;
        // A server that answers every request with `{}`.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap().to_string();
        let url = format!("http://{target}");
        let app = axum::Router::new().route("/", axum::routing::get(|| async { axum::Json(json!({})) }));
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let cases = [
            (
                "state-keys",
                json!({ "mode": "state-flood", "count": 100, "bytes": 8 }),
                json!({}),
                "quotas.state_keys = 64",
            ),
            (
                "state-value",
                json!({ "mode": "state-flood", "count": 1, "bytes": 100_000 }),
                json!({}),
                "quotas.state_value_bytes = 65536",
            ),
            (
                "cursor",
                json!({ "mode": "cursor-flood", "bytes": 10_000 }),
                json!({}),
                "quotas.cursor_bytes = 4096",
            ),
            (
                "requests",
                json!({ "mode": "requests", "count": 50, "url": url }),
                json!({ "egress": [target], "quotas": { "requests": 5 } }),
                "quotas.requests = 5",
            ),
            (
                "log-override",
                json!({ "mode": "log-flood", "count": 10, "bytes": 1 }),
                json!({ "quotas": { "log_lines": 3 } }),
                "quotas.log_lines = 3",
            ),
        ];
        for (name, config, extra, expected) in cases {
            let id = hostile(&hub, name, config, extra).await;
            let run = hub.run_to_end(&id).await;
            assert_eq!(run["status"], "failed", "{backend:?} {name}: {run}");
            assert!(
                run["error"].as_str().unwrap().contains(expected),
                "{backend:?} {name}: {run}"
            );
            assert_eq!(run["attempts"], 1, "{backend:?} {name}: a quota is not retried: {run}");
        }
        let view = hub.get("/api/v1/connectors?limit=100").await;
        let items = view["items"].as_array().unwrap();
        let requests = items.iter().find(|c| c["name"] == "requests").unwrap();
        assert_eq!(requests["quotas"], json!({ "requests": 5 }));
        // The list's health, batched over connectors, is each connector's own.
        for connector in items {
            let health = &connector["health"];
            assert_eq!(
                health["last_run"]["connector_id"], connector["id"],
                "{backend:?}: {connector}"
            );
            assert_eq!(health["last_run"]["status"], "failed", "{backend:?}: {connector}");
            assert_eq!(health["runs"], json!({ "failed": 1 }), "{backend:?}: {connector}");
            assert!(health["last_success"].is_null(), "{backend:?}: {connector}");
        }
        for bad in [json!({ "log_line": 5 }), json!({ "log_lines": 0 }), json!([1])] {
            let (status, body) = hub
                .post(
                    "/api/v1/connectors",
                    json!({ "name": "bad-quota", "plugin": "hostile", "config": { "mode": "trivial" }, "quotas": bad }),
                )
                .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}: {body}");
            assert!(
                body["detail"].as_str().unwrap().contains("quotas"),
                "{backend:?}: {body}"
            );
        }
        server.abort();
        hub.hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_rejected_row_by_row_with_its_reason_on_both_backends() {
    for backend in backends() {
        let hub = hostile_hub(backend, |_| {}).await;
        let id = hostile(&hub, "bad-text", json!({ "mode": "bad-text" }), json!({})).await;
        let run = hub.run_to_end(&id).await;
        // The fixture fails unless exactly its hostile rows were rejected.
        assert_eq!(run["status"], "succeeded", "{backend:?}: {run}");
        assert_eq!(run["records_created"], 1, "{backend:?}: {run}");
        assert_eq!(run["records_rejected"], 8, "{backend:?}: {run}");
        let rejects = hub.all_pages(&format!("/api/v1/rejects?connector_id={id}")).await;
        let reasons: Vec<&str> = rejects.iter().map(|r| r["reason"].as_str().unwrap()).collect();
        for expected in [
            "full_name contains the control character U+0000",
            "full_name contains the control character U+001B",
            "full_name contains the invisible formatting character U+200B",
            "birth_place contains the invisible formatting character U+202E",
            "nik must be printable ASCII",
            "birth_date is not a calendar date written YYYY-MM-DD",
            "registrations[0].valid_until is not a calendar date written YYYY-MM-DD",
            "source.id contains the control character U+0000",
        ] {
            assert!(
                reasons.iter().any(|r| r.contains(expected)),
                "{backend:?}: no reject says {expected:?}: {reasons:?}"
            );
        }
        hub.hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_person_under_a_stored_nik_is_never_created() {
    for backend in backends() {
        let hub = hostile_hub(backend, |_| {}).await;
        let id = hostile(&hub, "nik-twin", json!({ "mode": "nik-twin" }), json!({})).await;
        let run = hub.run_to_end(&id).await;
        assert_eq!(run["status"], "succeeded", "{backend:?}: {run}");
        // A person is their NIK: the second record, under the same NIK and birth date, joins
        // the first by the `nik` tier (docs/golden-record.md), whatever name it carries.
        assert_eq!(
            (run["records_created"].as_i64(), run["records_updated"].as_i64()),
            (Some(1), Some(1)),
            "{backend:?}: {run}"
        );
        let people = hub.all_pages("/api/v1/practitioners").await;
        assert_eq!(people.len(), 1, "{backend:?}: {people:?}");
        assert_eq!(people[0]["sources"][0]["matched_by"], "nik", "{backend:?}: {people:?}");
        // Again, now that both are stored: still one person, found by the STRs it holds.
        let again = hub.run_to_end(&id).await;
        assert_eq!(again["records_created"], 0, "{backend:?}: {again}");
        assert_eq!(hub.all_pages("/api/v1/practitioners").await.len(), 1);
        hub.hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credentials_client_secret_can_never_be_declared_readable_by_the_plugin() {
    let hub = hostile_hub(Backend::Sqlite, |_| {}).await;
    // The fixture's manifest declares the secret `granted`.
    let (status, body) = hub
        .post(
            "/api/v1/connectors",
            json!({ "name": "steal", "plugin": "hostile", "config": { "mode": "leak" },
                    "credentials": { "api": { "token_url": "http://127.0.0.1:1/token", "client_id": "hub", "client_secret": "granted" } },
                    "secrets": { "granted": "oauth-client-secret" } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("must never reach the plugin"),
        "{body}"
    );
    // The hub's own secrets are out of reach of the secrets API.
    let id = hostile(&hub, "plain", json!({ "mode": "trivial" }), json!({})).await;
    let (status, _) = hub
        .post(&format!("/api/v1/connectors/{id}/webhook-secret"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = hub
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/connectors/{id}/secrets/hub.webhook-current"),
            None,
        )
        .await;
    // Refused by the secret name pattern /openapi.json documents for the path.
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("path parameter name"),
        "{body}"
    );
    let listed = hub.get(&format!("/api/v1/connectors/{id}/secrets")).await;
    assert!(!listed.to_string().contains("hub."), "{listed}");
    hub.hub.stop().await;
}
