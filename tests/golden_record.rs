//! The golden record end to end: RegNakes, KKI and SISDMK simulators over HTTP, their three
//! connectors syncing into one hub (KKI and SISDMK at the same time), then signed KKI and
//! SISDMK webhooks.
//! One practitioner per person, each field from the source that owns it (docs/golden-record.md),
//! a record whose STR belongs to someone else never merges, and when KKI is down its last
//! data is served marked stale. Both backends.

use hub_e2e::{TestHub, backends, kki, regnakes, sisdmk};
use serde_json::{Value, json};

const PEOPLE: usize = 40;

fn source_of(practitioner: &Value, field: &str) -> String {
    practitioner["provenance"][field]["source"]
        .as_str()
        .unwrap_or_else(|| panic!("no provenance for {field} in {practitioner}"))
        .to_string()
}

fn str_status(practitioner: &Value) -> String {
    practitioner["registrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "str")
        .and_then(|r| r["status"].as_str())
        .unwrap_or_else(|| panic!("no STR registration in {practitioner}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sources_make_one_practitioner_with_each_field_from_its_owner() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let registry_config = hub_sim::RegnakesConfig {
            people: PEOPLE,
            ..Default::default()
        };
        let (_registry, registry_server) = regnakes(registry_config.clone()).await;
        let (kki_sim, kki_server) = kki(hub_sim::KkiConfig {
            people: PEOPLE,
            ..Default::default()
        })
        .await;
        let (sisdmk_sim, sisdmk_server) = sisdmk(hub_sim::SisdmkConfig {
            people: PEOPLE,
            // Every worker's phone here is newer than the registry's.
            new_phone_rate: 1.0,
            ..Default::default()
        })
        .await;
        let from_regnakes = hub
            .regnakes_connector("regnakes", &registry_server.base_url(), &registry_config)
            .await;
        let from_kki = hub
            .token_connector("kki", "kki", &kki_server.base_url(), &kki_sim.config().api_token)
            .await;
        let from_sisdmk = hub
            .token_connector(
                "sisdmk",
                "sisdmk",
                &sisdmk_server.base_url(),
                &sisdmk_sim.config().api_token,
            )
            .await;

        for (connector, events) in [(&from_kki, kki_sim.events()), (&from_sisdmk, sisdmk_sim.events())] {
            let (secret, url) = hub.webhook_secret(connector).await;
            events.subscribe(&url, &secret).unwrap();
        }

        // The registry first, so that SISDMK's rows join the people it made. Then KKI and
        // SISDMK at once: concurrent merges into the same people.
        let regnakes_run = hub.run_to_end(&from_regnakes).await;
        assert_eq!(regnakes_run["status"], "succeeded", "{regnakes_run}");
        let (kki_run, sisdmk_run) = tokio::join!(hub.run_to_end(&from_kki), hub.run_to_end(&from_sisdmk));
        for run in [&kki_run, &sisdmk_run] {
            assert_eq!(run["status"], "succeeded", "{run}");
        }
        assert!(sisdmk_run["records_updated"].as_i64().unwrap() > 0, "{sisdmk_run}");
        assert_eq!(sisdmk_run["records_created"], 0, "{sisdmk_run}");

        // One practitioner per person, whichever sources know them.
        let all = hub.all_pages("/api/v1/practitioners").await;
        let mut strs: Vec<&str> = all.iter().filter_map(|p| p["str_number"].as_str()).collect();
        strs.sort();
        strs.dedup();
        assert_eq!(strs.len(), all.len(), "a person stored twice ({backend:?})");
        assert!(all.len() <= PEOPLE, "{} practitioners for {PEOPLE} people", all.len());

        // A doctor every source knows and RegNakes sent cleanly.
        let index = (0..PEOPLE)
            .find(|&i| {
                let person = kki_sim.person(i);
                all.iter().any(|p| {
                    p["str_number"] == person.str_number.as_str()
                        && p["provenance"]["full_name"]["source"] == "regnakes"
                        && p["provenance"]["registrations.str"]["source"] == "kki"
                        && str_status(p) == "active"
                })
            })
            .expect("a person known to all three sources");
        let person = kki_sim.person(index);
        let path = format!("/api/v1/practitioners?str={}", person.str_number);
        let found = hub.get(&path).await;
        let items = found["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{found}");
        let golden = &items[0];
        assert_eq!(golden["nik"], person.nik.as_str());
        assert_eq!(golden["phone"], sisdmk_sim.phone(index).as_str(), "{golden}");
        assert_ne!(golden["phone"], person.phone.as_str(), "the registry's older phone won");
        assert_eq!(source_of(golden, "phone"), "sisdmk");
        assert_eq!(source_of(golden, "employments"), "sisdmk");
        assert_eq!(source_of(golden, "educations"), "sisdmk");
        assert_eq!(source_of(golden, "trainings"), "kki");
        assert_eq!(source_of(golden, "nik"), "regnakes");
        assert!(!golden["trainings"].as_array().unwrap().is_empty(), "{golden}");
        let current_post = golden["employments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["end_date"].is_null())
            .cloned()
            .unwrap_or_else(|| panic!("no current post in {golden}"));
        assert_eq!(current_post["facility_name"], sisdmk_sim.facility(index));

        // KKI revokes the STR: KKI owns STR status, so the revocation stands even after
        // RegNakes (which still says active) syncs again.
        let revoked = kki_sim.revoke(index).await.unwrap();
        assert_eq!(revoked.status, 202, "{revoked:?}");
        let job: Value = serde_json::from_str(&revoked.body).unwrap();
        assert_eq!(
            hub.wait_for_job(job["job_id"].as_str().unwrap()).await["status"],
            "succeeded"
        );
        let resync = hub.run_to_end(&from_regnakes).await;
        assert_eq!(resync["status"], "succeeded", "{resync}");
        let after = &hub.get(&path).await["items"][0];
        assert_eq!(str_status(after), "revoked", "{after}");
        assert_eq!(after["phone"], golden["phone"], "a KKI event erased SISDMK's phone");

        // SISDMK moves the worker: employment follows, the rest stays.
        let facility = (0..hub_sim::sisdmk::FACILITIES.len())
            .find(|&f| hub_sim::sisdmk::FACILITIES[f].1 != sisdmk_sim.facility(index))
            .unwrap();
        let moved = sisdmk_sim.transfer(index, facility).await.unwrap();
        assert_eq!(moved.status, 202, "{moved:?}");
        let job: Value = serde_json::from_str(&moved.body).unwrap();
        assert_eq!(
            hub.wait_for_job(job["job_id"].as_str().unwrap()).await["status"],
            "succeeded"
        );
        let after = &hub.get(&path).await["items"][0];
        let posts = after["employments"].as_array().unwrap();
        let current = posts.iter().find(|e| e["end_date"].is_null()).unwrap();
        assert_eq!(current["facility_name"], hub_sim::sisdmk::FACILITIES[facility].1);
        assert_eq!(str_status(after), "revoked", "{after}");
        assert_eq!(after["id"], golden["id"]);

        // SISDMK sends someone else's NIK under this STR: probably not surely this person,
        // never merged; the record is held for identity review and both people are as they
        // were.
        let other = (0..PEOPLE)
            .map(|i| kki_sim.person(i))
            .find(|p| p.nik != person.nik && p.sex == person.sex)
            .unwrap();
        let impostor = json!({
            "id_sdmk": "SDMK-9999999",
            "nik": other.nik,
            "nama": other.full_name,
            "tempat_lahir": other.birth_place,
            "tanggal_lahir": other.birth_date,
            "jenis_kelamin": other.sex.code(),
            "nomor_str": person.str_number,
            "no_hp": "081299990000",
            "diperbarui_pada": chrono::Utc::now().to_rfc3339(),
        });
        let conflict = sisdmk_sim.events().send("pegawai.diperbarui", impostor).await.unwrap();
        assert_eq!(conflict.status, 202, "{conflict:?}");
        let job: Value = serde_json::from_str(&conflict.body).unwrap();
        let job = hub.wait_for_job(job["job_id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let held = hub.get("/api/v1/identity/candidates").await;
        assert_eq!(held["items"][0]["record_id"], "SDMK-9999999", "{held}");
        assert_eq!(held["items"][0]["kind"], "str-on-two-niks", "{held}");
        assert_eq!(held["items"][0]["practitioner_id"], after["id"], "{held}");
        let unchanged = &hub.get(&path).await["items"][0];
        assert_eq!(unchanged["nik"], person.nik.as_str());
        assert_eq!(unchanged["phone"], after["phone"]);
        assert_eq!(
            hub.all_pages("/api/v1/practitioners").await.len(),
            all.len(),
            "the conflicting record created or merged a practitioner"
        );
        assert!(unchanged["stale_sources"].as_array().unwrap().is_empty(), "{unchanged}");

        // KKI goes down: its sync fails, and the hub keeps serving what KKI said last,
        // marked stale, instead of failing the read.
        kki_sim.set_faults(hub_sim::Faults {
            outage: true,
            ..Default::default()
        });
        let failed = hub.run_to_end(&from_kki).await;
        assert_eq!(failed["status"], "failed", "{failed}");
        let cached = &hub.get(&path).await["items"][0];
        assert_eq!(str_status(cached), "revoked", "{cached}");
        assert_eq!(cached["stale_sources"], json!(["kki"]), "{cached}");
        assert_eq!(cached["provenance"]["registrations.str"]["stale"], true, "{cached}");
        assert!(cached["provenance"]["phone"].get("stale").is_none(), "{cached}");
        kki_sim.set_faults(hub_sim::Faults::default());
        let recovered = hub.run_to_end(&from_kki).await;
        assert_eq!(recovered["status"], "succeeded", "{recovered}");
        let fresh = &hub.get(&path).await["items"][0];
        assert_eq!(fresh["stale_sources"], json!([]), "{fresh}");
    }
}
