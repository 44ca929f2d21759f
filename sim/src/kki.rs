//! KKI (Konsil Kedokteran Indonesia) simulator: doctors' STR registrations with their
//! certification status and training history, listed daily behind an API token, and signed
//! Standard Webhooks v1 events (`str.revoked`, `str.updated`) sent to a subscriber.
//!
//! Doctors are the people of the shared generator (same seed, same index: same NIK and STR
//! as in RegNakes), so the hub sees one person from several systems.

use crate::events::{Delivery, change_time};
use crate::people::{self, Person, Seeded};
use crate::registry::{Registry, RegistryRow, TokenHeader};
use axum::Router;
use chrono::{DateTime, Duration as Days, NaiveDate, SubsecRound, Utc};
use serde::Serialize;
use std::sync::Arc;

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
pub struct Doctor {
    person: Person,
    /// `aktif`, `dicabut` (revoked) or `kedaluwarsa` (expired).
    status: &'static str,
    issued: NaiveDate,
    certification: (&'static str, &'static str),
    trainings: Vec<(&'static str, &'static str, NaiveDate, u32)>,
    updated_at: DateTime<Utc>,
}

/// A doctor's registration as KKI lists it and sends it in events.
#[derive(Serialize)]
struct DoctorJson<'a> {
    id_registrasi: String,
    nomor_str: &'a str,
    nik: &'a str,
    nama: &'a str,
    tempat_lahir: &'a str,
    tanggal_lahir: Option<NaiveDate>,
    jenis_kelamin: &'static str,
    status_str: &'static str,
    tanggal_terbit: NaiveDate,
    berlaku_sampai: NaiveDate,
    sertifikasi: [CertificationJson; 1],
    pelatihan: Vec<TrainingJson>,
    diperbarui_pada: String,
}

#[derive(Serialize)]
struct CertificationJson {
    nama: &'static str,
    status: &'static str,
}

#[derive(Serialize)]
struct TrainingJson {
    nama: &'static str,
    penyelenggara: &'static str,
    tanggal: NaiveDate,
    jpl: u32,
}

/// A KKI simulator's shared state; cheap to clone.
#[derive(Clone)]
pub struct KkiSim {
    config: Arc<KkiConfig>,
    registry: Registry<Doctor>,
}

/// The registry's controls (faults, doctors, subscription, events) are the simulator's.
impl std::ops::Deref for KkiSim {
    type Target = Registry<Doctor>;

    fn deref(&self) -> &Registry<Doctor> {
        &self.registry
    }
}

impl RegistryRow for Doctor {
    fn person(&self) -> &Person {
        &self.person
    }

    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    fn set_updated_at(&mut self, at: DateTime<Utc>) {
        self.updated_at = at;
    }

    fn to_json(&self) -> impl Serialize + '_ {
        let p = &self.person;
        DoctorJson {
            id_registrasi: record_id(p),
            nomor_str: &p.str_number,
            nik: &p.nik,
            nama: &p.full_name,
            tempat_lahir: &p.birth_place,
            tanggal_lahir: p.birth_date,
            jenis_kelamin: p.sex.code(),
            status_str: self.status,
            tanggal_terbit: self.issued,
            berlaku_sampai: self.issued + Days::days(5 * 365),
            sertifikasi: [CertificationJson {
                nama: self.certification.0,
                status: self.certification.1,
            }],
            pelatihan: (self.trainings.iter())
                .map(|&(nama, penyelenggara, tanggal, jpl)| TrainingJson {
                    nama,
                    penyelenggara,
                    tanggal,
                    jpl,
                })
                .collect(),
            diperbarui_pada: change_time(self.updated_at),
        }
    }
}

/// KKI's id of `person`'s registration.
pub fn record_id(person: &Person) -> String {
    format!("KKI-{:07}", person.index)
}

impl KkiSim {
    /// `config.people` doctors of the shared generator.
    pub fn new(config: KkiConfig) -> Self {
        let doctors = (0..config.people)
            .map(|index| people::person(config.seed, index))
            .collect();
        Self::with_people(config, doctors)
    }

    /// A registry of exactly these doctors (`config.people` is not read), e.g. a
    /// [`crate::population::Population`]'s.
    pub fn with_people(config: KkiConfig, doctors: Vec<Person>) -> Self {
        let now = Utc::now().trunc_subsecs(6);
        let mut rng = Seeded::new(config.seed ^ 0x4B4B_4931);
        let doctors = doctors
            .into_iter()
            .map(|person| {
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
        Self {
            registry: Registry::new(doctors, TokenHeader::ApiKey, &config.api_token),
            config: Arc::new(config),
        }
    }

    /// `GET /api/v1/str` (the daily listing) and `/_sim/faults`.
    pub fn router(&self) -> Router {
        self.registry.router("/api/v1/str")
    }

    pub fn config(&self) -> &KkiConfig {
        &self.config
    }

    /// Revokes doctor `index`'s STR and sends `str.revoked`.
    pub async fn revoke(&self, index: usize) -> anyhow::Result<Delivery> {
        self.registry
            .change(index, "str.revoked", |d| d.status = "dicabut")
            .await
    }

    /// Re-issues doctor `index`'s STR under a new number, valid from today, and sends
    /// `str.updated`; returns the new number. The old number stays in other systems until
    /// they catch up.
    pub async fn reissue(&self, index: usize) -> anyhow::Result<(String, Delivery)> {
        let today = Utc::now().date_naive();
        let number = format!("9{}", &self.person(index).str_number[1..]);
        let delivery = self
            .registry
            .change(index, "str.updated", |d| {
                d.person.str_number = number.clone();
                d.status = "aktif";
                d.issued = today;
            })
            .await?;
        Ok((number, delivery))
    }

    /// Adds a training to doctor `index` and sends `str.updated`.
    pub async fn add_training(&self, index: usize, name: &'static str) -> anyhow::Result<Delivery> {
        let today = Utc::now().date_naive();
        self.registry
            .change(index, "str.updated", |d| d.trainings.push((name, "PB IDI", today, 12)))
            .await
    }
}
