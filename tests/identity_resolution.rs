//! Identity resolution, measured (docs/golden-record.md): a labelled population
//! (`hub_sim::population`: titles, old spellings, birth-place aliases, missing birth dates
//! and STRs, re-issued STRs, people without any STR, and hard negatives) synced through the
//! bundled RegNakes, KKI and SISDMK plugins over HTTP, then scored pair by pair: of every two
//! records the hub put in one practitioner, how many are one person (precision), and of
//! every two records of one person, how many the hub put together (recall). Both backends.

use hub_e2e::{TestHub, backends, serve};
use hub_sim::people::Person;
use hub_sim::{KkiConfig, Population, RegnakesConfig, SisdmkConfig, kki, regnakes, sisdmk};
use std::collections::{HashMap, HashSet};

const PEOPLE: usize = 3_000;

/// Pairs among `n` records.
fn pairs(n: usize) -> usize {
    n * n.saturating_sub(1) / 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_one_person_become_one_practitioner_and_two_people_never_merge() {
    let population = Population::generate(PEOPLE, 2026);
    // Who each record truly is, by its source's record id.
    let mut truth: HashMap<String, usize> = HashMap::new();
    let label = |records: &[Person], id: fn(&Person) -> String, truth: &mut HashMap<String, usize>| {
        truth.extend(records.iter().map(|p| (id(p), p.index)));
    };
    label(&population.regnakes, regnakes::record_id, &mut truth);
    label(&population.kki, kki::record_id, &mut truth);
    label(&population.sisdmk, sisdmk::record_id, &mut truth);
    assert_eq!(truth.len(), population.records());
    let true_pairs: usize = {
        let mut per_person: HashMap<usize, usize> = HashMap::new();
        for person in truth.values() {
            *per_person.entry(*person).or_default() += 1;
        }
        per_person.values().map(|&n| pairs(n)).sum()
    };

    for backend in backends() {
        let hub = TestHub::start(backend).await;
        // Policy rejects (inactive or expired STRs, malformed rows) are not identity: none here.
        let regnakes_config = RegnakesConfig {
            malformed_rate: 0.0,
            inactive_rate: 0.0,
            ..Default::default()
        };
        let registry = hub_sim::RegnakesSim::with_people(regnakes_config.clone(), population.regnakes.clone());
        let regnakes_server = serve(registry.router()).await;
        let kki_config = KkiConfig {
            expired_rate: 0.0,
            ..Default::default()
        };
        let doctors = hub_sim::KkiSim::with_people(kki_config.clone(), population.kki.clone());
        let kki_server = serve(doctors.router()).await;
        let staff = hub_sim::SisdmkSim::with_people(SisdmkConfig::default(), population.sisdmk.clone());
        let sisdmk_server = serve(staff.router()).await;

        // The licensing registries first, as a hub going live would.
        let connectors = [
            hub.regnakes_connector("regnakes", &regnakes_server.base_url(), &regnakes_config)
                .await,
            hub.token_connector("kki", "kki", &kki_server.base_url(), &kki_config.api_token)
                .await,
            hub.token_connector(
                "sisdmk",
                "sisdmk",
                &sisdmk_server.base_url(),
                &SisdmkConfig::default().api_token,
            )
            .await,
        ];
        for connector in &connectors {
            let run = hub.run_to_end(connector).await;
            assert_eq!(run["status"], "succeeded", "{run}");
        }

        // Where every record went: into one practitioner, or a reject with its reason.
        let mut placed: HashMap<String, String> = HashMap::new();
        let mut predicted_pairs = 0;
        let mut correct_pairs = 0;
        for practitioner in hub.all_pages("/api/v1/practitioners").await {
            let records: Vec<String> = (practitioner["sources"].as_array().unwrap().iter())
                .map(|s| s["record_id"].as_str().unwrap().to_string())
                .collect();
            let people: Vec<usize> = records.iter().map(|r| truth[r]).collect();
            predicted_pairs += pairs(people.len());
            for (i, a) in people.iter().enumerate() {
                correct_pairs += people[i + 1..].iter().filter(|b| *b == a).count();
            }
            for record in records {
                let id = practitioner["id"].as_str().unwrap().to_string();
                assert!(placed.insert(record.clone(), id).is_none(), "{record} in two people");
            }
        }
        let rejects = hub.all_pages("/api/v1/rejects").await;
        for reject in &rejects {
            let reason = reject["reason"].as_str().unwrap();
            assert!(reason.starts_with("conflicting identifier"), "{reject}");
            let record = reject["source_id"].as_str().unwrap().to_string();
            assert!(
                placed.insert(record.clone(), "rejected".into()).is_none(),
                "{record} twice"
            );
        }
        let lost: Vec<&String> = truth.keys().filter(|r| !placed.contains_key(*r)).collect();
        assert!(lost.is_empty(), "records neither stored nor rejected: {lost:?}");

        let precision = correct_pairs as f64 / predicted_pairs as f64;
        let recall = correct_pairs as f64 / true_pairs as f64;
        let practitioners: HashSet<&String> = placed.values().filter(|v| *v != "rejected").collect();
        println!(
            "{backend:?}: {} people, {} records ({} rejected), {} practitioners; {true_pairs} true pairs, \
             {predicted_pairs} put together, {correct_pairs} correctly: precision {precision:.3}, recall {recall:.3}",
            population.people.len(),
            truth.len(),
            rejects.len(),
            practitioners.len(),
        );
        assert_eq!(correct_pairs, predicted_pairs, "two different people merged");
        // The goal is 0.99. What is missed are records carrying another person's STR (2 % of
        // SISDMK's): refused as conflicting identifiers, never guessed.
        assert!(recall >= 0.98, "recall {recall:.3} below 0.98 (the goal is 0.99)");
    }
}
