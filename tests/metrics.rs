//! `GET /metrics` as Prometheus reads it: what a sync, a refused request and a webhook
//! count, under which names and labels; the metrics token; the number of series a real
//! workload makes. The registry is the process's, shared by the tests here, so each test
//! names its connectors apart and asserts on its own.

use hub_e2e::{Backend, Scraped, TestHub, backends, kki, regnakes};
use reqwest::StatusCode;

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// Names follow Prometheus conventions, and no label value is an id: connector and plugin
/// names, route templates and fixed words only.
fn assert_conventions(scraped: &Scraped) {
    for line in scraped.text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line.split_whitespace().skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        assert!(name.starts_with("hub_"), "{name}: every metric has the hub_ prefix");
        if kind == "counter" {
            assert!(name.ends_with("_total"), "{name}: counters end in _total");
        } else {
            assert!(!name.ends_with("_total"), "{name}: only counters end in _total");
        }
        assert!(
            !name.contains("millis") && !name.contains("_ms"),
            "{name}: base units (seconds)"
        );
    }
    for (name, labels, _) in &scraped.samples {
        for (key, value) in labels {
            let uuid = value.len() == 36 && value.matches('-').count() == 4;
            let hex_id = value.len() >= 32 && value.chars().all(|c| c.is_ascii_hexdigit());
            assert!(!uuid && !hex_id, "{name}{{{key}={value:?}}}: ids stay out of labels");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_is_counted_by_connector_and_outcome_under_conventional_names() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let sim_config = hub_sim::RegnakesConfig {
            people: 300,
            malformed_rate: 0.1,
            ..Default::default()
        };
        let (_sim, server) = regnakes(sim_config.clone()).await;
        let name = format!("metrics-sync-{}", backend_name(backend));
        let connector = hub.regnakes_connector(&name, &server.base_url(), &sim_config).await;
        let run = hub.run_to_end(&connector).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        let rejected = run["records_rejected"].as_i64().unwrap() as f64;
        assert!(rejected > 0.0, "malformed rows are rejected: {run}");

        let scraped = hub.metrics().await;
        let this = ("connector", name.as_str());
        assert_eq!(scraped.sum("hub_runs_total", &[this, ("status", "succeeded")]), 1.0);
        assert_eq!(scraped.sum("hub_runs_total", &[this, ("status", "failed")]), 0.0);
        assert_eq!(scraped.sum("hub_run_duration_seconds_count", &[this]), 1.0);
        for outcome in ["created", "updated", "unchanged", "rejected"] {
            assert_eq!(
                scraped.sum("hub_records_total", &[this, ("outcome", outcome)]),
                run[format!("records_{outcome}")].as_i64().unwrap() as f64,
                "{outcome} records counted as the run counted them: {run}"
            );
        }
        let last_success = scraped.sum("hub_connector_last_success_timestamp_seconds", &[this]);
        let now = chrono::Utc::now().timestamp() as f64;
        assert!(
            (now - last_success).abs() < 120.0,
            "last success {last_success}, now {now}"
        );
        assert_eq!(scraped.sum("hub_connector_enabled", &[this]), 1.0);
        assert!(scraped.has("hub_jobs", &[("kind", "sync"), ("status", "queued")]));
        assert!(scraped.has("hub_jobs_oldest_queued_age_seconds", &[("kind", "webhook")]));
        assert!(scraped.sum("hub_jobs_finished_total", &[("kind", "sync"), ("outcome", "succeeded")]) >= 1.0);
        let plugin = ("plugin", "regnakes");
        assert!(scraped.sum("hub_plugin_call_duration_seconds_count", &[plugin, ("export", "sync")]) >= 1.0);
        assert!(scraped.sum("hub_plugin_instantiate_duration_seconds_count", &[plugin]) >= 1.0);
        let run_route = [
            ("method", "POST"),
            ("route", "/api/v1/connectors/{id}/run"),
            ("status", "202"),
        ];
        assert!(scraped.sum("hub_http_requests_total", &run_route) >= 1.0);
        assert_eq!(
            scraped.sum("hub_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
            1.0
        );
        assert_eq!(scraped.sum("hub_database_up", &[]), 1.0);
        assert!(scraped.sum("hub_db_pool_max_connections", &[]) >= 1.0);
        assert!(scraped.sum("hub_data_key_active_version", &[]) >= 1.0);
        assert!(!scraped.text.contains(&connector), "the connector's id is in no label");
        assert_conventions(&scraped);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_off_the_allow_list_and_refused_webhooks_are_counted() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let sim_config = hub_sim::RegnakesConfig {
        people: 20,
        ..Default::default()
    };
    let (_sim, server) = regnakes(sim_config.clone()).await;
    let connector = hub
        .regnakes_connector("metrics-fenced", &server.base_url(), &sim_config)
        .await;
    hub.refuse_egress(&connector).await;
    let before = hub.metrics().await;
    let denied = [("plugin", "regnakes"), ("reason", "egress_denied")];
    let run = hub.run_to_end(&connector).await;
    assert_eq!(run["status"], "failed", "{run}");

    let refused = hub
        .http
        .post(hub.url(&format!("/webhooks/{connector}")))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND, "regnakes takes no webhooks");

    let after = hub.metrics().await;
    assert!(
        after.sum("hub_plugin_traps_total", &denied) > before.sum("hub_plugin_traps_total", &denied),
        "the refused request is counted"
    );
    let failed = [("connector", "metrics-fenced"), ("status", "failed")];
    assert_eq!(after.sum("hub_runs_total", &failed), 1.0);
    assert!(
        after.sum("hub_webhooks_received_total", &[("result", "not_found")])
            > before.sum("hub_webhooks_received_total", &[("result", "not_found")])
    );
    assert!(after.sum("hub_webhook_accept_duration_seconds_count", &[]) >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_are_counted_under_two_labels_not_one_series_each() {
    let hub = TestHub::start(Backend::Sqlite).await;
    for n in 0..20 {
        let method = reqwest::Method::from_bytes(format!("PROBE{n}").as_bytes()).unwrap();
        let answer = hub
            .http
            .request(method, hub.url(&format!("/api/v1/connectors/{n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED);
        let answer = hub
            .http
            .get(hub.url(&format!("/no-such-page-{n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    }
    let scraped = hub.metrics().await;
    let other = [
        ("method", "other"),
        ("route", "/api/v1/connectors/{id}"),
        ("status", "405"),
    ];
    assert_eq!(scraped.sum("hub_http_requests_total", &other), 20.0);
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert_eq!(scraped.sum("hub_http_requests_total", &unmatched), 20.0);
    assert!(!scraped.text.contains("PROBE"), "a method as sent is no label");
    assert!(!scraped.text.contains("no-such-page"), "a path as sent is no label");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_metrics_token_and_without_one_are_served_to_no_one_unless_made_public() {
    const TOKEN: &str = "metrics-token-0123456789";
    let hub = TestHub::start_with(Backend::Sqlite, |config| {
        config.auth.metrics_token = Some(hub::config::SecretString::new(TOKEN));
    })
    .await;
    let scrape = |credential: Option<&'static str>| {
        let mut request = hub.http.get(hub.url("/metrics"));
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        request.send()
    };
    for refused in [None, Some("metrics-token-wrong-guess"), Some(hub_e2e::ADMIN_KEY)] {
        let answer = scrape(refused).await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{refused:?}");
        assert_eq!(answer.headers()["www-authenticate"], "Bearer");
        let problem: serde_json::Value = answer.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("HUB_METRICS_TOKEN"),
            "{problem}"
        );
    }
    let answer = scrape(Some(TOKEN)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(answer.text().await.unwrap().contains("hub_build_info"));

    // Deny by default: no token and not made public, no one gets the metrics.
    let closed = TestHub::start_with(Backend::Sqlite, |config| config.auth.metrics_public = false).await;
    for credential in [None, Some(hub_e2e::ADMIN_KEY)] {
        let mut request = closed.http.get(closed.url("/metrics"));
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        let problem: serde_json::Value = answer.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("metrics_public"),
            "{problem}"
        );
    }
}

/// The bound: a hub that synced 5,000 people and took 1,000 webhooks shows fewer
/// than 2,000 series, however many people and events pass through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_people_and_a_thousand_webhooks_make_under_two_thousand_series() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let sim_config = hub_sim::RegnakesConfig::default();
    assert_eq!(sim_config.people, 5_000);
    let (_sim, server) = regnakes(sim_config.clone()).await;
    let connector = hub
        .regnakes_connector("metrics-5000", &server.base_url(), &sim_config)
        .await;
    let run = hub.run_to_end(&connector).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    let (kki_sim, kki_server) = kki(hub_sim::KkiConfig {
        people: 1_000,
        ..Default::default()
    })
    .await;
    let kki_connector = hub
        .token_connector(
            "metrics-kki",
            "kki",
            &kki_server.base_url(),
            &kki_sim.config().api_token,
        )
        .await;
    let (secret, url) = hub.webhook_secret(&kki_connector).await;
    kki_sim.subscribe(&url, &secret).unwrap();
    for person in 0..1_000 {
        assert_eq!(kki_sim.revoke(person).await.unwrap().status, 202);
    }
    let scraped = hub.metrics().await;
    assert!(scraped.sum("hub_webhooks_received_total", &[("result", "queued")]) >= 1_000.0);
    let series = scraped.samples.len();
    assert!(series < 2_000, "{series} series after 5,000 people and 1,000 webhooks");
    assert_conventions(&scraped);
}
