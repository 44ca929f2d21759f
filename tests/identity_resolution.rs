//! Identity resolution, measured (docs/golden-record.md): a labelled population
//! (`hub_sim::population`: titles, old spellings, birth-place aliases, missing birth dates
//! and STRs, re-issued STRs, people without any STR, and hard negatives) synced through the
//! bundled RegNakes, KKI and SISDMK plugins over HTTP, then scored pair by pair: of every two
//! records the hub put in one practitioner, how many are one person (precision), and of
//! every two records of one person, how many the hub put together (recall); then again after
//! a reviewer who knows the truth has worked the review queue. Both backends.

use hub_e2e::{TestHub, backends, serve};
use hub_sim::people::Person;
use hub_sim::{KkiConfig, Population, RegnakesConfig, SisdmkConfig, kki, regnakes, sisdmk};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;

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

        let automatic = Score::of(&hub, &truth, true_pairs).await;
        automatic.report(&format!("{backend:?}, matched by the hub"), population.people.len());
        assert_eq!(
            automatic.rejected, 0,
            "records carrying another's STR are held, not rejected"
        );
        assert_eq!(
            automatic.correct_pairs, automatic.predicted_pairs,
            "two different people merged"
        );
        // The goal is 0.99. What is missed are records the hub held for review: those carrying
        // another person's STR (2 % of SISDMK's) are probable, not sure, and never guessed.
        assert!(automatic.recall() >= 0.98, "recall below 0.98 (the goal is 0.99)");
        assert!(automatic.held > 0);

        // A reviewer who knows the truth works the queue: every decision is right.
        for candidate in hub.all_pages("/api/v1/identity/candidates").await {
            let person = &automatic.people[candidate["practitioner_id"].as_str().unwrap()];
            let same = truth[candidate["record_id"].as_str().unwrap()] == *person;
            let verdict = if same { "merge" } else { "keep-apart" };
            let (status, outcome) = hub
                .post(
                    &format!(
                        "/api/v1/identity/candidates/{}/{verdict}",
                        candidate["id"].as_str().unwrap()
                    ),
                    json!({}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{outcome}");
        }
        let reviewed = Score::of(&hub, &truth, true_pairs).await;
        reviewed.report(&format!("{backend:?}, after review"), population.people.len());
        assert_eq!(reviewed.held, 0);
        assert_eq!(
            reviewed.correct_pairs, reviewed.predicted_pairs,
            "two different people merged"
        );
        assert!(reviewed.recall() >= 0.99, "recall after review below the goal of 0.99");
    }
}

/// Where every record went (into one practitioner, held for review, or rejected) and the
/// pairs that makes.
struct Score {
    true_pairs: usize,
    predicted_pairs: usize,
    correct_pairs: usize,
    rejected: usize,
    held: usize,
    /// The true person of each practitioner (by its first record).
    people: HashMap<String, usize>,
}

impl Score {
    async fn of(hub: &TestHub, truth: &HashMap<String, usize>, true_pairs: usize) -> Self {
        let mut placed: HashMap<String, String> = HashMap::new();
        let mut place = |record: &str, to: &str| {
            assert!(
                placed.insert(record.to_string(), to.to_string()).is_none(),
                "{record} in two places"
            );
        };
        let mut score = Score {
            true_pairs,
            predicted_pairs: 0,
            correct_pairs: 0,
            rejected: 0,
            held: 0,
            people: HashMap::new(),
        };
        for practitioner in hub.all_pages("/api/v1/practitioners").await {
            let id = practitioner["id"].as_str().unwrap();
            let records: Vec<&str> = (practitioner["sources"].as_array().unwrap().iter())
                .map(|s| s["record_id"].as_str().unwrap())
                .collect();
            let people: Vec<usize> = records.iter().map(|r| truth[*r]).collect();
            score.people.insert(id.to_string(), people[0]);
            score.predicted_pairs += pairs(people.len());
            for (i, a) in people.iter().enumerate() {
                score.correct_pairs += people[i + 1..].iter().filter(|b| *b == a).count();
            }
            for record in records {
                place(record, id);
            }
        }
        for candidate in hub.all_pages("/api/v1/identity/candidates").await {
            place(candidate["record_id"].as_str().unwrap(), "held");
            score.held += 1;
        }
        for reject in hub.all_pages("/api/v1/rejects").await {
            place(reject["source_id"].as_str().unwrap(), "rejected");
            score.rejected += 1;
        }
        let lost: Vec<&String> = truth.keys().filter(|r| !placed.contains_key(*r)).collect();
        assert!(lost.is_empty(), "records neither stored, held nor rejected: {lost:?}");
        score
    }

    fn recall(&self) -> f64 {
        self.correct_pairs as f64 / self.true_pairs as f64
    }

    fn report(&self, what: &str, people: usize) {
        println!(
            "{what}: {people} people, {} practitioners, {} held, {} rejected; {} true pairs, {} put together, \
             {} correctly: precision {:.3}, recall {:.3}",
            self.people.len(),
            self.held,
            self.rejected,
            self.true_pairs,
            self.predicted_pairs,
            self.correct_pairs,
            self.correct_pairs as f64 / self.predicted_pairs.max(1) as f64,
            self.recall(),
        );
    }
}
