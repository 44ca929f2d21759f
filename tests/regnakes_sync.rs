//! RegNakes end to end: simulator → plugin (WASM) → host pipeline → encrypted storage →
//! API, on SQLite and PostgreSQL.

use hub_e2e::{ADMIN_KEY, Backend, TestHub, backends, regnakes};
use hub_sim::needles::Needles;
use hub_sim::{Faults, RegnakesConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;

fn sim_config(people: usize) -> RegnakesConfig {
    RegnakesConfig {
        people,
        ..RegnakesConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_stores_encrypted_records_and_updates_without_duplicating() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let (sim, server) = regnakes(sim_config(2_000)).await;
        let connector = hub
            .regnakes_connector("regnakes", &server.base_url(), sim.config())
            .await;

        let run = hub.run_to_end(&connector).await;
        assert_eq!(run["status"], "succeeded", "{backend:?}: {run}");
        let expected_rejects = sim.expected_rejects();
        let total = sim.total() as i64;
        assert!(
            expected_rejects.len() > 40,
            "the simulator serves malformed and inactive rows"
        );
        assert_eq!(run["records_received"], total, "{backend:?}: {run}");
        assert_eq!(
            run["records_rejected"],
            expected_rejects.len() as i64,
            "{backend:?}: {run}"
        );
        assert_eq!(
            run["records_created"],
            total - expected_rejects.len() as i64,
            "{backend:?}: {run}"
        );
        assert_eq!(run["records_updated"], 0);
        // Every outgoing request carried the run's trace and a request id.
        let trace_id = run["trace_id"].as_str().unwrap();
        let (traceparent, request_id) = sim.last_trace_headers();
        let traceparent = traceparent.expect("traceparent sent");
        assert!(
            traceparent.starts_with(&format!("00-{trace_id}-")) && traceparent.len() == 55,
            "{traceparent}"
        );
        assert_eq!(request_id.expect("x-request-id sent").len(), 36);

        // Every malformed or inactive row is a reject with a reason, and nothing else is.
        let rejects = hub
            .all_pages(&format!("/api/v1/rejects?connector_id={connector}"))
            .await;
        let rejected_ids: HashSet<String> = rejects
            .iter()
            .map(|r| r["source_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(rejected_ids, expected_rejects, "{backend:?}");
        assert!(
            rejects
                .iter()
                .all(|r| r["reason"].as_str().is_some_and(|s| s.len() > 5))
        );
        assert!(
            rejects
                .iter()
                .any(|r| r["reason"].as_str().unwrap().contains("STR is not active"))
        );
        assert!(
            rejects.iter().all(|r| r.get("record").is_none()),
            "rejected rows stay sealed"
        );

        // Found by STR and by NIK, decrypted, under the canonical names.
        let person = &sim.valid_people()[7];
        let found = hub
            .get(&format!("/api/v1/practitioners?str={}", person.str_number))
            .await;
        let items = found["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{found}");
        assert_eq!(items[0]["nik"], person.nik);
        assert_eq!(items[0]["full_name"], person.full_name);
        assert_eq!(items[0]["str_number"], person.str_number);
        assert_eq!(items[0]["birth_place"], person.birth_place);
        assert_eq!(items[0]["source"]["system"], "regnakes");
        let by_nik = hub.get(&format!("/api/v1/practitioners?nik={}", person.nik)).await;
        assert_eq!(by_nik["items"][0]["id"], items[0]["id"]);
        let listed = hub.all_pages("/api/v1/practitioners").await;
        assert_eq!(listed.len() as i64, total - expected_rejects.len() as i64);

        // The next sync sees only what changed, and updates it in place.
        let changed = sim.mutate(60);
        let second = hub.run_to_end(&connector).await;
        assert_eq!(second["status"], "succeeded", "{second}");
        assert_eq!(second["records_received"], 60, "{backend:?}: {second}");
        assert_eq!(second["records_updated"], 60, "{backend:?}: {second}");
        assert_eq!(second["records_created"], 0, "{backend:?}: {second}");
        assert_eq!(
            hub.hub.manager.db().count_practitioners().await.unwrap(),
            total - expected_rejects.len() as i64
        );
        let mutated = sim
            .valid_people()
            .into_iter()
            .find(|p| changed.contains(&format!("RN-{:07}", p.index)))
            .unwrap();
        let after = hub
            .get(&format!("/api/v1/practitioners?str={}", mutated.str_number))
            .await;
        assert_eq!(after["items"][0]["phone"], mutated.phone);

        // A sync with nothing new changes nothing.
        let third = hub.run_to_end(&connector).await;
        assert_eq!(
            (third["records_received"].as_i64(), third["records_created"].as_i64()),
            (Some(0), Some(0))
        );

        // A cursor reset starts the next sync from the beginning: every record is read
        // again and none stored twice.
        let reset_path = format!("/api/v1/connectors/{connector}/state/reset");
        let (status, reset) = hub.post(&reset_path, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{reset}");
        let saved = reset["previous"].clone();
        assert!(saved.is_string() && reset["cursor"].is_null(), "{reset}");
        let full = hub.run_to_end(&connector).await;
        assert_eq!(full["records_received"], total, "{backend:?}: {full}");
        assert_eq!(
            (full["records_created"].as_i64(), full["records_updated"].as_i64()),
            (Some(0), Some(0)),
            "{backend:?}: {full}"
        );
        assert_eq!(
            full["records_unchanged"],
            total - expected_rejects.len() as i64,
            "{backend:?}: {full}"
        );
        assert_eq!(
            hub.hub.manager.db().count_practitioners().await.unwrap(),
            total - expected_rejects.len() as i64
        );
        // Back to the cursor saved before the reset: nothing new since.
        let (status, reset) = hub.post(&reset_path, json!({ "cursor": saved })).await;
        assert_eq!((status, &reset["cursor"]), (StatusCode::OK, &saved), "{reset}");
        let resumed = hub.run_to_end(&connector).await;
        assert_eq!(resumed["records_received"], 0, "{backend:?}: {resumed}");
        let (status, refused) = hub.post(&reset_path, json!({ "cursor": "x".repeat(5000) })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert!(
            refused["detail"].as_str().unwrap().contains("cursor_bytes"),
            "{refused}"
        );
        let (status, refused) = hub.post(&reset_path, json!({ "cursor": "a\u{0}b" })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        let audit = hub.all_pages("/api/v1/audit").await;
        let resets = audit.iter().filter(|e| e["action"] == "connector.cursor.reset").count();
        assert_eq!(resets, 2, "each reset is audited, the refused one not");

        if backend == Backend::Sqlite {
            hub.hub.manager.db().close().await;
            assert_no_plaintext(hub.data_dir.path(), &sim);
        } else {
            assert_no_plaintext_rows(&hub, &sim).await;
        }
    }
}

/// Every byte of the SQLite database and its WAL, searched for seeded NIKs and names.
fn assert_no_plaintext(dir: &std::path::Path, sim: &hub_sim::RegnakesSim) {
    let needles = Needles::people(&sim.all_people());
    let files = hub_e2e::sqlite_files(dir);
    assert!(
        files.iter().map(|(_, b)| b.len()).sum::<usize>() > 100_000,
        "database holds the synced rows"
    );
    assert!(
        files.iter().any(|(_, b)| String::from_utf8_lossy(b).contains("RN-00")),
        "the scan must see the stored rows (source ids are kept in clear)"
    );
    for (name, bytes) in &files {
        needles.assert_absent(name, bytes);
    }
}

/// On PostgreSQL: every stored row, as text, searched for seeded NIKs and names.
async fn assert_no_plaintext_rows(hub: &TestHub, sim: &hub_sim::RegnakesSim) {
    let dump = hub_e2e::postgres_dump(
        hub,
        &["practitioners", "rejects", "connector_logs", "runs", "connector_state"],
    )
    .await;
    assert!(dump.len() > 100_000);
    assert!(
        String::from_utf8_lossy(&dump).contains("RN-00"),
        "the scan must see the stored rows (source ids are kept in clear)"
    );
    Needles::people(&sim.all_people()).assert_absent("a PostgreSQL row", &dump);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiring_mid_sync_is_refreshed_and_the_sync_completes() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let (sim, server) = regnakes(sim_config(1_200)).await;
        sim.set_faults(Faults {
            expire_tokens_after_requests: Some(2),
            ..Faults::default()
        });
        let connector = hub
            .regnakes_connector("regnakes", &server.base_url(), sim.config())
            .await;
        let run = hub.run_to_end(&connector).await;
        assert_eq!(run["status"], "succeeded", "{backend:?}: {run}");
        assert_eq!(run["records_received"], sim.total() as i64);
        assert_eq!(run["attempts"], 1, "refreshing a token is not a retry");
        assert_eq!(sim.tokens_issued(), 2, "one token at the start, one after the expiry");
        let logs = hub.get(&format!("/api/v1/connectors/{connector}/logs")).await;
        assert!(
            logs["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["message"].as_str().unwrap().contains("refreshing")),
            "{logs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_is_retried_three_times_then_fails_and_the_hub_keeps_serving() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let (sim, server) = regnakes(sim_config(300)).await;
        let connector = hub
            .regnakes_connector("regnakes", &server.base_url(), sim.config())
            .await;
        sim.set_faults(Faults {
            outage: true,
            ..Faults::default()
        });

        let run = hub.run_to_end(&connector).await;
        assert_eq!(run["status"], "failed", "{run}");
        assert_eq!(run["attempts"], 3, "{run}");
        let error = run["error"].as_str().unwrap();
        assert!(
            error.contains("after 3 attempts") && error.contains("unavailable") && error.contains("503"),
            "{error}"
        );
        let logs = hub
            .get(&format!(
                "/api/v1/connectors/{connector}/logs?run_id={}",
                run["id"].as_str().unwrap()
            ))
            .await;
        let retries = logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["message"].as_str().unwrap().contains("retrying after a backoff"))
            .count();
        assert_eq!(retries, 2, "{logs}");

        // The hub still serves, and the connector recovers once RegNakes is back.
        let health = hub.http.get(hub.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        sim.set_faults(Faults::default());
        let run = hub.run_to_end(&connector).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["records_received"], sim.total() as i64);
    }
}

/// A database refusal planted in the practitioners table: once it holds `limit` rows, the
/// next insert fails, as a full disk would. The statements that plant it, and the one that
/// lifts it.
fn refuse_practitioners_after(backend: Backend, limit: usize) -> (Vec<String>, &'static str) {
    match backend {
        Backend::Sqlite => (
            vec![format!(
                "CREATE TRIGGER test_refuse BEFORE INSERT ON practitioners \
             WHEN (SELECT count(*) FROM practitioners) >= {limit} \
             BEGIN SELECT RAISE(ABORT, 'test: the disk is full'); END"
            )],
            "DROP TRIGGER test_refuse",
        ),
        Backend::Postgres => (
            vec![
                format!(
                    "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF (SELECT count(*) FROM practitioners) >= {limit} THEN \
                 RAISE EXCEPTION 'test: the disk is full'; END IF; RETURN NEW; END $$"
                ),
                "CREATE TRIGGER test_refuse BEFORE INSERT ON practitioners \
             FOR EACH ROW EXECUTE FUNCTION test_refuse()"
                    .into(),
            ],
            "DROP TRIGGER test_refuse ON practitioners",
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_the_hub_cannot_store_fails_the_run_and_the_next_run_resumes_after_the_last_stored_page() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        // Four pages of 250 (the test connector's page size), each queued while the next is
        // fetched; the second cannot be stored.
        let (sim, server) = regnakes(sim_config(1_000)).await;
        let connector = hub
            .regnakes_connector("regnakes", &server.base_url(), sim.config())
            .await;
        let db = hub.raw_sql().await;
        let (plant, lift) = refuse_practitioners_after(backend, 400);
        for statement in plant {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&db).await.unwrap();
        }

        let run = hub.run_to_end(&connector).await;
        assert_eq!(run["status"], "failed", "{backend:?}: {run}");
        let error = run["error"].as_str().unwrap();
        assert!(error.contains("could not store"), "{backend:?}: {error}");
        // The cursor stops after the last page stored with every page before it, whatever
        // the plugin queued after it. On SQLite pages are stored one after another: the
        // second fails. On PostgreSQL pages about different people are stored side by side,
        // so which one crosses the limit depends on which commits first, and a page queued
        // after the cursor may be stored already (the next run brings it again, unchanged).
        let cursor: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT value FROM connector_state WHERE connector_id = '{connector}' AND key = 'cursor'"
        )))
        .fetch_optional(&db)
        .await
        .unwrap();
        let next_page = cursor.as_deref().map_or(1, |c| {
            serde_json::from_str::<Value>(c).unwrap()["page"].as_i64().unwrap()
        });
        let stored = hub.hub.manager.db().count_practitioners().await.unwrap();
        let valid = (sim.total() - sim.expected_rejects().len()) as i64;
        assert!((1..valid).contains(&stored), "{backend:?}: {stored} stored");
        if backend == Backend::Sqlite {
            assert_eq!(next_page, 2, "{backend:?}: {cursor:?}");
            assert!(
                (1..=250).contains(&stored),
                "{backend:?}: {stored} stored, the first page's"
            );
        }

        sqlx::query(lift).execute(&db).await.unwrap();
        let run = hub.run_to_end(&connector).await;
        assert_eq!(run["status"], "succeeded", "{backend:?}: {run}");
        assert_eq!(
            run["records_received"],
            250 * (5 - next_page),
            "resumed at page {next_page}: {run}"
        );
        assert_eq!(
            hub.hub.manager.db().count_practitioners().await.unwrap(),
            valid,
            "{backend:?}: every valid person once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_fail_their_jobs_and_nothing_else() {
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.limits.call_deadline_secs = 5;
        config.limits.cpu_secs = 2;
    })
    .await;
    let fixture = hub::bundled::fixture("hostile").unwrap();
    hub.hub.manager.install_bundled(&fixture).await.unwrap();
    // A listener the egress fixture is not allowed to reach: it must never see a connection.
    let forbidden = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let forbidden_url = format!("http://{}", forbidden.local_addr().unwrap());

    let mut hostile = Vec::new();
    for (mode, expected) in [
        ("spin", "CPU time limit of 2.0 s"),
        ("hog", "memory limit of 64 MiB"),
        ("egress", "egress allow-list"),
        ("secret", "not declared in this plugin's manifest"),
    ] {
        let (status, body) = hub
            .post(
                "/api/v1/connectors",
                json!({ "name": format!("hostile-{mode}"), "plugin": "hostile", "enabled": true,
                        "config": { "mode": mode, "url": forbidden_url, "secret": "stolen" },
                        "egress": ["127.0.0.1:1"], "secrets": { "stolen": "client-secret-value" } }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        hostile.push((body["id"].as_str().unwrap().to_string(), expected));
    }
    let (sim, server) = regnakes(sim_config(400)).await;
    let good = hub
        .regnakes_connector("regnakes", &server.base_url(), sim.config())
        .await;

    // All at once: the well-behaved connector runs alongside the hostile ones.
    let mut runs = Vec::new();
    for id in hostile.iter().map(|(id, _)| id).chain([&good]) {
        let (status, run) = hub.post(&format!("/api/v1/connectors/{id}/run"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        runs.push(run["id"].as_str().unwrap().to_string());
    }
    for ((_, expected), run_id) in hostile.iter().zip(&runs) {
        let run = hub.wait_for_run(run_id).await;
        assert_eq!(run["status"], "failed", "{run}");
        assert!(
            run["error"].as_str().unwrap().contains(expected),
            "expected {expected:?}: {run}"
        );
        assert!(!run.to_string().contains("client-secret-value"), "{run}");
    }
    let good_run = hub.wait_for_run(runs.last().unwrap()).await;
    assert_eq!(good_run["status"], "succeeded", "{good_run}");
    assert_eq!(good_run["records_received"], sim.total() as i64);

    let accepted = tokio::time::timeout(std::time::Duration::from_millis(200), forbidden.accept()).await;
    assert!(accepted.is_err(), "the denied request reached the network");
    let logs = hub.get(&format!("/api/v1/connectors/{}/logs", hostile[2].0)).await;
    assert!(
        logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("denied")),
        "{logs}"
    );
    let health = hub.http.get(hub.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let audit = hub.all_pages("/api/v1/audit").await;
    let denied: Vec<&Value> = audit.iter().filter(|e| e["action"] == "secret.denied").collect();
    assert_eq!(denied.len(), 1, "{audit:?}");
    assert_eq!(denied[0]["details"]["name"], "stolen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refuses_missing_or_wrong_keys_and_bad_input_with_problem_json() {
    let hub = TestHub::start(Backend::Sqlite).await;
    for auth in [None, Some("Bearer not-a-key")] {
        let mut request = hub.http.get(hub.url("/api/v1/connectors"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 401);
    }
    let (status, body) = hub
        .post(
            "/api/v1/connectors",
            json!({ "name": "x", "plugin": "regnakes", "config": { "per_page": 0 } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/base_url", "/per_page"], "{body}");
    let (status, body) = hub
        .call(
            Method::POST,
            "/api/v1/connectors",
            Some(json!({ "nme": 1, "concurrency": 65 })),
        )
        .await;
    // Against the schema /openapi.json documents: 400, naming every field.
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let mut pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    pointers.sort();
    assert_eq!(pointers, ["/concurrency", "/name", "/nme", "/plugin"], "{body}");
    let (status, _) = hub.post("/api/v1/connectors/nope/run", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response = hub
        .http
        .put(hub.url("/api/v1/connectors"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    // A body over the route's limit (2 MiB), written whole before the answer is read: the
    // client gets the 413's problem+json, not a reset connection.
    let answer = hub
        .post_whole_body_then_read("/api/v1/connectors", Some(ADMIN_KEY), 12 * 1024 * 1024)
        .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}
