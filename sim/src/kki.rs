//! KKI (Konsil Kedokteran Indonesia) simulator: doctors' STR registrations with their
//! certification status and training history, listed daily behind an API token, and signed
//! Standard Webhooks v1 events (`str.revoked`, `str.updated`) sent to a subscriber.
//!
//! Doctors are the people of the shared generator (same seed, same index: same NIK and STR
//! as in RegNakes), so the hub sees one person from several systems.

use crate::events::{Delivery, EventSender, paged, unauthorized};
use crate::faults::{self, FaultState, Faults};
use crate::people::{self, Person, Seeded};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration as Days, NaiveDate, SubsecRound, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

#[derive(Clone, Debug)]
pub struct KkiConfig {
    pub people: usize,
    /// The people generator's seed: the RegNakes simulator's, for overlapping people.
    pub seed: u64,
    /// The API token KKI issues to the hub (`x-api-key`).
    pub api_token: String,
    /// Share of doctors whose STR has expired.
    pub expired_rate: f64,
}

impl Default for KkiConfig {
    fn default() -> Self {
        Self {
            people: 500,
            seed: 2026,
            api_token: "kki-sim-api-token-0001".into(),
            expired_rate: 0.04,
        }
    }
}

const CERTIFICATIONS: &[&str] = &[
    "Sertifikat Kompetensi Dokter",
    "ACLS",
    "ATLS",
    "Sertifikat Kompetensi Dokter Spesialis",
];
const TRAININGS: &[(&str, &str)] = &[
    ("Pelatihan Kegawatdaruratan", "PB IDI"),
    ("Manajemen Nyeri", "Kolegium Dokter Indonesia"),
    ("Tata Laksana TB", "Kemenkes RI"),
    ("Etika Kedokteran", "MKEK"),
];

#[derive(Clone)]
struct Doctor {
    person: Person,
    /// `aktif`, `dicabut` (revoked) or `kedaluwarsa` (expired).
    status: &'static str,
    issued: NaiveDate,
    certification: (&'static str, &'static str),
    trainings: Vec<(&'static str, &'static str, NaiveDate, u32)>,
    updated_at: DateTime<Utc>,
}

impl Doctor {
    fn to_json(&self) -> Value {
        json!({
            "nomor_str": self.person.str_number,
            "nik": self.person.nik,
            "nama": self.person.full_name,
            "tempat_lahir": self.person.birth_place,
            "tanggal_lahir": self.person.birth_date.to_string(),
            "jenis_kelamin": match self.person.sex { people::Sex::Male => "L", people::Sex::Female => "P" },
            "status_str": self.status,
            "tanggal_terbit": self.issued.to_string(),
            "berlaku_sampai": (self.issued + Days::days(5 * 365)).to_string(),
            "sertifikasi": [{ "nama": self.certification.0, "status": self.certification.1 }],
            "pelatihan": self.trainings.iter().map(|(nama, penyelenggara, tanggal, jpl)| json!({
                "nama": nama, "penyelenggara": penyelenggara, "tanggal": tanggal.to_string(), "jpl": jpl,
            })).collect::<Vec<_>>(),
            "diperbarui_pada": self.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        })
    }
}

struct Inner {
    config: KkiConfig,
    doctors: RwLock<Vec<Doctor>>,
    faults: Arc<FaultState>,
    events: EventSender,
}

/// A KKI simulator's shared state; cheap to clone.
#[derive(Clone)]
pub struct KkiSim(Arc<Inner>);

impl KkiSim {
    pub fn new(config: KkiConfig) -> Self {
        let now = Utc::now().trunc_subsecs(6);
        let mut rng = Seeded::new(config.seed ^ 0x4B4B_4931);
        let doctors = (0..config.people)
            .map(|index| {
                let person = people::person(config.seed, index);
                let status = if rng.chance(config.expired_rate) {
                    "kedaluwarsa"
                } else {
                    "aktif"
                };
                let trainings = (0..1 + rng.below(3))
                    .map(|_| {
                        let (name, provider) = *rng.pick(TRAININGS);
                        let on = NaiveDate::from_ymd_opt(2018, 1, 1).unwrap() + Days::days(rng.below(2500) as i64);
                        (name, provider, on, 8 + rng.below(32) as u32)
                    })
                    .collect();
                Doctor {
                    person,
                    status,
                    issued: NaiveDate::from_ymd_opt(2022, 1, 1).unwrap() + Days::days(rng.below(1400) as i64),
                    certification: (*rng.pick(CERTIFICATIONS), "berlaku"),
                    trainings,
                    updated_at: now - Days::seconds(1 + rng.below(30 * 24 * 3600) as i64),
                }
            })
            .collect();
        Self(Arc::new(Inner {
            config,
            doctors: RwLock::new(doctors),
            faults: Arc::default(),
            events: EventSender::default(),
        }))
    }

    /// `GET /api/v1/str` (the daily listing) and `/_sim/faults`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/str", get(list))
            .with_state(self.clone())
            .merge(faults::router(self.0.faults.clone()))
    }

    pub fn config(&self) -> &KkiConfig {
        &self.0.config
    }

    pub fn set_faults(&self, faults: Faults) {
        self.0.faults.set(faults);
    }

    pub fn total(&self) -> usize {
        self.0.doctors.read().unwrap().len()
    }

    /// The person behind doctor `index`.
    pub fn person(&self, index: usize) -> Person {
        self.0.doctors.read().unwrap()[index].person.clone()
    }

    /// Sends events to `url`, signed with `secret` (`whsec_…`, as the hub returned it).
    pub fn subscribe(&self, url: &str, secret: &str) -> anyhow::Result<()> {
        self.0.events.subscribe(url, secret)
    }

    /// The event sender, to repeat a delivery or sign one at another time.
    pub fn events(&self) -> &EventSender {
        &self.0.events
    }

    /// Revokes doctor `index`'s STR and sends `str.revoked`.
    pub async fn revoke(&self, index: usize) -> anyhow::Result<Delivery> {
        self.change(index, "str.revoked", |d| d.status = "dicabut").await
    }

    /// Adds a training to doctor `index` and sends `str.updated`.
    pub async fn add_training(&self, index: usize, name: &'static str) -> anyhow::Result<Delivery> {
        let today = Utc::now().date_naive();
        self.change(index, "str.updated", |d| d.trainings.push((name, "PB IDI", today, 12)))
            .await
    }

    async fn change(&self, index: usize, kind: &str, edit: impl FnOnce(&mut Doctor)) -> anyhow::Result<Delivery> {
        let row = {
            let mut doctors = self.0.doctors.write().unwrap();
            let doctor = doctors
                .get_mut(index)
                .ok_or_else(|| anyhow::anyhow!("no doctor {index}"))?;
            edit(doctor);
            doctor.updated_at = Utc::now().trunc_subsecs(6);
            doctor.to_json()
        };
        self.0.events.send(kind, row).await
    }
}

#[derive(Deserialize)]
struct ListQuery {
    updated_since: Option<DateTime<Utc>>,
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn list(State(sim): State<KkiSim>, headers: HeaderMap, query: Query<ListQuery>) -> Response {
    if let Some(failed) = sim.0.faults.injected_failure().await {
        return failed;
    }
    if let Some(denied) = unauthorized(&headers, "x-api-key", &sim.0.config.api_token) {
        return denied;
    }
    let doctors = sim.0.doctors.read().unwrap();
    let mut matching: Vec<&Doctor> = doctors
        .iter()
        .filter(|d| query.updated_since.is_none_or(|since| d.updated_at > since))
        .collect();
    matching.sort_by_key(|d| (d.updated_at, d.person.index));
    let rows = matching.iter().map(|d| d.to_json()).collect();
    paged(rows, query.page, query.per_page).into_response()
}
