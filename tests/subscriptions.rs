//! Webhook subscriptions: every event delivered, signed (verified by the official Standard
//! Webhooks library), in order per subject, once per subscription across hubs; failures
//! retried with backoff and `Retry-After`, 410 and a failing schedule disabling; replay and
//! secret rotation.

use hub_e2e::{Backend, TestHub, backends, node_scripts, regnakes, serve};
use hub_sim::subscriber::{Answer, Delivery, SubscriberSim};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// A hub that looks for events to deliver every 50 ms, delivers `concurrency` subjects at
/// once and retries a failing endpoint after `retry_secs`.
async fn hub(backend: Backend, retry_secs: &[u64], concurrency: usize) -> TestHub {
    let retry_secs = retry_secs.to_vec();
    TestHub::start_with(backend, move |config| {
        config.events.poll_ms = 50;
        config.events.timeout_secs = 2;
        config.events.retry_secs = retry_secs;
        config.events.concurrency = concurrency;
    })
    .await
}

/// A subscriber, served; and its subscription of `body` on `hub`: its id and secret.
async fn subscribe(hub: &TestHub, body: Value) -> (SubscriberSim, hub_sim::Running, String, String) {
    let subscriber = SubscriberSim::new();
    let running = serve(subscriber.router()).await;
    let mut body = body;
    body["url"] = json!(format!("{}/hooks/hub", running.base_url()));
    let (status, created) = hub.post("/api/v1/subscriptions", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{created}");
    (subscriber, running, created["id"].as_str().unwrap().to_string(), secret)
}

/// A RegNakes simulator of `people`, and a connector on `hub` that has synced it once.
async fn synced(hub: &TestHub, people: usize) -> (hub_sim::RegnakesSim, hub_sim::Running, String) {
    let (sim, server, connector) = hub.registry(people).await;
    assert_eq!(hub.run_to_end(&connector).await["status"], "succeeded");
    (sim, server, connector)
}

/// Every event in the outbox after `after`.
async fn events_after(hub: &TestHub, after: i64) -> Vec<Value> {
    (hub.all_pages("/api/v1/events").await.into_iter())
        .filter(|e| e["seq"].as_i64().unwrap() > after)
        .collect()
}

/// Waits until `subscriber` has accepted every one of `ids`; the deliveries it has then.
async fn delivered(subscriber: &SubscriberSim, ids: &BTreeSet<String>) -> Vec<Delivery> {
    for _ in 0..600 {
        let accepted: BTreeSet<String> = subscriber.accepted().into_iter().map(|d| d.id).collect();
        if ids.is_subset(&accepted) {
            return subscriber.received();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accepted: BTreeSet<String> = subscriber.accepted().into_iter().map(|d| d.id).collect();
    panic!(
        "{} of {} events delivered within 30 s",
        accepted.intersection(ids).count(),
        ids.len()
    );
}

fn body(delivery: &Delivery) -> Value {
    serde_json::from_str(&delivery.body).unwrap()
}

/// Every delivery verified under `secret` by the `standardwebhooks` package (npm).
async fn verify(scripts: &Path, secret: &str, deliveries: &[Delivery]) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        json!({ "secret": secret, "deliveries": deliveries }).to_string(),
    )
    .unwrap();
    let out = tokio::process::Command::new("node")
        .arg(scripts.join("verify.mjs"))
        .arg(file.path())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{} verified", deliveries.len())
    );
}

/// The accepted deliveries of each subject, as seqs in arrival order, must never go back.
fn assert_in_order_per_subject(deliveries: &[Delivery]) {
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for delivery in deliveries.iter().filter(|d| d.accepted) {
        let event = body(delivery);
        let seq = event["seq"].as_i64().unwrap();
        let subject = event["subject"].as_str().unwrap().to_string();
        if let Some(previous) = last.insert(subject.clone(), seq) {
            assert!(previous <= seq, "{subject}: seq {seq} arrived after {previous}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_gets_every_event_signed_in_order_per_subject_and_only_what_it_asked_for() {
    let Some(scripts) = node_scripts("webhooks", &["standardwebhooks"]) else {
        return;
    };
    for backend in backends() {
        let hub = hub(backend, &[1], 16).await;
        let (subscriber, _running, id, secret) = subscribe(&hub, json!({ "description": "everything" })).await;
        let shown = hub.get(&format!("/api/v1/subscriptions/{id}")).await;
        assert!(shown.get("secret").is_none(), "the secret is shown once: {shown}");
        assert_eq!(shown["status"], "active");
        let (runs_only, _runs_running, _, _) = subscribe(&hub, json!({ "event_types": ["run.succeeded"] })).await;

        let (sim, _server, connector) = synced(&hub, 80).await;
        sim.mutate(6);
        assert_eq!(hub.run_to_end(&connector).await["status"], "succeeded");

        let events = events_after(&hub, 0).await;
        let ids: BTreeSet<String> = events.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
        let received = delivered(&subscriber, &ids).await;
        // Each event once, as the outbox has it, signed under the subscription's secret.
        let received_ids: Vec<&str> = received.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(received_ids.len(), ids.len(), "each event once ({backend:?})");
        for delivery in &received {
            let event = body(delivery);
            let stored = events.iter().find(|e| e["id"] == delivery.id.as_str()).unwrap();
            for field in ["id", "seq", "type", "subject", "connector_id", "data"] {
                assert_eq!(event[field], stored[field], "{field} ({backend:?})");
            }
            assert_eq!(event["timestamp"], stored["occurred_at"]);
        }
        assert_in_order_per_subject(&received);
        verify(&scripts, &secret, &received).await;

        // The filtered subscription got the runs' ends only.
        let runs: BTreeSet<String> = (events.iter())
            .filter(|e| e["type"] == "run.succeeded")
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(runs.len(), 2);
        delivered(&runs_only, &runs).await;
        assert!(runs_only.received().iter().all(|d| body(d)["type"] == "run.succeeded"));

        // Every attempt is listed, newest first.
        let attempts = hub.all_pages(&format!("/api/v1/subscriptions/{id}/attempts")).await;
        assert_eq!(attempts.len(), ids.len(), "{backend:?}");
        assert!(attempts.iter().all(|a| a["status_code"] == 204 && a["error"].is_null()));
        let view = hub.get(&format!("/api/v1/subscriptions/{id}")).await;
        assert_eq!(view["delivered_through"], events.last().unwrap()["seq"]);

        // A replay from an event sends it and every later one again; the subscriber sees
        // each id twice and deduplicates.
        let from = &events[events.len() - 5];
        let (status, replayed) = hub
            .post(
                &format!("/api/v1/subscriptions/{id}/replay"),
                json!({ "event_id": from["id"] }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{replayed}");
        let again: BTreeSet<String> = events[events.len() - 5..]
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        for _ in 0..600 {
            if subscriber.received().len() == received.len() + again.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let replayed: BTreeSet<String> = subscriber.received()[received.len()..]
            .iter()
            .map(|d| d.id.clone())
            .collect();
        assert_eq!(replayed, again, "{backend:?}");

        // A rotated secret signs beside the old one for the grace period: a subscriber with
        // either verifies.
        let (status, rotated) = hub.post(&format!("/api/v1/subscriptions/{id}/secret"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{rotated}");
        let new_secret = rotated["secret"].as_str().unwrap();
        assert_ne!(new_secret, secret);
        let before = subscriber.received().len();
        sim.mutate(2);
        assert_eq!(hub.run_to_end(&connector).await["status"], "succeeded");
        let ids: BTreeSet<String> = (events_after(&hub, events.last().unwrap()["seq"].as_i64().unwrap()).await)
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        let after_rotation = delivered(&subscriber, &ids).await[before..].to_vec();
        assert!(after_rotation.iter().all(|d| d.signature.split(' ').count() == 2));
        verify(&scripts, new_secret, &after_rotation).await;
        verify(&scripts, &secret, &after_rotation).await;

        // Deleted, it gets nothing more.
        let (status, _) = hub
            .call(reqwest::Method::DELETE, &format!("/api/v1/subscriptions/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = hub
            .call(reqwest::Method::GET, &format!("/api/v1/subscriptions/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_retried_after_its_backoff_or_retry_after_and_gone_or_failing_throughout_disables_it() {
    // One event at a time, so the answers below meet the tries in turn.
    let hub = hub(Backend::Sqlite, &[1, 1], 1).await;
    let (subscriber, _running, id, _) = subscribe(&hub, json!({})).await;
    // The first try fails with 500, the retry with 503 and Retry-After: 3, then all is well.
    subscriber.answer_next([Answer::Status(500, None), Answer::Status(503, Some(3))]);
    let (sim, _server, connector) = synced(&hub, 20).await;
    let events = events_after(&hub, 0).await;
    let ids: BTreeSet<String> = events.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    let received = delivered(&subscriber, &ids).await;
    assert_in_order_per_subject(&received);

    // The attempts say what failed; each retry came no sooner than its wait.
    let mut attempts = hub.all_pages(&format!("/api/v1/subscriptions/{id}/attempts")).await;
    attempts.reverse();
    let failed: Vec<&Value> = attempts.iter().filter(|a| !a["error"].is_null()).collect();
    assert_eq!(failed.len(), 2, "{attempts:?}");
    assert_eq!(failed[0]["status_code"], 500);
    assert_eq!(failed[1]["status_code"], 503);
    assert!(failed[1]["error"].as_str().unwrap().contains("503"), "{}", failed[1]);
    let at = |a: &Value| chrono::DateTime::parse_from_rfc3339(a["attempted_at"].as_str().unwrap()).unwrap();
    let retried = |failure: &Value| {
        (attempts.iter())
            .find(|a| a["event_id"] == failure["event_id"] && at(a) > at(failure))
            .unwrap_or_else(|| panic!("{failure} was not tried again"))
    };
    // 1 s ±20 % after the 500; the 3 s the 503 asked for after it.
    assert!(at(retried(failed[0])) - at(failed[0]) >= chrono::Duration::milliseconds(800));
    assert!(at(retried(failed[1])) - at(failed[1]) >= chrono::Duration::seconds(3));
    let view = hub.get(&format!("/api/v1/subscriptions/{id}")).await;
    assert_eq!(view["failures"], 0, "{view}");

    // 410 Gone disables the subscription at once; resumed, it delivers what waited.
    subscriber.answer_next([Answer::Status(410, None)]);
    sim.mutate(1);
    assert_eq!(hub.run_to_end(&connector).await["status"], "succeeded");
    let view = wait_for_status(&hub, &id, "disabled").await;
    assert!(view["disabled_reason"].as_str().unwrap().contains("410"), "{view}");
    let (status, _) = hub.post(&format!("/api/v1/subscriptions/{id}/resume"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let ids: BTreeSet<String> = (events_after(&hub, 0).await.iter())
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    delivered(&subscriber, &ids).await;

    // An endpoint that fails through the whole schedule (two retries here) is disabled too.
    subscriber.answer_always(Answer::Status(500, None));
    sim.mutate(1);
    assert_eq!(hub.run_to_end(&connector).await["status"], "succeeded");
    let view = wait_for_status(&hub, &id, "disabled").await;
    assert!(view["disabled_reason"].as_str().unwrap().contains("3 tries"), "{view}");
    let audit = hub.all_pages("/api/v1/audit").await;
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "subscription.disabled" && e["target"] == format!("subscription:{id}")),
        "the hub's disabling is audited"
    );

    // Paused, it gets nothing; its events wait.
    subscriber.answer_always(Answer::Accept);
    let (status, _) = hub.post(&format!("/api/v1/subscriptions/{id}/pause"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let before = subscriber.received().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(subscriber.received().len(), before);
    assert_eq!(
        hub.get(&format!("/api/v1/subscriptions/{id}")).await["status"],
        "paused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_one_database_deliver_each_event_once() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let first = hub(Backend::Postgres, &[1], 16).await;
    let (_replica, _dir) = first.start_replica().await;
    let (subscriber, _running, _, _) = subscribe(&first, json!({})).await;
    let (_sim, _server, _) = synced(&first, 300).await;
    let ids: BTreeSet<String> = (events_after(&first, 0).await.iter())
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let received = delivered(&subscriber, &ids).await;
    // A moment more: a second hub delivering too would show as repeats.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received_ids: Vec<String> = subscriber.received().into_iter().map(|d| d.id).collect();
    assert_eq!(received_ids.len(), ids.len(), "each event once across two hubs");
    assert_in_order_per_subject(&received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_holds_up_its_own_subscription_and_no_other() {
    // One subject at a time: the slow endpoint's round takes 1.9 s an event, for its 20 s.
    let hub = hub(Backend::Sqlite, &[1], 1).await;
    let (slow, _slow_running, _, _) = subscribe(&hub, json!({})).await;
    slow.answer_always(Answer::Slow(Duration::from_millis(1900)));
    let (fast, _fast_running, _, _) = subscribe(&hub, json!({})).await;
    let (_sim, _server, _) = synced(&hub, 30).await;
    let first: BTreeSet<String> = (events_after(&hub, 0).await.iter())
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    delivered(&fast, &first).await;

    // While the slow round goes on, a second sync's events reach the fast endpoint at once.
    let last = events_after(&hub, 0).await.last().unwrap()["seq"].as_i64().unwrap();
    let (sim, server) = regnakes(hub_sim::RegnakesConfig {
        people: 30,
        seed: 7,
        ..Default::default()
    })
    .await;
    let again = hub
        .regnakes_connector("registry-2", &server.base_url(), sim.config())
        .await;
    assert_eq!(hub.run_to_end(&again).await["status"], "succeeded");
    let second: BTreeSet<String> = (events_after(&hub, last).await.iter())
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let started = std::time::Instant::now();
    delivered(&fast, &second).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the fast endpoint waited {:?} on the slow one",
        started.elapsed()
    );
    assert!(slow.accepted().len() < first.len(), "the slow round is still going");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_refuse_what_they_cannot_deliver() {
    let hub = TestHub::start(Backend::Sqlite).await;
    for (body, says) in [
        (json!({ "url": "ftp://example.org/" }), "url"),
        (
            json!({ "url": "https://example.org/", "event_types": ["practitioner.deleted"] }),
            "practitioner.deleted",
        ),
        (
            json!({ "url": "https://example.org/", "description": "x".repeat(201) }),
            "description",
        ),
    ] {
        let (status, problem) = hub.post("/api/v1/subscriptions", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains(says), "{problem}");
    }
    let (status, problem) = hub
        .post(
            "/api/v1/subscriptions",
            json!({ "url": "https://example.org/", "connector_id": "no-such-connector" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, problem) = hub.post("/api/v1/subscriptions/none/replay", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
}

async fn wait_for_status(hub: &TestHub, id: &str, status: &str) -> Value {
    for _ in 0..400 {
        let view = hub.get(&format!("/api/v1/subscriptions/{id}")).await;
        if view["status"] == status {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("subscription {id} did not become {status} within 20 s");
}
