//! Crash safety with a real `kill -9`: the hub binary runs as its own process and is killed
//! in the middle of a signed-webhook burst, a sync, or MQTT ingest, then started again.
//! Every webhook the hub acknowledged must then be processed once, the sync resume from its
//! checkpoint, and every MQTT message the broker accepted be stored.
//!
//! SQLite always; PostgreSQL too when `HUB_TEST_DATABASE_URL` is set.

#[path = "common/database.rs"]
mod database;
#[path = "common/process.rs"]
mod process;

use process::{Api, HubProcess, api, hub_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const DOCTORS: usize = 240;
const TRAINING: &str = "Pelatihan Pasca Insiden";

/// SQLite, and PostgreSQL (a fresh database) when `HUB_TEST_DATABASE_URL` is set, as it must
/// be in CI.
async fn databases() -> Vec<Option<String>> {
    hub::manager::credentials::install_tls_provider();
    let postgres = database::test_postgres().await;
    std::iter::once(None).chain(postgres.map(Some)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_webhook_acknowledged_before_a_kill_9_is_processed_once_after_restart() {
    for database_url in databases().await {
        burst_kill_restart(database_url).await;
    }
}

async fn burst_kill_restart(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (config, url) = hub_config(dir.path(), database_url.as_deref(), "");
    let mut hub = HubProcess::start(&config, &url).await;
    let api = api(&url);

    let sim = hub_sim::KkiSim::new(hub_sim::KkiConfig {
        people: DOCTORS,
        // Every event then updates or creates its practitioner; none is rejected.
        expired_rate: 0.0,
        ..Default::default()
    });
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let connector = api
        .create(
            "/api/v1/connectors",
            json!({
                "name": "kki", "plugin": "kki",
                "config": { "base_url": server.base_url() },
                "egress": [server.addr.to_string()],
                "secrets": { "api-token": sim.config().api_token },
                "enabled": true,
            }),
        )
        .await;
    let connector = connector["id"].as_str().unwrap().to_string();
    let secret = api
        .create(&format!("/api/v1/connectors/{connector}/webhook-secret"), json!({}))
        .await;
    sim.subscribe(
        &format!("{url}/webhooks/{connector}"),
        secret["secret"].as_str().unwrap(),
    )
    .unwrap();

    // The burst: one str.updated per doctor, 16 in flight; the hub dies part-way.
    let (acks, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
    let burst = tokio::spawn({
        let sim = sim.clone();
        async move {
            use futures::StreamExt;
            futures::stream::iter(0..DOCTORS)
                .for_each_concurrent(16, |index| {
                    let sim = sim.clone();
                    let acks = acks.clone();
                    async move {
                        if let Ok(delivery) = sim.add_training(index, TRAINING).await
                            && delivery.status == 202
                        {
                            let _ = acks.send((index, delivery.webhook_id));
                        }
                    }
                })
                .await;
        }
    });
    let mut acked = Vec::new();
    while acked.len() < DOCTORS / 3 {
        acked.push(
            acked_rx
                .recv()
                .await
                .expect("webhooks are acknowledged before the kill"),
        );
    }
    hub.kill_9();
    burst.await.unwrap();
    while let Ok(ack) = acked_rx.try_recv() {
        acked.push(ack);
    }
    assert!(acked.len() < DOCTORS, "the kill came before the burst ended");

    // Restarted, the hub works off what it acknowledged, including jobs the dead process
    // held (their lease lapses; on SQLite they are queued again at start).
    let _hub = HubProcess::start(&config, &url).await;
    let jobs = api.settled_jobs(&connector, "webhook").await;
    let stored: HashSet<&str> = jobs.iter().map(|j| j["dedup_key"].as_str().unwrap()).collect();
    assert_eq!(stored.len(), jobs.len(), "one job per webhook-id");
    for (_, webhook_id) in &acked {
        assert!(
            stored.contains(webhook_id.as_str()),
            "acknowledged webhook {webhook_id} was lost"
        );
    }
    let dead: Vec<&Value> = jobs.iter().filter(|j| j["status"] == "dead").collect();
    assert!(dead.is_empty(), "{dead:?}");

    // Each acknowledged change is stored once: one practitioner with the training once.
    for (index, _) in &acked {
        let person = sim.person(*index);
        let (status, found) = api
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/practitioners?str={}", person.str_number),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{found}");
        let items = found["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{found}");
        let trainings = items[0]["trainings"].as_array().unwrap();
        assert_eq!(trainings.iter().filter(|t| t["name"] == TRAINING).count(), 1, "{found}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_part_way_resumes_from_its_checkpoint_after_restart() {
    for database_url in databases().await {
        sync_kill_restart(database_url).await;
    }
}

async fn regnakes_connector(api: &Api, sim: &hub_sim::RegnakesSim, server: &hub_sim::Running) -> String {
    let base = server.base_url();
    let connector = api
        .create(
            "/api/v1/connectors",
            json!({
                "name": "regnakes", "plugin": "regnakes",
                "config": { "base_url": base, "per_page": 250 },
                "egress": [server.addr.to_string()],
                "credentials": { "regnakes": {
                    "token_url": format!("{base}/oauth/token"),
                    "client_id": sim.config().client_id,
                    "client_secret": "client_secret",
                }},
                "secrets": { "client_secret": sim.config().client_secret },
                "enabled": true,
            }),
        )
        .await;
    connector["id"].as_str().unwrap().to_string()
}

async fn sync_kill_restart(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (config, url) = hub_config(dir.path(), database_url.as_deref(), "");
    let mut hub = HubProcess::start(&config, &url).await;
    let api = api(&url);
    let sim = hub_sim::RegnakesSim::new(hub_sim::RegnakesConfig {
        people: 3_000,
        ..Default::default()
    });
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // Slow pages, so the kill lands in the middle of the sync.
    sim.set_faults(hub_sim::Faults {
        latency_ms: 150,
        ..Default::default()
    });
    let connector = regnakes_connector(&api, &sim, &server).await;
    let run = api
        .create(&format!("/api/v1/connectors/{connector}/run"), json!({}))
        .await;
    let run_path = format!("/api/v1/runs/{}", run["id"].as_str().unwrap());
    loop {
        let (_, run) = api.call(reqwest::Method::GET, &run_path, None).await;
        if run["records_received"].as_i64().unwrap_or(0) >= 500 {
            assert_eq!(run["status"], "running", "{run}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hub.kill_9();
    sim.set_faults(hub_sim::Faults::default());

    let _hub = HubProcess::start(&config, &url).await;
    let run = loop {
        let (_, run) = api.call(reqwest::Method::GET, &run_path, None).await;
        if run["status"] == "succeeded" || run["status"] == "failed" {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["attempts"], 2, "the killed attempt and the resumed one: {run}");
    // Resumed from the cursor: pages stored before the kill were not fetched again (at
    // most the page in flight at the kill is).
    assert!(
        run["records_received"].as_i64().unwrap() <= sim.total() as i64 + 250,
        "{run}"
    );

    // Every valid person once; every bad row rejected (a page re-sent after the kill may
    // reject its rows twice, never store a person twice).
    let practitioners = api.all_pages("/api/v1/practitioners?").await;
    let expected_rejects = sim.expected_rejects();
    assert_eq!(practitioners.len(), sim.total() - expected_rejects.len());
    let rejected: HashSet<String> = api
        .all_pages(&format!("/api/v1/rejects?connector_id={connector}"))
        .await
        .iter()
        .map(|r| r["source_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rejected, expected_rejects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hub_processes_on_one_postgres_fire_each_tick_and_run_each_job_once() {
    let Some(database_url) = databases().await.into_iter().flatten().next() else {
        return;
    };
    let first_dir = tempfile::tempdir().unwrap();
    let second_dir = tempfile::tempdir().unwrap();
    let (first_config, first_url) = hub_config(first_dir.path(), Some(&database_url), "");
    let (second_config, second_url) = hub_config(second_dir.path(), Some(&database_url), "");
    let _first = HubProcess::start(&first_config, &first_url).await;
    // Replicas share the master key.
    std::fs::create_dir_all(second_dir.path().join("data")).unwrap();
    std::fs::copy(
        first_dir.path().join("data/master.key"),
        second_dir.path().join("data/master.key"),
    )
    .unwrap();
    let _second = HubProcess::start(&second_config, &second_url).await;
    let api = api(&first_url);

    let sim = hub_sim::KkiSim::new(hub_sim::KkiConfig {
        people: 60,
        expired_rate: 0.0,
        ..Default::default()
    });
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let started = chrono::Utc::now();
    let connector = api
        .create(
            "/api/v1/connectors",
            json!({
                "name": "kki", "plugin": "kki",
                "config": { "base_url": server.base_url() },
                "egress": [server.addr.to_string()],
                "secrets": { "api-token": sim.config().api_token },
                "schedule": "*/2 * * * * *", "timezone": "UTC",
                "enabled": true,
            }),
        )
        .await;
    let connector = connector["id"].as_str().unwrap().to_string();
    let secret = api
        .create(&format!("/api/v1/connectors/{connector}/webhook-secret"), json!({}))
        .await;
    // Half the webhooks to each hub.
    for (n, url) in [&first_url, &second_url].into_iter().enumerate() {
        sim.subscribe(
            &format!("{url}/webhooks/{connector}"),
            secret["secret"].as_str().unwrap(),
        )
        .unwrap();
        for index in (n * 30)..(n * 30 + 30) {
            assert_eq!(sim.add_training(index, "Pelatihan Replika").await.unwrap().status, 202);
        }
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, _) = api
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/connectors/{connector}"),
            Some(json!({ "schedule": "" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let stopped = chrono::Utc::now();

    let mut jobs = api.settled_jobs(&connector, "webhook").await;
    jobs.extend(api.settled_jobs(&connector, "sync").await);
    for job in &jobs {
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "claimed by one hub, once: {job}");
    }
    let runs = api.all_pages(&format!("/api/v1/connectors/{connector}/runs?")).await;
    let cron_runs = runs.iter().filter(|r| r["trigger"] == "cron").count();
    // Both hubs check the schedule every second; each even second is at most one run.
    let ticks = ((stopped - started).num_seconds() / 2 + 1) as usize;
    assert!(
        (1..=ticks).contains(&cron_runs),
        "{cron_runs} cron runs in {ticks} ticks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mqtt_message_is_stored_after_a_kill_9_in_the_middle_of_ingest() {
    let Ok(broker) = std::env::var("HUB_TEST_MQTT_ADDR") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set HUB_TEST_MQTT_ADDR so the MQTT crash test runs"
        );
        return;
    };
    let (host, port) = broker.rsplit_once(':').expect("HUB_TEST_MQTT_ADDR is host:port");
    let port: u16 = port.parse().expect("HUB_TEST_MQTT_ADDR port");
    for database_url in databases().await {
        mqtt_kill_restart(database_url, host, port).await;
    }
}

/// Observations of the burst (the subscription probe's are dated 2020).
async fn burst_observations(api: &Api) -> usize {
    api.all_pages("/api/v1/observations?")
        .await
        .iter()
        .filter(|o| !o["effective_at"].as_str().unwrap().starts_with("2020"))
        .count()
}

async fn mqtt_kill_restart(database_url: Option<String>, host: &str, port: u16) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mqtt =
        format!("[mqtt]\nhost = {host:?}\nport = {port}\nclient_id = \"crash-{run}\"\nshare_group = \"g{run}\"\n");
    let (config, url) = hub_config(dir.path(), database_url.as_deref(), &mqtt);
    let mut hub = HubProcess::start(&config, &url).await;
    let api = api(&url);
    let prefix = format!("crash/{run}");
    api.create(
        "/api/v1/connectors",
        json!({
            "name": "iot", "plugin": "iot-sensors",
            "config": { "topics": [format!("{prefix}/+/vitals")] },
            "enabled": true,
        }),
    )
    .await;
    let quiet = |devices| hub_sim::IotConfig {
        devices,
        topic_prefix: prefix.clone(),
        anomaly_rate: 0.0,
        fault_rate: 0.0,
        malformed_rate: 0.0,
        ..Default::default()
    };
    // The subscribers start within a couple of seconds: probe until one message lands.
    let probe = hub_sim::IotSim::new(quiet(1));
    let epoch = "2020-01-01T00:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let mut attempt = 0;
    while api.all_pages("/api/v1/observations?").await.is_empty() {
        assert!(attempt < 100, "the hub never took a message from {prefix}");
        probe
            .publish(host, port, 1, None, epoch + chrono::Duration::seconds(attempt))
            .await
            .unwrap();
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 20 devices × 150 readings at 1,500 messages/s; the hub dies a little way in and the
    // publisher carries on into the broker while it is down.
    let sensors = hub_sim::IotSim::new(quiet(20));
    let (host_owned, started) = (host.to_string(), chrono::Utc::now());
    let publisher = tokio::spawn(async move { sensors.publish(&host_owned, port, 150, Some(1_500), started).await });
    while burst_observations(&api).await < 200 {
        assert!(
            !publisher.is_finished(),
            "the burst ended before the hub stored 200 observations"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub.kill_9();
    assert!(!publisher.is_finished(), "the kill came after the burst ended");
    let published = publisher.await.unwrap().unwrap();
    assert_eq!(published.messages, 3_000, "the broker accepted every message");

    // Restarted, the hub's sessions get what was in flight (unacknowledged) at the kill and
    // what the broker queued while it was down.
    let _hub = HubProcess::start(&config, &url).await;
    let mut stored = 0;
    for _ in 0..300 {
        stored = burst_observations(&api).await;
        if stored >= published.observations {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        stored, published.observations,
        "every message the broker accepted is stored, each once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_committed_before_a_kill_9_is_delivered_after_restart() {
    for database_url in databases().await {
        events_kill_restart(database_url).await;
    }
}

async fn events_kill_restart(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    // A short lease, so the restarted hub takes the subscription over soon after the kill.
    let events = "[events]\npoll_ms = 50\nlease_secs = 3\ntimeout_secs = 1\nretry_secs = [1, 1, 1, 1, 1]\n";
    let (config, url) = hub_config(dir.path(), database_url.as_deref(), events);
    let mut hub = HubProcess::start(&config, &url).await;
    let api = api(&url);
    // Slow answers, so the kill lands in the middle of the deliveries.
    let subscriber = hub_sim::subscriber::SubscriberSim::new();
    subscriber.answer_always(hub_sim::subscriber::Answer::Slow(Duration::from_millis(40)));
    let receiver = hub_sim::serve(subscriber.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    api.create("/api/v1/subscriptions", json!({ "url": receiver.base_url() }))
        .await;
    let sim = hub_sim::RegnakesSim::new(hub_sim::RegnakesConfig {
        people: 600,
        ..Default::default()
    });
    let server = hub_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let connector = regnakes_connector(&api, &sim, &server).await;
    assert_eq!(api.run_to_end(&connector).await["status"], "succeeded");
    while subscriber.accepted().len() < 50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hub.kill_9();
    let before_restart = subscriber.accepted().len();

    let _hub = HubProcess::start(&config, &url).await;
    subscriber.answer_always(hub_sim::subscriber::Answer::Accept);
    let events: HashSet<String> = (api.all_pages("/api/v1/events?").await.iter())
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        before_restart < events.len(),
        "the kill came before every event was delivered"
    );
    for _ in 0..600 {
        let accepted: HashSet<String> = subscriber.accepted().into_iter().map(|d| d.id).collect();
        if events.is_subset(&accepted) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accepted: HashSet<String> = subscriber.accepted().into_iter().map(|d| d.id).collect();
    panic!(
        "{} of {} committed events delivered 30 s after the restart",
        events.intersection(&accepted).count(),
        events.len()
    );
}
