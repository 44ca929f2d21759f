//! Inbound webhooks end to end: the KKI simulator signs Standard Webhooks events and posts
//! them over HTTP to the hub, which stores each durably, answers, and runs the KKI plugin's
//! `handle-webhook` from its job queue. Both backends.

use hub_e2e::{Backend, TestHub, backends, kki};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn str_registration(practitioner: &Value) -> Value {
    practitioner["registrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "str")
        .cloned()
        .unwrap_or_else(|| panic!("no STR registration in {practitioner}"))
}

async fn webhook_jobs(hub: &TestHub, connector: &str) -> Vec<Value> {
    hub.all_pages(&format!("/api/v1/jobs?connector_id={connector}&kind=webhook"))
        .await
}

/// A KKI connector synced once, with a webhook secret the simulator signs with.
async fn kki_hub(backend: Backend) -> (TestHub, hub_sim::KkiSim, hub_sim::Running, String) {
    let hub = TestHub::start_with(backend, |config| config.webhooks.max_body_bytes = 64 * 1024).await;
    let (sim, server) = kki(hub_sim::KkiConfig {
        people: 40,
        ..Default::default()
    })
    .await;
    let connector = hub
        .token_connector("kki", "kki", &server.base_url(), &sim.config().api_token)
        .await;
    let run = hub.run_to_end(&connector).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let (secret, url) = hub.webhook_secret(&connector).await;
    sim.subscribe(&url, &secret).unwrap();
    (hub, sim, server, connector)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_str_revocation_is_stored_once_and_updates_the_practitioner() {
    for backend in backends() {
        let (hub, sim, _server, connector) = kki_hub(backend).await;
        let doctor = sim.person(3);
        let path = format!("/api/v1/practitioners?str={}", doctor.str_number);
        let before = hub.get(&path).await;
        assert_eq!(str_registration(&before["items"][0])["status"], "active", "{before}");

        let delivery = sim.revoke(3).await.unwrap();
        assert_eq!(delivery.status, 202, "{delivery:?}");
        let receipt: Value = serde_json::from_str(&delivery.body).unwrap();
        assert_eq!(receipt["status"], "queued");
        let job = hub.wait_for_job(receipt["job_id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["kind"], "webhook");
        assert_eq!(job["dedup_key"], delivery.webhook_id.as_str());

        // The revocation reached the stored practitioner, which is still one person.
        let after = hub.get(&path).await;
        assert_eq!(after["items"].as_array().unwrap().len(), 1, "{after}");
        assert_eq!(str_registration(&after["items"][0])["status"], "revoked", "{after}");
        assert_eq!(after["items"][0]["id"], before["items"][0]["id"]);

        // The sender retries the same delivery: acknowledged, not queued again.
        let again = sim.add_training(5, "Pelatihan Baru").await.unwrap();
        assert_eq!(again.status, 202, "{again:?}");
        let repeated = sim
            .events()
            .deliver(
                &delivery.webhook_id,
                chrono::Utc::now().timestamp(),
                b"{\"type\":\"str.updated\"}",
            )
            .await
            .unwrap();
        assert_eq!(repeated.status, 200, "{repeated:?}");
        assert_eq!(
            serde_json::from_str::<Value>(&repeated.body).unwrap()["status"],
            "duplicate"
        );
        assert_eq!(webhook_jobs(&hub, &connector).await.len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_and_stale_timestamps_are_refused_and_nothing_is_stored() {
    for backend in backends() {
        let (hub, sim, _server, connector) = kki_hub(backend).await;
        let body = br#"{"type":"str.revoked","data":{}}"#;
        let now = chrono::Utc::now().timestamp();

        // Signed six minutes ago: outside the five-minute tolerance.
        let stale = sim.events().deliver("msg_stale", now - 360, body).await.unwrap();
        assert_eq!(stale.status, 401, "{stale:?}");
        let problem: Value = serde_json::from_str(&stale.body).unwrap();
        assert!(problem["detail"].as_str().unwrap().contains("5 minutes"), "{problem}");

        // Signed with another secret.
        let url = hub.url(&format!("/webhooks/{connector}"));
        let forged = hub
            .http
            .post(&url)
            .header("webhook-id", "msg_forged")
            .header("webhook-timestamp", now.to_string())
            .header(
                "webhook-signature",
                format!(
                    "v1,{}",
                    hub_sim::events::sign(b"not the secret at all!!!", "msg_forged", now, body)
                ),
            )
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            forged.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );

        // No signature at all, and a connector that does not exist.
        let unsigned = hub.http.post(&url).body(body.to_vec()).send().await.unwrap();
        assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
        let nowhere = hub
            .http
            .post(hub.url("/webhooks/no-such-connector"))
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);

        // A body over the limit is refused before it is read.
        let huge = sim
            .events()
            .deliver("msg_huge", now, &vec![b' '; 100 * 1024])
            .await
            .unwrap();
        assert_eq!(huge.status, 413, "{huge:?}");
        // A client that writes its whole (12 MiB) body before reading still gets the 413's
        // problem+json, not a reset connection.
        let answer = hub
            .post_whole_body_then_read(&format!("/webhooks/{connector}"), None, 12 * 1024 * 1024)
            .await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{backend:?}: {answer}");
        assert!(answer.contains("application/problem+json"), "{backend:?}: {answer}");

        assert!(webhook_jobs(&hub, &connector).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_the_plugin_cannot_handle_is_dead_lettered_and_can_be_retried() {
    for backend in backends() {
        let (hub, sim, _server, connector) = kki_hub(backend).await;
        let now = chrono::Utc::now().timestamp();
        let delivery = sim
            .events()
            .deliver("msg_garbled", now, b"this is not JSON")
            .await
            .unwrap();
        assert_eq!(delivery.status, 202, "{delivery:?}");
        let job_id = serde_json::from_str::<Value>(&delivery.body).unwrap()["job_id"]
            .as_str()
            .unwrap()
            .to_string();
        let job = hub.wait_for_job(&job_id).await;
        assert_eq!(job["status"], "dead", "{job}");
        assert!(job["error"].as_str().unwrap().contains("invalid input"), "{job}");

        let dead = hub.get("/api/v1/jobs?status=dead").await;
        assert!(
            dead["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|j| j["id"] == job_id.as_str()),
            "{dead}"
        );
        // Only dead jobs are retried; a retried one runs again with fresh attempts.
        let (status, retried) = hub.post(&format!("/api/v1/jobs/{job_id}/retry"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
        assert_eq!(retried["status"], "queued");
        let job = hub.wait_for_job(&job_id).await;
        assert_eq!(job["status"], "dead", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(webhook_jobs(&hub, &connector).await.len(), 1);

        // A job that succeeded is not retried.
        let syncs = hub
            .get(&format!("/api/v1/jobs?kind=sync&connector_id={connector}"))
            .await;
        let sync_job = syncs["items"][0]["id"].as_str().unwrap();
        let (status, problem) = hub.post(&format!("/api/v1/jobs/{sync_job}/retry"), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("only dead jobs"),
            "{problem}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_ran_out_of_attempts_is_dead_and_its_retry_completes_the_run() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let (sim, server) = kki(hub_sim::KkiConfig {
            people: 30,
            ..Default::default()
        })
        .await;
        let connector = hub
            .token_connector("kki", "kki", &server.base_url(), &sim.config().api_token)
            .await;
        sim.set_faults(hub_sim::Faults {
            outage: true,
            ..Default::default()
        });
        let run = hub.run_to_end(&connector).await;
        assert_eq!(run["status"], "failed", "{run}");
        assert_eq!(run["attempts"], 3, "{run}");
        let dead = hub
            .get(&format!("/api/v1/jobs?status=dead&kind=sync&connector_id={connector}"))
            .await;
        let job = &dead["items"][0];
        assert_eq!(job["run_id"], run["id"], "{dead}");
        assert_eq!(job["attempts"], 3, "{job}");

        sim.set_faults(hub_sim::Faults::default());
        let (status, _) = hub
            .post(
                &format!("/api/v1/jobs/{}/retry", job["id"].as_str().unwrap()),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let run = hub.wait_for_run(run["id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["records_received"], 30, "{run}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_webhooks_is_worked_in_batches_each_job_once_and_a_few_rejects_raise_no_alert() {
    for backend in backends() {
        let (hub, sim, _server, connector) = kki_hub(backend).await;
        let audited_before = hub.all_pages("/api/v1/audit").await.len();
        // Every doctor with an active STR (the sync stored those) gets a new training; two
        // events carry a record the hub rejects.
        let now = chrono::Utc::now();
        let mut bodies: Vec<(String, Value, bool)> = (0..sim.total())
            .map(|i| (i, sim.json(i)))
            .filter(|(_, data)| data["status_str"] == "aktif")
            .map(|(i, mut data)| {
                data["pelatihan"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({ "nama": "Pelatihan Gawat Darurat", "penyelenggara": "PB IDI", "tanggal": "2026-11-01", "jpl": 16 }));
                data["diperbarui_pada"] = json!(now.to_rfc3339());
                (format!("msg_burst_{i}"), data, true)
            })
            .collect();
        for i in 0..2 {
            let mut data = sim.json(i);
            data["nik"] = json!("12345");
            bodies.push((format!("msg_bad_{i}"), data, false));
        }
        let sending: Vec<_> = bodies
            .iter()
            .map(|(id, data, _)| {
                let body = json!({ "type": "str.updated", "timestamp": now.to_rfc3339(), "data": data }).to_string();
                let (sim, id) = (sim.clone(), id.clone());
                tokio::spawn(async move {
                    sim.events()
                        .deliver(&id, now.timestamp(), body.as_bytes())
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut deliveries = Vec::new();
        for sent in sending {
            deliveries.push(sent.await.unwrap());
        }

        for (delivery, (_, data, valid)) in deliveries.iter().zip(&bodies) {
            assert_eq!(delivery.status, 202, "{delivery:?}");
            let receipt: Value = serde_json::from_str(&delivery.body).unwrap();
            let job = hub.wait_for_job(receipt["job_id"].as_str().unwrap()).await;
            if *valid {
                assert_eq!(
                    (&job["status"], &job["attempts"]),
                    (&json!("succeeded"), &json!(1)),
                    "{backend:?}: {job}"
                );
                let stored = hub
                    .get(&format!(
                        "/api/v1/practitioners?str={}",
                        data["nomor_str"].as_str().unwrap()
                    ))
                    .await;
                assert!(
                    stored["items"][0]["trainings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|t| t["name"] == "Pelatihan Gawat Darurat"),
                    "{stored}"
                );
            } else {
                assert_eq!(job["status"], "dead", "{backend:?}: {job}");
                assert!(
                    job["error"].as_str().unwrap().contains("str.updated rejected: NIK"),
                    "{job}"
                );
            }
        }

        // Batches: one audit entry per plugin call that stored records, naming its jobs.
        let batches: Vec<Value> = hub
            .all_pages("/api/v1/audit")
            .await
            .into_iter()
            .skip(audited_before)
            .filter(|e| e["action"] == "records.batch" && e["actor"] == format!("connector:{connector}"))
            .collect();
        let jobs_in_batches: usize = batches
            .iter()
            .map(|b| b["details"]["jobs"].as_array().unwrap().len())
            .sum();
        assert!(
            jobs_in_batches >= bodies.len(),
            "every event job is in an audited batch: {batches:?}"
        );
        assert!(
            batches.len() < bodies.len(),
            "{} audited batches for {} webhooks: events were not handed over together",
            batches.len(),
            bodies.len()
        );
        // 2 rejected rows of about 40 is under 20 %: no alert, where each rejected event
        // alone used to raise one.
        let alerts = hub.get(&format!("/api/v1/alerts?connector_id={connector}")).await;
        assert_eq!(alerts["items"].as_array().unwrap().len(), 0, "{alerts}");
    }
}
