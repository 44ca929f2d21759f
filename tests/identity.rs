//! Identity (docs/golden-record.md): a practitioner is a person identified by their NIK;
//! whether a connector's records may create one is its policy; STR numbers are credentials,
//! and an old number still finds its holder after a re-issue. Each source's record says
//! which matching tier joined it. Simulators over HTTP, both backends.

use hub_e2e::{TestHub, backends, kki, regnakes, sisdmk};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A practitioner's id, `match_index`, `twin_index` and `match_version`, as stored.
type StoredKeys = (String, Option<Vec<u8>>, Option<Vec<u8>>, Option<i64>);

/// The one practitioner a lookup (`str=…` or `nik=…`) finds.
async fn the_one(hub: &TestHub, query: &str) -> Value {
    let found = hub.get(&format!("/api/v1/practitioners?{query}")).await;
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{query}: {found}");
    items[0].clone()
}

/// The tier that joined `system`'s record to `practitioner`.
fn matched_by(practitioner: &Value, system: &str) -> String {
    practitioner["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["system"] == system)
        .and_then(|s| s["matched_by"].as_str())
        .unwrap_or_else(|| panic!("no {system} source in {practitioner}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_registry_creates_workers_without_an_str_where_a_licensing_policy_creates_nobody() {
    const WORKERS: usize = 30;
    const STAFF: usize = 10;
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let (sim, server) = sisdmk(hub_sim::SisdmkConfig {
            people: WORKERS,
            staff_without_str: STAFF,
            ..Default::default()
        })
        .await;
        let token = &sim.config().api_token;

        // Overridden to the licensing registries' rule: SISDMK sends no STR status, so none
        // of its records may create anyone, and each reject says why.
        let strict = hub
            .token_connector("sisdmk-strict", "sisdmk", &server.base_url(), token)
            .await;
        let (status, view) = hub
            .call(
                reqwest::Method::PATCH,
                &format!("/api/v1/connectors/{strict}"),
                Some(json!({ "creates_practitioners": "with-active-str" })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["creates_practitioners"], "with-active-str");
        let run = hub.run_to_end(&strict).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["records_created"], 0, "{run}");
        assert_eq!(run["records_rejected"], (WORKERS + STAFF) as i64, "{run}");
        let rejects = hub.all_pages(&format!("/api/v1/rejects?connector_id={strict}")).await;
        assert!(
            rejects.iter().all(|r| r["reason"]
                .as_str()
                .unwrap()
                .contains("creates_practitioners = with-active-str")),
            "{rejects:?}"
        );

        // The plugin's own policy (plugin.toml: with-valid-nik): everyone, STR or not.
        let staff_registry = hub.token_connector("sisdmk", "sisdmk", &server.base_url(), token).await;
        let view = hub.get(&format!("/api/v1/connectors/{staff_registry}")).await;
        assert_eq!(view["creates_practitioners"], "with-valid-nik", "{view}");
        let run = hub.run_to_end(&staff_registry).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["records_created"], (WORKERS + STAFF) as i64, "{run}");
        assert_eq!(run["records_rejected"], 0, "{run}");

        let driver = sim.person(WORKERS + STAFF - 1);
        let found = the_one(&hub, &format!("nik={}", driver.nik)).await;
        assert_eq!(found["str_number"], Value::Null, "{found}");
        assert_eq!(found["profession"], hub_sim::sisdmk::SUPPORT_STAFF, "{found}");
        assert_eq!(matched_by(&found, "sisdmk"), "created", "{found}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_listed_again_under_a_mistyped_nik_is_held_while_batches_are_stored_side_by_side() {
    // A page of 1,000 is stored as two transactions of 500, begun together, and PostgreSQL
    // stores batches about different people side by side. The page lists 500 workers
    // without an STR, and each again under another record id with the NIK's last digit
    // changed: the same name, birth date and place under another NIK, to be held for review.
    // No unique index would catch a pair split between the two batches; only the second
    // waiting for the first one's write gets it right.
    const WORKERS: usize = 500;
    let config = hub_sim::SisdmkConfig::default();
    let worker = |index: usize| {
        let mut person = hub_sim::people::person(config.seed, index);
        person.str_number.clear();
        person
    };
    let mut listed: Vec<_> = (0..WORKERS).map(worker).collect();
    for index in 0..WORKERS {
        let mut again = worker(index);
        again.index += WORKERS;
        // Up by one, or down from 9: a NIK's sequence (its last four digits) is never 0000.
        let last = again.nik.pop().and_then(|d| d.to_digit(10)).unwrap();
        again
            .nik
            .push(char::from_digit(if last == 9 { 8 } else { last + 1 }, 10).unwrap());
        listed.push(again);
    }
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let sim = hub_sim::SisdmkSim::with_people(config.clone(), listed.clone());
        let server = hub_e2e::serve(sim.router()).await;
        let url = server.base_url();
        let (status, created) = hub
            .post(
                "/api/v1/connectors",
                json!({
                    "name": "sisdmk", "plugin": "sisdmk", "enabled": true,
                    "config": { "base_url": url, "per_page": 1000 },
                    "egress": [url.trim_start_matches("http://")],
                    "secrets": { "api-token": config.api_token },
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let run = hub.run_to_end(created["id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "succeeded", "{backend:?}: {run}");
        assert_eq!(run["records_received"], listed.len() as i64, "{backend:?}: {run}");
        assert_eq!(run["records_created"], WORKERS as i64, "{backend:?}: {run}");
        assert_eq!(run["records_held"], WORKERS as i64, "{backend:?}: {run}");
        assert_eq!(run["records_rejected"], 0, "{backend:?}: {run}");
        let everyone = hub.all_pages("/api/v1/practitioners").await;
        assert_eq!(everyone.len(), WORKERS, "{backend:?}");
        let held = hub.all_pages("/api/v1/identity/candidates").await;
        assert_eq!(held.len(), WORKERS, "{backend:?}");
        assert!(held.iter().all(|c| c["kind"] == "same-name-birth"), "{held:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_str_number_still_finds_the_person_after_a_re_issue() {
    const PEOPLE: usize = 20;
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let registry_config = hub_sim::RegnakesConfig {
            people: PEOPLE,
            ..Default::default()
        };
        let (registry, registry_server) = regnakes(registry_config.clone()).await;
        let (kki_sim, kki_server) = kki(hub_sim::KkiConfig {
            people: PEOPLE,
            expired_rate: 0.0,
            ..Default::default()
        })
        .await;
        let from_regnakes = hub
            .regnakes_connector("regnakes", &registry_server.base_url(), &registry_config)
            .await;
        let from_kki = hub
            .token_connector("kki", "kki", &kki_server.base_url(), &kki_sim.config().api_token)
            .await;
        let (secret, url) = hub.webhook_secret(&from_kki).await;
        kki_sim.subscribe(&url, &secret).unwrap();
        for connector in [&from_regnakes, &from_kki] {
            let run = hub.run_to_end(connector).await;
            assert_eq!(run["status"], "succeeded", "{run}");
        }

        // A doctor RegNakes registered cleanly: KKI joined them by their STR.
        let valid: Vec<String> = registry.valid_people().into_iter().map(|p| p.nik).collect();
        let index = (0..PEOPLE)
            .find(|&i| valid.contains(&kki_sim.person(i).nik))
            .expect("a person both registries know");
        let old_str = kki_sim.person(index).str_number;
        let before = the_one(&hub, &format!("str={old_str}")).await;
        assert_eq!(matched_by(&before, "regnakes"), "created", "{before}");
        assert_eq!(matched_by(&before, "kki"), "str", "{before}");

        // KKI re-issues the STR: the same NIK and birth date join the new number to them.
        let (new_str, delivery) = kki_sim.reissue(index).await.unwrap();
        assert_eq!(delivery.status, 202, "{}", delivery.body);
        let job: Value = serde_json::from_str(&delivery.body).unwrap();
        let job = hub.wait_for_job(job["job_id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let after = the_one(&hub, &format!("str={new_str}")).await;
        assert_eq!(after["id"], before["id"], "one person, not two");
        assert_eq!(after["str_number"], new_str.as_str(), "KKI owns the STR: {after}");
        assert_eq!(matched_by(&after, "kki"), "nik", "{after}");
        assert_eq!(the_one(&hub, &format!("str={old_str}")).await["id"], before["id"]);

        // RegNakes still lists the old number: it finds the same person, by STR.
        registry.mutate(valid.len());
        let run = hub.run_to_end(&from_regnakes).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["records_created"], 0, "{run}");
        let again = the_one(&hub, &format!("nik={}", kki_sim.person(index).nik)).await;
        assert_eq!(again["id"], before["id"]);
        assert_eq!(matched_by(&again, "regnakes"), "str", "{again}");
        assert_eq!(again["str_number"], new_str.as_str(), "{again}");
        let everyone = hub.all_pages("/api/v1/practitioners").await;
        assert_eq!(everyone.len(), valid.len(), "nobody stored twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn practitioners_stored_by_an_older_hub_are_brought_up_to_date_when_a_hub_starts() {
    const PEOPLE: usize = 15;
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let config = hub_sim::RegnakesConfig {
            people: PEOPLE,
            ..Default::default()
        };
        let (registry, server) = regnakes(config.clone()).await;
        let connector = hub.regnakes_connector("regnakes", &server.base_url(), &config).await;
        let run = hub.run_to_end(&connector).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        let person = registry.valid_people().remove(0);
        let sql = hub.raw_sql().await;
        let keys = || async {
            let rows: Vec<StoredKeys> =
                sqlx::query_as("SELECT id, match_index, twin_index, match_version FROM practitioners ORDER BY id")
                    .fetch_all(&sql)
                    .await
                    .unwrap();
            rows
        };
        let computed = keys().await;
        let record_id = the_one(&hub, &format!("nik={}", person.nik)).await["sources"][0]["record_id"].clone();
        assert!(record_id.is_string(), "{record_id}");

        // As a database upgraded from before 0014 and 0015 holds them: no STR recorded as
        // held, match keys of the titles-only rule, no source record ids.
        for statement in [
            "DELETE FROM practitioner_strs",
            "UPDATE practitioners SET match_index = NULL, twin_index = NULL, match_version = NULL",
            "UPDATE practitioner_sources SET source_id = NULL",
        ] {
            sqlx::query(statement).execute(&sql).await.unwrap();
        }
        let found = hub
            .get(&format!("/api/v1/practitioners?str={}", person.str_number))
            .await;
        assert_eq!(found["items"].as_array().unwrap().len(), 0, "{found}");

        // Another hub starting on the same database (a file of the first's, on SQLite).
        let dir = hub.data_dir_sharing_keys();
        let mut config = hub.config.clone();
        config.database_url = Some(hub.config.database_url());
        config.data_dir = dir.path().to_path_buf();
        let _restarted = hub::Hub::start(config).await.expect("hub starts");
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM practitioner_strs")
            .fetch_one(&sql)
            .await
            .unwrap();
        assert_eq!(held as usize, registry.valid_people().len());
        let found = the_one(&hub, &format!("str={}", person.str_number)).await;
        assert_eq!(found["nik"], person.nik.as_str(), "{found}");
        assert_eq!(found["sources"][0]["record_id"], record_id, "{found}");
        assert_eq!(keys().await, computed, "the keys the pipeline computes when it writes");
        assert!(
            computed
                .iter()
                .all(|(_, key, twin, version)| key.is_some() && twin.is_some() && *version == Some(2))
        );
    }
}
