//! The identity review queue (docs/golden-record.md, "Review"): a record that is probably,
//! not surely, a stored person is held, never merged and never a person of its own; a
//! reviewer sees it beside the person field by field (values with `pii:read` only) and
//! decides; decisions are audited and survive every re-sync. Simulators over HTTP, both
//! backends.

use hub_e2e::{TestHub, backends, regnakes, serve};
use hub_sim::people::Person;
use hub_sim::{RegnakesConfig, SisdmkConfig, SisdmkSim};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The practitioners a lookup (`nik=…`) finds.
async fn found(hub: &TestHub, query: &str) -> Vec<Value> {
    hub.get(&format!("/api/v1/practitioners?{query}")).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Syncs SISDMK's `workers` through a new connector (a fresh cursor: every record arrives
/// again, as after a reset); returns the finished run.
async fn sync(hub: &TestHub, name: &str, sim: &hub_sim::Running) -> Value {
    let token = SisdmkConfig::default().api_token;
    let connector = hub.token_connector(name, "sisdmk", &sim.base_url(), &token).await;
    let run = hub.run_to_end(&connector).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    run
}

/// The open candidates, by the source record they hold.
async fn open(hub: &TestHub, credential: Option<&str>) -> HashMap<String, Value> {
    let path = "/api/v1/identity/candidates";
    let page = match credential {
        Some(key) => {
            let (status, page) = hub.call_as(key, Method::GET, path, None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            page
        }
        None => hub.get(path).await,
    };
    (page["items"].as_array().unwrap().iter())
        .map(|c| (c["record_id"].as_str().unwrap().to_string(), c.clone()))
        .collect()
}

/// Decides the candidate holding `record` (`merge`, `keep-apart`).
async fn decide(
    hub: &TestHub,
    candidates: &HashMap<String, Value>,
    record: &Person,
    verdict: &str,
) -> (StatusCode, Value) {
    let id = candidates[&hub_sim::sisdmk::record_id(record)]["id"].as_str().unwrap();
    hub.post(&format!("/api/v1/identity/candidates/{id}/{verdict}"), json!({}))
        .await
}

/// Splits `system`'s record out of practitioner `id`.
async fn split(hub: &TestHub, id: &str, system: &str) -> (StatusCode, Value) {
    hub.post(
        &format!("/api/v1/practitioners/{id}/split"),
        json!({ "system": system }),
    )
    .await
}

/// `people` health workers synced from RegNakes (no malformed rows, every STR active):
/// the people stored.
async fn registered(hub: &TestHub, people: usize) -> Vec<Person> {
    let config = RegnakesConfig {
        people,
        malformed_rate: 0.0,
        inactive_rate: 0.0,
        ..Default::default()
    };
    let (registry, server) = regnakes(config.clone()).await;
    let connector = hub.regnakes_connector("regnakes", &server.base_url(), &config).await;
    assert_eq!(hub.run_to_end(&connector).await["status"], "succeeded");
    registry.all_people()
}

/// `field`'s comparison in a candidate.
fn field<'a>(candidate: &'a Value, name: &str) -> &'a Value {
    (candidate["fields"].as_array().unwrap().iter())
        .find(|f| f["field"] == name)
        .unwrap_or_else(|| panic!("no {name} in {candidate}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probable_match_is_held_for_review_and_the_decision_stands_through_every_re_sync() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let people = registered(&hub, 10).await;
        let (p0, p1, p2, p3) = (&people[0], &people[1], &people[2], &people[3]);

        // SISDMK's view of four of them: one plainly the same person, three only probably.
        let stranger = hub_sim::people::person(RegnakesConfig::default().seed, 100);
        let str_on_another_nik = Person {
            str_number: p0.str_number.clone(),
            ..stranger.clone()
        };
        let other_birth_date = Person {
            birth_date: p1.birth_date.map(|d| d + chrono::Duration::days(1)),
            ..p1.clone()
        };
        let nik_typo = Person {
            nik: format!("{}9{}", &p2.nik[..12], &p2.nik[13..]),
            str_number: String::new(),
            full_name: format!("{}, S.Kep", p2.full_name.to_uppercase()),
            ..p2.clone()
        };
        let workers = vec![
            str_on_another_nik.clone(),
            other_birth_date,
            nik_typo.clone(),
            p3.clone(),
        ];
        let staff = SisdmkSim::with_people(SisdmkConfig::default(), workers);
        let sisdmk = serve(staff.router()).await;
        let run = sync(&hub, "sisdmk", &sisdmk).await;
        assert_eq!(
            (
                &run["records_held"],
                &run["records_updated"],
                &run["records_rejected"],
                &run["records_created"]
            ),
            (&json!(3), &json!(1), &json!(0), &json!(0)),
            "{run}"
        );

        // Held, and nowhere else: no reject, no person under the held NIKs.
        let candidates = open(&hub, None).await;
        let kind = |record: &Person| candidates[&hub_sim::sisdmk::record_id(record)]["kind"].clone();
        assert_eq!(kind(&str_on_another_nik), "str-on-two-niks");
        assert_eq!(kind(p1), "nik-birth-date");
        assert_eq!(kind(p2), "same-name-birth");
        assert!(hub.all_pages("/api/v1/rejects").await.is_empty());
        assert!(found(&hub, &format!("nik={}", stranger.nik)).await.is_empty());
        assert!(found(&hub, &format!("nik={}", nik_typo.nik)).await.is_empty());
        let typo = &candidates[&hub_sim::sisdmk::record_id(p2)];
        let person = &found(&hub, &format!("nik={}", p2.nik)).await[0];
        assert_eq!(typo["practitioner_id"], person["id"]);
        assert_eq!(field(typo, "nik")["verdict"], "disagree");
        assert_eq!(field(typo, "nik")["note"], "1 of 16 digits differ");
        assert_eq!(field(typo, "full_name")["verdict"], "agree", "titles and case aside");
        assert_eq!(field(typo, "birth_date")["verdict"], "agree");
        assert_eq!(field(typo, "nik")["record"], nik_typo.nik.as_str());

        // Values only with pii:read; reading them is audited.
        let viewer = hub.api_key("viewer", "viewer", false).await;
        let blind = open(&hub, Some(&viewer)).await;
        let blind_typo = &blind[&hub_sim::sisdmk::record_id(p2)];
        assert_eq!(field(blind_typo, "nik")["verdict"], "disagree");
        assert_eq!(field(blind_typo, "nik")["record"], Value::Null);
        assert_eq!(field(blind_typo, "nik")["practitioner"], Value::Null);
        let (status, _) = hub
            .call_as(
                &viewer,
                Method::POST,
                &format!("/api/v1/identity/candidates/{}/merge", typo["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "deciding takes operate");

        // A re-sync before anyone decides holds the same three, once each.
        let run = sync(&hub, "sisdmk-again", &sisdmk).await;
        assert_eq!(run["records_held"], 3, "{run}");
        assert_eq!(open(&hub, None).await.len(), 3);

        // Decisions: the birth date and the NIK are typos; the STR on another NIK is not
        // p0's record but a person of their own.
        let (status, outcome) = decide(&hub, &candidates, p1, "merge").await;
        assert_eq!(
            (status, &outcome["outcome"]),
            (StatusCode::OK, &json!("updated")),
            "{outcome}"
        );
        let (status, outcome) = decide(&hub, &candidates, p2, "merge").await;
        assert_eq!(
            (status, &outcome["outcome"]),
            (StatusCode::OK, &json!("updated")),
            "{outcome}"
        );
        let (status, outcome) = decide(&hub, &candidates, &str_on_another_nik, "keep-apart").await;
        assert_eq!(
            (status, &outcome["outcome"]),
            (StatusCode::OK, &json!("created")),
            "{outcome}"
        );
        let (status, again) = decide(&hub, &candidates, p1, "keep-apart").await;
        assert_eq!(status, StatusCode::CONFLICT, "{again}");
        assert!(open(&hub, None).await.is_empty());

        let sources = |person: &Value| -> HashMap<String, String> {
            (person["sources"].as_array().unwrap().iter())
                .map(|s| {
                    (
                        s["system"].as_str().unwrap().to_string(),
                        s["matched_by"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        let events = hub.all_pages("/api/v1/events").await;
        for merged in [p1, p2] {
            let person = &found(&hub, &format!("nik={}", merged.nik)).await[0];
            assert_eq!(sources(person)["sisdmk"], "review", "{person}");
            assert_eq!(person["birth_date"], json!(merged.birth_date), "RegNakes owns identity");
            // The outbox says so: SISDMK's record joined them on a reviewer's word.
            let subject = format!("practitioner/{}", person["id"].as_str().unwrap());
            let joined: Vec<&Value> = (events.iter())
                .filter(|e| e["subject"] == subject && e["type"] == "practitioner.merged")
                .collect();
            assert_eq!(joined.len(), 1, "{joined:?}");
            assert_eq!(joined[0]["data"]["source"], "sisdmk");
            assert_eq!(joined[0]["data"]["matched_by"], "review");
        }
        let own = found(&hub, &format!("nik={}", stranger.nik)).await;
        assert_eq!(own.len(), 1, "kept apart: a person of their own");
        let holder = found(&hub, &format!("str={}", p0.str_number)).await;
        assert_eq!(holder.len(), 1, "the STR still finds only its holder");
        assert_eq!(holder[0]["nik"], p0.nik.as_str());

        // Every decision stands through a re-sync: nothing held, nothing new.
        let run = sync(&hub, "sisdmk-third", &sisdmk).await;
        assert_eq!(
            (&run["records_held"], &run["records_created"], &run["records_rejected"]),
            (&json!(0), &json!(0), &json!(0)),
            "{run}"
        );
        assert!(open(&hub, None).await.is_empty());
        let people_now = hub.all_pages("/api/v1/practitioners").await.len();
        assert_eq!(people_now, people.len() + 1);

        let audit = hub.all_pages("/api/v1/audit").await;
        let count = |action: &str| audit.iter().filter(|e| e["action"] == action).count();
        assert_eq!((count("identity.merge"), count("identity.keep-apart")), (2, 1));
        assert!(
            audit
                .iter()
                .any(|e| e["action"] == "pii.read" && e["target"] == "identity-candidates")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_takes_one_sources_record_out_into_a_person_of_its_own_for_good() {
    for backend in backends() {
        let hub = TestHub::start(backend).await;
        let people = registered(&hub, 5).await;
        let (p2, p3) = (&people[2], &people[3]);

        // SISDMK has p2 under a NIK one digit off, with another phone, and p3 as they are; the
        // first is merged into p2 by review.
        let other = Person {
            nik: format!("{}9{}", &p2.nik[..12], &p2.nik[13..]),
            str_number: String::new(),
            ..p2.clone()
        };
        let staff = SisdmkSim::with_people(
            SisdmkConfig {
                new_phone_rate: 1.0,
                ..Default::default()
            },
            vec![other.clone(), p3.clone()],
        );
        let sisdmk = serve(staff.router()).await;
        sync(&hub, "sisdmk", &sisdmk).await;
        let candidate = open(&hub, None).await.remove(&hub_sim::sisdmk::record_id(p2)).unwrap();
        let (status, outcome) = hub
            .post(
                &format!(
                    "/api/v1/identity/candidates/{}/merge",
                    candidate["id"].as_str().unwrap()
                ),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{outcome}");
        let merged = found(&hub, &format!("nik={}", p2.nik)).await.remove(0);
        assert_eq!(merged["phone"], staff.phone(0).as_str(), "SISDMK owns contacts");
        let id = merged["id"].as_str().unwrap();

        // Split: SISDMK's record becomes a person of its own; p2 is merged again from RegNakes.
        let (status, taken) = split(&hub, id, "sisdmk").await;
        assert_eq!(status, StatusCode::OK, "{taken}");
        assert_eq!(taken["taken_from"], id);
        let kept = found(&hub, &format!("nik={}", p2.nik)).await.remove(0);
        assert_eq!(
            kept["phone"],
            p2.phone.as_str(),
            "the taken record's phone went with it"
        );
        assert_eq!(kept["sources"].as_array().unwrap().len(), 1, "{kept}");
        let own = found(&hub, &format!("nik={}", other.nik)).await;
        assert_eq!(own.len(), 1);
        assert_eq!(own[0]["id"], taken["practitioner_id"]);
        assert_eq!(
            own[0]["sources"][0]["record_id"],
            hub_sim::sisdmk::record_id(p2).as_str()
        );

        // It stays split through a re-sync.
        let run = sync(&hub, "sisdmk-again", &sisdmk).await;
        assert_eq!(
            (&run["records_held"], &run["records_created"]),
            (&json!(0), &json!(0)),
            "{run}"
        );
        assert_eq!(
            found(&hub, &format!("nik={}", p2.nik)).await[0]["sources"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        // What cannot be split, and why.
        let (status, body) = split(&hub, id, "sisdmk").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, body) = split(&hub, id, "regnakes").await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("only source"), "{body}");
        let same = found(&hub, &format!("nik={}", p3.nik)).await.remove(0);
        let (status, body) = split(&hub, same["id"].as_str().unwrap(), "sisdmk").await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("own NIK"), "{body}");

        let audit = hub.all_pages("/api/v1/audit").await;
        assert_eq!(audit.iter().filter(|e| e["action"] == "practitioner.split").count(), 1);
        // One event says so, in the outbox with the change.
        let events = hub.all_pages("/api/v1/events").await;
        let splits: Vec<&Value> = events.iter().filter(|e| e["type"] == "practitioner.split").collect();
        assert_eq!(splits.len(), 1, "{splits:?}");
        assert_eq!(splits[0]["subject"], format!("practitioner/{id}"));
        assert_eq!(splits[0]["data"]["source"], "sisdmk");
        assert_eq!(splits[0]["data"]["split_into"], taken["practitioner_id"]);
    }
}
